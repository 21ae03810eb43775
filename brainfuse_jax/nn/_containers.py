"""Composition: `TimeDistributed` (a per-frame module over time), `Sequential` (a stack with debug
probes), `cast_params` (mixed precision)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Float, PRNGKeyArray

from ._base import _cast_floats, AbstractSpikingLayer


class TimeDistributed(eqx.Module):
    """Apply a per-frame module (`eqx.nn.Linear`, `Conv1d`, `Conv2d`, an MLP, a function) to
    every time step: `(B, T, *in) -> (B, T, *out)`. `module` takes one unbatched frame."""

    module: Any

    def __call__(self, x: Float[Array, "B T ..."], *, key: PRNGKeyArray | None = None):
        shape = tuple(jnp.shape(x))
        if len(shape) < 2:
            raise ValueError(f"x must have shape (B, T, ...) = (batch, time, ...); got {shape}")
        flat = jnp.reshape(x, (shape[0] * shape[1], *shape[2:]))
        y = jax.vmap(self.module)(flat)
        return jnp.reshape(y, (shape[0], shape[1], *y.shape[1:]))


class Sequential(eqx.Module):
    """A stack of layers applied in order; with `return_details=True` also returns a dict
    `"<index>.<ClassName>" -> probes` for every spiking layer (`AbstractSpikingLayer`)."""

    layers: tuple

    def __init__(self, layers):
        self.layers = tuple(layers)

    def __call__(self, x, *, return_details: bool = False, key: PRNGKeyArray | None = None):
        details = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, AbstractSpikingLayer) and return_details:
                x, info = layer(x, return_details=True)
                details[f"{i}.{type(layer).__name__}"] = info
            else:
                x = layer(x)
        return (x, details) if return_details else x


def cast_params(model, dtype):
    """`model` with every floating-point array leaf cast to `dtype` (e.g. `jnp.bfloat16` weights).

    The spiking layers still integrate their neurons in `state_dtype` (float32 by default)."""
    return _cast_floats(model, jnp.dtype(dtype))
