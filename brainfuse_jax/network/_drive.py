"""External drives of a network: Poisson spike sources per neuron, DC and step currents.

`PoissonDrive` gives every neuron of its target population its own Poisson spike train (as NEST's
`poisson_generator` connected to each neuron: independent realisations). Each step draws the
number of events `k ~ Poisson(rate dt)` per neuron by inverting the Poisson CDF at one uniform
number (`jax.random.poisson` per step costs ~3.5 s per simulated second for 5,000 neurons; one
counter-based uniform (`network._random`, keyed by the neuron's id and the step) compared with a
small table is ~50x cheaper). The draw is exact to the
resolution of the uniform numbers (2^-24 in float32, 2^-53 in float64): the table holds every
count up to the one whose tail beyond has a probability below 1e-15 at the drive's `max_rate`
(the last count takes that tail); a rate raised past `max_rate` under a transformation (its table
would be too short) raises the network's overflow flag instead of giving a silently cut draw. The events reach the target synapse like spikes of a projection, `delay` ms
after they are drawn (the generator starts delivering at `t = delay`, as NEST's device with that
delay), with `weight` each.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_float_array, check_finite, check_nonnegative
from ..synapses import Delta, NetworkSynapse

_TAIL = 1e-15


def poisson_table_size(lam: float) -> int:
    """Number of counts `K` with `P(k >= K) < 1e-15` for a Poisson mean `lam` (events per step)."""
    if lam <= 0:
        return 1
    k, p, cdf = 0, math.exp(-lam), 0.0
    while True:
        cdf += p
        k += 1
        if 1.0 - cdf < _TAIL or p == 0.0 and k > lam:
            return k + 1
        p *= lam / k


def resolution(dtype) -> float:
    """Spacing of the uniform numbers of `network._random.uniforms` in `dtype` (2^-24, 2^-53)."""
    return 2.0 ** -53 if jnp.dtype(dtype) == jnp.float64 else 2.0 ** -24


def poisson_counts(u: Float[Array, "*n"], lam: Float[Array, "*n"], size: int) -> Float[Array, "*n"]:
    """Poisson counts of mean `lam` (events per step) from uniform numbers `u` in [0, 1), by
    inverting the CDF over the counts 0 .. size - 1 (`size` from `poisson_table_size`: the last
    count stands for itself and the tail beyond it)."""
    dtype = u.dtype
    lam = jnp.asarray(lam, dtype)
    k = jnp.arange(size, dtype=dtype)
    log_pmf = k * jnp.log(jnp.maximum(lam[..., None], jnp.finfo(dtype).tiny)) - lam[..., None] - jax.lax.lgamma(k + 1)
    pmf = jnp.exp(log_pmf)
    cdf = jnp.cumsum(pmf, axis=-1)[..., :-1]
    # P(X > k): an entry whose tail is below the uniform numbers' resolution is never crossed.
    # (Rounded, the top of the CDF is flat just below 1, and the rare u above it would get the
    # table's last count instead of one of probability ~1e-7: measured as a 7-event jump.)
    tail = jnp.cumsum(pmf[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    cdf = jnp.where(tail < resolution(dtype), jnp.asarray(2.0, dtype), cdf)
    # counting the table entries below u: fused by XLA, 2x faster than a binary search here
    return jnp.sum(u[..., None] >= jnp.broadcast_to(cdf, (*u.shape, size - 1)), axis=-1).astype(dtype)


class PoissonDrive(eqx.Module):
    """Independent Poisson spike trains into every neuron of population `target`.

    **Arguments:** `target` (population name), `rate` (Hz, >= 0; scalar or one per neuron),
    `weight` (per event, in the units of `synapse`), `synapse` (default `Delta()`), `delay` (ms,
    >= 0: events are delivered from `t = delay` on), `max_rate` (Hz: the table bound, default
    `rate`; see the module docstring).
    """

    target: str = eqx.field(static=True)
    rate: Float[Array, "*n"]
    weight: Float[Array, "*n"]
    synapse: NetworkSynapse
    delay: float = eqx.field(static=True)
    max_rate: float = eqx.field(static=True)

    def __init__(self, target: str, rate: Float[ArrayLike, "*n"], weight: Float[ArrayLike, "*n"],
                 synapse: NetworkSynapse | None = None, delay: float = 0.0, max_rate: float | None = None):
        if not isinstance(target, str):
            raise TypeError(f"PoissonDrive target must be a population name (str), got {target!r}")
        self.target = target
        self.rate = check_nonnegative(check_finite(as_float_array(rate, "rate"), "rate"), "rate", "Hz")
        self.weight = check_finite(as_float_array(weight, "weight"), "weight")
        self.synapse = Delta() if synapse is None else synapse
        if not isinstance(self.synapse, NetworkSynapse):
            raise TypeError(f"synapse must be a network synapse (Delta, Port, CurrExp, CurrAlpha, CondExp), "
                            f"got {type(self.synapse).__name__}")
        if not (isinstance(delay, (int, float)) and delay >= 0 and math.isfinite(delay)):
            raise ValueError(f"delay must be a finite number of ms >= 0, got {delay!r}")
        self.delay = float(delay)
        top = float(np.max(np.asarray(self.rate))) if self.rate.size else 0.0
        self.max_rate = top if max_rate is None else float(max_rate)
        if self.max_rate < top:
            raise ValueError(f"max_rate ({self.max_rate} Hz) must be >= the largest rate ({top} Hz)")
        if self.synapse.nonnegative_weights and np.any(np.asarray(self.weight) < 0):
            raise ValueError(f"{type(self.synapse).__name__} weights must be >= 0 (conductances)")

    def events(self, u: Float[Array, "*n"], t, dt: float) -> tuple[Float[Array, "*n"], Array]:
        """`(summed weights per neuron, overflow)` for step `t` from one uniform number per neuron."""
        dtype = u.dtype
        size = poisson_table_size(self.max_rate * float(dt) * 1e-3)
        counts = poisson_counts(u, self.rate * (dt * 1e-3), size)
        overflow = jnp.any(self.rate > self.max_rate * (1 + 1e-6))
        on = (t >= round(self.delay / float(dt))).astype(dtype)
        return on * counts * self.weight.astype(dtype), overflow


class CurrentDrive(eqx.Module):
    """A current into every neuron of population `target` (the model's input units: pA for IAF
    models, uA/cm2 for `PointNeuron`), piecewise constant as NEST's `step_current_generator`:
    `amplitudes[i]` from `times[i]` (ms) until the next time. `CurrentDrive(target, amp)` is a DC
    current from t = 0. Amplitudes: one value per time, or `(len(times), n)` per neuron.
    """

    target: str = eqx.field(static=True)
    times: Float[Array, " K"]
    amplitudes: Float[Array, "K *n"]

    def __init__(self, target: str, amplitudes, times=(0.0,)):
        if not isinstance(target, str):
            raise TypeError(f"CurrentDrive target must be a population name (str), got {target!r}")
        self.target = target
        times = np.atleast_1d(np.asarray(times, float))
        if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0) or np.any(np.diff(times) <= 0):
            raise ValueError(f"times must be finite, >= 0 ms and strictly increasing, got {times}")
        self.times = jnp.asarray(times)
        amps = check_finite(as_float_array(amplitudes, "amplitudes"), "amplitudes")
        if amps.ndim == 0:
            amps = jnp.broadcast_to(amps, times.shape)
        if amps.shape[0] != times.shape[0]:
            raise ValueError(f"amplitudes must have one entry per time ({len(times)}), got shape {amps.shape}")
        self.amplitudes = amps

    def current(self, t, dt, shape, dtype):
        """The current during step `t` (B,) (from `t dt` ms) as `shape` (B, n)."""
        now = (t.astype(dtype) + 0.5) * dt  # the step's midpoint: a change on the grid acts in its step
        i = jnp.sum(self.times.astype(dtype)[None, :] <= now[:, None], axis=1) - 1  # (B,)
        amp = self.amplitudes.astype(dtype)[jnp.maximum(i, 0)]  # (B,) or (B, n)
        amp = amp if amp.ndim == 2 else amp[:, None]
        return jnp.broadcast_to(jnp.where((i >= 0)[:, None], amp, 0.0), shape)
