"""`simulate`: the one time-unroll (over `lax.scan`) for every neuron model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, Float, PyTree

from ._validate import check_dt, check_finite, check_finite_block, is_concrete
from .adjoint import _slice_time, _swap, _write_time, block_size, CheckpointAdjoint, checkpointed_unroll, DirectAdjoint, ForwardMode, forward_mode_unroll
from .neurons._base import AbstractNeuron, State

class Total(NamedTuple):
    """A record entry summed over time instead of stored per step: `record=bf.Total("output")`
    returns spike counts of shape `(B, ...)`; costs no per-step memory. `what` is a state path,
    `"output"` or a callable `(state, output) -> array`."""

    what: str | Callable[[State, Any], PyTree] = "output"


Entry = str | Total | Callable[[State, Any], PyTree]
RecordSpec = Entry | Sequence[str] | dict[str, Entry] | None


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


def _entry_fn(entry) -> Callable[[State, Any], PyTree]:
    if isinstance(entry, Total):
        entry = entry.what
    if isinstance(entry, str):
        return lambda state, out: _lookup(state, out, entry)
    if callable(entry):
        return entry
    raise TypeError("record entries must be a state path, 'output', a callable (state, output) -> "
                    f"pytree, or Total(...); got {entry!r}")


def _normalize_record(record: RecordSpec):
    """A hashable form of `record`: `(single, ((name, entry), ...))`; `single` means one
    unnamed entry whose result is returned bare."""
    if record is None:
        return (False, ())
    if isinstance(record, (str, Total)) or callable(record):
        _entry_fn(record)
        return (True, ((None, record),))
    items = tuple(record.items()) if isinstance(record, dict) else tuple((n, n) for n in record)
    for name, entry in items:
        if not isinstance(name, str):
            raise TypeError(f"record names must be strings, got {name!r} in {record!r}")
        _entry_fn(entry)
    return (False, items)


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
    dtype = jnp.result_type(*jax.tree.leaves(state0))
    inputs = jax.tree.map(lambda a: a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(dtype), inputs)
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


def simulate(
    model: AbstractNeuron,
    state0: State,
    inputs: Float[ArrayLike, "B T *rest"] | PyTree,
    dt: Float[ArrayLike, ""],
    *,
    n_steps: int | None = None,
    record: RecordSpec = "output",
    chunk_size: int | None = None,
    remat: bool = False,
    adjoint: DirectAdjoint | CheckpointAdjoint | ForwardMode | None = None,
    backend: str = "xla",
) -> tuple[State, PyTree]:
    """Unroll `model.step` over time with `lax.scan`.

    **Arguments:**
    - `model`: any neuron (`PointNeuron`/`HH`, `LIF`, `ALIF`, `RecurrentLIF`, `ASN`, ...).
    - `state0`: initial state from `model.init_state((B, ...))`.
    - `inputs`: `(B, T, ...)`, batch first and time second; step `t` advances the state from
      t*dt to (t+1)*dt using `inputs[:, t]` (NEURON's convention for played vectors). Units are the
      model's (uA/cm2 for conductance-based neurons).
    - `dt`: time step in ms, > 0.
    - `n_steps`: if given, `inputs` has no time axis (shape `(B, ...)`, one step's input) and is
      held constant for `n_steps` steps (a DC current, as NEURON's IClamp over the whole run).
      Cheaper than an equal `(B, T)` array: the time loop reads no input. Gradients w.r.t. such
      inputs are the sums over time of the per-step ones.
    - `record`: what to return, sampled *after* each step (t = dt, 2 dt, ..., T dt):
      `"output"` (default; spikes for most neurons), a state path such as `"v"` or `"na.m"`,
      a callable `(state, output) -> pytree`, `Total(entry)` (summed over time: shape `(B, ...)`,
      no per-step memory), a sequence of paths or a dict name -> entry (returns a dict), or `None`.
    - `chunk_size`: truncated BPTT. The unroll is split into chunks of this many steps and the
      gradient of the carried state is cut (`stop_gradient`) between chunks; the forward values are
      identical to the full unroll. `T` need not be a multiple of `chunk_size`.
    - `remat`: rematerialise each step under `grad` (`jax.checkpoint`): the backward pass stores
      only the carried state per step and recomputes the step's intermediates (`DirectAdjoint` only).
    - `adjoint`: how gradients are computed (`brainfuse_jax.adjoint`): `CheckpointAdjoint()`
      (the default, `CheckpointAdjoint(every=K)` to choose K: a derived backward pass, the discrete
      adjoint of the step, that recomputes blocks of K steps from checkpoints; memory
      O(T/K + K) states instead of O(T) steps of intermediates), `ForwardMode()` (forward
      sensitivities w.r.t. the model's parameters: no stored states; for a few parameters) or
      `DirectAdjoint()` (autodiff through the scan; the default with `remat=True`). With
      `chunk_size`, the checkpoint blocks are the truncation chunks. Forward values are identical
      under every adjoint.
    - `backend`: `"xla"` (default; `lax.scan`) or `"pallas"`: the fused kernels of the
      `brainfuse_kernels` package (`kernels/` in the repository), which advance blocks of neurons
      over blocks of time steps with the state on-chip; for models whose `step` is elementwise over
      neurons (point neurons, LIF family). On CPU they run in Pallas interpret mode (for testing).

    **Returns:** `(final_state, recorded)`; per-step entries have shape `(B, T, ...)`, `Total`
    entries `(B, ...)`.
    """
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron (AbstractNeuron), got {type(model).__name__}")
    python_dt = float(dt) if isinstance(dt, (int, float)) and not isinstance(dt, bool) else None
    dt = check_dt(dt)
    inputs = jax.tree.map(jnp.asarray, inputs)
    if n_steps is None:
        n_steps = _check_inputs(model, state0, inputs)
    else:
        held = _held_inputs(model, state0, inputs, n_steps)
        if backend == "pallas":  # the kernels stream (B, T) inputs
            inputs = jax.tree.map(lambda a: jnp.broadcast_to(a[:, None], (a.shape[0], n_steps, *a.shape[1:])), held)
        else:  # the time loops read a zero-size (B, T, 0) input; the step reads `held`
            batch = model.input_shape(state0)[0]
            model = _HeldInput(model, held)
            inputs = jnp.zeros((batch, n_steps, 0), jnp.result_type(*jax.tree.leaves(state0)))
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int (steps) or None, got {chunk_size!r}")
    if backend not in ("xla", "pallas"):
        raise ValueError(f"backend must be 'xla' or 'pallas', got {backend!r}")
    if adjoint is None:
        adjoint = DirectAdjoint() if remat else CheckpointAdjoint()
    if not isinstance(adjoint, (DirectAdjoint, CheckpointAdjoint, ForwardMode)):
        raise TypeError(f"adjoint must be DirectAdjoint(), CheckpointAdjoint(every=K) or ForwardMode(), got {adjoint!r}")
    if isinstance(adjoint, ForwardMode) and (remat or chunk_size is not None or backend != "xla"):
        raise ValueError("adjoint=ForwardMode() stores nothing and truncates nothing: it does not combine with "
                         "remat, chunk_size or backend='pallas'")
    if isinstance(adjoint, (CheckpointAdjoint, ForwardMode)):
        if remat:
            raise ValueError("remat=True applies to DirectAdjoint; CheckpointAdjoint already recomputes")
        if chunk_size is not None:
            adjoint = CheckpointAdjoint(every=chunk_size)  # truncation chunks = checkpoint blocks
        dtype = jnp.result_type(*jax.tree.leaves(state0))
        inputs = jax.tree.map(lambda a: a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(dtype), inputs)
    elif backend == "pallas":
        raise ValueError("backend='pallas' is differentiated by its own backward kernel: use "
                         "adjoint=CheckpointAdjoint(every=K) (the default) or None")
    # A concrete dt is static: a compiled unroll is reused for every call with the same dt. (Under a
    # user's jit, check_dt's array of a Python float is a tracer: keep the float itself.)
    if python_dt is not None or is_concrete(dt):
        dt = python_dt if python_dt is not None else float(dt)
    return _unroll(model, state0, inputs, dt, _normalize_record(record), n_steps, chunk_size, remat,
                   adjoint, backend)


@eqx.filter_jit
def _unroll(model, state0, inputs, dt, record, n_steps, chunk_size, remat, adjoint, backend):
    single, items = record
    per_step = {name: _entry_fn(e) for name, e in items if not isinstance(e, Total)}
    totals = {name: _entry_fn(e) for name, e in items if isinstance(e, Total)}
    if backend == "pallas":
        final, recorded = _import_kernels()(model, state0, check_finite_block(inputs), dt, per_step, totals, n_steps,
                                            adjoint.interval(n_steps, state0), truncate=chunk_size is not None)
    elif isinstance(adjoint, ForwardMode):
        final, recorded = forward_mode_unroll(model, state0, inputs, dt, per_step, totals, n_steps, scan=_scan_unroll,
                                               native=adjoint.native)
    elif isinstance(adjoint, CheckpointAdjoint):
        final, recorded = checkpointed_unroll(model, state0, inputs, dt, per_step, totals, n_steps,
                                              adjoint.interval(n_steps, state0), truncate=chunk_size is not None,
                                              scan=_scan_unroll)
    else:
        final, recorded = _scan_unroll(model, state0, inputs, dt, per_step, totals, n_steps, chunk_size, remat)
    return _select(final, recorded, single, items)


def _scan_unroll(model, state0, inputs, dt, per_step, totals, n_steps, chunk_size=None, remat=False, *,
                 block=None, checkpoints=False):
    """The forward unroll (and `DirectAdjoint`'s, by autodiff): `(final, {name: record})`; with
    `checkpoints=True` also `(states entering each block (n_blocks, ...), state entering the tail)`
    (`CheckpointAdjoint`'s forward pass, with `block` = its K)."""
    def body(carry, x):
        state, acc = carry
        new_state, out = model.step(state, x, dt)
        acc = {k: jax.tree.map(jnp.add, acc[k], f(new_state, out)) for k, f in totals.items()}
        return (new_state, acc), {k: f(new_state, out) for k, f in per_step.items()}

    if remat:
        body = jax.checkpoint(body)

    x0 = jax.tree.map(lambda a: a[:, 0], inputs)
    step_shapes = jax.eval_shape(lambda: model.step(state0, x0, dt))
    acc0 = {k: jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(f, *step_shapes))
            for k, f in totals.items()}

    # Time runs in blocks of K steps: each block's (B, K) inputs are transposed to time-major in
    # cache (a whole-array transpose costs ~30% of an HH run) and checked for NaN/inf there, and
    # with `chunk_size` the blocks are the truncation chunks: every block but the first starts
    # from stop_gradient(state).
    block = min(chunk_size or block or block_size(n_steps, 256), n_steps)
    n_blocks, tail = divmod(n_steps, block)
    # Per-step records: each block's (K, B, ...) records (stacked time-major by its scan, in
    # cache) are transposed into their place in the (B, T, ...) result, which is carried through
    # the blocks and written in place: the only T-sized buffer, written once. (Stacking the
    # blocks and transposing them to (B, T) afterwards, or concatenating a tail, allocates a
    # second one: for 1,000 HH neurons x 40,000 steps 160 MB, ~50 ms of page faults each on
    # 4 KiB pages, as much as the record's share of the time loop.)
    rec_shapes = {k: jax.eval_shape(f, *step_shapes) for k, f in per_step.items()}
    records0 = jax.tree.map(lambda a: jnp.zeros((a.shape[0], n_steps, *a.shape[1:]), a.dtype), rec_shapes)

    def run_block(carry, records, start, xb, first):
        state, acc = carry
        if chunk_size is not None:
            state = jax.tree.map(lambda s: jnp.where(first, s, jax.lax.stop_gradient(s)), state)
        carry, ys = jax.lax.scan(body, (state, acc), _swap(check_finite_block(xb)))
        return carry, jax.tree.map(lambda r, y: _write_time(r, jnp.swapaxes(y, 0, 1), start), records, ys)

    def outer(loop, b):
        carry, records = loop
        start = b * block
        return run_block(carry, records, start, _slice_time(inputs, start, block), b == 0), carry[0]

    (carry, records), ckpts = jax.lax.scan(outer, ((state0, acc0), records0), jnp.arange(n_blocks))
    tail_ckpt = carry[0]
    if tail:
        start = n_blocks * block
        carry, records = run_block(carry, records, start, _slice_time(inputs, start, tail), n_blocks == 0)
    final, acc = carry
    if checkpoints:
        return final, {**records, **acc}, (ckpts, tail_ckpt)
    return final, {**records, **acc}


def _select(final, recorded, single, items):
    if single:
        return final, recorded[None]
    return final, ({name: recorded[name] for name, _ in items} if items else None)


def _import_kernels():
    try:
        from brainfuse_kernels import pallas_unroll
    except ImportError as err:  # pragma: no cover - only without the kernels package
        raise ImportError("backend='pallas' needs the brainfuse_kernels package (kernels/ in the repository, "
                          "installed with brainfuse_jax by `pip install -e .`)") from err
    return pallas_unroll
