"""Potassium channels beyond the delayed rectifier: A-type (transient) and Ca-activated SK / BK.

Connor, J. A. & Stevens, C. F. (1971). Prediction of repetitive firing behaviour from voltage clamp
data on an isolated neurone soma. J. Physiol. 213, 31-53.
Connor, J. A., Walter, D. & McKown, R. (1977). Neural repetitive firing: modifications of the
Hodgkin-Huxley axon suggested by experimental results from crustacean axons. Biophys. J. 18, 81-102.
Destexhe, A., Contreras, D., Sejnowski, T. J. & Steriade, M. (1994). A model of spindle
rhythmicity in the isolated thalamic reticular nucleus. J. Neurophysiol. 72, 803-818.
Moczydlowski, E. & Latorre, R. (1983). Gating kinetics of Ca2+-activated K+ channels from rat
muscle incorporated into planar lipid bilayers. J. Gen. Physiol. 82, 511-542.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._base import AlphaBeta, Channel, InfTau
from ._calcium import FARADAY, GAS_CONSTANT


class ConnorStevensKA(Channel):
    r"""Transient (A-type) potassium current `gbar a^3 b (V - e_rev)` of Connor, Walter & McKown
    (1977), after Connor & Stevens (1971), in the form of Dayan & Abbott (2001, ch. 6):

    $$a_\infty = \Big(\frac{0.0761\, e^{(V + 94.22)/31.84}}{1 + e^{(V + 1.17)/28.93}}\Big)^{1/3},\quad
      \tau_a = 0.3632 + \frac{1.158}{1 + e^{(V + 55.96)/20.12}},$$
    $$b_\infty = \Big(\frac{1}{1 + e^{(V + 53.3)/14.54}}\Big)^4,\quad
      \tau_b = 1.24 + \frac{2.678}{1 + e^{(V + 50)/16.027}}.$$

    The model is Hodgkin & Huxley's axon at 18 degC modified for crustacean axons (Connor et al.
    1977), so the kinetics are taken at 18 degC with q10 = 3.

    **Arguments:** `gbar` (mS/cm2, default 47.7), `e_rev` (mV, default -75).
    """

    gbar: Float[Array, "*n"] = param(47.7, "ConnorStevensKA.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-75.0, "ConnorStevensKA.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"a": 3, "b": 1}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 18.0
    ion: ClassVar[str] = "k"

    def rates(self, v):
        a_inf = jnp.cbrt(0.0761 * jnp.exp((v + 94.22) / 31.84) / (1.0 + jnp.exp((v + 1.17) / 28.93)))
        b_inf = (1.0 / (1.0 + jnp.exp((v + 53.3) / 14.54))) ** 4
        return {
            "a": InfTau(a_inf, 0.3632 + 1.158 / (1.0 + jnp.exp((v + 55.96) / 20.12))),
            "b": InfTau(b_inf, 1.24 + 2.678 / (1.0 + jnp.exp((v + 50.0) / 16.027))),
        }


class DestexheSK(Channel):
    r"""Small-conductance (SK-type, slow AHP) Ca-activated potassium current `gbar m^2 (V - e_rev)`,
    voltage-independent (Destexhe et al. 1994, `iahp.mod`): closed + 2 Ca <-> open,

    $$m_\infty = \frac{c}{1 + c},\quad \tau_m = \max\Big(\frac{1}{\beta (1 + c)}, \tau_\min\Big),
      \quad c = ([\mathrm{Ca}]_i / c_{1/2})^2.$$

    Kinetics at 22 degC, q10 = 3. The neuron needs a `CalciumPool` (`rate_args = ("cai",)`).
    The floor `tau_min` applies at 22 degC (Destexhe's file applies it after the temperature
    factor; the two differ only where a floor is active: [Ca]i above ~0.2 mM at 36 degC).

    **Arguments:** `gbar` (mS/cm2, default 10), `e_rev` (mV, default -95), `beta` (1/ms, > 0,
    default 0.03, backward rate), `cac` (mM, > 0, default 0.025, half activation),
    `tau_min` (ms, > 0, default 0.1).
    """

    gbar: Float[Array, "*n"] = param(10.0, "DestexheSK.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-95.0, "DestexheSK.e_rev", "mV")
    beta: Float[Array, "*n"] = param(0.03, "DestexheSK.beta", "1/ms", low="positive")
    cac: Float[Array, "*n"] = param(0.025, "DestexheSK.cac", "mM", low="positive")
    tau_min: Float[Array, "*n"] = param(0.1, "DestexheSK.tau_min", "ms", low="positive")
    gates: ClassVar[dict[str, int]] = {"m": 2}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 22.0
    ion: ClassVar[str] = "k"
    rate_args: ClassVar[tuple[str, ...]] = ("cai",)

    def rates(self, v, cai):
        c = (cai / self.cac.astype(v.dtype)) ** 2
        tau = jnp.maximum(1.0 / (self.beta.astype(v.dtype) * (1.0 + c)), self.tau_min.astype(v.dtype))
        return {"m": InfTau(c / (1.0 + c), tau)}


class MoczydlowskiLatorreBK(Channel):
    r"""Large-conductance (BK-type) Ca- and voltage-activated potassium current `gbar o (V - e_rev)`
    (Moczydlowski & Latorre 1983, model 3, as in NEURON's `cagk.mod`):

    $$\alpha = \frac{\bar a}{1 + k_1 e^{-2 d_1 F V / RT} / [\mathrm{Ca}]_i},\quad
      \beta = \frac{\bar b}{1 + [\mathrm{Ca}]_i / (k_2 e^{-2 d_2 F V / RT})}.$$

    Temperature enters only through the Boltzmann factor F/RT at the neuron's temperature (the
    source has no q10: `q10 = 1`). The neuron needs a `CalciumPool`
    (`rate_args = ("cai", "celsius")`).

    **Arguments:** `gbar` (mS/cm2, default 10), `e_rev` (mV, default -77), `d1`, `d2`
    (electrical distances, default 0.84, 1.0), `k1`, `k2` (mM, > 0, default 0.18, 0.011),
    `abar`, `bbar` (1/ms, > 0, default 0.48, 0.28).
    """

    gbar: Float[Array, "*n"] = param(10.0, "MoczydlowskiLatorreBK.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-77.0, "MoczydlowskiLatorreBK.e_rev", "mV")
    d1: Float[Array, "*n"] = param(0.84, "MoczydlowskiLatorreBK.d1")
    d2: Float[Array, "*n"] = param(1.0, "MoczydlowskiLatorreBK.d2")
    k1: Float[Array, "*n"] = param(0.18, "MoczydlowskiLatorreBK.k1", "mM", low="positive")
    k2: Float[Array, "*n"] = param(0.011, "MoczydlowskiLatorreBK.k2", "mM", low="positive")
    abar: Float[Array, "*n"] = param(0.48, "MoczydlowskiLatorreBK.abar", "1/ms", low="positive")
    bbar: Float[Array, "*n"] = param(0.28, "MoczydlowskiLatorreBK.bbar", "1/ms", low="positive")
    gates: ClassVar[dict[str, int]] = {"o": 1}
    q10: ClassVar[float] = 1.0
    temp_ref: ClassVar[float] = 22.0
    ion: ClassVar[str] = "k"
    rate_args: ClassVar[tuple[str, ...]] = ("cai", "celsius")

    def rates(self, v, cai, celsius):
        dt = v.dtype
        z = 2e-3 * FARADAY * v / (GAS_CONSTANT * (celsius + 273.15))  # 2 F V / RT, V in mV
        # The same expressions as cagk.mod, arranged so that no exp() overflows into inf/inf.
        alpha = self.abar.astype(dt) / (1.0 + self.k1.astype(dt) / cai * jnp.exp(-self.d1.astype(dt) * z))
        beta = self.bbar.astype(dt) / (1.0 + cai / self.k2.astype(dt) * jnp.exp(self.d2.astype(dt) * z))
        return {"o": AlphaBeta(alpha, beta)}
