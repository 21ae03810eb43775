"""Scheme objects from their shorthand strings, and the schemes each model accepts."""

from __future__ import annotations

from ._backward_euler import BackwardEuler
from ._base import AbstractImplicitScheme, AbstractScheme
from ._crank_nicolson import CrankNicolson
from ._exp_euler import ExpEuler
from ._neuron_tables import NeuronTables
from ._rk4 import RK4

# A new scheme: its file, and its class here (its `name` becomes the shorthand).
SHORTHANDS: dict[str, type[AbstractScheme]] = {
    cls.name: cls for cls in (NeuronTables, BackwardEuler, ExpEuler, RK4, CrankNicolson)}
POINT_SCHEMES = tuple(SHORTHANDS)  # ("neuron", "backward_euler", "exp_euler", "rk4", "crank_nicolson")
CELL_SCHEMES = tuple(n for n, cls in SHORTHANDS.items() if issubclass(cls, AbstractImplicitScheme))


def as_scheme(scheme: str | AbstractScheme, name: str = "scheme") -> AbstractScheme:
    """The scheme object for `scheme`: an `AbstractScheme` is returned as is, a shorthand string
    (`"neuron"`, `"backward_euler"`, `"exp_euler"`, `"rk4"`, `"crank_nicolson"`) becomes its
    object. Anything else raises `ValueError` (an unknown string) or `TypeError` (another type),
    naming `name` and listing the valid choices."""
    if isinstance(scheme, AbstractScheme):
        return scheme
    if isinstance(scheme, str):
        if scheme not in SHORTHANDS:
            raise ValueError(f"{name} must be one of {POINT_SCHEMES} or a scheme object of "
                             f"brainfuse_jax.integrate ({_objects(POINT_SCHEMES)}), got {scheme!r}")
        return SHORTHANDS[scheme]()
    if isinstance(scheme, type) and issubclass(scheme, AbstractScheme):
        raise TypeError(f"{name} must be a scheme object, not a class: pass {scheme.__name__}()")
    raise TypeError(f"{name} must be one of {POINT_SCHEMES} or a scheme object of brainfuse_jax.integrate "
                    f"({_objects(POINT_SCHEMES)}), got {type(scheme).__name__} {scheme!r}")


def as_cell_scheme(scheme: str | AbstractScheme, name: str = "scheme") -> AbstractImplicitScheme:
    """`as_scheme` restricted to the schemes a `Cell` accepts (`AbstractImplicitScheme`: its cable
    is solved implicitly); `ValueError` (`TypeError` for a non-scheme type) listing them otherwise."""
    valid = f"one of {CELL_SCHEMES} or a scheme object ({_objects(CELL_SCHEMES)})"
    if not isinstance(scheme, (str, AbstractScheme)):
        raise TypeError(f"{name} must be {valid}, got {type(scheme).__name__} {scheme!r}")
    obj = SHORTHANDS[scheme]() if isinstance(scheme, str) and scheme in SHORTHANDS else scheme
    if not isinstance(obj, AbstractImplicitScheme):
        raise ValueError(f"{name} must be {valid} for a Cell, whose cable is integrated implicitly "
                         f"(NEURON's secondorder 0 or 2); got {scheme!r}")
    return obj


def _objects(names) -> str:
    return ", ".join(f"{SHORTHANDS[n].__name__}()" for n in names)
