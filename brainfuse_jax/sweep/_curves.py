"""Sweeps with a meaning: f-I curves, rheobase by vectorised bisection, two-parameter rate maps."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .. import params as _params
from .._validate import check_dt
from ..neurons._base import AbstractNeuron
from ..neurons._point import PointNeuron
from ._grid import STIMULUS_PREFIX, _build_grid, _Grid
from ._run import Run, spike_rate
from ._sweep import sweep


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
    - `sweep_kwargs`: passed to `sweep` (`v0`, `dtype`, `batch_size`, `devices`, `progress`,
      `backend`, ...).

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
    - `sweep_kwargs`: passed to `sweep` (`v0`, `dtype`, `batch_size`, `devices`, `backend`, ...).

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
    """A firing-rate map over two parameters: `rates[i, j]` (Hz) at `values_a[i]`, `values_b[j]`;
    `unit_a`, `unit_b`: the parameters' units (from their `param()` declarations; None if unknown)."""

    param_a: str
    values_a: np.ndarray
    param_b: str
    values_b: np.ndarray
    rates: np.ndarray
    unit_a: str | None = None
    unit_b: str | None = None


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
    - `sweep_kwargs`: passed to `sweep` (`v0`, `dtype`, `batch_size`, `devices`, `backend`, ...).

    **Returns:** a `RateMap` (plot it with `plot_rate_map`).
    """
    n = _n_steps(duration, dt)
    constant = stimulus is None
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
    units = [_unit(model, p, constant) for p in (param_a, param_b)]
    return RateMap(param_a, va, param_b, vb, np.asarray(rates), *units)


def _unit(model, name: str, constant: bool) -> str | None:
    """The unit of a swept name: a model parameter's declared unit; the constant current's
    (uA/cm2, a `PointNeuron`'s input); None for other stimulus values."""
    if name.startswith(STIMULUS_PREFIX):
        if constant and name == STIMULUS_PREFIX + "current" and isinstance(model, PointNeuron):
            return "uA/cm2"
        return None
    return _params.resolve(model, name, "param").unit

