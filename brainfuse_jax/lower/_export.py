"""`to_stablehlo`: a model's step, or a whole `simulate`, exported with `jax.export` as one flat
function `(*params, *state, *inputs) -> (*state, *outputs)` (no pytree crosses the boundary, so
nothing but arrays needs serialising)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_dt, check_finite_block, checks, is_concrete
from ..adjoint import DirectAdjoint
from ..backends import XLA
from ..neurons._base import AbstractNeuron, check_step_input, State
from ..params import get, set_values
from ..simulate import simulate
from ..unroll import RecordSpec
from ._lowered import Lowered
from ._names import model_leaves, spec_of, tree_specs

__all__ = ["to_stablehlo"]

_CUSTOM_CALL = re.compile(r"custom_call\s*@([\w.$-]+)|call_target_name\s*=\s*\"([^\"]+)\"")


def to_stablehlo(
    model: AbstractNeuron,
    state0: State,
    inputs=None,
    dt: float | None = None,
    *,
    what: Literal["step", "unroll"] = "step",
    n_steps: int | None = None,
    record: RecordSpec = "output",
) -> Lowered:
    """Export `model`'s step (`what="step"`) or a whole `simulate` (`what="unroll"`) as StableHLO.

    The exported function is flat: `f(*params, *state, *inputs) -> (*state, *outputs)`, with the
    model's array leaves (named by `bf.params`), the state's leaves (named by state path), the
    inputs, then the new/final state and the output (`Lowered` lists the names, shapes and
    dtypes). The model runs as `bf.XLA()` runs it (no FFI custom calls), the unroll as
    `bf.simulate(..., backend=bf.XLA(), adjoint=bf.DirectAdjoint())`, and the library's runtime
    checks in check mode `"nan"` (`bf.lower.checks`): a failed check gives NaN, not a host
    callback. On top, the function's results are NaN for every batch element whose inputs hold
    NaN or inf or whose state (before or after) holds NaN, and everywhere if a parameter is NaN,
    so bad input cannot give a plausible result (a spike output would otherwise read a NaN
    membrane as "no spike").

    **Arguments:**
    - `model`: any neuron or network (`AbstractNeuron`).
    - `state0`: a state from `model.init_state((B, ...))`; fixes the batch shape and dtype of
      the exported function (shapes are static).
    - `inputs`: `what="step"`: one step's input, shape `model.input_shape(state0)` (None: zeros).
      `what="unroll"`: `(B, T, ...)`, or with `n_steps` one step's input held constant
      (`simulate(n_steps=)`; None: zeros). Only shapes and dtypes are used: the inputs are an
      argument of the exported function. Units: the model's (uA/cm2 for conductance-based
      neurons).
    - `dt`: time step in ms (> 0), a number: fixed in the exported module. None: the model's
      own `dt` (a network's), `ValueError` for a model without one.
    - `what`: `"step"` or `"unroll"`.
    - `n_steps`: unroll only: hold `inputs` constant for this many steps.
    - `record`: unroll only: what to record, as `simulate`'s `record` (default `"output"`).

    **Returns:** a `Lowered` (exported function, StableHLO text, serialised bytes, specs, `call`).

    `ValueError` for what cannot be exported: a traced model, state or dt, an unknown `what`,
    leaves that have no name or are PRNG keys, a step that changes the state's structure, or a
    module that would call back into Python.
    """
    if not isinstance(model, AbstractNeuron):
        raise TypeError(f"model must be a neuron or network (AbstractNeuron), got {type(model).__name__}")
    if what not in ("step", "unroll"):
        raise ValueError(f"what must be 'step' or 'unroll', got {what!r}")
    if not isinstance(state0, dict):
        raise TypeError(f"state0 must be a state dict from model.init_state, got {type(state0).__name__}")
    if not is_concrete((model, state0, inputs)):
        raise ValueError("to_stablehlo needs concrete model, state0 and inputs (it cannot run under jit, "
                         "vmap or grad): the exported function takes them as arguments")
    if dt is None:
        if not isinstance(getattr(model, "dt", None), (int, float)):
            raise ValueError(f"dt (ms) is required: {type(model).__name__} has no dt of its own")
        dt = model.dt
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) \
            and not (isinstance(dt, (np.ndarray, jax.Array)) and np.ndim(dt) == 0):
        raise ValueError(f"dt must be a number (ms, fixed in the exported module), got {type(dt).__name__}")
    dt = float(dt)
    check_dt(dt)  # a positive finite number (ValueError naming dt otherwise)
    model = XLA().prepare(model)
    plist = model_leaves(model)
    p_values = [np.asarray(get(model, p)) for p in plist]
    p_specs = [spec_of(p.name, v) for p, v in zip(plist, p_values, strict=True)]
    s_leaves, s_specs, s_def = tree_specs(state0, None, "state0")
    s_leaves = [np.asarray(a) for a in s_leaves]
    batch = _batch(model, state0)
    dtype = _float_dtype(s_leaves)

    if what == "step":
        if n_steps is not None:
            raise ValueError("n_steps applies to what='unroll' (a step takes one step's input)")
        if not (isinstance(record, str) and record == "output"):
            raise ValueError("record applies to what='unroll' (a step returns its output)")
        if inputs is None:
            inputs = np.zeros(model.input_shape(state0), dtype)
        x_leaves, x_specs, x_def = tree_specs(inputs, "x", "inputs")
        for leaf in x_leaves:
            check_step_input(model, state0, leaf, "inputs")

        def run(m, s, x):  # inputs checked as simulate checks them
            return m.step(s, check_finite_block(x), dt)
        out_root, steps, held = "output", 1, False
    else:
        held = n_steps is not None
        if held:
            if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps <= 0:
                raise ValueError(f"n_steps must be a positive int (time steps) or None, got {n_steps!r}")
            if inputs is None:
                inputs = np.zeros(model.input_shape(state0), dtype)
        elif inputs is None:
            raise ValueError("what='unroll' needs inputs of shape (B, T, ...) or n_steps (inputs held "
                             "constant, None for zeros)")
        x_leaves, x_specs, x_def = tree_specs(inputs, "inputs", "inputs")
        steps = n_steps if held else _time_steps(x_leaves)

        def run(m, s, x):
            return simulate(m, s, x, dt, n_steps=n_steps, record=record, backend=XLA(), adjoint=DirectAdjoint())
        # a single entry is named by its path ("output", "v"); a list or dict of entries by their names
        out_root = record if isinstance(record, str) else None if isinstance(record, (list, tuple, dict)) else "record"

    out_names: list[str] = []
    flat = _flat_function(model, plist, s_def, len(s_leaves), x_def, run, out_root, batch, out_names)
    args = [jax.ShapeDtypeStruct(s.shape, s.dtype) for s in (*p_specs, *s_specs, *x_specs)]
    with checks("nan"):
        try:
            exported = jax.export.export(jax.jit(flat))(*args)
        except NotImplementedError as err:
            if "callback" in str(err):
                raise ValueError(f"{type(model).__name__}'s {what} calls back into Python (jax.debug.print, "
                                 "pure_callback or a runtime check not routed through "
                                 "brainfuse_jax._validate.error_if), which cannot be exported") from err
            raise
    _refuse_callbacks(exported, model, what)
    n_state = len(s_specs)
    outs = [spec_of(name, aval) for name, aval in zip(out_names, exported.out_avals[n_state:], strict=True)]
    return Lowered(exported=exported, what=what, dt=dt, n_steps=int(steps), held=held, params=tuple(p_specs),
                   state=tuple(s_specs), inputs=tuple(x_specs), outputs=tuple(outs),
                   param_values=tuple(p_values), state_values=tuple(s_leaves), model=type(model).__name__)


def _batch(model: AbstractNeuron, state0: State) -> int:
    shape = model.input_shape(state0)
    if len(shape) == 0:
        raise ValueError("state0 has no batch axis; create it with init_state(batch_shape=(B, ...))")
    return int(shape[0])


def _float_dtype(leaves) -> Any:
    floats = [a.dtype for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)]
    return floats[0] if floats else jnp.result_type(float)


def _time_steps(leaves) -> int:
    for leaf in leaves:
        if np.ndim(leaf) < 2:
            raise ValueError(f"what='unroll': inputs must have shape (B, T, ...) (or pass n_steps for one step's "
                             f"input held constant), got {tuple(np.shape(leaf))}")
    return int(np.shape(leaves[0])[1])


def _flat_function(model, plist, s_def, n_state: int, x_def, run: Callable, out_root: str | None, batch: int,
                   out_names: list[str]) -> Callable:
    """The flat function: arrays in, arrays out; fills `out_names` when traced."""
    n_params = len(plist)

    def flat(*args):
        p, s, x = args[:n_params], args[n_params:n_params + n_state], args[n_params + n_state:]
        m = set_values(model, plist, list(p))
        state = jax.tree.unflatten(s_def, s)
        new_state, out = run(m, state, jax.tree.unflatten(x_def, x))
        new_leaves, new_def = jax.tree.flatten(new_state)
        if new_def != s_def:
            raise ValueError(f"{type(model).__name__}: the state's structure changes in a step ({s_def} -> "
                             f"{new_def}); the exported function returns the state it takes")
        out_leaves, out_specs, _ = tree_specs(out, out_root, "output")
        out_names[:] = [sp.name for sp in out_specs]
        bad = _bad_rows(batch, scalars=[a for a, pp in zip(p, plist, strict=True) if _inexact(pp.dtype)],
                        rows=[*s, *new_leaves, *out_leaves], finite_rows=x)
        return tuple(_poison(a, bad) for a in (*new_leaves, *out_leaves))
    return flat


def _inexact(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


def _bad_rows(batch: int, scalars, rows, finite_rows):
    """`(batch,)` bool: whether a row (batch element) of `rows` holds NaN, one of `finite_rows`
    NaN or inf, or any of `scalars` (no batch axis) NaN. (Parameters and states may be infinite,
    as NEST's `V_min = -inf`; inputs must be finite.) Written with compare, convert, multiply and
    sums only, so that a C emitter needs no `is_finite` or `or` reduction."""
    acc = jnp.zeros((batch,), jnp.float32)

    def count(a, finite, axis):
        flags = (a * 0 != 0) if finite else (a != a)  # x * 0 is 0 for finite x, NaN for NaN/inf
        return jnp.sum(flags.astype(jnp.float32), axis=axis)
    for a in scalars:
        acc = acc + count(a, False, None)
    for finite, group in ((False, rows), (True, finite_rows)):
        for a in group:
            if not _inexact(a.dtype):
                continue
            if a.ndim >= 1 and a.shape[0] == batch:
                acc = acc + count(a, finite, tuple(range(1, a.ndim)))
            else:
                acc = acc + count(a, finite, None)
    return acc != 0


def _poison(a, bad):
    """`a` with NaN in the rows (leading axis) where `bad` is true (floating-point `a` only)."""
    if not _inexact(a.dtype):
        return a
    if a.ndim >= 1 and a.shape[0] == bad.shape[0]:
        mask = jnp.broadcast_to(bad.reshape((bad.shape[0],) + (1,) * (a.ndim - 1)), a.shape)
    else:
        mask = jnp.broadcast_to(jnp.any(bad), a.shape)
    return jnp.where(mask, jnp.asarray(jnp.nan, a.dtype), a)


def _refuse_callbacks(exported, model, what: str) -> None:
    """`ValueError` if the module calls a host callback (any custom call whose target names one)."""
    text = exported.mlir_module()
    targets = {a or b for a, b in _CUSTOM_CALL.findall(text)}
    callbacks = sorted(t for t in targets if "callback" in t.lower())
    if callbacks:
        raise ValueError(f"{type(model).__name__}'s exported {what} calls back into Python ({callbacks}); "
                         "such a module cannot run outside this process")
