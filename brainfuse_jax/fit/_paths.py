"""Parameter paths: strings that name a floating-point leaf of a model.

A path is a dot-separated chain of field names and dict keys, read from the model down:
`"c_m"` is `model.c_m`, `"channels.na.gbar"` is `model.channels["na"].gbar`. For models with a
`channels` dict (`PointNeuron`, `HH`) a channel name may start the path directly, so
`"na.gbar"` means `"channels.na.gbar"`; field names take precedence over channel names.
`parameter_names(model)` lists every path in its short form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

Step = tuple[str, str]  # ("attr", field name) or ("key", dict key)


def _is_param_leaf(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.inexact)


def _fields(module: eqx.Module) -> Iterator[tuple[str, object]]:
    for f in dataclasses.fields(module):
        if f.metadata.get("static", False):
            continue
        yield f.name, getattr(module, f.name)


def _walk(node, prefix: str, steps: tuple[Step, ...]) -> Iterator[tuple[str, tuple[Step, ...]]]:
    if _is_param_leaf(node):
        yield prefix, steps
    elif isinstance(node, eqx.Module):
        for name, value in _fields(node):
            yield from _walk(value, f"{prefix}{name}.", (*steps, ("attr", name)))
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield from _walk(value, f"{prefix}{key}.", (*steps, ("key", key)))


def _all_paths(model) -> dict[str, tuple[Step, ...]]:
    """Every parameter path of `model`, channel parameters in short form first -> access steps.
    Long forms (`"channels.na.gbar"`) are accepted by `resolve` but not listed."""
    long = {path.rstrip("."): steps for path, steps in _walk(model, "", ())}
    fields = {name for name, _ in _fields(model)} if isinstance(model, eqx.Module) else set()
    if not isinstance(getattr(model, "channels", None), dict):
        return long
    short, rest = {}, {}
    for path, steps in long.items():
        head, _, tail = path.partition(".")
        if head == "channels" and tail.split(".")[0] not in fields:
            short[tail] = steps
        else:
            rest[path] = steps
    return {**short, **rest}


def parameter_names(model) -> list[str]:
    """The parameter paths of `model` that `fit` accepts, e.g. for `HH()`:
    `['na.gbar', 'na.e_rev', 'k.gbar', 'k.e_rev', 'leak.gbar', 'leak.e_rev', 'c_m',
    'temperature', 'spike_threshold']` (channels first, then the neuron's own fields)."""
    return list(_all_paths(model))


def resolve(model, name: str, argname: str = "params") -> tuple[Step, ...]:
    """Access steps of the parameter `name`; `ValueError` naming `argname` and listing the
    available names if `model` has no such floating-point leaf."""
    if not isinstance(name, str):
        raise TypeError(f"{argname}: parameter names must be strings such as 'na.gbar', got {name!r}")
    paths = _all_paths(model)
    if name in paths:
        return paths[name]
    long = {path.rstrip("."): steps for path, steps in _walk(model, "", ())}
    if name in long:  # e.g. "channels.na.gbar"
        return long[name]
    raise ValueError(f"{argname}: {type(model).__name__} has no parameter {name!r}; available: "
                     f"{list(paths)}")


def get_value(model, steps: tuple[Step, ...]):
    node = model
    for kind, key in steps:
        node = getattr(node, key) if kind == "attr" else node[key]
    return node


def set_values(model, steps_list: list[tuple[Step, ...]], values: list):
    """A copy of `model` with the leaves at `steps_list` replaced by `values` (no validation:
    field converters do not run, so this is safe under jit, vmap and grad)."""
    if not steps_list:
        return model
    return eqx.tree_at(lambda m: tuple(get_value(m, s) for s in steps_list), model, tuple(values))
