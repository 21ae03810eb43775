"""Parameter sweeps: one model evaluated over a grid of parameter values with `vmap`, in
memory-bounded batches, sharded over every JAX device; f-I curves, rheobase and two-parameter
firing-rate maps built on it.

Parameter names are dotted paths into the model: `"c_m"`, `"temperature"` (fields of the
neuron), `"na.gbar"`, `"k.e_rev"` (a channel's field; `"channels.na.gbar"` is the same leaf).
Names that start with `"stimulus."` are not model parameters: they are passed to a callable
`stimulus` that builds each point's input (e.g. `"stimulus.amplitude"`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PyTree

from ._validate import check_dt
from .neurons._base import AbstractNeuron, State, resolve_dtype
from .simulate import RecordSpec, Total, _normalize_record, simulate

STIMULUS_PREFIX = "stimulus."
_AXIS = "points"  # name of the 1-D device mesh axis

__all__ = ["Run", "sweep", "spike_rate", "fi_curve", "rheobase", "RateMap", "rate_map", "plot_rate_map"]


# =================================================================================================
# parameter paths
# =================================================================================================
def _key_name(key) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def parameter_paths(model: eqx.Module) -> list[str]:
    """The names `sweep` accepts for `model`'s floating-point leaves, e.g. for `HH()`:
    `["k.gbar", "k.e_rev", ..., "na.e_rev", "c_m", "temperature", "spike_threshold"]` (the same
    names as `fit.parameter_names`, which has its own resolver).

    A channel's fields are named `"<channel>.<field>"` (the long form
    `"channels.<channel>.<field>"` is accepted too); other fields by their (dotted) attribute path.
    """
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(model)[0]:
        if not (hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)):
            continue
        parts = [_key_name(k) for k in path]
        if len(parts) > 1 and parts[0] == "channels":
            parts = parts[1:]
        out.append(".".join(parts))
    return sorted(out, key=lambda p: "." not in p)  # channel parameters first (stable sort)


def _fields(node) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}


def _walk(model, parts: Sequence[str]):
    """The node at `parts` (channel shortcut: a first part that is not a field of the model but
    a key of `model.channels`). Raises `KeyError(part)` when a part does not exist."""
    node = model
    for i, part in enumerate(parts):
        if isinstance(node, dict):
            if part not in node:
                raise KeyError(part)
            node = node[part]
            continue
        fields = _fields(node)
        if part in fields:
            if fields[part].metadata.get("static", False):
                raise TypeError(f"{part!r} is a static field (configuration), not a parameter; "
                                "build one model per value instead")
            node = getattr(node, part)
        elif i == 0 and isinstance(getattr(node, "channels", None), dict) and part in node.channels:
            node = node.channels[part]
        else:
            raise KeyError(part)
    return node


def _parent_and_field(model, parts):
    return _walk(model, parts[:-1]), parts[-1]


def _resolve(model, name: str, argname: str = "grid"):
    """Validate parameter `name` of `model`; returns its path parts and current leaf."""
    if not isinstance(name, str) or not name or any(not p for p in name.split(".")):
        raise ValueError(f"{argname}: parameter names must be non-empty dotted strings such as "
                         f"'na.gbar', got {name!r}")
    parts = tuple(name.split("."))
    try:
        leaf = _walk(model, parts)
    except KeyError:
        leaf = None
    except TypeError as err:
        raise ValueError(f"{argname}[{name!r}]: {err}") from None
    if leaf is None or isinstance(leaf, (dict, eqx.Module)) or not hasattr(leaf, "dtype"):
        avail = parameter_paths(model)
        close = difflib.get_close_matches(name, avail, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{argname}: unknown parameter {name!r} of {type(model).__name__}{hint}; "
                         f"parameters: {', '.join(avail)}; names starting with "
                         f"'{STIMULUS_PREFIX}' go to a callable stimulus")
    if not jnp.issubdtype(leaf.dtype, jnp.floating):
        raise ValueError(f"{argname}[{name!r}] is not a floating-point parameter (dtype {leaf.dtype})")
    if jnp.ndim(leaf) != 0:
        raise ValueError(f"{argname}[{name!r}]: the model's value has shape {jnp.shape(leaf)}; sweep "
                         "sets one scalar per grid point, so the model must describe one neuron")
    return parts


def _set_params(model, parts_list, values):
    """`model` with the leaves at `parts_list` replaced by `values` (each cast to the leaf's dtype)."""
    if not parts_list:
        return model
    where = lambda m: tuple(_walk(m, p) for p in parts_list)  # noqa: E731
    old = where(model)
    new = tuple(jnp.asarray(v, o.dtype) for v, o in zip(values, old))
    return eqx.tree_at(where, model, new)


def _check_domain(model, name, parts, values):
    """Build the leaf's owner with the smallest and largest swept value, so that the field's own
    validation (e.g. gbar >= 0, c_m > 0) speaks, naming the grid entry."""
    try:
        parent, field = _parent_and_field(model, parts)
    except KeyError:
        return
    if not dataclasses.is_dataclass(parent) or isinstance(parent, dict):
        return
    for v in (values.min(), values.max()):
        try:
            dataclasses.replace(parent, **{field: float(v)})
        except ValueError as err:
            raise ValueError(f"grid[{name!r}]: {err}") from None
        except TypeError:  # a custom __init__: nothing to check against
            return


# =================================================================================================
# the grid
# =================================================================================================
class _Grid(NamedTuple):
    names: tuple[str, ...]  # every parameter name, in order of appearance
    shape: tuple[int, ...]  # grid shape
    values: dict[str, np.ndarray]  # name -> (n_points,) flattened point values
    axes: dict[str, np.ndarray]  # name -> the 1-D array given for it


def _as_axis(values, name) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"grid[{name!r}] must be a 1-D array of numbers") from err
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise ValueError(f"grid[{name!r}] must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"grid[{name!r}] is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"grid[{name!r}] must be finite (no NaN or inf)")
    return arr


