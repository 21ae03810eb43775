"""How `simulate` is differentiated: the memory/compute policy of the backward pass, as a value.

- `DirectAdjoint()`: JAX autodiff through the `lax.scan` (it stores every step's intermediates).
- `CheckpointAdjoint(every=K)`: a `jax.custom_vjp` whose backward pass is the discrete adjoint
  recursion of the time-stepping map, run in reverse over blocks of K steps: each block's states
  are recomputed from a checkpoint saved by the forward pass, then the block is walked backwards
  with the exact vector-Jacobian product of one step (`jax.vjp` of `model.step`, the derivative
  of the discretised update, not of an approximation). Memory: O(T/K * N) for the checkpoints +
  O(K * N) for one block's states, instead of O(T * N * intermediates).

For a scheme `s_{t+1} = f(s_t, x_t, theta)` and a loss `L(s_1..s_T)` the backward pass computes
`lambda_t = dL/ds_t + (df/ds)^T lambda_{t+1}`, `dL/dtheta = sum_t (df/dtheta)^T lambda_{t+1}` and
`dL/dx_t = (df/dx)^T lambda_{t+1}`, which is what autodiff through the scan computes too (the
two agree to rounding; tests/test_adjoint.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from . import _native_loop
from ._validate import check_finite_block


class DirectAdjoint(eqx.Module):
    """Differentiate `simulate` by autodiff through its `lax.scan` (with `simulate(remat=True)`,
    each step is rematerialised). Fastest backward pass for short runs; memory grows with
    T x N x (intermediates of one step)."""


class ForwardMode(eqx.Module):
    """Differentiate `simulate` w.r.t. the model's parameters by forward sensitivities: the
    backward pass runs the simulation once more, carrying the derivative of the state w.r.t. each
    differentiated parameter leaf alongside it (`jax.jvp` of the step, all leaves at once), and
    contracts it with the incoming cotangents step by step. No states are stored: memory is
    O(N x n_states x P) for P differentiated parameter leaves, whatever T is, and the cost grows
    with P, so it suits fitting a few conductances (`fit`), not training many weights.

    Per-neuron parameters (arrays over the batch) are seeded with one tangent for all neurons at
    once, which is exact because neurons do not interact (checked: the step must be elementwise
    over neurons). Gradients w.r.t. the inputs or the initial state are not available: a
    `ValueError` says so if they are requested (use `CheckpointAdjoint`).

    **Arguments:**
    - `native`: on the CPU, run the sensitivities as one compiled loop generated from the model's
      step (C++ built with the machine's compiler at first use and cached, called through XLA's
      FFI; `brainfuse_jax._native_loop`). `None` (default): when it can (a compiler, a concrete
      dt, states and records one number per neuron, parameters scalars or per neuron, inputs
      `(B, T)`), else the XLA loop; `True`: always (`ValueError` where no compiler or backend
      allows it); `False`: never.
    """

    native: bool | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.native is not None and not isinstance(self.native, bool):
            raise TypeError(f"ForwardMode.native must be True, False or None, got {self.native!r}")


class CheckpointAdjoint(eqx.Module):
    """Differentiate `simulate` with a derived backward pass (the discrete adjoint of the time
    step), from states saved every `every` steps. The default for both backends.

    **Arguments:**
    - `every`: steps between checkpoints (K). The forward pass stores T/K states; the backward
      pass recomputes one block of K steps at a time from its checkpoint (storing that block's K
      states), then walks it backwards, each step's VJP recomputing the step's intermediates.
      `None` (default): K ~ sqrt(T) (a divisor of T near it if there is one), which minimises the
      stored states (T/K + K), or the smallest K whose checkpoints fit in `memory_mb` MiB if that
      is larger. (Storing every state,
      or each step's VJP residuals, was measured slower on CPU: the memory traffic costs more than
      one recomputed forward pass; docs/benchmarks.md.)
    - `memory_mb`: the budget (MiB) for the checkpoints used when `every` is None.
    """

    every: int | None = eqx.field(static=True, default=None)
    memory_mb: float = eqx.field(static=True, default=128.0)

    def __check_init__(self):
        if self.every is not None and (not isinstance(self.every, int) or isinstance(self.every, bool)
                                       or self.every <= 0):
            raise ValueError(f"CheckpointAdjoint.every must be a positive int (steps) or None, got {self.every!r}")
        if not self.memory_mb > 0:
            raise ValueError(f"CheckpointAdjoint.memory_mb must be > 0 (MiB), got {self.memory_mb!r}")

    def interval(self, n_steps: int, state) -> int:
        """The checkpoint interval K used for `n_steps` steps of `state` (a pytree of arrays)."""
        if self.every is not None:
            return min(self.every, n_steps)
        per_step = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(state))
        fit = -(-n_steps * per_step // int(self.memory_mb * 2**20))  # checkpoints within the budget
        root = math.isqrt(n_steps - 1) + 1  # ceil(sqrt(T))
        return min(n_steps, block_size(n_steps, root) if fit <= root else fit)


def block_size(n_steps: int, target: int) -> int:
    """A block length near `target` that divides `n_steps` if one exists in [target/4, 2 target]
    (so that an unroll in blocks compiles one loop body, not a second one for a tail)."""
    if n_steps <= 2 * target:
        return max(n_steps, 1)
    divisors = [k for k in range(max(target // 4, 1), 2 * target + 1) if n_steps % k == 0]
    return min(divisors, key=lambda k: abs(k - target)) if divisors else target


def _zeros_ct(x):
    """A zero cotangent for primal `x` (float0 for integer/bool arrays)."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, x.dtype)
    return jnp.zeros(x.shape, jax.dtypes.float0)


