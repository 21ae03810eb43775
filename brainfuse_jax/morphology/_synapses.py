"""Point processes of a `Cell`: current clamps and event-driven synapses (NEURON's `IClamp`,
`ExpSyn`, `Exp2Syn`, and an event-driven alpha synapse).

Every point process sits at one location `loc` of the cell: a node index, or `(section, x)` as
NEURON's `sec(x)`. In each step of `dt` from `t_n = n dt` it contributes a current that is linear
in the membrane potential of its node, `i = g V - g_e` (nA, positive outward, NEURON's sign for
`NONSPECIFIC_CURRENT`; a clamp has `g = 0`, `g_e = amp`), which the implicit cable step treats
exactly. Its own state (e.g. a synaptic conductance) is advanced after the voltage solve, as
NEURON's `nrn_state` does.

**Events** follow NEURON's fixed step with `NetCon` delay 0: an event at time `t_e` (ms) is
delivered at the start of the first step whose midpoint `t_n + dt/2` is >= `t_e` (NEURON delivers
the queue up to `t + dt/2` before each step), so it takes effect on the step starting at `t_e`
when `t_e` is on the grid: `NET_RECEIVE` adds the weight, the currents of that step use the new
conductance, and the decay (`cnexp`, exact for these linear kinetics) follows the voltage update.
Event times are padded with `+inf` for "no event"; weights are in uS.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._validate import as_float_array, check_finite, check_nonnegative, param

Loc = Any  # int node index, or (section name or index, x)


def _check_loc(loc, name):
    if isinstance(loc, (bool, np.bool_)):
        raise TypeError(f"{name}.loc must be a node index or (section, x), got {loc!r}")
    if isinstance(loc, (int, np.integer)):
        return int(loc)
    if isinstance(loc, tuple) and len(loc) == 2 and isinstance(loc[0], (str, int, np.integer)):
        try:
            x = float(loc[1])
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}.loc x must be a number in [0, 1], got {loc[1]!r}") from err
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{name}.loc x must be in [0, 1], got {x}")
        sec = loc[0] if isinstance(loc[0], str) else int(loc[0])
        return (sec, x)
    raise TypeError(f"{name}.loc must be a node index (int) or a (section, x) tuple, got {loc!r}")


def _event_times(x):
    arr = as_float_array(x, "event_times")
    if arr.ndim > 1:
        raise ValueError(f"event_times must be a 1-D array of times in ms, got shape {arr.shape}")
    arr = jnp.atleast_1d(arr)
    # +inf pads "no event"; NaN (which fails `>= 0` too) and negative times are errors.
    return check_nonnegative(arr, "event_times", "ms (NaN not allowed; +inf pads)")


def _weights(x):
    arr = as_float_array(x, "weights")
    if arr.ndim > 1:
        raise ValueError(f"weights must be a scalar or a 1-D array (uS), got shape {arr.shape}")
    return check_finite(arr, "weights")


class PointProcess(eqx.Module):
    """A mechanism at one location of a `Cell` (abstract).

    Concrete processes define `loc` (static: node index or `(section, x)`) and implement
    `init_state`, `begin_step` and `end_step`. All currents in nA, conductances in uS.
    """

    loc: eqx.AbstractVar[Loc]

    @abc.abstractmethod
    def init_state(self, dtype) -> dict[str, Array]:
        """The process's state for one cell (scalars), e.g. `{"g": 0.0, "i": 0.0}`."""

    @abc.abstractmethod
    def begin_step(self, state, step, dt) -> tuple[dict[str, Array], Array, Array]:
        """Deliver this step's events; return `(state, g, g_e)`: the current over the step is
        `g V - g_e` (nA, outward) with `g` in uS and `g_e` in nA."""

    @abc.abstractmethod
    def end_step(self, state, v_old, v_new, g, g_e, dt) -> dict[str, Array]:
        """Advance the state over the step once the node's voltage went from `v_old` to `v_new`
        (mV); `g`, `g_e` are what `begin_step` returned."""


