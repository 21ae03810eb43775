"""StableHLO -> C99 function bodies: every `func.func` of a module becomes one C function.

Each tensor SSA value is a C array of static shape (`static` storage inside its function: shapes
are static, recursion does not occur in modules from JAX); each op is a loop nest; scalar
operations are spelled by the table shared with the native loop (`brainfuse_kernels._c_ops`).
Constant splats (and their broadcasts) are C literals, reshapes and optimisation barriers alias
their operand. Anything not translated raises `ValueError` naming the op and its location.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from brainfuse_kernels import _c_ops
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo as shlo

_MLIR_DTYPES = {"f32": np.float32, "f64": np.float64, "i1": np.bool_, "i8": np.int8, "i16": np.int16,
                "i32": np.int32, "i64": np.int64, "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32,
                "ui64": np.uint64}

# StableHLO / CHLO elementwise ops -> the shared table's operation names
_ELEMENTWISE = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "remainder": "rem", "power": "pow",
    "maximum": "max", "minimum": "min", "and": "and", "or": "or", "xor": "xor", "not": "not", "negate": "neg",
    "abs": "abs", "exponential": "exp", "exponential_minus_one": "expm1", "log": "log", "log_plus_one": "log1p",
    "sqrt": "sqrt", "rsqrt": "rsqrt", "cbrt": "cbrt", "tanh": "tanh", "sine": "sin", "cosine": "cos", "tan": "tan",
    "atan2": "atan2", "floor": "floor", "ceil": "ceil", "round_nearest_even": "round_nearest_even",
    "round_nearest_afz": "round", "is_finite": "is_finite", "sign": "sign", "logistic": "logistic",
    "shift_left": "shift_left", "shift_right_logical": "shift_right_logical",
    "shift_right_arithmetic": "shift_right_arithmetic", "select": "select", "clamp": "clamp",
    "erf": "erf", "erfc": "erfc", "lgamma": "lgamma", "asin": "asin", "acos": "acos", "atan": "atan",
    "sinh": "sinh", "cosh": "cosh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "next_after": "nextafter",
}
_COMPARE = {"LT": "lt", "LE": "le", "GT": "gt", "GE": "ge", "EQ": "eq", "NE": "ne"}
SUPPORTED = sorted({f"stablehlo.{k}" for k in _ELEMENTWISE if k not in ("erf", "erfc", "lgamma", "next_after")}
                   | {f"chlo.{k}" for k in ("erf", "erfc", "lgamma", "tan", "asin", "acos", "atan", "sinh", "cosh",
                                            "asinh", "acosh", "atanh", "next_after")}
                   | {f"stablehlo.{k}" for k in (
                       "constant", "compare", "convert", "broadcast_in_dim", "reshape", "transpose", "slice",
                       "concatenate", "iota", "dynamic_slice", "dynamic_update_slice", "dot_general", "reduce",
                       "reduce_window", "gather", "scatter", "while", "case", "if", "optimization_barrier",
                       "composite", "return")} | {"func.call", "func.return"})


class _TypeProblem(ValueError):
    """A tensor type without a C translation."""


def dtype_of(mlir_type) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, numpy dtype) of a ranked tensor type; ValueError for anything else."""
    t = ir.RankedTensorType(mlir_type)
    name = str(t.element_type)
    if name not in _MLIR_DTYPES:
        raise _TypeProblem(f"emit_c: element type {name} has no C translation (supported: {sorted(_MLIR_DTYPES)})")
    return tuple(t.shape), np.dtype(_MLIR_DTYPES[name])


def location(op) -> str:
    """A short form of an op's MLIR location: its name (e.g. `jit(f)/fft`) and first source line."""
    text = str(op.location)
    name = re.search(r'loc\("([^"]*)"', text)
    where = re.search(r'"([^"]+\.py)":(\d+)', text)
    parts = [name.group(1) if name else None, f"{where.group(1)}:{where.group(2)}" if where else None]
    return " at ".join(p for p in parts if p) or text[:200]


@dataclass(frozen=True)
class Val:
    """A tensor in C: the array `name` (row-major) or, for a splat, the literal `splat`."""

    name: str | None
    shape: tuple[int, ...]
    ctype: str
    splat: str | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def at(self, index: str) -> str:
        if self.splat is not None:
            return self.splat
        return f"{self.name}[{index if self.shape else 0}]"


