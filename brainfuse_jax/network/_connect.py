"""Connectivity of a network projection: connection rules and `connect`, which draws the synapses
of one projection, their weights and delays (distributions in `_distributions.py`) from a
`numpy.random.Generator`.

Everything here runs once, on the host, when a network is built: plain NumPy, vectorised over
neurons and synapses (the only Python loops run over a few rounds of redraws). The rules follow
NEST 3's connection rules of the same name (`all_to_all`, `pairwise_bernoulli`,
`fixed_indegree`, `fixed_outdegree`, `fixed_total_number`, `one_to_one`): each draws the same
distribution of connectivity as NEST, not NEST's random stream.

Autapses (a neuron onto itself) only exist in a projection of a population onto itself
(`same_population=True`, where source `i` and target `i` are the same neuron); multapses are
repeated (source, target) pairs.

The random stream is consumed in a fixed order (connectivity, then weights, then delays), so the
same seed gives identical arrays.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import NamedTuple

import numpy as np

from ._distributions import _check_rng, _count, _flag, _real
from ._distributions import Constant as Constant
from ._distributions import Distribution as Distribution
from ._distributions import Lognormal as Lognormal
from ._distributions import Normal as Normal
from ._distributions import Uniform as Uniform

# ------------------------------------------------------------------------------ sampling helpers

def _distinct(rng: np.random.Generator, m: int, rows: int, k: int) -> np.ndarray:
    """`(rows, k)` int64: in each row a uniformly random set of `k` distinct values of
    `range(m)` (`k <= m`), in increasing order.

    Sparse case (`k <= m / 2`): draw `k` values per row with replacement, then redraw the
    surplus copies of repeated values until none are left. The law of the process is invariant
    under any relabelling of `range(m)`, so the final set is a uniform `k`-subset; each round
    leaves a fraction <= k/m of the redrawn values repeated, and only rows with repeats are
    processed again. Dense case: the complement (`m - k` values) drawn so, the rest kept.
    """
    if k > m // 2:
        excluded = _distinct(rng, m, rows, m - k)
        keep = np.ones((rows, m), dtype=bool)
        keep[np.arange(rows)[:, None], excluded] = False
        return np.nonzero(keep)[1].reshape(rows, k).astype(np.int64)
    a = rng.integers(0, m, size=(rows, k), dtype=np.int64)
    a.sort(axis=1)
    todo = np.arange(rows)
    while todo.size and k > 1:
        sub = a[todo]
        repeat = np.zeros(sub.shape, dtype=bool)
        repeat[:, 1:] = sub[:, 1:] == sub[:, :-1]
        has = repeat.any(axis=1)
        if not has.any():
            break
        todo, sub, repeat = todo[has], sub[has], repeat[has]
        sub[repeat] = rng.integers(0, m, size=int(repeat.sum()), dtype=np.int64)
        sub.sort(axis=1)
        a[todo] = sub
    return a


def _unflatten(idx: np.ndarray, n_post: int, skip_diagonal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pair index -> (pre, post), pairs numbered pre-major; with `skip_diagonal` the `n (n - 1)`
    pairs with pre != post are numbered instead."""
    if skip_diagonal:
        pre, post = np.divmod(idx, n_post - 1)
        post += post >= pre
        return pre, post
    return np.divmod(idx, n_post)


def _bernoulli_indices(rng: np.random.Generator, total: int, p: float) -> np.ndarray:
    """Indices in `range(total)` each kept independently with probability `p`: the gaps between
    kept indices are geometric, drawn in batches (work proportional to the number kept)."""
    if p == 0.0 or total == 0:
        return np.zeros(0, dtype=np.int64)
    expected = p * total
    batch = int(expected + 6 * math.sqrt(expected * (1 - p)) + 64)
    parts, last = [], -1
    while True:
        # a gap beyond `total` ends the draw; clipping it keeps the sum from overflowing
        idx = last + np.cumsum(np.minimum(rng.geometric(p, size=batch), total))
        if idx[-1] >= total:
            parts.append(idx[idx < total])
            break
        parts.append(idx)
        last = int(idx[-1])
    return np.concatenate(parts).astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------- rules

