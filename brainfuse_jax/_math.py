"""Numerically safe elementary functions used by rate equations and integrators.

All of them are exact and finite at their removable singularities in value **and** gradient
(the "double where" pattern: the unsafe branch never sees the singular argument).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

# Below this |z| the Taylor series is used, above it exp(z) - 1: XLA's CPU `expm1` is not
# vectorised (an HH step with three of them ran at 2/3 of the speed), and exp(z) - 1 loses at
# most eps / |z| relative precision (6e-7 in float32, 2e-15 in float64 at the cutoff). The series
# (Bernoulli numbers; terms up to z^8) is accurate to |z|^10 / 4.8e9 < 3e-20 there.
_SMALL = 0.1


def x_over_expm1(z: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """z / (exp(z) - 1), equal to 1 at z = 0 (the Bernoulli generating function)."""
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SMALL
    z_safe = jnp.where(small, jnp.ones_like(z), z)
    z2 = z * z
    series = 1.0 - z / 2.0 + z2 * (1.0 / 12.0 + z2 * (-1.0 / 720.0 + z2 * (1.0 / 30240.0 - z2 / 1209600.0)))
    return jnp.where(small, series, z_safe / (jnp.exp(z_safe) - 1.0))


def one_minus_exp_neg_over_x(z: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """(1 - exp(-z)) / z, equal to 1 at z = 0 (the phi_1 function of exponential integrators)."""
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SMALL
    z_safe = jnp.where(small, jnp.ones_like(z), z)
    # sum_k (-z)^k / (k+1)!, k <= 9: truncation |z|^10 / 11! < 3e-18 at the cutoff
    series = 1.0
    for k in range(10, 0, -1):
        series = 1.0 - z / (k + 1.0) * series
    return jnp.where(small, series, (1.0 - jnp.exp(-z_safe)) / z_safe)


def vtrap(x: Float[ArrayLike, "*s"], y: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """NEURON's `vtrap(x, y) = x / (exp(x/y) - 1)`, finite (= y) at x = 0, with a finite gradient.

    Writes HH-style rates as in NMODL: `alpha_m = 0.1 * vtrap(-(v + 40), 10)` (1/ms, v in mV).
    """
    y = jnp.asarray(y)
    return y * x_over_expm1(jnp.asarray(x) / y)
