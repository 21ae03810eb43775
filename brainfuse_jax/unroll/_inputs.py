"""`simulate`'s inputs: shape checks, and inputs held constant (`n_steps=`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import PyTree

from .._validate import check_finite, check_finite_block, is_concrete
from ..neurons._base import AbstractNeuron, State


class _HeldInput(AbstractNeuron):
    """`model` with a constant input `held` (simulate's `n_steps=`): its step ignores the per-step
    input (a zero-size array, so the time loops read nothing) and reads `held`, a leaf of the
    model, so that every adjoint differentiates it like a parameter (its gradient is the sum of
    the per-step input gradients)."""

    model: AbstractNeuron
    held: PyTree

    def init_state(self, batch_shape, dtype=None):
        return self.model.init_state(batch_shape, dtype)

    def input_shape(self, state):
        return (self.model.input_shape(state)[0], 0)

    def step(self, state, x, dt):
        return self.model.step(state, self.held, dt)


def _held_inputs(model: AbstractNeuron, state0: State, inputs, n_steps):
    """simulate's `n_steps=` inputs (one step's worth: shape `model.input_shape(state0)`), checked
    and in a floating dtype."""
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps <= 0:
        raise ValueError(f"n_steps must be a positive int (time steps) or None, got {n_steps!r}")
    leaves, expected = _input_leaves(model, state0, inputs, "(B, ...)")
    for leaf in leaves:
        if tuple(jnp.shape(leaf)) != expected:
            raise ValueError(f"with n_steps, inputs are held constant and have no time axis: shape {expected} "
                             f"(the state's batch shape); got {tuple(jnp.shape(leaf))}")
    inputs = float_inputs(inputs, state0)
    return check_finite(inputs, "inputs") if is_concrete(inputs) else check_finite_block(inputs)


def _input_leaves(model: AbstractNeuron, state0: State, inputs, form: str):
    """The leaves of `inputs` (at least one, all numeric) and one step's input shape."""
    leaves = jax.tree_util.tree_leaves(inputs)
    if not leaves:
        raise ValueError(f"inputs must hold at least one array of shape {form}")
    state_shape = model.input_shape(state0)
    if len(state_shape) == 0:
        raise ValueError("the state has no batch axis; create it with init_state(batch_shape=(B,))")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.number):
            raise TypeError(f"inputs must be numeric, got dtype {jnp.result_type(leaf)}")
    return leaves, state_shape


def _check_inputs(model: AbstractNeuron, state0: State, inputs):
    leaves, state_shape = _input_leaves(model, state0, inputs, "(B, T, ...)")
    n_steps = None
    for leaf in leaves:
        shape = tuple(jnp.shape(leaf))
        if len(shape) < 2:
            raise ValueError(f"inputs must have shape (B, T, ...) = (batch, time, ...); got {shape} "
                             "(missing time axis?)")
        expected = (state_shape[0], shape[1], *state_shape[1:])
        if shape != expected:
            raise ValueError(f"inputs must have shape {expected} = (B, T, *state batch dims) to match "
                             f"the state's batch shape {state_shape}; got {shape}")
        if n_steps is not None and shape[1] != n_steps:
            raise ValueError("all inputs must have the same number of time steps")
        if shape[1] == 0:
            raise ValueError(f"inputs must have at least one time step (axis 1); got shape {shape}")
        n_steps = shape[1]
        if is_concrete(leaf):  # now; traced inputs are checked block by block in the time loop
            check_finite(leaf, "inputs")
    return n_steps


def float_inputs(inputs, state0):
    """`inputs` with integer/bool leaves cast to the state's float dtype (custom VJPs need
    floating-point primals to return cotangents for)."""
    dtype = jnp.result_type(*jax.tree.leaves(state0))
    return jax.tree.map(lambda a: a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(dtype), inputs)
