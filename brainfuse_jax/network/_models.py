"""Published network models built from `Network`."""

from __future__ import annotations

from ..neurons import IAFPscDelta
from ..synapses import Delta
from ._connect import FixedInDegree
from ._drive import PoissonDrive
from ._network import Network, Population, Projection


def brunel(J: float = 0.1, g: float = 5.0, eta: float = 2.0, *, NE: int = 4000, NI: int = 1000,
           epsilon: float = 0.1, delay: float = 1.5, dt: float = 0.1, tau_m: float = 20.0, theta: float = 20.0,
           V_reset: float = 10.0, t_ref: float = 2.0, seed: int = 0, spike_capacity: int | None = 2_000_000,
           dtype=None) -> Network:
    """Brunel (2000) model A, as NEST's `brunel_delta_nest` example builds it: `NE` excitatory and
    `NI` inhibitory `IAFPscDelta` neurons (`tau_m` ms, threshold `theta` mV, reset `V_reset` mV,
    `t_ref` ms, E_L = 0, V(0) = 0), each receiving `epsilon NE` excitatory synapses of `J` mV and
    `epsilon NI` inhibitory ones of `-g J` mV (fixed in-degree, autapses and multapses allowed),
    all with `delay` ms, and an independent Poisson input of rate `eta nu_thr C_E` (Hz) with
    `nu_thr = theta / (J C_E tau_m)` through synapses of `J` mV, delayed by `delay` too.
    `J` in mV, `g` and `eta` dimensionless. Spikes are recorded (`spike_capacity`, per run).
    """
    ce, ci = int(round(epsilon * NE)), int(round(epsilon * NI))
    nu_thr = theta / (J * ce * tau_m) * 1e3  # Hz
    rate = eta * nu_thr * ce
    neuron = IAFPscDelta(tau_m=tau_m, C_m=1.0, E_L=0.0, V_th=theta, V_reset=V_reset, t_ref=t_ref)
    populations = {"E": Population(neuron, NE), "I": Population(neuron, NI)}
    projections = [Projection(pre, post, FixedInDegree(k), Delta(), w, delay)
                   for pre, k, w in (("E", ce, J), ("I", ci, -g * J)) for post in ("E", "I")]
    drives = [PoissonDrive(p, rate, J, delay=delay) for p in ("E", "I")]
    return Network(populations, projections, dt=dt, drives=drives, seed=seed, spike_capacity=spike_capacity,
                   dtype=dtype)
