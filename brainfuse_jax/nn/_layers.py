r"""Spiking layers for gradient training: `(B, T, features)` in, `(B, T, n)` spikes out.

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
"""

from __future__ import annotations

from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_dt
from ..channels import Channel
from ..neurons import ALIF, ASN, HH, LIF, PointNeuron, RecurrentLIF
from ..neurons._base import AbstractNeuron, State, resolve_dtype
from ..simulate import simulate
from ..surrogate import Surrogate
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

    def _call_neuron(self) -> AbstractNeuron:
        return self.neuron

    def _detach_gates(self) -> bool:
        """Whether the call stops the gradient through the non-V state (see `HHLayer`)."""
        return False

    @property
    def frame_ms(self) -> float:
        """Duration of one input frame, `substeps * dt`, in ms."""
        return self.substeps * self.dt

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
        - `state0`: initial state (default: `init_state(B)`, the neurons at rest).
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
        if state0 is None:
            state0 = framed.init_state((x.shape[0], self.n), dtype)
        final, rec = simulate(framed, state0, h, self.dt, remat=self.remat, chunk_size=self.chunk_size,
                              record={"s": "output", "v": lambda st, out: st["neuron"]["v"]})
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


def _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, v0=None,
            chunk_size=None):
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
    - `state_dtype`: dtype of states and outputs (default float32, float64 under x64)."""


class HHLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of conductance-based neurons (Hodgkin-Huxley or any channel set).

    The input current (uA/cm2) of neuron `i` is `input_scale[i] * (W x_t + b)[i]` (plus the
    recurrent term), held over a frame of `substeps` steps of `dt` ms; the output is its spike
    count per frame (a spike is an upward crossing of `spike_threshold`, 0 mV for HH). Learnable:
    the projection, `input_scale` (uA/cm2 per unit), `W_rec`, and every channel's conductance as a
    per-neuron log-multiplier, `gbar_eff = gbar * exp(g_log[channel])` (so an optimiser's steps
    are relative changes, whatever the conductance's magnitude; `conductances()` returns the
    effective values in mS/cm2), and likewise `c_m_eff = c_m * exp(c_m_log)` if `learn_c_m`. The
    neuron's own parameters (the initial conductances, reversal potentials, temperature, rate
    constants) are held fixed (`stop_gradient`).

    Training note: backpropagated through hundreds of HH steps the exact surrogate gradient
    grows by orders of magnitude (measured global norm ~1e5 for 4 substeps x 64 frames, ~1e10 for
    8 substeps): the regenerative Na gate (m rises with V, V rises with m) multiplies it at every
    spike. `detach_gates=True` stops the gradient through the gating variables (and any other
    state but V, e.g. [Ca]i) at every integration step, so the backward pass sees only the
    membrane equation `C_m dV/dt = I - sum_c g_c(gates) (V - E_c)` with the gates' values as
    constants: the forward pass is unchanged, the gradient still reaches the input, the
    recurrent weights and the conductance multipliers (through `g_c`), and the V-to-V factor of
    one step is `exp(-dt G / C_m)` (`"exp_euler"`) or `C_m / (C_m + dt G)` (`"backward_euler"`,
    `"neuron"`), in (0, 1], so it cannot explode (with `"rk4"` the gates are cut between steps
    only, not between the stages of a step). It is the
    analogue of SpikingJelly's `detach_reset` (a biased gradient that is better conditioned than
    the exact one). Otherwise clip gradients and consider truncated BPTT (`chunk_size`, in
    frames); see docs/learning.md for the measurements.

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `neuron`: a `PointNeuron` (e.g. `bf.HH(scheme="exp_euler")`, `bf.PospischilRS()`), a dict
      name -> `Channel` (made into `PointNeuron(channels, scheme=scheme, temperature=...)`), or
      None for `bf.HH(scheme=scheme)`. Scalar parameters are broadcast to one per neuron.
    - `input_scale`: initial input scale, uA/cm2 per unit of projected input.
    - `scheme`: integration scheme when `neuron` is not a `PointNeuron` (default `"exp_euler"`:
      unconditionally stable at the coarse `dt` that training uses).
    - `temperature`: degC, when `neuron` is not a `PointNeuron` (default 6.3).
    - `c_m`: membrane capacitance override, uF/cm2 (None keeps the neuron's).
    - `learn_c_m`: make `c_m` learnable.
    - `v0`: initial membrane potential, mV (default -65; use a cell class's rest otherwise).
    - `detach_gates`: stop the gradient through the gating variables (every state variable but
      V) at each step; default False (the exact surrogate gradient). Forward values unchanged.
    """

    g_log: dict[str, Float[Array, " n"]]
    c_m_log: Float[Array, " n"] | None
    learn_c_m: bool = eqx.field(static=True)
    detach_gates: bool = eqx.field(static=True)

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        neuron: PointNeuron | dict[str, Channel] | None = None,
        dt: float = 0.1,
        substeps: int = 5,
        input_scale: float = 10.0,
        scheme: str = "exp_euler",
        temperature: float = 6.3,
        c_m: float | None = None,
        learn_c_m: bool = False,
        recurrent: bool = False,
        rec_gain: float = 1.0,
        v0: float = -65.0,
        remat: bool = False,
        chunk_size: int | None = None,
        detach_gates: bool = False,
        state_dtype=None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, v0, chunk_size)
        if not isinstance(detach_gates, bool):
            raise TypeError(f"detach_gates must be a bool, got {detach_gates!r}")
        self.detach_gates = detach_gates
        if neuron is None:
            neuron = HH(scheme=scheme, temperature=temperature)
        elif isinstance(neuron, dict):
            neuron = PointNeuron(channels=neuron, scheme=scheme, temperature=temperature)
        elif not isinstance(neuron, PointNeuron):
            raise TypeError("neuron must be a PointNeuron (e.g. bf.HH()), a dict of name -> Channel, or None; "
                            f"got {type(neuron).__name__}")
        keys = list(neuron.channels)
        gbars = [_per_neuron(neuron.channels[k].gbar, self.n, f"channels[{k!r}].gbar") for k in keys]
        neuron = eqx.tree_at(lambda m: [m.channels[k].gbar for k in keys], neuron, gbars)
        cm = neuron.c_m if c_m is None else c_m
        neuron = eqx.tree_at(lambda m: m.c_m, neuron, _per_neuron(cm, self.n, "c_m"))
        if np.any(np.asarray(neuron.c_m) <= 0):
            raise ValueError(f"c_m must be > 0 uF/cm2, got {c_m!r}")
        # strongly typed leaves: weakly typed scalars (e.g. temperature) would turn strong after the
        # first optimiser update and make a jitted training step compile twice
        self.neuron = jax.tree.map(lambda a: jnp.asarray(a, a.dtype) if eqx.is_inexact_array(a) else a, neuron)
        self.input_scale = _per_neuron(input_scale, self.n, "input_scale")
        if not isinstance(learn_c_m, bool):
            raise TypeError(f"learn_c_m must be a bool, got {learn_c_m!r}")
        self.learn_c_m = learn_c_m
        self.g_log = {k: jnp.zeros((self.n,), jnp.result_type(float)) for k in keys}
        self.c_m_log = jnp.zeros((self.n,), jnp.result_type(float)) if learn_c_m else None

    def conductances(self) -> dict[str, Float[Array, " n"]]:
        """The effective per-neuron conductances, `gbar * exp(g_log)`, mS/cm2."""
        return {k: jax.lax.stop_gradient(jnp.maximum(ch.gbar, 0.0)) * jnp.exp(self.g_log[k].astype(ch.gbar.dtype))
                for k, ch in self.neuron.channels.items()}

    def capacitance(self) -> Float[Array, " n"]:
        """The effective per-neuron membrane capacitance, uF/cm2."""
        c_m = jax.lax.stop_gradient(self.neuron.c_m)
        return c_m if self.c_m_log is None else c_m * jnp.exp(self.c_m_log.astype(c_m.dtype))

    def _detach_gates(self) -> bool:
        return self.detach_gates

    def _call_neuron(self) -> PointNeuron:
        frozen = jax.tree.map(lambda a: jax.lax.stop_gradient(a) if eqx.is_array(a) else a, self.neuron)
        g = self.conductances()
        keys = list(g)
        out = eqx.tree_at(lambda m: [m.channels[k].gbar for k in keys], frozen, [g[k] for k in keys])
        return eqx.tree_at(lambda m: m.c_m, out, self.capacitance())


class LIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of leaky integrate-and-fire neurons (`bf.LIF`, one beta and threshold
    per neuron). Input in units of the threshold per step; output spikes per frame (0/1 with
    `substeps=1`).

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `beta`: initial membrane decay per step in [0, 1) (per-step factor, `exp(-dt/tau)`).
    - `threshold`: initial threshold (learnable).
    - `learn_beta`: make beta learnable (default True).
    - `reset`, `surrogate`, `detach_reset`: as `bf.LIF`.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
        dt: float = 1.0,
        substeps: int = 1,
        recurrent: bool = False,
        rec_gain: float = 1.0,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, chunk_size=chunk_size)
        self.neuron = LIF(beta=_per_neuron(beta, self.n, "beta"), threshold=_per_neuron(threshold, self.n, "threshold"),
                          learn_beta=learn_beta, reset=reset, surrogate=surrogate, detach_reset=detach_reset)
        self.input_scale = None


class ALIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of adaptive LIF neurons (`bf.ALIF`: the threshold rises by `adapt` per
    spike and relaxes with `tau_adapt` ms; Bellec et al. 2018).

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `beta`, `threshold`, `learn_beta`, `reset`, `surrogate`: as `LIFLayer`.
    - `adapt`: threshold increase per spike (units of the input), learnable.
    - `tau_adapt`: adaptation time constant, ms, learnable.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        adapt: float = 0.1,
        tau_adapt: float = 50.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        dt: float = 1.0,
        substeps: int = 1,
        recurrent: bool = False,
        rec_gain: float = 1.0,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, chunk_size=chunk_size)
        n = self.n
        self.neuron = ALIF(beta=_per_neuron(beta, n, "beta"), threshold=_per_neuron(threshold, n, "threshold"),
                           adapt=_per_neuron(adapt, n, "adapt"), tau_adapt=_per_neuron(tau_adapt, n, "tau_adapt"),
                           learn_beta=learn_beta, reset=reset, surrogate=surrogate)
        self.input_scale = None


class RecurrentLIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A recurrently connected LIF layer (`bf.RecurrentLIF`: lateral weights `W`
    `(n, n)` on the previous step's spikes, inside the neuron; snnTorch's `RLeaky`).

    **Arguments:**
    """ + _LAYER_ARGS.replace("    - `recurrent`: add learnable recurrent weights `W_rec ~ Normal(0, rec_gain^2 / n)` fed by the\n"
                              "      previous frame's spikes.\n", "") + """
    - `beta`, `threshold`, `learn_beta`, `reset`, `surrogate`: as `LIFLayer`.
    (`rec_gain` scales the neuron's own `W ~ Normal(0, rec_gain^2 / n)`.)
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        rec_gain: float = 0.5,
        dt: float = 1.0,
        substeps: int = 1,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
    ):
        k = _common(self, in_features, n, key, dt, substeps, False, rec_gain, remat, state_dtype, chunk_size=chunk_size)
        n = self.n
        self.neuron = RecurrentLIF(n, key=k, gain=rec_gain, beta=_per_neuron(beta, n, "beta"),
                                   threshold=_per_neuron(threshold, n, "threshold"), learn_beta=learn_beta,
                                   reset=reset, surrogate=surrogate)
        self.input_scale = None


class ASNLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of adaptive spiking neurons (`bf.ASN`): up to `max_spikes` spikes per
    step (integer-valued training, spike-driven inference give identical counts); output spike
    counts per frame. Switch with `layer.with_mode("infer")`.

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `tau_m`, `threshold`, `adapt`, `tau_adapt`: initial values (ms, units of v), learnable.
    - `max_spikes`: most spikes per step; `mode`: `"train"` or `"infer"`.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        tau_m: float = 20.0,
        threshold: float = 1.0,
        adapt: float = 0.1,
        tau_adapt: float = 100.0,
        max_spikes: int = 4,
        mode: str = "train",
        dt: float = 1.0,
        substeps: int = 1,
        recurrent: bool = False,
        rec_gain: float = 1.0,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, chunk_size=chunk_size)
        n = self.n
        self.neuron = ASN(tau_m=_per_neuron(tau_m, n, "tau_m"), threshold=_per_neuron(threshold, n, "threshold"),
                          adapt=_per_neuron(adapt, n, "adapt"), tau_adapt=_per_neuron(tau_adapt, n, "tau_adapt"),
                          max_spikes=max_spikes, mode=mode)
        self.input_scale = None

    def with_mode(self, mode: str) -> ASNLayer:
        """The same layer with its neurons in `mode` (`"train"` or `"infer"`)."""
        return eqx.tree_at(lambda m: m.neuron, self, self.neuron.with_mode(mode))


# ---- readouts and composition ------------------------------------------------------------------
Reduce = Literal["mean", "max", "last", "none"]
REDUCES = ("mean", "max", "last", "none")


def reduce_time(u: Float[Array, "B T c"], reduce: str) -> Float[Array, "B c"] | Float[Array, "B T c"]:
    """`"mean"` / `"max"` / `"last"` over the time axis (1) of `(B, T, c)`, or `"none"`."""
    if reduce == "mean":
        return jnp.mean(u, axis=1)
    if reduce == "max":
        return jnp.max(u, axis=1)
    if reduce == "last":
        return u[:, -1]
    if reduce == "none":
        return u
    raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")


