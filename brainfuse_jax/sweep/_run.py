"""Running a sweep: one grid point (`_one_point`), a `vmap`ped and sharded batch of points
(`_run_batch`, compiled once per configuration) and the loop over batches (`_execute`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from .. import params as _params
from ..neurons._base import State
from ..simulate import simulate
from ._grid import _Grid

_AXIS = "points"  # name of the 1-D device mesh axis


class Run(NamedTuple):
    """What `measure` receives for one grid point (no batch axis).

    - `final`: the state after the last step.
    - `recorded`: what `record` asked for: per-step entries have shape `(T, ...)`, `Total`
      entries are summed over the recorded steps (e.g. the spike count, a scalar).
    - `duration`: length of the recorded window, ms (after `transient`).
    - `dt`: time step, ms.
    - `params`: this point's grid values, by grid name (e.g. `params["na.gbar"]`).
    """

    final: State
    recorded: PyTree
    duration: float
    dt: float
    params: dict[str, jax.Array]


def spike_rate(run: Run) -> jax.Array:
    """Firing rate in Hz: the spikes in `run.recorded` over `run.duration` (ms).

    `run.recorded` must hold the spike output: counts from `record=Total("output")` (the
    default of `sweep`) or per-step spikes from `record="output"`.
    """
    rec = run.recorded
    if isinstance(rec, dict):
        if "output" not in rec:
            raise ValueError("spike_rate: record must be Total('output') or include an 'output' entry")
        rec = rec["output"]
    return jnp.sum(rec) * (1000.0 / run.duration)


class _Static(NamedTuple):
    """Everything about a batch that is fixed at compile time (hashable)."""

    model_params: tuple[tuple[str, _params.Parameter], ...]  # (grid name, parameter)
    stim_names: tuple[tuple[str, str], ...]  # (grid name, key passed to the stimulus callable)
    stim_kind: str  # "shared" | "per_point" | "callable"
    stim_fn: Callable | None
    measure: Callable | None
    record: Any  # normalised record spec
    dt: float
    n_discard: int
    n_steps: int
    v0: Any
    dtype: Any
    mesh: Any  # jax.sharding.Mesh or None
    backend: Any = None  # simulate's backend= (None: simulate's default, not passed)


def _init_state(model, v0, dtype):
    if v0 is None:
        return model.init_state((1,), dtype)
    return model.init_state((1,), dtype, v0=v0)


def _backend(static: _Static) -> dict:
    """`simulate`'s `backend=` keyword, passed only when one was given."""
    return {} if static.backend is None else {"backend": static.backend}


def _set_point(model, static: _Static, values):
    """`model` with this point's values of the swept parameters (cast to their dtypes)."""
    return _params.set_values(model, [p for _, p in static.model_params],
                              [values[n] for n, _ in static.model_params], cast=True)


def _one_point(model, static: _Static, values, stim):
    m = _set_point(model, static, values)
    if static.stim_kind == "callable":
        x = static.stim_fn({k: values[n] for n, k in static.stim_names})
    else:
        x = stim
    x = jnp.asarray(x, static.dtype)[None]  # (1, T, ...)
    state = _init_state(m, static.v0, static.dtype)
    if static.n_discard:
        state, _ = simulate(m, state, x[:, : static.n_discard], static.dt, record=None, **_backend(static))
        x = x[:, static.n_discard:]
    single, items = static.record
    rec_spec = items[0][1] if single else dict(items) if items else None
    final, rec = simulate(m, state, x, static.dt, record=rec_spec, **_backend(static))
    final, rec = jax.tree.map(lambda a: a[0], (final, rec))
    duration = (static.n_steps - static.n_discard) * static.dt
    if static.measure is None:
        return rec
    return static.measure(Run(final, rec, duration, static.dt, dict(values)))


@eqx.filter_jit
def _run_batch(model, values, stim, static: _Static):
    in_stim = 0 if static.stim_kind == "per_point" else None

    def batch(model, values, stim):
        return jax.vmap(lambda v, s: _one_point(model, static, v, s), in_axes=(0, in_stim))(values, stim)

    if static.mesh is None:
        return batch(model, values, stim)
    from jax.sharding import PartitionSpec as P

    spec_stim = P(_AXIS) if in_stim == 0 else P()
    sharded = jax.shard_map(batch, mesh=static.mesh, in_specs=(P(), P(_AXIS), spec_stim),
                            out_specs=P(_AXIS), check_vma=False)
    return sharded(model, values, stim)


# =================================================================================================
# sweep

def _execute(model, static: _Static, g: _Grid, stim_arr, plan, progress):
    mesh, dtype, stim_kind = static.mesh, static.dtype, static.stim_kind
    n_points = math.prod(g.shape)

    # ---- run ----
    model_dev = model if mesh is None else jax.device_put(model, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    point_sharding = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(_AXIS))
    shared_stim = None
    if stim_kind == "shared":
        shared_stim = jnp.asarray(stim_arr)
        if mesh is not None:
            shared_stim = jax.device_put(shared_stim, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    from tqdm import tqdm

    chunks = []
    with tqdm(total=n_points, desc="sweep", unit="pt", disable=not progress or plan.n_batches <= 1,
              leave=False) as bar:
        for b in range(plan.n_batches):
            lo = b * plan.batch_size
            idx = np.minimum(np.arange(lo, lo + plan.batch_size), n_points - 1)  # pad with the last point
            vals = {n: np.asarray(g.values[n][idx], dtype) for n in g.names}
            stim = shared_stim if stim_kind != "per_point" else stim_arr[idx]
            if mesh is not None:
                vals = jax.device_put(vals, point_sharding)
                if stim_kind == "per_point":
                    stim = jax.device_put(stim, point_sharding)
            out = _run_batch(model_dev, vals, stim, static)
            n_real = min(plan.batch_size, n_points - lo)
            chunks.append(jax.tree.map(lambda a: np.asarray(a)[:n_real], out))
            bar.update(n_real)
    result = jax.tree.map(lambda *parts: np.concatenate(parts, axis=0), *chunks)
    return jax.tree.map(lambda a: a.reshape(g.shape + a.shape[1:]), result)


