"""The neuron contract shared by HH, LIF-family and ASN neurons."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

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

    Networks deliver spikes through `step_events(state, x, events, dt)`: `events` maps each of
    the model's `receptors` (event ports it integrates itself, e.g. `"delta"` or `"ex"`/`"in"`) to
    the summed weights of the events delivered in this step. `voltage_unit` is `"mV"` where
    `state["v"]` is a membrane potential in mV (conductance-based synapses need it), else None.
    """

    #: Event ports the model integrates itself (`step_events`); `()`: none.
    receptors: ClassVar[tuple[str, ...]] = ()
    #: `"mV"` where `state["v"]` is a membrane potential in mV; None otherwise (e.g. LIF's
    #: dimensionless membrane in units of the threshold).
    voltage_unit: ClassVar[str | None] = None

    @abc.abstractmethod
    def init_state(self, batch_shape, dtype=None) -> State:
        """Initial state for a batch of neurons."""

    @abc.abstractmethod
    def step(self, state: State, x, dt) -> tuple[State, Any]:
        """One time step of `dt` ms."""

    def step_events(self, state: State, x, events: Mapping[str, Any] | None, dt) -> tuple[State, Any]:
        """One step of `dt` ms with external input `x` (model units) and, per port of `events`,
        the summed weights of the events delivered in this step (arrays of the shape of
        `state["v"]`, in the port's units).

        Default: with no events (`None` or an empty mapping) this is `step(state, x, dt)`; a port
        the model does not list in `receptors` raises `ValueError` naming it and the model's
        receptors. Models with receptors override it.
        """
        events = check_events(self, state, events)
        if not events:
            return self.step(state, x, dt)
        raise NotImplementedError(f"{type(self).__name__} lists receptors {self.receptors} but does "
                                  "not implement step_events")

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


def check_events(model: AbstractNeuron, state: State, events: Mapping[str, Any] | None) -> dict[str, Any]:
    """`events` as a dict port -> array in the dtype of `state["v"]`, after checking (at trace
    time) that every port is one of `model.receptors` and every array has the state's batch
    shape; `ValueError`/`TypeError` naming the port otherwise."""
    if events is None:
        return {}
    if not isinstance(events, Mapping):
        raise TypeError(f"events must be a mapping of event port -> summed weights, got {type(events).__name__}")
    v = state["v"]
    out = {}
    for port, value in events.items():
        if port not in model.receptors:
            raise ValueError(f"unknown event port {port!r} for {type(model).__name__}: its receptors are "
                             f"{model.receptors}" + ("" if model.receptors else " (it takes no events)"))
        value = jnp.asarray(value, v.dtype)
        if tuple(value.shape) != tuple(v.shape):
            raise ValueError(f"events[{port!r}] must have shape {tuple(v.shape)} (the state's batch shape), "
                             f"got {tuple(value.shape)}")
        out[port] = value
    return out
