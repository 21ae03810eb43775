"""Readouts from spike sequences to logits: `LeakyReadout` (a leaky integrator), `SpikeCountReadout`
(counts in time windows, then a linear map), and the helpers `reduce_time`, `spike_count`."""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..neurons._base import resolve_dtype
from ._checks import check_positive_int, check_sequence

Reduce = Literal["mean", "max", "last", "none"]
REDUCES = ("mean", "max", "last", "none")


def reduce_time(u: Float[Array, "B T c"], reduce: str) -> Float[Array, "B c"] | Float[Array, "B T c"]:
    """`"mean"` / `"max"` / `"last"` over the time axis (1) of `(B, T, c)`, or `"none"`."""
    if reduce == "mean":
        return jnp.mean(u, axis=1)
    if reduce == "max":
        return jnp.max(u, axis=1)
    if reduce == "last":
        return u[:, -1]
    if reduce == "none":
        return u
    raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")


def spike_count(spikes: Float[Array, "B T n"]) -> Float[Array, "B n"]:
    """Spikes summed over time: `(B, T, n) -> (B, n)` (logits for a rate-coded readout)."""
    return jnp.sum(check_sequence(spikes, "spikes"), axis=1)


class LeakyReadout(eqx.Module):
    r"""Non-spiking leaky integrator readout: $u_t = \beta u_{t-1} + W s_t + b$, $u_0 = 0$,
    reduced over time to logits.

    **Arguments:**
    - `in_features`: inputs per step (the previous layer's `n`); `out_features`: classes.
    - `key`: PRNG key. `beta`: decay per step in [0, 1) (fixed).
    - `reduce`: `"mean"` (mean membrane), `"max"` (max membrane), `"last"`, or `"none"`
      (the whole `(B, T, out)` trace).
    - `state_dtype`: dtype of the membrane (default float32 / float64 under x64).
    """

    linear: eqx.nn.Linear
    beta: float = eqx.field(static=True)
    reduce: str = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    state_dtype: Any = eqx.field(static=True)

    def __init__(self, in_features: int, out_features: int, *, key: PRNGKeyArray, beta: float = 0.9,
                 reduce: Reduce = "mean", state_dtype=None):
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features", "number of outputs")
        if not (0.0 <= float(beta) < 1.0):
            raise ValueError(f"beta must be in [0, 1) (decay per step), got {beta!r}")
        if reduce not in REDUCES:
            raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")
        self.linear = eqx.nn.Linear(in_features, out_features, key=key)
        self.beta = float(beta)
        self.reduce = reduce
        self.in_features = int(in_features)
        self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)

    def __call__(self, x: Float[Array, "B T f"], *, key: PRNGKeyArray | None = None):
        """`(B, T, in_features)` -> logits `(B, out)` (or `(B, T, out)` with `reduce="none"`)."""
        x = check_sequence(x, "x", self.in_features)
        dtype = resolve_dtype(self.state_dtype)
        h = jax.vmap(jax.vmap(self.linear))(x.astype(self.linear.weight.dtype)).astype(dtype)

        def body(u, h_t):
            u = self.beta * u + h_t
            return u, u

        _, u = jax.lax.scan(body, jnp.zeros_like(h[:, 0]), jnp.swapaxes(h, 0, 1))
        return reduce_time(jnp.swapaxes(u, 0, 1), self.reduce)


class SpikeCountReadout(eqx.Module):
    r"""Spike-count readout: spikes counted in `bins` equal time windows, then a linear map,
    $z = W\,[c_1; \dots; c_K] + b$ with $c_k = \sum_{t \in \text{window } k} s_t$ (per neuron).

    `bins=1` is the plain rate-coded readout (total spike count per neuron); more bins keep
    coarse timing (e.g. 8 bins = one per image row of a pixel-sequential 8x8 digit).

    **Arguments:**
    - `in_features`: neurons of the previous layer; `out_features`: classes; `key`: PRNG key.
    - `bins`: number of time windows (must divide the sequence length T).
    - `state_dtype`: dtype of the counts and logits (default float32 / float64 under x64).
    """

    linear: eqx.nn.Linear
    bins: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    state_dtype: Any = eqx.field(static=True)

    def __init__(self, in_features: int, out_features: int, *, key: PRNGKeyArray, bins: int = 1,
                 state_dtype=None):
        self.in_features = check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features", "number of outputs")
        self.bins = check_positive_int(bins, "bins", "time windows")
        self.linear = eqx.nn.Linear(self.in_features * self.bins, out_features, key=key)
        self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)

    def counts(self, x: Float[Array, "B T n"]) -> Float[Array, "B k n"]:
        """Spike counts per window, `(B, bins, n)`."""
        x = check_sequence(x, "x", self.in_features)
        B, T, n = x.shape
        if T % self.bins:
            raise ValueError(f"the sequence length T={T} must be a multiple of bins={self.bins}")
        dtype = resolve_dtype(self.state_dtype)
        return jnp.sum(jnp.reshape(x.astype(dtype), (B, self.bins, T // self.bins, n)), axis=2)

    def __call__(self, x: Float[Array, "B T n"], *, key: PRNGKeyArray | None = None) -> Float[Array, "B c"]:
        """`(B, T, in_features)` spikes -> logits `(B, out_features)`."""
        c = self.counts(x)
        flat = jnp.reshape(c, (c.shape[0], -1)).astype(self.linear.weight.dtype)
        return jax.vmap(self.linear)(flat).astype(c.dtype)

