"""Membrane helpers shared by `PointNeuron` and `Cell`: rate evaluation (with NEURON's rate
tables), the gate update and the spike output.

Both models evaluate their channels' kinetics with `channel_kinetics`, advance the gates with
`advance_gates` (exponential Euler, `cnexp`, with exact or Pade decays) and emit spikes with
`spike_output`; the time discretisation around them is a scheme object (`brainfuse_jax.integrate`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._math import pade_decay, reciprocal
from ..channels import Channel, GateKinetics
from ..surrogate import Surrogate

DECAYS = ("exp", "pade")


def check_decay(decay: str) -> str:
    """`decay` if it is one of `DECAYS`; `ValueError` naming the valid choices otherwise."""
    if not isinstance(decay, str) or decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    return decay


def tabulated_kinetics(channels: Mapping[str, Channel], v: Float[Array, "*b"],
                       celsius: Float[ArrayLike, ""]) -> dict[str, dict[str, GateKinetics]]:
    """inf and tau linearly interpolated on a shared table grid, exactly as NMODL's `TABLE`
    (values beyond the grid are clamped to its end points).

    All channels with the same `table` spec are packed into one `(n, 4 * gates)` array of
    `[values | slopes]`, so each step costs a single row gather per neuron (12 separate gathers
    for HH cost ~1.5x the whole step; benchmarks/hh_step_variants.py).
    """
    (lo, hi, n), = {ch.table for ch in channels.values()}
    grid = jnp.linspace(lo, hi, n + 1, dtype=v.dtype)
    names, cols = [], []  # (channel, gate, column of inf, column of tau or None)
    for c, ch in channels.items():
        for g, k in ch.kinetics(grid, celsius).items():
            if k.tau is None:  # instantaneous gate: inf only
                names.append((c, g, len(cols), None))
                cols.append(k.inf)
            else:
                names.append((c, g, len(cols), len(cols) + 1))
                cols.extend((k.inf, k.tau))
    table = jnp.stack(cols, axis=-1)  # (n + 1, columns): inf (and tau) per gate
    packed = jnp.concatenate([table[:-1], table[1:] - table[:-1]], axis=-1)
    xi = (v - lo) * (n / (hi - lo))
    i = jnp.clip(jnp.floor(xi), 0, n - 1).astype(jnp.int32)
    theta = jnp.clip(xi - i.astype(v.dtype), 0.0, 1.0)[..., None]  # d/dv flows through theta
    row = packed[i]
    vals = row[..., : len(cols)] + theta * row[..., len(cols):]
    out: dict[str, dict[str, GateKinetics]] = {c: {} for c in channels}
    for c, g, i_inf, i_tau in names:
        out[c][g] = GateKinetics(vals[..., i_inf], None if i_tau is None else vals[..., i_tau])
    return out


def channel_kinetics(channels: Mapping[str, Channel], v: Float[Array, "*b"], celsius: Float[ArrayLike, ""],
                     cai: Float[Array, "*b"] | None = None, *, tables: bool = False,
                     only: Collection[str] | None = None) -> dict[str, dict[str, GateKinetics]]:
    """Per channel, per gate: inf and tau (ms) at `v` (mV), `celsius` (degC) and [Ca]i `cai` (mM).

    With `tables` (the schemes that reproduce NEURON: `NeuronTables`, `CrankNicolson`), channels
    that declare a rate table (`Channel.table`) are interpolated on it (`tabulated_kinetics`;
    channels sharing a table spec share one packed gather); the others are evaluated exactly.
    `only`: the names of the channels to evaluate (default all).
    """
    out, tabulated = {}, {}
    for c, ch in channels.items():
        if only is not None and c not in only:
            continue
        if tables and ch.table is not None:
            tabulated.setdefault(tuple(ch.table), {})[c] = ch
        else:
            out[c] = ch.kinetics(v, celsius, cai)
    for group in tabulated.values():
        out.update(tabulated_kinetics(group, v, celsius))
    return out


def advance_gates(gates: Mapping[str, Mapping[str, Array]], kin: Mapping[str, Mapping[str, GateKinetics]],
                  dt: Float[ArrayLike, ""], decay: str = "exp") -> dict[str, dict[str, Array]]:
    """`cnexp` (exponential Euler, exact for a gate's linear ODE at fixed V) for each gate of `kin`
    over `dt` (ms), from the values `gates[channel][gate]`; instantaneous gates jump to inf.

    `decay="exp"`: x <- inf + (x - inf) exp(-z), z = dt / tau (`exp`, not `expm1`: XLA's CPU expm1
    is not vectorised and costs 1/3 of an HH step; `dt * rate`, not `dt / tau`, where the channel
    gives alpha + beta: one division per gate fewer). `decay="pade"`: x <- (x p + dt alpha s) / q
    with the L-stable [2/3] Pade approximant of exp(-z) (`brainfuse_jax._math.pade_decay`), one
    division per gate and no `exp`; gates stay in [0, 1] for any dt.
    """
    def update(x, k):
        if k.tau is None:
            return k.inf
        z = dt * k.rate if k.rate is not None else dt / k.tau
        if decay == "pade":
            p, q, s = pade_decay(z)
            drive = dt * k.alpha if k.alpha is not None else k.inf * z  # = x_inf z
            return (x * p + drive * s) * reciprocal(q)
        return k.inf + (x - k.inf) * jnp.exp(-z)

    return {c: {g: update(gates[c][g], k) for g, k in gk.items()} for c, gk in kin.items()}


def instant_channels(kin: Mapping[str, Mapping[str, GateKinetics]]) -> set[str]:
    """Names of the channels with an instantaneous gate (`tau is None`)."""
    return {c for c, gk in kin.items() if any(k.tau is None for k in gk.values())}


def spike_output(surrogate: Surrogate, v_old: Float[Array, "*b"], v_new: Float[Array, "*b"],
                 threshold: Float[ArrayLike, ""]) -> Float[Array, "*b"]:
    """1.0 on a step where V (mV) crosses `threshold` (mV) upwards (`v_old < threshold <= v_new`),
    else 0.0; its gradient is the `surrogate`'s (`H(v_new - th) (1 - H(v_old - th))`)."""
    return surrogate(v_new - threshold) * (1.0 - surrogate(v_old - threshold))