def _with_leaves(tree, idx, values):
    """`tree` with its leaves number `idx[j]` replaced by `values[j]`."""
    leaves, treedef = jax.tree.flatten(tree)
    for j, i in enumerate(idx):
        leaves[i] = values[j]
    return jax.tree.unflatten(treedef, leaves)


def _swap(tree):
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), tree)


def _slice_time(tree, start, length):
    return jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, length, axis=1), tree)


@jax.custom_jvp
def _write_time(buffer, block, start):
    """`buffer` (B, T, ...) with `block` (B, K, ...) written at time `start` (in place, when
    `buffer` is a loop carry). For buffers whose every slice is written once, into zeros: it is
    differentiated as `buffer + block` placed at `start`, so that the transposed loop (reverse
    mode) passes the buffer's cotangent through and only slices it, where the derivative of an
    overwrite would zero its slice of a T-sized cotangent at every block (XLA then copies it)."""
    return jax.lax.dynamic_update_slice_in_dim(buffer, block, start, axis=1)


@_write_time.defjvp
def _write_time_jvp(primals, tangents):
    buffer, block, start = primals
    d_buffer, d_block, _ = tangents
    placed = jax.lax.dynamic_update_slice_in_dim(jnp.zeros_like(d_buffer), d_block, start, axis=1)
    return _write_time(buffer, block, start), d_buffer + placed  # XLA: one in-place update


