"""Synapses of network projections: what a delivered spike does to its target neuron.

`Delta` and `Port` hand the summed weights of a step's spikes to an event input (receptor port) of
the target model, which integrates it itself (a membrane jump for `Delta`, e.g. NEST's
`iaf_psc_delta`; a current jump into the model's own synaptic current for `Port("ex")` of
`IAFPscExp`). `CurrExp`, `CurrAlpha` and `CondExp` keep a synaptic state per target neuron in the
network and add a current to the model's input, so any model receives them (conductance-based
ones need a membrane potential in mV). Their kinetics are the cell synapses' (`ExpSyn`,
`AlphaSyn`), integrated exactly: spikes arriving in a step are received at its start, the current
of the step is the one after receipt (for `CondExp`, `g (e - v)` with the potential at the step's
start) and the decay follows, as NEURON's `NET_RECEIVE` / `nrn_state` order.

Weights are in the units of what they change: `Delta` the model's membrane (mV for
`IAFPscDelta`, units of threshold for `LIF`), `Port` the port's (pA for `IAFPscExp`), `CurrExp` /
`CurrAlpha` the model's input current (pA for IAF models, uA/cm2 for `PointNeuron`), `CondExp` a
conductance in the matching units (nS for IAF models, mS/cm2 for `PointNeuron`), >= 0.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._kinetics import alpha_decay, exp_decay


class NetworkSynapse(eqx.Module):
    """A synapse model of a network projection (abstract). `port` is the target model's event
    input it feeds (`None`: the synapse keeps its own state and adds a current)."""

    @property
    def port(self) -> str | None:
        return None

    #: whether the weights must be >= 0
    nonnegative_weights = False
    #: whether the target model's membrane potential must be in mV
    needs_voltage = False

    def init_state(self, shape, dtype) -> dict[str, Array]:
        return {}

    def receive(self, state, w):
        """State after events of summed weight `w` (one value per target neuron)."""
        return state

    def current(self, state, v):
        """Current into the target model this step (its input units), given its potential `v`."""
        raise NotImplementedError

    def decay(self, state, dt):
        return state


class Delta(NetworkSynapse):
    """An instantaneous jump of the target's membrane by the weight (the model's `"delta"` port:
    `IAFPscDelta` in mV, `LIF`/`ALIF` in units of threshold)."""

    @property
    def port(self) -> str:
        return "delta"


class Port(NetworkSynapse):
    """Deliver the weights to the target model's event input `name` (one of `model.receptors`),
    e.g. `Port("ex")` / `Port("in")` of `IAFPscExp` (pA)."""

    name: str = eqx.field(static=True)

    def __check_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Port name must be a non-empty string, got {self.name!r}")

    @property
    def port(self) -> str:
        return self.name


class CurrExp(NetworkSynapse):
    """Current-based exponential synapse: `I' = -I / tau`, a spike adds its weight to `I` (the
    model's input units); `I` is added to the target's input. `tau` in ms (> 0, default 5)."""

    tau: Float[Array, ""] = param(5.0, "CurrExp.tau", "ms", low="positive")

    def init_state(self, shape, dtype):
        return {"i": jnp.zeros(shape, dtype)}

    def receive(self, state, w):
        return {"i": state["i"] + w}

    def current(self, state, v):
        return state["i"]

    def decay(self, state, dt):
        return {"i": exp_decay(state["i"], dt, self.tau.astype(state["i"].dtype))}


class CurrAlpha(NetworkSynapse):
    """Current-based alpha synapse: a spike of weight `w` adds `w (t/tau) exp(1 - t/tau)` to the
    target's input (peak `w` at `t = tau`; `AlphaSyn`'s kinetics). `tau` in ms (> 0, default 2)."""

    tau: Float[Array, ""] = param(2.0, "CurrAlpha.tau", "ms", low="positive")

    def init_state(self, shape, dtype):
        return {"a": jnp.zeros(shape, dtype), "i": jnp.zeros(shape, dtype)}

    def receive(self, state, w):
        return {**state, "a": state["a"] + w}

    def current(self, state, v):
        return state["i"]

    def decay(self, state, dt):
        a, i = alpha_decay(state["a"], state["i"], dt, self.tau.astype(state["a"].dtype))
        return {"a": a, "i": i}


class CondExp(NetworkSynapse):
    """Conductance-based exponential synapse (`ExpSyn`'s kinetics): `g' = -g / tau`, a spike adds
    its weight (>= 0) to `g`; the current `g (e - v)` enters the target (inward positive, the
    sign of an input current). `tau` ms (> 0, default 5), `e` reversal potential mV (default 0)."""

    tau: Float[Array, ""] = param(5.0, "CondExp.tau", "ms", low="positive")
    e: Float[Array, ""] = param(0.0, "CondExp.e", "mV")

    nonnegative_weights = True
    needs_voltage = True

    def init_state(self, shape, dtype):
        return {"g": jnp.zeros(shape, dtype)}

    def receive(self, state, w):
        return {"g": state["g"] + w}

    def current(self, state, v):
        return state["g"] * (self.e.astype(v.dtype) - v)

    def decay(self, state, dt):
        return {"g": exp_decay(state["g"], dt, self.tau.astype(state["g"].dtype))}