def _build_grid(grid, mode) -> _Grid:
    if not isinstance(grid, Mapping):
        raise TypeError(f"grid must be a dict of parameter name -> 1-D array, got {type(grid).__name__}")
    if not grid:
        raise ValueError("grid is empty: name at least one parameter, e.g. {'na.gbar': [100, 120]}")
    if mode not in ("product", "zip"):
        raise ValueError(f"mode must be 'product' or 'zip', got {mode!r}")
    groups: list[tuple[tuple[str, ...], list[np.ndarray]]] = []
    for key, vals in grid.items():
        if isinstance(key, tuple):  # zipped group: ("a", "b"): (values_a, values_b)
            if not key or not isinstance(vals, (tuple, list)) or len(vals) != len(key):
                raise ValueError(f"grid[{key!r}]: a tuple of names zips its axes and needs a tuple of "
                                 f"{len(key)} arrays of equal length")
            arrs = [_as_axis(v, k) for k, v in zip(key, vals)]
            if len({a.size for a in arrs}) != 1:
                raise ValueError(f"grid[{key!r}]: zipped axes must have equal lengths, got "
                                 f"{[a.size for a in arrs]}")
            groups.append((key, arrs))
        else:
            groups.append(((key,), [_as_axis(vals, key)]))
    names = [n for g, _ in groups for n in g]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"grid names a parameter more than once: {sorted(dup)}")
    axes = {n: a for g, arrs in groups for n, a in zip(g, arrs)}
    if mode == "zip":
        sizes = {n: a.size for n, a in axes.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"grid: mode='zip' needs axes of equal length, got {sizes}")
        groups = [(tuple(names), [axes[n] for n in names])]
    shape = tuple(arrs[0].size for _, arrs in groups)
    idx = np.indices(shape).reshape(len(shape), -1)
    values = {n: arrs[j][idx[gi]] for gi, (g, arrs) in enumerate(groups) for j, n in enumerate(g)}
    return _Grid(tuple(names), shape, values, axes)


# =================================================================================================
# one batch
# =================================================================================================
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

    model_paths: tuple[tuple[str, tuple[str, ...]], ...]  # (grid name, path parts)
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


def _init_state(model, v0, dtype):
    if v0 is None:
        return model.init_state((1,), dtype)
    return model.init_state((1,), dtype, v0=v0)