def _blocks_to_time(tree):
    """(n_blocks, B, K, ...) -> (B, n_blocks * K, ...)."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1).reshape(a.shape[1], a.shape[0] * a.shape[2], *a.shape[3:]),
                        tree)


def _internal_names(per_step, totals):
    """Records renamed "p0", "p1", ..., "t0", ... (user names may be None, which cannot share a
    dict with string names), and the map back."""
    names = {**{f"p{i}": k for i, k in enumerate(per_step)}, **{f"t{i}": k for i, k in enumerate(totals)}}
    return (names, {f"p{i}": f for i, f in enumerate(per_step.values())},
            {f"t{i}": f for i, f in enumerate(totals.values())})


def checkpointed_unroll(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                        n_steps: int, every: int, *, truncate: bool, scan: Callable):
    """`(final_state, {name: (B, T, ...) per-step record, name: (B, ...) total})` of `n_steps`
    steps of `model.step`, differentiable through `CheckpointAdjoint`'s backward pass.

    `every` is the checkpoint interval K (an int); `truncate=True` cuts the adjoint every K steps
    (truncated BPTT in chunks of K); `scan(model, state0, inputs, dt, per_step, totals, n_steps,
    block=K, checkpoints=True)` is the forward unroll (simulate's), which also returns the states
    entering its blocks.
    """
    names, per_step, totals = _internal_names(per_step, totals)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    n_blocks, tail = divmod(n_steps, every)

    def step_records(p, s, x, dt_):
        new, out = eqx.combine(p, static).step(s, x, dt_)
        return new, {k: f(new, out) for k, f in per_step.items()}, {k: f(new, out) for k, f in totals.items()}

    def run(p, state0_, inputs_, dt_):
        return scan(eqx.combine(p, static), state0_, inputs_, dt_, per_step, totals, n_steps)

    def forward_saving(p, state0_, inputs_, dt_):
        """The forward pass (simulate's blocked unroll, in blocks of K) plus the state entering each
        block (as (n_blocks, ...)) and the tail's."""
        final, rec, saved = scan(eqx.combine(p, static), state0_, inputs_, dt_, per_step, totals, n_steps,
                                 block=every, checkpoints=True)
        return (final, rec), saved

    def block_backward(p, want, dt_, start, ckpt, xb, ct_rec, ct_tot, carry):
        """Reverse over the block of steps starting at `start` from `ckpt`, the state entering it:
        the block's states are recomputed (stored time-major, O(K) states), then walked back with
        each step's VJP (which recomputes that step's intermediates in registers: storing them
        instead, or storing every state, costs more in memory traffic than it saves).

        `want = (indices of the differentiated leaves of p, inputs differentiated?, dt
        differentiated?)`: only those cotangents are computed. (A cotangent of a scalar parameter
        is a sum over the neurons at every step; computing all of them doubled the cost of a
        reverse HH step.)"""
        idx, want_x, want_dt = want
        p_leaves = jax.tree.leaves(p)
        xs = _swap(xb)
        states = jax.lax.scan(lambda s, x: (step_records(p, s, x, dt_)[0], s), ckpt, xs)[1]
        length = jax.tree.leaves(xs)[0].shape[0]

        def rev_body(carry, inp):
            adj, gp, gdt = carry
            k, ct, s, x = inp

            def f(diff, s_, *rest):
                return step_records(_with_leaves(p, idx, diff), s_, rest[0] if want_x else x,
                                    rest[-1] if want_dt else dt_)

            primals = ([p_leaves[i] for i in idx], s, *([x] if want_x else []), *([dt_] if want_dt else []))
            cts = jax.vjp(f, *primals)[1]((adj, ct, ct_tot))
            dp, ds = cts[0], cts[1]
            if truncate:  # the state entering step t (t > 0, t % K == 0) was stop_gradient-ed
                t = start + k
                cut = (t > 0) & (t % every == 0)
                ds = jax.tree.map(lambda a: a if a.dtype == jax.dtypes.float0 else jnp.where(cut, 0.0, a), ds)
            return (ds, [a + b for a, b in zip(gp, dp)], gdt + cts[-1] if want_dt else gdt), \
                (cts[2] if want_x else None)

        carry, dxs = jax.lax.scan(rev_body, carry, (jnp.arange(length), _swap(ct_rec), states, xs), reverse=True)
        return carry, _swap(dxs)

    @jax.custom_vjp
    def unroll(p, state0_, inputs_, dt_):
        return run(p, state0_, inputs_, dt_)

    def unroll_fwd(p, state0_, inputs_, dt_):
        values = jax.tree.map(lambda leaf: leaf.value, (p, state0_, inputs_, dt_))
        want = (tuple(i for i, leaf in enumerate(jax.tree.leaves(p)) if leaf.perturbed),
                any(leaf.perturbed for leaf in jax.tree.leaves(inputs_)), dt_.perturbed)
        out, saved = forward_saving(*values)
        return out, (saved, values[0], values[2], values[3], want)

    def unroll_bwd(res, cts):
        saved, p, inputs_, dt_, want = res
        idx, want_x, _ = want
        cts = jax.tree.map(lambda c: jnp.zeros(c.aval.shape, c.aval.dtype) if isinstance(c, SymbolicZero) else c,
                           cts, is_leaf=lambda c: isinstance(c, SymbolicZero))
        ct_final, ct_out = cts
        ct_rec = {k: ct_out[k] for k in per_step}
        ct_tot = {k: ct_out[k] for k in totals}
        p_leaves = jax.tree.leaves(p)
        carry = (ct_final, [jnp.zeros_like(p_leaves[i]) for i in idx], jnp.zeros_like(dt_))
        ckpts, tail_ckpt = saved

        def block(carry, start, size, ckpt):
            # checked here too: under grad alone the forward's last block is dead code (only the
            # primal output needs it), and so is its check
            return block_backward(p, want, dt_, start, ckpt, check_finite_block(_slice_time(inputs_, start, size)),
                                  _slice_time(ct_rec, start, size), ct_tot, carry)

        dx_tail = None
        if tail:
            carry, dx_tail = block(carry, n_blocks * every, tail, tail_ckpt)

        def body(carry, b):
            return block(carry, b * every, every, jax.tree.map(lambda c: c[b], ckpts))

        (adj, gp, gdt), dxs = jax.lax.scan(body, carry, jnp.arange(n_blocks), reverse=True)
        if want_x:
            dx = _blocks_to_time(dxs)
            if tail:
                dx = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), dx, dx_tail)
        else:
            dx = jax.tree.map(jnp.zeros_like, inputs_)
        return _with_leaves(jax.tree.map(jnp.zeros_like, p), idx, gp), adj, dx, gdt

    unroll.defvjp(unroll_fwd, unroll_bwd, symbolic_zeros=True)
    final, rec = unroll(params, state0, inputs, jnp.asarray(dt, jnp.result_type(*jax.tree.leaves(inputs))))
    return final, {names[k]: v for k, v in rec.items()}


