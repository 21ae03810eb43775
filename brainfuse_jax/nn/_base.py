r"""The base of the spiking layers (`AbstractSpikingLayer`), the framed neuron they run, and the
constructor helpers shared by every layer family.

Spiking layers for gradient training: `(B, T, features)` in, `(B, T, n)` spikes out.

Every layer is an `equinox.Module` holding its input weights (an `eqx.nn.Linear` applied to each
time step, or `None` to take already-projected input), one of the library's neurons with one
value per neuron for each parameter, and optionally recurrent weights. A call runs the neuron
with `brainfuse_jax.simulate` (one `lax.scan`); the neuron dynamics are the library's own.

**Frames and substeps.** Input step `t` (a *frame*) is held for `substeps` integration steps of
`dt` ms, so a frame lasts `substeps * dt` ms. The layer's output for a frame is the number of
spikes in it and its membrane the potential at the end of the frame. With `recurrent=True` the
spikes of frame `t - 1` enter frame `t` through `W_rec` (`(n, n)`, units of the input per spike):

$$I_t = \text{scale} \odot (W x_t + b + s_{t-1} W_\text{rec})$$

**Mixed precision.** Parameters may be stored in any float dtype (e.g. `bfloat16`, see
`cast_params`); the input projection is computed in the dtype of its weights and the neuron
dynamics, states, spikes and readout membranes in `state_dtype` (default float32; float64 under
`jax_enable_x64`), with the neuron parameters cast to it.

**Execution.** How `simulate` differentiates and runs the unroll is configuration of the layer:
`adjoint=` (e.g. `bf.DirectAdjoint()`, `bf.CheckpointAdjoint(every=K)`, `bf.ForwardMode()`) and
`backend=` are static fields set by the constructor (None: simulate's defaults) and passed on at
every call; `layer.with_execution(...)` (or `brainfuse_jax.nn.with_execution(model, ...)` for
every layer of a model, which `train(adjoint=, backend=)` uses) returns a copy with other values.
They are fields rather than call arguments so that a model carries its execution policy through
`eqx.nn.Sequential`, `Sequential`, a user's loss function and `train` unchanged.

**State lifecycle.** A layer holds no state between calls: its state is a value, passed in
(`state0=`) and out (`return_state=True` gives `info["state"]`). So
- *reset*: every call starts from `state0`, by default the rest state `reset_state(layer, B)`
  (= `layer.init_state(B)`); nothing of one batch reaches the next, and the samples of a batch
  are independent (tested: batch B after batch A gives B's outputs alone);
- *carry*: to continue a sequence in windows (streaming, long inputs), pass the final state of
  one window as `state0` of the next; `call_with_state(model, x, state)` does it for a layer or
  a whole stack (`Sequential`, `eqx.nn.Sequential`), one state per layer;
- *detach*: `detach_state(state)` stops the gradient through a carried state (forward values
  unchanged): the gradient of a later window's loss w.r.t. an earlier window's input or state is
  zero, i.e. truncated BPTT at the window boundary. `chunk_size=` does the same inside one call
  every `chunk_size` frames;
- *dtype*: the state is in `state_dtype` (float32 by default) whatever the parameters' dtype; a
  `state0` of another float dtype (e.g. bfloat16 after `cast_params` of a `(model, state)` pair)
  is cast to it on entry, so bfloat16 compute never makes a bfloat16 state.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_dt
from ..neurons import PointNeuron
from ..neurons._base import AbstractNeuron, State, resolve_dtype
from ..simulate import simulate
from ._checks import check_positive_int, check_sequence
from ._probes import probes


def _cast_floats(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _per_neuron(value, n: int, name: str, dtype=None) -> Array:
    arr = jnp.asarray(value, dtype=dtype if dtype is not None else jnp.result_type(float))
    if arr.ndim == 0:
        return jnp.full((n,), arr, arr.dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one value per neuron), "
                         f"got shape {arr.shape}")
    return arr


def _bcast(p: Array, like: Array) -> Array:
    """Per-neuron `(n,)` parameter against `(B, n)` without implicit rank promotion."""
    return jnp.broadcast_to(p.astype(like.dtype), like.shape)


class _Framed(AbstractNeuron):
    """One frame = `substeps` steps of `neuron` with the input held; output = spikes in the frame.
    Optional per-neuron input scale and recurrence from the previous frame's spikes. (Private:
    the layers build it at call time around their neuron.)"""

    neuron: AbstractNeuron
    scale: Array | None
    w_rec: Array | None
    substeps: int = eqx.field(static=True)
    v0: float | None = eqx.field(static=True, default=None)
    detach_gates: bool = eqx.field(static=True, default=False)

    def _detach(self, st: State) -> State:
        """With `detach_gates`: every state variable but V stops the gradient (forward unchanged)."""
        if not self.detach_gates:
            return st
        return {k: (a if k == "v" else jax.lax.stop_gradient(a)) for k, a in st.items()}

    def init_state(self, batch_shape, dtype=None) -> State:
        kwargs = {} if self.v0 is None else {"v0": self.v0}
        st = self.neuron.init_state(batch_shape, dtype, **kwargs)
        return {"neuron": st, "s": jnp.zeros_like(st["v"])}

    def input_shape(self, state: State) -> tuple[int, ...]:
        return tuple(state["s"].shape)

    def step(self, state: State, x, dt):
        s_prev = state["s"]
        drive = jnp.asarray(x).astype(s_prev.dtype)
        if self.w_rec is not None:
            drive = drive + s_prev @ self.w_rec.astype(s_prev.dtype)
        if self.scale is not None:
            drive = drive * _bcast(self.scale, drive)
        if self.substeps == 1:
            st, count = self.neuron.step(state["neuron"], drive, dt)
            return {"neuron": self._detach(st), "s": count}, count

        def substep(carry, _):
            st, count = carry
            st, s = self.neuron.step(st, drive, dt)
            return (self._detach(st), count + s), None

        # an inner scan, not a Python unroll: ~5x faster to compile and faster to run for HH
        (st, count), _ = jax.lax.scan(substep, (state["neuron"], jnp.zeros_like(s_prev)), None,
                                      length=self.substeps)
        return {"neuron": st, "s": count}, count


class AbstractSpikingLayer(eqx.Module):
    """Base of the spiking layers: input projection + framed neuron + `simulate`.

    Subclasses set `linear`, `neuron`, `input_scale`, `w_rec` and the static configuration, and
    may override `_call_neuron` (the neuron used in a call: e.g. with frozen leaves) and
    `_detach_gates` (stop the gradient through every state variable but V after each step).
    """

    linear: eqx.nn.Linear | None
    neuron: AbstractNeuron
    input_scale: Float[Array, " n"] | None
    w_rec: Float[Array, "n n"] | None
    in_features: int | None = eqx.field(static=True)
    n: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    remat: bool = eqx.field(static=True)
    state_dtype: Any = eqx.field(static=True)
    v0: float | None = eqx.field(static=True)
    chunk_size: int | None = eqx.field(static=True, default=None)
    adjoint: Any = eqx.field(static=True, default=None)
    backend: Any = eqx.field(static=True, default=None)

    def _call_neuron(self) -> AbstractNeuron:
        return self.neuron

    def _detach_gates(self) -> bool:
        """Whether the call stops the gradient through the non-V state (see `HHLayer`)."""
        return False

    @property
    def frame_ms(self) -> float:
        """Duration of one input frame, `substeps * dt`, in ms."""
        return self.substeps * self.dt

    def with_execution(self, *, adjoint: Any = None, backend: Any = None) -> AbstractSpikingLayer:
        """This layer with its `adjoint` and/or `backend` replaced (None keeps the layer's value);
        the parameters are shared, not copied. See the constructor's arguments of the same names."""
        changes = {"adjoint": _check_static(adjoint, "adjoint", "an adjoint object such as bf.DirectAdjoint()"),
                   "backend": _check_static(backend, "backend", "a backend for simulate's backend=")}
        new = copy.copy(self)
        for name, value in changes.items():
            if value is not None:
                object.__setattr__(new, name, value)  # a static field: eqx.tree_at cannot reach it
        return new

    def project(self, x: Float[Array, "B T f"]) -> Float[Array, "B T n"]:
        """The input projection per time step (in the weights' dtype), or `x` itself."""
        if self.linear is None:
            return x
        w = self.linear.weight
        y = jax.vmap(jax.vmap(self.linear))(x.astype(w.dtype))
        return y

    def init_state(self, batch: int) -> State:
        """The initial state for a batch of `batch` sequences (in `state_dtype`)."""
        dtype = resolve_dtype(self.state_dtype)
        return self._framed(dtype, batch).init_state((batch, self.n), dtype)

    def _framed(self, dtype, batch: int) -> _Framed:
        neuron = _cast_floats(self._call_neuron(), dtype)
        if isinstance(neuron, PointNeuron):
            # Conductance-based neurons broadcast their parameters implicitly against the state;
            # make per-neuron (n,) parameters (B, n) explicitly (strict rank promotion).
            n = self.n
            neuron = jax.tree.map(lambda a: jnp.broadcast_to(a, (batch, n)) if eqx.is_array(a) and a.shape == (n,)
                                  else a, neuron)
        scale = None if self.input_scale is None else self.input_scale.astype(dtype)
        w_rec = None if self.w_rec is None else self.w_rec.astype(dtype)
        return _Framed(neuron, scale, w_rec, self.substeps, self.v0, self._detach_gates())

    def __call__(
        self,
        x: Float[Array, "B T f"],
        *,
        state0: State | None = None,
        return_state: bool = False,
        return_details: bool = False,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "B T n"] | tuple[Float[Array, "B T n"], dict]:
        """Run the layer on a batch of sequences.

        **Arguments:**
        - `x`: `(B, T, in_features)` (or `(B, T, n)` without an input projection); input units
          are those of the projection (dimensionless; the HH layer multiplies by `input_scale`
          to get uA/cm2).
        - `state0`: initial state (default: `init_state(B)`, the neurons at rest), e.g. the final
          state of a previous window (see *State lifecycle* in the module docstring); its float
          leaves are cast to `state_dtype`.
        - `return_state`: also return the membrane at the end of each frame (`"v"`, `(B, T, n)`)
          and the final state (`"state"`).
        - `return_details`: also return the debug probes (see `brainfuse_jax.nn.probes`).
        - `key`: unused (for `eqx.nn.Sequential` compatibility).

        **Returns:** spikes per frame `(B, T, n)` (in `state_dtype`), or `(spikes, info)` with
        `info` a dict holding what was requested.
        """
        x = check_sequence(x, "x", self.in_features if self.in_features is not None else self.n)
        dtype = resolve_dtype(self.state_dtype)
        h = self.project(x).astype(dtype)
        framed = self._framed(dtype, x.shape[0])
        return self._unroll(framed, h, state0, (x.shape[0], self.n), return_state, return_details)

    def _unroll(self, framed, h, state0, batch_shape, return_state: bool, return_details: bool):
        """`simulate` the framed neuron over the projected input `h` from `state0` (default: at
        rest, `batch_shape`) and assemble `spikes` or `(spikes, info)`; shared by every layer."""
        dtype = h.dtype
        if state0 is None:
            state0 = framed.init_state(batch_shape, dtype)
        else:  # the state policy: float leaves in state_dtype, whatever dtype they were given in
            state0 = _cast_floats(state0, dtype)
        # backend= only when set: None is simulate's own default, whatever form that argument takes
        execution = {} if self.backend is None else {"backend": self.backend}
        final, rec = simulate(framed, state0, h, self.dt, remat=self.remat, chunk_size=self.chunk_size,
                              adjoint=self.adjoint, record={"s": "output", "v": lambda st, out: st["neuron"]["v"]},
                              **execution)
        spikes, v = rec["s"], rec["v"]
        if not (return_state or return_details):
            return spikes
        info: dict = {}
        if return_state:
            info.update(v=v, state=final)
        if return_details:
            info.update(probes(spikes, v, self.frame_ms))
        return spikes, info


def _linear(in_features, n, key, dtype=None):
    if in_features is None:
        return None
    check_positive_int(in_features, "in_features", "input features per time step")
    return eqx.nn.Linear(in_features, n, key=key, dtype=dtype)


def _check_static(value, name: str, what: str):
    """`value` (None or a hashable object: it is a static field of the layer), else `TypeError`."""
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{name} must be None or {what} (hashable: it is static configuration of the layer), "
                        f"got an unhashable {type(value).__name__}") from None
    return value