def _one_point(model, static: _Static, values, stim):
    mparams = [values[n] for n, _ in static.model_paths]
    m = _set_params(model, [p for _, p in static.model_paths], mparams)
    if static.stim_kind == "callable":
        x = static.stim_fn({k: values[n] for n, k in static.stim_names})
    else:
        x = stim
    x = jnp.asarray(x, static.dtype)[None]  # (1, T, ...)
    state = _init_state(m, static.v0, static.dtype)
    if static.n_discard:
        state, _ = simulate(m, state, x[:, : static.n_discard], static.dt, record=None)
        x = x[:, static.n_discard:]
    single, items = static.record
    rec_spec = items[0][1] if single else dict(items) if items else None
    final, rec = simulate(m, state, x, static.dt, record=rec_spec)
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
# =================================================================================================
def _nbytes(tree) -> int:
    return sum(math.prod(a.shape) * jnp.dtype(a.dtype).itemsize for a in jax.tree_util.tree_leaves(tree))


def sweep(
    model: AbstractNeuron,
    grid: Mapping[str | tuple[str, ...], ArrayLike | tuple[ArrayLike, ...]],
    stimulus: ArrayLike | Callable[[dict[str, jax.Array]], jax.Array],
    measure: Callable[[Run], PyTree] | None = None,
    *,
    dt: float,
    record: RecordSpec = Total("output"),
    mode: str = "product",
    transient: float = 0.0,
    v0: ArrayLike | None = None,
    dtype=None,
    batch_size: int | None = None,
    memory_budget: float = 256 * 2**20,
    devices: Sequence[jax.Device] | None = None,
    progress: bool = True,
) -> PyTree:
    """Evaluate `model` at every point of a parameter grid: one `simulate` per point, `vmap`ped
    over a batch of points, batches sharded over all JAX devices.

    **Arguments:**
    - `model`: a neuron describing one cell (scalar parameters), e.g. `HH()`; its values are the
      defaults for everything not swept.
    - `grid`: parameter name -> 1-D array of values (in the parameter's unit: mS/cm2 for `gbar`,
      mV for `e_rev`, uF/cm2 for `c_m`, degC for `temperature`). Names are dotted paths into the
      model (`"na.gbar"`, `"k.gbar"`, `"c_m"`; an unknown name's error lists them all) or `"stimulus.<key>"`
      for a value handed to a callable `stimulus`. With `mode="product"` (default) the grid is the
      outer product of the axes in order: `{"na.gbar": a, "k.gbar": b}` has shape
      `(len(a), len(b))`. A tuple key zips its axes into one: `{("na.gbar", "k.gbar"): (a, b)}`
      has shape `(len(a),)`; `mode="zip"` zips all axes.
    - `stimulus`: the input of each point (uA/cm2 for conductance-based neurons), one of:
      an array `(T, ...)` shared by every point; an array `grid_shape + (T, ...)`, one input per
      point; or a callable `stimulus(params) -> (T, ...)` (traceable `jnp` code), where `params`
      maps each `"stimulus.<key>"` grid name's `<key>` to that point's value.
    - `measure`: `measure(run: Run) -> pytree` reduces one point's simulation to its result
      (e.g. `spike_rate`, Hz); `None` returns `run.recorded`.
    - `dt`: time step, ms.
    - `record`: what `simulate` records (see `simulate`); default `Total("output")` = the spike
      count over the recorded window, without per-step memory.
    - `mode`: `"product"` or `"zip"` (see `grid`).
    - `transient`: ms at the start of the input that are simulated but not recorded (a whole
      number of steps); `run.duration` is what remains.
    - `v0`: initial membrane potential, mV, passed as `init_state(..., v0=v0)`; `None` (default)
      keeps the model's own default (-65 mV for `PointNeuron`/`HH`), with gates at steady state.
    - `dtype`: float dtype of the simulation (default float32, float64 under `jax_enable_x64`).
    - `batch_size`: points per `vmap`ped batch; by default as many as fit in `memory_budget`
      (bytes; a conservative estimate from the input, the records and the state). Rounded up to
      a multiple of the device count; the last batch is padded (and the padding dropped), so every
      batch runs the same compiled program.
    - `devices`: devices to shard each batch over along a 1-D mesh (default: all of
      `jax.devices()`); with one device there is no sharding.
    - `progress`: a tqdm bar over the points (shown when there is more than one batch).

    **Returns:** `measure`'s pytree with numpy leaves of shape `grid_shape + leaf_shape`.

    **Example:**
    ```python
    rates = bf.sweep(bf.HH(), {"na.gbar": jnp.linspace(80, 160, 9), "k.gbar": jnp.linspace(20, 50, 7)},
                     jnp.full(20000, 10.0), bf.spike_rate, dt=0.025)   # (9, 7) rates in Hz
    ```
    """
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron (AbstractNeuron), got {type(model).__name__}")
    dt = float(check_dt(dt))
    dtype = resolve_dtype(dtype)
    g = _build_grid(grid, mode)

    model_paths, stim_names = [], []
    for name in g.names:
        if isinstance(name, str) and name.startswith(STIMULUS_PREFIX) and len(name) > len(STIMULUS_PREFIX):
            stim_names.append((name, name[len(STIMULUS_PREFIX):]))
        else:
            parts = _resolve(model, name)
            _check_domain(model, name, parts, g.axes[name])
            model_paths.append((name, parts))
    if measure is not None and not callable(measure):
        raise TypeError(f"measure must be a callable run -> pytree or None, got {type(measure).__name__}")
    record_n = _normalize_record(record)

    # ---- stimulus ----
    rest = tuple(model.input_shape(_init_state(model, v0, dtype))[1:])
    n_points = math.prod(g.shape)
    point_stim_bytes = 0
    if callable(stimulus) and not hasattr(stimulus, "shape"):
        stim_kind, stim_arr = "callable", None
        example = {k: jnp.asarray(g.values[n][0], dtype) for n, k in stim_names}
        try:
            out = jax.eval_shape(stimulus, example)
        except KeyError as err:
            raise ValueError(f"stimulus asked for params[{err.args[0]!r}], but grid has no "
                             f"'{STIMULUS_PREFIX}{err.args[0]}' entry") from None
        shape = tuple(getattr(out, "shape", ()))
        if len(shape) != 1 + len(rest) or shape[1:] != rest or shape[0] < 1:
            raise ValueError(f"stimulus(params) must return an array of shape {('T',) + rest} with "
                             f"T >= 1 time steps, got shape {shape}")
        n_steps = shape[0]
        point_stim_bytes = n_steps * math.prod(rest) * jnp.dtype(dtype).itemsize
    else:
        if stim_names:
            raise ValueError(f"grid names stimulus parameters {[n for n, _ in stim_names]}, so stimulus "
                             "must be a callable params -> (T, ...) array")
        try:
            stim_arr = np.asarray(stimulus, dtype=np.dtype(dtype))
        except (TypeError, ValueError) as err:
            raise ValueError("stimulus must be an array (T, ...) or grid_shape + (T, ...), or a callable") from err
        if stim_arr.ndim == 1 + len(rest) and stim_arr.shape[1:] == rest:
            stim_kind = "shared"
        elif stim_arr.shape[: len(g.shape)] == g.shape and stim_arr.ndim == len(g.shape) + 1 + len(rest) \
                and stim_arr.shape[len(g.shape) + 1:] == rest:
            stim_kind = "per_point"
            stim_arr = stim_arr.reshape(n_points, *stim_arr.shape[len(g.shape):])
            point_stim_bytes = stim_arr[0].nbytes
        else:
            raise ValueError(f"stimulus must have shape {('T',) + rest} (shared by every point) or grid "
                             f"shape + {('T',) + rest} = {g.shape + ('T',) + rest} (one per point); got "
                             f"{stim_arr.shape}")
        n_steps = stim_arr.shape[-1 - len(rest)]
        if n_steps < 1:
            raise ValueError(f"stimulus must have at least one time step, got shape {stim_arr.shape}")
        if not np.isfinite(stim_arr).all():
            raise ValueError("stimulus must be finite (no NaN or inf)")

    try:
        transient = float(transient)
    except (TypeError, ValueError):
        raise ValueError(f"transient must be a number of ms, got {transient!r}") from None
    n_discard = int(round(transient / dt)) if math.isfinite(transient) else -1
    if not (0 <= n_discard < n_steps) or abs(n_discard * dt - transient) > 1e-6 * max(dt, transient):
        raise ValueError(f"transient must be a whole number of steps dt in [0, T dt) = "
                         f"[0, {n_steps * dt:g}) ms, got {transient!r}")

    # ---- devices and batches ----
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    n_dev = len(devices)
    mesh = jax.sharding.Mesh(np.array(devices), (_AXIS,)) if n_dev > 1 else None
    static = _Static(tuple(model_paths), tuple(stim_names), stim_kind,
                     stimulus if stim_kind == "callable" else None, measure, record_n, dt, n_discard,
                     n_steps, v0, dtype, mesh)
    per_point = _point_bytes(model, static, g, point_stim_bytes, stim_arr) if batch_size is None else 1
    plan = _plan(n_points, n_dev, batch_size, memory_budget, per_point)
    with jax.default_device(devices[0]):
        return _execute(model, static, g, stim_arr, plan, progress)


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
        m = _set_params(model, [p for _, p in static.model_paths], [vals[n] for n, _ in static.model_paths])
        state = _init_state(m, static.v0, static.dtype)
        x = jnp.zeros((1, static.n_steps - static.n_discard) + tuple(model.input_shape(state)[1:]), static.dtype)
        rec_spec = items[0][1] if single else dict(items) if items else None
        return state, simulate(m, state, x, static.dt, record=rec_spec)[1], _one_point(model, static, vals, stim)

    state, rec, out = jax.eval_shape(rec_and_out, vals, stim)
    return 2 * point_stim_bytes + 2 * _nbytes(rec) + 8 * _nbytes(state) + _nbytes(out) + 64


