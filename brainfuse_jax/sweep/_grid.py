"""Sweep grids: parameter names (through `brainfuse_jax.params`, the one naming of parameters)
and the grid of points built from their axes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .. import params as _params

STIMULUS_PREFIX = "stimulus."


def parameter_paths(model) -> list[str]:
    """The names `sweep` accepts for `model`'s parameters: `brainfuse_jax.params.names(model)`
    (the same names as `fit.parameter_names`), e.g. for `HH()`: `["na.gbar", "na.e_rev", ...,
    "c_m", "temperature", "spike_threshold"]`. The long form `"channels.na.gbar"` is accepted too."""
    return _params.names(model)


def _resolve(model, name: str, argname: str = "grid") -> _params.Parameter:
    """The parameter `name` of `model`, which must hold one scalar (sweep sets one per point)."""
    if not isinstance(name, str) or not name or any(not p for p in name.split(".")):
        raise ValueError(f"{argname}: parameter names must be non-empty dotted strings such as "
                         f"'na.gbar', got {name!r}")
    p = _params.resolve(model, name, argname, note=f"; names starting with '{STIMULUS_PREFIX}' go to a "
                                                   "callable stimulus")
    if p.shape != ():
        raise ValueError(f"{argname}[{name!r}]: the model's value has shape {p.shape}; sweep sets one scalar "
                         "per grid point, so the model must describe one neuron")
    return p


def _check_domain(model, name: str, p: _params.Parameter, values: np.ndarray):
    """Check the smallest and largest swept value against the parameter's declared bounds
    (`param()` metadata), naming the grid entry. Without metadata, build the leaf's owner with
    them so that the owner's own validation speaks (if it is a plain dataclass)."""
    ends = np.asarray([values.min(), values.max()])
    if p.unit is not None or p.low is not None:
        try:
            p.check(ends, p.label)
        except ValueError as err:
            raise ValueError(f"grid[{name!r}]: {err}") from None
        return
    kind, field = p.steps[-1]
    parent = _params.owner(model, p)
    if kind != "attr" or not dataclasses.is_dataclass(parent):
        return
    for v in ends:
        try:
            dataclasses.replace(parent, **{field: float(v)})
        except ValueError as err:
            raise ValueError(f"grid[{name!r}]: {err}") from None
        except TypeError:  # a custom __init__: nothing to check against
            return


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

