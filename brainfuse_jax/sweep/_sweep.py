"""`sweep`: one model evaluated over a grid of parameter values (the public entry point)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, PyTree

from .._validate import check_dt
from ..neurons._base import AbstractNeuron, resolve_dtype
from ..simulate import RecordSpec, Total, _normalize_record
from ._grid import STIMULUS_PREFIX, _build_grid, _check_domain, _resolve
from ._plan import _plan, _point_bytes
from ._run import _AXIS, Run, _execute, _init_state, _Static


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
    backend=None,
) -> PyTree:
    """Evaluate `model` at every point of a parameter grid: one `simulate` per point, `vmap`ped
    over a batch of points, batches sharded over all JAX devices.

    **Arguments:**
    - `model`: a neuron describing one cell (scalar parameters), e.g. `HH()`; its values are the
      defaults for everything not swept.
    - `grid`: parameter name -> 1-D array of values (in the parameter's unit: mS/cm2 for `gbar`,
      mV for `e_rev`, uF/cm2 for `c_m`, degC for `temperature`). Names are the model's parameter
      names (`brainfuse_jax.params`: `"na.gbar"`, `"k.gbar"`, `"c_m"`; an unknown name's error lists
      them, closest first) or `"stimulus.<key>"`
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
    - `backend`: `simulate`'s execution backend, passed to it unchanged; None (default) =
      `simulate`'s default. (Sweeps run forward only, so there is no `adjoint`.)

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

    model_params, stim_names = [], []
    for name in g.names:
        if isinstance(name, str) and name.startswith(STIMULUS_PREFIX) and len(name) > len(STIMULUS_PREFIX):
            stim_names.append((name, name[len(STIMULUS_PREFIX):]))
        else:
            p = _resolve(model, name)
            _check_domain(model, name, p, g.axes[name])
            model_params.append((name, p))
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
    static = _Static(tuple(model_params), tuple(stim_names), stim_kind,
                     stimulus if stim_kind == "callable" else None, measure, record_n, dt, n_discard,
                     n_steps, v0, dtype, mesh, backend)
    per_point = _point_bytes(model, static, g, point_stim_bytes, stim_arr) if batch_size is None else 1
    plan = _plan(n_points, n_dev, batch_size, memory_budget, per_point)
    with jax.default_device(devices[0]):
        return _execute(model, static, g, stim_arr, plan, progress)

