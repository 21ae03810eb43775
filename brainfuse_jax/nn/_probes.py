"""Debug probes: activity statistics of a layer, from the spikes and membrane it already produced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

#: The probe names returned by `probes` (and by every layer with `return_details=True`).
PROBES = ("rate", "rate_hz", "v_mean", "v_var", "sparsity", "dead", "saturated")


def probes(
    spikes: Float[Array, "B T n"],
    v: Float[Array, "B T n"],
    frame_ms: float,
    saturation: float = 0.9,
) -> dict[str, Float[Array, ""]]:
    """Activity statistics of one layer over a batch (no gradient; a handful of reductions).

    **Arguments:**
    - `spikes`: spikes per frame `(B, T, n)` (counts; 0/1 for LIF-type layers).
    - `v`: membrane potential at the end of each frame `(B, T, n)` (mV for HH layers, units of
      threshold for LIF layers).
    - `frame_ms`: duration of one frame in ms (`substeps * dt`).
    - `saturation`: a neuron is *saturated* if it spikes in at least this fraction of frames.

    **Returns:** a dict of scalars:
    - `rate`: mean spikes per neuron per frame; `rate_hz`: the same in Hz (spikes/s).
    - `v_mean`, `v_var`: mean and variance of the membrane over batch, time and neurons.
    - `sparsity`: fraction of (sample, frame, neuron) entries without a spike.
    - `dead`: fraction of neurons that never spike in any sample of the batch.
    - `saturated`: fraction of neurons spiking in >= `saturation` of all frames of the batch.
    """
    s = jax.lax.stop_gradient(spikes)
    v = jax.lax.stop_gradient(v)
    active = (s > 0).astype(s.dtype)
    per_neuron = jnp.mean(active, axis=(0, 1))
    rate = jnp.mean(s)
    return {
        "rate": rate,
        "rate_hz": rate * (1000.0 / frame_ms),
        "v_mean": jnp.mean(v),
        "v_var": jnp.var(v),
        "sparsity": 1.0 - jnp.mean(active),
        "dead": jnp.mean((per_neuron == 0).astype(s.dtype)),
        "saturated": jnp.mean((per_neuron >= saturation).astype(s.dtype)),
    }
