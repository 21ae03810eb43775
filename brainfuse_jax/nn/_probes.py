"""Activity statistics of one spiking layer from the spikes and membrane it already produced: the
per-layer part of `snn_metrics` (see `_metrics.py`) and the debug probes of `return_details=True`."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

#: The activity statistics of one layer (`layer_metrics`); the `v_*` ones need the membrane and
#: `rate_hz` the frame duration.
ACTIVITY = ("rate", "rate_hz", "sparsity", "dead", "saturated", "v_mean", "v_var", "v_std", "v_min", "v_max")

#: The probe names returned by `probes` (and by every layer with `return_details=True`).
PROBES = ("rate", "rate_hz", "v_mean", "v_var", "sparsity", "dead", "saturated", "v_std", "v_min", "v_max")


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1] (a fraction of frames), got {value!r}")
    return float(value)


def layer_metrics(
    spikes: Float[Array, "B T *neurons"],
    v: Float[Array, "B T *neurons"] | None = None,
    frame_ms: float | None = None,
    saturation: float = 1.0,
) -> dict[str, Float[Array, ""]]:
    """Activity statistics of one layer over a batch (no gradient; a handful of reductions).

    A *neuron* is one entry of the trailing axes (`n` for dense layers, `(C, H, W)` for
    convolutional ones); statistics per neuron are taken over the batch and time axes together.

    **Arguments:**
    - `spikes`: spikes per frame `(B, T, *neurons)` (counts; 0/1 for LIF-type layers).
    - `v`: membrane potential at the end of each frame, same shape (mV for HH layers, units of
      threshold for LIF layers), or None (no `v_*` entries).
    - `frame_ms`: duration of one frame in ms (`substeps * dt`), or None (no `rate_hz`).
    - `saturation`: a neuron is *saturated* if it spikes in at least this fraction of the
      `B * T` frames; 1.0 (default): in every frame of every sample.

    **Returns:** a dict of float scalars:
    - `rate`: mean spikes per neuron per frame; `rate_hz`: the same in Hz (spikes/s).
    - `sparsity`: fraction of (sample, frame, neuron) entries without a spike.
    - `dead`: fraction of neurons that never spike, in any frame of any sample.
    - `saturated`: fraction of neurons spiking in >= `saturation` of the `B * T` frames.
    - `v_mean`, `v_var`, `v_std`, `v_min`, `v_max`: the membrane over batch, time and neurons.
    """
    saturation = _check_fraction(saturation, "saturation")
    s = jax.lax.stop_gradient(jnp.asarray(spikes))
    if s.ndim < 3:
        raise ValueError(f"spikes must have shape (B, T, *neurons) = (batch, time, neurons...); got {s.shape}")
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.float32)
    active = (s > 0).astype(s.dtype)
    frames = s.shape[0] * s.shape[1]
    count = jnp.sum(active, axis=(0, 1))  # frames with a spike, per neuron (exact integers)
    need = max(1, math.ceil(saturation * frames - 1e-9))  # "at least this fraction", without rounding
    rate = jnp.mean(s)
    out = {
        "rate": rate,
        "sparsity": 1.0 - jnp.mean(active),
        "dead": jnp.mean((count == 0).astype(s.dtype)),
        "saturated": jnp.mean((count >= need).astype(s.dtype)),
    }
    if frame_ms is not None:
        out["rate_hz"] = rate * (1000.0 / float(frame_ms))
    if v is not None:
        v = jax.lax.stop_gradient(jnp.asarray(v))
        if v.shape != s.shape:
            raise ValueError(f"v must have the shape of spikes {s.shape}, got {v.shape}")
        out.update(v_mean=jnp.mean(v), v_var=jnp.var(v), v_std=jnp.std(v), v_min=jnp.min(v), v_max=jnp.max(v))
    return out


def probes(
    spikes: Float[Array, "B T *neurons"],
    v: Float[Array, "B T *neurons"],
    frame_ms: float,
    saturation: float = 0.9,
) -> dict[str, Float[Array, ""]]:
    """The debug probes of one layer (`PROBES`): `layer_metrics` with the membrane and frame
    duration given, and saturation at 0.9 of the frames by default (as before `snn_metrics`,
    whose default is 1.0: spiking in every frame).

    **Arguments:**
    - `spikes`: spikes per frame `(B, T, *neurons)` (counts; 0/1 for LIF-type layers).
    - `v`: membrane potential at the end of each frame, same shape.
    - `frame_ms`: duration of one frame in ms (`substeps * dt`).
    - `saturation`: a neuron is *saturated* if it spikes in at least this fraction of frames.

    **Returns:** a dict of scalars, the keys of `PROBES` (see `layer_metrics`).
    """
    return layer_metrics(spikes, v, frame_ms, saturation)
