"""`fit`: gradient-based parameter fitting of a neuron model to recorded traces, several starts at
once (`vmap`), with bounds handled by smooth transforms and an optax optimiser."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._validate import check_dt
from ..neurons._base import AbstractNeuron, resolve_dtype
from ..simulate import RecordSpec, simulate
from ._losses import MSE, Loss
from ..params import Parameter, get, resolve, set_values, state_lookup
from ._traces import Trace, as_array
from ._transforms import Bounded, as_bounded


@functools.lru_cache(maxsize=64)  # the same object for the same arguments: fits reuse compilations
def default_optimizer(n_steps: int, learning_rate: float = 0.1) -> optax.GradientTransformation:
    """The optimiser `fit` uses when given none: gradients clipped to global norm 1 (per start),
    then Adam with a cosine learning-rate decay from `learning_rate` to `learning_rate / 100`
    over `n_steps` (rates are in the unconstrained space of the `Bounded` transforms).

    The clipping matters: a spike that appears or vanishes gives a gradient spike that would
    otherwise inflate Adam's second-moment estimate and stall the start (measured on 200 ms of the
    HH conductance fit of docs/fitting.md, 6 starts within +-50%, 150 steps: all 6 within 3% of
    the truth with clipping, none within 2% without)."""
    schedule = optax.cosine_decay_schedule(learning_rate, max(int(n_steps), 1), alpha=0.01)
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """What `fit` returns.

    **Fields:**
    - `model`: the fitted model of the best start (lowest loss), parameters at their best values.
    - `params`: dict name -> fitted value of the best start (numpy, the parameter's unit).
    - `loss`: the best start's lowest loss (the loss's unit).
    - `best_start`: index of the best start.
    - `start_params`: dict name -> `(S, ...)` best value reached by every start.
    - `start_losses`: `(S,)` lowest loss of every start.
    - `starts`: dict name -> `(S, ...)` initial values.
    - `history`: `(n_iter, S)` loss of every start at every iteration (before its update).
    - `n_iter`: iterations run; `stopped_early`: whether early stopping ended the run.
    - `wall_time`: seconds for the whole call (validation, compilation, iterations);
      `compile_time`: seconds of the first iteration, which includes compilation (unless a fit
      of the same configuration and shapes compiled it before: those are reused).
    """

    model: AbstractNeuron
    params: dict[str, np.ndarray]
    loss: float
    best_start: int
    start_params: dict[str, np.ndarray]
    start_losses: np.ndarray
    starts: dict[str, np.ndarray]
    history: np.ndarray
    n_iter: int
    stopped_early: bool
    wall_time: float
    compile_time: float
    _base: AbstractNeuron = dataclasses.field(repr=False)
    _params: tuple[Parameter, ...] = dataclasses.field(repr=False)

    def model_for(self, start: int) -> AbstractNeuron:
        """The fitted model of start `start` (at that start's best values)."""
        if not 0 <= start < len(self.start_losses):
            raise IndexError(f"start must be in [0, {len(self.start_losses)}), got {start}")
        values = [jnp.asarray(self.start_params[n][start]) for n in self.start_params]
        return set_values(self._base, list(self._params), values)

    def __str__(self) -> str:
        vals = ", ".join(f"{n}={np.array2string(np.asarray(v), precision=6)}" for n, v in self.params.items())
        return (f"FitResult(loss={self.loss:.6g}, {vals}; best of {len(self.start_losses)} starts "
                f"(#{self.best_start}), {self.n_iter} iterations{' (stopped early)' if self.stopped_early else ''}, "
                f"{self.wall_time:.1f} s)")


def _as_2d(arr: np.ndarray) -> np.ndarray:
    return arr[None, :] if arr.ndim == 1 else arr


def _check_int(x, name: str, low: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {x!r}")
    return int(x)


def fit(
    model: AbstractNeuron,
    params: Mapping[str, Bounded | tuple[float, float]],
    stimulus,
    target,
    *,
    loss: Loss | None = None,
    optimizer: optax.GradientTransformation | None = None,
    dt: float | None = None,
    n_steps: int = 200,
    starts: Mapping[str, np.ndarray] | FitResult | None = None,
    n_starts: int = 1,
    key: jax.Array | None = None,
    patience: int | None = None,
    tol: float = 1e-4,
    progress: bool = True,
    record: RecordSpec = "v",
    v0: float | np.ndarray | None = None,
    state0=None,
    dtype=None,
    remat: bool = False,
    chunk_size: int | None = None,
    adjoint=None,
    backend=None,
) -> FitResult:
    """Fit parameters of `model` so that its response to `stimulus` matches `target`.

    The parameters named in `params` are optimised in an unconstrained space through the smooth
    transforms of their `Bounded` (so they never leave their bounds); every other leaf of `model`
    stays fixed. Each iteration simulates all starts at once (`vmap`), takes `value_and_grad` of
    the loss through the whole simulation (`jit`-compiled once) and applies one `optimizer` update
    per start. The best values each start reaches are kept; the start with the lowest loss wins.

    **Time grid.** `stimulus` and `target` are sampled on the same grid `t_k = k dt`,
    `k = 0 .. N-1`, and must have the same length `N` (as NEURON's recorded `t`, `v` and played
    `Vector`s). `stimulus[k]` is the input during the step from `t_k` to `t_{k+1}` (NEURON's
    `Vector.play` convention; its last sample is unused); `target[0]` is the state at `t = 0` and
    the loss compares the simulated `record` after each step with `target[1:]`. (A recorded
    `IClamp.i` is shifted by one sample relative to the played vector: pass the played one.)

    **Arguments:**
    - `model`: any neuron (`HH`, `PointNeuron`, `LIF`, ...).
    - `params`: dict parameter name -> `Bounded(low, high[, scale])` or a `(low, high)` pair, in
      the parameter's unit. Names are paths into the model (`"na.gbar"`, `"k.gbar"`,
      `"leak.gbar"`, `"c_m"`; `bf.fit.parameter_names(model)` lists them, see `brainfuse_jax.params`).
      Bounds must lie inside the parameter's own domain (`low >= 0` for a `gbar`).
    - `stimulus`: `(N,)` or `(B, N)` input (uA/cm2 for conductance-based neurons; B sweeps fitted
      together); numpy/JAX array, NEURON `h.Vector`, list of them, or `Trace`.
    - `target`: the recorded trace(s), same shape (a single stimulus row is reused for every
      target row): mV for `record="v"`.
    - `loss`: a `bf.fit` loss (`MSE()` by default, mV^2); see `MSE`, `SMAPE`, `SpikeCount`,
      `VanRossum`, `Features` and their sums.
    - `optimizer`: an optax transformation (default `default_optimizer(n_steps)`).
    - `dt`: time step = sampling interval, ms (taken from a `Trace` if not given).
    - `n_steps`: maximum number of optimiser steps (iterations, not time steps).
    - `starts`: initial values, dict name -> array `(S, ...)` (S starts; missing names start at
      the model's value), or a previous `FitResult` (continue from each start's best values). If
      None: the model's own values (`n_starts=1`) or `n_starts` draws uniform inside the bounds
      (log-uniform for `scale="log"`; `sample_starts(..., around=model)` draws around a model).
    - `n_starts`, `key`: number of random starts and their `jax.random` key.
    - `patience`, `tol`: early stopping. A start improves when its loss drops below
      `best - tol * |best|`; the run stops once no start has improved for `patience`
      iterations. `patience=None` (default) runs all `n_steps`.
    - `progress`: show a tqdm progress bar (iterations, best loss).
    - `record`: what the loss compares with `target` (`simulate`'s `record`, default `"v"`).
    - `v0`: initial membrane potential, mV, scalar or per sweep `(B,)`; default `target[:, 0]`
      when `record="v"`, else the model's default. Gates start at their steady state for `v0`
      (as NEURON's `finitialize`), computed from the parameters being fitted.
    - `state0`: a complete initial state instead (then `v0` is ignored).
    - `dtype`: simulation dtype (default: JAX's default float; **float64 is recommended** for
      fitting, `jax.config.update("jax_enable_x64", True)`: float32 round-off in long unrolls
      makes gradients noisy near the optimum).
    - `remat`, `chunk_size`: memory policy of the unroll, passed to `simulate` (`remat=True`
      recomputes each step in the backward pass; `chunk_size` truncates backpropagation).
    - `adjoint`: how `simulate` computes the gradient (`bf.CheckpointAdjoint()`, the default;
      `bf.ForwardMode()`, forward sensitivities, cheapest for a few parameters and long traces;
      `bf.DirectAdjoint()`); None = `simulate`'s default. Passed to `simulate` unchanged.
    - `backend`: `simulate`'s execution backend; None (default) = `simulate`'s default. Passed
      unchanged (and only when given).

    **Returns:** a `FitResult`.
    """
    t_start = time.perf_counter()
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron (AbstractNeuron), got {type(model).__name__}")
    if not isinstance(params, Mapping) or not params:
        raise ValueError("params must be a non-empty dict of parameter name -> Bounded(low, high)")
    names = list(params)
    bounds = {n: as_bounded(params[n], n) for n in names}
    plist: list[Parameter] = []
    for n in names:
        p = resolve(model, n, "params")
        if p in plist:
            raise ValueError(f"params: {n!r} names the same parameter as {names[plist.index(p)]!r}")
        lower = p.bounds[0]
        if np.any(bounds[n].low < lower):
            raise ValueError(f"params[{n!r}]: {bounds[n]!r} extends below the parameter's lower bound {lower:g}"
                             f"{(' ' + p.unit) if p.unit else ''} ({p.label} must be "
                             f"{'> ' if p.low == 'positive' else '>= '}{lower:g})")
        plist.append(p)
    if loss is None:
        loss = MSE()
    if not isinstance(loss, Loss) and not callable(loss):
        raise TypeError(f"loss must be a bf.fit loss or a callable (pred, target, dt) -> scalar, got {loss!r}")
    n_steps = _check_int(n_steps, "n_steps", 1)
    n_starts = _check_int(n_starts, "n_starts", 1)
    if patience is not None:
        patience = _check_int(patience, "patience", 1)
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be >= 0 (relative improvement), got {tol!r}")
    dtype = resolve_dtype(dtype)

    # ---- traces -------------------------------------------------------------------------------
    for arg, value in (("stimulus", stimulus), ("target", target)):
        if isinstance(value, Trace) and value.dt is not None:
            if dt is None:
                dt = value.dt
            elif not np.isclose(float(dt), value.dt, rtol=1e-9, atol=0.0):
                raise ValueError(f"dt ({dt} ms) differs from the sampling interval of {arg} ({value.dt} ms)")
    if dt is None:
        raise ValueError("dt must be given (ms), or stimulus/target must be Traces that carry it")
    dt = float(check_dt(dt))
    stim = _as_2d(as_array(stimulus, "stimulus"))
    tgt = _as_2d(as_array(target, "target"))
    if stim.shape[-1] != tgt.shape[-1]:
        raise ValueError(f"target has {tgt.shape[-1]} samples but stimulus has {stim.shape[-1]}: both must be "
                         "sampled on the same time grid t_k = k dt (stimulus[k] drives the step from t_k to "
                         "t_k+1, target[0] is the initial value)")
    if stim.shape[-1] < 2:
        raise ValueError(f"target and stimulus need at least 2 samples (t = 0 and one step), got {stim.shape[-1]}")
    if stim.shape[0] != tgt.shape[0]:
        if stim.shape[0] != 1:
            raise ValueError(f"stimulus has {stim.shape[0]} sweeps but target has {tgt.shape[0]}; give one "
                             "stimulus row per target row, or a single row for all")
        stim = np.broadcast_to(stim, tgt.shape)
    n_sweeps = tgt.shape[0]

    # ---- starts -------------------------------------------------------------------------------
    start_values = _starts(model, names, bounds, plist, starts, n_starts, key)
    n_starts = next(iter(start_values.values())).shape[0]
    for n in names:
        inside = bounds[n].inside(start_values[n])
        if not inside.all():
            bad = start_values[n][~inside].ravel()[0]
            raise ValueError(f"starts[{n!r}]: start value {bad.item()!r} is not strictly inside the bounds "
                             f"{bounds[n]!r}")
    u0 = {n: jnp.asarray(bounds[n].unconstrain(jnp.asarray(start_values[n], dtype)), dtype) for n in names}

    # ---- initial state ------------------------------------------------------------------------
    if state0 is None:
        if v0 is None and record == "v":
            v0 = tgt[:, 0]
        if v0 is not None:
            v0 = np.broadcast_to(np.asarray(v0, np.float64), (n_sweeps,))
            if not np.all(np.isfinite(v0)):
                raise ValueError("v0 must be finite (mV)")
            v0 = jnp.asarray(v0, dtype)
    else:
        v0 = None

    optimizer = default_optimizer(n_steps) if optimizer is None else optimizer
    config = _Config(tuple(names), tuple(plist), optimizer, dt, record, remat, chunk_size, float(tol), n_sweeps,
                     adjoint, backend)
    stim_j = jnp.asarray(stim[:, :-1], dtype)
    tgt_j = jnp.asarray(tgt[:, 1:], dtype)
    bounds_t = tuple(bounds[n] for n in names)
    opt_state = _init(optimizer, u0)
    u = u0
    best_u = jax.tree.map(jnp.copy, u0)
    best_l = jnp.full((n_starts,), jnp.inf, dtype)
    stale = jnp.zeros((n_starts,), jnp.int32)

    from tqdm.auto import tqdm

    history = []
    stopped_early = False
    compile_time = 0.0
    with tqdm(total=n_steps, desc=f"fit ({n_starts} start{'s' if n_starts > 1 else ''})", unit="it",
              disable=not progress, leave=False) as bar:
        for it in range(n_steps):
            t0 = time.perf_counter()
            u, opt_state, best_u, best_l, stale, lval = _iteration(
                config, model, bounds_t, loss, state0, v0, stim_j, tgt_j, u, opt_state, best_u, best_l, stale)
            lval = np.asarray(lval)  # waits for the iteration
            if it == 0:
                compile_time = time.perf_counter() - t0
            history.append(lval)
            bar.update(1)
            bar.set_postfix(best=f"{float(np.min(np.asarray(best_l))):.4g}")
            if patience is not None and bool(np.all(np.asarray(stale) >= patience)):
                stopped_early = True
                break

    start_losses = np.asarray(best_l, np.float64)
    if not np.isfinite(start_losses).any():
        raise FloatingPointError("fit: the loss was not finite at any start and iteration "
                                 "(check the bounds, dt and the target's units)")
    best_start = int(np.nanargmin(np.where(np.isfinite(start_losses), start_losses, np.inf)))
    start_params = {n: np.asarray(bounds[n].constrain(best_u[n]), np.float64) for n in names}
    best_values = {n: start_params[n][best_start] for n in names}
    fitted = set_values(model, plist, [jnp.asarray(best_values[n], dtype) for n in names])
    return FitResult(
        model=fitted, params=best_values, loss=float(start_losses[best_start]), best_start=best_start,
        start_params=start_params, start_losses=start_losses, starts=start_values,
        history=np.stack(history), n_iter=len(history), stopped_early=stopped_early,
        wall_time=time.perf_counter() - t_start, compile_time=compile_time,
        _base=model, _params=tuple(plist),
    )


class _Config(NamedTuple):
    """Static configuration of a fit iteration (hashable: equal configs reuse one compilation)."""

    names: tuple
    params: tuple[Parameter, ...]
    optimizer: optax.GradientTransformation
    dt: float
    record: RecordSpec
    remat: bool
    chunk_size: int | None
    tol: float
    n_sweeps: int
    adjoint: object = None
    backend: object = None


def _objective(config, model, bounds, loss, state0, v0, stim, tgt, u):
    """The loss of one start: unconstrained values `u` -> model -> simulate -> loss."""
    values = [b.constrain(u[n]) for n, b in zip(config.names, bounds, strict=True)]
    m = set_values(model, list(config.params), values)
    if state0 is None:
        state0 = m.init_state((config.n_sweeps,), stim.dtype, **({} if v0 is None else {"v0": v0}))
    backend = {} if config.backend is None else {"backend": config.backend}
    _, pred = simulate(m, state0, stim, config.dt, record=config.record, remat=config.remat,
                       chunk_size=config.chunk_size, adjoint=config.adjoint, **backend)
    if jnp.shape(pred) != tgt.shape:
        raise ValueError(f"record={config.record!r} gives traces of shape {jnp.shape(pred)}, but the "
                         f"target (without its t = 0 sample) has shape {tgt.shape}")
    return jnp.asarray(loss(pred, tgt, config.dt), stim.dtype)


@eqx.filter_jit
def _init(optimizer, u):
    return jax.vmap(optimizer.init)(u)


@eqx.filter_jit
def _iteration(config, model, bounds, loss, state0, v0, stim, tgt, u, opt_state, best_u, best_l, stale):
    """One optimiser step of every start (vmap), tracking each start's best values.

    Compiled once per configuration (`eqx.filter_jit`: arrays are traced, everything else is part
    of the cache key), so repeated fits of the same kind reuse the compilation."""
    objective = lambda u: _objective(config, model, bounds, loss, state0, v0, stim, tgt, u)  # noqa: E731
    lval, grads = jax.vmap(jax.value_and_grad(objective))(u)
    updates, new_opt_state = jax.vmap(config.optimizer.update)(grads, opt_state, u)
    new_u = optax.apply_updates(u, updates)
    # A start whose loss or gradient is not finite keeps its parameters (and optimiser state).
    finite = jnp.isfinite(lval) & jnp.all(jnp.stack(
        [jnp.all(jnp.isfinite(g.reshape(g.shape[0], -1)), axis=1) for g in jax.tree.leaves(grads)]), axis=0)
    keep = lambda a, b: jax.vmap(lambda f, x, y: jnp.where(f, x, y))(finite, a, b)  # noqa: E731
    new_u = jax.tree.map(keep, new_u, u)
    new_opt_state = jax.tree.map(keep, new_opt_state, opt_state)
    improved = jnp.isfinite(lval) & (lval < best_l - config.tol * jnp.abs(best_l))
    better = jnp.isfinite(lval) & (lval < best_l)
    best_u = jax.tree.map(lambda x, b: jax.vmap(jnp.where)(better, x, b), u, best_u)
    best_l = jnp.where(better, lval, best_l)
    stale = jnp.where(improved, 0, stale + 1)
    return new_u, new_opt_state, best_u, best_l, stale, lval


def _starts(model, names, bounds, plist, starts, n_starts, key) -> dict[str, np.ndarray]:
    """Initial values as dict name -> float64 array `(S, *leaf shape)`."""
    current = {n: np.asarray(get(model, p), np.float64) for n, p in zip(names, plist, strict=True)}
    if isinstance(starts, FitResult):
        starts = starts.start_params
    if starts is None:
        if n_starts == 1:
            return {n: current[n][None] for n in names}
        if key is None:
            raise ValueError(f"key (a jax.random key) is required to draw n_starts={n_starts} random starts, "
                             "or pass starts=")
        keys = jax.random.split(key, len(names))
        out = {}
        for k, n in zip(keys, names, strict=True):
            shape = np.broadcast_shapes(bounds[n].low.shape, bounds[n].high.shape, current[n].shape)
            out[n] = np.asarray(bounds[n].sample(k, (n_starts, *shape)), np.float64)
        return out
    if not isinstance(starts, Mapping):
        raise TypeError(f"starts must be a dict name -> (S, ...) array, a FitResult or None, got {type(starts).__name__}")
    unknown = set(starts) - set(names)
    if unknown:
        raise ValueError(f"starts: {sorted(unknown)} are not among the fitted params {names}")
    given = {n: _as_starts_array(starts[n], f"starts[{n!r}]") for n in starts}
    sizes = {n: a.shape[0] for n, a in given.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"starts: every entry must have the same number of starts (axis 0), got {sizes}")
    s = next(iter(sizes.values())) if sizes else 1
    out = {}
    for n in names:
        if n in given:
            try:
                out[n] = np.broadcast_to(given[n], (s, *np.broadcast_shapes(given[n].shape[1:],
                                                                            current[n].shape))).copy()
            except ValueError as err:
                raise ValueError(f"starts[{n!r}] has shape {given[n].shape}; expected (S,) or (S, "
                                 f"*{current[n].shape})") from err
        else:
            out[n] = np.broadcast_to(current[n], (s, *current[n].shape)).copy()
    return out


def _as_starts_array(x, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(x, np.float64))
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def predict(model: AbstractNeuron, stimulus, dt: float | None = None, *, v0: float | np.ndarray = -65.0,
            record: str = "v", state0=None, dtype=None, backend=None) -> np.ndarray:
    """Simulate `model` on the time grid of `fit`: returns the state variable `record` (a state
    path, default `"v"`, mV) at `t_k = k dt` for `k = 0 .. N-1`, shape of `stimulus` (`(N,)` or
    `(B, N)`), where `stimulus[k]` drives the step from `t_k` to `t_{k+1}` and sample 0 is the
    initial state (V = `v0` mV, gates at steady state, or `state0`). The natural thing to plot
    against a `fit` target. `backend` is passed to `simulate` when given."""
    if isinstance(stimulus, Trace) and dt is None:
        dt = stimulus.dt
    if dt is None:
        raise ValueError("dt must be given (ms)")
    dt = float(check_dt(dt))
    dtype = resolve_dtype(dtype)
    arr = as_array(stimulus, "stimulus")
    stim = _as_2d(arr)
    if not isinstance(record, str):
        raise TypeError(f"record must be a state path such as 'v' or 'na.m', got {record!r}")
    if state0 is None:
        v0 = np.broadcast_to(np.asarray(v0, np.float64), (stim.shape[0],))
        state0 = model.init_state((stim.shape[0],), dtype, v0=jnp.asarray(v0, dtype))
    first = state_lookup(state0, record, "record")
    _, rec = simulate(model, state0, jnp.asarray(stim[:, :-1], dtype), dt, record=record,
                      **({} if backend is None else {"backend": backend}))
    out = np.concatenate([np.asarray(first, np.float64)[:, None], np.asarray(rec, np.float64)], axis=1)
    return out if arr.ndim == 2 else out[0]