class Rule(abc.ABC):
    """A connection rule: `connect(n_pre, n_post, rng, same_population)` -> `(pre, post)`, two
    int64 arrays `(S,)` of source and target indices (unsorted)."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field.name.startswith("allow_"):
                _flag(getattr(self, field.name), f"{type(self).__name__}.{field.name}")

    def connect(self, n_pre: int, n_post: int, rng: np.random.Generator,
                same_population: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Draw the synapses between `n_pre` sources and `n_post` targets; `same_population`
        means source `i` and target `i` are the same neuron (needs `n_pre == n_post`)."""
        n_pre, n_post = _count(n_pre, "n_pre", minimum=1), _count(n_post, "n_post", minimum=1)
        same_population = _flag(same_population, "same_population")
        if same_population and n_pre != n_post:
            raise ValueError(f"same_population=True needs n_pre == n_post, got n_pre={n_pre}, n_post={n_post}")
        pre, post = self._pairs(n_pre, n_post, _check_rng(rng), same_population)
        return pre.astype(np.int64, copy=False), post.astype(np.int64, copy=False)

    @abc.abstractmethod
    def _pairs(self, n_pre: int, n_post: int, rng: np.random.Generator,
               same_population: bool) -> tuple[np.ndarray, np.ndarray]:
        """The synapses, arguments already checked."""


