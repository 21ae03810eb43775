"""`CrankNicolson`: NEURON's `secondorder = 2`."""

from __future__ import annotations

from typing import ClassVar

from ._base import AbstractImplicitScheme


class CrankNicolson(AbstractImplicitScheme):
    r"""NEURON's `secondorder = 2` (shorthand `"crank_nicolson"`): the implicit step over dt/2
    (`C/dt` doubled) and an extrapolation to the end of the step,

    $$(2 C/dt + G)\,dV = \sum_c g_c E_c + I - G V_n, \qquad V_{n+1} = V_n + 2\,dV,$$

    then the gates by `cnexp` at the new V with NEURON's rate tables, as `NeuronTables`. Second
    order in V for the cable (the gates staggered by dt/2); not L-stable (fast modes oscillate
    instead of decaying when dt is large). Applies to `PointNeuron` and `Cell`, where it reproduces
    NEURON's ball-and-stick to < 1e-6 mV (tests/test_cable_neuron.py).
    """

    name: ClassVar[str] = "crank_nicolson"
    tables: ClassVar[bool] = True
    cable_factor: ClassVar[float] = 2.0
