"""`ExpEuler`: exponential Euler for V and the gates."""

from __future__ import annotations

from typing import ClassVar

from .._math import one_minus_exp_neg_over_x, pade_decay, reciprocal
from ._base import AbstractScheme, State


class ExpEuler(AbstractScheme):
    r"""Exponential Euler (shorthand `"exp_euler"`): the gates by `cnexp` with V at the start of
    the step; V by exponential Euler with the conductances frozen over the step,

    $$V_{n+1} = V_n + \frac{dt}{C_m}\,\bigl(\textstyle\sum_c g_c E_c + I - G V_n\bigr)\,
      \varphi_1\!\left(\frac{dt\,G}{C_m}\right), \qquad \varphi_1(z) = \frac{1 - e^{-z}}{z},$$

    exact for a linear membrane; `decay="pade"` on the neuron evaluates phi_1 as s/q of the [2/3]
    Pade approximant (`brainfuse_jax._math.pade_decay`). The Ca pool is advanced exactly with
    I_Ca held; instantaneous gates follow the new V. First order, unconditionally stable, and the
    fastest scheme (no rate tables, no division by the implicit denominator). `PointNeuron` only:
    a `Cell`'s axial coupling needs the implicit solve.
    """

    name: ClassVar[str] = "exp_euler"
    tables: ClassVar[bool] = False

    def step(self, neuron, state: State, x, dt) -> State:
        v = state["v"]
        c_m = neuron.c_m.astype(v.dtype)
        cai = state.get("cai")
        G, GE, i_ca = neuron._conductances(state)
        dt_c = dt / c_m
        z = dt_c * G
        if neuron.decay == "pade":  # (1 - exp(-z)) / z = s / q
            _, q, s = pade_decay(z)
            v_new = v + dt_c * (GE + x - G * v) * s * reciprocal(q)
        else:
            v_new = v + dt_c * (GE + x - G * v) * one_minus_exp_neg_over_x(z)
        cai_new = None if cai is None else neuron.calcium.step_exponential(cai, i_ca, dt)
        kin = neuron._kinetics(v, cai)
        gates = neuron._instant_to_inf(neuron._advance_gates(state, kin, dt), kin, v_new, cai_new)
        return {"v": v_new, **({} if cai_new is None else {"cai": cai_new}), **gates}