def _degree_rule(k: int, name: str, n_from: int, n_to: int, rng: np.random.Generator,
                 skip_self: bool, multapses: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each of `n_to` neurons, `k` partners among `n_from`: returns (partner, neuron)."""
    m = n_from - 1 if skip_self else n_from
    side = "n_pre" if name == "FixedInDegree" else "n_post"
    if not multapses and k > m:
        extra = " - 1 (no autapses in a projection onto the same population)" if skip_self else ""
        raise ValueError(f"{name}.k must be <= {side}{extra} = {m} without multapses "
                         f"(allow_multapses=False), got k={k}")
    if k > 0 and m == 0:
        raise ValueError(f"{name}.k must be 0 when {side} = 1 and autapses are not allowed, got k={k}")
    if multapses:
        partner = rng.integers(0, max(m, 1), size=(n_to, k), dtype=np.int64)
    else:
        partner = _distinct(rng, m, n_to, k)
    neuron = np.repeat(np.arange(n_to, dtype=np.int64), k)
    partner = partner.reshape(-1)
    if skip_self:  # partners drawn from the n - 1 others: shift those at or above the neuron
        partner += partner >= neuron
    return partner, neuron


@dataclasses.dataclass(frozen=True)
class AllToAll(Rule):
    """Every source onto every target (NEST `all_to_all`); without autapses in a projection
    onto the same population, the `n (n - 1)` pairs with source != target."""

    allow_autapses: bool = True

    def _pairs(self, n_pre, n_post, rng, same_population):
        skip = same_population and not self.allow_autapses
        total = n_pre * (n_post - skip)
        return _unflatten(np.arange(total, dtype=np.int64), n_post, skip)


@dataclasses.dataclass(frozen=True)
class PairwiseBernoulli(Rule):
    """Each (source, target) pair connected independently with probability `p` in [0, 1]
    (NEST `pairwise_bernoulli`; never multapses). Work proportional to the synapses made."""

    p: float
    allow_autapses: bool = True

    def __post_init__(self):
        super().__post_init__()
        p = _real(self.p, "PairwiseBernoulli.p")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"PairwiseBernoulli.p must be a probability in [0, 1], got {p!r}")
        object.__setattr__(self, "p", p)

    def _pairs(self, n_pre, n_post, rng, same_population):
        skip = same_population and not self.allow_autapses
        total = n_pre * (n_post - skip)
        return _unflatten(_bernoulli_indices(rng, total, self.p), n_post, skip)


@dataclasses.dataclass(frozen=True)
class FixedInDegree(Rule):
    """Each target receives exactly `k` synapses from sources drawn uniformly (NEST
    `fixed_indegree`): independently with multapses, else `k` distinct sources (`k <= n_pre`,
    `<= n_pre - 1` without autapses onto the same population)."""

    k: int
    allow_autapses: bool = True
    allow_multapses: bool = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "k", _count(self.k, "FixedInDegree.k"))

    def _pairs(self, n_pre, n_post, rng, same_population):
        return _degree_rule(self.k, "FixedInDegree", n_pre, n_post, rng,
                            same_population and not self.allow_autapses, self.allow_multapses)


@dataclasses.dataclass(frozen=True)
class FixedOutDegree(Rule):
    """Each source makes exactly `k` synapses onto targets drawn uniformly (NEST
    `fixed_outdegree`): independently with multapses, else `k` distinct targets."""

    k: int
    allow_autapses: bool = True
    allow_multapses: bool = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "k", _count(self.k, "FixedOutDegree.k"))

    def _pairs(self, n_pre, n_post, rng, same_population):
        post, pre = _degree_rule(self.k, "FixedOutDegree", n_post, n_pre, rng,
                                 same_population and not self.allow_autapses, self.allow_multapses)
        return pre, post


@dataclasses.dataclass(frozen=True)
class FixedTotalNumber(Rule):
    """Exactly `n` synapses, each a (source, target) pair drawn uniformly (NEST
    `fixed_total_number`); without multapses `n` distinct pairs (`n <= n_pre * n_post`)."""

    n: int
    allow_autapses: bool = True
    allow_multapses: bool = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "n", _count(self.n, "FixedTotalNumber.n"))

    def _pairs(self, n_pre, n_post, rng, same_population):
        skip = same_population and not self.allow_autapses
        total = n_pre * (n_post - skip)
        if not self.allow_multapses and self.n > total:
            what = "n_pre * (n_post - 1) (no autapses)" if skip else "n_pre * n_post"
            raise ValueError(f"FixedTotalNumber.n must be <= {what} = {total} without multapses "
                             f"(allow_multapses=False), got n={self.n}")
        if self.n > 0 and total == 0:
            raise ValueError(f"FixedTotalNumber.n must be 0 when no pair is allowed, got n={self.n}")
        if self.allow_multapses:
            idx = rng.integers(0, max(total, 1), size=self.n, dtype=np.int64)
        else:
            idx = _distinct(rng, total, 1, self.n)[0]
        return _unflatten(idx, n_post, skip)


@dataclasses.dataclass(frozen=True)
class OneToOne(Rule):
    """Source `i` onto target `i` (NEST `one_to_one`); needs `n_pre == n_post`."""

    def _pairs(self, n_pre, n_post, rng, same_population):
        if n_pre != n_post:
            raise ValueError(f"OneToOne needs n_pre == n_post, got n_pre={n_pre}, n_post={n_post}")
        i = np.arange(n_pre, dtype=np.int64)
        return i, i.copy()


def _index_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of neuron indices, got shape {arr.shape}")
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer neuron indices, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must hold indices >= 0, got {int(arr.min())}")
    arr = arr.astype(np.int64)
    arr.setflags(write=False)
    return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Explicit(Rule):
    """The synapses listed: `pre[s]` onto `post[s]` (int, >= 0, same length), optionally with
    their own `weight[s]` (finite; `connect` then takes `weight=None`). Repeated pairs are
    multapses; nothing is removed. `shape`, when given (as by `from_matrix`), must equal
    `(n_pre, n_post)` at connection time; otherwise indices must be `< n_pre` / `< n_post`."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray | None = None
    shape: tuple[int, int] | None = None

    def __post_init__(self):
        pre = _index_array(self.pre, "Explicit.pre")
        post = _index_array(self.post, "Explicit.post")
        if pre.shape != post.shape:
            raise ValueError(f"Explicit.pre and Explicit.post must have the same length, got "
                             f"{pre.size} and {post.size}")
        object.__setattr__(self, "pre", pre)
        object.__setattr__(self, "post", post)
        if self.weight is not None:
            w = np.asarray(self.weight)
            if w.dtype == np.bool_ or not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
                raise TypeError(f"Explicit.weight must hold real numbers, got dtype {w.dtype}")
            w = w.astype(np.float64)
            if w.shape != pre.shape:
                raise ValueError(f"Explicit.weight must have the length of Explicit.pre ({pre.size}), "
                                 f"got shape {w.shape}")
            _check_finite(w, "Explicit.weight")
            w.setflags(write=False)
            object.__setattr__(self, "weight", w)
        if self.shape is not None:
            if len(self.shape) != 2:
                raise ValueError(f"Explicit.shape must be (n_pre, n_post), got {self.shape!r}")
            object.__setattr__(self, "shape", (_count(self.shape[0], "Explicit.shape[0]", minimum=1),
                                               _count(self.shape[1], "Explicit.shape[1]", minimum=1)))

    @classmethod
    def from_matrix(cls, matrix) -> Explicit:
        """The synapses of a weight matrix `W[pre, post]` (shape `(n_pre, n_post)`, the
        orientation of `RecurrentLIF.weight`): a dense NumPy array or a `scipy.sparse` matrix or
        array. Every nonzero entry is one synapse with that weight (sparse duplicates summed,
        stored zeros dropped)."""
        if hasattr(matrix, "tocoo") and not isinstance(matrix, np.ndarray):  # scipy.sparse
            coo = matrix.tocoo(copy=True)
            coo.sum_duplicates()
            coo.eliminate_zeros()
            shape, pre, post, w = coo.shape, coo.row, coo.col, coo.data
        else:
            dense = np.asarray(matrix)
            if dense.ndim != 2:
                raise ValueError(f"matrix must be 2-D (n_pre, n_post), got shape {dense.shape}")
            pre, post = np.nonzero(dense)
            shape, w = dense.shape, dense[pre, post]
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"matrix must have shape (n_pre, n_post) with both >= 1, got {shape}")
        return cls(pre.astype(np.int64), post.astype(np.int64), w, (int(shape[0]), int(shape[1])))

    def _pairs(self, n_pre, n_post, rng, same_population):
        if self.shape is not None and self.shape != (n_pre, n_post):
            raise ValueError(f"Explicit from a matrix of shape {self.shape} needs (n_pre, n_post) = "
                             f"{self.shape}, got ({n_pre}, {n_post})")
        for arr, n, name in ((self.pre, n_pre, "pre"), (self.post, n_post, "post")):
            if arr.size and arr.max() >= n:
                raise ValueError(f"Explicit.{name} must hold indices < n_{name} = {n}, got {int(arr.max())}")
        return self.pre.copy(), self.post.copy()


