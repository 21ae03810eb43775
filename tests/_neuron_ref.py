"""Drive the real NEURON simulator (from PyPI) for comparisons; imported only by tests."""

import math

import numpy as np


def hh_soma_steps(amps_uA_per_cm2, *, dt=0.025, tstop=150.0, delay=10.0, dur=100.0, celsius=6.3,
                  el=-54.387, gnabar=0.12, gkbar=0.036, gl=0.0003, v0=-65.0):
    """Single-compartment `hh` soma (area 100 um2) under IClamp steps; returns (t, V [n, T+1])."""
    from neuron import h

    h.load_file("stdrun.hoc")
    side = math.sqrt(100.0 / math.pi)
    soma = h.Section(name="soma")
    soma.L = soma.diam = side
    soma.nseg = 1
    soma.cm = 1.0
    soma.insert("hh")
    seg = soma(0.5)
    seg.hh.gnabar, seg.hh.gkbar, seg.hh.gl, seg.hh.el = gnabar, gkbar, gl, el
    seg.ena, seg.ek = 50.0, -77.0
    h.celsius = celsius
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.cvode_active(0)
    h.secondorder = 0
    stim = h.IClamp(seg)
    stim.delay, stim.dur = delay, dur
    area_cm2 = seg.area() * 1e-8
    t_vec = h.Vector().record(h._ref_t)
    v_vec = h.Vector().record(seg._ref_v)
    traces = []
    for a in amps_uA_per_cm2:
        stim.amp = a * area_cm2 * 1e3  # nA
        h.finitialize(v0)
        h.continuerun(tstop)
        traces.append(np.array(v_vec))
    return np.array(t_vec), np.array(traces)
