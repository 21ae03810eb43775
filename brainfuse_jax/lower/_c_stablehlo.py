"""StableHLO -> C99 function bodies: every `func.func` of a module becomes one C function.

Each tensor SSA value is a C array of static shape (`static` storage inside its function: shapes
are static, recursion does not occur in modules from JAX); each op is a loop nest; scalar
operations are spelled by the table shared with the native loop (`brainfuse_kernels._c_ops`).
Constant splats (and their broadcasts) are C literals, broadcasts of one element read that
element, reshapes and optimisation barriers alias their operand. Consecutive elementwise ops of
one shape are fused into one loop whose intermediate values are C scalars (stored to their array
only where an op outside the loop reads them). In `main`, the ops that depend on the parameters
only (rate tables, decay factors) run only when the C function's `prep` argument is nonzero: once
per unroll. Every op outside `SUPPORTED` is refused (ValueError naming the op and its location)
before anything is translated.
"""

from __future__ import annotations

import re

import numpy as np
from brainfuse_kernels import _c_ops
from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo as shlo

from ._c_base import (_COMPARE, _ELEMENTWISE, SUPPORTED, Unsupported, Val, _callee, _dense_values, _ints,
                      _lin, _splat_value, _TypeProblem, _walk, _attr, dtype_of, location, refuse)
from ._c_indexing import IndexingOps


_PURE_REGIONS = ("stablehlo.reduce", "stablehlo.reduce_window", "stablehlo.scatter")  # regions: no captures


