"""The `Channel` abstraction: gates with alpha/beta or inf/tau kinetics, g * prod(x^p) * (V - E)."""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_finite, check_nonnegative


class AlphaBeta(NamedTuple):
    """Gate kinetics as opening/closing rates (1/ms) at the channel's reference temperature:
    dx/dt = alpha (1 - x) - beta x."""

    alpha: Array
    beta: Array


class InfTau(NamedTuple):
    """Gate kinetics as steady state (dimensionless) and time constant (ms) at the channel's
    reference temperature: dx/dt = (inf - x) / tau."""

    inf: Array
    tau: Array


class Instantaneous(NamedTuple):
    """A gate at its steady state at all times, x = inf(V) (e.g. the activation `s_inf^2` of
    Pospischil's T current). Integrators keep it in the state, refreshed at each step's new V
    (as NMODL files that assign `m = m_inf` in their state block do)."""

    inf: Array


class GateKinetics(NamedTuple):
    """What integrators use: steady state and time constant (ms), temperature already applied.
    `tau` is None for an `Instantaneous` gate. `rate` = 1/tau (1/ms) and `alpha` = inf/tau
    (1/ms) when the channel gives them directly (alpha + beta and alpha), so that integrators need
    not divide twice."""

    inf: Array
    tau: Array | None
    rate: Array | None = None
    alpha: Array | None = None


class Channel(eqx.Module):
    """An ion channel: `I = gbar * prod_k x_k^p_k * (V - e_rev)` in uA/cm2.

    A concrete channel declares `gbar` (mS/cm2) and `e_rev` (mV) fields, the class variable
    `gates` (gate name -> exponent p), and implements `rates(v)` returning, per gate, either
    `AlphaBeta(alpha, beta)` (1/ms) or `InfTau(inf, tau)` (-, ms) as plain `jnp` expressions of
    the membrane potential `v` (mV), or `Instantaneous(inf)` for a gate always at steady state.
    Temperature enters through `q10` relative to `temp_ref` (degC): rates are multiplied (time
    constants divided) by `q10 ** ((celsius - temp_ref) / 10)`; `q10` may also be a dict gate ->
    q10 when the gates scale differently. Integration, gradients and batching come from the neuron
    that holds the channel.

    `rate_args` names extra arguments of `rates` after `v`, in order: `"cai"` (intracellular Ca,
    mM; the neuron must then have a `CalciumPool`) and/or `"celsius"` (degC, for rates with a
    Boltzmann factor F/RT), e.g. `rate_args = ("cai",)` and `def rates(self, v, cai)`.
    `ion` names the ion carrying the current (`"na"`, `"k"`, `"ca"` or None); currents of `"ca"`
    channels feed the neuron's Ca pool.
    `table = (v_min, v_max, n)` mirrors NMODL's `TABLE ... FROM v_min TO v_max WITH n`: the
    neuron's `"neuron"` scheme then interpolates inf and tau linearly on that grid, as NEURON does.
    """

    gbar: eqx.AbstractVar[Float[Array, "*n"]]
    e_rev: eqx.AbstractVar[Float[Array, "*n"]]
    gates: ClassVar[dict[str, int]] = {}
    q10: ClassVar[float | dict[str, float]] = 3.0
    temp_ref: ClassVar[float] = 6.3
    table: ClassVar[tuple[float, float, int] | None] = None
    ion: ClassVar[str | None] = None
    rate_args: ClassVar[tuple[str, ...]] = ()

    def __check_init__(self):
        check_nonnegative(self.gbar, f"{type(self).__name__}.gbar", "mS/cm2")
        check_finite(self.e_rev, f"{type(self).__name__}.e_rev")

    @abc.abstractmethod
    def rates(self, v: Float[Array, "*b"], *args) -> dict[str, AlphaBeta | InfTau | Instantaneous]:
        """Kinetics of every gate at membrane potential `v` (mV) (and the `rate_args`),
        reference temperature."""

    def temperature_factor(self, celsius: Float[ArrayLike, ""], gate: str | None = None) -> Float[Array, ""]:
        """q10 ** ((celsius - temp_ref) / 10): the factor multiplying the rates (of `gate`, when
        `q10` is a dict per gate)."""
        q10 = self.q10
        if isinstance(q10, dict):
            if gate not in q10:
                raise ValueError(f"{type(self).__name__}.q10 is a dict per gate; gate {gate!r} is not in it")
            q10 = q10[gate]
        return jnp.asarray(q10, jnp.result_type(celsius)) ** ((celsius - self.temp_ref) / 10.0)

    def _rate_inputs(self, v, celsius, cai) -> tuple:
        args = []
        for name in self.rate_args:
            if name == "cai":
                if cai is None:
                    raise ValueError(f"{type(self).__name__} depends on intracellular Ca (rate_args "
                                     "contains 'cai'): give the neuron a calcium=CalciumPool(...)")
                args.append(jnp.asarray(cai, v.dtype))
            elif name == "celsius":
                args.append(jnp.asarray(celsius, v.dtype))
            else:
                raise ValueError(f"{type(self).__name__}.rate_args may hold 'cai' and 'celsius', got {name!r}")
        return tuple(args)

    def kinetics(self, v: Float[Array, "*b"], celsius: Float[ArrayLike, ""],
                 cai: Float[ArrayLike, "*b"] | None = None) -> dict[str, GateKinetics]:
        """Steady state and time constant (ms) of each gate at `v` (mV) and `celsius` (degC)
        (and intracellular Ca `cai`, mM, for channels whose `rate_args` hold "cai")."""
        out = {}
        for name, r in self.rates(v, *self._rate_inputs(v, celsius, cai)).items():
            if isinstance(r, Instantaneous):
                out[name] = GateKinetics(r.inf, None)
                continue
            phi = jnp.asarray(self.temperature_factor(celsius, name), v.dtype)
            if isinstance(r, AlphaBeta):
                total = r.alpha + r.beta
                out[name] = GateKinetics(r.alpha / total, 1.0 / (phi * total), phi * total, phi * r.alpha)
            elif isinstance(r, InfTau):
                out[name] = GateKinetics(r.inf, r.tau / phi)
            else:
                raise TypeError(f"{type(self).__name__}.rates must return AlphaBeta, InfTau or "
                                f"Instantaneous per gate, got {type(r).__name__} for gate {name!r}")
        if set(out) != set(self.gates):
            raise ValueError(f"{type(self).__name__}.rates returned gates {sorted(out)}, "
                             f"but the class declares gates {sorted(self.gates)}")
        return out

    def conductance(self, gates: dict[str, Float[Array, "*b"]]) -> Float[Array, "*b"]:
        """gbar * prod x^p in mS/cm2 for gate values `gates`."""
        g = jnp.asarray(self.gbar)
        for name, power in self.gates.items():
            g = g * gates[name] ** power
        return g

    def current(self, v: Float[Array, "*b"], gates: dict[str, Float[Array, "*b"]]) -> Float[Array, "*b"]:
        """Ionic current density in uA/cm2 (positive = outward)."""
        return self.conductance(gates) * (v - self.e_rev)
