"""The scheme contract: what a time discretisation of a conductance-based membrane provides."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx

State = dict[str, Any]


class AbstractScheme(eqx.Module):
    """A time discretisation of a conductance-based membrane (abstract), passed as
    `PointNeuron(scheme=...)` or `Cell(scheme=...)`; each model also accepts the scheme's
    shorthand string `name` (e.g. `"rk4"` for `RK4()`).

    A concrete scheme sets the class variables below and implements `step`. Schemes hold no
    parameters: two instances of one class are equal, so a model built with the object and one
    built with its shorthand are the same pytree (and share compilations).

    **Class variables:**
    - `name`: the shorthand string.
    - `tables`: whether channels that declare a rate table (`Channel.table`, NMODL's `TABLE`) are
      interpolated on it instead of evaluated exactly.

    `step(neuron, state, x, dt)` advances a `PointNeuron`'s state by `dt` (ms) under the current
    density `x` (uA/cm2), both already checked and cast to the state's dtype, and returns the new
    state (the neuron computes the spike output from the old and new V). It may use these methods
    of the neuron: `_kinetics(v, cai, only)` (inf/tau per gate, with this scheme's `tables`),
    `_advance_gates(state, kin, dt)` (`cnexp` with the neuron's `decay`), `_conductances(state)`
    (total conductance G in mS/cm2, G*E in uA/cm2 and the Ca current), `_derivatives(state, x)`
    (the vector field and the kinetics at `state`), `_instant_to_inf(gates, kin, v, cai)`
    (instantaneous gates to inf at `v`), and the fields `c_m`, `calcium` and `decay`.
    """

    name: eqx.AbstractClassVar[str]
    tables: ClassVar[bool] = False

    @abc.abstractmethod
    def step(self, neuron, state: State, x, dt) -> State:
        """One step of `dt` ms of a `PointNeuron` (see the class docstring)."""


class AbstractImplicitScheme(AbstractScheme):
    """NEURON's fixed-step family (abstract): V by a linearised implicit step with the gates (and
    the Ca pool's E_Ca) of the previous step, then the Ca pool by backward Euler, then the gates by
    `cnexp` at the new V (staggered by dt/2, as NEURON's `fadvance`).

    With `k = cable_factor` the voltage update solves `(k C/dt + G) dV = G E + I - G V` and sets
    `V += k dV`: `k = 1` is backward Euler (`secondorder = 0`), `k = 2` Crank-Nicolson
    (`secondorder = 2`). These are the schemes a `Cell` accepts: its cable (the axial coupling,
    stiff for short compartments) is solved implicitly in the same system (`hines_solve`).
    """

    cable_factor: eqx.AbstractClassVar[float]

    def step(self, neuron, state: State, x, dt) -> State:
        v = state["v"]
        c_m = neuron.c_m.astype(v.dtype)
        cai = state.get("cai")
        G, GE, i_ca = neuron._conductances(state)
        k = self.cable_factor
        if k == 1.0:
            v_new = (c_m / dt * v + GE + x) / (c_m / dt + G)
        else:
            v_new = v + k * (GE + x - G * v) / (k * c_m / dt + G)
        cai_new = None if cai is None else neuron.calcium.step_implicit(cai, i_ca, dt)
        gates = neuron._advance_gates(state, neuron._kinetics(v_new, cai_new), dt)
        return {"v": v_new, **({} if cai_new is None else {"cai": cai_new}), **gates}
