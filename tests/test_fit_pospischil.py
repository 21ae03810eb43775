"""Acceptance (issue 3, fitting 2): a Pospischil et al. (2008) regular-spiking cell simulated by
NEURON (the NMODL files of tests/nmodl/, compiled with nrnivmodl) with non-default g_Na, g_Kd, g_M
and tau_max; `fit` recovers all four within 5%.

Protocol: two 400 ms sweeps of fluctuating current (Ornstein-Uhlenbeck, SD 2.5 uA/cm2, tau 3 ms)
on top of a step (0.5 and 1.5 uA/cm2 from 50 to 300 ms), played into an IClamp with
`Vector.play` (step k uses sample k, as `fit` assumes). The noise locks the spike times to the
stimulus, which keeps the MSE landscape smooth enough for gradient descent; the step's on and off
transitions inform the slow M current (g_M, tau_max). Four starts within +-30% of the truth, 300
iterations, float64. Slow (1.5-2.5 min on 2 cores): `python -m pytest -m slow
tests/test_fit_pospischil.py -s` prints the table.
"""

import time

import jax
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.fit import Bounded

from .test_fit import ou_current

DT = 0.025
TRUTH = {"na.gbar": 45.0, "kd.gbar": 7.5, "km.gbar": 0.12, "km.tau_max": 400.0}  # RS: 56, 6, 0.075, 608
PARAMS = {"na.gbar": Bounded(10.0, 200.0, "log"), "kd.gbar": Bounded(1.0, 30.0, "log"),
          "km.gbar": Bounded(0.01, 1.0, "log"), "km.tau_max": Bounded(50.0, 4000.0, "log")}
V0 = -70.0  # mV, finitialize(V0) / init_state(v0=V0)


def truth_model():
    return bf.PospischilRS(g_na=TRUTH["na.gbar"], g_kd=TRUTH["kd.gbar"], g_m=TRUTH["km.gbar"],
                           tau_max=TRUTH["km.tau_max"])


def stimuli(t_ms=400.0):
    n = int(round(t_ms / DT)) + 1
    t = np.arange(n) * DT
    return np.stack([ou_current(n, seed=seed, mu=0.0, sigma=2.5, tau=3.0) + amp * ((t >= 50) & (t < 300))
                     for seed, amp in enumerate((0.5, 1.5))])  # uA/cm2, (2, n)


def neuron_traces(model, stims):
    """V (mV) of NEURON's single-compartment version of `model` under each played stimulus row."""
    from neuron import h

    from ._nmodl import neuron_soma

    h.load_file("stdrun.hoc")
    soma = neuron_soma(model)
    seg = soma(0.5)
    h.dt, h.steps_per_ms = DT, 1.0 / DT
    h.cvode_active(0)
    h.secondorder = 0
    clamp = h.IClamp(seg)
    clamp.delay, clamp.dur = 0.0, 1e9
    area_cm2 = seg.area() * 1e-8
    out = []
    for x in stims:
        played = h.Vector(x * area_cm2 * 1e3)  # uA/cm2 -> nA
        played.play(clamp._ref_amp, h.dt)
        v = h.Vector().record(seg._ref_v)
        h.finitialize(V0)
        h.continuerun((len(x) - 1) * DT)
        out.append(np.array(v))
        played.play_remove()
    return np.array(out)


@pytest.mark.slow
def test_recovers_pospischil_rs_parameters_from_neuron(x64):
    pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")
    stims = stimuli()
    target = neuron_traces(truth_model(), stims)
    n_spikes = ((target[:, :-1] < 0) & (target[:, 1:] >= 0)).sum(axis=1)
    assert np.all(n_spikes >= 4), n_spikes
    # our model at the truth reproduces NEURON's trace (so the fit's optimum is the truth)
    assert np.abs(bf.fit.predict(truth_model(), stims, DT, v0=V0) - target).max() < 1e-5

    starts = bf.fit.sample_starts(PARAMS, 4, jax.random.key(0), around=truth_model(), spread=0.3)
    t0 = time.perf_counter()
    result = bf.fit.fit(bf.PospischilRS(), PARAMS, stims, target, dt=DT, n_steps=300, starts=starts,
                        progress=False)
    elapsed = time.perf_counter() - t0
    truth = np.array(list(TRUTH.values()))
    start_vals = np.stack([starts[n] for n in PARAMS], axis=1)
    fitted = np.stack([result.start_params[n] for n in PARAMS], axis=1)
    rel_err = fitted / truth - 1
    print(f"\nPospischil RS vs NEURON, 2 x 400 ms, spikes {n_spikes.tolist()}, 4 starts, 300 iterations: "
          f"{elapsed:.1f} s (compile {result.compile_time:.1f} s)")
    print(f"  parameters {list(PARAMS)}, truth {truth.tolist()}")
    for s in range(len(fitted)):
        print(f"  start {s}: {np.round((start_vals[s] / truth - 1) * 100, 1)} % -> error "
              f"{np.round(rel_err[s] * 100, 3)} %, loss {result.start_losses[s]:.3g} mV^2")
    print(f"  best: {result}")
    assert np.abs(start_vals / truth - 1).max() > 0.2
    best = np.abs(rel_err[result.best_start])
    assert best.max() < 0.05, best