def _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, v0=None,
            chunk_size=None, adjoint=None, backend=None):
    """Shared constructor work; returns the key for the neuron."""
    n = check_positive_int(n, "n", "number of neurons")
    substeps = check_positive_int(substeps, "substeps", "integration steps per input frame")
    if in_features is not None:
        check_positive_int(in_features, "in_features", "input features per time step")
    if key is None:
        raise TypeError("key (a jax.random PRNG key) is required to initialise the weights")
    dt = float(check_dt(dt))
    k_lin, k_rec, k_neuron = jax.random.split(key, 3)
    self.linear = _linear(in_features, n, k_lin)
    self.in_features = in_features
    self.n = n
    self.dt = dt
    self.substeps = substeps
    self.remat = bool(remat)
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size", "frames per truncated-BPTT chunk")
    self.chunk_size = chunk_size
    # forwarded to simulate as given (it validates them and names the argument in its errors)
    self.adjoint = _check_static(adjoint, "adjoint", "an adjoint object such as bf.DirectAdjoint()")
    self.backend = _check_static(backend, "backend", "a backend for simulate's backend=")
    self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)
    self.v0 = None if v0 is None else float(v0)
    if not isinstance(recurrent, bool):
        raise TypeError(f"recurrent must be a bool, got {recurrent!r}")
    self.w_rec = (rec_gain / np.sqrt(n) * jax.random.normal(k_rec, (n, n), jnp.result_type(float))
                  if recurrent else None)
    return k_neuron