# --------------------------------------------------------------------------------------- connect

class Synapses(NamedTuple):
    """The synapses of one projection, unsorted: source index `pre` (int64 `(S,)`), target
    index `post` (int64), `weight` (float64, in the target's input units) and `delay_steps`
    (int64, >= 1)."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay_steps: np.ndarray


def _check_finite(x: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{name} must be finite (no NaN or inf); got {x[bad][0]!r} "
                         f"({int(bad.sum())} of {x.size} values)")


def _draw(value, name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if isinstance(value, Distribution):
        out = np.asarray(value.sample(rng, n), dtype=np.float64)
        if out.shape != (n,):
            raise ValueError(f"{name}: {type(value).__name__}.sample returned shape {out.shape}, expected ({n},)")
    else:
        out = np.full(n, _real(value, name), dtype=np.float64)
    _check_finite(out, name)
    return out


def connect(rule: Rule, n_pre: int, n_post: int, *, weight: float | Distribution | None,
            delay: float | Distribution, dt: float, rng: np.random.Generator,
            same_population: bool = False) -> Synapses:
    """Draw the synapses of one projection from `n_pre` source to `n_post` target neurons.

    **Arguments:**
    - `rule`: a `Rule` (`AllToAll`, `PairwiseBernoulli`, `FixedInDegree`, `FixedOutDegree`,
      `FixedTotalNumber`, `OneToOne`, `Explicit`).
    - `n_pre`, `n_post`: population sizes (ints >= 1).
    - `weight`: a number or a `Distribution` (target's input units, e.g. mV for a delta synapse
      onto `iaf_psc_delta`, pA for `iaf_psc_exp`); `None` takes the weights of an `Explicit`
      rule that has them (giving both is an error).
    - `delay`: ms, a number or a `Distribution`; rounded to the nearest step as NEST does
      (`floor(delay / dt + 1/2)`, computed as NEST's `delay * (1 / dt)`); every delay must be
      at least one step.
    - `dt`: the step in ms (> 0).
    - `rng`: a `numpy.random.Generator`, used for connectivity, then weights, then delays.
    - `same_population`: the projection maps a population onto itself (autapses possible).

    **Returns:** `Synapses(pre, post, weight, delay_steps)`, unsorted.
    """
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a connection Rule (e.g. FixedInDegree(k)), got {type(rule).__name__}")
    dt = _real(dt, "dt")
    if dt <= 0:
        raise ValueError(f"dt must be > 0 ms, got {dt!r}")
    own = rule.weight if isinstance(rule, Explicit) else None
    if own is not None and weight is not None:
        raise ValueError("weight must be None when the Explicit rule carries its own weights "
                         f"(got weight={weight!r})")
    if own is None and weight is None:
        raise TypeError("weight must be a number or a Distribution (None only with an Explicit "
                            "rule that has weights)")
    for value, name in ((weight, "weight"), (delay, "delay")):  # numbers checked before drawing
        if value is not None and not isinstance(value, Distribution):
            _real(value, name)
    pre, post = rule.connect(n_pre, n_post, rng, same_population)
    n = pre.size
    w = own.astype(np.float64) if own is not None else _draw(weight, "weight", rng, n)
    d = _draw(delay, "delay", rng, n)
    steps = np.floor(d * (1.0 / dt) + 0.5)
    if n and steps.max() >= 2.0**62:
        raise ValueError(f"delay must be < 2**62 steps of dt = {dt} ms, got {float(d.max())!r} ms")
    steps = steps.astype(np.int64)
    if n and steps.min() < 1:
        bad = float(d[np.argmin(steps)])
        raise ValueError(f"delay must be at least one step, dt = {dt} ms (delays are rounded to the "
                         f"nearest step: >= {dt / 2} ms rounds up to 1); got {bad!r} ms -> "
                         f"{int(steps.min())} steps")
    return Synapses(pre, post, w, steps)