def _lin(shape, idx) -> str:
    """Row-major linear index of the C index expressions `idx` into `shape`."""
    expr = None
    for n, i in zip(shape, idx, strict=True):
        expr = i if expr is None else f"({expr}) * {n} + {i}"
    return expr or "0"


def _ints(attr) -> list[int]:
    if attr is None:
        return []
    try:
        return [int(v) for v in ir.DenseI64ArrayAttr(attr)]
    except (TypeError, ValueError):
        return [int(v) for v in np.array(ir.DenseIntElementsAttr(attr)).ravel()]


def _attr(op, name):
    return op.attributes[name] if name in op.attributes else None


class Unsupported(ValueError):
    """An op of the module the C emitter does not translate."""


def refuse(op, why: str = "", context: str = ""):
    name = op.operation.name
    what = f"cannot translate op {name} ({why})" if why else f"op {name} is not supported"
    raise Unsupported(f"emit_c: {what}, at {location(op)}{context} (MLIR location {str(op.location)[:300]})")


def _walk(op):
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield inner
                yield from _walk(inner)


def _callee(op) -> str | None:
    key = {"func.call": "callee", "stablehlo.composite": "decomposition"}.get(op.operation.name)
    return str(op.attributes[key]).lstrip("@") if key else None


class Function:
    """One `func.func` -> a C function `static void NAME(const T* a0, ..., T* r0, ...)`."""

    def __init__(self, module: "ModuleC", func_op, cname: str):
        self.module, self.func, self.cname = module, func_op, cname
        self.decls: list[str] = []
        self.lines: list[str] = []
        self.env: dict = {}
        self.count = 0
        self.depth = 1

    # ---- helpers ---------------------------------------------------------------------------
    def fresh(self, stem: str = "v") -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def new(self, shape, ctype: str) -> Val:
        v = Val(self.fresh(), tuple(shape), ctype)
        self.decls.append(f"static {ctype} {v.name}[{max(v.size, 1)}];")
        return v

    def emit(self, line: str):
        self.lines.append("  " * self.depth + line)

    def loop(self, shape, body, var: str = "i") -> None:
        """Emit a loop nest over `shape`; `body(index_vars)` returns the innermost lines."""
        names = [f"{var}{k}" for k in range(len(shape))]
        if any(n == 0 for n in shape):
            return
        heads = [f"for (int {name} = 0; {name} < {n}; ++{name}) {{" for name, n in zip(names, shape)] or ["{"]
        for head in heads:
            self.emit(head)
            self.depth += 1
        for line in body(names):
            self.emit(line)
        for _ in heads:
            self.depth -= 1
            self.emit("}")

    def materialize(self, v: Val) -> Val:
        if v.splat is None:
            return v
        out = self.new(v.shape, v.ctype)
        self.emit(f"for (int i = 0; i < {max(v.size, 1)}; ++i) {out.name}[i] = {v.splat};")
        return out

    def copy(self, dst: str, v: Val):
        if v.splat is not None:
            self.emit(f"for (int i = 0; i < {max(v.size, 1)}; ++i) {dst}[i] = {v.splat};")
        elif v.name != dst:
            self.emit(f"memcpy({dst}, {v.name}, sizeof({v.ctype}) * {max(v.size, 1)});")

    def refuse(self, op, why: str = ""):
        refuse(op, why)

    def result(self, op, k: int = 0) -> tuple[tuple[int, ...], str]:
        shape, dtype = dtype_of(op.results[k].type)
        return shape, _c_ops.CTYPES[dtype]

    def scalar(self, op, name: str, args, ctype: str, out_ctype: str | None = None) -> str:
        try:
            return _c_ops.scalar(name, args, ctype, out_ctype)
        except _c_ops.Unsupported as err:
            self.refuse(op, str(err))

    # ---- the function ------------------------------------------------------------------------
    def translate(self) -> tuple[str, str]:
        """(prototype, definition)."""
        block = self.func.regions[0].blocks[0]
        args, params = [], []
        for k, a in enumerate(block.arguments):
            shape, dtype = dtype_of(a.type)
            v = Val(f"a{k}", shape, _c_ops.CTYPES[dtype])
            self.env[a] = v
            params.append(f"const {v.ctype}* a{k}")
            args.append(v)
        ftype = ir.FunctionType(ir.TypeAttr(self.func.attributes["function_type"]).value)
        results = [dtype_of(t) for t in ftype.results]
        params += [f"{_c_ops.CTYPES[d]}* r{k}" for k, (_, d) in enumerate(results)]
        for k in range(len(args)):
            self.emit(f"(void)a{k};")
        returned = self.block(block)
        for k, v in enumerate(returned):
            self.copy(f"r{k}", v)
        proto = f"static void {self.cname}({', '.join(params) or 'void'})"
        body = [proto + " {", *["  " + d for d in self.decls], *self.lines, "}"]
        return proto + ";", "\n".join(body)

    def block(self, block, args: list[Val] | None = None) -> list[Val]:
        """Emit the ops of `block` (its arguments bound to `args`); the values its terminator returns."""
        for a, v in zip(block.arguments, args or [], strict=False):
            self.env[a] = v
        for op in block.operations:
            name = op.operation.name
            if name in ("func.return", "stablehlo.return"):
                return [self.env[o] for o in op.operands]
            outs = self.op(op)
            for r, v in zip(op.results, outs, strict=True):
                self.env[r] = v
        return []

    def op(self, op) -> list[Val]:
        if op.operation.name not in SUPPORTED:
            self.refuse(op)
        try:
            return self._op(op)
        except Unsupported:
            raise
        except _TypeProblem as err:
            self.refuse(op, str(err))

    def _op(self, op) -> list[Val]:
        name = op.operation.name
        dialect, _, short = name.partition(".")
        ins = [self.env[o] for o in op.operands]
        if dialect in ("stablehlo", "chlo") and short in _ELEMENTWISE and (dialect == "stablehlo" or short in (
                "erf", "erfc", "lgamma", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
                "next_after")):
            return [self.elementwise(op, _ELEMENTWISE[short], ins)]
        if dialect == "stablehlo" and short in ("compare", "convert"):
            return [self.elementwise(op, short, ins)]
        method = getattr(self, f"op_{short}", None) if dialect in ("stablehlo", "func") else None
        if method is None or name not in SUPPORTED:
            self.refuse(op)
        return method(op, ins)

    # ---- elementwise -------------------------------------------------------------------------
    def elementwise(self, op, name: str, ins: list[Val]) -> Val:
        shape, ctype = self.result(op)
        operand_ctype = ins[1].ctype if name == "select" else ins[0].ctype
        if name == "compare":
            direction = str(shlo.ComparisonDirectionAttr(op.attributes["comparison_direction"]).value)
            kind = _attr(op, "compare_type")
            if kind is not None and "TOTALORDER" in str(kind):
                self.refuse(op, "TOTALORDER comparisons")
            name = _COMPARE[direction]
        if all(v.splat is not None for v in ins):  # folded: a literal expression
            expr = self.scalar(op, "convert" if name == "convert" else name, [v.splat for v in ins], operand_ctype,
                               ctype if name == "convert" else None)
            return Val(None, shape, ctype, f"({expr})")
        out = self.new(shape, ctype)
        args = [v.at("i") if v.shape == shape else v.at("0") for v in ins]
        expr = self.scalar(op, name, args, operand_ctype, ctype if name == "convert" else None)
        self.emit(f"for (int i = 0; i < {max(out.size, 1)}; ++i) {out.name}[i] = {expr};")
        return out

    # ---- data movement -----------------------------------------------------------------------
    def op_constant(self, op, ins) -> list[Val]:
        shape, ctype = self.result(op)
        attr = ir.DenseElementsAttr(op.attributes["value"])
        dtype = _c_ops.DTYPES[ctype]
        if attr.is_splat:
            value = _splat_value(attr, dtype)
            return [Val(None, shape, ctype, _c_ops.literal(value, dtype))]
        values = _dense_values(attr, dtype, int(np.prod(shape, dtype=np.int64)))
        name = self.fresh("c")
        body = ", ".join(_c_ops.literal(x, dtype) for x in values)
        self.decls.append(f"static const {ctype} {name}[{len(values)}] = {{{body}}};")
        return [Val(name, shape, ctype)]

    def op_broadcast_in_dim(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        if x.splat is not None:
            return [Val(None, shape, ctype, x.splat)]
        dims = _ints(op.attributes["broadcast_dimensions"])
        out = self.new(shape, ctype)

        def body(idx):
            src = [idx[d] if x.shape[k] != 1 else "0" for k, d in enumerate(dims)]
            return [f"{out.name}[{_lin(shape, idx)}] = {x.at(_lin(x.shape, src))};"]

        self.loop(shape, body)
        return [out]

    def op_reshape(self, op, ins) -> list[Val]:
        shape, ctype = self.result(op)
        return [Val(ins[0].name, shape, ctype, ins[0].splat)]

    def op_optimization_barrier(self, op, ins) -> list[Val]:
        return list(ins)

    def op_transpose(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        perm = _ints(op.attributes["permutation"])
        if x.splat is not None:
            return [Val(None, shape, ctype, x.splat)]
        out = self.new(shape, ctype)

        def body(idx):
            src = [None] * len(perm)
            for j, p in enumerate(perm):
                src[p] = idx[j]
            return [f"{out.name}[{_lin(shape, idx)}] = {x.at(_lin(x.shape, src))};"]

        self.loop(shape, body)
        return [out]

    def op_slice(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        if x.splat is not None:
            return [Val(None, shape, ctype, x.splat)]
        start, strides = _ints(op.attributes["start_indices"]), _ints(op.attributes["strides"])
        out = self.new(shape, ctype)
        self.loop(shape, lambda idx: [f"{out.name}[{_lin(shape, idx)}] = " + x.at(_lin(x.shape, [
            f"{s} + {i} * {st}" if st != 1 else f"{s} + {i}" for s, i, st in zip(start, idx, strides)])) + ";"])
        return [out]

    def op_concatenate(self, op, ins) -> list[Val]:
        shape, ctype = self.result(op)
        dim = int(ir.IntegerAttr(op.attributes["dimension"]).value)
        out = self.new(shape, ctype)
        offset = 0
        for x in ins:
            def body(idx, x=x, offset=offset):
                dst = list(idx)
                dst[dim] = f"{offset} + {idx[dim]}"
                return [f"{out.name}[{_lin(shape, dst)}] = {x.at(_lin(x.shape, idx))};"]
            self.loop(x.shape, body)
            offset += x.shape[dim]
        return [out]

    def op_iota(self, op, ins) -> list[Val]:
        shape, ctype = self.result(op)
        dim = int(ir.IntegerAttr(op.attributes["iota_dimension"]).value)
        out = self.new(shape, ctype)
        self.loop(shape, lambda idx: [f"{out.name}[{_lin(shape, idx)}] = ({ctype}){idx[dim]};"])
        return [out]

    def _starts(self, indices: list[Val], sizes, limits) -> list[str]:
        """Emit clamped start indices (StableHLO clamps them into [0, dim - size]); their C names."""
        names = []
        for v, size, dim in zip(indices, sizes, limits):
            s = self.fresh("s")
            self.emit(f"int64_t {s} = (int64_t){v.at('0')};")
            self.emit(f"{s} = {s} < 0 ? 0 : ({s} > {dim - size} ? {dim - size} : {s});")
            names.append(s)
        return names

    def op_dynamic_slice(self, op, ins) -> list[Val]:
        x, idx_vals = ins[0], ins[1:]
        shape, ctype = self.result(op)
        if x.splat is not None:
            return [Val(None, shape, ctype, x.splat)]
        out = self.new(shape, ctype)
        self.emit("{")
        self.depth += 1
        starts = self._starts(idx_vals, shape, x.shape)
        self.loop(shape, lambda idx: [f"{out.name}[{_lin(shape, idx)}] = " + x.at(_lin(x.shape, [
            f"{s} + {i}" for s, i in zip(starts, idx)])) + ";"])
        self.depth -= 1
        self.emit("}")
        return [out]

    def op_dynamic_update_slice(self, op, ins) -> list[Val]:
        x, upd, idx_vals = ins[0], ins[1], ins[2:]
        shape, ctype = self.result(op)
        out = self.new(shape, ctype)
        self.copy(out.name, x)
        self.emit("{")
        self.depth += 1
        starts = self._starts(idx_vals, upd.shape, shape)
        self.loop(upd.shape, lambda idx: [f"{out.name}[" + _lin(shape, [f"{s} + {i}" for s, i in zip(starts, idx)])
                                          + f"] = {upd.at(_lin(upd.shape, idx))};"])
        self.depth -= 1
        self.emit("}")
        return [out]

    # ---- contractions and reductions ------------------------------------------------------------
    def op_dot_general(self, op, ins) -> list[Val]:
        lhs, rhs = ins
        shape, ctype = self.result(op)
        dn = shlo.DotDimensionNumbers(op.attributes["dot_dimension_numbers"])
        lb, rb = list(dn.lhs_batching_dimensions), list(dn.rhs_batching_dimensions)
        lc, rc = list(dn.lhs_contracting_dimensions), list(dn.rhs_contracting_dimensions)
        lf = [d for d in range(len(lhs.shape)) if d not in lb and d not in lc]
        rf = [d for d in range(len(rhs.shape)) if d not in rb and d not in rc]
        if lhs.ctype != ctype or rhs.ctype != ctype:
            self.refuse(op, "mixed-precision dot")
        out = self.new(shape, ctype)
        csizes = [lhs.shape[d] for d in lc]

        def body(idx):
            li, ri = [None] * len(lhs.shape), [None] * len(rhs.shape)
            for k, (a, b) in enumerate(zip(lb, rb)):
                li[a] = ri[b] = idx[k]
            for k, d in enumerate(lf):
                li[d] = idx[len(lb) + k]
            for k, d in enumerate(rf):
                ri[d] = idx[len(lb) + len(lf) + k]
            cvars = [f"k{j}" for j in range(len(lc))]
            for j, (a, b) in enumerate(zip(lc, rc)):
                li[a] = ri[b] = cvars[j]
            prod = _c_ops.scalar("mul", [lhs.at(_lin(lhs.shape, li)), rhs.at(_lin(rhs.shape, ri))], ctype)
            lines = [f"{ctype} acc = {_c_ops.literal(0, ctype)};"]
            lines += [f"for (int {v} = 0; {v} < {n}; ++{v})" for v, n in zip(cvars, csizes)]
            lines += [f"  acc = {_c_ops.scalar('add', ['acc', prod], ctype)};",
                      f"{out.name}[{_lin(shape, idx)}] = acc;"]
            return lines

        self.loop(shape, body)
        return [out]

    def _combiner(self, op, region, ctype: str):
        """The C combining two scalars `(acc, x) -> expr` of a reduction region: a single binary
        op of the table on the region's two arguments, or `None` (general region)."""
        block = region.blocks[0]
        ops = list(block.operations)
        a, b = block.arguments[0], block.arguments[1]
        if len(ops) == 1 and ops[0].operation.name == "stablehlo.return" and ops[0].operands[0] == b:
            return lambda acc, x: x  # replace (scatter's assignment)
        if len(ops) != 2 or ops[1].operation.name != "stablehlo.return" or ops[1].operands[0] != ops[0].results[0]:
            return None
        name = ops[0].operation.name.partition(".")[2]
        if name not in ("add", "multiply", "maximum", "minimum", "and", "or", "xor") or len(ops[0].operands) != 2:
            return None
        x, y = ops[0].operands
        if not ((x == a and y == b) or (x == b and y == a)):
            return None
        table = _ELEMENTWISE[name]
        return lambda acc, v: _c_ops.scalar(table, [acc, v], ctype)

    def _combine_general(self, region, ctype: str, acc: str, x: str) -> list[str]:
        """Lines applying a general scalar region to `acc` and `x`, leaving the result in `acc`."""
        a, b = Val(self.fresh("ra"), (), ctype), Val(self.fresh("rb"), (), ctype)
        self.decls += [f"static {ctype} {a.name}[1];", f"static {ctype} {b.name}[1];"]
        saved, self.lines = self.lines, []
        depth, self.depth = self.depth, 0
        self.lines.append(f"{a.name}[0] = {acc}; {b.name}[0] = {x};")
        (res,) = self.block(region.blocks[0], [a, b])
        self.lines.append(f"{acc} = {res.at('0')};")
        lines, self.lines, self.depth = self.lines, saved, depth
        return lines

    def op_reduce(self, op, ins) -> list[Val]:
        if len(ins) != 2:
            self.refuse(op, "reductions of several operands")
        x, init = ins
        shape, ctype = self.result(op)
        dims = _ints(op.attributes["dimensions"])
        region = op.regions[0]
        combine = self._combiner(op, region, ctype)
        out = self.new(shape, ctype)
        keep = [d for d in range(len(x.shape)) if d not in dims]

        def body(idx):
            src = [None] * len(x.shape)
            for k, d in enumerate(keep):
                src[d] = idx[k]
            rvars = [f"j{k}" for k in range(len(dims))]
            for k, d in enumerate(dims):
                src[d] = rvars[k]
            lines = [f"{ctype} acc = {init.at('0')};"]
            lines += [f"for (int {v} = 0; {v} < {x.shape[d]}; ++{v})" for v, d in zip(rvars, dims)]
            item = x.at(_lin(x.shape, src))
            if combine is not None:
                lines.append(f"  acc = {combine('acc', item)};")
            else:
                lines += ["{"] + ["  " + s for s in self._combine_general(region, ctype, "acc", item)] + ["}"]
            return lines + [f"{out.name}[{_lin(shape, idx)}] = acc;"]

        self.loop(shape, body)
        return [out]

    def op_reduce_window(self, op, ins) -> list[Val]:
        if len(ins) != 2:
            self.refuse(op, "window reductions of several operands")
        x, init = ins
        shape, ctype = self.result(op)
        rank = len(x.shape)
        win = _ints(op.attributes["window_dimensions"])
        strides = _ints(_attr(op, "window_strides")) or [1] * rank
        bdil = _ints(_attr(op, "base_dilations")) or [1] * rank
        wdil = _ints(_attr(op, "window_dilations")) or [1] * rank
        pad = _ints(_attr(op, "padding")) or [0] * (2 * rank)
        region = op.regions[0]
        combine = self._combiner(op, region, ctype)
        out = self.new(shape, ctype)

        def body(idx):
            wv = [f"w{k}" for k in range(rank)]
            lines = [f"{ctype} acc = {init.at('0')};"]
            lines += [f"for (int {v} = 0; {v} < {n}; ++{v})" for v, n in zip(wv, win)]
            conds, src = [], []
            for d in range(rank):
                pos = f"({idx[d]} * {strides[d]} + {wv[d]} * {wdil[d]} - {pad[2 * d]})"
                if bdil[d] != 1:
                    conds.append(f"{pos} % {bdil[d]} == 0")
                    pos = f"({pos} / {bdil[d]})"
                conds.append(f"{pos} >= 0 && {pos} < {x.shape[d]}")
                src.append(pos)
            item = x.at(_lin(x.shape, src))
            lines.append(f"  if ({' && '.join(conds) or '1'}) {{")
            if combine is not None:
                lines.append(f"    acc = {combine('acc', item)};")
            else:
                lines += ["    " + s for s in self._combine_general(region, ctype, "acc", item)]
            return lines + ["  }", f"{out.name}[{_lin(shape, idx)}] = acc;"]

        self.loop(shape, body)
        return [out]

    # ---- gather / scatter ------------------------------------------------------------------------
    def _index_vector(self, indices: Val, batch_idx: list[str], ivd: int, n: int) -> list[str]:
        """The C expressions of the `n` start-index components at batch position `batch_idx`."""
        comps = []
        for c in range(n):
            full = list(batch_idx)
            if ivd < len(indices.shape):
                full.insert(ivd, str(c))
            comps.append(f"(int64_t){indices.at(_lin(indices.shape, full))}")
        return comps

    def op_gather(self, op, ins) -> list[Val]:
        x, indices = ins
        shape, ctype = self.result(op)
        dn = shlo.GatherDimensionNumbers(op.attributes["dimension_numbers"])
        offset_dims, collapsed = list(dn.offset_dims), list(dn.collapsed_slice_dims)
        start_map, ivd = list(dn.start_index_map), int(dn.index_vector_dim)
        obatch, ibatch = list(dn.operand_batching_dims), list(dn.start_indices_batching_dims)
        sizes = _ints(op.attributes["slice_sizes"])
        out = self.new(shape, ctype)
        batch_dims = [d for d in range(len(shape)) if d not in offset_dims]
        window_dims = [d for d in range(len(x.shape)) if d not in collapsed and d not in obatch]

        def body(idx):
            bidx = [idx[d] for d in batch_dims]
            comps = self._index_vector(indices, bidx, ivd, len(start_map))
            src = ["0"] * len(x.shape)
            lines = []
            for c, d in enumerate(start_map):
                s = f"g{c}"
                hi = x.shape[d] - sizes[d]
                lines.append(f"int64_t {s} = {comps[c]}; {s} = {s} < 0 ? 0 : ({s} > {hi} ? {hi} : {s});")
                src[d] = s
            for k, d in enumerate(obatch):
                ds = ibatch[k]
                src[d] = bidx[ds if ds < ivd else ds - 1]
            for k, d in enumerate(window_dims):
                o = idx[offset_dims[k]]
                src[d] = o if src[d] == "0" else f"{src[d]} + {o}"
            return lines + [f"{out.name}[{_lin(shape, idx)}] = {x.at(_lin(x.shape, src))};"]

        self.loop(shape, body)
        return [out]

    def op_scatter(self, op, ins) -> list[Val]:
        if len(ins) != 3:
            self.refuse(op, "scatters of several operands")
        x, indices, upd = ins
        shape, ctype = self.result(op)
        dn = shlo.ScatterDimensionNumbers(op.attributes["scatter_dimension_numbers"])
        uwd, inserted = list(dn.update_window_dims), list(dn.inserted_window_dims)
        smap, ivd = list(dn.scattered_dims_to_operand_dims), int(dn.index_vector_dim)
        ibatch, sbatch = list(dn.input_batching_dims), list(dn.scatter_indices_batching_dims)
        region = op.regions[0]
        combine = self._combiner(op, region, ctype)
        out = self.new(shape, ctype)
        self.copy(out.name, x)
        scatter_dims = [d for d in range(len(upd.shape)) if d not in uwd]
        window_dims = [d for d in range(len(shape)) if d not in inserted and d not in ibatch]

        def body(idx):
            sidx = [idx[d] for d in scatter_dims]
            comps = self._index_vector(indices, sidx, ivd, len(smap))
            dst = ["0"] * len(shape)
            lines = []
            for c, d in enumerate(smap):
                lines.append(f"const int64_t g{c} = {comps[c]};")
                dst[d] = f"g{c}"
            for k, d in enumerate(ibatch):
                ds = sbatch[k]
                dst[d] = sidx[ds if ds < ivd else ds - 1]
            for k, d in enumerate(window_dims):
                u = idx[uwd[k]]
                dst[d] = u if dst[d] == "0" else f"{dst[d]} + {u}"
            inside = " && ".join(f"({e}) >= 0 && ({e}) < {n}" for e, n in zip(dst, shape)) or "1"
            target = f"{out.name}[{_lin(shape, dst)}]"
            item = upd.at(_lin(upd.shape, idx))
            lines.append(f"if ({inside}) {{")
            if combine is not None:
                lines.append(f"  {target} = {combine(target, item)};")
            else:
                lines += ["  " + s for s in self._combine_general(region, ctype, target, item)]
            return lines + ["}"]

        self.loop(upd.shape, body)
        return [out]

    # ---- control flow and calls --------------------------------------------------------------
    def op_while(self, op, ins) -> list[Val]:
        carried = []
        for v in ins:
            c = self.new(v.shape, v.ctype)
            self.copy(c.name, v)
            carried.append(c)
        self.emit("for (;;) {")
        self.depth += 1
        (cond,) = self.block(op.regions[0].blocks[0], carried)
        self.emit(f"if (!{cond.at('0')}) break;")
        returned = self.block(op.regions[1].blocks[0], carried)
        names = {c.name for c in carried}
        swaps = []
        for c, r in zip(carried, returned, strict=True):  # a carried array returned in another place
            if r.name in names and r.name != c.name:
                t = self.new(r.shape, r.ctype)
                self.copy(t.name, r)
                swaps.append((c, t))
        for c, r in zip(carried, returned):
            if not (r.name in names and r.name != c.name):
                self.copy(c.name, r)
        for c, t in swaps:
            self.copy(c.name, t)
        self.depth -= 1
        self.emit("}")
        return carried

    def _branches(self, op, selector: str, regions) -> list[Val]:
        outs = [self.new(*self.result(op, k)) for k in range(len(op.results))]
        for k, region in enumerate(regions):
            head = "if" if k == 0 else "} else if"
            self.emit(f"{head} ({selector} == {k}) {{" if k < len(regions) - 1 else "} else {" if k else "{")
            self.depth += 1
            for o, v in zip(outs, self.block(region.blocks[0]), strict=True):
                self.copy(o.name, v)
            self.depth -= 1
        self.emit("}")
        return outs

    def op_case(self, op, ins) -> list[Val]:
        n = len(op.regions)
        sel = self.fresh("b")
        self.emit(f"int64_t {sel} = (int64_t){ins[0].at('0')};")
        self.emit(f"if ({sel} < 0 || {sel} >= {n}) {sel} = {n - 1};")
        return self._branches(op, sel, list(op.regions))

    def op_if(self, op, ins) -> list[Val]:
        sel = self.fresh("b")
        self.emit(f"int {sel} = {ins[0].at('0')} ? 0 : 1;")
        return self._branches(op, sel, list(op.regions))

    def op_call(self, op, ins) -> list[Val]:
        callee = str(op.attributes["callee"]).lstrip("@")
        return self._call(op, callee, ins)

    def op_composite(self, op, ins) -> list[Val]:
        callee = str(op.attributes["decomposition"]).lstrip("@")
        return self._call(op, callee, ins)

    def _call(self, op, callee: str, ins) -> list[Val]:
        cname = self.module.function(callee)
        args = [self.materialize(v).name for v in ins]
        outs = [self.new(*self.result(op, k)) for k in range(len(op.results))]
        self.emit(f"{cname}({', '.join(args + [o.name for o in outs])});")
        return outs


def _splat_value(attr, dtype):
    try:
        return np.array(attr).ravel()[0]
    except (TypeError, ValueError, RuntimeError):
        text = str(attr)
        m = re.search(r"dense<([^>]*)>", text)
        raw = m.group(1).strip()
        if raw in ("true", "false"):
            return raw == "true"
        if raw.startswith("0x"):
            return np.frombuffer(bytes.fromhex(raw[2:])[::-1], dtype)[0]
        return dtype.type(float(raw)) if dtype.kind == "f" else int(raw)


def _dense_values(attr, dtype, n: int) -> np.ndarray:
    if dtype == np.bool_:
        text = str(attr)
        flat = re.findall(r"\btrue\b|\bfalse\b", text)
        if len(flat) == n:
            return np.array([s == "true" for s in flat])
    return np.asarray(np.array(attr), dtype).ravel()


class ModuleC:
    """All functions of a module reachable from `main`, translated on demand."""

    def __init__(self, module, prefix: str):
        self.prefix = prefix
        self.funcs = {}
        for op in module.body.operations:
            if op.operation.name != "func.func":
                raise Unsupported(f"emit_c: top-level op {op.operation.name} is not supported, at {location(op)}")
            self.funcs[ir.StringAttr(op.attributes["sym_name"]).value] = op
        called_at = {}  # a private function -> where it is called from
        for name, f in self.funcs.items():
            for op in _walk(f):
                callee = _callee(op)
                if callee and callee not in called_at:
                    called_at[callee] = f" (in @{callee}, called at {location(op)}{called_at.get(name, '')})"
        for name, f in self.funcs.items():  # refuse before translating anything
            for op in _walk(f):
                if op.operation.name not in SUPPORTED:
                    refuse(op, context=called_at.get(name, ""))
        self.cnames: dict[str, str] = {}
        self.protos: list[str] = []
        self.defs: list[str] = []

    def function(self, name: str) -> str:
        if name not in self.cnames:
            if name not in self.funcs:
                raise Unsupported(f"emit_c: call of an unknown function @{name}")
            cname = f"{self.prefix}_fn_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{len(self.cnames)}"
            self.cnames[name] = cname
            proto, definition = Function(self, self.funcs[name], cname).translate()
            self.protos.append(proto)
            self.defs.append(definition)
        return self.cnames[name]
