"""C from a jaxpr of scalar operations: the per-neuron body of a native time loop.

`emit` translates a closed jaxpr whose every variable is a scalar (what `jax.make_jaxpr` gives
for one neuron's step, its JVPs and its records) into C++ statements, one `const` local per
variable. Nested jaxprs (`jit`, `custom_jvp_call`, `custom_vjp_call`) are inlined; identical
operations on identical operands are emitted once (the JVPs of several directions share the
primal computation); variables that depend only on loop-invariant inputs (the parameters) are
computed once per neuron before the time loop instead of at every step.

`Unsupported` is raised for anything else (arrays, control flow, callbacks, low-precision
floats); callers then keep their XLA form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from jax.extend import core as jcore


class Unsupported(Exception):
    """The jaxpr holds something `emit` does not translate."""


CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.bool_): "bool",
          np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t", np.dtype(np.uint32): "uint32_t",
          np.dtype(np.int8): "int8_t", np.dtype(np.uint8): "uint8_t"}

_BINARY = {"add": "({0} + {1})", "add_any": "({0} + {1})", "sub": "({0} - {1})", "mul": "({0} * {1})",
           "div": "({0} / {1})", "lt": "({0} < {1})", "le": "({0} <= {1})", "gt": "({0} > {1})",
           "ge": "({0} >= {1})", "eq": "({0} == {1})", "ne": "({0} != {1})", "and": "({0} & {1})",
           "or": "({0} | {1})", "xor": "({0} ^ {1})", "max": "bf_max({0}, {1})", "min": "bf_min({0}, {1})",
           "pow": "std::pow({0}, {1})", "atan2": "std::atan2({0}, {1})", "nextafter": "std::nextafter({0}, {1})",
           "rem": "std::fmod({0}, {1})"}
_UNARY = {"neg": "(-{0})", "exp": "bf_exp({0})", "log": "std::log({0})", "log1p": "std::log1p({0})",
          "expm1": "std::expm1({0})", "tanh": "std::tanh({0})", "logistic": "bf_logistic({0})",
          "sqrt": "std::sqrt({0})", "rsqrt": "({1}(1) / std::sqrt({0}))", "abs": "std::abs({0})",
          "sign": "bf_sign({0})", "exp2": "std::exp2({0})", "sin": "std::sin({0})", "cos": "std::cos({0})",
          "tan": "std::tan({0})", "atan": "std::atan({0})", "asin": "std::asin({0})", "acos": "std::acos({0})",
          "sinh": "std::sinh({0})", "cosh": "std::cosh({0})", "asinh": "std::asinh({0})",
          "acosh": "std::acosh({0})", "atanh": "std::atanh({0})", "erf": "std::erf({0})",
          "erfc": "std::erfc({0})", "floor": "std::floor({0})", "ceil": "std::ceil({0})",
          "round": "std::round({0})", "is_finite": "std::isfinite({0})", "not": "bf_not({0})",
          "square": "({0} * {0})", "cbrt": "std::cbrt({0})", "lgamma": "std::lgamma({0})"}
_IDENTITY = {"optimization_barrier", "copy", "copy_p", "stop_gradient"}  # (derivatives are taken before)
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
           "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}

# Helpers every generated file starts with. bf_exp (float) is Cephes' expf: exp(x) = 2^n exp(r),
# |r| <= ln2/2, a degree-6 polynomial (max relative error 1.2e-7 = 1 ulp, tested); written in
# plain arithmetic so that the compiler vectorises the loops that call it (a libm call would not
# be), and NaN, overflow to inf and underflow to 0 are kept.
PRELUDE = r"""
#include <cmath>
#include <cstdint>
#include <cstring>

static inline float bf_exp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504019f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float n = std::nearbyint(xc * 1.44269504088896341f);
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r2 + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
}
static inline double bf_exp(double x) { return std::exp(x); }
template <typename T> static inline T bf_max(T a, T b) { return (a != a || a > b) ? a : b; }
template <typename T> static inline T bf_min(T a, T b) { return (a != a || a < b) ? a : b; }
template <typename T> static inline T bf_sign(T a) { return a > T(0) ? T(1) : (a < T(0) ? T(-1) : a); }
template <typename T> static inline T bf_logistic(T a) { return T(1) / (T(1) + bf_exp(-a)); }
static inline bool bf_not(bool a) { return !a; }
template <typename T> static inline T bf_not(T a) { return ~a; }
"""


def literal(value, dtype) -> str:
    """A C++ literal of `value` in `dtype`."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "true" if bool(value) else "false"
    if dtype.kind in "iu":
        return f"{CTYPES[dtype]}({int(value)})"
    x = float(value)
    if math.isnan(x):
        return f"{CTYPES[dtype]}(NAN)"
    if math.isinf(x):
        return f"{CTYPES[dtype]}({'-' if x < 0 else ''}INFINITY)"
    if dtype == np.float32:
        return f"{float(np.float32(x))!r}f"
    return repr(x)