# =================================================================================================
# helpers: f-I curve, rheobase, rate map
# =================================================================================================
@dataclasses.dataclass(frozen=True)
class _Constant:
    """Constant current density `params["current"]` (uA/cm2), or `default`, for `n_steps` steps
    (hashable by value, so repeated sweeps reuse the compiled program)."""

    n_steps: int
    default: float = 0.0

    def __call__(self, params):
        amp = params.get("current", self.default)
        return jnp.full((self.n_steps,), amp)


def _n_steps(duration, dt, name="duration") -> int:
    dt = float(check_dt(dt))
    if not isinstance(duration, (int, float, np.number)) or not math.isfinite(duration) or duration <= 0:
        raise ValueError(f"{name} must be a positive number of ms, got {duration!r}")
    n = int(round(float(duration) / dt))
    if n < 1 or abs(n * dt - duration) > 1e-6 * duration:
        raise ValueError(f"{name} ({duration} ms) must be a whole number of time steps dt = {dt} ms")
    return n


def _counts_measure(run: Run):
    return run.recorded


def fi_curve(
    model: AbstractNeuron,
    currents: ArrayLike,
    duration: float,
    dt: float,
    *,
    transient: float = 0.0,
    **sweep_kwargs,
) -> np.ndarray:
    """The f-I curve: firing rate (Hz) under constant current densities `currents` (uA/cm2),
    switched on at t = 0 from rest.

    **Arguments:**
    - `model`: one neuron, e.g. `HH()`.
    - `currents`: 1-D array of current densities, uA/cm2.
    - `duration`: length of each simulation, ms (a whole number of steps).
    - `dt`: time step, ms.
    - `transient`: ms at the start whose spikes are not counted; the rate is the number of spikes
      (upward threshold crossings) in `[transient, duration]` divided by `duration - transient`.
    - `sweep_kwargs`: passed to `sweep` (`v0`, `dtype`, `batch_size`, `devices`, `progress`, ...).

    **Returns:** rates in Hz, shape `currents.shape`.
    """
    n = _n_steps(duration, dt)
    cur = np.asarray(currents, dtype=float)
    if cur.ndim != 1:
        raise ValueError(f"currents must be a 1-D array of current densities (uA/cm2), got shape {cur.shape}")
    rates = sweep(model, {"stimulus.current": cur}, _Constant(n), spike_rate, dt=dt, transient=transient,
                  **sweep_kwargs)
    return rates


