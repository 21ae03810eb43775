"""Plotting a `RateMap` (matplotlib, imported on use)."""

from __future__ import annotations

import numpy as np

from ._curves import RateMap


def _label(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


def plot_rate_map(rate_map: RateMap, ax=None, *, labels: tuple[str, str] | None = None, cmap: str = "viridis",
                  title: str | None = None, **pcolormesh_kwargs):
    """Plot a `RateMap` as a colour map: `param_a` on the x axis, `param_b` on the y axis, the
    firing rate (Hz) as colour with a colour bar. Axis labels carry the units `rate_map` found
    (`RateMap.unit_a`, `unit_b`: a model parameter's declared unit, uA/cm2 for the constant
    current of a `PointNeuron`); pass `labels=(x_label, y_label)` otherwise. Returns the
    matplotlib `Axes`."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.2))
    mesh = ax.pcolormesh(rate_map.values_a, rate_map.values_b, np.asarray(rate_map.rates).T, cmap=cmap,
                         shading="nearest", **pcolormesh_kwargs)
    cbar = ax.figure.colorbar(mesh, ax=ax)
    cbar.set_label("firing rate (Hz)")
    xl, yl = labels or (_label(rate_map.param_a, rate_map.unit_a), _label(rate_map.param_b, rate_map.unit_b))
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    if title:
        ax.set_title(title)
    return ax
