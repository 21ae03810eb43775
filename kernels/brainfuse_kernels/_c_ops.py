"""The one table of scalar operations -> C expressions, the one literal printer and the one
float32 `exp`, shared by every C emitter of the project: the native CPU loop (`_jaxpr_c`, jaxpr ->
C++ compiled against XLA's FFI) and the C99 emitter of `brainfuse_jax.lower` (StableHLO -> C99).

Every expression `scalar` returns, and `PRELUDE`, is valid C99 and valid C++ (no templates, no
overloads, no `std::`; libm's `f`-suffixed functions for float32). Operations are named as JAX's
primitives (`add`, `sub`, `lt`, `exp`, `log1p`, `shift_right_logical`, ...); the StableHLO
emitter maps its op names onto these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Unsupported(Exception):
    """An operation or dtype the C emitters do not translate."""


CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.bool_): "bool",
          np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
          np.dtype(np.int64): "int64_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t",
          np.dtype(np.uint32): "uint32_t", np.dtype(np.uint64): "uint64_t"}
DTYPES = {c: d for d, c in CTYPES.items()}  # C type -> numpy dtype

# float32 exp: Cephes' expf: exp(x) = 2^n exp(r), |r| <= ln2/2, a degree-6 polynomial (max relative
# error 1.2e-7 = 1 ulp, tested); plain arithmetic so that compilers vectorise loops calling it (a libm
# call would not be); NaN, overflow to inf and underflow to 0 are kept. Valid C99 and C++.
PRELUDE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

static inline float bf_expf(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504019f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float n = nearbyintf(xc * 1.44269504088896341f);
  float r = xc - n * 0.693359375f;
  float r2, p, scale, y;
  int32_t bits;
  r = r - n * -2.12194440e-4f;
  r2 = r * r;
  p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r2 + r + 1.0f;
  bits = ((int32_t)n + 127) << 23;
  memcpy(&scale, &bits, sizeof scale);
  y = p * scale;
  y = x > hi ? INFINITY : y;
  y = x < lo ? 0.0f : y;
  return x != x ? x : y;
}
static inline float bf_maxf(float a, float b) { return (a != a || a > b) ? a : b; }
static inline float bf_minf(float a, float b) { return (a != a || a < b) ? a : b; }
static inline double bf_maxd(double a, double b) { return (a != a || a > b) ? a : b; }
static inline double bf_mind(double a, double b) { return (a != a || a < b) ? a : b; }
static inline float bf_signf(float a) { return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : a); }
static inline double bf_signd(double a) { return a > 0.0 ? 1.0 : (a < 0.0 ? -1.0 : a); }
static inline float bf_logisticf(float a) { return 1.0f / (1.0f + bf_expf(-a)); }
static inline double bf_logisticd(double a) { return 1.0 / (1.0 + exp(-a)); }
#ifdef __cplusplus
static inline float bf_exp(float x) { return bf_expf(x); }
static inline double bf_exp(double x) { return exp(x); }
#endif
"""

_FLOAT = {"float": "f", "double": ""}  # libm suffix
_FLOAT_HELPER = {"float": "f", "double": "d"}  # bf_* helper suffix
_UNSIGNED = {"int8_t": "uint32_t", "int16_t": "uint32_t", "int32_t": "uint32_t", "int64_t": "uint64_t",
             "uint8_t": "uint32_t", "uint16_t": "uint32_t", "uint32_t": "uint32_t", "uint64_t": "uint64_t"}
_SAME_WIDTH_UNSIGNED = {"int8_t": "uint8_t", "int16_t": "uint16_t", "int32_t": "uint32_t", "int64_t": "uint64_t"}
_SAME_WIDTH_SIGNED = {v: k for k, v in _SAME_WIDTH_UNSIGNED.items()}
_BITS = {"int8_t": 8, "int16_t": 16, "int32_t": 32, "int64_t": 64, "uint8_t": 8, "uint16_t": 16, "uint32_t": 32,
         "uint64_t": 64, "bool": 1}

_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_BITWISE = {"and": "&", "or": "|", "xor": "^"}
# unary libm functions (float32: the f-suffixed one)
_LIBM1 = {"log": "log", "log1p": "log1p", "expm1": "expm1", "tanh": "tanh", "sqrt": "sqrt", "exp2": "exp2",
          "sin": "sin", "cos": "cos", "tan": "tan", "atan": "atan", "asin": "asin", "acos": "acos", "sinh": "sinh",
          "cosh": "cosh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "erf": "erf", "erfc": "erfc",
          "floor": "floor", "ceil": "ceil", "round": "round", "round_nearest_even": "nearbyint", "cbrt": "cbrt",
          "lgamma": "lgamma", "abs": "fabs"}