def spike_count(spikes: Float[Array, "B T n"]) -> Float[Array, "B n"]:
    """Spikes summed over time: `(B, T, n) -> (B, n)` (logits for a rate-coded readout)."""
    return jnp.sum(check_sequence(spikes, "spikes"), axis=1)


class LeakyReadout(eqx.Module):
    r"""Non-spiking leaky integrator readout: $u_t = \beta u_{t-1} + W s_t + b$, $u_0 = 0$,
    reduced over time to logits.

    **Arguments:**
    - `in_features`: inputs per step (the previous layer's `n`); `out_features`: classes.
    - `key`: PRNG key. `beta`: decay per step in [0, 1) (fixed).
    - `reduce`: `"mean"` (mean membrane), `"max"` (max membrane), `"last"`, or `"none"`
      (the whole `(B, T, out)` trace).
    - `state_dtype`: dtype of the membrane (default float32 / float64 under x64).
    """

    linear: eqx.nn.Linear
    beta: float = eqx.field(static=True)
    reduce: str = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    state_dtype: Any = eqx.field(static=True)

    def __init__(self, in_features: int, out_features: int, *, key: PRNGKeyArray, beta: float = 0.9,
                 reduce: Reduce = "mean", state_dtype=None):
        check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features", "number of outputs")
        if not (0.0 <= float(beta) < 1.0):
            raise ValueError(f"beta must be in [0, 1) (decay per step), got {beta!r}")
        if reduce not in REDUCES:
            raise ValueError(f"reduce must be one of {REDUCES}, got {reduce!r}")
        self.linear = eqx.nn.Linear(in_features, out_features, key=key)
        self.beta = float(beta)
        self.reduce = reduce
        self.in_features = int(in_features)
        self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)

    def __call__(self, x: Float[Array, "B T f"], *, key: PRNGKeyArray | None = None):
        """`(B, T, in_features)` -> logits `(B, out)` (or `(B, T, out)` with `reduce="none"`)."""
        x = check_sequence(x, "x", self.in_features)
        dtype = resolve_dtype(self.state_dtype)
        h = jax.vmap(jax.vmap(self.linear))(x.astype(self.linear.weight.dtype)).astype(dtype)

        def body(u, h_t):
            u = self.beta * u + h_t
            return u, u

        _, u = jax.lax.scan(body, jnp.zeros_like(h[:, 0]), jnp.swapaxes(h, 0, 1))
        return reduce_time(jnp.swapaxes(u, 0, 1), self.reduce)


class SpikeCountReadout(eqx.Module):
    r"""Spike-count readout: spikes counted in `bins` equal time windows, then a linear map,
    $z = W\,[c_1; \dots; c_K] + b$ with $c_k = \sum_{t \in \text{window } k} s_t$ (per neuron).

    `bins=1` is the plain rate-coded readout (total spike count per neuron); more bins keep
    coarse timing (e.g. 8 bins = one per image row of a pixel-sequential 8x8 digit).

    **Arguments:**
    - `in_features`: neurons of the previous layer; `out_features`: classes; `key`: PRNG key.
    - `bins`: number of time windows (must divide the sequence length T).
    - `state_dtype`: dtype of the counts and logits (default float32 / float64 under x64).
    """

    linear: eqx.nn.Linear
    bins: int = eqx.field(static=True)
    in_features: int = eqx.field(static=True)
    state_dtype: Any = eqx.field(static=True)

    def __init__(self, in_features: int, out_features: int, *, key: PRNGKeyArray, bins: int = 1,
                 state_dtype=None):
        self.in_features = check_positive_int(in_features, "in_features")
        check_positive_int(out_features, "out_features", "number of outputs")
        self.bins = check_positive_int(bins, "bins", "time windows")
        self.linear = eqx.nn.Linear(self.in_features * self.bins, out_features, key=key)
        self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)

    def counts(self, x: Float[Array, "B T n"]) -> Float[Array, "B k n"]:
        """Spike counts per window, `(B, bins, n)`."""
        x = check_sequence(x, "x", self.in_features)
        B, T, n = x.shape
        if T % self.bins:
            raise ValueError(f"the sequence length T={T} must be a multiple of bins={self.bins}")
        dtype = resolve_dtype(self.state_dtype)
        return jnp.sum(jnp.reshape(x.astype(dtype), (B, self.bins, T // self.bins, n)), axis=2)

    def __call__(self, x: Float[Array, "B T n"], *, key: PRNGKeyArray | None = None) -> Float[Array, "B c"]:
        """`(B, T, in_features)` spikes -> logits `(B, out_features)`."""
        c = self.counts(x)
        flat = jnp.reshape(c, (c.shape[0], -1)).astype(self.linear.weight.dtype)
        return jax.vmap(self.linear)(flat).astype(c.dtype)


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
