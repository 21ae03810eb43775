"""`NeuronTables`: NEURON's fixed step with NEURON's rate tables (the default scheme)."""

from __future__ import annotations

from typing import ClassVar

from ._base import AbstractImplicitScheme


class NeuronTables(AbstractImplicitScheme):
    """`BackwardEuler` plus NEURON's rate tables (shorthand `"neuron"`, the default of
    `PointNeuron` and `Cell`): channels that declare a table (`Channel.table`; hh.mod's
    `TABLE ... FROM -100 TO 100 WITH 200`) get inf and tau by linear interpolation on it, as
    NEURON does by default (`usetable = 1`). Reproduces NEURON's `hh` to ~1e-9 mV in float64, and
    NEURON's cable (`secondorder = 0`) to ~1e-10 mV. Applies to `PointNeuron` and `Cell`.
    """

    name: ClassVar[str] = "neuron"
    tables: ClassVar[bool] = True
    cable_factor: ClassVar[float] = 1.0
