"""Intracellular calcium: a first-order submembrane pool (Destexhe's `cad.mod`) and Nernst E_Ca.

Destexhe, A., Babloyantz, A. & Sejnowski, T. J. (1993). Ionic mechanisms for intrinsic slow
oscillations in thalamic relay neurons. Biophys. J. 65, 1538-1552 (the pool); parameters of the
thalamocortical cell in Destexhe, A., Bal, T., McCormick, D. A. & Sejnowski, T. J. (1996). Ionic
mechanisms underlying synchronized oscillations and propagating waves in a model of ferret
thalamic slices. J. Neurophysiol. 76, 2049-2070.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._validate import param

FARADAY = 96485.33212331001  # C/mol (2019 SI, NEURON 9's FARADAY)
GAS_CONSTANT = 8.31446261815324  # J/(mol K) (2019 SI, NEURON 9's R)
# d[Ca]/dt (mM/ms) = _DRIVE * I (uA/cm2) / (2 F depth (um)): 1e4 in cad.mod's mA/cm2 units.
_DRIVE = 10.0


def nernst(c_in: Float[ArrayLike, "*b"], c_out: Float[ArrayLike, "*b"], celsius: Float[ArrayLike, ""],
           valence: int = 2) -> Float[Array, "*b"]:
    """Nernst reversal potential `1000 R T / (z F) ln(c_out / c_in)` in mV (concentrations in the
    same unit, temperature in degC), as NEURON's `nernst` with its 2019-SI constants."""
    c_in = jnp.asarray(c_in)
    ktf = 1000.0 * GAS_CONSTANT * (jnp.asarray(celsius, c_in.dtype) + 273.15) / FARADAY
    return ktf / valence * jnp.log(jnp.asarray(c_out, c_in.dtype) / c_in)


class CalciumPool(eqx.Module):
    r"""Submembrane Ca concentration `cai` (mM) in a shell of depth `depth` under the membrane:

    $$\frac{d[\mathrm{Ca}]_i}{dt} = \max\!\Big(0, -\frac{10\, I_\mathrm{Ca}}{2 F\, d}\Big)
      + \frac{[\mathrm{Ca}]_\infty - [\mathrm{Ca}]_i}{\tau}$$

    with `I_Ca` the summed current (uA/cm2) of the neuron's channels whose `ion` is `"ca"`, `d`
    in um and F in C/mol (Destexhe et al. 1993's `cad.mod` without the pump; inward Ca only:
    the drive cannot be negative). Put it in a neuron with `PointNeuron(..., calcium=pool)`; the
    state then holds `"cai"`.

    **Arguments:**
    - `tau`: decay (extrusion) time constant, ms, > 0 (default 5, Destexhe et al. 1996).
    - `depth`: shell depth, um, > 0 (default 0.1, `cad.mod`).
    - `cai_rest`: resting concentration `[Ca]_inf`, mM, > 0 (default 2.4e-4: E_Ca = 120 mV at
      36 degC with 2 mM outside).
    - `cao`: extracellular concentration, mM, > 0 (default 2), used when `nernst` is True.
    - `nernst`: if True, every `"ca"` channel uses the Nernst potential of `cai`/`cao` at the
      neuron's temperature instead of its own `e_rev` (NEURON's default when a mechanism writes
      `cai`); if False (default) each keeps its fixed `e_rev`.
    """

    tau: Float[Array, "*n"] = param(5.0, "CalciumPool.tau", "ms", low="positive")
    depth: Float[Array, "*n"] = param(0.1, "CalciumPool.depth", "um", low="positive")
    cai_rest: Float[Array, "*n"] = param(2.4e-4, "CalciumPool.cai_rest", "mM", low="positive")
    cao: Float[Array, "*n"] = param(2.0, "CalciumPool.cao", "mM", low="positive")
    nernst: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        if not isinstance(self.nernst, bool):
            raise TypeError(f"CalciumPool.nernst must be True or False, got {self.nernst!r}")

    def drive(self, i_ca: Float[Array, "*b"]) -> Float[Array, "*b"]:
        """Influx (mM/ms) carried by the Ca current `i_ca` (uA/cm2, inward negative)."""
        depth = self.depth.astype(i_ca.dtype)
        return jnp.maximum(-_DRIVE * i_ca / (2.0 * FARADAY * depth), 0.0)

    def derivative(self, cai: Float[Array, "*b"], i_ca: Float[Array, "*b"]) -> Float[Array, "*b"]:
        """d cai / dt in mM/ms."""
        dt = cai.dtype
        return self.drive(i_ca) + (self.cai_rest.astype(dt) - cai) / self.tau.astype(dt)

    def step_implicit(self, cai, i_ca, dt):
        """Backward Euler over `dt` (ms) with `i_ca` held: NMODL's `derivimplicit` (exact for
        this linear equation), used by the `"neuron"` and `"backward_euler"` schemes."""
        tau = self.tau.astype(cai.dtype)
        return (cai + dt * (self.drive(i_ca) + self.cai_rest.astype(cai.dtype) / tau)) / (1.0 + dt / tau)

    def step_exponential(self, cai, i_ca, dt):
        """Exact update over `dt` (ms) with `i_ca` held (the `"exp_euler"` scheme)."""
        tau = self.tau.astype(cai.dtype)
        c_inf = self.cai_rest.astype(cai.dtype) + tau * self.drive(i_ca)
        return c_inf + (cai - c_inf) * jnp.exp(-dt / tau)

    def reversal(self, cai: Float[Array, "*b"], celsius) -> Float[Array, "*b"]:
        """Nernst E_Ca (mV) of `cai` against `cao` at `celsius` (degC)."""
        return nernst(cai, self.cao.astype(cai.dtype), celsius, valence=2)
