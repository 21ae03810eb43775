"""An event-driven alpha synapse (`AlphaSyn`)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._kinetics import alpha_decay
from ._base import Loc, Synapse, _check_loc, _event_times, _weights


class AlphaSyn(Synapse):
    """An event-driven alpha synapse: an event of weight `w` at `t_e` adds
    `g(t) = w (t - t_e)/tau exp(1 - (t - t_e)/tau)` (peak `w` uS at `tau` ms), `i = g (V - e)`.

    Integrated exactly: `a' = -a / tau`, `g' = (e_1 a - g) / tau` (`e_1 = exp(1)`), an event adds
    `w` to `a`. On the step grid it equals NEURON's (non-event) `AlphaSynapse` with
    `onset = t_e + dt/2` (which NEURON evaluates at the step midpoints).

    **Arguments:** `loc`, `tau` (ms, > 0, default 0.1), `e` (mV, default 0), `event_times`
    (ms), `weights` (uS). State: `{"a", "g" (uS), "i" (nA)}`.
    """

    loc: Loc = eqx.field(static=True, converter=lambda x: _check_loc(x, "AlphaSyn"))
    tau: Float[Array, ""] = param(0.1, "AlphaSyn.tau", "ms", low="positive")
    e: Float[Array, ""] = param(0.0, "AlphaSyn.e", "mV")
    event_times: Float[Array, " K"] = eqx.field(default=(), converter=_event_times)
    weights: Float[Array, "*K"] = eqx.field(default=0.0, converter=_weights)

    def init_state(self, dtype):
        z = jnp.zeros((), dtype)
        return {"a": z, "g": z, "i": z}

    def receive(self, state, w):
        return {**state, "a": state["a"] + w}

    def conductance(self, state):
        return state["g"]

    def decay(self, state, dt):
        a, g = alpha_decay(state["a"], state["g"], dt, self.tau.astype(state["a"].dtype))
        return {**state, "a": a, "g": g}