_LAYER_ARGS = """
    - `in_features`: input features per time step, or `None` for no input projection (the input
      must then have `n` features: compose with any equinox layer, see `TimeDistributed`).
    - `n`: number of neurons.
    - `key`: PRNG key for the weights.
    - `dt`: integration step, ms.
    - `substeps`: integration steps per input frame (a frame lasts `substeps * dt` ms).
    - `recurrent`: add learnable recurrent weights `W_rec ~ Normal(0, rec_gain^2 / n)` fed by the
      previous frame's spikes.
    - `rec_gain`: scale of the recurrent initialisation.
    - `remat`: rematerialise each frame in the backward pass (less memory, ~1.3x time).
    - `chunk_size`: truncated BPTT, in frames: the gradient through the neuron state is cut every
      `chunk_size` frames (forward values unchanged); None (default) for full BPTT.
    - `state_dtype`: dtype of states and outputs (default float32, float64 under x64).
    - `adjoint`: how `simulate` differentiates the unroll: `bf.CheckpointAdjoint(every=K)`,
      `bf.DirectAdjoint()` or `bf.ForwardMode()` (the neuron's parameters only, so it applies to
      a layer without input projection, `in_features=None`, whose input is not differentiated,
      and without `recurrent`, `remat` or `chunk_size`); None (default): simulate's default
      (`CheckpointAdjoint`, `DirectAdjoint` with `remat=True`). Forward values are the same.
    - `backend`: passed on as simulate's `backend=` (e.g. `"xla"`, `"pallas"`); None (default):
      simulate's default. (Change either later with `with_execution`.)"""



