"""Fused Pallas kernels: a block of neurons advanced over all time steps with the state on-chip,
and the matching backward kernel (discrete adjoint, recomputed from checkpoints).

The kernels are generated from the model: each program instance rebuilds the neuron from its
parameters and calls `model.step` on a `(block_neurons,)` slice, so a user's custom channel gets
a fused kernel without kernel code. The maths is therefore the XLA path's, operation for
operation; only the loop structure differs.

Layout: inputs, records and input cotangents are time-major `(T, N)` arrays; the state,
parameters and totals `(N,)`. The grid runs over neuron blocks only (each program owns one
block for the whole run), so it needs no cross-program synchronisation: on a GPU the programs run
in parallel, on a CPU (`interpret=True`) one after another.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from ._elementwise import coupling_primitives, elementwise_error, primitive_names


def _flat(tree):
    return jax.tree.flatten(tree)


def pallas_unroll(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                  n_steps: int, every: int, *, truncate: bool = False, block_neurons: int | None = None,
                  interpret: bool | None = None):
    """`(final_state, {name: (B, T, ...)} | {name: (B, ...)})` as `simulate` returns them, computed by
    the fused forward kernel, differentiable through the fused backward kernel
    (`jax.custom_vjp`; checkpoints every `every` steps).

    **Arguments** (besides `simulate`'s): `block_neurons`, neurons per program (default: all of
    them in interpret mode, 128 on a GPU); `interpret`: run the kernels in Pallas interpret mode
    (default: when JAX's default backend is the CPU).
    """
    if not isinstance(dt, float):
        raise ValueError("backend='pallas' needs a concrete time step dt (a Python float in ms), not a traced "
                         "value: the kernels are specialised to it")
    batch = tuple(model.input_shape(state0))
    n = math.prod(batch)
    s_leaves, s_def = _flat(state0)
    x_leaves, x_def = _flat(inputs)
    for leaf in s_leaves:
        if tuple(leaf.shape) != batch:
            raise ValueError(f"backend='pallas' needs a model whose state leaves all have the batch shape {batch} "
                             f"(elementwise over neurons); got a state leaf of shape {tuple(leaf.shape)}")
    for leaf in x_leaves:
        if tuple(leaf.shape) != (batch[0], n_steps, *batch[1:]):
            raise ValueError(f"backend='pallas' needs inputs of shape {(batch[0], n_steps, *batch[1:])} (one value "
                             f"per neuron and step); got {tuple(leaf.shape)}")
    params, static = eqx.partition(model, eqx.is_inexact_array)
    p_leaves, p_def = _flat(params)
    scalar = [jnp.ndim(p) == 0 for p in p_leaves]
    for p in p_leaves:
        if jnp.ndim(p) and jnp.broadcast_shapes(jnp.shape(p), batch) != batch:
            raise ValueError(f"backend='pallas' needs a step that is elementwise over neurons, with parameters that "
                             f"are scalars or broadcast to the batch shape {batch}; got a parameter of shape "
                             f"{jnp.shape(p)} (e.g. recurrent weights): use backend='xla'")
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    bn = (n if interpret else 128) if block_neurons is None else block_neurons
    if not isinstance(bn, int) or isinstance(bn, bool) or bn <= 0:
        raise ValueError(f"block_neurons must be a positive int, got {block_neurons!r}")
    n_pad = -(-n // bn) * bn
    dtype = jnp.result_type(*s_leaves)

    def to_lanes(a):  # batch-shaped -> (n_pad,), padded with copies of the last neuron
        a = jnp.reshape(jnp.broadcast_to(a, batch), (n,))
        return jnp.pad(a, (0, n_pad - n), mode="edge")

    def time_major(a):  # (B, T, *rest) -> (T, n_pad)
        a = jnp.moveaxis(a, 1, 0).reshape(n_steps, n)
        return jnp.pad(a, ((0, 0), (0, n_pad - n)), mode="edge")

    ps = [jnp.reshape(p, (1,)) for p, sc in zip(p_leaves, scalar) if sc]
    pv = [to_lanes(p) for p, sc in zip(p_leaves, scalar) if not sc]
    s0 = [to_lanes(s) for s in s_leaves]
    xs = [time_major(x).astype(jnp.result_type(x, dtype)) for x in x_leaves]
    shapes = _Shapes(p_def, scalar, static, s_def, x_def, per_step, totals, dt, dtype)
    probe = (ps, [p[:2] for p in pv], [s[:2] for s in s0], [x[0, :2] for x in xs])
    bad = coupling_primitives(jax.make_jaxpr(lambda pv_, s, x: shapes.step(probe[0], pv_, s, x))(*probe[1:]),
                              tuple(jnp.shape(probe[2][0])) if probe[2] else (2,))
    if bad:
        raise ValueError(elementwise_error(bad, "backend='pallas'"))
    used = primitive_names(jax.make_jaxpr(shapes.step)(*probe))
    if used & _GATHERS:
        raise ValueError(f"backend='pallas': the model's step uses {sorted(used & _GATHERS)} (e.g. the rate tables "
                         "of scheme='neuron'), which Pallas GPU kernels cannot lower; use scheme='exp_euler', "
                         "'backward_euler' or 'rk4', or backend='xla'")
    fused = _make_fused(shapes, n_steps, every, bn, n_pad, truncate, interpret)
    fin, recs, tots = fused(ps, pv, s0, xs)

    def from_lanes(a):
        return a[:n].reshape(batch)

    def from_time_major(a):
        return jnp.moveaxis(a[:, :n].reshape(n_steps, *batch), 0, 1)

    final = jax.tree.unflatten(s_def, [from_lanes(a) for a in fin])
    rec_tree = jax.tree.unflatten(shapes.rec_def, [from_time_major(a) for a in recs])
    tot_tree = jax.tree.unflatten(shapes.tot_def, [from_lanes(a) for a in tots])
    return final, {**rec_tree, **tot_tree}


_GATHERS = {"gather", "scatter", "scatter-add"}


class _Shapes:
    """The static structure shared by the two kernels, and the step function they call."""

    def __init__(self, p_def, scalar, static, s_def, x_def, per_step, totals, dt, dtype):
        self.p_def, self.scalar, self.static = p_def, scalar, static
        self.s_def, self.x_def, self.per_step, self.totals, self.dt = s_def, x_def, per_step, totals, dt
        self.n_ps = sum(scalar)
        self.n_pv = len(scalar) - self.n_ps
        self.n_s = s_def.num_leaves
        self.n_x = x_def.num_leaves
        probe_p = jax.tree.unflatten(p_def, [jnp.zeros((), dtype) if sc else jnp.zeros((2,), dtype) for sc in scalar])
        probe_s = jax.tree.unflatten(s_def, [jnp.zeros((2,), dtype)] * self.n_s)
        probe_x = jax.tree.unflatten(x_def, [jnp.zeros((2,), dtype)] * self.n_x)
        _, rec, tot = jax.eval_shape(self._step_trees, probe_p, probe_s, probe_x)
        self.rec_def = jax.tree.structure(rec)
        self.tot_def = jax.tree.structure(tot)
        self.rec_dtypes = [a.dtype for a in jax.tree.leaves(rec)]
        self.tot_dtypes = [a.dtype for a in jax.tree.leaves(tot)]
        for a in jax.tree.leaves((rec, tot)):
            if a.shape != (2,):
                raise ValueError("backend='pallas' records must be one value per neuron and step (the state's batch "
                                 f"shape); got a record of shape {a.shape} for a batch of shape (2,)")

    def _step_trees(self, params, state, x):
        new, out = eqx.combine(params, self.static).step(state, x, self.dt)
        return (new, {k: f(new, out) for k, f in self.per_step.items()},
                {k: f(new, out) for k, f in self.totals.items()})

    def step(self, ps, pv, s, x):
        """One step on flat leaf lists: `(new state leaves, record leaves, total leaves)`."""
        ps, pv = iter(ps), iter(pv)
        p = [next(ps) if sc else next(pv) for sc in self.scalar]
        new, rec, tot = self._step_trees(jax.tree.unflatten(self.p_def, p), jax.tree.unflatten(self.s_def, s),
                                         jax.tree.unflatten(self.x_def, x))
        return jax.tree.leaves(new), jax.tree.leaves(rec), jax.tree.leaves(tot)


def _split(refs, *counts):
    out, i = [], 0
    for c in counts:
        out.append(list(refs[i:i + c]))
        i += c
    return out


def _make_fused(sh: _Shapes, n_steps: int, every: int, bn: int, n_pad: int, truncate: bool, interpret: bool):
    k_len = min(every, n_steps)
    n_blocks, tail = divmod(n_steps, k_len)
    n_ck = n_blocks + (1 if tail else 0)
    grid = (n_pad // bn,)
    lanes = pl.BlockSpec((bn,), lambda i: (i,))
    one = pl.BlockSpec((1,), lambda i: (0,))

    def columns(rows):
        return pl.BlockSpec((rows, bn), lambda i: (0, i))

    n_r, n_t = sh.rec_def.num_leaves, sh.tot_def.num_leaves

    # ---- forward ---------------------------------------------------------------------------
    def forward_kernel(*refs):
        x_r, ps_r, pv_r, s0_r, fin_r, rec_r, tot_r, ck_r = _split(
            refs, sh.n_x, sh.n_ps, sh.n_pv, sh.n_s, sh.n_s, n_r, n_t, sh.n_s)
        ps = [r[0] for r in ps_r]
        pv = [r[...] for r in pv_r]

        def step_at(t, carry):
            s, tot = carry
            new, rec, dtot = sh.step(ps, pv, s, [r[t, :] for r in x_r])
            for r, v in zip(rec_r, rec):
                r[t, :] = v.astype(r.dtype)
            return new, [a + b for a, b in zip(tot, dtot)]

        def block(b, carry):
            for r, v in zip(ck_r, carry[0]):
                r[b, :] = v
            return jax.lax.fori_loop(b * k_len, (b + 1) * k_len, step_at, carry)

        tot0 = [jnp.zeros((bn,), d) for d in sh.tot_dtypes]
        carry = jax.lax.fori_loop(0, n_blocks, block, ([r[...] for r in s0_r], tot0))
        if tail:
            for r, v in zip(ck_r, carry[0]):
                r[n_blocks, :] = v
            carry = jax.lax.fori_loop(n_blocks * k_len, n_steps, step_at, carry)
        for r, v in zip(fin_r, carry[0]):
            r[...] = v
        for r, v in zip(tot_r, carry[1]):
            r[...] = v

    def forward(ps, pv, s0, xs):
        dtype = s0[0].dtype
        out_shape = ([jax.ShapeDtypeStruct((n_pad,), s.dtype) for s in s0]
                     + [jax.ShapeDtypeStruct((n_steps, n_pad), d) for d in sh.rec_dtypes]
                     + [jax.ShapeDtypeStruct((n_pad,), d) for d in sh.tot_dtypes]
                     + [jax.ShapeDtypeStruct((n_ck, n_pad), s.dtype) for s in s0])
        del dtype
        out = pl.pallas_call(
            forward_kernel, out_shape=out_shape, grid=grid, interpret=interpret, name="brainfuse_forward",
            in_specs=[columns(n_steps)] * sh.n_x + [one] * sh.n_ps + [lanes] * (sh.n_pv + sh.n_s),
            out_specs=[lanes] * sh.n_s + [columns(n_steps)] * n_r + [lanes] * n_t + [columns(n_ck)] * sh.n_s,
        )(*xs, *ps, *pv, *s0)
        return _split(out, sh.n_s, n_r, n_t, sh.n_s)

    # ---- backward --------------------------------------------------------------------------
    def backward_kernel(*refs):
        (x_r, ps_r, pv_r, ck_r, ctf_r, ctr_r, ctt_r,
         dx_r, dps_r, dpv_r, ds0_r, ws_r) = _split(
            refs, sh.n_x, sh.n_ps, sh.n_pv, sh.n_s, sh.n_s, n_r, n_t,
            sh.n_x, sh.n_ps, sh.n_pv, sh.n_s, sh.n_s)
        # Scalar parameters as per-neuron copies: the VJP then returns per-neuron cotangents,
        # summed over neurons outside the kernel.
        ps = [jnp.full((bn,), r[0]) for r in ps_r]
        pv = [r[...] for r in pv_r]
        ct_tot = [r[...] for r in ctt_r]

        def f(p, s, x):
            return sh.step(p[:sh.n_ps], p[sh.n_ps:], s, x)

        def one_block(start, length, ck_index, carry):
            def recompute(k, s):
                for r, v in zip(ws_r, s):
                    r[k, :] = v
                return f(ps + pv, s, [r[start + k, :] for r in x_r])[0]

            jax.lax.fori_loop(0, length, recompute, [r[ck_index, :] for r in ck_r])

            def reverse(j, carry):
                adj, gp = carry
                k = length - 1 - j
                t = start + k
                _, vjp = jax.vjp(f, ps + pv, [r[k, :] for r in ws_r], [r[t, :] for r in x_r])
                rec_ct = [r[t, :] for r in ctr_r]
                dp, ds, dx = vjp((adj, rec_ct, ct_tot))
                for r, v in zip(dx_r, dx):
                    r[t, :] = v
                return ds, [a + b for a, b in zip(gp, dp)]

            return jax.lax.fori_loop(0, length, reverse, carry)

        carry = ([r[...] for r in ctf_r], [jnp.zeros_like(p) for p in ps + pv])
        if tail:
            carry = one_block(n_blocks * k_len, tail, n_blocks, carry)
            if truncate and n_blocks:
                carry = ([jnp.zeros_like(a) for a in carry[0]], carry[1])

        def block(j, carry):
            b = n_blocks - 1 - j
            adj, gp = one_block(b * k_len, k_len, b, carry)
            if truncate:  # the state entering block b > 0 was stop_gradient-ed
                adj = [jnp.where(b > 0, jnp.zeros_like(a), a) for a in adj]
            return adj, gp

        adj, gp = jax.lax.fori_loop(0, n_blocks, block, carry)
        for r, v in zip(dps_r + dpv_r, gp):
            r[...] = v
        for r, v in zip(ds0_r, adj):
            r[...] = v

    def backward(ps, pv, ck, xs, ct_fin, ct_rec, ct_tot):
        dtype = ck[0].dtype
        out_shape = ([jax.ShapeDtypeStruct((n_steps, n_pad), x.dtype) for x in xs]
                     + [jax.ShapeDtypeStruct((n_pad,), p.dtype) for p in ps + pv]
                     + [jax.ShapeDtypeStruct((n_pad,), c.dtype) for c in ck]
                     + [jax.ShapeDtypeStruct((k_len, n_pad), dtype)] * sh.n_s)
        out = pl.pallas_call(
            backward_kernel, out_shape=out_shape, grid=grid, interpret=interpret, name="brainfuse_backward",
            in_specs=([columns(n_steps)] * sh.n_x + [one] * sh.n_ps + [lanes] * sh.n_pv + [columns(n_ck)] * sh.n_s
                      + [lanes] * sh.n_s + [columns(n_steps)] * n_r + [lanes] * n_t),
            out_specs=([columns(n_steps)] * sh.n_x + [lanes] * (sh.n_ps + sh.n_pv + sh.n_s)
                       + [columns(k_len)] * sh.n_s),
        )(*xs, *ps, *pv, *ck, *ct_fin, *ct_rec, *ct_tot)
        dx, dps, dpv, ds0, _ = _split(out, sh.n_x, sh.n_ps, sh.n_pv, sh.n_s, sh.n_s)
        return dx, dps, dpv, ds0

    @jax.custom_vjp
    def fused(ps, pv, s0, xs):
        fin, rec, tot, _ = forward(ps, pv, s0, xs)
        return fin, rec, tot

    def fused_fwd(ps, pv, s0, xs):
        fin, rec, tot, ck = forward(ps, pv, s0, xs)
        return (fin, rec, tot), (ps, pv, ck, xs)

    def fused_bwd(res, cts):
        ps, pv, ck, xs = res
        ct_fin, ct_rec, ct_tot = cts
        dx, dps, dpv, ds0 = backward(ps, pv, ck, xs, ct_fin, ct_rec, ct_tot)
        dps = [jnp.sum(d, keepdims=True).astype(p.dtype) for d, p in zip(dps, ps)]
        return dps, dpv, ds0, dx

    fused.defvjp(fused_fwd, fused_bwd)
    return fused
