"""`simulate`: the one time-unroll (over `lax.scan`) for every neuron model.

It checks its arguments, then hands the unroll to the backend (`brainfuse_jax.backends`), which
runs the adjoint's `unroll` (`brainfuse_jax.adjoint`) over the loop core (`brainfuse_jax.unroll`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, Float, PyTree

from ._validate import check_dt, is_concrete
from .adjoint import AbstractAdjoint, CheckpointAdjoint, DirectAdjoint
from .backends import AbstractBackend, as_backend
from .neurons._base import AbstractNeuron, State
from .unroll import _check_inputs, _entry_fn, _held_inputs, _normalize_record, _select, RecordSpec, Total

__all__ = ["simulate", "Total"]


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
    adjoint: AbstractAdjoint | None = None,
    backend: AbstractBackend | str | None = None,
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
    - `backend`: where it runs (`brainfuse_jax.backends`): `None` (default: compiled CPU kernels
      where a model or adjoint has one and a compiler is there, XLA otherwise), `bf.XLA()` (XLA
      only), `bf.NativeCPU()` (the compiled kernels, `ValueError` where they cannot run) or
      `bf.Pallas()`: fused kernels (`kernels/` in the repository) that advance blocks of neurons
      over blocks of time steps with the state on-chip, for models whose `step` is elementwise
      over neurons (point neurons, LIF family); on CPU they run in Pallas interpret mode (for
      testing). The strings `"xla"`, `"native"`, `"pallas"` are shorthands.

    **Returns:** `(final_state, recorded)`; per-step entries have shape `(B, T, ...)`, `Total`
    entries `(B, ...)`.
    """
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron (AbstractNeuron), got {type(model).__name__}")
    backend = as_backend(backend)
    model = backend.prepare(model)  # before any wrapping (held inputs), so that the model sees its backend
    python_dt = float(dt) if isinstance(dt, (int, float)) and not isinstance(dt, bool) else None
    dt = check_dt(dt)
    inputs = jax.tree.map(jnp.asarray, inputs)
    if n_steps is None:
        n_steps = _check_inputs(model, state0, inputs)
    else:  # by default the time loops read a zero-size (B, T, 0) input and the step reads `held`
        model, inputs = backend.hold(model, state0, _held_inputs(model, state0, inputs, n_steps), n_steps)
    if chunk_size is not None:
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive int (steps) or None, got {chunk_size!r}")
    if adjoint is None:
        adjoint = DirectAdjoint() if remat else CheckpointAdjoint()
    if not isinstance(adjoint, AbstractAdjoint):
        raise TypeError(f"adjoint must be DirectAdjoint(), CheckpointAdjoint(every=K) or ForwardMode(), got {adjoint!r}")
    adjoint = adjoint.configure(chunk_size=chunk_size, remat=remat, backend=backend)
    # A concrete dt is static: a compiled unroll is reused for every call with the same dt. (Under a
    # user's jit, check_dt's array of a Python float is a tracer: keep the float itself.)
    if python_dt is not None or is_concrete(dt):
        dt = python_dt if python_dt is not None else float(dt)
    return _unroll(model, state0, inputs, dt, _normalize_record(record), n_steps, chunk_size,
                   remat, adjoint, backend)


@eqx.filter_jit
def _unroll(model, state0, inputs, dt, record, n_steps, chunk_size, remat, adjoint, backend):
    single, items = record
    per_step = {name: _entry_fn(e) for name, e in items if not isinstance(e, Total)}
    totals = {name: _entry_fn(e) for name, e in items if isinstance(e, Total)}
    final, recorded = backend.unroll(adjoint, model, state0, inputs, dt, per_step, totals, n_steps,
                                     chunk_size=chunk_size, remat=remat)
    return _select(final, recorded, single, items)