# ---- state lifecycle (see the module docstring) ----

def _is_stateful(layer) -> bool:
    """A layer with `init_state(batch)` whose call takes `state0=` and returns `info["state"]`
    with `return_state=True`: every `AbstractSpikingLayer`, and any module following the same
    contract (e.g. a convolutional spiking layer)."""
    if isinstance(layer, AbstractSpikingLayer):
        return True
    if not (isinstance(layer, eqx.Module) and callable(getattr(layer, "init_state", None)) and callable(layer)):
        return False
    try:
        params = inspect.signature(layer.__call__).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False
    return "state0" in params and "return_state" in params


def _stack(model) -> tuple | None:
    """The layers of a stack (`Sequential`, `eqx.nn.Sequential`: a `layers` tuple), else None."""
    layers = getattr(model, "layers", None)
    return tuple(layers) if isinstance(layers, (tuple, list)) and isinstance(model, eqx.Module) else None


def reset_state(model, batch: int):
    """The rest state of `model` for a batch of `batch` sequences: what every call starts from
    unless given `state0`.

    **Arguments:**
    - `model`: a spiking layer, or a stack (`Sequential`, `eqx.nn.Sequential`).
    - `batch`: number of sequences B.

    **Returns:** for a spiking layer, `layer.init_state(batch)` (a dict of `(B, n)` arrays in
    `state_dtype`); for a stack, a tuple with one entry per layer: the layer's rest state, None
    for a stateless layer (linear maps, readouts), a tuple for a nested stack.
    """
    batch = check_positive_int(batch, "batch", "number of sequences")
    if _is_stateful(model):
        return model.init_state(batch)
    layers = _stack(model)
    if layers is None:
        raise TypeError(f"model must be a spiking layer or a stack of layers (Sequential, eqx.nn.Sequential), "
                        f"got {type(model).__name__}")
    return tuple(reset_state(layer, batch) if (_is_stateful(layer) or _stack(layer) is not None) else None
                 for layer in layers)