class _Emitter:
    def __init__(self):
        self.pre: list[str] = []  # once per neuron, before the time loop (arrays over lanes)
        self.body: list[str] = []  # every step
        self.decls: list[str] = []  # the arrays holding the invariant values
        self.cse: dict[tuple, tuple[str, bool]] = {}
        self.count = 0
        self.values: dict[str, float] = {}  # the value of each floating-point literal
        self.checks: list[str] = []  # conditions of eqx.error_if checks (an error if ever true)

    def literal(self, value, dtype) -> tuple[str, bool]:
        expr = literal(value, dtype)
        if np.dtype(dtype).kind == "f":
            self.values[expr] = float(value)
        return expr, True

    def simplify(self, name: str, ins: list[tuple[str, bool]]):
        """`ins[k]` if the operation is the identity on it (x + 0, x * 1, x / 1), a literal 0 if
        the result is zero (0 * x, 0 / x: as JAX's symbolic zeros, which the JVPs of many
        directions are full of), else None."""
        vals = [self.values.get(e) for e, _ in ins]
        if name in ("add", "add_any"):
            for k in (0, 1):
                if vals[k] == 0.0:
                    return ins[1 - k]
        elif name == "sub" and vals[1] == 0.0:
            return ins[0]
        elif name == "mul":
            for k in (0, 1):
                if vals[k] == 1.0:
                    return ins[1 - k]
                if vals[k] == 0.0:
                    return ins[k]
        elif name == "div" and (vals[1] == 1.0 or vals[0] == 0.0):
            return ins[0]
        return None

    def error_check(self, eqn, ins):
        """`eqx.error_if(x, pred, msg)`: x passes through; `pred` is recorded in `self.checks` (the
        loop stops with an error if it is ever true) and the branch index output is 0."""
        values = []
        for atom, (expr, inv) in zip(eqn.invars, ins):
            if np.dtype(atom.aval.dtype) == np.bool_:
                if self.values.get(expr) is None and expr != "false":
                    self.checks.append(self.ref(expr, inv) if not _is_literal(expr) else expr)
            else:
                values.append((expr, inv))
        if len(eqn.outvars) != len(values) + 1 or np.dtype(eqn.outvars[0].aval.dtype).kind not in "iu":
            raise Unsupported("an eqx.error_if of an unknown form")
        return [(literal(0, eqn.outvars[0].aval.dtype), True), *values]

    def ref(self, name: str, invariant: bool) -> str:
        return f"{name}[i]" if invariant else name

    def new(self, expr: str, dtype, invariant: bool) -> tuple[str, bool]:
        key = (expr, str(dtype))
        if key in self.cse:
            return self.cse[key]
        name = f"v{self.count}"
        self.count += 1
        ctype = CTYPES[np.dtype(dtype)]
        if invariant:
            self.decls.append(f"{ctype} {name}[W];")
            self.pre.append(f"{name}[i] = {expr};")
        else:
            self.body.append(f"const {ctype} {name} = {expr};")
        self.cse[key] = (name, invariant)
        return self.cse[key]

    def run(self, jaxpr, consts: Sequence, args: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
        """Emit `jaxpr` with its invars bound to `args` ((C expression, invariant?) pairs)."""
        env = {}

        def read(atom):
            if isinstance(atom, jcore.Literal):
                return self.literal(atom.val, atom.aval.dtype)
            return env[atom]

        live = {v for v in jaxpr.outvars if not isinstance(v, jcore.Literal)}
        used = []  # the equations an output depends on (dead code, say an unused input, is dropped)
        for eqn in reversed(jaxpr.eqns):
            if any(v in live for v in eqn.outvars):
                used.append(eqn)
                live.update(v for v in eqn.invars if not isinstance(v, jcore.Literal))
        for var, val in zip(jaxpr.constvars, consts):
            if var in live and np.ndim(val) != 0:
                raise Unsupported("a non-scalar constant")
            if var in live:
                env[var] = self.literal(np.asarray(val).item(), np.asarray(val).dtype)
        for var, arg in zip(jaxpr.invars, args, strict=True):
            env[var] = arg
        for eqn in reversed(used):
            for v in (*eqn.invars, *eqn.outvars):
                aval = v.aval
                if getattr(aval, "shape", None) != () or np.dtype(aval.dtype) not in CTYPES:
                    raise Unsupported(f"arrays inside the step ({eqn.primitive.name} on {aval}; e.g. rate tables)")
            outs = self.eqn(eqn, [read(a) for a in eqn.invars])
            for var, out in zip(eqn.outvars, outs, strict=True):
                env[var] = out
        return [read(v) for v in jaxpr.outvars]

    def eqn(self, eqn, ins: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
        name = eqn.primitive.name
        if name in _IDENTITY or (name in ("broadcast_in_dim", "reshape", "squeeze") and len(ins) == 1):
            return ins
        if name in ("jit", "pjit") and eqn.params.get("name") == "branched_error_if_impl":
            return self.error_check(eqn, ins)
        if name in _INLINE:
            sub = eqn.params.get(_INLINE[name])
            if sub is None:
                raise Unsupported(f"{name} without {_INLINE[name]}")
            closed = sub if hasattr(sub, "consts") else None
            return self.run(closed.jaxpr if closed else sub, closed.consts if closed else [], ins)
        same = self.simplify(name, ins) if name in ("add", "add_any", "sub", "mul", "div") else None
        if same is not None and np.dtype(eqn.outvars[0].aval.dtype) == np.dtype(eqn.invars[0].aval.dtype):
            return [same]
        invariant = all(inv for _, inv in ins)
        exprs = [self.ref(e, inv) if not _is_literal(e) else e for e, inv in ins]
        out_dtype = eqn.outvars[0].aval.dtype
        ctype = CTYPES[np.dtype(out_dtype)]
        if name in _BINARY:
            expr = _BINARY[name].format(*exprs)
        elif name in _UNARY:
            expr = _UNARY[name].format(exprs[0], ctype)
        elif name == "integer_pow":
            expr = _integer_pow(exprs[0], eqn.params["y"], ctype)
        elif name == "convert_element_type":
            expr = f"({ctype})({exprs[0]})" if np.dtype(out_dtype) != np.bool_ else f"({exprs[0]} != 0)"
        elif name == "select_n":
            expr = exprs[1]
            for k, case in enumerate(exprs[2:], start=1):  # select_n(p, c0, c1, ...): c_p
                expr = f"({exprs[0]} == {k} ? {case} : {expr})" if len(exprs) > 3 else \
                    f"({exprs[0]} ? {case} : {expr})"
        elif name == "clamp":
            expr = f"bf_min(bf_max({exprs[1]}, {exprs[0]}), {exprs[2]})"
        else:
            raise Unsupported(f"primitive {name!r}")
        return [self.new(expr, out_dtype, invariant)]


def _is_literal(expr: str) -> bool:
    return not expr.startswith("v") and not expr.startswith("in_")


def _integer_pow(x: str, y: int, ctype: str) -> str:
    if y == 0:
        return f"{ctype}(1)"
    power = "*".join([x] * abs(y)) if abs(y) <= 8 else f"std::pow({x}, {ctype}({abs(y)}))"
    return f"({power})" if y > 0 else f"({ctype}(1) / ({power}))"


def emit(closed_jaxpr, inputs: Sequence[tuple[str, bool]]):
    """C for `closed_jaxpr` (all variables scalar) with its inputs bound to C expressions.

    `inputs`: one `(expression, invariant)` per input, `invariant` meaning the value is the same
    at every step (an invariant input is read as `name[i]`, the lane's entry of an array `name`).

    **Returns:** `(decls, pre, body, outputs, checks)`: declarations of the arrays of invariant
    values (of length `W`), the statements computing them (once per lane `i`), the per-step
    statements, one C expression per output, and the conditions of the jaxpr's `eqx.error_if`
    checks (C expressions that must stay false).
    """
    em = _Emitter()
    outs = em.run(closed_jaxpr.jaxpr, closed_jaxpr.consts, list(inputs))
    return em.decls, em.pre, em.body, [em.ref(e, inv) if not _is_literal(e) else e for e, inv in outs], em.checks
