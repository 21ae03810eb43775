"""The Hodgkin-Huxley (1952) squid-axon channels, in NEURON's `hh.mod` form (rest at -65 mV).

Hodgkin, A. L. & Huxley, A. F. (1952). A quantitative description of membrane current and its
application to conduction and excitation in nerve. J. Physiol. 117, 500-544.
Rates in 1/ms, v in mV, q10 = 3 relative to 6.3 degC.

The six rates need only two exponentials: exp(-(v + 65)/18) for beta_m and y = exp(-(v + 65)/80),
whose powers give the others (y^4 = exp(-(v + 65)/20), y^8 = exp(-(v + 65)/10), times constants).
`HHNa` and `HHK` compute y the same way, so XLA evaluates it once per step (common-subexpression
elimination; `computed_once` keeps XLA from turning y^8 back into exp(8a)); an HH step costs 2
`exp` for its rates instead of 6 (tests/test_pade_decay.py counts them in the compiled step).
In float32 y^8 carries ~8x the rounding error of a direct exp (5e-7 relative); near the 0/0
points `vtrap` uses its series instead.
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._math import computed_once, reciprocal, vtrap
from .._validate import param
from ._base import AlphaBeta, Channel


def _powers(v):
    """(y, y^4, y^8) with y = exp(-(v + 65)/80)."""
    y = computed_once(jnp.exp(-(v + 65.0) / 80.0))
    y2 = y * y
    y4 = y2 * y2
    return y, y4, y4 * y4


_E1, _E25, _E3 = math.exp(1.0), math.exp(2.5), math.exp(3.0)


class HHNa(Channel):
    """Fast sodium current `gbar m^3 h (V - e_rev)`.

    **Arguments:** `gbar` (mS/cm2, default 120), `e_rev` (mV, default 50).
    """

    gbar: Float[Array, "*n"] = param(120.0, "HHNa.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(50.0, "HHNa.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"m": 3, "h": 1}
    table: ClassVar[tuple[float, float, int] | None] = (-100.0, 100.0, 200)  # as hh.mod

    def rates(self, v):
        _, y4, y8 = _powers(v)
        return {  # y8 * e^2.5 = exp(-(v + 40)/10), y8 * e^3 = exp(-(v + 35)/10)
            "m": AlphaBeta(0.1 * vtrap(-(v + 40.0), 10.0, y8 * _E25), 4.0 * jnp.exp(-(v + 65.0) / 18.0)),
            "h": AlphaBeta(0.07 * y4, reciprocal(y8 * _E3 + 1.0)),
        }


class HHK(Channel):
    """Delayed-rectifier potassium current `gbar n^4 (V - e_rev)`.

    **Arguments:** `gbar` (mS/cm2, default 36), `e_rev` (mV, default -77).
    """

    gbar: Float[Array, "*n"] = param(36.0, "HHK.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-77.0, "HHK.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"n": 4}
    table: ClassVar[tuple[float, float, int] | None] = (-100.0, 100.0, 200)  # as hh.mod

    def rates(self, v):
        y, _, y8 = _powers(v)  # y8 * e = exp(-(v + 55)/10)
        return {"n": AlphaBeta(0.01 * vtrap(-(v + 55.0), 10.0, y8 * _E1), 0.125 * y)}


class Leak(Channel):
    """Passive leak current `gbar (V - e_rev)`.

    **Arguments:** `gbar` (mS/cm2, default 0.3), `e_rev` (mV, default -54.387, HH 1952; NEURON 9's
    `hh` uses -54.3 unless `el_hh` is set).
    """

    gbar: Float[Array, "*n"] = param(0.3, "Leak.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-54.387, "Leak.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {}

    def rates(self, v):
        return {}
