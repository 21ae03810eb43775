"""Plots of a network recording (matplotlib, imported on use): raster, population rates, histograms
of rates and CV(ISI), and the raster-over-rate figure of NEST's examples.

Every function takes the recording as `steps` (int, step of emission) and `ids` (int, global
neuron id) with the step `dt` (ms; a spike of step t is drawn at (t + 1) * dt ms), and optionally
`populations`: name -> (start, stop) neuron-id ranges (neurons start .. stop - 1), drawn in the
colours C0, C1, ... of matplotlib's cycle in dict order. Each returns the matplotlib `Figure`
(created with `pyplot`, so `plt.show()` displays it; close it with `plt.close(fig)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ._analysis import (_check_populations, _n_bins, _positive_int, _records, _steps_of, _time, cv_isi,
                        firing_rates, population_rate)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_raster", "plot_population_rates", "plot_rate_cv_histograms", "plot_activity"]


def _groups(populations, n_neurons, ids, *, need_size: bool) -> tuple[dict[str, tuple[int, int]], int]:
    """The populations (validated) and the total number of neurons; one group "all" without them."""
    if populations is not None:
        return _check_populations(populations, n_neurons)
    if n_neurons is None:
        if need_size:
            raise ValueError("pass populations or n_neurons: rates are averaged over the neurons, "
                             "including silent ones the spike record does not show")
        ids = np.asarray(ids)
        n_neurons = int(ids.max()) + 1 if ids.size else 1
    n = _positive_int(n_neurons, "n_neurons")
    return {"all": (0, n)}, n


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize).add_subplot()


def _draw_raster(ax: Axes, s: np.ndarray, i: np.ndarray, dt: float, groups: dict[str, tuple[int, int]],
                 max_neurons: int | None, t_start: float, t_stop: float | None, labelled: bool,
                 marker_size: float) -> None:
    k = s + 1
    keep = k > _steps_of(t_start, dt)
    if t_stop is not None:
        keep &= k <= _steps_of(t_stop, dt)
    k, i = k[keep], i[keep]
    offset, ticks = 0, []
    for c, (name, (a, b)) in enumerate(groups.items()):
        shown = b - a if max_neurons is None else min(b - a, max_neurons)
        sel = (i >= a) & (i < a + shown)
        y = i[sel] - a + (offset if labelled else a)
        ax.plot(k[sel] * dt, y, ls="none", marker="|", ms=marker_size, mew=0.6, color=f"C{c}", label=name)
        ticks.append((offset if labelled else a) + (shown - 1) / 2)
        offset += shown
    if labelled:
        ax.set_yticks(ticks, list(groups))
        ax.set_ylim(-0.5, offset - 0.5)
        ax.invert_yaxis()  # the first population on top, as in NEST's microcircuit example
    else:
        ax.set_ylabel("neuron id")
    ax.set_xlim(t_start, t_stop if t_stop is not None else None)


def plot_raster(steps, ids, dt: float, populations: Mapping[str, tuple[int, int]] | None = None,
                max_neurons: int | None = None, *, n_neurons: int | None = None, t_start: float = 0.0,
                t_stop: float | None = None, marker_size: float = 2.0, ax: Axes | None = None) -> Figure:
    """Raster plot: one tick per spike at its time (ms) and its neuron.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike; `dt`: step (ms).
    - `populations`: name -> (start, stop) id ranges. With them, each population gets one colour and
      a block of rows labelled with its name (the first on top); without, rows are the neuron ids.
    - `max_neurons`: show only the first `max_neurons` neurons of each population (all by default).
    - `n_neurons`: total number of neurons (ids are checked against it); default the largest id + 1
      (or the populations' largest stop).
    - `t_start`, `t_stop`: time window shown (ms); default from 0 to the last spike.
    - `marker_size`: tick length (points); `ax`: draw into this `Axes` instead of a new figure.

    **Returns:** the `Figure` (one `Line2D` per population, labelled with its name).
    """
    dt = _time(dt, "dt", positive=True)
    groups, n = _groups(populations, n_neurons, ids, need_size=False)
    if max_neurons is not None:
        max_neurons = _positive_int(max_neurons, "max_neurons")
    t_start = _time(t_start, "t_start")
    if t_stop is not None and _time(t_stop, "t_stop") <= t_start:
        raise ValueError(f"t_stop must be > t_start = {t_start} ms, got {t_stop}")
    s, i = _records(steps, ids, n)
    ax = _axes(ax, (8.0, 4.0))
    _draw_raster(ax, s, i, dt, groups, max_neurons, t_start, t_stop, populations is not None, marker_size)
    ax.set_xlabel("time (ms)")
    return ax.figure


def _draw_rates(ax: Axes, s: np.ndarray, i: np.ndarray, dt: float, groups: dict[str, tuple[int, int]],
                bin_ms: float, t_stop: float) -> None:
    edges = np.arange(_n_bins(t_stop, bin_ms) + 1) * bin_ms
    for c, (name, (a, b)) in enumerate(groups.items()):
        sel = (i >= a) & (i < b)
        rate = population_rate(s[sel], i[sel] - a, b - a, dt, bin_ms, t_stop)
        ax.plot(0.5 * (edges[:-1] + edges[1:]), rate, color=f"C{c}", lw=0.8, label=name)
    ax.set_ylabel(f"rate (Hz, {bin_ms:g} ms bins)")
    ax.set_xlim(0.0, t_stop)


def plot_population_rates(steps, ids, dt: float, t_stop: float,
                          populations: Mapping[str, tuple[int, int]] | None = None, *,
                          n_neurons: int | None = None, bin_ms: float = 1.0, ax: Axes | None = None) -> Figure:
    """Population rate of each population against time (see `population_rate`).

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike; `dt`: step (ms).
    - `t_stop`: end of the recording (ms), a multiple of `bin_ms`.
    - `populations`: name -> (start, stop) id ranges; without, one curve over all `n_neurons`.
    - `n_neurons`: total number of neurons (needed without `populations`).
    - `bin_ms`: bin width (ms), a multiple of `dt`; default 1 ms (the NEST reference's bins).
    - `ax`: draw into this `Axes` instead of a new figure.

    **Returns:** the `Figure` (one `Line2D` per population, rate in Hz at the bin centres).
    """
    dt = _time(dt, "dt", positive=True)
    t_stop = _time(t_stop, "t_stop", positive=True)
    bin_ms = _time(bin_ms, "bin_ms", positive=True)
    groups, n = _groups(populations, n_neurons, ids, need_size=True)
    s, i = _records(steps, ids, n)
    ax = _axes(ax, (8.0, 3.0))
    _draw_rates(ax, s, i, dt, groups, bin_ms, t_stop)
    ax.set_xlabel("time (ms)")
    if len(groups) > 1:
        ax.legend(loc="upper right", fontsize="small")
    return ax.figure


def plot_rate_cv_histograms(steps, ids, dt: float, t_stop: float,
                            populations: Mapping[str, tuple[int, int]] | None = None, *,
                            n_neurons: int | None = None, t_start: float = 200.0, bins: int = 30) -> Figure:
    """Histograms, per population, of the neurons' firing rates and CV(ISI) (one row per
    population: rates on the left, CVs on the right), as in NEST's network examples.

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike; `dt`: step (ms).
    - `t_stop`: end of the recording (ms).
    - `populations`: name -> (start, stop) id ranges; without, one row over all `n_neurons`.
    - `n_neurons`: total number of neurons (needed without `populations`).
    - `t_start`: rates over (t_start, t_stop] and CVs of the spikes after t_start (>= 3 of them,
      neurons with fewer are left out), as `population_summary`; default 200 ms (the reference).
    - `bins`: number of bins of each histogram (from 0 to the largest value over the populations).

    **Returns:** the `Figure` with 2 x len(populations) axes, `bins` bars in each.
    """
    import matplotlib.pyplot as plt

    dt = _time(dt, "dt", positive=True)
    t_stop = _time(t_stop, "t_stop", positive=True)
    t_start = _time(t_start, "t_start")
    if t_stop <= t_start:
        raise ValueError(f"t_stop must be > t_start = {t_start} ms (pass t_start for short recordings), got {t_stop}")
    bins = _positive_int(bins, "bins")
    groups, n = _groups(populations, n_neurons, ids, need_size=True)
    s, i = _records(steps, ids, n)
    rates = firing_rates(s, i, n, t_start, t_stop, dt)
    cvs = cv_isi(s, i, n, dt, t_start=t_start)
    fig, axes = plt.subplots(len(groups), 2, figsize=(8.0, 1.0 + 1.8 * len(groups)), squeeze=False,
                             sharex="col", layout="constrained")
    members = np.concatenate([np.arange(a, b) for a, b in groups.values()])
    edges = []  # one set of bin edges per column, shared by the populations
    for v in (rates[members], cvs[members][~np.isnan(cvs[members])]):
        top = float(v.max()) if v.size else 0.0
        edges.append(np.linspace(0.0, top if top > 0 else 1.0, bins + 1))
    for c, (name, (a, b)) in enumerate(groups.items()):
        r, cv = rates[a:b], cvs[a:b][~np.isnan(cvs[a:b])]
        for ax, v, e, what in ((axes[c, 0], r, edges[0], f"mean {r.mean():.2f} Hz"),
                               (axes[c, 1], cv, edges[1], f"mean CV {cv.mean():.2f}" if cv.size else "no CV")):
            ax.hist(v, bins=e, color=f"C{c}")
            ax.set_title(f"{name}: {what}", fontsize="small")
        axes[c, 0].set_ylabel("neurons")
    axes[-1, 0].set_xlabel("firing rate (Hz)")
    axes[-1, 1].set_xlabel("CV(ISI)")
    return fig


def plot_activity(steps, ids, dt: float, t_stop: float, populations: Mapping[str, tuple[int, int]] | None = None,
                  max_neurons: int | None = 100, *, n_neurons: int | None = None, bin_ms: float = 1.0,
                  marker_size: float = 2.0) -> Figure:
    """Raster over population rate, sharing the time axis (the figure of NEST's Brunel example).

    **Arguments:**
    - `steps`, `ids`: int (K,) step of emission and global neuron id of each spike; `dt`: step (ms).
    - `t_stop`: end of the recording (ms), a multiple of `bin_ms`.
    - `populations`: name -> (start, stop) id ranges; without, all `n_neurons` as one group.
    - `max_neurons`: neurons shown per population in the raster (default 100; None: all). The rates
      are always over every neuron of the population.
    - `n_neurons`: total number of neurons (needed without `populations`).
    - `bin_ms`: bin of the population rate (ms), a multiple of `dt`.
    - `marker_size`: raster tick length (points).

    **Returns:** the `Figure` with two axes: raster (top; one `Line2D` per population) and
    population rates (bottom; one `Line2D` per population).
    """
    import matplotlib.pyplot as plt

    dt = _time(dt, "dt", positive=True)
    t_stop = _time(t_stop, "t_stop", positive=True)
    bin_ms = _time(bin_ms, "bin_ms", positive=True)
    if max_neurons is not None:
        max_neurons = _positive_int(max_neurons, "max_neurons")
    groups, n = _groups(populations, n_neurons, ids, need_size=True)
    s, i = _records(steps, ids, n)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 5.5), sharex=True, height_ratios=(3, 1),
                                      layout="constrained")
    _draw_raster(top, s, i, dt, groups, max_neurons, 0.0, t_stop, populations is not None, marker_size)
    _draw_rates(bottom, s, i, dt, groups, bin_ms, t_stop)
    bottom.set_xlabel("time (ms)")
    if len(groups) > 1:
        bottom.legend(loc="upper right", fontsize="small")
    return fig