_LIBM2 = {"pow": "pow", "atan2": "atan2", "nextafter": "nextafter", "rem": "fmod"}

UNARY = frozenset({*_LIBM1, "neg", "exp", "logistic", "rsqrt", "sign", "is_finite", "not", "square", "abs"})
BINARY = frozenset({*_LIBM2, *_COMPARE, *_BITWISE, "add", "add_any", "sub", "mul", "div", "max", "min",
                    "shift_left", "shift_right_logical", "shift_right_arithmetic"})


def is_float(ctype: str) -> bool:
    return ctype in _FLOAT


def literal(value, dtype) -> str:
    """A C literal (valid C99 and C++) of `value` in `dtype` (a numpy dtype or a C type name)."""
    ctype = dtype if isinstance(dtype, str) else CTYPES[np.dtype(dtype)]
    if ctype == "bool":
        return "true" if bool(value) else "false"
    if ctype in _BITS:
        v = int(value)
        if ctype == "int64_t" and v == -(2 ** 63):
            return "((int64_t)(-9223372036854775807LL - 1))"
        if abs(v) < 2 ** 31:
            return f"(({ctype}){v})"
        return f"(({ctype}){v}{'ULL' if ctype.startswith('u') else 'LL'})"
    x = float(value)
    if math.isnan(x):
        return f"(({ctype})NAN)"
    if math.isinf(x):
        return f"({'-' if x < 0 else ''}({ctype})INFINITY)"
    if ctype == "float":
        return f"{float(np.float32(x))!r}f"
    return repr(x)


def _wrap(op: str, a: str, b: str, ctype: str) -> str:
    """Integer add/sub/mul wrapping modulo 2^bits (StableHLO's semantics; signed overflow is
    undefined in C, so the operation is done in unsigned arithmetic)."""
    u = _UNSIGNED[ctype]
    return f"(({ctype})(({u})({a}) {op} ({u})({b})))"


