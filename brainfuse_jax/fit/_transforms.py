"""Bounded parameters: smooth maps between an unconstrained space (where the optimiser works) and
an interval (where the model's parameter lives)."""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

SCALES = ("linear", "log")


def _as_bound(x, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"Bounded: {what} must be a number or an array of numbers, got {x!r}") from err
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"Bounded: {what} must be finite, got {x!r}")
    return arr


class Bounded(eqx.Module):
    r"""A parameter confined to the open interval `(low, high)` (in the parameter's own unit).

    The optimiser works on an unconstrained `u`; the model sees
    - `scale="linear"`: $x = \text{low} + (\text{high} - \text{low})\,\sigma(u)$,
    - `scale="log"` (needs `low > 0`): $x = \exp(\log \text{low} + (\log \text{high} -
      \log \text{low})\,\sigma(u))$, so steps in `u` are relative changes of `x` — the natural
      choice for conductances spanning orders of magnitude,

    with $\sigma$ the logistic sigmoid, and $u = \sigma^{-1}(\cdot)$ (logit) back. Both maps are
    smooth and monotone, and `x` never leaves `[low, high]` (it reaches an end point only when
    `sigma(u)` rounds to 0 or 1).

    **Arguments:**
    - `low`, `high`: bounds, `low < high` (scalars, or arrays broadcasting to the parameter).
    - `scale`: `"linear"` (default) or `"log"`.
    """

    low: np.ndarray = eqx.field(converter=lambda x: _as_bound(x, "low"))
    high: np.ndarray = eqx.field(converter=lambda x: _as_bound(x, "high"))
    scale: str = eqx.field(default="linear", static=True)

    def __check_init__(self):
        if self.scale not in SCALES:
            raise ValueError(f"Bounded: scale must be one of {SCALES}, got {self.scale!r}")
        if not np.all(self.low < self.high):
            raise ValueError(f"Bounded: low must be < high, got low={self.low.tolist()}, "
                             f"high={self.high.tolist()}")
        if self.scale == "log" and not np.all(self.low > 0):
            raise ValueError(f"Bounded: scale='log' needs low > 0, got low={self.low.tolist()}")

    def _ends(self, dtype):
        lo, hi = jnp.asarray(self.low, dtype), jnp.asarray(self.high, dtype)
        return (jnp.log(lo), jnp.log(hi)) if self.scale == "log" else (lo, hi)

    def constrain(self, u: jax.Array) -> jax.Array:
        """Parameter value in `[low, high]` from the unconstrained `u`."""
        u = jnp.asarray(u)
        a, b = self._ends(u.dtype)
        y = a + (b - a) * jax.nn.sigmoid(u)
        x = jnp.exp(y) if self.scale == "log" else y
        return jnp.clip(x, jnp.asarray(self.low, u.dtype), jnp.asarray(self.high, u.dtype))

    def unconstrain(self, x: jax.Array) -> jax.Array:
        """Unconstrained `u` for a value strictly inside `(low, high)` (NaN or +-inf outside)."""
        x = jnp.asarray(x)
        a, b = self._ends(x.dtype)
        y = jnp.log(x) if self.scale == "log" else x
        z = (y - a) / (b - a)
        return jnp.log(z) - jnp.log1p(-z)

    def inside(self, x) -> np.ndarray:
        """Elementwise `low < x < high` (numpy, for eager checks)."""
        x = np.asarray(x, np.float64)
        return (x > self.low) & (x < self.high)

    def sample(self, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
        """Uniform draws of `shape` inside the bounds (log-uniform for `scale="log"`), in the
        default float dtype, never within 0.1% of an end point."""
        dtype = jnp.result_type(float)
        a, b = (jnp.broadcast_to(e, shape) for e in self._ends(dtype))
        y = a + (b - a) * jax.random.uniform(key, shape, dtype, 1e-3, 1 - 1e-3)
        return jnp.exp(y) if self.scale == "log" else y

    def __repr__(self) -> str:
        lo = self.low.item() if self.low.ndim == 0 else self.low.tolist()
        hi = self.high.item() if self.high.ndim == 0 else self.high.tolist()
        return f"Bounded({lo!r}, {hi!r}" + (f", scale={self.scale!r})" if self.scale != "linear" else ")")


def as_bounded(spec, name: str) -> Bounded:
    """`spec` as a `Bounded`: a `Bounded` itself or a `(low, high)` pair."""
    if isinstance(spec, Bounded):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        try:
            return Bounded(*spec)
        except (TypeError, ValueError) as err:
            raise type(err)(f"params[{name!r}]: {err}") from None
    raise TypeError(f"params[{name!r}] must be a Bounded(low, high) or a (low, high) pair, got {spec!r}")


def sample_starts(
    params: Mapping[str, Bounded | tuple[float, float]],
    n: int,
    key: jax.Array,
    *,
    around=None,
    spread: float = 0.5,
) -> dict[str, np.ndarray]:
    """`n` starting points for `fit(..., starts=...)`: dict name -> array `(n, *shape)`.

    Without `around`, values are drawn uniformly inside each parameter's bounds (log-uniformly for
    `scale="log"`), with the bounds' shape. With `around` (a model), each value is the model's
    value times a factor drawn uniformly from `[1 - spread, 1 + spread]`, with the model leaf's
    shape, then clipped strictly inside the bounds. `key` is a `jax.random` key.
    """
    from ..params import get

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (number of starts), got {n!r}")
    if not np.isfinite(spread) or not 0 <= spread < 1:
        raise ValueError(f"spread must be in [0, 1) (relative perturbation), got {spread!r}")
    out = {}
    keys = jax.random.split(key, max(len(params), 1))
    for k, (name, spec) in zip(keys, params.items(), strict=False):
        b = as_bounded(spec, name)
        if around is None:
            shape = np.broadcast_shapes(b.low.shape, b.high.shape)
            out[name] = np.asarray(b.sample(k, (int(n), *shape)), np.float64)
        else:
            value = np.asarray(get(around, name, "params"), np.float64)
            factor = np.asarray(jax.random.uniform(k, (int(n), *value.shape), jnp.result_type(float),
                                                   1 - spread, 1 + spread), np.float64)
            width = b.high - b.low
            out[name] = np.clip(value * factor, b.low + 1e-6 * width, b.high - 1e-6 * width)
    return out
