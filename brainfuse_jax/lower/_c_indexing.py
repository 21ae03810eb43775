"""StableHLO -> C99: contractions, reductions, gathers and scatters (a mixin of
`_c_stablehlo.Function`)."""

from __future__ import annotations

from brainfuse_kernels import _c_ops
from jaxlib.mlir.dialects import stablehlo as shlo

from ._c_base import _ELEMENTWISE, Val, _attr, _ints, _lin


class IndexingOps:
    """dot_general, reduce, reduce_window, gather, scatter."""

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

    def _combine_general(self, region, ctypes: list[str], accs: list[str], xs: list[str]) -> list[str]:
        """Lines applying a general scalar region to the accumulators `accs` and the items `xs`
        (its arguments: all accumulators, then all items), leaving the results in `accs`."""
        args = []
        for ctype in [*ctypes, *ctypes]:
            v = Val(self.fresh("r"), (), ctype)
            self.decls.append(f"static {ctype} {v.name}[1];")
            args.append(v)
        saved, self.lines = self.lines, []
        depth, self.depth = self.depth, 0
        self.lines += [f"{v.name}[0] = {e};" for v, e in zip(args, [*accs, *xs])]
        results = self.block(region.blocks[0], args)
        self.lines += [f"{acc} = {res.at('0')};" for acc, res in zip(accs, results, strict=True)]
        lines, self.lines, self.depth = self.lines, saved, depth
        return lines

    def op_reduce(self, op, ins) -> list[Val]:
        n = len(ins) // 2
        xs, inits = ins[:n], ins[n:]
        shape = self.result(op)[0]
        ctypes = [self.result(op, k)[1] for k in range(n)]
        dims = _ints(op.attributes["dimensions"])
        region = op.regions[0]
        combine = self._combiner(op, region, ctypes[0]) if n == 1 else None
        outs = [self.new(shape, c) for c in ctypes]
        rank = len(xs[0].shape)
        keep = [d for d in range(rank) if d not in dims]

        def body(idx):
            src = [None] * rank
            for k, d in enumerate(keep):
                src[d] = idx[k]
            rvars = [f"j{k}" for k in range(len(dims))]
            for k, d in enumerate(dims):
                src[d] = rvars[k]
            accs = [f"acc{k}" for k in range(n)]
            lines = [f"{c} {a} = {i.at('0')};" for c, a, i in zip(ctypes, accs, inits)]
            lines += [f"for (int {v} = 0; {v} < {xs[0].shape[d]}; ++{v})" for v, d in zip(rvars, dims)]
            items = [x.at(_lin(x.shape, src)) for x in xs]
            if combine is not None:
                lines.append(f"  acc0 = {combine('acc0', items[0])};")
            else:
                lines += ["{"] + ["  " + s for s in self._combine_general(region, ctypes, accs, items)] + ["}"]
            return lines + [f"{o.name}[{_lin(shape, idx)}] = {a};" for o, a in zip(outs, accs)]

        self.loop(shape, body)
        return outs

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
        scan = self._prefix_axis(x.shape, shape, win, strides, bdil, wdil, pad)
        if combine is not None and scan is not None:  # a cumulative sum/product/max: one running pass
            def running(idx):
                src = [*idx[:scan], "s", *idx[scan:]]
                return [f"{ctype} acc = {init.at('0')};", f"for (int s = 0; s < {x.shape[scan]}; ++s) {{",
                        f"  acc = {combine('acc', x.at(_lin(x.shape, src)))};",
                        f"  {out.name}[{_lin(shape, src)}] = acc;", "}"]

            self.loop([n for d, n in enumerate(shape) if d != scan], running)
            return [out]

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
                lines += ["    " + s for s in self._combine_general(region, [ctype], ["acc"], [item])]
            return lines + ["  }", f"{out.name}[{_lin(shape, idx)}] = acc;"]

        self.loop(shape, body)
        return [out]

    @staticmethod
    def _prefix_axis(in_shape, shape, win, strides, bdil, wdil, pad) -> int | None:
        """The axis of a prefix reduction (what `jnp.cumsum` and friends lower to: a window as long
        as the axis, padded by its length - 1 below, unit strides and dilations), else None. Its
        literal translation costs n^2 / 2 operations; a running accumulator, combining the
        elements in the same order (so the same rounding), costs n."""
        axes = [d for d, w in enumerate(win) if w != 1]
        if len(axes) != 1 or list(in_shape) != list(shape) or any(v != 1 for v in (*strides, *bdil, *wdil)):
            return None
        d = axes[0]
        n = in_shape[d]
        want = [0] * (2 * len(in_shape))
        want[2 * d] = n - 1
        return d if win[d] == n and list(pad) == want else None

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
                lines += ["  " + s for s in self._combine_general(region, [ctype], [target], [item])]
            return lines + ["}"]

        self.loop(upd.shape, body)
        return [out]
