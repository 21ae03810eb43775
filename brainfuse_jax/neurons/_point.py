"""Conductance-based point neurons built from `Channel`s, and the classic `HH` neuron."""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from .._math import one_minus_exp_neg_over_x
from .._validate import check_dt, check_finite, param
from ..channels import Channel, GateKinetics, HHK, HHNa, Leak
from ..surrogate import Surrogate
from ._base import AbstractNeuron, State, check_step_input, normalize_batch_shape, resolve_dtype

Scheme = Literal["exp_euler", "backward_euler", "neuron", "rk4"]
SCHEMES = ("exp_euler", "backward_euler", "neuron", "rk4")


def _tabulated_kinetics(channels: dict[str, Channel], v, celsius) -> dict[str, dict[str, GateKinetics]]:
    """inf and tau linearly interpolated on a shared table grid, exactly as NMODL's `TABLE`
    (values beyond the grid are clamped to its end points).

    All channels with the same `table` spec are packed into one `(n, 4 * gates)` array of
    `[values | slopes]`, so each step costs a single row gather per neuron (12 separate gathers
    for HH cost ~1.5x the whole step; benchmarks/hh_step_variants.py).
    """
    (lo, hi, n), = {ch.table for ch in channels.values()}
    grid = jnp.linspace(lo, hi, n + 1, dtype=v.dtype)
    names, cols = [], []
    for c, ch in channels.items():
        for g, k in ch.kinetics(grid, celsius).items():
            names.append((c, g))
            cols.extend(k)
    table = jnp.stack(cols, axis=-1)  # (n + 1, 2 * gates): inf, tau per gate
    packed = jnp.concatenate([table[:-1], table[1:] - table[:-1]], axis=-1)
    xi = (v - lo) * (n / (hi - lo))
    i = jnp.clip(jnp.floor(xi), 0, n - 1).astype(jnp.int32)
    theta = jnp.clip(xi - i.astype(v.dtype), 0.0, 1.0)[..., None]  # d/dv flows through theta
    row = packed[i]
    vals = row[..., : len(cols)] + theta * row[..., len(cols):]
    out: dict[str, dict[str, GateKinetics]] = {c: {} for c in channels}
    for k, (c, g) in enumerate(names):
        out[c][g] = GateKinetics(vals[..., 2 * k], vals[..., 2 * k + 1])
    return out


