"""NEURON's `IClamp`: a current pulse (or a train of pulses) at one location of a `Cell`."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._base import Loc, PointProcess, _check_loc


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
