"""`simulate`: the one time-unroll (over `lax.scan`) for every neuron model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

from ._validate import check_dt, check_finite, is_concrete
from .neurons._base import AbstractNeuron, State

RecordSpec = str | Sequence[str] | Callable[[State, Any], PyTree] | None


def _lookup(state: State, output, path: str):
    if path == "output":
        return output
    node = state
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"record: {path!r} is not a state variable; available: "
                             f"{['output', *_paths(state)]}")
        node = node[part]
    return node


def _paths(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _paths(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _recorder(record: RecordSpec) -> Callable[[State, Any], PyTree]:
    if record is None:
        return lambda state, out: None
    if callable(record):
        return record
    if isinstance(record, str):
        return lambda state, out: _lookup(state, out, record)
    names = tuple(record)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"record must be a name, a sequence of names, a callable or None; got {record!r}")
    return lambda state, out: {n: _lookup(state, out, n) for n in names}


def _check_inputs(model: AbstractNeuron, state0: State, inputs):
    leaves = jax.tree_util.tree_leaves(inputs)
    if not leaves:
        raise ValueError("inputs must hold at least one array of shape (B, T, ...)")
    state_shape = model.input_shape(state0)
    if len(state_shape) == 0:
        raise ValueError("the state has no batch axis; create it with init_state(batch_shape=(B,))")
    n_steps = None
    checked = []
    for leaf in leaves:
        shape = tuple(jnp.shape(leaf))
        if len(shape) < 2:
            raise ValueError(f"inputs must have shape (B, T, ...) = (batch, time, ...); got {shape} "
                             "(missing time axis?)")
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.number):
            raise TypeError(f"inputs must be numeric, got dtype {jnp.result_type(leaf)}")
        expected = (state_shape[0], shape[1], *state_shape[1:])
        if shape != expected:
            raise ValueError(f"inputs must have shape {expected} = (B, T, *state batch dims) to match "
                             f"the state's batch shape {state_shape}; got {shape}")
        if n_steps is not None and shape[1] != n_steps:
            raise ValueError("all inputs must have the same number of time steps")
        n_steps = shape[1]
        checked.append(check_finite(jnp.asarray(leaf), "inputs"))
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(inputs), checked), n_steps


def simulate(
    model: AbstractNeuron,
    state0: State,
    inputs: Float[ArrayLike, "B T *rest"] | PyTree,
    dt: Float[ArrayLike, ""],
    *,
    record: RecordSpec = "output",
    chunk_size: int | None = None,
    remat: bool = False,
) -> tuple[State, PyTree]:
    """Unroll `model.step` over time with `lax.scan`.

    **Arguments:**
    - `model`: any neuron (`PointNeuron`/`HH`, `LIF`, `ALIF`, `RecurrentLIF`, `ASN`, ...).
    - `state0`: initial state from `model.init_state((B, ...))`.
    - `inputs`: `(B, T, ...)`, batch first and time second; step `t` advances the state from
      t*dt to (t+1)*dt using `inputs[:, t]` (NEURON's convention for played vectors). Units are the
      model's (uA/cm2 for conductance-based neurons).
    - `dt`: time step in ms, > 0.
    - `record`: what to return per step, sampled *after* each step (t = dt, 2 dt, ..., T dt):
      `"output"` (default; spikes for most neurons), a state path such as `"v"` or `"na.m"`,
      a sequence of those (returns a dict), a callable `(state, output) -> pytree`, or `None`.
    - `chunk_size`: truncated BPTT. The unroll is split into chunks of this many steps and the
      gradient of the carried state is cut (`stop_gradient`) between chunks; the forward values are
      identical to the full unroll. `T` need not be a multiple of `chunk_size`.
    - `remat`: rematerialise each step under `grad` (`jax.checkpoint`): the backward pass stores
      only the carried state per step and recomputes the step's intermediates.

    **Returns:** `(final_state, recorded)` with recorded leaves of shape `(B, T, ...)`.
    """
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron (AbstractNeuron), got {type(model).__name__}")
    dt = check_dt(dt)
    inputs, n_steps = _check_inputs(model, state0, inputs)
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int (steps) or None, got {chunk_size!r}")
    if is_concrete(dt):
        dt = float(dt)  # static: a compiled unroll is reused for every call with the same dt
    if not (record is None or isinstance(record, str) or callable(record)):
        record = tuple(record)  # hashable: part of the compiled unroll's cache key
    _recorder(record)  # validate the spec eagerly
    return _unroll(model, state0, inputs, dt, record, n_steps, chunk_size, remat)


@eqx.filter_jit
def _unroll(model, state0, inputs, dt, record, n_steps, chunk_size, remat):
    recorder = _recorder(record)

    def body(state, x):
        new_state, out = model.step(state, x, dt)
        return new_state, recorder(new_state, out)

    if remat:
        body = jax.checkpoint(body)

    xs = jax.tree.map(lambda a: jnp.swapaxes(jnp.asarray(a), 0, 1), inputs)  # (T, B, ...)

    if chunk_size is None or chunk_size >= n_steps:
        final, ys = jax.lax.scan(body, state0, xs)
    else:
        # First chunk from state0 (its gradient reaches state0), then every later chunk starts
        # from a stop_gradient of the carried state.
        n_chunks, tail = divmod(n_steps, chunk_size)
        take = lambda lo, hi: jax.tree.map(lambda a: a[lo:hi], xs)  # noqa: E731
        final, ys = jax.lax.scan(body, state0, take(0, chunk_size))
        parts = [ys]

        def chunk(state, xc):
            return jax.lax.scan(body, jax.lax.stop_gradient(state), xc)

        if n_chunks > 1:
            mid = jax.tree.map(lambda a: a.reshape(n_chunks - 1, chunk_size, *a.shape[1:]),
                               take(chunk_size, n_chunks * chunk_size))
            final, ys_mid = jax.lax.scan(chunk, final, mid)
            parts.append(jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), ys_mid))
        if tail:
            final, ys_tail = chunk(final, take(n_chunks * chunk_size, n_steps))
            parts.append(ys_tail)
        ys = jax.tree.map(lambda *a: jnp.concatenate(a, axis=0), *parts)
    return final, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), ys)
