"""`CheckpointAdjoint(every=K)`: a `jax.custom_vjp` whose backward pass is the discrete adjoint
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

from .._validate import check_finite_block
from ..unroll import _slice_time, _swap, block_size, float_inputs, scan_unroll
from ._base import _internal_names, _with_leaves, AbstractAdjoint


class CheckpointAdjoint(AbstractAdjoint):
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

    def configure(self, *, chunk_size, remat, backend):
        if remat:
            raise ValueError("remat=True applies to DirectAdjoint; CheckpointAdjoint already recomputes")
        return self if chunk_size is None else CheckpointAdjoint(every=chunk_size)  # truncation chunks = blocks

    def unroll(self, model, state0, inputs, dt, per_step, totals, n_steps, *, chunk_size, remat, native):
        return checkpointed_unroll(model, state0, float_inputs(inputs, state0), dt, per_step, totals, n_steps,
                                   self.interval(n_steps, state0), truncate=chunk_size is not None)


def checkpointed_unroll(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                        n_steps: int, every: int, *, truncate: bool):
    """`(final_state, {name: (B, T, ...) per-step record, name: (B, ...) total})` of `n_steps`
    steps of `model.step`, differentiable through `CheckpointAdjoint`'s backward pass.

    `every` is the checkpoint interval K (an int); `truncate=True` cuts the adjoint every K steps
    (truncated BPTT in chunks of K). The forward pass is simulate's blocked unroll (`scan_unroll`
    with `block=K, checkpoints=True`), which also returns the states entering its blocks.
    """
    names, per_step, totals = _internal_names(per_step, totals)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    # other arrays of the model (e.g. a network's int32 connectivity) are arguments of the
    # custom_vjp, not closed over: under jit they are tracers, which a custom_vjp cannot close over
    arrays, static = eqx.partition(static, eqx.is_array)
    n_blocks, tail = divmod(n_steps, every)

    def step_records(p, a, s, x, dt_):
        new, out = eqx.combine(p, a, static).step(s, x, dt_)
        return new, {k: f(new, out) for k, f in per_step.items()}, {k: f(new, out) for k, f in totals.items()}

    def run(p, a, state0_, inputs_, dt_):
        return scan_unroll(eqx.combine(p, a, static), state0_, inputs_, dt_, per_step, totals, n_steps)

    def forward_saving(p, a, state0_, inputs_, dt_):
        """The forward pass (simulate's blocked unroll, in blocks of K) plus the state entering each
        block (as (n_blocks, ...)) and the tail's."""
        final, rec, saved = scan_unroll(eqx.combine(p, a, static), state0_, inputs_, dt_, per_step, totals, n_steps,
                                 block=every, checkpoints=True)
        return (final, rec), saved

    def block_backward(p, a, want, dt_, start, ckpt, xb, ct_rec, ct_tot, carry):
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
        states = jax.lax.scan(lambda s, x: (step_records(p, a, s, x, dt_)[0], s), ckpt, xs)[1]
        length = jax.tree.leaves(xs)[0].shape[0]

        def rev_body(carry, inp):
            adj, gp, gdt = carry
            k, ct, s, x = inp

            def f(diff, s_, *rest):
                return step_records(_with_leaves(p, idx, diff), a, s_, rest[0] if want_x else x,
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
    def unroll(p, a, state0_, inputs_, dt_):
        return run(p, a, state0_, inputs_, dt_)

    def unroll_fwd(p, a, state0_, inputs_, dt_):
        values = jax.tree.map(lambda leaf: leaf.value, (p, a, state0_, inputs_, dt_))
        want = (tuple(i for i, leaf in enumerate(jax.tree.leaves(p)) if leaf.perturbed),
                any(leaf.perturbed for leaf in jax.tree.leaves(inputs_)), dt_.perturbed)
        out, saved = forward_saving(*values)
        return out, (saved, values[0], values[1], values[3], values[4], want)

    def unroll_bwd(res, cts):
        saved, p, a, inputs_, dt_, want = res
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
            return block_backward(p, a, want, dt_, start, ckpt, check_finite_block(_slice_time(inputs_, start, size)),
                                  _slice_time(ct_rec, start, size), ct_tot, carry)

        # the input cotangents are written block by block into one (B, T, ...) result (carried
        # through the blocks, updated in place), not stacked and transposed afterwards
        dx = jax.tree.map(jnp.zeros_like, inputs_)

        def write(dx, start, dxb):
            return jax.tree.map(lambda a, b: jax.lax.dynamic_update_slice_in_dim(a, b, start, axis=1), dx, dxb)

        if tail:
            carry, dxb = block(carry, n_blocks * every, tail, tail_ckpt)
            dx = write(dx, n_blocks * every, dxb) if want_x else dx

        def body(loop, b):
            carry, dx = loop
            carry, dxb = block(carry, b * every, every, jax.tree.map(lambda c: c[b], ckpts))
            return (carry, write(dx, b * every, dxb) if want_x else dx), None

        if want_x:
            ((adj, gp, gdt), dx), _ = jax.lax.scan(body, (carry, dx), jnp.arange(n_blocks), reverse=True)
        else:  # no (B, T) buffer in the loop
            ((adj, gp, gdt), _), _ = jax.lax.scan(body, (carry, None), jnp.arange(n_blocks), reverse=True)
        return _with_leaves(jax.tree.map(jnp.zeros_like, p), idx, gp), None, adj, dx, gdt

    unroll.defvjp(unroll_fwd, unroll_bwd, symbolic_zeros=True)
    final, rec = unroll(params, arrays, state0, inputs, jnp.asarray(dt, jnp.result_type(*jax.tree.leaves(inputs))))
    return final, {names[k]: v for k, v in rec.items()}
