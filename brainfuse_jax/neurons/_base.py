"""The neuron contract shared by HH, LIF-family and ASN neurons."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax.numpy as jnp

State = dict[str, Any]


def normalize_batch_shape(batch_shape) -> tuple[int, ...]:
    """`batch_shape` as a tuple of non-negative ints; `TypeError`/`ValueError` otherwise."""
    if isinstance(batch_shape, (str, bytes)):
        raise TypeError(f"batch_shape must be an int or a tuple of ints, got {batch_shape!r}")
    if isinstance(batch_shape, int):
        batch_shape = (batch_shape,)
    try:
        shape = tuple(int(s) for s in batch_shape)
    except TypeError as err:
        raise TypeError(f"batch_shape must be an int or a tuple of ints, got {batch_shape!r}") from err
    if any(s < 0 for s in shape) or any(int(s) != s for s in batch_shape):
        raise ValueError(f"batch_shape must hold non-negative integers, got {batch_shape!r}")
    return shape


def resolve_dtype(dtype):
    """`dtype` or JAX's default float dtype (float64 under `jax_enable_x64`)."""
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


class AbstractNeuron(eqx.Module):
    """A neuron model: parameters as array fields, dynamics as pure functions.

    `init_state(batch_shape, dtype)` returns the state pytree (a dict with at least `"v"`);
    `step(state, x, dt)` advances it by `dt` (ms) under input `x` (shape `input_shape(state)`)
    and returns `(new_state, output)`. `simulate` unrolls `step` over time.
    """

    @abc.abstractmethod
    def init_state(self, batch_shape, dtype=None) -> State:
        """Initial state for a batch of neurons."""

    @abc.abstractmethod
    def step(self, state: State, x, dt) -> tuple[State, Any]:
        """One time step of `dt` ms."""

    def input_shape(self, state: State) -> tuple[int, ...]:
        """Shape of one time step of input for `state` (default: the shape of `state["v"]`)."""
        return tuple(state["v"].shape)

    def for_backend(self, backend) -> AbstractNeuron:
        """This model as `backend` (`brainfuse_jax.backends`) runs it; models with kernels of
        their own (a `Cell`'s tree solve) take the backend's choice here. Default: itself."""
        return self


def check_step_input(model: AbstractNeuron, state: State, x, name: str = "x"):
    """Shape check of one step's input against the state's batch shape (trace time)."""
    expected = model.input_shape(state)
    if tuple(jnp.shape(x)) != expected:
        raise ValueError(f"{name} must have shape {expected} to match the state's batch shape, "
                         f"got {tuple(jnp.shape(x))}")
