"""Spike functions: exact Heaviside forward, surrogate derivative backward.

Every surrogate's derivative is normalised to a maximum of 1 at threshold (x = 0), with a `slope`
(dimensionless per unit of `x`) setting its width. The spike function is applied to
`x = v - threshold`, so the gradient reaches the threshold parameter too (d/dthreshold = -g(x)).

| name | derivative g(x) | reference |
|---|---|---|
| `atan` | 1 / (1 + (pi/2 * slope * x)^2) | Fang et al. 2021 (SpikingJelly `ATan`) |
| `fast_sigmoid` | 1 / (1 + slope*abs(x))^2 | Zenke & Ganguli 2018 (SuperSpike) |
| `sigmoid` | 4 s (1 - s), s = sigmoid(slope*x) | Neftci et al. 2019 |
| `ste` | 1 if abs(slope*x) < 1/2 else 0 (rectangular window; Bengio et al. 2013) | |
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

SurrogateName = Literal["atan", "fast_sigmoid", "sigmoid", "ste"]


def _g_atan(x, slope):
    return 1.0 / (1.0 + (0.5 * jnp.pi * slope * x) ** 2)


def _g_fast_sigmoid(x, slope):
    return 1.0 / (1.0 + slope * jnp.abs(x)) ** 2


def _g_sigmoid(x, slope):
    s = jax.nn.sigmoid(slope * x)
    return 4.0 * s * (1.0 - s)


def _g_ste(x, slope):
    return (jnp.abs(slope * x) < 0.5).astype(x.dtype)


_GRADS = {"atan": _g_atan, "fast_sigmoid": _g_fast_sigmoid, "sigmoid": _g_sigmoid, "ste": _g_ste}


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _spike(kind: str, x, slope):
    return (x >= 0).astype(x.dtype)


@_spike.defjvp
def _spike_jvp(kind, primals, tangents):
    x, slope = primals
    dx, _ = tangents
    return _spike(kind, x, slope), _GRADS[kind](x, slope).astype(x.dtype) * dx


class Surrogate(eqx.Module):
    """Heaviside spike function with a surrogate gradient.

    `Surrogate("atan", slope=2.0)(x)` returns exactly `1.0` where `x >= 0` and `0.0` elsewhere;
    its derivative is the named surrogate (max 1 at x = 0).

    **Arguments:**
    - `kind`: one of `"atan"`, `"fast_sigmoid"`, `"sigmoid"`, `"ste"`.
    - `slope`: sharpness, in 1/(unit of x) (1/mV for membrane potentials). Larger is narrower.
    """

    kind: str = eqx.field(static=True, default="atan")
    slope: float = eqx.field(static=True, default=2.0)

    def __check_init__(self):
        if self.kind not in _GRADS:
            raise ValueError(f"kind must be one of {sorted(_GRADS)}, got {self.kind!r}")
        if isinstance(self.slope, bool) or not (isinstance(self.slope, (int, float, np.number))
                                                and np.isfinite(self.slope) and self.slope > 0):
            raise ValueError(f"slope must be a positive number, got {self.slope!r}")

    def __call__(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        x = jnp.asarray(x)
        return _spike(self.kind, x, jnp.asarray(self.slope, x.dtype))

    def grad(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """The surrogate derivative g(x) itself."""
        x = jnp.asarray(x)
        return _GRADS[self.kind](x, jnp.asarray(self.slope, x.dtype))


def atan(slope: float = 2.0) -> Surrogate:
    """Arctan surrogate, g(x) = 1 / (1 + (pi/2 slope x)^2)."""
    return Surrogate("atan", slope)


def fast_sigmoid(slope: float = 10.0) -> Surrogate:
    """Fast-sigmoid (SuperSpike) surrogate, g(x) = 1 / (1 + slope |x|)^2."""
    return Surrogate("fast_sigmoid", slope)


def sigmoid(slope: float = 4.0) -> Surrogate:
    """Logistic surrogate, g(x) = 4 s(1-s), s = sigmoid(slope x)."""
    return Surrogate("sigmoid", slope)


def ste(slope: float = 1.0) -> Surrogate:
    """Straight-through estimator with a rectangular window of width 1/slope around threshold."""
    return Surrogate("ste", slope)
