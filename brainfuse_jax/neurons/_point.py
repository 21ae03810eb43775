"""Conductance-based point neurons built from `Channel`s, and the classic `HH` neuron."""

from __future__ import annotations

from typing import ClassVar, Literal

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import check_dt, check_finite, param
from ..fast_math import with_fast_exp
from ..channels import (CalciumPool, Channel, GateKinetics, HHK, HHNa, Leak, PospischilCaL, PospischilCaT,
                        PospischilKd, PospischilM, PospischilNa)
from ..integrate import AbstractScheme, as_scheme
from ..integrate._shorthands import POINT_SCHEMES
from ..surrogate import Surrogate
from ._base import AbstractNeuron, State, check_step_input, normalize_batch_shape, resolve_dtype
from ._membrane import DECAYS as DECAYS
from ._membrane import advance_gates, channel_kinetics, check_decay, instant_channels, spike_output, tabulated_kinetics

Scheme = Literal["neuron", "backward_euler", "exp_euler", "rk4", "crank_nicolson"] | AbstractScheme
SCHEMES = POINT_SCHEMES
_tabulated_kinetics = tabulated_kinetics  # its former name here


class PointNeuron(AbstractNeuron):
    r"""A single-compartment conductance-based neuron.

    $$C_m \frac{dV}{dt} = I_\text{ext} - \sum_c g_c(x_c)\,(V - E_c), \qquad
      \frac{dx}{dt} = \frac{x_\infty(V) - x}{\tau_x(V)}$$

    Input `x` of `step` is the external current density in uA/cm2 (positive = depolarising);
    the output is a spike (exactly 1.0 on the step where V crosses `spike_threshold` upwards,
    else 0.0) whose gradient is the `surrogate`'s.

    **Arguments:**
    - `channels`: dict name -> `Channel` (names become state keys, e.g. `state["na"]["m"]`;
      "v" and "cai" are reserved).
    - `c_m`: membrane capacitance, uF/cm2.
    - `temperature`: degC; each channel scales its rates by its q10.
    - `scheme`: time discretisation, a scheme object of `brainfuse_jax.integrate` or its
      shorthand (the field holds the object: `PointNeuron(scheme="rk4").scheme == RK4()`):
        * `"exp_euler"` (`ExpEuler()`): gates by exponential Euler with V at the start of the
          step; V by exponential Euler with the conductances frozen over the step (exact for a
          linear membrane). Unconditionally stable.
        * `"backward_euler"` (`BackwardEuler()`): NEURON's fixed-step method (`secondorder = 0`):
          V by linearised implicit Euler with the gates of the previous step, then gates by
          `cnexp` (exponential Euler) at the new V — the gates are staggered by dt/2.
        * `"neuron"` (`NeuronTables()`, default): `"backward_euler"` plus NEURON's rate tables for
          channels that declare one (`Channel.table`; hh.mod's `TABLE ... FROM -100 TO 100 WITH
          200`, linear interpolation of inf and tau, which NEURON uses by default). Reproduces
          NEURON's `hh` to ~1e-9 mV in float64.
        * `"crank_nicolson"` (`CrankNicolson()`): NEURON's `secondorder = 2` (V by a half-step
          implicit solve and extrapolation), with the rate tables of `"neuron"`.
        * `"rk4"` (`RK4()`): classic 4th-order Runge-Kutta on the full ODE, input held over the
          step. All the others are first order (`"crank_nicolson"`: second in V).
    - `spike_threshold`: mV, for the spike output.
    - `surrogate`: surrogate gradient of the spike output (slope in 1/mV; the default atan slope
      0.5/mV is wider than the LIF default because an HH spike spans ~100 mV).
    - `decay`: how the exponential updates evaluate their decay factor exp(-z) (z = dt/tau for
      the gates, dt G/C_m for V with `"exp_euler"`): `"exp"` (default, exact) or `"pade"`, the
      L-stable [2/3] Pade approximant (`brainfuse_jax._math.pade_decay`): one division per
      variable and no `exp`, with relative error 3.3e-8 at z = 0.25 and 1.2e-4 at z = 1 (for HH
      at dt = 0.025 ms, z <= 0.25 for the gates and <= 1.3 for V). Gates stay in [0, 1] for any
      dt. The fast choice for exponential-Euler populations (docs/kernels.md).
    - `fast_exp`: evaluate every `exp` of the step (rate functions, gate and V updates) with the
      polynomial `brainfuse_jax.fast_math.fast_exp` (relative error <= 4e-7); default False.
    - `calcium`: optional `CalciumPool`. The state then holds `"cai"` (mM), the Ca current of the
      channels whose `ion` is `"ca"` feeds it, and channels with `"cai"` in their `rate_args`
      (SK, BK) read it. With `"neuron"`/`"backward_euler"` one step does, as NEURON's `fadvance`:
      currents (and I_Ca) at V_n with the gates and E_Ca of step n; implicit V; the pool by
      backward Euler (NMODL `derivimplicit`) with that I_Ca; then the gates at the new V and the
      new [Ca]i (NEURON integrates the mechanisms in registration order: this is the order when
      the pool's mechanism registers before the Ca-dependent channels).

    Gates returned as `Instantaneous(inf)` are kept in the state and set to `inf` at the new V
    (and [Ca]i) after every step, so the current of a step uses `inf(V_n)` (`rk4` and
    `derivatives` use `inf(V)` at every evaluation).
    """

    #: `state["v"]` is the membrane potential in mV. No event ports (`receptors = ()`): networks
    #: drive a point neuron through network-side synapses that add a current to `x`.
    voltage_unit: ClassVar[str | None] = "mV"

    channels: dict[str, Channel]
    c_m: Float[Array, "*n"] = param(1.0, "c_m", "uF/cm2", low="positive")
    temperature: Float[Array, ""] = param(6.3, "temperature", "degC")
    spike_threshold: Float[Array, "*n"] = param(0.0, "spike_threshold", "mV")
    scheme: AbstractScheme = eqx.field(default="neuron", static=True, converter=as_scheme)
    surrogate: Surrogate = Surrogate("atan", 0.5)
    calcium: CalciumPool | None = None
    fast_exp: bool = eqx.field(default=False, static=True)
    decay: str = eqx.field(default="exp", static=True)

    def __check_init__(self):
        if not isinstance(self.channels, dict) or not self.channels:
            raise TypeError("channels must be a non-empty dict of name -> Channel")
        for name, ch in self.channels.items():
            if not isinstance(ch, Channel):
                raise TypeError(f"channels[{name!r}] must be a Channel, got {type(ch).__name__}")
            if not isinstance(name, str) or name in ("v", "cai"):
                raise ValueError(f"channel names must be strings other than 'v' and 'cai', got {name!r}")
            if "cai" in ch.rate_args:
                if self.calcium is None:
                    raise ValueError(f"channels[{name!r}] ({type(ch).__name__}) depends on intracellular Ca: "
                                     "pass calcium=CalciumPool(...)")
                if ch.table is not None:
                    raise ValueError(f"channels[{name!r}] ({type(ch).__name__}) depends on [Ca]i, which a rate "
                                     "table over V cannot hold: set its table to None")
        if self.calcium is not None and not isinstance(self.calcium, CalciumPool):
            raise TypeError(f"calcium must be a CalciumPool or None, got {type(self.calcium).__name__}")
        check_decay(self.decay)

    # ---- state -------------------------------------------------------------------------------
    def init_state(self, batch_shape, dtype=None, v0: Float[ArrayLike, "*b"] = -65.0) -> State:
        """Resting state: V = `v0` (mV), [Ca]i = the pool's `cai_rest` (if any) and every gate at
        its steady state there.

        With a scheme that uses rate tables (`"neuron"`, `"crank_nicolson"`) the steady state comes
        from the tables, as NEURON's `finitialize` does.
        """
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        v = jnp.broadcast_to(jnp.asarray(v0, dtype), shape)
        check_finite(v, "v0")
        return _resting_state(self, v)

    # ---- dynamics ----------------------------------------------------------------------------
    def _kinetics(self, v, cai=None, only=None) -> dict[str, dict[str, GateKinetics]]:
        """inf and tau of every gate at `v` (mV) and `cai` (mM), from the rate tables where the
        scheme uses them; `only`: the channels to evaluate (default all)."""
        return channel_kinetics(self.channels, v, self.temperature.astype(v.dtype), cai,
                                tables=self.scheme.tables, only=only)

    def _channel_terms(self, gates, state, dtype):
        """Per channel: (name, channel, conductance g (mS/cm2), reversal potential E (mV))."""
        e_ca = None
        if self.calcium is not None and self.calcium.nernst:
            e_ca = self.calcium.reversal(state["cai"], self.temperature.astype(dtype))
        terms = []
        for c, ch in self.channels.items():
            g = ch.conductance(gates[c]).astype(dtype)
            e = e_ca if (e_ca is not None and ch.ion == "ca") else jnp.asarray(ch.e_rev, dtype)
            terms.append((c, ch, g, e))
        return terms

    def _conductances(self, state):
        """From the gates of `state`: total conductance G (mS/cm2), G*E (uA/cm2) and the Ca current
        at V (uA/cm2; None without a Ca pool)."""
        v = state["v"]
        terms = self._channel_terms({c: state[c] for c in self.channels}, state, v.dtype)
        G, GE = 0.0, 0.0
        for _, _, g, e in terms:
            G = G + g
            GE = GE + g * e
        i_ca = self._ca_current(terms, v) if self.calcium is not None else None
        return G, GE, i_ca

    @staticmethod
    def _ca_current(terms, v):
        """The summed current (uA/cm2) of the channels carrying Ca, at `v` (mV)."""
        i_ca = jnp.zeros_like(v)
        for _, ch, g, e in terms:
            if ch.ion == "ca":
                i_ca = i_ca + g * (v - e)
        return i_ca

    def _derivatives(self, state, x):
        v = state["v"]
        cai = state.get("cai")
        kin = self._kinetics(v, cai)
        gates = {c: {g: (k.inf if k.tau is None else state[c][g]) for g, k in gk.items()} for c, gk in kin.items()}
        terms = self._channel_terms(gates, state, v.dtype)
        i_ion = 0.0
        for _, _, g, e in terms:
            i_ion = i_ion + g * (v - e)
        out = {"v": (x - i_ion) / self.c_m.astype(v.dtype)}
        if self.calcium is not None:
            out["cai"] = self.calcium.derivative(cai, self._ca_current(terms, v))
        for c, gk in kin.items():
            out[c] = {g: (jnp.zeros_like(v) if k.tau is None else (k.inf - state[c][g]) / k.tau)
                      for g, k in gk.items()}
        return out, kin

    def derivatives(self, state: State, x: Float[Array, "*b"]) -> State:
        """Time derivatives of the state (mV/ms, mM/ms and 1/ms) under input `x` (uA/cm2).
        Instantaneous gates enter as inf(V) and have derivative 0."""
        return self._derivatives(state, x)[0]

    def _advance_gates(self, state, kin, dt):
        """`cnexp` for each gate of `kin` from its value in `state`, with this neuron's `decay`
        (`neurons._membrane.advance_gates`); instantaneous gates jump to inf."""
        return advance_gates(state, kin, dt, self.decay)

    def _instant_to_inf(self, gates, kin, v, cai=None):
        """`gates` with the instantaneous gates of `kin`'s channels set to inf at `v` (and `cai`)."""
        instant = instant_channels(kin)
        if instant:
            gates = dict(gates)
            kin_new = self._kinetics(v, cai, only=instant)
            for c in instant:
                gates[c] = {g: (k.inf if k.tau is None else gates[c][g]) for g, k in kin_new[c].items()}
        return gates

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance by `dt` (ms) under current density `x` (uA/cm2); returns `(state, spike)`."""
        if not self.fast_exp:
            return self._step(state, x, dt)
        params, static = eqx.partition(self, eqx.is_array)
        if isinstance(dt, (int, float)):  # keep a Python dt static
            return with_fast_exp(lambda p, s, x_: eqx.combine(p, static)._step(s, x_, dt))(params, state, x)
        return with_fast_exp(lambda p, s, x_, dt_: eqx.combine(p, static)._step(s, x_, dt_))(params, state, x, dt)

    def _step(self, state, x, dt):
        v = state["v"]
        dtype = v.dtype
        x = jnp.asarray(x, dtype)
        check_step_input(self, state, x)
        dt = check_dt(dt).astype(dtype)
        new = self.scheme.step(self, state, x, dt)
        return new, spike_output(self.surrogate, v, new["v"], self.spike_threshold.astype(dtype))


@eqx.filter_jit
def _resting_state(model: PointNeuron, v) -> State:
    # One compiled call instead of dozens of eager ops (matters outside jit).
    cai = None
    if model.calcium is not None:
        cai = jnp.broadcast_to(model.calcium.cai_rest.astype(v.dtype), v.shape)
    kin = model._kinetics(v, cai)
    return {"v": v, **({} if cai is None else {"cai": cai}),
            **{c: {g: k.inf for g, k in gk.items()} for c, gk in kin.items()}}


#: `HH`'s parameter arguments and the parameter name each sets (`brainfuse_jax.params`).
HH_PARAMETERS = {"g_na": "na.gbar", "g_k": "k.gbar", "g_l": "leak.gbar", "e_na": "na.e_rev", "e_k": "k.e_rev",
                 "e_l": "leak.e_rev", "c_m": "c_m", "temperature": "temperature"}


def HH(
    g_na: Float[ArrayLike, "*n"] = 120.0,
    g_k: Float[ArrayLike, "*n"] = 36.0,
    g_l: Float[ArrayLike, "*n"] = 0.3,
    e_na: Float[ArrayLike, "*n"] = 50.0,
    e_k: Float[ArrayLike, "*n"] = -77.0,
    e_l: Float[ArrayLike, "*n"] = -54.387,
    c_m: Float[ArrayLike, "*n"] = 1.0,
    temperature: float = 6.3,
    scheme: Scheme = "neuron",
    **kwargs,
) -> PointNeuron:
    """The Hodgkin-Huxley (1952) squid-axon neuron as a `PointNeuron` of `HHNa`, `HHK`, `Leak`.

    Defaults are HH 1952 in NEURON's convention (rest -65 mV): conductances in mS/cm2
    (120, 36, 0.3), reversal potentials in mV (50, -77, -54.387), `c_m` in uF/cm2,
    `temperature` in degC (q10 = 3 relative to 6.3 degC). Parameters may be arrays, one value
    per neuron. `scheme` and the other keyword arguments of `PointNeuron` (`spike_threshold`,
    `surrogate`, `calcium`, `fast_exp`, `decay`) are passed to it; any other keyword raises a
    `TypeError` listing the valid ones, closest first.
    The state is `{"v", "na": {"m", "h"}, "k": {"n"}, "leak": {}}`.

    **Parameter names.** The arguments are shorthands; the model's parameters have one name each
    (`brainfuse_jax.params.names(HH())`, the names `fit`, `sweep` and `Cell.set` take, and, with
    dots as underscores, the C symbols and NIR keys):

    | argument | parameter | unit |
    |---|---|---|
    | `g_na`, `g_k`, `g_l` | `"na.gbar"`, `"k.gbar"`, `"leak.gbar"` | mS/cm2 |
    | `e_na`, `e_k`, `e_l` | `"na.e_rev"`, `"k.e_rev"`, `"leak.e_rev"` | mV |
    | `c_m`, `temperature`, `spike_threshold` | `"c_m"`, `"temperature"`, `"spike_threshold"` | uF/cm2, degC, mV |

    (`HH_PARAMETERS` holds this table.)
    """
    _check_kwargs("HH", kwargs, {**HH_PARAMETERS, "scheme": None, **{k: None for k in _NEURON_KWARGS}})
    return PointNeuron(
        channels={"na": HHNa(g_na, e_na), "k": HHK(g_k, e_k), "leak": Leak(g_l, e_l)},
        c_m=c_m, temperature=temperature, scheme=scheme, **kwargs,
    )


def _check_kwargs(model: str, kwargs, valid: dict[str, str | tuple[str, ...] | None], *, prefix: str = ""):
    """`UnknownArgumentError` (a `TypeError`) for keywords of `kwargs` not in `valid` (argument ->
    the parameter name(s) it sets, or None), listing the valid arguments closest first."""
    from ..params import UnknownArgumentError, unknown_name_error

    unknown = [k for k in kwargs if k not in valid]
    if not unknown:
        return

    def sets(arg):
        target = valid[arg]
        if target is None or target == arg:
            return ""
        return f" (sets {', '.join(repr(t) for t in ((target,) if isinstance(target, str) else target))})"

    what = prefix or f"{model}() got unexpected keyword argument(s) {unknown}"
    raise unknown_name_error("", what, unknown[0], valid, kind=f"{model}'s keyword arguments",
                             error=UnknownArgumentError, describe=sets)


# Pospischil et al. (2008), Biol. Cybern. 99, 427-441: the four cell-class models (conductances
# mS/cm2, potentials mV, tau_max ms; all at 36 degC with E_Na = 50, E_Ca = 120 mV, C_m = 1 uF/cm2).
# RS, FS, LTS: the values fitted in the paper (as tabulated by Lemaire et al. 2019, J. Neural Eng.
# 16, 046007). IB: the authors' NEURON model (ModelDB 123623, sPYb_template + demo_PY_IB.hoc:
# "gcabar_ical = 1.7e-4 -> one burst, then RS"), whose Ca pool sets E_Ca by Nernst.
_POSPISCHIL_COMMON = dict(e_na=50.0, e_k=-90.0, e_ca=120.0, c_m=1.0, temperature=36.0)
_POSPISCHIL = {
    "RS": dict(g_leak=0.0205, e_leak=-70.3, g_na=56.0, g_kd=6.0, g_m=0.075, tau_max=608.0, v_t=-56.2),
    "FS": dict(g_leak=0.038, e_leak=-70.4, g_na=58.0, g_kd=3.9, g_m=0.0787, tau_max=502.0, v_t=-57.9),
    "IB": dict(g_leak=0.01, e_leak=-85.0, g_na=50.0, g_kd=5.0, g_m=0.03, tau_max=1000.0, v_t=-55.0, g_cal=0.17,
               e_k=-100.0),
    "LTS": dict(g_leak=0.019, e_leak=-50.0, g_na=50.0, g_kd=4.0, g_m=0.028, tau_max=4000.0, v_t=-50.0,
                g_cat=0.4, v_x=-7.0),
}
_POSPISCHIL_REST = {"RS": -71.9, "FS": -71.4, "IB": -85.3, "LTS": -54.0}  # mV, measured (docs)
_NEURON_KWARGS = ("scheme", "spike_threshold", "surrogate", "calcium", "fast_exp", "decay")
#: `Pospischil`'s parameter arguments and the parameter name(s) each sets (`v_t` and `e_k` set
#: two parameters, which `fit` and `sweep` may then vary apart).
POSPISCHIL_PARAMETERS = {
    "g_leak": "leak.gbar", "e_leak": "leak.e_rev", "g_na": "na.gbar", "g_kd": "kd.gbar", "g_m": "km.gbar",
    "tau_max": "km.tau_max", "v_t": ("na.v_t", "kd.v_t"), "g_cal": "cal.gbar", "g_cat": "cat.gbar",
    "v_x": "cat.v_x", "e_na": "na.e_rev", "e_k": ("kd.e_rev", "km.e_rev"), "e_ca": ("cal.e_rev", "cat.e_rev"),
    "c_m": "c_m", "temperature": "temperature"}
_POSPISCHIL_PARAMS = tuple(POSPISCHIL_PARAMETERS)


def Pospischil(cell_class: str = "RS", **kwargs) -> PointNeuron:
    """A cortical neuron of one of the four classes of Pospischil et al. (2008), the "BC2008"
    minimal models used in cortical network simulations, as a `PointNeuron`.

    | `cell_class` | channels (state keys) | under a depolarising step | rest (mV) |
    |---|---|---|---|
    | `"RS"` regular spiking | `na`, `kd`, `km`, `leak` | spike-frequency adaptation (IM) | -71.9 |
    | `"FS"` fast spiking | `na`, `kd`, `km`, `leak` | fast tonic firing | -71.4 |
    | `"IB"` intrinsically bursting | + `cal` (ICaL), Ca pool (`"cai"`) | initial burst, then regular spikes | -85.3 |
    | `"LTS"` low-threshold spike | + `cat` (ICaT) | rebound burst after hyperpolarisation | -54.0 |

    Channels: `PospischilNa`, `PospischilKd`, `PospischilM` (IM), `Leak`, `PospischilCaL`,
    `PospischilCaT`; 36 degC, E_Na = 50 mV, E_Ca = 120 mV, C_m = 1 uF/cm2. Parameters
    (mS/cm2, mV, ms):

    | | g_leak | e_leak | g_na | g_kd | g_m | tau_max | v_t | e_k | other |
    |---|---|---|---|---|---|---|---|---|---|
    | RS | 0.0205 | -70.3 | 56 | 6 | 0.075 | 608 | -56.2 | -90 | |
    | FS | 0.038 | -70.4 | 58 | 3.9 | 0.0787 | 502 | -57.9 | -90 | |
    | IB | 0.01 | -85 | 50 | 5 | 0.03 | 1000 | -55 | -100 | g_cal 0.17; Ca pool |
    | LTS | 0.019 | -50 | 50 | 4 | 0.028 | 4000 | -50 | -90 | g_cat 0.4, v_x -7 |

    RS, FS and LTS are the paper's fitted models; IB is the authors' published NEURON model of
    the class (ModelDB 123623: ICaL of 0.17 mS/cm2 gives "one burst, then RS"), with its Ca pool
    (`CalciumPool(tau=5, depth=1, nernst=True)`: E_Ca from [Ca]i, 120 mV at rest).

    Any parameter (and `e_na`, `e_k`, `e_ca`, `c_m` in uF/cm2, `temperature` in degC, `g_cal` /
    `g_cat` to add a Ca current to any class) can be overridden by keyword, scalars or arrays
    (one value per neuron); `scheme`, `spike_threshold`, `surrogate` and `calcium` go to
    `PointNeuron` (`calcium=None` removes IB's pool). An unknown `cell_class` raises
    `ValueError`, an unknown keyword a `TypeError` (also a `ValueError`) listing the valid ones,
    closest first. Start at rest, `init_state(B, v0=rest)`: IM relaxes with tau up to `tau_max`.

    **Parameter names** (`brainfuse_jax.params`, what `fit` and `sweep` take): `g_leak` ->
    `"leak.gbar"`, `e_leak` -> `"leak.e_rev"`, `g_na` -> `"na.gbar"`, `g_kd` -> `"kd.gbar"`,
    `g_m` -> `"km.gbar"`, `tau_max` -> `"km.tau_max"`, `v_t` -> `"na.v_t"` and `"kd.v_t"`,
    `e_na` -> `"na.e_rev"`, `e_k` -> `"kd.e_rev"` and `"km.e_rev"`, `g_cal`/`g_cat` -> `"cal.gbar"`/
    `"cat.gbar"`, `e_ca` -> their `e_rev`, `v_x` -> `"cat.v_x"`, and `c_m`, `temperature`,
    `spike_threshold`, `calcium.tau` ... under their own names (`POSPISCHIL_PARAMETERS`).
    """
    if not isinstance(cell_class, str) or cell_class not in _POSPISCHIL:
        raise ValueError(f"cell_class must be one of {tuple(_POSPISCHIL)}, got {cell_class!r}")
    neuron_kwargs = {k: kwargs.pop(k) for k in _NEURON_KWARGS if k in kwargs}
    unknown = sorted(set(kwargs) - set(_POSPISCHIL_PARAMS))
    if unknown:
        _check_kwargs("Pospischil", kwargs, {**POSPISCHIL_PARAMETERS, **{k: None for k in _NEURON_KWARGS}},
                      prefix=f"unknown Pospischil parameter(s) {unknown}")
    if cell_class == "IB":
        neuron_kwargs.setdefault("calcium", CalciumPool(tau=5.0, depth=1.0, cai_rest=2.4e-4, nernst=True))
    p = {**_POSPISCHIL_COMMON, **_POSPISCHIL[cell_class], **kwargs}
    channels: dict[str, Channel] = {
        "na": PospischilNa(p["g_na"], p["e_na"], p["v_t"]),
        "kd": PospischilKd(p["g_kd"], p["e_k"], p["v_t"]),
        "km": PospischilM(p["g_m"], p["e_k"], p["tau_max"]),
        "leak": Leak(p["g_leak"], p["e_leak"]),
    }
    if "g_cal" in p:
        channels["cal"] = PospischilCaL(p["g_cal"], p["e_ca"])
    if "g_cat" in p:
        channels["cat"] = PospischilCaT(p["g_cat"], p["e_ca"], p.get("v_x", 2.0))
    elif "v_x" in kwargs:
        raise ValueError("v_x shifts the T current: pass g_cat as well (only the LTS class has one)")
    return PointNeuron(channels=channels, c_m=p["c_m"], temperature=p["temperature"], **neuron_kwargs)


def PospischilRS(**kwargs) -> PointNeuron:
    """Pospischil et al. (2008) regular-spiking (adapting) cortical neuron: `Pospischil("RS", ...)`."""
    return Pospischil("RS", **kwargs)


def PospischilFS(**kwargs) -> PointNeuron:
    """Pospischil et al. (2008) fast-spiking cortical neuron: `Pospischil("FS", ...)`."""
    return Pospischil("FS", **kwargs)


def PospischilIB(**kwargs) -> PointNeuron:
    """Pospischil et al. (2008) intrinsically bursting cortical neuron (with ICaL):
    `Pospischil("IB", ...)`."""
    return Pospischil("IB", **kwargs)


def PospischilLTS(**kwargs) -> PointNeuron:
    """Pospischil et al. (2008) low-threshold-spike cortical neuron (with ICaT, rebound bursts):
    `Pospischil("LTS", ...)`."""
    return Pospischil("LTS", **kwargs)
