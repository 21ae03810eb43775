r"""NEST's current-based integrate-and-fire neurons, `IAFPscDelta` and `IAFPscExp`, integrated
exactly on the time grid (Rotter & Diesmann 1999, "Exact digital simulation of time-invariant
linear systems with applications to neuronal modeling", Biol. Cybern. 81:381-402) with NEST
3.10's propagators and order of operations (`models/iaf_psc_delta.cpp`, `models/iaf_psc_exp.cpp`,
`libnestutil/iaf_propagator.cpp`).

$$C_m \frac{dV}{dt} = -\frac{C_m}{\tau_m}(V - E_L) + I_\text{syn}(t) + I_e + x(t)$$

Units as NEST's: mV, ms, pA, pF. One step `t` advances the state from `t dt` to `(t + 1) dt`
with the external current `x` of step `t` (pA) held over the step; a spike emitted in step `t`
carries NEST's time stamp `(t + 1) dt`.

**Input timing against NEST.** NEST applies a `CurrentEvent` (from a `dc_generator` or
`step_current_generator`) one step after the step it is delivered in: the model stores the
current at the end of a step (`S_.y0_ = B_.currents_.get_value(lag)`) and uses it in the next.
Here `x` of step `t` acts in step `t`. NEST's current generators send two steps early
(`StimulationDevice::is_active`), so a generator current that is on from `start` to `stop` (ms),
connected with a delay of `d` ms, acts in NEST over the time `[start + d, stop + d)`: the same
as `x[:, k] = amplitude` for the steps `k` with `start + d <= k dt < stop + d` (tests/test_iaf.py
compares them so). `I_e` acts in every step in both. Spike events act in the step they are
delivered in, as in NEST: a spike stamped `T` (ms) with a delay of `d` steps is delivered in
step `round(T / dt) - 1 + d`. NEST starts at `V_m = -70` mV whatever `E_L`; `init_state`
starts at `E_L` unless given `v0`.

**Refractoriness.** After a spike `V` is clamped at `V_reset` for `refractory_counts(dt)` steps
(NEST's `Time(Time::ms(t_ref)).get_steps()`: `t_ref` rounded to NEST's 1 us tic, then up to a
whole number of steps, i.e. `round(t_ref / dt)` when `t_ref` is a multiple of `dt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import _check, as_float_array, check_dt, check_finite, is_concrete, param
from ..surrogate import Surrogate
from ._base import AbstractNeuron, State, check_events, check_step_input, normalize_batch_shape, resolve_dtype

#: NEST's default time resolution of `Time` objects: tics per ms (1 tic = 1 us).
TICS_PER_MS = 1000.0


def _v_min(x) -> Array:
    """Converter of `V_min`: a float array, NaN and +inf refused (-inf allowed: no bound)."""
    arr = as_float_array(x, "V_min")
    return _check(arr, lambda a: (a == a) & (a < np.inf), "V_min", "a number or -inf (mV), not NaN or +inf")


def _like(p: Array, ref: Array) -> Array:
    """Parameter `p` in the dtype of `ref`, broadcast explicitly to its shape."""
    return jnp.broadcast_to(p.astype(ref.dtype), ref.shape)


def _isnormal(x: Array) -> Array:
    """C's `std::isnormal`: finite, nonzero and not subnormal."""
    return jnp.isfinite(x) & (jnp.abs(x) >= jnp.finfo(x.dtype).tiny)


def psc_exp_propagator(tau_syn: Array, tau_m: Array, c_m: Array, h: Array) -> Array:
    r"""NEST's `IAFPropagatorExp(tau_syn, tau_m, c_m).evaluate(h)`: the change of `V` (mV) over
    `h` ms per pA of an exponentially decaying current of time constant `tau_syn` (ms), for a
    membrane of `tau_m` (ms) and `c_m` (pF):

    $$P_{21} = \frac{\tau_s\tau_m}{(\tau_m - \tau_s)\,C_m}\,e^{-h/\tau_s}\,
      \mathrm{expm1}\!\Big(h\,\frac{\tau_m - \tau_s}{\tau_s\tau_m}\Big),$$

    replaced by its limit $\frac{h}{C_m} e^{-h/\tau_m}$ where that value is not a normal
    positive number (`tau_m == tau_syn`, or so close that it under/overflows), as NEST does.
    The gradient is that of the branch taken (finite in both).
    """
    def regular(tau_m_):
        beta = tau_syn * tau_m_ / (tau_m_ - tau_syn)
        gamma = beta / c_m
        inv_beta = (tau_m_ - tau_syn) / (tau_syn * tau_m_)
        return gamma * jnp.exp(-h / tau_syn) * jnp.expm1(h * inv_beta)

    p = jax.lax.stop_gradient(regular(tau_m))
    ok = _isnormal(p) & (p > 0)
    # evaluate the regular branch only where it is taken (no NaN/inf in the gradient elsewhere)
    safe_tau_m = jnp.where(ok, tau_m, 2.0 * tau_syn)
    return jnp.where(ok, regular(safe_tau_m), h / c_m * jnp.exp(-h / tau_m))