class Function(IndexingOps):
    """One `func.func` -> a C function `static void NAME(const T* a0, ..., T* r0, ...)`."""

    def __init__(self, module: "ModuleC", func_op, cname: str, n_invariant: int | None = None):
        self.module, self.func, self.cname = module, func_op, cname
        self.decls: list[str] = []
        self.lines: list[str] = []
        # hoisting (main): ops computing only from the first `n_invariant` arguments (the
        # parameters) run only when the C function's `prep` argument is nonzero
        self.n_invariant = n_invariant
        self.invariant: set = set()
        self.prep_lines: list[str] = []
        self.in_prep = False
        self.nesting = 0  # of blocks being emitted (hoisting looks at the function's own block only)
        self.env: dict = {}
        self.count = 0
        self.depth = 1
        self.group = None  # the open group of fused elementwise ops

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
            if self.n_invariant is not None and k < self.n_invariant:
                self.invariant.add(a)
            params.append(f"const {v.ctype}* a{k}")
            args.append(v)
        ftype = ir.FunctionType(ir.TypeAttr(self.func.attributes["function_type"]).value)
        results = [dtype_of(t) for t in ftype.results]
        params += [f"{_c_ops.CTYPES[d]}* r{k}" for k, (_, d) in enumerate(results)]
        for k in range(len(args)):
            self.emit(f"(void)a{k};")
        returned = self.block(block)
        self.stream(False)
        for k, v in enumerate(returned):
            self.copy(f"r{k}", v)
        if self.n_invariant is not None:
            params.insert(0, "int prep")
            self.lines[:0] = ["  if (prep) {", *["  " + line for line in self.prep_lines], "  }"]
        proto = f"static void {self.cname}({', '.join(params) or 'void'})"
        names = [d.split("[")[0].split()[-1] for d in self.decls]
        uses = [f"(void){n};" for n in names]  # results of multi-result ops may be unused
        uses = ["  " + " ".join(uses[k:k + 12]) for k in range(0, len(uses), 12)]
        body = [proto + " {", *["  " + d for d in self.decls], *uses, *self.lines, "}"]
        return proto + ";", "\n".join(body)

    def block(self, block, args: list[Val] | None = None) -> list[Val]:
        """Emit the ops of `block` (its arguments bound to `args`); the values its terminator returns."""
        self.nesting += 1
        try:
            return self._block(block, args)
        finally:
            self.nesting -= 1

    def _block(self, block, args: list[Val] | None) -> list[Val]:
        for a, v in zip(block.arguments, args or [], strict=False):
            self.env[a] = v
        for op in block.operations:
            name = op.operation.name
            if name in ("func.return", "stablehlo.return"):
                self.flush()
                return [self.env[o] for o in op.operands]
            if op.results and not any(len(list(r.uses)) for r in op.results):
                continue  # dead (every op translated is pure)
            if self.n_invariant is not None and self.nesting == 1:
                inv = (not op.regions or op.operation.name in _PURE_REGIONS) and all(
                    o in self.invariant for o in op.operands)
                self.stream(inv)
                if inv:
                    self.invariant.update(op.results)
            if not self._fusable(op):
                self.flush()
            outs = self.op(op)
            for r, v in zip(op.results, outs, strict=True):
                self.env[r] = v
        return []

    def stream(self, prep: bool):
        """Switch the statements emitted to the hoisted (`prep`) or the per-call part."""
        if prep != self.in_prep:
            self.flush()
            self.lines, self.prep_lines = self.prep_lines, self.lines
            self.in_prep = prep

    def _fusable(self, op) -> bool:
        """Ops that join (elementwise) or do not interrupt (no code: constants, reshapes,
        broadcasts of one element) a group of fused elementwise ops."""
        dialect, _, short = op.operation.name.partition(".")
        if dialect in ("stablehlo", "chlo") and (short in _ELEMENTWISE or short in ("compare", "convert")):
            return True
        if op.operation.name == "stablehlo.constant":
            return True
        reads_group = self.group is not None and any(self.env[o].name in self.group["scalars"] for o in op.operands)
        if op.operation.name in ("stablehlo.reshape", "stablehlo.optimization_barrier"):
            return not reads_group  # (an alias of a group's value is read from its array)
        if op.operation.name == "stablehlo.broadcast_in_dim":
            x = self.env[op.operands[0]]
            return (x.splat is not None or x.size == 1) and not reads_group
        return False

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
        out_ctype = ctype if name == "convert" else None
        if all(v.splat is not None for v in ins):
            expr = self.scalar(op, name, [v.splat for v in ins], operand_ctype, out_ctype)
            if all(v.literal for v in ins):  # folded: a literal expression
                return Val(None, shape, ctype, f"({expr})")
            out = self.new((), ctype)  # one element, computed once
            self.emit(f"{out.name}[0] = {expr};")
            return Val(None, shape, ctype, f"{out.name}[0]", literal=False)
        if not shape:
            out = self.new(shape, ctype)
            self.emit(f"{out.name}[0] = {self.scalar(op, name, [v.at('0') for v in ins], operand_ctype, out_ctype)};")
            return out
        # fused: consecutive elementwise ops of one shape share one loop, their values C scalars
        if self.group is not None and self.group["shape"] != shape:
            self.flush()
        if self.group is None:
            self.group = {"shape": shape, "items": [], "scalars": {}, "results": set()}
        g = self.group
        args = [g["scalars"][v.name] if v.name in g["scalars"] else v.at("i") if v.shape == shape else v.at("0")
                for v in ins]
        expr = self.scalar(op, name, args, operand_ctype, out_ctype)
        out = self.new(shape, ctype)
        t = self.fresh("t")
        g["scalars"][out.name] = t
        g["results"].add(op.results[0])
        g["items"].append((op.results[0], out, f"const {ctype} {t} = {expr};", t))
        return out

    def flush(self):
        """Emit the open group of fused elementwise ops: one loop; a value is stored in its array
        only if an op outside the group reads it."""
        g, self.group = self.group, None
        if g is None:
            return
        n = int(np.prod(g["shape"], dtype=np.int64))
        self.emit(f"for (int i = 0; i < {n}; ++i) {{")
        for value, out, stmt, t in g["items"]:
            self.emit("  " + stmt)
            if any(use.owner.results[0] not in g["results"] if len(use.owner.results) == 1 else True
                   for use in value.uses):
                self.emit(f"  {out.name}[i] = {t};")
        self.emit("}")

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
            return [x.like(shape, ctype)]
        if x.size == 1:  # every element is x's one element
            return [Val(None, shape, ctype, x.at("0"), literal=False)]
        dims = _ints(op.attributes["broadcast_dimensions"])
        out = self.new(shape, ctype)

        def body(idx):
            src = [idx[d] if x.shape[k] != 1 else "0" for k, d in enumerate(dims)]
            return [f"{out.name}[{_lin(shape, idx)}] = {x.at(_lin(x.shape, src))};"]

        self.loop(shape, body)
        return [out]

    def op_reshape(self, op, ins) -> list[Val]:
        shape, ctype = self.result(op)
        return [ins[0].like(shape, ctype) if ins[0].splat is not None else Val(ins[0].name, shape, ctype)]

    def op_optimization_barrier(self, op, ins) -> list[Val]:
        return list(ins)

    def op_transpose(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        perm = _ints(op.attributes["permutation"])
        if x.splat is not None:
            return [x.like(shape, ctype)]
        out = self.new(shape, ctype)

        def body(idx):
            src = [None] * len(perm)
            for j, p in enumerate(perm):
                src[p] = idx[j]
            return [f"{out.name}[{_lin(shape, idx)}] = {x.at(_lin(x.shape, src))};"]

        self.loop(shape, body)
        return [out]

    def op_reverse(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        if x.splat is not None:
            return [x.like(shape, ctype)]
        dims = _ints(op.attributes["dimensions"])
        out = self.new(shape, ctype)
        self.loop(shape, lambda idx: [f"{out.name}[{_lin(shape, idx)}] = " + x.at(_lin(x.shape, [
            f"{n - 1} - {i}" if d in dims else i for d, (n, i) in enumerate(zip(shape, idx))])) + ";"])
        return [out]

    def op_slice(self, op, ins) -> list[Val]:
        (x,) = ins
        shape, ctype = self.result(op)
        if x.splat is not None:
            return [x.like(shape, ctype)]
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
            return [x.like(shape, ctype)]
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
        # a broadcast element may read a carried array: into its own array before any copy back
        returned = [self.materialize(r) if not r.literal else r for r in returned]
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

    def function(self, name: str, n_invariant: int | None = None) -> str:
        """The C name of function `name`, translated at first use. `n_invariant`: its first
        arguments are loop-invariant (the C function takes `int prep` first; module docstring)."""
        if name not in self.cnames:
            if name not in self.funcs:
                raise Unsupported(f"emit_c: call of an unknown function @{name}")
            cname = f"{self.prefix}_fn_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{len(self.cnames)}"
            self.cnames[name] = cname
            proto, definition = Function(self, self.funcs[name], cname, n_invariant).translate()
            self.protos.append(proto)
            self.defs.append(definition)
        return self.cnames[name]
