"""Spike-train statistics of a network recording (numpy, on the host).

A recording is two integer arrays of equal length K: `steps` (the index t of the step in which the
spike was emitted, the step advancing t*dt -> (t+1)*dt) and `ids` (the global neuron id, neurons
numbered population by population). The time of a spike is **(t + 1) * dt ms**, NEST's time stamp
of a spike emitted in that step. Arrays on a device (JAX) are fetched with `np.asarray`.

All time windows and bins are computed on the integer step grid (a time in ms is converted to steps
once, snapping to the grid when it lies within 1e-9 steps of a grid point), so a spike exactly on
a window edge is classified without floating-point round-off. The definitions are those of the
NEST reference script `ref_brunel_nest.py` (shared/reference/scripts):

- a window (t_start, t_stop] is open on the left and closed on the right (spike times are the ends
  of steps): a spike at exactly t_start is excluded, one at t_stop included;
- CV(ISI) of a neuron: std / mean (population standard deviation, ddof 0) of the intervals between
  its consecutive spikes with time > t_start; NaN where fewer than `min_spikes` such spikes;
- population rate: counts in bins [k bin, (k + 1) bin) from 0 ms (the last bin also holds a spike
  at exactly t_stop, as `numpy.histogram`), divided by the number of neurons and the bin width;
- Fano factor of a count series: var / max(mean, 1e-12) (ddof 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["spike_counts", "spike_times", "firing_rates", "cv_isi", "population_rate", "fano_factor",
           "population_summary"]

_SNAP = 1e-9  # steps: a time within this of a grid point is taken to be on it


# -- validation ------------------------------------------------------------------------------------

def _positive_int(x, name: str) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if x < 1:
        raise ValueError(f"{name} must be >= 1, got {x}")
    return int(x)


def _time(x, name: str, *, positive: bool = False) -> float:
    if isinstance(x, (bool, np.bool_, str, bytes)) or x is None:
        raise TypeError(f"{name} must be a number (ms), got {type(x).__name__}")
    try:
        value = float(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a number (ms), got {type(x).__name__}") from err
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'} ms, got {x}")
    return value


def _records(steps, ids, n_neurons: int | None) -> tuple[np.ndarray, np.ndarray]:
    """`steps`, `ids` as int64 1-D arrays of equal length; ids checked against [0, n_neurons)."""
    out = []
    for name, x in (("steps", steps), ("ids", ids)):
        arr = np.asarray(x)
        if arr.size == 0:
            arr = arr.astype(np.int64)  # an empty list is float64
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one entry per spike), got shape {arr.shape}")
        out.append(arr.astype(np.int64, copy=False))
    s, i = out
    if s.shape != i.shape:
        raise ValueError(f"steps and ids must have the same length, got {s.shape[0]} and {i.shape[0]}")
    if s.size and s.min() < 0:
        raise ValueError(f"steps must be >= 0 (step indices), got min {s.min()}")
    if i.size and i.min() < 0:
        raise ValueError(f"ids must be >= 0 (neuron ids), got min {i.min()}")
    if n_neurons is not None and i.size and i.max() >= n_neurons:
        raise ValueError(f"ids must be < n_neurons = {n_neurons}, got max {i.max()}")
    return s, i


def _steps_of(t_ms: float, dt: float) -> float:
    """`t_ms` in steps, snapped to the nearest integer when within 1e-9 of it."""
    x = t_ms / dt
    r = round(x)
    return float(r) if abs(x - r) <= _SNAP * max(1.0, abs(x)) else x


def _bin_steps(bin_ms: float, dt: float) -> int:
    n = _steps_of(bin_ms, dt)
    if n != round(n) or n < 1:
        raise ValueError(f"bin_ms must be a positive multiple of dt = {dt} ms, got {bin_ms}")
    return int(n)


def _window(t_start: float, t_stop: float, dt: float) -> tuple[float, float]:
    if t_stop <= t_start:
        raise ValueError(f"t_stop must be > t_start, got t_start = {t_start} ms, t_stop = {t_stop} ms")
    return _steps_of(t_start, dt), _steps_of(t_stop, dt)


def _in_window(k: np.ndarray, k_start: float, k_stop: float) -> np.ndarray:
    """Spikes at times k * dt (k = step + 1) inside (t_start, t_stop]."""
    return (k > k_start) & (k <= k_stop)


# -- per neuron ------------------------------------------------------------------------------------

def spike_counts(steps, ids, n_neurons: int, dt: float | None = None, t_start: float = 0.0,
                 t_stop: float | None = None) -> np.ndarray:
    """Number of spikes of each neuron.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `n_neurons`: number of neurons (ids must be < n_neurons).
    - `dt`: step (ms); needed only with a window (`t_start > 0` or `t_stop`).
    - `t_start`, `t_stop`: window (t_start, t_stop] in ms; default the whole recording.

    **Returns:** int64 (n_neurons,) spike counts.
    """
    n = _positive_int(n_neurons, "n_neurons")
    s, i = _records(steps, ids, n)
    t_start = _time(t_start, "t_start")
    if t_start > 0 or t_stop is not None:
        if dt is None:
            raise ValueError("dt (ms) is needed to count spikes in a window (t_start > 0 or t_stop given)")
        dt = _time(dt, "dt", positive=True)
        if t_stop is None:
            keep = (s + 1) > _steps_of(t_start, dt)
        else:
            keep = _in_window(s + 1, *_window(t_start, _time(t_stop, "t_stop"), dt))
        i = i[keep]
    return np.bincount(i, minlength=n).astype(np.int64)


def spike_times(steps, ids, dt: float, n_neurons: int) -> list[np.ndarray]:
    """Spike times of each neuron, sorted.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `dt`: step (ms). A spike emitted in step t has time (t + 1) * dt ms.
    - `n_neurons`: number of neurons.

    **Returns:** list of `n_neurons` float64 arrays of spike times (ms), ascending (empty for a
    silent neuron).
    """
    n = _positive_int(n_neurons, "n_neurons")
    dt = _time(dt, "dt", positive=True)
    s, i = _records(steps, ids, n)
    order = np.lexsort((s, i))
    times = (s[order] + 1) * dt
    bounds = np.searchsorted(i[order], np.arange(n + 1))
    return [times[bounds[j]:bounds[j + 1]] for j in range(n)]


def firing_rates(steps, ids, n_neurons: int, t_start: float, t_stop: float, dt: float) -> np.ndarray:
    """Mean firing rate of each neuron over the window (t_start, t_stop].

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `n_neurons`: number of neurons.
    - `t_start`, `t_stop`: window in ms (a spike at exactly t_start is not counted, one at t_stop is).
    - `dt`: step (ms).

    **Returns:** float64 (n_neurons,) rates in Hz: count / ((t_stop - t_start) / 1000).
    """
    counts = spike_counts(steps, ids, n_neurons, dt, t_start, t_stop)
    return counts / ((_time(t_stop, "t_stop") - _time(t_start, "t_start")) / 1000.0)


def cv_isi(steps, ids, n_neurons: int, dt: float, t_start: float = 0.0, min_spikes: int = 3) -> np.ndarray:
    """Coefficient of variation of the inter-spike intervals of each neuron.

    CV = std(ISI) / mean(ISI) (population standard deviation, ddof 0) over the intervals between
    consecutive spikes with time > `t_start`; dimensionless, so computed exactly on the integer
    step grid.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `n_neurons`: number of neurons.
    - `dt`: step (ms).
    - `t_start`: only spikes with time > t_start (ms) count (the NEST reference uses 200 ms to skip
      the transient).
    - `min_spikes`: neurons with fewer such spikes get NaN (>= 2; the reference uses 3).

    **Returns:** float64 (n_neurons,) CVs, NaN where fewer than `min_spikes` spikes.
    """
    n = _positive_int(n_neurons, "n_neurons")
    dt = _time(dt, "dt", positive=True)
    t_start = _time(t_start, "t_start")
    min_spikes = _positive_int(min_spikes, "min_spikes")
    if min_spikes < 2:
        raise ValueError(f"min_spikes must be >= 2 (a CV needs an interval), got {min_spikes}")
    s, i = _records(steps, ids, n)
    keep = (s + 1) > _steps_of(t_start, dt)
    s, i = s[keep], i[keep]
    order = np.lexsort((s, i))
    s, i = s[order], i[order]
    same = i[1:] == i[:-1]
    isi = (s[1:] - s[:-1])[same].astype(np.float64)  # in steps; the CV does not depend on dt
    owner = i[1:][same]
    n_isi = np.bincount(owner, minlength=n)
    cv = np.full(n, np.nan)
    ok = n_isi >= min_spikes - 1
    if not ok.any():
        return cv
    mean = np.bincount(owner, weights=isi, minlength=n)[ok] / n_isi[ok]
    full_mean = np.zeros(n)
    full_mean[ok] = mean
    var = np.bincount(owner, weights=(isi - full_mean[owner]) ** 2, minlength=n)[ok] / n_isi[ok]
    cv[ok] = np.sqrt(var) / mean
    return cv


# -- population ------------------------------------------------------------------------------------

def _population_counts(s: np.ndarray, spb: int, n_bins: int) -> np.ndarray:
    """Spike counts in bins of `spb` steps from time 0 (the last bin closed on the right)."""
    k = s + 1  # spike time in steps
    k = k[k <= n_bins * spb]
    return np.bincount(np.minimum(k // spb, n_bins - 1), minlength=n_bins).astype(np.int64)


def _n_bins(t_stop: float, bin_ms: float) -> int:
    n = t_stop / bin_ms
    r = round(n)
    if r < 1 or abs(n - r) > _SNAP * max(1.0, n):
        raise ValueError(f"t_stop must be a positive multiple of bin_ms = {bin_ms} ms, got {t_stop}")
    return int(r)


def population_rate(steps, ids, n_neurons: int, dt: float, bin_ms: float, t_stop: float) -> np.ndarray:
    """Population rate: spikes of all `n_neurons` neurons per bin, per neuron, per second.

    Bins [k bin_ms, (k + 1) bin_ms) for k = 0 .. t_stop / bin_ms - 1, the last one also holding a
    spike at exactly t_stop (as `numpy.histogram`); spikes after t_stop are ignored.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `n_neurons`: number of neurons the rate is averaged over.
    - `dt`: step (ms); `bin_ms` (ms) must be a multiple of it and `t_stop` (ms) a multiple of `bin_ms`.

    **Returns:** float64 (t_stop / bin_ms,) rates in Hz.
    """
    n = _positive_int(n_neurons, "n_neurons")
    dt = _time(dt, "dt", positive=True)
    bin_ms = _time(bin_ms, "bin_ms", positive=True)
    n_bins = _n_bins(_time(t_stop, "t_stop", positive=True), bin_ms)
    s, _ = _records(steps, ids, n)
    return _population_counts(s, _bin_steps(bin_ms, dt), n_bins) / n / (bin_ms * 1e-3)


def fano_factor(counts) -> float:
    """Fano factor var / mean of a series of counts (ddof 0), e.g. population spike counts per bin.

    As the NEST reference, the mean is floored at 1e-12, so an all-zero series gives 0.

    **Arguments:**
    - `counts`: 1-D non-empty array of counts (or rates; the factor scales with them).

    **Returns:** the Fano factor (float; in units of the counts).
    """
    c = np.asarray(counts)
    if c.dtype == np.bool_ or not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise TypeError(f"counts must be a numeric array, got dtype {c.dtype}")
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("counts must be finite (no NaN or inf)")
    c = c.astype(np.float64)
    return float(c.var() / max(c.mean(), 1e-12))


def _check_populations(populations, n_neurons: int | None) -> tuple[dict[str, tuple[int, int]], int]:
    if not isinstance(populations, Mapping) or not populations:
        raise TypeError("populations must be a non-empty dict name -> (start, stop) neuron-id range")
    out = {}
    for name, rng in populations.items():
        try:
            start, stop = rng
        except (TypeError, ValueError) as err:
            raise TypeError(f"populations[{name!r}] must be a (start, stop) pair of ints, got {rng!r}") from err
        for v in (start, stop):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"populations[{name!r}] must be a (start, stop) pair of ints, got {rng!r}")
        if not 0 <= start < stop:
            raise ValueError(f"populations[{name!r}] must satisfy 0 <= start < stop, got {rng!r}")
        out[str(name)] = (int(start), int(stop))
    top = max(stop for _, stop in out.values())
    if n_neurons is None:
        n_neurons = top
    elif _positive_int(n_neurons, "n_neurons") < top:
        raise ValueError(f"n_neurons = {n_neurons} is smaller than the populations' largest id + 1 = {top}")
    return out, int(n_neurons)


def population_summary(steps, ids, populations: Mapping[str, tuple[int, int]], dt: float, t_stop: float,
                       t_start: float = 200.0, *, n_neurons: int | None = None,
                       bin_ms: float = 1.0) -> dict[str, dict[str, float]]:
    """Statistics of each population, as the NEST reference script `ref_brunel_nest.py` defines them.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike.
    - `populations`: name -> (start, stop): the population's neurons are ids start .. stop - 1.
    - `dt`: step (ms); `t_stop`: end of the recording (ms), a multiple of `bin_ms`.
    - `t_start`: end of the transient (ms): rates and CVs use spikes with time > t_start, the
      population-rate statistics the bins starting at or after it. Default 200 ms (the reference).
    - `n_neurons`: total number of neurons (ids must be below it); default the largest `stop`.
    - `bin_ms`: bin of the population rate (ms), default 1 ms (the reference).

    **Returns:** per population a dict of
    - `n_neurons`; `rate_Hz`: mean rate over (t_start, t_stop]; `rate_all_Hz`: over (0, t_stop];
    - `cv_mean`, `cv_median`, `cv_n_neurons`: mean / median of the CV(ISI) (spikes after t_start,
      >= 3 of them) over the neurons that have one (NaN if none), and their number;
    - `frac_silent`: fraction of neurons without any spike in (0, t_stop];
    - `pop_rate_mean_Hz`, `pop_rate_std_Hz`: mean and SD of the population rate in `bin_ms` bins
      after t_start; `pop_rate_fano`: Fano factor of the population spike count in those bins.
    """
    pops, n = _check_populations(populations, n_neurons)
    dt = _time(dt, "dt", positive=True)
    t_stop = _time(t_stop, "t_stop", positive=True)
    t_start = _time(t_start, "t_start")
    bin_ms = _time(bin_ms, "bin_ms", positive=True)
    k_start, k_stop = _window(t_start, t_stop, dt)
    n_bins, spb = _n_bins(t_stop, bin_ms), _bin_steps(bin_ms, dt)
    first_bin = math.ceil(_steps_of(t_start, bin_ms))  # the reference's pop_hist[int(T0):] (1-ms bins)
    s, i = _records(steps, ids, n)
    s_in = s[(s + 1) <= k_stop]
    i_in = i[(s + 1) <= k_stop]
    all_counts = np.bincount(i_in, minlength=n)
    window_counts = np.bincount(i_in[(s_in + 1) > k_start], minlength=n)
    cvs = cv_isi(s_in, i_in, n, dt, t_start=t_start)
    out = {}
    for name, (a, b) in pops.items():
        size = b - a
        cv = cvs[a:b][~np.isnan(cvs[a:b])]
        member = (i_in >= a) & (i_in < b)
        hist = _population_counts(s_in[member], spb, n_bins)[first_bin:]
        rate = hist / size / (bin_ms * 1e-3)
        out[name] = dict(
            n_neurons=size,
            rate_Hz=float(window_counts[a:b].sum() / size / ((t_stop - t_start) / 1000.0)),
            rate_all_Hz=float(all_counts[a:b].sum() / size / (t_stop / 1000.0)),
            cv_mean=float(cv.mean()) if cv.size else math.nan,
            cv_median=float(np.median(cv)) if cv.size else math.nan,
            cv_n_neurons=int(cv.size),
            frac_silent=float(np.mean(all_counts[a:b] == 0)),
            pop_rate_mean_Hz=float(rate.mean()) if rate.size else math.nan,
            pop_rate_std_Hz=float(rate.std()) if rate.size else math.nan,
            pop_rate_fano=fano_factor(hist) if hist.size else math.nan,
        )
    return out
