"""The point-process contract (`PointProcess`) and event-driven conductance synapses
(`Synapse`), which `IClamp`, `ExpSyn`, `Exp2Syn` and `AlphaSyn` implement.

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

from .._validate import as_float_array, check_finite, check_nonnegative

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


