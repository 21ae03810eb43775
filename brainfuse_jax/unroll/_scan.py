"""The forward time loop: blocks of K steps (inputs transposed to time-major in cache and
checked for NaN/inf block by block), a tail, truncation (`chunk_size`), per-step records and
totals. `DirectAdjoint` differentiates it by autodiff; `CheckpointAdjoint` reuses it as its
forward pass (`checkpoints=True`); `ForwardMode` runs it on (state, tangents) pairs."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._validate import check_finite_block


def block_size(n_steps: int, target: int) -> int:
    """A block length near `target` that divides `n_steps` if one exists in [target/4, 2 target]
    (so that an unroll in blocks compiles one loop body, not a second one for a tail)."""
    if n_steps <= 2 * target:
        return max(n_steps, 1)
    divisors = [k for k in range(max(target // 4, 1), 2 * target + 1) if n_steps % k == 0]
    return min(divisors, key=lambda k: abs(k - target)) if divisors else target


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


def scan_unroll(model, state0, inputs, dt, per_step, totals, n_steps, chunk_size=None, remat=False, *,
                 block=None, checkpoints=False):
    """The forward unroll (and `DirectAdjoint`'s, by autodiff): `(final, {name: record})`; with
    `checkpoints=True` also `(states entering each block (n_blocks, ...), state entering the tail)`
    (`CheckpointAdjoint`'s forward pass, with `block` = its K)."""
    def body(carry, x):
        state, acc = carry
        new_state, out = model.step(state, x, dt)
        acc = {k: jax.tree.map(jnp.add, acc[k], f(new_state, out)) for k, f in totals.items()}
        return (new_state, acc), {k: f(new_state, out) for k, f in per_step.items()}

    if remat:
        body = jax.checkpoint(body)

    x0 = jax.tree.map(lambda a: a[:, 0], inputs)
    step_shapes = jax.eval_shape(lambda: model.step(state0, x0, dt))
    acc0 = {k: jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(f, *step_shapes))
            for k, f in totals.items()}

    # Time runs in blocks of K steps: each block's (B, K) inputs are transposed to time-major in
    # cache (a whole-array transpose costs ~30% of an HH run) and checked for NaN/inf there, and
    # with `chunk_size` the blocks are the truncation chunks: every block but the first starts
    # from stop_gradient(state).
    block = min(chunk_size or block or block_size(n_steps, 256), n_steps)
    n_blocks, tail = divmod(n_steps, block)
    # Per-step records: each block's (K, B, ...) records (stacked time-major by its scan, in
    # cache) are transposed into their place in the (B, T, ...) result, which is carried through
    # the blocks and written in place: the only T-sized buffer, written once. (Stacking the
    # blocks and transposing them to (B, T) afterwards, or concatenating a tail, allocates a
    # second one: for 1,000 HH neurons x 40,000 steps 160 MB, ~50 ms of page faults each on
    # 4 KiB pages, as much as the record's share of the time loop.)
    rec_shapes = {k: jax.eval_shape(f, *step_shapes) for k, f in per_step.items()}
    records0 = jax.tree.map(lambda a: jnp.zeros((a.shape[0], n_steps, *a.shape[1:]), a.dtype), rec_shapes)

    def run_block(carry, records, start, xb, first):
        state, acc = carry
        if chunk_size is not None:
            state = jax.tree.map(lambda s: jnp.where(first, s, jax.lax.stop_gradient(s)), state)
        carry, ys = jax.lax.scan(body, (state, acc), _swap(check_finite_block(xb)))
        return carry, jax.tree.map(lambda r, y: _write_time(r, jnp.swapaxes(y, 0, 1), start), records, ys)

    def outer(loop, b):
        carry, records = loop
        start = b * block
        return run_block(carry, records, start, _slice_time(inputs, start, block), b == 0), carry[0]

    (carry, records), ckpts = jax.lax.scan(outer, ((state0, acc0), records0), jnp.arange(n_blocks))
    tail_ckpt = carry[0]
    if tail:
        start = n_blocks * block
        carry, records = run_block(carry, records, start, _slice_time(inputs, start, tail), n_blocks == 0)
    final, acc = carry
    if checkpoints:
        return final, {**records, **acc}, (ckpts, tail_ckpt)
    return final, {**records, **acc}