def rheobase(
    model: AbstractNeuron,
    dt: float = 0.025,
    *,
    grid: Mapping | None = None,
    duration: float = 1000.0,
    window: float = 500.0,
    min_spikes: int = 2,
    bracket: tuple[float, float] = (0.0, 50.0),
    tol: float = 1e-3,
    points_per_round: int = 16,
    **sweep_kwargs,
) -> float | np.ndarray:
    """Rheobase for repetitive firing, uA/cm2, by grid refinement (a vectorised bisection).

    **Definition:** the smallest constant current density I (switched on at t = 0 from rest) under
    which the neuron fires repetitively, where "fires repetitively" means at least `min_spikes`
    spikes (upward threshold crossings) in the last `window` ms of a `duration`-ms step. This
    excludes the transient volleys of the bistable range just below the boundary (classic HH
    fires a few onset spikes at 6.0-6.2 uA/cm2 and then rests); it assumes firing is monotone in I
    near the boundary (the smallest firing current of each round is refined).

    **Arguments:**
    - `model`: one neuron.
    - `dt`: time step, ms.
    - `grid`: optional model-parameter grid as in `sweep` (e.g. `{"na.gbar": values}`): then one
      rheobase per grid point, refined together, and an array of the grid's shape is returned.
    - `duration`, `window`: ms (`0 < window <= duration`).
    - `min_spikes`: spikes in the window that count as repetitive firing (>= 1).
    - `bracket`: `(low, high)` uA/cm2 with no repetitive firing at `low` and repetitive firing at
      `high` (checked; `ValueError` otherwise).
    - `tol`: uA/cm2; the returned value is within `tol / 2` of the boundary found.
    - `points_per_round`: currents simulated per round (and per grid point); each round narrows
      the bracket by a factor `points_per_round + 1`.
    - `sweep_kwargs`: passed to `sweep`.

    **Returns:** a float (no `grid`) or an array of the grid's shape, uA/cm2.
    """
    n = _n_steps(duration, dt)
    n_win = _n_steps(window, dt, "window")
    if n_win > n:
        raise ValueError(f"window ({window} ms) must not exceed duration ({duration} ms)")
    if isinstance(min_spikes, bool) or not isinstance(min_spikes, (int, np.integer)) or min_spikes < 1:
        raise ValueError(f"min_spikes must be a positive int, got {min_spikes!r}")
    try:
        lo, hi = (float(b) for b in bracket)
    except (TypeError, ValueError):
        raise ValueError(f"bracket must be (low, high) in uA/cm2, got {bracket!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"bracket must be (low, high) with low < high (uA/cm2), got {bracket!r}")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive current density (uA/cm2), got {tol!r}")
    if isinstance(points_per_round, bool) or not isinstance(points_per_round, int) or points_per_round < 1:
        raise ValueError(f"points_per_round must be a positive int, got {points_per_round!r}")

    if grid:
        gp = _build_grid(grid, sweep_kwargs.pop("mode", "product"))
        for name in gp.names:
            if name.startswith(STIMULUS_PREFIX):
                raise ValueError(f"rheobase: grid[{name!r}]: only model parameters may be swept")
    else:
        gp = _Grid((), (), {}, {})
    n_cells = math.prod(gp.shape)
    stim = _Constant(n)
    discard = (n - n_win) * dt
    sweep_kwargs.setdefault("progress", False)

    def fires(params_per_cell, currents):  # currents (n_cells, k) -> bool (n_cells, k)
        k = currents.shape[1]
        names = tuple(gp.names) + ("stimulus.current",)
        arrays = tuple(np.repeat(params_per_cell[nm], k) for nm in gp.names) + (currents.ravel(),)
        counts = sweep(model, {names: arrays}, stim, _counts_measure, dt=dt, transient=discard, **sweep_kwargs)
        return (np.asarray(counts) >= min_spikes).reshape(n_cells, k)

    cells = {nm: gp.values[nm] for nm in gp.names}
    lo_a, hi_a = np.full(n_cells, lo), np.full(n_cells, hi)
    ends = fires(cells, np.stack([lo_a, hi_a], axis=1))
    if ends[:, 0].any() or not ends[:, 1].all():
        which = "low fires repetitively" if ends[:, 0].any() else "high does not fire repetitively"
        raise ValueError(f"bracket {bracket!r} (uA/cm2) does not bracket the rheobase: {which}"
                         + (" at some grid points" if grid else ""))
    k = points_per_round
    while np.max(hi_a - lo_a) > tol:
        frac = np.arange(1, k + 1) / (k + 1)
        cur = lo_a[:, None] + (hi_a - lo_a)[:, None] * frac[None, :]
        f = fires(cells, cur)
        first = np.where(f.any(axis=1), f.argmax(axis=1), k)  # index of the first firing current
        new_hi = np.where(first < k, cur[np.arange(n_cells), np.minimum(first, k - 1)], hi_a)
        new_lo = np.where(first > 0, cur[np.arange(n_cells), np.maximum(first - 1, 0)], lo_a)
        lo_a, hi_a = new_lo, new_hi
    mid = 0.5 * (lo_a + hi_a)
    return float(mid[0]) if not grid else mid.reshape(gp.shape)


