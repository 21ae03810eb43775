"""Names of the leaves that cross an exported function's boundary: the model's array leaves
(parameters, named as `bf.params` names them, and integer leaves such as a network's
`"conn.cols"`), the state's leaves (`"v"`, `"na.m"`, `"populations.E.v"`) and the leaves of
inputs and outputs."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from .. import params as bf_params


class Spec(NamedTuple):
    """One array crossing the boundary of an exported function: its `name` (dots between path
    parts; `symbol` gives the identifier form, `"na_gbar"`), `shape` and `dtype` (a NumPy
    dtype)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def symbol(self) -> str:
        """`name` with dots replaced by underscores (a C identifier)."""
        return bf_params.symbol(self.name)

    def to_json(self) -> list:
        return [self.name, list(self.shape), np.dtype(self.dtype).name]

    @classmethod
    def from_json(cls, item) -> Spec:
        name, shape, dtype = item
        return cls(str(name), tuple(int(s) for s in shape), np.dtype(dtype))


def spec_of(name: str, a) -> Spec:
    return Spec(name, tuple(int(s) for s in np.shape(a)), np.dtype(a.dtype))


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def _walk(node, prefix: str, steps: tuple, field, out: list) -> None:
    if _is_array(node):
        unit, low, label = bf_params._param_metadata(field)
        out.append(bf_params.Parameter(prefix, steps, unit, low, label or prefix, tuple(node.shape), node.dtype))
        return
    for short, _long, st, child, f in bf_params._children(node):
        _walk(child, bf_params._join(prefix, short), (*steps, *st), f, out)


def model_leaves(model) -> list[bf_params.Parameter]:
    """Every array leaf of `model` as a `bf.params.Parameter` (name, access path, shape, dtype),
    in `bf.params`' order (channel and point-process entries first, then the other fields):
    the floating-point ones are exactly `bf.params.parameters(model)`, integer and boolean
    leaves (a network's `"conn.cols"`) are named the same way. `ValueError` for a leaf that has
    no such name (inside a dict with non-string keys or a custom pytree node) or that is a PRNG
    key, and for two leaves of one name."""
    found: list[bf_params.Parameter] = []
    _walk(model, "", (), None, found)
    flat = [p for p in found if p.steps and p.steps[0][1] in bf_params.FLAT_FIELDS]
    found = flat + [p for p in found if not (p.steps and p.steps[0][1] in bf_params.FLAT_FIELDS)]
    named = {id(bf_params._node(model, p.steps)) for p in found}
    unnamed = [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_flatten_with_path(model)[0]
               if _is_array(leaf) and id(leaf) not in named]
    if unnamed:
        raise ValueError(f"model: the leaves {unnamed} of {type(model).__name__} have no parameter name "
                         "(names follow module fields, dicts with string keys and sequences), so they "
                         "cannot be arguments of the exported function")
    for p in found:
        if jax.dtypes.issubdtype(p.dtype, jax.dtypes.prng_key):
            raise ValueError(f"model: leaf {p.name!r} is a PRNG key array, which the exported function "
                             "cannot take; store its key data (jax.random.key_data) instead")
    seen: set[str] = set()
    for p in found:
        if p.name in seen:
            raise ValueError(f"model: two leaves of {type(model).__name__} are both named {p.name!r}")
        seen.add(p.name)
    return found


def _part(key) -> str:
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        return key.name
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return str(key.key)
    return str(key)


def tree_specs(tree, root: str | None, argname: str) -> tuple[list[Any], list[Spec], Any]:
    """`(leaves, specs, treedef)` of a pytree of arrays; each leaf named by its path
    (`"populations.E.v"`), under `root` if given (`"x"`, `"output.spikes"`); a lone leaf is
    named `root`. `ValueError` naming `argname` for a leaf that is not an array."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaves, specs = [], []
    for path, leaf in pairs:
        if not (_is_array(leaf) or isinstance(leaf, jax.core.Tracer)):
            raise ValueError(f"{argname}: every leaf must be an array, got {type(leaf).__name__} at "
                             f"{jax.tree_util.keystr(path) or '(root)'}")
        parts = [_part(k) for k in path]
        name = ".".join(([root] if root else []) + parts) or (root or "value")
        leaves.append(leaf)
        specs.append(spec_of(name, leaf))
    return leaves, specs, treedef
