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


def _blocks_to_time(tree):
    """(n_blocks, B, K, ...) -> (B, n_blocks * K, ...)."""
    return jax.tree.map(lambda a: jnp.moveaxis(a, 0, 1).reshape(a.shape[1], a.shape[0] * a.shape[2], *a.shape[3:]),
                        tree)


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

    def run_block(carry, xb, first):
        state, acc = carry
        if chunk_size is not None:
            state = jax.tree.map(lambda s: jnp.where(first, s, jax.lax.stop_gradient(s)), state)
        carry, ys = jax.lax.scan(body, (state, acc), _swap(check_finite_block(xb)))
        return carry, _swap(ys)

    def outer(carry, b):
        carry_new, ys = run_block(carry, _slice_time(inputs, b * block, block), b == 0)
        return carry_new, (ys, carry[0])

    carry, (ys, ckpts) = jax.lax.scan(outer, (state0, acc0), jnp.arange(n_blocks))
    ys, tail_ckpt = _blocks_to_time(ys), carry[0]
    if tail:
        carry, ys_tail = run_block(carry, jax.tree.map(lambda a: a[:, n_blocks * block:], inputs), n_blocks == 0)
        ys = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=1), ys, ys_tail)
    final, acc = carry
    if checkpoints:
        return final, {**ys, **acc}, (ckpts, tail_ckpt)
    return final, {**ys, **acc}
