"""Parameter names: one name per parameter of any model, with its unit and bounds.

A *parameter* is a floating-point array leaf of a model (an `equinox.Module`), reached through
its non-static fields, dict keys and sequence indices. Its *name* is that path joined by dots,
read from the model down, with one shortening: the entries of a `channels` or `point_processes`
dict are named directly under their owner, as they are in the state (`state["na"]["m"]`):

| model | names |
|---|---|
| `HH()` | `na.gbar`, `na.e_rev`, `k.gbar`, ..., `c_m`, `temperature`, `spike_threshold` |
| `Pospischil("IB")` | `na.v_t`, `km.tau_max`, ..., `calcium.tau`, `calcium.depth`, ... |
| `LIF()` | `beta_raw`, `threshold`, `refractory` |
| `Cell(...)` | `na.gbar` (`(N,)`), ..., `syn.tau` (a point process), `cm`, `tree.area_um2`, ... |
| `nn.HHLayer` | `linear.weight`, `neuron.na.gbar`, `g_log.na`, ... |

The long form (`"channels.na.gbar"`) is accepted wherever a name is, but only the short form is
listed; a channel whose name equals a field of its owner keeps the long form. Every name
becomes a valid identifier when its dots are replaced by underscores (`Parameter.symbol`,
`"na_gbar"`): the form C code and NIR keys use.

The unit and lower bound of a parameter are those its field declares with `param()`
(`brainfuse_jax._validate.param`: `"mS/cm2"` and `>= 0` for a `gbar`); parameters declared
without it (LIF, ASN, nn weights) have `unit=None` and no bound.

`get`/`set_values` read and replace leaves with `eqx.tree_at`: no field converter runs, so they
are safe under `jit`, `vmap` and `grad`. Every unknown name raises a `ValueError` naming the
argument and listing the valid names, closest match first.

The same module names state variables for `simulate`'s `record` (`"v"`, `"na.m"`, `"syn.g"`):
`state_names`, `state_lookup`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._validate import check_finite, check_nonnegative, check_positive

__all__ = ["Parameter", "parameters", "names", "resolve", "get", "owner", "set_values", "symbol", "closest_first",
           "unknown_name_error", "state_names", "state_lookup", "UnknownArgumentError"]

Step = tuple[str, Any]  # ("attr", field name) | ("key", dict key) | ("idx", sequence index)
#: Dict fields whose entries are named directly under their owner (as in the state).
FLAT_FIELDS = ("channels", "point_processes")
_LOWS = {None: (-math.inf, False), "nonnegative": (0.0, False), "positive": (0.0, True)}


class UnknownArgumentError(TypeError, ValueError):
    """An unknown keyword argument of a model constructor: a `TypeError`, as Python's own for an
    unexpected keyword, and a `ValueError` for code written against earlier releases."""


class Parameter(NamedTuple):
    """One parameter of a model.

    - `name`: its name, e.g. `"na.gbar"`; `symbol` is the identifier form `"na_gbar"`.
    - `steps`: the access path, `(("attr", "channels"), ("key", "na"), ("attr", "gbar"))`.
    - `unit`: from the field's `param()` declaration (`"mS/cm2"`), None if it declares none.
    - `low`: `"positive"`, `"nonnegative"` or None (the `param()` declaration); see `bounds`.
    - `label`: the name the field's own validation uses (`"HHNa.gbar"`), else `name`.
    - `shape`, `dtype`: of the model's current value.
    """

    name: str
    steps: tuple[Step, ...]
    unit: str | None
    low: str | None
    label: str
    shape: tuple[int, ...]
    dtype: Any

    @property
    def symbol(self) -> str:
        """`name` with dots replaced by underscores: a valid identifier (C symbol, NIR key)."""
        return symbol(self.name)

    @property
    def bounds(self) -> tuple[float, float]:
        """`(lower, upper)`: `(0, inf)` for `low="positive"` (open) and `"nonnegative"` (closed),
        `(-inf, inf)` otherwise. Values must also be finite."""
        return (_LOWS[self.low][0], math.inf)

    def check(self, values, argname: str | None = None):
        """`ValueError` naming `argname` (default: the parameter's name) unless every value is
        finite and inside `bounds`; returns `values`. Eager for concrete values, an
        `eqx.error_if` check under `jit`."""
        name = argname or self.name
        values = check_finite(values, name)
        if self.low == "positive":
            return check_positive(values, name, self.unit or "")
        if self.low == "nonnegative":
            return check_nonnegative(values, name, self.unit or "")
        return values


# ---- names -------------------------------------------------------------------------------------
def _is_param_leaf(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.inexact)


def _fields(module) -> list[dataclasses.Field]:
    return list(dataclasses.fields(module)) if dataclasses.is_dataclass(module) else []


def _param_metadata(field: dataclasses.Field | None) -> tuple[str | None, str | None, str | None]:
    """`(unit, low, label)` declared by `param()` for `field`, or `(None, None, None)`.

    Read from the field's metadata keys `"unit"`, `"low"`, `"name"` that `param()` records."""
    if field is None or "unit" not in field.metadata:
        return None, None, None
    meta = field.metadata
    return meta.get("unit") or None, meta.get("low"), meta.get("name")


def _children(node) -> Iterator[tuple[str, str, tuple[Step, ...], Any, dataclasses.Field | None]]:
    """`(short part, long part, steps, child, field)` of a module, dict or sequence node."""
    if isinstance(node, eqx.Module):
        fields = [f for f in _fields(node) if not f.metadata.get("static", False)]
        taken = {f.name for f in fields}
        for f in fields:
            value = getattr(node, f.name, None)
            if f.name in FLAT_FIELDS and isinstance(value, dict):
                for key, child in value.items():
                    if isinstance(key, str):
                        long = f"{f.name}.{key}"
                        yield (long if key in taken else key), long, (("attr", f.name), ("key", key)), child, None
            else:
                yield f.name, f.name, (("attr", f.name),), value, f
    elif isinstance(node, dict):
        for key, child in node.items():
            if isinstance(key, str):
                yield key, key, (("key", key),), child, None
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            yield str(i), str(i), (("idx", i),), child, None


def _walk(node, prefix: str, long_prefix: str, steps: tuple, field, out_short, out_long):
    if _is_param_leaf(node):
        unit, low, label = _param_metadata(field)
        p = Parameter(prefix, steps, unit, low, label or prefix, tuple(node.shape), node.dtype)
        out_short.append(p)
        if long_prefix != prefix:
            out_long[long_prefix] = p
        return
    for short, long, st, child, f in _children(node):
        _walk(child, _join(prefix, short), _join(long_prefix, long), (*steps, *st), f, out_short, out_long)


def _join(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


def _collect(model) -> tuple[list[Parameter], dict[str, Parameter]]:
    short: list[Parameter] = []
    long: dict[str, Parameter] = {}
    _walk(model, "", "", (), None, short, long)
    # channel and point-process parameters first (the model's own fields after), each in order
    first = [p for p in short if p.steps and p.steps[0][1] in FLAT_FIELDS]
    rest = [p for p in short if not (p.steps and p.steps[0][1] in FLAT_FIELDS)]
    return first + rest, long


def parameters(model) -> dict[str, Parameter]:
    """Every parameter of `model` by name, in a stable order: channel and point-process
    parameters first, then the model's other fields, each in declaration order."""
    return {p.name: p for p in _collect(model)[0]}


def names(model) -> list[str]:
    """The parameter names of `model` (`list(parameters(model))`), e.g. for `HH()`:
    `['na.gbar', 'na.e_rev', 'k.gbar', 'k.e_rev', 'leak.gbar', 'leak.e_rev', 'c_m',
    'temperature', 'spike_threshold']`."""
    return list(parameters(model))


def symbol(name: str) -> str:
    """The identifier form of a parameter or state name: dots replaced by underscores
    (`"na.gbar"` -> `"na_gbar"`); `ValueError` if that is not a valid identifier (a channel
    named `"Na-T"`)."""
    sym = name.replace(".", "_")
    if not sym.isidentifier():
        raise ValueError(f"{name!r} does not give a valid identifier ({sym!r}): name channels, point "
                         "processes and fields with letters, digits and underscores")
    return sym


# ---- unknown names -----------------------------------------------------------------------------
def closest_first(name: str, valid: Iterable[str]) -> list[str]:
    """`valid`, the closest matches of `name` first (difflib similarity, case-insensitive; ties in
    alphabetical order, so that the order does not depend on how a dict was built)."""
    valid = list(valid)
    key = str(name).lower()
    score = {v: difflib.SequenceMatcher(None, key, v.lower()).ratio() for v in valid}
    return sorted(valid, key=lambda v: (-score[v], v))


def unknown_name_error(argname: str, what: str, name, valid: Iterable[str], *, note: str = "",
                       kind: str = "names", error: type[Exception] = ValueError,
                       describe: Callable[[str], str] | None = None) -> Exception:
    """The error for an unknown name: `"{argname}: {what} (did you mean 'x'?); {kind}, closest
    first: a, b, ...{note}"`. `describe(valid_name)` may annotate each listed name."""
    ordered = closest_first(str(name), valid)
    close = ordered and difflib.SequenceMatcher(None, str(name).lower(), ordered[0].lower()).ratio() >= 0.6
    hint = f" (did you mean {ordered[0]!r}?)" if close else ""  # the first listed: one answer
    listed = ", ".join(repr(v) + (describe(v) if describe else "") for v in ordered) or "none"
    prefix = f"{argname}: " if argname else ""
    return error(f"{prefix}{what}{hint}; {kind}, closest first: {listed}{note}")


def resolve(model, name: str, argname: str = "params", *, note: str = "") -> Parameter:
    """The parameter `name` of `model` (short or long form). Unknown names raise a `ValueError`
    naming `argname` that lists the valid names, closest first (and ends with `note`); a static
    field (configuration such as `scheme`) is named as such."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"{argname}: parameter names must be non-empty strings such as 'na.gbar', got {name!r}")
    short, long = _collect(model)
    for p in short:
        if p.name == name:
            return p
    if name in long:
        return long[name]
    what = f"unknown parameter {name!r} of {type(model).__name__}"
    if _static_field(model, name):
        argname, what = f"{argname}[{name!r}]", (f"{name!r} is a static field (configuration) of "
                                                 f"{type(model).__name__}, not a parameter; build one model per value instead")
    raise unknown_name_error(argname, what, name, [p.name for p in short], note=note, kind="parameters")


def _static_field(model, name: str) -> bool:
    """Whether `name` is the path of a static field (configuration, not a leaf)."""
    node, parts = model, name.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, eqx.Module):
            fields = {f.name: f for f in _fields(node)}
            flat = [getattr(node, f, None) for f in FLAT_FIELDS]
            flat = [d for d in flat if isinstance(d, dict) and part in d]
            if part in fields:
                if fields[part].metadata.get("static", False):
                    return i == len(parts) - 1
                node = getattr(node, part)
            elif flat:
                node = flat[0][part]
            else:
                return False
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return False


# ---- get and set -------------------------------------------------------------------------------
def _node(model, steps: Sequence[Step]):
    node = model
    for kind, key in steps:
        node = getattr(node, key) if kind == "attr" else node[key]
    return node


def _as_param(model, p: Parameter | str, argname: str) -> Parameter:
    return resolve(model, p, argname) if isinstance(p, str) else p


def get(model, p: Parameter | str, argname: str = "name"):
    """The current value of parameter `p` (a `Parameter` or a name) of `model`."""
    return _node(model, _as_param(model, p, argname).steps)


def owner(model, p: Parameter | str, argname: str = "name"):
    """The module (or dict) that holds parameter `p` of `model` (`HHNa` for `"na.gbar"`)."""
    return _node(model, _as_param(model, p, argname).steps[:-1])


def set_values(model, params: Sequence[Parameter | str], values: Sequence, *, cast: bool = False,
               argname: str = "params"):
    """A copy of `model` with `params` (`Parameter`s or names) replaced by `values` (arrays,
    tracers welcome; each cast to the current leaf's dtype if `cast`). No field converter or
    check runs: safe under `jit`, `vmap` and `grad` (use `Parameter.check` to validate)."""
    params = [_as_param(model, p, argname) for p in params]
    if len(params) != len(values):
        raise ValueError(f"{argname}: {len(params)} parameters but {len(values)} values")
    if not params:
        return model
    where = lambda m: tuple(_node(m, p.steps) for p in params)  # noqa: E731
    if cast:
        values = [jnp.asarray(v, o.dtype) for v, o in zip(values, where(model), strict=True)]
    return eqx.tree_at(where, model, tuple(values))


# ---- state variables (records) -----------------------------------------------------------------
def state_names(state, prefix: str = "") -> list[str]:
    """The names of the variables of a state dict, e.g. `["v", "na.m", "na.h", "k.n"]`."""
    out = []
    for key, value in state.items():
        if isinstance(value, dict):
            out.extend(state_names(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


def state_lookup(state, path: str, argname: str = "record", *, extra: dict[str, Any] | None = None):
    """The state variable at `path` (`"v"`, `"na.m"`) or an entry of `extra` (`{"output": out}`);
    a `ValueError` naming `argname` lists the state variables, closest first, otherwise."""
    if extra and path in extra:
        return extra[path]
    node = state
    for part in str(path).split("."):
        if not isinstance(node, dict) or part not in node:
            valid = [*(extra or {}), *state_names(state)]
            raise unknown_name_error(argname, f"{path!r} is not a state variable", path, valid,
                                     kind="available (state variables)")
        node = node[part]
    return node
