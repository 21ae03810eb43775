"""The batch plan of a sweep: how many grid points per `vmap`ped batch (from a memory budget and
a per-point estimate), rounded to a multiple of the device count."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..simulate import simulate
from ._grid import _Grid
from ._run import _backend, _init_state, _one_point, _set_point, _Static


def _nbytes(tree) -> int:
    return sum(math.prod(a.shape) * jnp.dtype(a.dtype).itemsize for a in jax.tree_util.tree_leaves(tree))


class _Plan(NamedTuple):
    batch_size: int
    n_batches: int
    n_devices: int
    padded_points: int


def _plan(n_points, n_dev, batch_size, memory_budget, per_point_bytes) -> _Plan:
    if batch_size is None:
        if not (isinstance(memory_budget, (int, float)) and memory_budget > 0):
            raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
        batch_size = max(1, int(memory_budget // max(per_point_bytes, 1)))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    # as few batches as the limit allows, of equal size (little padding), a multiple of n_dev
    n_batches = -(-n_points // max(int(batch_size), n_dev))
    batch_size = -(-n_points // n_batches)
    batch_size = -(-batch_size // n_dev) * n_dev
    n_batches = -(-n_points // batch_size)
    return _Plan(batch_size, n_batches, n_dev, n_batches * batch_size)


def _point_bytes(model, static: _Static, g: _Grid, point_stim_bytes: int, stim_arr) -> int:
    """A conservative estimate of the device memory one grid point needs: its input (materialised
    per point for callable and per-point stimuli) and its records, each counted twice (the
    simulate blocks transpose them), plus the state and the measure's result."""
    vals = {n: jax.ShapeDtypeStruct((), static.dtype) for n in g.names}
    stim = None
    if static.stim_kind == "shared":
        stim = jax.ShapeDtypeStruct(stim_arr.shape, static.dtype)
    elif static.stim_kind == "per_point":
        stim = jax.ShapeDtypeStruct(stim_arr.shape[1:], static.dtype)

    def rec_and_out(vals, stim):
        single, items = static.record
        m = _set_point(model, static, vals)
        state = _init_state(m, static.v0, static.dtype)
        x = jnp.zeros((1, static.n_steps - static.n_discard) + tuple(model.input_shape(state)[1:]), static.dtype)
        rec_spec = items[0][1] if single else dict(items) if items else None
        return state, simulate(m, state, x, static.dt, record=rec_spec, **_backend(static))[1], _one_point(model, static, vals, stim)

    state, rec, out = jax.eval_shape(rec_and_out, vals, stim)
    return 2 * point_stim_bytes + 2 * _nbytes(rec) + 8 * _nbytes(state) + _nbytes(out) + 64


