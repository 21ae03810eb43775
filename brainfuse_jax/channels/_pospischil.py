"""The minimal cortical channel set of Pospischil et al. (2008).

Pospischil, M., Toledo-Rodriguez, M., Monier, C., Piwkowska, Z., Bal, T., Fregnac, Y., Markram, H.
& Destexhe, A. (2008). Minimal Hodgkin-Huxley type models for different classes of cortical and
thalamic neurons. Biol. Cybern. 99, 427-441.

The paper gives the rates at 36 degC; the temperature factors are those of the authors' NEURON
files (ModelDB 123623): q10 = 3 for INa/IKd (`HH2.mod`), 2.3 for IM (`IM_cortex.mod`), 3 for the
T-current inactivation relative to 24 degC (the paper's factor 3.7 = 3^1.2), and 3 for ICaL (its
file has no temperature dependence: the factor is 1 at 36 degC). Units: v in mV, rates in 1/ms,
time constants in ms, conductances in mS/cm2. The neuron presets (RS, FS, IB, LTS) are
`brainfuse_jax.Pospischil`.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._math import vtrap
from .._validate import param
from ._base import AlphaBeta, Channel, InfTau, Instantaneous


class PospischilNa(Channel):
    r"""Fast sodium current `gbar m^3 h (V - e_rev)` (Traub & Miles 1991 kinetics shifted by
    the threshold parameter V_T), as in Pospischil et al. 2008:

    $$\alpha_m = \frac{-0.32 (V - V_T - 13)}{e^{-(V - V_T - 13)/4} - 1},\quad
      \beta_m = \frac{0.28 (V - V_T - 40)}{e^{(V - V_T - 40)/5} - 1},$$
    $$\alpha_h = 0.128\, e^{-(V - V_T - 17)/18},\quad \beta_h = \frac{4}{1 + e^{-(V - V_T - 40)/5}}.$$

    The 0/0 points of alpha_m (V = V_T + 13) and beta_m (V = V_T + 40) are evaluated with `vtrap`
    (finite value and gradient). q10 = 3 at 36 degC.

    **Arguments:** `gbar` (mS/cm2, default 56, the RS cell), `e_rev` (mV, default 50),
    `v_t` (mV, default -56.2, the RS cell).
    """

    gbar: Float[Array, "*n"] = param(56.0, "PospischilNa.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(50.0, "PospischilNa.e_rev", "mV")
    v_t: Float[Array, "*n"] = param(-56.2, "PospischilNa.v_t", "mV")
    gates: ClassVar[dict[str, int]] = {"m": 3, "h": 1}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 36.0
    ion: ClassVar[str] = "na"

    def rates(self, v):
        v2 = v - self.v_t.astype(v.dtype)
        return {
            "m": AlphaBeta(0.32 * vtrap(13.0 - v2, 4.0), 0.28 * vtrap(v2 - 40.0, 5.0)),
            "h": AlphaBeta(0.128 * jnp.exp((17.0 - v2) / 18.0), 4.0 / (1.0 + jnp.exp((40.0 - v2) / 5.0))),
        }


class PospischilKd(Channel):
    r"""Delayed-rectifier potassium current `gbar n^4 (V - e_rev)` (Traub & Miles 1991 with V_T),
    as in Pospischil et al. 2008:

    $$\alpha_n = \frac{-0.032 (V - V_T - 15)}{e^{-(V - V_T - 15)/5} - 1},\quad
      \beta_n = 0.5\, e^{-(V - V_T - 10)/40}.$$

    alpha_n's 0/0 point (V = V_T + 15) goes through `vtrap`. q10 = 3 at 36 degC.

    **Arguments:** `gbar` (mS/cm2, default 6, the RS cell), `e_rev` (mV, default -90),
    `v_t` (mV, default -56.2).
    """

    gbar: Float[Array, "*n"] = param(6.0, "PospischilKd.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-90.0, "PospischilKd.e_rev", "mV")
    v_t: Float[Array, "*n"] = param(-56.2, "PospischilKd.v_t", "mV")
    gates: ClassVar[dict[str, int]] = {"n": 4}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 36.0
    ion: ClassVar[str] = "k"

    def rates(self, v):
        v2 = v - self.v_t.astype(v.dtype)
        return {"n": AlphaBeta(0.032 * vtrap(15.0 - v2, 5.0), 0.5 * jnp.exp((10.0 - v2) / 40.0))}


class PospischilM(Channel):
    r"""Slow non-inactivating potassium current `gbar p (V - e_rev)` for spike-frequency
    adaptation (Yamada, Koch & Adams 1989), as in Pospischil et al. 2008:

    $$p_\infty = \frac{1}{1 + e^{-(V + 35)/10}},\quad
      \tau_p = \frac{\tau_\max}{3.3\, e^{(V + 35)/20} + e^{-(V + 35)/20}}.$$

    q10 = 2.3 at 36 degC.

    **Arguments:** `gbar` (mS/cm2, default 0.075, the RS cell), `e_rev` (mV, default -90),
    `tau_max` (ms, > 0, default 608, the RS cell).
    """

    gbar: Float[Array, "*n"] = param(0.075, "PospischilM.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-90.0, "PospischilM.e_rev", "mV")
    tau_max: Float[Array, "*n"] = param(608.0, "PospischilM.tau_max", "ms", low="positive")
    gates: ClassVar[dict[str, int]] = {"p": 1}
    q10: ClassVar[float] = 2.3
    temp_ref: ClassVar[float] = 36.0
    ion: ClassVar[str] = "k"

    def rates(self, v):
        x = (v + 35.0) / 20.0
        tau = self.tau_max.astype(v.dtype) / (3.3 * jnp.exp(x) + jnp.exp(-x))
        return {"p": InfTau(1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0)), tau)}


class PospischilCaL(Channel):
    r"""High-threshold (L-type) calcium current `gbar q^2 r (V - e_rev)` (Reuveni, Friedman,
    Amitai & Gutnick 1993, J. Neurosci. 13, 4609), as in Pospischil et al. 2008:

    $$\alpha_q = \frac{0.055 (-27 - V)}{e^{(-27 - V)/3.8} - 1},\quad \beta_q = 0.94\, e^{(-75 - V)/17},$$
    $$\alpha_r = 0.000457\, e^{(-13 - V)/50},\quad \beta_r = \frac{0.0065}{e^{(-15 - V)/28} + 1}.$$

    alpha_q's 0/0 point (V = -27 mV) goes through `vtrap`. Rates at 36 degC (q10 = 3 assumed;
    the source has none). Carries Ca (`ion = "ca"`): feeds a `CalciumPool` if the neuron has one.

    **Arguments:** `gbar` (mS/cm2, default 0.1, the IB cell), `e_rev` (mV, default 120).
    """

    gbar: Float[Array, "*n"] = param(0.1, "PospischilCaL.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(120.0, "PospischilCaL.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"q": 2, "r": 1}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 36.0
    ion: ClassVar[str] = "ca"

    def rates(self, v):
        return {
            "q": AlphaBeta(0.055 * vtrap(-27.0 - v, 3.8), 0.94 * jnp.exp((-75.0 - v) / 17.0)),
            "r": AlphaBeta(0.000457 * jnp.exp((-13.0 - v) / 50.0), 0.0065 / (jnp.exp((-15.0 - v) / 28.0) + 1.0)),
        }


class PospischilCaT(Channel):
    r"""Low-threshold (T-type) calcium current `gbar s_inf(V)^2 u (V - e_rev)` with instantaneous
    activation (Destexhe et al. 1996/1998 kinetics as simplified by Pospischil et al. 2008):

    $$s_\infty = \frac{1}{1 + e^{-(V + V_x + 57)/6.2}},\quad u_\infty = \frac{1}{1 + e^{(V + V_x + 81)/4}},$$
    $$\tau_u = \Big(30.8 + \frac{211.4 + e^{(V + V_x + 113.2)/5}}{1 + e^{(V + V_x + 84)/3.2}}\Big) / \phi,
      \quad \phi = 3^{(T - 24)/10}$$

    (phi = 3.74 at 36 degC; the paper writes 3.7). `V_x` shifts the voltage dependence.
    Carries Ca (`ion = "ca"`).

    **Arguments:** `gbar` (mS/cm2, default 0.4, the LTS cell), `e_rev` (mV, default 120),
    `v_x` (mV, default 2, the authors' `shift` for 2 mM external Ca; the LTS cell uses -7).
    """

    gbar: Float[Array, "*n"] = param(0.4, "PospischilCaT.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(120.0, "PospischilCaT.e_rev", "mV")
    v_x: Float[Array, "*n"] = param(2.0, "PospischilCaT.v_x", "mV")
    gates: ClassVar[dict[str, int]] = {"s": 2, "u": 1}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 24.0
    ion: ClassVar[str] = "ca"

    def rates(self, v):
        vx = v + self.v_x.astype(v.dtype)
        tau_u = 30.8 + (211.4 + jnp.exp((vx + 113.2) / 5.0)) / (1.0 + jnp.exp((vx + 84.0) / 3.2))
        return {
            "s": Instantaneous(1.0 / (1.0 + jnp.exp(-(vx + 57.0) / 6.2))),
            "u": InfTau(1.0 / (1.0 + jnp.exp((vx + 81.0) / 4.0)), tau_u),
        }
