"""Optional fast math: a polynomial `exp` substituted into a model's step.

`fast_exp(x) = 2^k * p(r)` with `k = round(x / ln 2)`, `r = x - k ln 2` (Cody-Waite: ln 2 in two
parts, so r is exact to float32 rounding), `|r| <= ln(2)/2`, and `p` a degree-5 polynomial
`1 + r + r^2/2 + c3 r^3 + c4 r^4 + c5 r^5` with c3..c5 fitted to `e^r` (relative least squares on
Chebyshev nodes). Maximum relative error over the float32 range (-87 <= x <= 88): 2.9e-7 in
exact arithmetic, **3.6e-7** evaluated in float32 (measured on 4e5 points; tests/test_fast_math.py).
The first three terms are exact so that `1 - fast_exp(-y)` keeps its relative accuracy for small
y: exponential-Euler gates compute `exp(-dt/tau)`, which for a slow gate (Pospischil's IM, tau up
to 608 ms) is 1 - 4e-5; an unconstrained fit (error 2.7e-6 but 8e-7 already at 0) made that gate
10% too fast and moved spikes by 0.125 ms. Its derivative is defined as
`fast_exp(x)` (a `custom_jvp`), so gradients carry the same error. Six multiply-adds, a floor and
an exponent-bit shift: no transcendental call, which helps where `exp` is a slow library call
(some GPUs' accurate `expf`, scalar C); XLA's own CPU `exp` is already a vectorised polynomial
and is faster (docs/benchmarks.md).

`with_fast_exp(fn)` re-evaluates `fn`'s jaxpr with every `exp` replaced by `fast_exp` (also
inside nested `jit`s), so library and user-written channels alike get it; `expm1`/`log1p` keep
full precision (they matter near 0, where a polynomial `exp` - 1 would cancel).
`PointNeuron(fast_exp=True)` applies it to the neuron's step.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.extend.core import Literal
from jaxtyping import Array, ArrayLike, Float

# p(r) ~ e^r on [-ln(2)/2, ln(2)/2] (lowest order first).
_COEFFS = (1.0, 1.0, 0.5, 0.16668452859539204, 0.04181654240671278, 0.008184495629256668)
_LN2_HI, _LN2_LO = 0.6931471824645996, -1.904654323148236e-09
MAX_REL_ERROR = 4e-7  # float32 evaluation, measured 3.6e-7 (2.9e-7 of the polynomial itself)


@jax.custom_jvp
def fast_exp(x: Float[ArrayLike, "*s"]) -> Float[Array, "*s"]:
    """exp(x) to a relative error <= 4e-7 (float32) without a transcendental function.
    Arguments beyond the float32 range are clamped (exp(-87) ~ 1.6e-38, exp(88) ~ 1.7e38)."""
    x = jnp.asarray(x)
    dtype = x.dtype
    x32 = jnp.clip(x.astype(jnp.float32), -87.0, 88.0)
    k = jnp.floor(x32 * 1.4426950408889634 + 0.5)
    r = (x32 - k * _LN2_HI) - k * _LN2_LO
    p = _COEFFS[-1]
    for c in _COEFFS[-2::-1]:
        p = p * r + c
    scale = jax.lax.bitcast_convert_type((k.astype(jnp.int32) + 127) << 23, jnp.float32)
    return (p * scale).astype(dtype)


@fast_exp.defjvp
def _fast_exp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    y = fast_exp(x)
    return y, y * t


def _eval(jaxpr, consts, args):
    env = {}

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name == "exp":
            outs = [fast_exp(invals[0])]
        elif name in ("pjit", "jit", "closed_call") and "jaxpr" in eqn.params:
            sub = eqn.params["jaxpr"]
            outs = _eval(sub.jaxpr, sub.consts, invals)
        else:  # everything else, custom_jvp/vjp calls included, is bound as it was traced
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outs = [outs]
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def with_fast_exp(fn: Callable) -> Callable:
    """`fn` (a function of pytrees of arrays) with every `exp` it evaluates replaced by `fast_exp`."""
    def wrapped(*args):
        flat, treedef = jax.tree.flatten(args)
        closed, out_shape = jax.make_jaxpr(lambda *leaves: fn(*jax.tree.unflatten(treedef, leaves)),
                                           return_shape=True)(*flat)
        out = _eval(closed.jaxpr, closed.consts, flat)
        return jax.tree.unflatten(jax.tree.structure(out_shape), out)
    return wrapped