class _AbstractIAF(AbstractNeuron):
    """Fields and update shared by `IAFPscDelta` and `IAFPscExp` (not public)."""

    voltage_unit: ClassVar[str | None] = "mV"

    tau_m: Float[Array, "*n"] = param(10.0, "tau_m", "ms", low="positive")
    C_m: Float[Array, "*n"] = param(250.0, "C_m", "pF", low="positive")
    E_L: Float[Array, "*n"] = param(-70.0, "E_L", "mV")
    V_th: Float[Array, "*n"] = param(-55.0, "V_th", "mV")
    V_reset: Float[Array, "*n"] = param(-70.0, "V_reset", "mV")
    t_ref: Float[Array, "*n"] = param(2.0, "t_ref", "ms", low="nonnegative")
    I_e: Float[Array, "*n"] = param(0.0, "I_e", "pA")
    surrogate: Surrogate = Surrogate("atan", 0.5)
    detach_reset: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        if not isinstance(self.surrogate, Surrogate):
            raise TypeError(f"surrogate must be a Surrogate (e.g. brainfuse_jax.surrogate.atan()), "
                            f"got {type(self.surrogate).__name__}")
        if not isinstance(self.detach_reset, bool):
            raise TypeError(f"detach_reset must be a bool, got {self.detach_reset!r}")
        if is_concrete((self.V_reset, self.V_th)):
            reset, th = np.broadcast_arrays(np.asarray(self.V_reset), np.asarray(self.V_th))
            bad = ~(reset < th)
            if bad.any():
                raise ValueError(f"V_reset must be < V_th (mV); got V_reset={np.ravel(reset[bad])[0].item()!r} "
                                 f">= V_th={np.ravel(th[bad])[0].item()!r}")

    # ---- parameters --------------------------------------------------------------------------
    def _params(self) -> dict[str, Array]:
        return {f: getattr(self, f) for f in ("tau_m", "C_m", "E_L", "V_th", "V_reset", "t_ref", "I_e")}

    def refractory_counts(self, dt: Real[ArrayLike, ""]) -> Float[Array, "*n"]:
        """Refractory period in steps of `dt` ms, as NEST's `Time(Time::ms(t_ref)).get_steps()`:
        `t_ref` rounded half-up to the 1 us tic, divided by `dt` (in tics) and rounded up. Equals
        `round(t_ref / dt)` when `t_ref` is a multiple of `dt`. No gradient."""
        return self._refractory_counts(check_dt(dt))

    def _refractory_counts(self, dt: Array) -> Array:
        t_ref = jax.lax.stop_gradient(self.t_ref).astype(dt.dtype)
        tics = jnp.floor(t_ref * TICS_PER_MS + 0.5)
        tics_per_step = jnp.maximum(jnp.round(dt * TICS_PER_MS), 1.0)
        return jnp.ceil(tics / tics_per_step)

    # ---- state -------------------------------------------------------------------------------
    def _base_state(self, batch_shape, dtype, v0) -> State:
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        for name, p in self._params().items():
            try:
                ok = np.broadcast_shapes(tuple(p.shape), shape) == shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name} has shape {tuple(p.shape)}, which does not broadcast to the "
                                 f"state's batch_shape {shape}; per-neuron parameters must match its "
                                 "trailing axes, e.g. (n,) for batch_shape (B, n)")
        v0 = self.E_L if v0 is None else as_float_array(v0, "v0")
        check_finite(v0, "v0")
        try:
            v = jnp.broadcast_to(jnp.asarray(v0, dtype), shape)
        except ValueError as err:
            raise ValueError(f"v0 has shape {tuple(jnp.shape(v0))}, which does not broadcast to "
                             f"batch_shape {shape}") from err
        return {"v": v, "refractory": jnp.zeros(shape, dtype)}

    # ---- dynamics ----------------------------------------------------------------------------
    def _prepare(self, state: State, x, events, dt):
        v = state["v"]
        x = jnp.asarray(x, v.dtype)
        check_step_input(self, state, x)
        events = check_events(self, state, events)
        return x, events, check_dt(dt).astype(v.dtype)

    def _fire(self, y_new, held, r, dt) -> tuple[Array, Array, Array]:
        """Threshold, reset and refractory count from the potential relative to E_L after the
        step (`y_new`): `(v, spike, refractory)`. Spikes are exactly 0/1 with the surrogate's
        derivative; the reset's gradient is stopped if `detach_reset`."""
        e_l = _like(self.E_L, y_new)
        v_new = y_new + e_l
        spike = self.surrogate(v_new - _like(self.V_th, y_new))
        spike = jnp.where(held, jnp.zeros_like(spike), spike)
        s = jax.lax.stop_gradient(spike) if self.detach_reset else spike
        v_out = v_new * (1.0 - s) + s * _like(self.V_reset, y_new)
        n_ref = _like(self._refractory_counts(dt).astype(y_new.dtype), y_new)
        r_new = jnp.where(spike > 0, n_ref, jnp.maximum(r - 1.0, 0.0))
        return v_out, spike, r_new


