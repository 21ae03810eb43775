"""`BackwardEuler`: NEURON's fixed step (`secondorder = 0`) with exact rate functions."""

from __future__ import annotations

from typing import ClassVar

from ._base import AbstractImplicitScheme


class BackwardEuler(AbstractImplicitScheme):
    r"""NEURON's fixed-step method (`secondorder = 0`), rates evaluated exactly (shorthand
    `"backward_euler"`): V by linearised implicit Euler with the gates of the previous step,

    $$V_{n+1} = \frac{C_m V_n / dt + \sum_c g_c E_c + I}{C_m / dt + \sum_c g_c},$$

    then the gates by `cnexp` (exponential Euler) at the new V, so they are staggered by dt/2.
    First order, unconditionally stable. Applies to `PointNeuron` and `Cell` (with the cable in
    the implicit system).
    """

    name: ClassVar[str] = "backward_euler"
    tables: ClassVar[bool] = False
    cable_factor: ClassVar[float] = 1.0
