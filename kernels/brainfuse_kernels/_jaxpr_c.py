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

from collections.abc import Sequence

import numpy as np
from jax.extend import core as jcore

from ._c_ops import CTYPES as _ALL_CTYPES
from ._c_ops import PRELUDE as _C_PRELUDE
from ._c_ops import Unsupported, integer_pow, literal, scalar


# the dtypes a native loop handles (the shared table knows a few more)
CTYPES = {d: _ALL_CTYPES[d] for d in map(np.dtype, (np.float32, np.float64, np.bool_, np.int32, np.int64, np.uint32,
                                                    np.int8, np.uint8))}

_BINARY = {"add", "add_any", "sub", "mul", "div", "lt", "le", "gt", "ge", "eq", "ne", "and", "or", "xor", "max", "min",
           "pow", "atan2", "nextafter", "rem"}
_UNARY = {"neg", "exp", "log", "log1p", "expm1", "tanh", "logistic", "sqrt", "rsqrt", "abs", "sign", "exp2", "sin",
          "cos", "tan", "atan", "asin", "acos", "sinh", "cosh", "asinh", "acosh", "atanh", "erf", "erfc", "floor",
          "ceil", "round", "is_finite", "not", "square", "cbrt", "lgamma"}
_IDENTITY = {"optimization_barrier", "copy", "copy_p", "stop_gradient"}  # (derivatives are taken before)
_INLINE = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
           "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
           "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "checkpoint": "jaxpr"}

# Helpers every generated file starts with: the C++ headers the loops use, then the prelude shared
# with the C99 emitter (bf_exp and friends: `brainfuse_kernels._c_ops`).
PRELUDE = "\n#include <cmath>\n#include <cstdint>\n#include <cstring>\n" + _C_PRELUDE


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
        in_ctype = CTYPES[np.dtype(eqn.invars[0].aval.dtype)] if eqn.invars else ctype
        if name in _BINARY or name in _UNARY:
            expr = scalar(name, exprs, in_ctype)
        elif name == "integer_pow":
            expr = integer_pow(exprs[0], eqn.params["y"], ctype)
        elif name == "convert_element_type":
            expr = scalar("convert", exprs, in_ctype, ctype)
        elif name == "select_n":
            expr = exprs[1]
            for k, case in enumerate(exprs[2:], start=1):  # select_n(p, c0, c1, ...): c_p
                p_ctype = CTYPES[np.dtype(eqn.invars[0].aval.dtype)]
                pred = scalar("eq", [exprs[0], literal(k, p_ctype)], p_ctype) if len(exprs) > 3 else exprs[0]
                expr = scalar("select", [pred, case, expr], ctype)
        elif name == "clamp":
            expr = scalar("clamp", exprs, ctype)
        else:
            raise Unsupported(f"primitive {name!r}")
        return [self.new(expr, out_dtype, invariant)]


def _is_literal(expr: str) -> bool:
    return not expr.startswith("v") and not expr.startswith("in_")


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
