"""The Hodgkin-Huxley (1952) squid-axon channels, in NEURON's `hh.mod` form (rest at -65 mV).

Hodgkin, A. L. & Huxley, A. F. (1952). A quantitative description of membrane current and its
application to conduction and excitation in nerve. J. Physiol. 117, 500-544.
Rates in 1/ms, v in mV, q10 = 3 relative to 6.3 degC.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._math import vtrap
from .._validate import param
from ._base import AlphaBeta, Channel


class HHNa(Channel):
    """Fast sodium current `gbar m^3 h (V - e_rev)`.

    **Arguments:** `gbar` (mS/cm2, default 120), `e_rev` (mV, default 50).
    """

    gbar: Float[Array, "*n"] = param(120.0, "HHNa.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(50.0, "HHNa.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"m": 3, "h": 1}
    table: ClassVar[tuple[float, float, int] | None] = (-100.0, 100.0, 200)  # as hh.mod

    def rates(self, v):
        return {
            "m": AlphaBeta(0.1 * vtrap(-(v + 40.0), 10.0), 4.0 * jnp.exp(-(v + 65.0) / 18.0)),
            "h": AlphaBeta(0.07 * jnp.exp(-(v + 65.0) / 20.0), 1.0 / (jnp.exp(-(v + 35.0) / 10.0) + 1.0)),
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
        return {"n": AlphaBeta(0.01 * vtrap(-(v + 55.0), 10.0), 0.125 * jnp.exp(-(v + 65.0) / 80.0))}


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