def scalar(op: str, args: Sequence[str], ctype: str, out_ctype: str | None = None) -> str:
    """The C expression of scalar operation `op` on the C expressions `args` (of C type `ctype`).

    `out_ctype`: the result's C type where it differs (`convert`). Raises `Unsupported` for an
    operation (or an operation on a type) without a translation."""
    out_ctype = out_ctype or ctype
    fl = is_float(ctype)
    integer = ctype in _UNSIGNED
    a = args[0] if args else None
    b = args[1] if len(args) > 1 else None
    if op in ("add", "add_any", "sub", "mul"):
        sym = {"add": "+", "add_any": "+", "sub": "-", "mul": "*"}[op]
        if integer:
            return _wrap(sym, a, b, ctype)
        if ctype == "bool":
            return {"+": f"({a} | {b})", "-": f"({a} ^ {b})", "*": f"({a} & {b})"}[sym]
        return f"({a} {sym} {b})"
    if op == "div":
        if integer and not ctype.startswith("u"):  # x/0 = -1, INT_MIN/-1 = INT_MIN (StableHLO)
            return (f"(({b}) == 0 ? (({ctype})-1) : (({b}) == -1 ? (({ctype})(({_UNSIGNED[ctype]})0 - "
                    f"({_UNSIGNED[ctype]})({a}))) : (({ctype})(({a}) / ({b})))))")
        if integer:
            return f"(({b}) == 0 ? (({ctype})~(({ctype})0)) : (({ctype})(({a}) / ({b}))))"
        return f"({a} / {b})"
    if op == "rem" and integer:
        if ctype.startswith("u"):
            return f"(({b}) == 0 ? ({a}) : (({ctype})(({a}) % ({b}))))"
        return f"(({b}) == 0 || ({b}) == -1 ? (({b}) == 0 ? ({a}) : (({ctype})0)) : (({ctype})(({a}) % ({b}))))"
    if op in _COMPARE:
        return f"({a} {_COMPARE[op]} {b})"
    if op in _BITWISE:
        if fl:
            raise Unsupported(f"{op} on {ctype}")
        return f"({a} {_BITWISE[op]} {b})" if ctype == "bool" else f"(({ctype})({a} {_BITWISE[op]} {b}))"
    if op in ("max", "min"):
        if fl:
            return f"bf_{op}{_FLOAT_HELPER[ctype]}({a}, {b})"
        return f"(({a}) {'>' if op == 'max' else '<'} ({b}) ? ({a}) : ({b}))"
    if op == "clamp":  # clamp(lo, x, hi)
        return scalar("min", [scalar("max", [args[1], args[0]], ctype), args[2]], ctype)
    if op == "select":  # select(pred, on_true, on_false)
        return f"({a} ? {b} : {args[2]})"
    if op in ("shift_left", "shift_right_logical", "shift_right_arithmetic"):
        if not integer:
            raise Unsupported(f"{op} on {ctype}")
        bits = _BITS[ctype]
        big = f"((uint64_t)({b}) >= {bits}u)"
        uw = _SAME_WIDTH_UNSIGNED.get(ctype, ctype)
        if op == "shift_left":
            return f"({big} ? (({ctype})0) : (({ctype})(({_UNSIGNED[ctype]})({a}) << ({b}))))"
        if op == "shift_right_logical":
            return f"({big} ? (({ctype})0) : (({ctype})(({uw})({a}) >> ({b}))))"
        sw = _SAME_WIDTH_SIGNED.get(ctype, ctype)
        return f"(({ctype})({big} ? (({sw})({a}) < 0 ? -1 : 0) : (({sw})({a}) >> ({b}))))"
    if op in _LIBM2:
        if not fl:
            raise Unsupported(f"{op} on {ctype}")
        return f"{_LIBM2[op]}{_FLOAT[ctype]}({a}, {b})"
    if op == "neg":
        if integer:
            return f"(({ctype})(({_UNSIGNED[ctype]})0 - ({_UNSIGNED[ctype]})({a})))"
        return f"(-{a})"
    if op == "abs" and integer:
        if ctype.startswith("u"):
            return f"({a})"
        return f"(({a}) < 0 ? (({ctype})(({_UNSIGNED[ctype]})0 - ({_UNSIGNED[ctype]})({a}))) : ({a}))"
    if op == "exp":
        return f"bf_expf({a})" if ctype == "float" else f"exp({a})" if fl else _bad(op, ctype)
    if op in _LIBM1:
        return f"{_LIBM1[op]}{_FLOAT[ctype]}({a})" if fl else _bad(op, ctype)
    if op == "logistic":
        return f"bf_logistic{_FLOAT_HELPER[ctype]}({a})" if fl else _bad(op, ctype)
    if op == "sign":
        if fl:
            return f"bf_sign{_FLOAT_HELPER[ctype]}({a})"
        if ctype.startswith("u"):
            return f"(({ctype})(({a}) > 0))"
        return f"(({ctype})((({a}) > 0) - (({a}) < 0)))"
    if op == "rsqrt":
        return f"({literal(1, ctype)} / sqrt{_FLOAT[ctype]}({a}))" if fl else _bad(op, ctype)
    if op == "is_finite":
        return f"isfinite({a})" if fl else _bad(op, ctype)
    if op == "not":
        return f"(!{a})" if ctype == "bool" else f"(({ctype})~({a}))" if integer else _bad(op, ctype)
    if op == "square":
        return scalar("mul", [a, a], ctype)
    if op == "convert":
        if out_ctype == "bool":
            return f"({a} != 0)"
        return f"(({out_ctype})({a}))"
    raise Unsupported(f"operation {op!r}")


def _bad(op: str, ctype: str):
    raise Unsupported(f"{op} on {ctype}")


def integer_pow(x: str, y: int, ctype: str) -> str:
    """`x ** y` for a Python int `y` (repeated products up to |y| = 8, `pow` beyond)."""
    one = literal(1, ctype)
    if y == 0:
        return one
    if abs(y) <= 8:
        power = x
        for _ in range(abs(y) - 1):
            power = scalar("mul", [power, x], ctype)
    else:
        power = scalar("pow", [x, literal(abs(y), ctype)], ctype)
    return power if y > 0 else scalar("div", [one, power], ctype)


__all__ = ["BINARY", "CTYPES", "DTYPES", "PRELUDE", "UNARY", "Unsupported", "integer_pow", "is_float", "literal",
           "scalar"]