class _TangentPair:
    """A stand-in neuron for simulate's unroll whose state is (state, tangents) and whose output
    is (totals, their tangents)."""

    def __init__(self, step):
        self.step = step


def _pair_step(tangent_step, p, seeds, st, x, dt_):
    (new, _, tot), (dnew, _, dtot) = tangent_step(p, seeds, st[0], st[1], x, dt_)
    return (new, dnew), (tot, dtot)


def _unbroadcast(x, shape):
    """Sum `x` down to `shape` (the inverse of broadcasting `shape` to `x.shape`)."""
    x = jnp.sum(x, axis=tuple(range(x.ndim - len(shape)))) if x.ndim > len(shape) else x
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


def forward_mode_unroll(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                        n_steps: int, *, scan: Callable, native: bool | None = None):
    """As `checkpointed_unroll`, differentiated by `ForwardMode(native=native)` (forward
    sensitivities)."""
    names, per_step, totals = _internal_names(per_step, totals)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step_records(p, s, x, dt_):
        new, out = eqx.combine(p, static).step(s, x, dt_)
        return new, {k: f(new, out) for k, f in per_step.items()}, {k: f(new, out) for k, f in totals.items()}

    def run(p, state0_, inputs_, dt_):
        return scan(eqx.combine(p, static), state0_, inputs_, dt_, per_step, totals, n_steps)

    @jax.custom_vjp
    def unroll(p, state0_, inputs_, dt_):
        return run(p, state0_, inputs_, dt_)

    def seeds_for(p, perturbed, state0_, inputs_, dt_):
        """One tangent direction per differentiated leaf, seeded with ones over the whole leaf
        (stacked on a leading axis), and the indices of those leaves."""
        p_leaves = jax.tree.leaves(p)
        idx = [i for i, q in enumerate(perturbed) if q]
        if any(jnp.ndim(p_leaves[i]) for i in idx):
            check_elementwise(lambda s, x: step_records(p, s, x, dt_), state0_,
                              jax.tree.map(lambda a: a[:, 0], inputs_), "adjoint=ForwardMode() with per-neuron "
                              "parameters")
        diff = [p_leaves[i] for i in idx]
        seeds = [jnp.stack([(jnp.ones_like if j == k else jnp.zeros_like)(d) for k in range(len(idx))])
                 for j, d in enumerate(diff)]
        return (seeds, tuple(idx)), idx

    def tangent_step(p, seeds, s, ds, x, dt_):
        """The step and its derivative along every seeded direction (the primal computed once),
        differentiated w.r.t. the seeded leaves only: zero tangents of the others (say, the
        temperature, which feeds every rate) would still be propagated, as batched arrays."""
        seeds, idx = seeds
        diff = [jax.tree.leaves(p)[i] for i in idx]
        jvp = jax.vmap(lambda dd, ds_: jax.jvp(lambda d, s_: step_records(_with_leaves(p, idx, d), s_, x, dt_),
                                               (diff, s), (dd, ds_)),
                       in_axes=(0, 0), out_axes=(None, 0))
        return jvp(seeds, ds)

    def contract(acc, ct, tan):
        """acc[k] += sum(ct * tan[k]) down to leaf k's shape (per neuron for per-neuron leaves)."""
        return [a + sum(_unbroadcast(c * t[k], a.shape) for c, t in zip(jax.tree.leaves(ct), jax.tree.leaves(tan)))
                for k, a in enumerate(acc)]

    def gradients(p, idx, acc):
        return _with_leaves(jax.tree.map(jnp.zeros_like, p), idx, acc)

    def unroll_fwd(p, state0_, inputs_, dt_):
        if any(leaf.perturbed for leaf in jax.tree.leaves((state0_, inputs_, dt_))):
            raise ValueError("adjoint=ForwardMode() differentiates the model's parameters only; for gradients "
                             "w.r.t. the inputs, the initial state or dt use adjoint=CheckpointAdjoint()")
        values = jax.tree.map(lambda leaf: leaf.value, (p, state0_, inputs_, dt_))
        perturbed = [leaf.perturbed for leaf in jax.tree.leaves(p)]
        if per_step or not any(perturbed):
            return run(*values), (values, perturbed, None)
        # Only totals and the final state are returned: their cotangents are constant in time, so
        # the sensitivities are accumulated in this one pass (simulate's own unroll, run on the
        # (state, tangents) pair) and the backward pass only contracts.
        p, state0_, inputs_, dt_ = values
        idx = [i for i, q in enumerate(perturbed) if q]
        got = _native_loop.run(eqx.combine(p, static), state0_, inputs_, dt, {}, totals, n_steps, idx, native=native)
        if got is not None:
            final, tots, dfinal, dtots, _ = got
            return (final, tots), (values, perturbed, (dfinal, dtots, idx))
        seeds, idx = seeds_for(p, perturbed, state0_, inputs_, dt_)
        pair = _TangentPair(lambda st, x, dt__: _pair_step(tangent_step, p, seeds, st, x, dt__))
        ds0 = jax.tree.map(lambda a: jnp.zeros((len(idx), *a.shape), a.dtype), state0_)
        (final, dfinal), acc = scan(pair, (state0_, ds0), inputs_, dt_, {}, {"pair": lambda st, out: out}, n_steps)
        tots, dtots = acc["pair"]
        return (final, tots), (values, perturbed, (dfinal, dtots, idx))

    def unroll_bwd(res, cts):
        (p, state0_, inputs_, dt_), perturbed, tangents = res
        cts = jax.tree.map(lambda c: jnp.zeros(c.aval.shape, c.aval.dtype) if isinstance(c, SymbolicZero) else c,
                           cts, is_leaf=lambda c: isinstance(c, SymbolicZero))
        ct_final, ct_out = cts
        zeros = jax.tree.map(_zeros_ct, (state0_, inputs_, dt_))
        if not any(perturbed):
            return jax.tree.map(jnp.zeros_like, p), *zeros
        if tangents is not None:
            dfinal, dtots, idx = tangents
            acc = [jnp.zeros(jax.tree.leaves(p)[i].shape, jax.tree.leaves(p)[i].dtype) for i in idx]
            acc = contract(acc, (ct_final, {k: ct_out[k] for k in totals}), (dfinal, dtots))
            return gradients(p, idx, acc), *zeros
        ct_tot = {k: ct_out[k] for k in totals}
        idx = [i for i, q in enumerate(perturbed) if q]
        got = _native_loop.run(eqx.combine(p, static), state0_, inputs_, dt, per_step, totals, n_steps, idx,
                               cts=jax.tree.leaves([ct_out[k] for k in per_step]), native=native)
        if got is not None:
            _, _, dfinal, dtots, acc = got
            acc = [_unbroadcast(a, jnp.shape(jax.tree.leaves(p)[i])) for a, i in zip(acc, idx)]
            return gradients(p, idx, contract(acc, (ct_final, ct_tot), (dfinal, dtots))), *zeros
        seeds, idx = seeds_for(p, perturbed, state0_, inputs_, dt_)
        ds0 = jax.tree.map(lambda s: jnp.zeros((len(idx), *s.shape), s.dtype), state0_)
        acc0 = [jnp.zeros(jax.tree.leaves(p)[i].shape, jax.tree.leaves(p)[i].dtype) for i in idx]

        def body(carry, inp):
            s, ds, acc = carry
            x, ct_t = inp
            (new, _, _), (dnew, drec, dtot) = tangent_step(p, seeds, s, ds, x, dt_)
            return (new, dnew, contract(acc, (ct_t, ct_tot), (drec, dtot))), None

        xs = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), inputs_)
        cts_t = {k: jnp.swapaxes(ct_out[k], 0, 1) for k in per_step}
        (_, dfinal, acc), _ = jax.lax.scan(body, (state0_, ds0, acc0), (xs, cts_t))
        return gradients(p, idx, contract(acc, ct_final, dfinal)), *zeros

    unroll.defvjp(unroll_fwd, unroll_bwd, symbolic_zeros=True)
    final, rec = unroll(params, state0, inputs, jnp.asarray(dt, jnp.result_type(*jax.tree.leaves(inputs))))
    return final, {names[k]: v for k, v in rec.items()}


_ACROSS_NEURONS = {"dot_general", "conv_general_dilated", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod",
                   "reduce_and", "reduce_or", "argmax", "argmin", "cumsum", "cumprod", "cummax", "cumlogsumexp",
                   "sort", "transpose", "rev", "dynamic_slice", "dynamic_update_slice", "concatenate", "pad"}


def primitive_names(jaxpr) -> set[str]:
    """Names of all primitives in a (closed) jaxpr, including nested ones."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (list, tuple)) else [v]):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    names |= primitive_names(sub)
    return names


def across_neurons(jaxpr) -> set[str]:
    """The primitives of `jaxpr` that can mix neurons (contraction, reduction, permutation,
    slicing); none: the step is elementwise over neurons."""
    return primitive_names(jaxpr) & _ACROSS_NEURONS


def check_elementwise(step: Callable, state, x, what: str):
    """`ValueError` unless `step(state, x)` is elementwise over neurons (`across_neurons`)."""
    across = across_neurons(jax.make_jaxpr(step)(state, x))
    if across:
        raise ValueError(f"{what} needs a step that is elementwise over neurons (neurons that do not interact); "
                         f"this one uses {sorted(across)} (e.g. recurrent weights)")
