"""Numerically safe elementary functions used by rate equations and integrators.

All of them are exact and finite at their removable singularities in value **and** gradient
(the "double where" pattern: the unsafe branch never sees the singular argument).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

# Below this |z| the Taylor series is used, above it exp(z) - 1: XLA's CPU `expm1` is not
# vectorised (an HH step with three of them ran at 2/3 of the speed), and exp(z) - 1 loses at
# most eps / |z| relative precision (6e-7 in float32, 2e-15 in float64 at the cutoff). The series
# (Bernoulli numbers; terms up to z^8) is accurate to |z|^10 / 4.8e9 < 3e-20 there.
_SMALL = 0.1


def computed_once(x: Float[Array, "*s"]) -> Float[Array, "*s"]:
    """`x`, kept as computed: on the CPU backend wrapped in `lax.optimization_barrier`, so that XLA's
    algebraic simplifier does not rewrite products of it back into more transcendentals (it turns
    exp(a) * exp(a) into exp(2a): y^8 by squaring would cost three exponentials instead of one).
    Elsewhere a no-op: on GPUs exp is a cheap hardware instruction, and Pallas' Triton lowering has
    no rule for the barrier."""
    return jax.lax.optimization_barrier(x) if jax.default_backend() == "cpu" else x


@jax.custom_jvp
def reciprocal(x: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """1 / x, with the derivative -dx / x^2 computed as -(1/x)^2 dx from the value: the tangent and
    cotangent need no division (autodiff of `a / b` divides again for every tangent direction and
    cotangent, which made divisions most of the cost of a gradient through a Pade-decay HH step)."""
    return 1.0 / jnp.asarray(x)


@reciprocal.defjvp
def _reciprocal_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    r = reciprocal(x)
    return r, -(r * r) * dx


def x_over_expm1(z: Float[ArrayLike, "*s"], exp_z: Float[ArrayLike, "*s"] | None = None) -> Float[Array, "*s"]:
    """z / (exp(z) - 1), equal to 1 at z = 0 (the Bernoulli generating function).

    `exp_z`, if given, is exp(z) already computed (e.g. derived from an exponential shared by
    several rates, with a few times the rounding error of a direct exp). In float32 the series is
    then used up to |z| < 0.5 (truncation < 4e-9), which keeps the result within 2e-6 of exact
    (HH's alpha_m and alpha_n: 1.5e-6; with a direct exp: 5e-7)."""
    z = jnp.asarray(z)
    f32 = z.dtype == jnp.float32
    small = jnp.abs(z) < (0.5 if f32 and exp_z is not None else _SMALL)
    z_safe = jnp.where(small, jnp.ones_like(z), z)
    exp_safe = jnp.exp(z_safe) if exp_z is None else jnp.where(small, jnp.e, exp_z)
    z2 = z * z
    tail = 1.0 / 30240.0 if f32 else 1.0 / 30240.0 - z2 / 1209600.0  # float32: terms up to z^6
    series = 1.0 - z / 2.0 + z2 * (1.0 / 12.0 + z2 * (-1.0 / 720.0 + z2 * tail))
    return jnp.where(small, series, z_safe * reciprocal(exp_safe - 1.0))


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


def vtrap(x: Float[ArrayLike, "*s"], y: Float[ArrayLike, "*s"],
          exp_x_over_y: Float[ArrayLike, "*s"] | None = None) -> Float[Array, "*s"]:
    """NEURON's `vtrap(x, y) = x / (exp(x/y) - 1)`, finite (= y) at x = 0, with a finite gradient.

    Writes HH-style rates as in NMODL: `alpha_m = 0.1 * vtrap(-(v + 40), 10)` (1/ms, v in mV).
    `exp_x_over_y`: exp(x/y) if already computed (see `x_over_expm1`).
    """
    y = jnp.asarray(y)
    return y * x_over_expm1(jnp.asarray(x) / y, exp_x_over_y)


def pade_decay(z: Float[ArrayLike, "*s"]) -> tuple[Float[Array, "*s"], Float[Array, "*s"], Float[Array, "*s"]]:
    """`(p, q, s)` with `p / q` the [2/3] Pade approximant of exp(-z) and `s / q` = (1 - p/q) / z:

        p = 1 - 2z/5 + z^2/20,   q = 1 + 3z/5 + 3z^2/20 + z^3/60,   s = 1 + z/10 + z^2/60.

    An exponential-Euler update x + (x_inf - x)(1 - exp(-z)) becomes `(x p + x_inf z s) / q`: one
    division (callers use `reciprocal(q)`), no transcendental function, no 0/0 at z = 0. For
    z >= 0: 0 < p/q < 1 (the update is a convex combination of x and x_inf, so gates stay in
    [0, 1]) and p/q -> 0 as z -> inf (L-stable: stable for any step, though p/q ~ 3/z decays
    more slowly than exp(-z) there, and it is not monotone: it rises again between z = 4.8 and 18).
    Error of p/q against exp(-z) (the Pade remainder, ~1.4e-4 z^6 for small z): absolute 1.2e-10
    at z = 0.1, 2.5e-8 at 0.25 (relative 3.3e-8), 4.5e-5 at 1 (relative 1.2e-4); relative 7.6e-3
    at z = 2 and 9% at z = 3; at most 0.063 absolute (near z = 18). With HH at dt = 0.025 ms the
    gates have z <= 0.25 and V z <= 1.3 (at the spike peak).
    """
    z = jnp.asarray(z)
    p = 1.0 + z * (-0.4 + z * 0.05)
    s = 1.0 + z * (0.1 + z * (1.0 / 60.0))
    return p, p + z * s, s


def _unbroadcast(x, shape):
    """Sum `x` down to `shape` (the inverse of broadcasting `shape` to `x.shape`)."""
    x = jnp.sum(x, axis=tuple(range(x.ndim - len(shape)))) if x.ndim > len(shape) else x
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)