class RateMap(NamedTuple):
    """A firing-rate map over two parameters: `rates[i, j]` (Hz) at `values_a[i]`, `values_b[j]`."""

    param_a: str
    values_a: np.ndarray
    param_b: str
    values_b: np.ndarray
    rates: np.ndarray


def rate_map(
    model: AbstractNeuron,
    param_a: str,
    values_a: ArrayLike,
    param_b: str,
    values_b: ArrayLike,
    *,
    dt: float,
    duration: float,
    current: float = 0.0,
    stimulus: Callable | ArrayLike | None = None,
    transient: float = 0.0,
    **sweep_kwargs,
) -> RateMap:
    """Firing rate (Hz) over the outer product of two parameters.

    **Arguments:**
    - `param_a`, `param_b`: names as in `sweep` (model paths such as `"na.gbar"`, or
      `"stimulus.<key>"`); `values_a`, `values_b`: their 1-D values in the parameter's unit.
      `"stimulus.current"` (uA/cm2) works without a `stimulus`: it sets the constant current.
    - `dt`, `duration`: ms.
    - `current`: constant current density (uA/cm2) used when `stimulus` is None and no axis is
      `"stimulus.current"`.
    - `stimulus`: anything `sweep` accepts (an array `(T,)`, or a callable of the `"stimulus.*"`
      values returning `(T,)`) instead of the constant current.
    - `transient`: ms at the start not counted in the rate.
    - `sweep_kwargs`: passed to `sweep`.

    **Returns:** a `RateMap` (plot it with `plot_rate_map`).
    """
    n = _n_steps(duration, dt)
    if stimulus is None:
        for p in (param_a, param_b):
            if isinstance(p, str) and p.startswith(STIMULUS_PREFIX) and p != STIMULUS_PREFIX + "current":
                raise ValueError(f"rate_map: {p!r} needs a callable stimulus; without one the only "
                                 f"stimulus parameter is '{STIMULUS_PREFIX}current' (uA/cm2)")
        stimulus = _Constant(n, float(current))
    va, vb = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if param_a == param_b:
        raise ValueError(f"param_a and param_b must differ, both are {param_a!r}")
    rates = sweep(model, {param_a: va, param_b: vb}, stimulus, spike_rate, dt=dt, transient=transient,
                  **sweep_kwargs)
    return RateMap(param_a, va, param_b, vb, np.asarray(rates))


