"""`to_stablehlo`: a model's step, or a whole `simulate`, exported with `jax.export` as one flat
function `(*params, *state, *inputs) -> (*state, *outputs)` (no pytree crosses the boundary, so
nothing but arrays needs serialising)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
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

__all__ = ["export_module", "to_stablehlo"]

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
        hint = (" (an equinox module called as module(x), such as a brainfuse_jax.nn classifier, is exported "
                "with export_module)" if isinstance(model, eqx.Module) and callable(model) else "")
        raise TypeError(f"model must be a neuron or network (AbstractNeuron), got {type(model).__name__}{hint}")
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
    exported = _export(flat, (*p_specs, *s_specs, *x_specs), model, what)
    n_state = len(s_specs)
    outs = [spec_of(name, aval) for name, aval in zip(out_names, exported.out_avals[n_state:], strict=True)]
    return Lowered(exported=exported, what=what, dt=dt, n_steps=int(steps), held=held, params=tuple(p_specs),
                   state=tuple(s_specs), inputs=tuple(x_specs), outputs=tuple(outs),
                   param_values=tuple(p_values), state_values=tuple(s_leaves), model=type(model).__name__)


def export_module(module, x) -> Lowered:
    """Export a stateless equinox module called as `module(x)`, such as a trained
    `brainfuse_jax.nn` classifier (`nn.Sequential([nn.LIFLayer(...), nn.SpikeCountReadout(...)])`,
    `(B, T, features)` -> logits `(B, classes)`), as StableHLO.

    The exported function is flat: `f(*params, x) -> (*outputs)`, with the module's array leaves
    named by their pytree paths as `bf.params` names them (`"layers.0.linear.weight"`,
    `"layers.0.neuron.threshold"`; integer leaves too), then `x`; no state (the spiking layers
    start at rest at every call and their state lives inside the call). The outputs are the
    leaves of what the module returns (`"output"` for one array). `Lowered.what` is `"module"`,
    its `dt` None (a layer's time step is part of the module) and its `state` empty, so that
    `emit_c` gives a `bf_step(p, s, x, out)` whose state struct has no field.

    As in `to_stablehlo`: every spiking layer (any node with `with_execution`, the `nn` layers)
    runs on `backend=bf.XLA()` with `adjoint=bf.DirectAdjoint()` (no FFI custom calls; forward
    values are the same under every backend and adjoint) and every neuron node as `bf.XLA()` runs
    it; the library's runtime checks are traced in check mode `"nan"` (no host callback); and
    every output is NaN if `x` holds NaN or inf anywhere or a floating-point leaf of the module
    holds NaN, and a whole output row (leading axis = batch, that of `x`) if any of its values
    is NaN: a bad input never gives plausible logits. (The whole call, not the row: the library's check
    of a block of inputs marks the whole block, so that every digit of the batch would otherwise
    read a NaN membrane as "no spike" and get the readout's bias as logits.)

    **Arguments:**
    - `module`: an `equinox.Module` whose `__call__` maps one array to an array or a pytree of
      arrays (not a neuron: those are exported by `to_stablehlo` with their state).
    - `x`: an example input, e.g. `(B, T, features)` for an `nn` model (units: the model's). Only
      its shape and dtype are used: it is the argument of the exported function, whose shapes
      are static (export one `Lowered` per batch size).

    **Returns:** a `Lowered` (`call(*lowered.arguments(x))` -> `(logits,)`).

    `TypeError` for a module that is not a callable `equinox.Module` (or is a neuron) or an `x`
    that is not a numeric array; `ValueError` for a traced module or `x`, leaves without a name or
    that are PRNG keys, or a module that calls back into Python or into compiled kernels.
    """
    if isinstance(module, AbstractNeuron):
        raise TypeError(f"module: {type(module).__name__} is a neuron; export its step or unroll with "
                        "to_stablehlo(model, state0, inputs, dt), which carries its state")
    if not (isinstance(module, eqx.Module) and callable(module)):
        raise TypeError(f"module must be an equinox.Module called as module(x), got {type(module).__name__}")
    if not isinstance(x, (jax.Array, np.ndarray)) or x.ndim < 1 or not (
            jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_):
        raise TypeError(f"x must be a numeric array of shape (B, ...) (an example input: its shape and dtype), "
                        f"got {type(x).__name__}{getattr(x, 'shape', '')}")
    if not is_concrete((module, x)):
        raise ValueError("export_module needs a concrete module and x (it cannot run under jit, vmap or grad): "
                         "the exported function takes them as arguments")
    module = _on_xla(module)
    plist = model_leaves(module)
    p_values = [np.asarray(get(module, p)) for p in plist]
    p_specs = [spec_of(p.name, v) for p, v in zip(plist, p_values, strict=True)]
    _, x_specs, x_def = tree_specs(x, "x", "x")
    _, s_def = jax.tree.flatten({})

    def run(m, s, xx):
        return s, m(xx)
    out_names: list[str] = []
    flat = _flat_function(module, plist, s_def, 0, x_def, run, "output", int(x.shape[0]), out_names,
                          whole_inputs=True)
    exported = _export(flat, (*p_specs, *x_specs), module, "call")
    outs = [spec_of(name, aval) for name, aval in zip(out_names, exported.out_avals, strict=True)]
    return Lowered(exported=exported, what="module", dt=None, n_steps=1, held=False, params=tuple(p_specs),
                   state=(), inputs=tuple(x_specs), outputs=tuple(outs), param_values=tuple(p_values),
                   state_values=(), model=type(module).__name__)


def _on_xla(module):
    """`module` with every node that has `with_execution` (the spiking layers of
    `brainfuse_jax.nn`) set to `backend=XLA(), adjoint=DirectAdjoint()`, and every neuron
    prepared for `XLA()`: no compiled-kernel custom calls in the exported module."""
    def one(node):
        if isinstance(node, AbstractNeuron):
            return XLA().prepare(node)
        if isinstance(node, eqx.Module) and callable(getattr(node, "with_execution", None)):
            return node.with_execution(adjoint=DirectAdjoint(), backend=XLA())
        return node
    return jax.tree.map(one, module, is_leaf=lambda n: isinstance(n, AbstractNeuron) or (
        isinstance(n, eqx.Module) and callable(getattr(n, "with_execution", None))))


def _export(flat: Callable, specs, model, what: str):
    """`jax.export` of `jit(flat)` on arrays of `specs`, in check mode `"nan"`; `ValueError` for a
    function that calls back into Python or that cannot be serialised."""
    args = [jax.ShapeDtypeStruct(s.shape, s.dtype) for s in specs]
    with checks("nan"):
        try:
            exported = jax.export.export(jax.jit(flat))(*args)
        except NotImplementedError as err:
            if "callback" in str(err):
                raise ValueError(f"{type(model).__name__}'s {what} calls back into Python (jax.debug.print, "
                                 "pure_callback or a runtime check not routed through "
                                 "brainfuse_jax._validate.error_if), which cannot be exported") from err
            raise
        except ValueError as err:
            if "custom call" not in str(err):
                raise
            raise ValueError(f"{type(model).__name__}'s {what} calls compiled kernels (FFI custom calls) that "
                             "jax.export cannot serialise; run it on backend=bf.XLA() (the spiking layers of "
                             f"brainfuse_jax.nn are switched to it by export_module): {err}") from err
    _refuse_callbacks(exported, model, what)
    return exported


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
                   out_names: list[str], *, whole_inputs: bool = False) -> Callable:
    """The flat function: arrays in, arrays out; fills `out_names` when traced. With
    `whole_inputs`, NaN or inf anywhere in the inputs makes every result NaN (else the rows
    that hold it)."""
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
                        rows=[*s, *new_leaves, *out_leaves], finite_rows=() if whole_inputs else x,
                        finite_all=x if whole_inputs else ())
        return tuple(_poison(a, bad) for a in (*new_leaves, *out_leaves))
    return flat


def _inexact(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


def _bad_rows(batch: int, scalars, rows, finite_rows, finite_all=()):
    """`(batch,)` bool: whether a row (batch element) of `rows` holds NaN, one of `finite_rows`
    NaN or inf, any of `scalars` (no batch axis) NaN, or any of `finite_all` (whole arrays) NaN
    or inf. (Parameters and states may be infinite, as NEST's `V_min = -inf`; inputs must be
    finite.) Written with compare, convert, multiply and sums only, so that a C emitter needs no
    `is_finite` or `or` reduction."""
    acc = jnp.zeros((batch,), jnp.float32)

    def count(a, finite, axis):
        flags = (a * 0 != 0) if finite else (a != a)  # x * 0 is 0 for finite x, NaN for NaN/inf
        return jnp.sum(flags.astype(jnp.float32), axis=axis)
    for a in scalars:
        acc = acc + count(a, False, None)
    for a in finite_all:
        if _inexact(a.dtype):
            acc = acc + count(a, True, None)
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