class PointNeuron(AbstractNeuron):
    r"""A single-compartment conductance-based neuron.

    $$C_m \frac{dV}{dt} = I_\text{ext} - \sum_c g_c(x_c)\,(V - E_c), \qquad
      \frac{dx}{dt} = \frac{x_\infty(V) - x}{\tau_x(V)}$$

    Input `x` of `step` is the external current density in uA/cm2 (positive = depolarising);
    the output is a spike (exactly 1.0 on the step where V crosses `spike_threshold` upwards,
    else 0.0) whose gradient is the `surrogate`'s.

    **Arguments:**
    - `channels`: dict name -> `Channel` (names become state keys, e.g. `state["na"]["m"]`).
    - `c_m`: membrane capacitance, uF/cm2.
    - `temperature`: degC; each channel scales its rates by its q10.
    - `scheme`: time discretisation (all first order except `rk4`):
        * `"exp_euler"`: gates by exponential Euler with V at the start of the step; V
          by exponential Euler with the conductances frozen over the step (exact for a linear
          membrane). Unconditionally stable.
        * `"backward_euler"`: NEURON's fixed-step method (`secondorder = 0`): V by linearised
          implicit Euler with the gates of the previous step, then gates by `cnexp` (exponential
          Euler) at the new V — the gates are staggered by dt/2.
        * `"neuron"` (default): `"backward_euler"` plus NEURON's rate tables for channels that
          declare one (`Channel.table`; hh.mod's `TABLE ... FROM -100 TO 100 WITH 200`, linear
          interpolation of inf and tau, which NEURON uses by default). Reproduces NEURON's `hh`
          to ~1e-9 mV in float64.
        * `"rk4"`: classic 4th-order Runge-Kutta on the full ODE, input held over the step.
    - `spike_threshold`: mV, for the spike output.
    - `surrogate`: surrogate gradient of the spike output (slope in 1/mV; the default atan slope
      0.5/mV is wider than the LIF default because an HH spike spans ~100 mV).
    """

    channels: dict[str, Channel]
    c_m: Float[Array, "*n"] = param(1.0, "c_m", "uF/cm2", low="positive")
    temperature: Float[Array, ""] = param(6.3, "temperature", "degC")
    spike_threshold: Float[Array, "*n"] = param(0.0, "spike_threshold", "mV")
    scheme: str = eqx.field(default="neuron", static=True)
    surrogate: Surrogate = Surrogate("atan", 0.5)

    def __check_init__(self):
        if not isinstance(self.channels, dict) or not self.channels:
            raise TypeError("channels must be a non-empty dict of name -> Channel")
        for name, ch in self.channels.items():
            if not isinstance(ch, Channel):
                raise TypeError(f"channels[{name!r}] must be a Channel, got {type(ch).__name__}")
            if name == "v" or not isinstance(name, str):
                raise ValueError(f"channel names must be strings other than 'v', got {name!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {self.scheme!r}")

    # ---- state -------------------------------------------------------------------------------
    def init_state(self, batch_shape, dtype=None, v0: Float[ArrayLike, "*b"] = -65.0) -> State:
        """Resting state: V = `v0` (mV) and every gate at its steady state for `v0`.

        With `scheme="neuron"` the steady state comes from the rate tables, as NEURON's
        `finitialize` does.
        """
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        v = jnp.broadcast_to(jnp.asarray(v0, dtype), shape)
        check_finite(v, "v0")
        return _resting_state(self, v)

    # ---- dynamics ----------------------------------------------------------------------------
    def _kinetics(self, v) -> dict[str, dict[str, GateKinetics]]:
        celsius = self.temperature.astype(v.dtype)
        out, tabulated = {}, {}
        for c, ch in self.channels.items():
            if self.scheme == "neuron" and ch.table is not None:
                tabulated.setdefault(tuple(ch.table), {})[c] = ch
            else:
                out[c] = ch.kinetics(v, celsius)
        for group in tabulated.values():
            out.update(_tabulated_kinetics(group, v, celsius))
        return out

    def _conductances(self, state, dtype):
        """Total conductance G (mS/cm2) and sum g*E (uA/cm2) of all channels."""
        G, GE = 0.0, 0.0
        for c, ch in self.channels.items():
            g = ch.conductance(state[c]).astype(dtype)
            G = G + g
            GE = GE + g * jnp.asarray(ch.e_rev, dtype)
        return G, GE

    def derivatives(self, state: State, x: Float[Array, "*b"]) -> State:
        """Time derivatives of the state (mV/ms and 1/ms) under input `x` (uA/cm2)."""
        v = state["v"]
        i_ion = 0.0
        for c, ch in self.channels.items():
            i_ion = i_ion + ch.current(v, state[c]).astype(v.dtype)
        dv = (x - i_ion) / self.c_m.astype(v.dtype)
        kin = self._kinetics(v)
        return {"v": dv, **{c: {g: (k.inf - state[c][g]) / k.tau for g, k in gk.items()}
                            for c, gk in kin.items()}}

    @staticmethod
    def _gates_exp_euler(state, kin, dt):
        return {c: {g: k.inf + (state[c][g] - k.inf) * jnp.exp(-dt / k.tau) for g, k in gk.items()}
                for c, gk in kin.items()}

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance by `dt` (ms) under current density `x` (uA/cm2); returns `(state, spike)`."""
        v = state["v"]
        dtype = v.dtype
        x = jnp.asarray(x, dtype)
        check_step_input(self, state, x)
        dt = check_dt(dt).astype(dtype)
        c_m = self.c_m.astype(dtype)
        if self.scheme == "rk4":
            f = lambda s: self.derivatives(s, x)  # noqa: E731
            axpy = lambda a, ds, s: jax.tree.map(lambda si, di: si + a * di, s, ds)  # noqa: E731
            k1 = f(state)
            k2 = f(axpy(dt / 2, k1, state))
            k3 = f(axpy(dt / 2, k2, state))
            k4 = f(axpy(dt, k3, state))
            new = jax.tree.map(lambda s, a, b, c, d: s + dt / 6 * (a + 2 * b + 2 * c + d), state, k1, k2, k3, k4)
        else:
            G, GE = self._conductances(state, dtype)
            if self.scheme == "exp_euler":
                z = dt * G / c_m
                v_new = v + dt / c_m * (GE + x - G * v) * one_minus_exp_neg_over_x(z)
                gates = self._gates_exp_euler(state, self._kinetics(v), dt)
            else:  # backward_euler / neuron: implicit V with old gates, then gates at new V
                v_new = (c_m / dt * v + GE + x) / (c_m / dt + G)
                gates = self._gates_exp_euler(state, self._kinetics(v_new), dt)
            new = {"v": v_new, **gates}
        th = self.spike_threshold.astype(dtype)
        spike = self.surrogate(new["v"] - th) * (1.0 - self.surrogate(v - th))
        return new, spike


@eqx.filter_jit
def _resting_state(model: PointNeuron, v) -> State:
    # One compiled call instead of dozens of eager ops (matters outside jit).
    kin = model._kinetics(v)
    return {"v": v, **{c: {g: k.inf for g, k in gk.items()} for c, gk in kin.items()}}


def HH(
    g_na: Float[ArrayLike, "*n"] = 120.0,
    g_k: Float[ArrayLike, "*n"] = 36.0,
    g_l: Float[ArrayLike, "*n"] = 0.3,
    e_na: Float[ArrayLike, "*n"] = 50.0,
    e_k: Float[ArrayLike, "*n"] = -77.0,
    e_l: Float[ArrayLike, "*n"] = -54.387,
    c_m: Float[ArrayLike, "*n"] = 1.0,
    temperature: float = 6.3,
    scheme: Scheme = "neuron",
    **kwargs,
) -> PointNeuron:
    """The Hodgkin-Huxley (1952) squid-axon neuron as a `PointNeuron` of `HHNa`, `HHK`, `Leak`.

    Defaults are HH 1952 in NEURON's convention (rest -65 mV): conductances in mS/cm2
    (120, 36, 0.3), reversal potentials in mV (50, -77, -54.387), `c_m` in uF/cm2,
    `temperature` in degC (q10 = 3 relative to 6.3 degC). Parameters may be arrays, one value
    per neuron. `scheme` and other keyword arguments are passed to `PointNeuron`.
    The state is `{"v", "na": {"m", "h"}, "k": {"n"}, "leak": {}}`.
    """
    return PointNeuron(
        channels={"na": HHNa(g_na, e_na), "k": HHK(g_k, e_k), "leak": Leak(g_l, e_l)},
        c_m=c_m, temperature=temperature, scheme=scheme, **kwargs,
    )
