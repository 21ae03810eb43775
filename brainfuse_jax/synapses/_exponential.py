"""Exponential synapses: NEURON's `ExpSyn` (one exponential) and `Exp2Syn` (difference of two)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._kinetics import exp_decay
from ._base import Loc, Synapse, _check_loc, _event_times, _weights


class ExpSyn(Synapse):
    """NEURON's `ExpSyn`: `g' = -g / tau`, an event adds its weight to `g`; `i = g (V - e)`.

    **Arguments:** `loc`, `tau` (ms, > 0, default 0.1 as NEURON), `e` (mV, default 0),
    `event_times` (ms, 1-D; `+inf` pads), `weights` (uS, scalar or one per event).
    State: `{"g" (uS), "i" (nA)}`.
    """

    loc: Loc = eqx.field(static=True, converter=lambda x: _check_loc(x, "ExpSyn"))
    tau: Float[Array, ""] = param(0.1, "ExpSyn.tau", "ms", low="positive")
    e: Float[Array, ""] = param(0.0, "ExpSyn.e", "mV")
    event_times: Float[Array, " K"] = eqx.field(default=(), converter=_event_times)
    weights: Float[Array, "*K"] = eqx.field(default=0.0, converter=_weights)

    def init_state(self, dtype):
        return {"g": jnp.zeros((), dtype), "i": jnp.zeros((), dtype)}

    def receive(self, state, w):
        return {**state, "g": state["g"] + w}

    def conductance(self, state):
        return state["g"]

    def decay(self, state, dt):
        return {**state, "g": exp_decay(state["g"], dt, self.tau.astype(state["g"].dtype))}


class Exp2Syn(Synapse):
    """NEURON's `Exp2Syn`: `g = B - A`, `A' = -A / tau1`, `B' = -B / tau2`; an event adds
    `weight * factor` to both, with `factor` normalising the peak of `g` to the weight.
    As NEURON, `tau1 / tau2` is clipped to [1e-9, 0.9999].

    **Arguments:** `loc`, `tau1` (rise, ms, > 0, default 0.1), `tau2` (decay, ms, > 0, default
    10), `e` (mV, default 0), `event_times` (ms), `weights` (uS).
    State: `{"A", "B" (uS), "i" (nA)}`.
    """

    loc: Loc = eqx.field(static=True, converter=lambda x: _check_loc(x, "Exp2Syn"))
    tau1: Float[Array, ""] = param(0.1, "Exp2Syn.tau1", "ms", low="positive")
    tau2: Float[Array, ""] = param(10.0, "Exp2Syn.tau2", "ms", low="positive")
    e: Float[Array, ""] = param(0.0, "Exp2Syn.e", "mV")
    event_times: Float[Array, " K"] = eqx.field(default=(), converter=_event_times)
    weights: Float[Array, "*K"] = eqx.field(default=0.0, converter=_weights)

    def _taus(self, dtype):
        tau2 = self.tau2.astype(dtype)
        tau1 = jnp.clip(self.tau1.astype(dtype), 1e-9 * tau2, 0.9999 * tau2)
        return tau1, tau2

    def factor(self, dtype):
        """1 / peak of `exp(-t/tau2) - exp(-t/tau1)` (NEURON's `factor`)."""
        tau1, tau2 = self._taus(dtype)
        tp = tau1 * tau2 / (tau2 - tau1) * jnp.log(tau2 / tau1)
        return 1.0 / (jnp.exp(-tp / tau2) - jnp.exp(-tp / tau1))

    def init_state(self, dtype):
        z = jnp.zeros((), dtype)
        return {"A": z, "B": z, "i": z}

    def receive(self, state, w):
        wf = w * self.factor(w.dtype)
        return {**state, "A": state["A"] + wf, "B": state["B"] + wf}

    def conductance(self, state):
        return state["B"] - state["A"]

    def decay(self, state, dt):
        tau1, tau2 = self._taus(state["A"].dtype)
        return {**state, "A": exp_decay(state["A"], dt, tau1), "B": exp_decay(state["B"], dt, tau2)}
