"""Numerical schemes as objects, shared by `PointNeuron` and `Cell`, and a diffrax bridge.

| object | shorthand | `PointNeuron` | `Cell` | order |
|---|---|---|---|---|
| `NeuronTables()` | `"neuron"` (default) | yes | yes | 1 |
| `BackwardEuler()` | `"backward_euler"` | yes | yes | 1 |
| `CrankNicolson()` | `"crank_nicolson"` | yes | yes | 2 in V (cable) |
| `ExpEuler()` | `"exp_euler"` | yes | no | 1 |
| `RK4()` | `"rk4"` | yes | no | 4 |

`PointNeuron(scheme=bf.integrate.RK4())` and `PointNeuron(scheme="rk4")` build the same model.
A new scheme is one file: a subclass of `AbstractScheme` (or `AbstractImplicitScheme`, to be
accepted by `Cell`). `reference_solution` / `to_diffrax_term` solve a `PointNeuron` with diffrax
for reference trajectories. See docs/numerics.md.
"""

from ._backward_euler import BackwardEuler as BackwardEuler
from ._base import AbstractImplicitScheme as AbstractImplicitScheme
from ._base import AbstractScheme as AbstractScheme
from ._crank_nicolson import CrankNicolson as CrankNicolson
from ._diffrax import reference_solution as reference_solution
from ._diffrax import to_diffrax_term as to_diffrax_term
from ._exp_euler import ExpEuler as ExpEuler
from ._neuron_tables import NeuronTables as NeuronTables
from ._rk4 import RK4 as RK4
from ._shorthands import as_scheme as as_scheme
