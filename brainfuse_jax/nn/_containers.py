"""Composition: `TimeDistributed` (a per-frame module over time), `Sequential` (a stack with debug
probes), `cast_params` (mixed precision), `with_execution` (the adjoint/backend of every spiking
layer of a model)."""

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


def with_execution(model, *, adjoint: Any = None, backend: Any = None):
    """`model` with every spiking layer (`AbstractSpikingLayer`, found anywhere in the pytree,
    e.g. inside `Sequential` or a user's module) given `adjoint` and/or `backend` for its calls
    to `simulate` (None keeps each layer's own value). Used by `train(adjoint=, backend=)`.

    **Raises:** `ValueError` if `model` holds no spiking layer (the setting would do nothing).
    """
    if adjoint is None and backend is None:
        return model
    found = []

    def set_one(leaf):
        if isinstance(leaf, AbstractSpikingLayer):
            found.append(leaf)
            return leaf.with_execution(adjoint=adjoint, backend=backend)
        return leaf

    out = jax.tree.map(set_one, model, is_leaf=lambda x: isinstance(x, AbstractSpikingLayer))
    if not found:
        raise ValueError("adjoint= / backend= apply to the spiking layers (AbstractSpikingLayer) of the model, "
                         f"and this {type(model).__name__} holds none")
    return out