def detach_state(state):
    """`state` with the gradient stopped on every array leaf (`jax.lax.stop_gradient`): the same
    values, but a loss computed from a window started at this state has zero gradient w.r.t.
    everything that produced it (earlier windows' inputs and parameters through them). Truncated
    BPTT at a window boundary; works on any state pytree (a layer's, or `reset_state`'s tuple)."""
    return jax.tree.map(lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, state)


def call_with_state(model, x, state=None):
    """Run `model` on one window `x` starting from `state` and return the final state to carry
    into the next window.

    **Arguments:**
    - `model`: a spiking layer or a stack (`Sequential`, `eqx.nn.Sequential`); in a stack the
      spiking layers carry state and the other layers are applied to the window as is (a
      `LeakyReadout` restarts at 0 in every call: it reduces one window).
    - `x`: `(B, T, ...)`, one window.
    - `state`: from `reset_state(model, B)` or a previous `call_with_state`; None: the rest state.
      Wrap it in `detach_state` to cut the gradient at the window boundary.

    **Returns:** `(y, final_state)`, `final_state` with the structure of `reset_state(model, B)`.
    Calling it on consecutive windows with the carried state gives the outputs of one call on the
    whole sequence (for spiking layers; tested).
    """
    if _is_stateful(model):
        y, info = model(x, state0=state, return_state=True)
        return y, info["state"]
    layers = _stack(model)
    if layers is None:
        raise TypeError(f"model must be a spiking layer or a stack of layers (Sequential, eqx.nn.Sequential), "
                        f"got {type(model).__name__}")
    if state is None:
        state = (None,) * len(layers)
    if not isinstance(state, tuple) or len(state) != len(layers):
        raise ValueError(f"state must be a tuple with one entry per layer ({len(layers)}, as reset_state(model, B) "
                         f"returns), got {type(state).__name__}"
                         + (f" of length {len(state)}" if isinstance(state, tuple) else ""))
    out = []
    for layer, st in zip(layers, state):
        if _is_stateful(layer) or _stack(layer) is not None:
            x, st = call_with_state(layer, x, st)
        else:
            x, st = layer(x), None
        out.append(st)
    return x, tuple(out)
