"""`RK4`: the classic 4th-order Runge-Kutta method on the full ODE."""

from __future__ import annotations

from typing import ClassVar

import jax

from ._base import AbstractScheme, State


class RK4(AbstractScheme):
    """Classic 4th-order Runge-Kutta (shorthand `"rk4"`) on the full ODE of V, the gates and
    [Ca]i (`PointNeuron.derivatives`), input held over the step. Fourth order; explicit, so stable
    only for dt below ~2.8 / (largest rate), and instantaneous gates enter as inf(V) at every stage
    (their state is set to inf at the new V after the step). `PointNeuron` only.
    """

    name: ClassVar[str] = "rk4"
    tables: ClassVar[bool] = False

    def step(self, neuron, state: State, x, dt) -> State:
        f = lambda s: neuron._derivatives(s, x)[0]  # noqa: E731
        axpy = lambda a, ds, s: jax.tree.map(lambda si, di: si + a * di, s, ds)  # noqa: E731
        k1, kin = neuron._derivatives(state, x)
        k2 = f(axpy(dt / 2, k1, state))
        k3 = f(axpy(dt / 2, k2, state))
        k4 = f(axpy(dt, k3, state))
        new = jax.tree.map(lambda s, a, b, c, d: s + dt / 6 * (a + 2 * b + 2 * c + d), state, k1, k2, k3, k4)
        return neuron._instant_to_inf(new, kin, new["v"], new.get("cai"))