_COMMON_ARGS = """
    - `tau_m`: membrane time constant, ms (> 0; NEST default 10).
    - `C_m`: membrane capacitance, pF (> 0; 250).
    - `E_L`: resting potential, mV (-70).
    - `V_th`: spike threshold, mV (-55); a spike when `V >= V_th` after the step.
    - `V_reset`: reset potential, mV (-70; must be < `V_th`).
    - `t_ref`: absolute refractory period, ms (>= 0; 2): `V` is clamped at `V_reset` for
      `refractory_counts(dt)` steps.
    - `I_e`: constant external current, pA (0).
    - `surrogate`: the spike's derivative w.r.t. `V - V_th` (default `atan` with slope 0.5 per
      mV, as `PointNeuron`'s: LIF's family, scaled to a membrane in mV).
    - `detach_reset`: stop the gradient through the reset (default True, as LIF's).

    Every parameter is a scalar or a per-neuron array broadcastable to the batch shape, e.g.
    `(n,)` for `batch_shape=(B, n)`. `init_state(batch_shape, dtype, v0=None)` starts at
    `V = v0` (default `E_L`), not refractory."""


class IAFPscDelta(_AbstractIAF):
    __doc__ = r"""NEST's `iaf_psc_delta`: leaky integrate-and-fire neuron with delta-shaped
    synaptic currents (each input spike makes `V` jump by its weight in mV).

    One step of `dt` ms, in NEST's order: if not refractory,
    $V \leftarrow E_L + P_{30}(x + I_e) + P_{33}(V - E_L) + \Delta$ with
    $P_{33} = e^{-dt/\tau_m}$, $P_{30} = \tau_m (1 - P_{33}) / C_m$ and $\Delta$ the summed
    weights (mV) of the spikes delivered in the step (`events["delta"]`), then
    $V \leftarrow \max(V, V_\text{min})$; if refractory, `V` stays at `V_reset`, the count
    decreases and spikes delivered now are discarded (NEST's `refractory_input=False`). Then a
    spike if $V \ge V_\text{th}$, with $V \leftarrow V_\text{reset}$ and the count set to
    `refractory_counts(dt)`.

    State: `{"v": mV, "refractory": steps left}`. `step(state, x, dt)`: `x` in pA, of the
    batch shape; returns `(state, spikes)` with spikes exactly 0.0/1.0. Event port
    (`receptors`): `"delta"`, weights in mV.

    **Arguments:**
    """ + _COMMON_ARGS + """
    - `V_min`: lower bound of `V`, mV (default -inf: none).
    """

    receptors: ClassVar[tuple[str, ...]] = ("delta",)

    V_min: Float[Array, "*n"] = eqx.field(default=-np.inf, converter=_v_min,
                                          metadata={"unit": "mV", "low": None, "name": "V_min"})

    def _params(self) -> dict[str, Array]:
        return {**super()._params(), "V_min": self.V_min}

    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] | None = None) -> State:
        """State at `V = v0` (mV; default `E_L`), not refractory, for `batch_shape`, e.g. `(B, n)`."""
        return self._base_state(batch_shape, dtype, v0)

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under external current `x` (pA); `(state, spikes)`."""
        return self.step_events(state, x, None, dt)

    def step_events(self, state: State, x: Real[ArrayLike, "*b"], events: Mapping[str, Any] | None,
                    dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """One step with external current `x` (pA) and `events["delta"]`, the summed weights
        (mV) of the spikes delivered in this step; `(state, spikes)`."""
        x, events, dt = self._prepare(state, x, events, dt)
        v, r = state["v"], state["refractory"]
        p = {k: _like(a, v) for k, a in self._params().items() if k != "t_ref"}
        p33 = jnp.exp(-dt / p["tau_m"])
        p30 = 1.0 / p["C_m"] * (1.0 - p33) * p["tau_m"]
        y = v - p["E_L"]
        y_new = p30 * (x + p["I_e"]) + p33 * y
        if "delta" in events:
            y_new = y_new + events["delta"]
        y_new = jnp.maximum(y_new, p["V_min"] - p["E_L"])
        held = r > 0
        y_new = jnp.where(held, y, y_new)
        v_new, spike, r_new = self._fire(y_new, held, r, dt)
        return {"v": v_new, "refractory": r_new}, spike


class IAFPscExp(_AbstractIAF):
    __doc__ = r"""NEST's `iaf_psc_exp`: leaky integrate-and-fire neuron with exponentially
    decaying synaptic currents, separate for excitatory and inhibitory input.

    One step of `dt` ms, in NEST's order: if not refractory,
    $V \leftarrow E_L + P_{22}(V - E_L) + P_{21}^{ex} I_{ex} + P_{21}^{in} I_{in} + P_{20}(I_e + x)$
    with $P_{22} = e^{-dt/\tau_m}$, $P_{20} = \tau_m(1 - P_{22})/C_m$ and $P_{21}$ NEST's
    `IAFPropagatorExp` (`psc_exp_propagator`, with its limit where `tau_m` equals `tau_syn`);
    if refractory, `V` stays at `V_reset` and the count decreases. Then
    $I_{ex} \leftarrow e^{-dt/\tau_{ex}} I_{ex} + w_{ex}$ and likewise $I_{in}$, with $w$ the
    summed weights (pA) of the spikes delivered in the step (also while refractory), then a
    spike if $V \ge V_\text{th}$ with $V \leftarrow V_\text{reset}$. (NEST's stochastic
    threshold, `delta > 0`, and its filtered-current port 1 are not modelled.)

    State: `{"v": mV, "i_syn_ex": pA, "i_syn_in": pA, "refractory": steps left}`. Event ports
    (`receptors`): `"ex"` and `"in"`, weights in pA added to `i_syn_ex` / `i_syn_in` as given
    (NEST routes a spike by the sign of its weight: positive to `"ex"`, the rest, negative for
    inhibition, to `"in"`).

    **Arguments:**
    """ + _COMMON_ARGS + """
    - `tau_syn_ex`, `tau_syn_in`: time constants of the synaptic currents, ms (> 0; 2).
    """

    receptors: ClassVar[tuple[str, ...]] = ("ex", "in")

    tau_syn_ex: Float[Array, "*n"] = param(2.0, "tau_syn_ex", "ms", low="positive")
    tau_syn_in: Float[Array, "*n"] = param(2.0, "tau_syn_in", "ms", low="positive")

    def _params(self) -> dict[str, Array]:
        return {**super()._params(), "tau_syn_ex": self.tau_syn_ex, "tau_syn_in": self.tau_syn_in}

    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] | None = None) -> State:
        """State at `V = v0` (mV; default `E_L`), no synaptic current, not refractory."""
        state = self._base_state(batch_shape, dtype, v0)
        zeros = jnp.zeros_like(state["v"])
        return {"v": state["v"], "i_syn_ex": zeros, "i_syn_in": zeros, "refractory": state["refractory"]}

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under external current `x` (pA); `(state, spikes)`."""
        return self.step_events(state, x, None, dt)

    def step_events(self, state: State, x: Real[ArrayLike, "*b"], events: Mapping[str, Any] | None,
                    dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """One step with external current `x` (pA) and `events["ex"]` / `events["in"]`, the
        summed weights (pA) of the spikes delivered in this step; `(state, spikes)`."""
        x, events, dt = self._prepare(state, x, events, dt)
        v, r = state["v"], state["refractory"]
        i_ex, i_in = state["i_syn_ex"], state["i_syn_in"]
        p = {k: _like(a, v) for k, a in self._params().items() if k != "t_ref"}
        p11ex = jnp.exp(-dt / p["tau_syn_ex"])
        p11in = jnp.exp(-dt / p["tau_syn_in"])
        p22 = jnp.exp(-dt / p["tau_m"])
        p21ex = psc_exp_propagator(p["tau_syn_ex"], p["tau_m"], p["C_m"], dt)
        p21in = psc_exp_propagator(p["tau_syn_in"], p["tau_m"], p["C_m"], dt)
        p20 = p["tau_m"] / p["C_m"] * (1.0 - p22)
        y = v - p["E_L"]
        held = r > 0
        y_new = jnp.where(held, y, y * p22 + i_ex * p21ex + i_in * p21in + (p["I_e"] + x) * p20)
        i_ex = i_ex * p11ex
        i_in = i_in * p11in
        if "ex" in events:
            i_ex = i_ex + events["ex"]
        if "in" in events:
            i_in = i_in + events["in"]
        v_new, spike, r_new = self._fire(y_new, held, r, dt)
        return {"v": v_new, "i_syn_ex": i_ex, "i_syn_in": i_in, "refractory": r_new}, spike

