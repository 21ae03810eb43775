"""Thalamic relay-cell channels: the T-type Ca current and Ih (Huguenard & McCormick kinetics
as used in Destexhe's thalamocortical models).

Huguenard, J. R. & McCormick, D. A. (1992). Simulation of the currents involved in rhythmic
oscillations in thalamic relay neurons. J. Neurophysiol. 68, 1373-1383.
Destexhe, A., Bal, T., McCormick, D. A. & Sejnowski, T. J. (1996). Ionic mechanisms underlying
synchronized oscillations and propagating waves in a model of ferret thalamic slices.
J. Neurophysiol. 76, 2049-2070.
Destexhe, A., Neubig, M., Ulrich, D. & Huguenard, J. (1998). Dendritic low-threshold calcium
currents in thalamic relay cells. J. Neurosci. 18, 3574-3588.
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._validate import param
from ._base import Channel, InfTau


class DestexheCaT(Channel):
    r"""T-type (low-threshold) calcium current of thalamocortical cells, `gbar m^2 h (V - E_Ca)`
    (Destexhe et al. 1996, 1998; kinetics of Huguenard & McCormick 1992, `IT.mod`), with
    `V_s = V + shift`:

    $$m_\infty = \frac{1}{1 + e^{-(V_s + 57)/6.2}},\quad
      \tau_m = 0.612 + \frac{1}{e^{-(V_s + 132)/16.7} + e^{(V_s + 16.8)/18.2}},$$
    $$h_\infty = \frac{1}{1 + e^{(V_s + 81)/4}},\quad
      \tau_h = \begin{cases} e^{(V_s + 467)/66.6} & V_s < -80 \\ 28 + e^{-(V_s + 22)/10.5} & \text{else}\end{cases}$$

    Kinetics at 24 degC with q10 = 5 for m and 3 for h (Coulter et al. 1989). The reversal
    potential is `e_rev`, or the Nernst potential of [Ca]i when the neuron's `CalciumPool` has
    `nernst=True` (as Destexhe's file computes it). Carries Ca (`ion = "ca"`).

    **Arguments:** `gbar` (mS/cm2, default 2, the relay cell), `e_rev` (mV, default 120),
    `shift` (mV, default 2: screening charge of 2 mM external Ca).
    """

    gbar: Float[Array, "*n"] = param(2.0, "DestexheCaT.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(120.0, "DestexheCaT.e_rev", "mV")
    shift: Float[Array, "*n"] = param(2.0, "DestexheCaT.shift", "mV")
    gates: ClassVar[dict[str, int]] = {"m": 2, "h": 1}
    q10: ClassVar[dict[str, float]] = {"m": 5.0, "h": 3.0}
    temp_ref: ClassVar[float] = 24.0
    ion: ClassVar[str] = "ca"

    def rates(self, v):
        vs = v + self.shift.astype(v.dtype)
        tau_m = 0.612 + 1.0 / (jnp.exp(-(vs + 132.0) / 16.7) + jnp.exp((vs + 16.8) / 18.2))
        tau_h = jnp.where(vs < -80.0, jnp.exp((jnp.minimum(vs, -80.0) + 467.0) / 66.6),
                          28.0 + jnp.exp(-(jnp.maximum(vs, -80.0) + 22.0) / 10.5))
        return {
            "m": InfTau(1.0 / (1.0 + jnp.exp(-(vs + 57.0) / 6.2)), tau_m),
            "h": InfTau(1.0 / (1.0 + jnp.exp((vs + 81.0) / 4.0)), tau_h),
        }


class HuguenardMcCormickIh(Channel):
    r"""Hyperpolarisation-activated cation current `gbar m (V - e_rev)` (Huguenard & McCormick
    1992; the voltage-dependent part of Destexhe et al. 1993/1996's Ih, without Ca regulation):

    $$m_\infty = \frac{1}{1 + e^{(V + 75)/5.5}},\quad
      \tau_m = \frac{1}{e^{-14.59 - 0.086 V} + e^{-1.87 + 0.0701 V}}.$$

    Kinetics at 36 degC, q10 = 3. Mixed Na/K current (`ion = None`).

    **Arguments:** `gbar` (mS/cm2, default 0.02, Destexhe et al. 1996's relay cell), `e_rev`
    (mV, default -43, Huguenard & McCormick 1992).
    """

    gbar: Float[Array, "*n"] = param(0.02, "HuguenardMcCormickIh.gbar", "mS/cm2", low="nonnegative")
    e_rev: Float[Array, "*n"] = param(-43.0, "HuguenardMcCormickIh.e_rev", "mV")
    gates: ClassVar[dict[str, int]] = {"m": 1}
    q10: ClassVar[float] = 3.0
    temp_ref: ClassVar[float] = 36.0

    def rates(self, v):
        tau = 1.0 / (jnp.exp(-14.59 - 0.086 * v) + jnp.exp(-1.87 + 0.0701 * v))
        return {"m": InfTau(1.0 / (1.0 + jnp.exp((v + 75.0) / 5.5)), tau)}