class IClamp(PointProcess):
    """NEURON's `IClamp`: `amp` (nA, positive = depolarising) while `delay <= t < delay + dur`,
    with `t` the step's midpoint `t_n + dt/2` (NEURON evaluates point currents there).

    **Arguments:** `loc` (node index or `(section, x)`), `delay` (ms), `dur` (ms, >= 0),
    `amp` (nA). Each may also be a 1-D array (broadcast together): a train of pulses in one
    process, injecting the sum of the pulses that are on (a step protocol of K pulses then costs
    one process instead of K, whose states the time loop would carry separately). State:
    `{"i": injected current (nA)}`, NEURON's `IClamp.i`.
    """

    loc: Loc = eqx.field(static=True, converter=lambda x: _check_loc(x, "IClamp"))
    delay: Float[Array, ""] = param(0.0, "IClamp.delay", "ms")
    dur: Float[Array, ""] = param(0.0, "IClamp.dur", "ms", low="nonnegative")
    amp: Float[Array, ""] = param(0.0, "IClamp.amp", "nA")

    def __check_init__(self):
        shapes = [jnp.shape(a) for a in (self.delay, self.dur, self.amp)]
        if any(len(sh) > 1 for sh in shapes) or len({sh[0] for sh in shapes if sh} - {1}) > 1:
            raise ValueError("IClamp delay, dur and amp must be scalars or 1-D arrays of one length (a pulse "
                             f"train); got shapes {shapes}")

    def init_state(self, dtype):
        return {"i": jnp.zeros((), dtype)}

    def begin_step(self, state, step, dt):
        dtype = state["i"].dtype
        t = (step.astype(dtype) + 0.5) * dt
        delay = self.delay.astype(dtype)
        on = (t >= delay) & (t < delay + self.dur.astype(dtype))
        amp = jnp.sum(jnp.where(on, self.amp.astype(dtype), jnp.zeros((), dtype)))
        return {"i": amp}, jnp.zeros((), dtype), amp

    def end_step(self, state, v_old, v_new, g, g_e, dt):
        return state


class Synapse(PointProcess):
    """An event-driven conductance synapse (abstract): `i = g (V - e)` (nA), `g` in uS.

    Subclasses define `receive` (what an event of weight `w` uS does), `conductance` and `decay`.
    The state always holds `"i"`: the synaptic current (nA, negative = inward) that NEURON
    records, `g (V_n - e)` with the conductance used during the step and the voltage at its start.
    """

    loc: eqx.AbstractVar[Loc]
    e: eqx.AbstractVar[Float[Array, ""]]
    event_times: eqx.AbstractVar[Float[Array, " K"]]
    weights: eqx.AbstractVar[Float[Array, "*K"]]

    def __check_init__(self):
        w = jnp.shape(self.weights)
        if w not in ((), jnp.shape(self.event_times)):
            raise ValueError(f"{type(self).__name__}.weights must be a scalar or have the shape of "
                             f"event_times {jnp.shape(self.event_times)}, got {w}")

    @abc.abstractmethod
    def receive(self, state, w) -> dict[str, Array]:
        """NET_RECEIVE: the state after events of total weight `w` (uS)."""

    @abc.abstractmethod
    def conductance(self, state) -> Array:
        """Synaptic conductance (uS)."""

    @abc.abstractmethod
    def decay(self, state, dt) -> dict[str, Array]:
        """The kinetics over `dt` ms (exact for these linear ODEs, as NEURON's `cnexp`)."""

    def delivered_weight(self, step, dt, dtype):
        """Sum of the weights of the events delivered at the start of step `step` (uS)."""
        times = self.event_times.astype(dtype)
        w = jnp.broadcast_to(self.weights.astype(dtype), times.shape)
        # first step n with n dt + dt/2 >= t_e (NEURON: deliver events up to t + dt/2)
        n_e = jnp.ceil(times / dt - 0.5)
        hit = n_e == step.astype(dtype)
        return jnp.sum(jnp.where(hit, w, jnp.zeros((), dtype)))

    def begin_step(self, state, step, dt):
        dtype = state["i"].dtype
        state = self.receive(state, self.delivered_weight(step, dt, dtype))
        g = self.conductance(state)
        return state, g, g * self.e.astype(dtype)

    def end_step(self, state, v_old, v_new, g, g_e, dt):
        state = self.decay(state, dt)
        return {**state, "i": g * v_old - g_e}


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
        return {**state, "g": state["g"] * jnp.exp(-dt / self.tau.astype(state["g"].dtype))}


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
        return {**state, "A": state["A"] * jnp.exp(-dt / tau1), "B": state["B"] * jnp.exp(-dt / tau2)}


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
        tau = self.tau.astype(state["a"].dtype)
        h = jnp.exp(-dt / tau)
        g = h * (state["g"] + np.e * state["a"] * dt / tau)
        return {**state, "a": h * state["a"], "g": g}