_UNITS = {"gbar": "mS/cm2", "e_rev": "mV", "c_m": "uF/cm2", "temperature": "degC",
          "spike_threshold": "mV", "current": "uA/cm2", "amplitude": "uA/cm2", "frequency": "Hz",
          "offset": "uA/cm2", "tau": "ms", "v_th": "mV", "v_reset": "mV"}


def _label(name: str) -> str:
    unit = _UNITS.get(name.split(".")[-1])
    return f"{name} ({unit})" if unit else name


def plot_rate_map(rate_map: RateMap, ax=None, *, labels: tuple[str, str] | None = None, cmap: str = "viridis",
                  title: str | None = None, **pcolormesh_kwargs):
    """Plot a `RateMap` as a colour map: `param_a` on the x axis, `param_b` on the y axis, the
    firing rate (Hz) as colour with a colour bar. Axis labels carry units for known parameter
    names (gbar: mS/cm2, e_rev: mV, c_m: uF/cm2, current: uA/cm2, frequency: Hz, ...); pass
    `labels=(x_label, y_label)` otherwise. Returns the matplotlib `Axes`."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.2))
    mesh = ax.pcolormesh(rate_map.values_a, rate_map.values_b, np.asarray(rate_map.rates).T, cmap=cmap,
                         shading="nearest", **pcolormesh_kwargs)
    cbar = ax.figure.colorbar(mesh, ax=ax)
    cbar.set_label("firing rate (Hz)")
    xl, yl = labels or (_label(rate_map.param_a), _label(rate_map.param_b))
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    if title:
        ax.set_title(title)
    return ax
