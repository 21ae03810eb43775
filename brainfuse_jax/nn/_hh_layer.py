"""`HHLayer`: a layer of conductance-based neurons (Hodgkin-Huxley or any channel set)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..channels import Channel
from ..neurons import HH, PointNeuron
from ._base import _common, _LAYER_ARGS, _per_neuron, AbstractSpikingLayer


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
        adjoint: Any = None,
        backend: Any = None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype, v0,
                chunk_size, adjoint=adjoint, backend=backend)
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

