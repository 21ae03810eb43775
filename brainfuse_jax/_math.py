"""Numerically safe elementary functions used by rate equations and integrators.

All of them are exact and finite at their removable singularities in value **and** gradient
(the "double where" pattern: the unsafe branch never sees the singular argument).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

# Below this |z| the Taylor series is used; its truncation error z^4/720 < 2e-15 there.
_SMALL = 1e-3


def x_over_expm1(z: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """z / (exp(z) - 1), equal to 1 at z = 0 (the Bernoulli generating function)."""
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SMALL
    z_safe = jnp.where(small, jnp.ones_like(z), z)
    series = 1.0 - z / 2.0 + z * z / 12.0
    return jnp.where(small, series, z_safe / jnp.expm1(z_safe))


def one_minus_exp_neg_over_x(z: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """(1 - exp(-z)) / z, equal to 1 at z = 0 (the phi_1 function of exponential integrators)."""
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SMALL
    z_safe = jnp.where(small, jnp.ones_like(z), z)
    series = 1.0 - z / 2.0 + z * z / 6.0
    return jnp.where(small, series, -jnp.expm1(-z_safe) / z_safe)


def vtrap(x: Float[ArrayLike, "*s"], y: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """NEURON's `vtrap(x, y) = x / (exp(x/y) - 1)`, finite (= y) at x = 0, with a finite gradient.

    Writes HH-style rates as in NMODL: `alpha_m = 0.1 * vtrap(-(v + 40), 10)` (1/ms, v in mV).
    """
    y = jnp.asarray(y)
    return y * x_over_expm1(jnp.asarray(x) / y)
