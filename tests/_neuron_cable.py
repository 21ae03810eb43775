"""Live NEURON builds for the cable tests (imported only by tests; NEURON from PyPI)."""

import numpy as np


def ball_and_stick_neuron(*, iclamp_amp=0.0, syn="ExpSyn", syn_kw=None, events=(), weight=0.0,
                          syn_x=0.9, secondorder=0, tstop=100.0, dt=0.025, record_x=(0.1, 0.5, 0.9),
                          ra=100.0, g_pas=1e-4, alpha=None):
    """The ball-and-stick of ../shared/reference/scripts/ref_ball_and_stick.py, run live.

    `syn` is "ExpSyn" or "Exp2Syn" (driven by one NetStim per event time in `events`, NetCon
    delay 0, `weight` uS); `alpha=(onset, tau, gmax, e)` adds NEURON's AlphaSynapse at dend(syn_x).
    Returns (t, V [1 + len(record_x), T+1], i_syn [T+1]).
    """
    from neuron import h

    h.load_file("stdrun.hoc")
    h.celsius = 6.3
    h.dt = dt
    h.steps_per_ms = 1.0 / dt
    h.cvode_active(0)
    h.secondorder = secondorder
    soma = h.Section(name="soma")
    dend = h.Section(name="dend")
    soma.L = soma.diam = 20.0
    soma.nseg = 1
    dend.L, dend.diam, dend.nseg = 500.0, 2.0, 51
    for s in (soma, dend):
        s.Ra = ra
        s.cm = 1.0
    soma.insert("hh")
    for seg in soma:
        seg.hh.gnabar, seg.hh.gkbar, seg.hh.gl, seg.hh.el = 0.12, 0.036, 0.0003, -54.387
        seg.ena, seg.ek = 50.0, -77.0
    dend.insert("pas")
    for seg in dend:
        seg.pas.g, seg.pas.e = g_pas, -65.0
    dend.connect(soma(0.5), 0)
    stim = h.IClamp(soma(0.5))
    stim.delay, stim.dur, stim.amp = 10.0, 50.0, iclamp_amp
    keep = [soma, dend, stim]
    syn_obj = getattr(h, syn)(dend(syn_x))
    for k, val in (syn_kw or {}).items():
        setattr(syn_obj, k, val)
    keep.append(syn_obj)
    for te in events:  # one NetStim per event (VecStim needs compiled mod files)
        ns = h.NetStim()
        ns.start, ns.number, ns.interval, ns.noise = te, 1, 1e9, 0
        keep += [ns, h.NetCon(ns, syn_obj, 0, 0.0, weight)]
    if alpha is not None:
        a = h.AlphaSynapse(dend(syn_x))
        a.onset, a.tau, a.gmax, a.e = alpha
        keep.append(a)
    tv = h.Vector().record(h._ref_t)
    vv = [h.Vector().record(soma(0.5)._ref_v)] + [h.Vector().record(dend(x)._ref_v) for x in record_x]
    iv = h.Vector().record(syn_obj._ref_i)
    h.finitialize(-65.0)
    h.continuerun(tstop)
    out = np.array(tv), np.array([np.array(v) for v in vv]), np.array(iv)
    h.secondorder = 0
    del keep
    return out


class _Holder:
    """Import3d instantiates sections into this object; they are freed with it."""


def swc_cell_neuron(path, *, Ra=100.0, cm=1.0, d_lambda=0.1, freq=100.0, g_pas=1e-4, e_pas=-65.0,
                    stims=(), syn=None, record=(), tstop=200.0, dt=0.025, celsius=6.3):
    """An SWC cell loaded with NEURON's Import3d (`Import3d_SWC_read` + `Import3d_GUI`), nseg by
    the d_lambda rule, `pas` everywhere, `hh` (defaults, el -54.387) in the soma sections.

    `stims`: IClamps `(section, x, delay, dur, amp)`; `syn = (section, x, tau, e, t_event,
    weight)` an ExpSyn driven by one event (NetCon delay 0). `record` lists (section, x).
    Returns (t, V [len(record), T+1], {"nseg": total nseg, "area": total area um2}).
    """
    from neuron import h

    h.load_file("stdrun.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_SWC_read()
    reader.quiet = 1
    reader.input(str(path))
    cell = _Holder()
    h.Import3d_GUI(reader, False).instantiate(cell)
    prefix = len(str(cell)) + 1
    secs = {sec.name()[prefix:]: sec for sec in cell.all}
    keep = []
    try:
        h.celsius = celsius
        h.dt = dt
        h.steps_per_ms = 1.0 / dt
        h.cvode_active(0)
        h.secondorder = 0
        for name, sec in secs.items():
            sec.Ra = Ra
            sec.cm = cm
            sec.nseg = int((sec.L / (d_lambda * h.lambda_f(freq, sec=sec)) + 0.9) / 2) * 2 + 1
            sec.insert("pas")
            for seg in sec:
                seg.pas.g, seg.pas.e = g_pas, e_pas
            if name.startswith("soma"):
                sec.insert("hh")
                for seg in sec:
                    seg.hh.el = -54.387
                    seg.ena, seg.ek = 50.0, -77.0
        for sname, x, delay, dur, amp in stims:
            ic = h.IClamp(secs[sname](x))
            ic.delay, ic.dur, ic.amp = delay, dur, amp
            keep.append(ic)
        if syn is not None:
            sname, x, tau, e, te, w = syn
            es = h.ExpSyn(secs[sname](x))
            es.tau, es.e = tau, e
            ns = h.NetStim()
            ns.start, ns.number, ns.interval, ns.noise = te, 1, 1e9, 0
            keep += [es, ns, h.NetCon(ns, es, 0, 0.0, w)]
        tv = h.Vector().record(h._ref_t)
        vv = [h.Vector().record(secs[s](x)._ref_v) for s, x in record]
        h.finitialize(-65.0)
        h.continuerun(tstop)
        info = {"nseg": sum(sec.nseg for sec in secs.values()),
                "area": sum(seg.area() for sec in secs.values() for seg in sec)}
        return np.array(tv), np.array([np.array(v) for v in vv]), info
    finally:
        del keep
        secs.clear()
        del cell
