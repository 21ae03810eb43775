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


class GateKinetics(NamedTuple):
    """What integrators use: steady state and time constant (ms), temperature already applied."""

    inf: Array
    tau: Array


class Channel(eqx.Module):
    """An ion channel: `I = gbar * prod_k x_k^p_k * (V - e_rev)` in uA/cm2.

    A concrete channel declares `gbar` (mS/cm2) and `e_rev` (mV) fields, the class variable
    `gates` (gate name -> exponent p), and implements `rates(v)` returning, per gate, either
    `AlphaBeta(alpha, beta)` (1/ms) or `InfTau(inf, tau)` (-, ms) as plain `jnp` expressions of
    the membrane potential `v` (mV). Temperature enters through `q10` relative to `temp_ref`
    (degC): rates are multiplied (time constants divided) by `q10 ** ((celsius - temp_ref) / 10)`.
    Integration, gradients and batching come from the neuron that holds the channel.
    `table = (v_min, v_max, n)` mirrors NMODL's `TABLE ... FROM v_min TO v_max WITH n`: the
    neuron's `"neuron"` scheme then interpolates inf and tau linearly on that grid, as NEURON does.
    """

    gbar: eqx.AbstractVar[Float[Array, "*n"]]
    e_rev: eqx.AbstractVar[Float[Array, "*n"]]
    gates: ClassVar[dict[str, int]] = {}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 6.3
    table: ClassVar[tuple[float, float, int] | None] = None

    def __check_init__(self):
        check_nonnegative(self.gbar, f"{type(self).__name__}.gbar", "mS/cm2")
        check_finite(self.e_rev, f"{type(self).__name__}.e_rev")

    @abc.abstractmethod
    def rates(self, v: Float[Array, "*b"]) -> dict[str, AlphaBeta | InfTau]:
        """Kinetics of every gate at membrane potential `v` (mV), reference temperature."""

    def temperature_factor(self, celsius: Float[ArrayLike, ""]) -> Float[Array, ""]:
        """q10 ** ((celsius - temp_ref) / 10): the factor multiplying every rate."""
        return jnp.asarray(self.q10, jnp.result_type(celsius)) ** ((celsius - self.temp_ref) / 10.0)

    def kinetics(self, v: Float[Array, "*b"], celsius: Float[ArrayLike, ""]) -> dict[str, GateKinetics]:
        """Steady state and time constant (ms) of each gate at `v` (mV) and `celsius` (degC)."""
        phi = jnp.asarray(self.temperature_factor(celsius), v.dtype)
        out = {}
        for name, r in self.rates(v).items():
            if isinstance(r, AlphaBeta):
                total = r.alpha + r.beta
                out[name] = GateKinetics(r.alpha / total, 1.0 / (phi * total))
            elif isinstance(r, InfTau):
                out[name] = GateKinetics(r.inf, r.tau / phi)
            else:
                raise TypeError(f"{type(self).__name__}.rates must return AlphaBeta or InfTau per gate, "
                                f"got {type(r).__name__} for gate {name!r}")
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
