"""Run library channels in a live NEURON: the NMODL files of tests/nmodl/, compiled once per process.

`load_mechanisms()` copies tests/nmodl/*.mod to a temporary directory, runs `nrnivmodl` there and
loads the result (NEURON can load a compiled directory only once per process, so the call is
cached). `neuron_soma(model)` builds a single-compartment NEURON cell (area 100 um2, as
tests/_neuron_ref.py) with the same channels, parameters, temperature and Ca pool as a
`PointNeuron`; `run_neuron` / `run_ours` run both under the same current pulses. Imported only by
tests (other tests, e.g. fitting, may reuse it to generate NEURON targets).
"""

from __future__ import annotations

import atexit
import functools
import math
import pathlib
import shutil
import subprocess
import tempfile

import jax.numpy as jnp
import numpy as np

import brainfuse_jax as bf
from brainfuse_jax import channels as C

NMODL_DIR = pathlib.Path(__file__).resolve().parent / "nmodl"
AREA_UM2 = 100.0

# channel class -> (NMODL suffix, ion whose reversal potential is e_rev (None: e_rev is a
# parameter), {our field: (NMODL range variable, scale)}); gbar mS/cm2 -> S/cm2.
MECHANISMS = {
    C.Leak: ("pas", None, {"gbar": ("g", 1e-3), "e_rev": ("e", 1.0)}),
    C.PospischilNa: ("bf_na_pos", "na", {"gbar": ("gbar", 1e-3), "v_t": ("vt", 1.0)}),
    C.PospischilKd: ("bf_kd_pos", "k", {"gbar": ("gbar", 1e-3), "v_t": ("vt", 1.0)}),
    C.PospischilM: ("bf_im_pos", "k", {"gbar": ("gbar", 1e-3), "tau_max": ("taumax", 1.0)}),
    C.PospischilCaL: ("bf_cal_pos", "ca", {"gbar": ("gbar", 1e-3)}),
    C.PospischilCaT: ("bf_cat_pos", "ca", {"gbar": ("gbar", 1e-3), "v_x": ("vx", 1.0)}),
    C.ConnorStevensKA: ("bf_ka_cs", "k", {"gbar": ("gbar", 1e-3)}),
    C.HuguenardMcCormickIh: ("bf_ih", None, {"gbar": ("gbar", 1e-3), "e_rev": ("eh", 1.0)}),
    C.DestexheCaT: ("bf_cat_des", "ca", {"gbar": ("gbar", 1e-3), "shift": ("shift", 1.0)}),
    C.DestexheSK: ("bf_kca_sk", "k", {"gbar": ("gbar", 1e-3), "beta": ("beta", 1.0), "cac": ("cac", 1.0),
                                      "tau_min": ("taumin", 1.0)}),
    C.MoczydlowskiLatorreBK: ("bf_kca_bk", "k", {"gbar": ("gbar", 1e-3), "d1": ("d1", 1.0), "d2": ("d2", 1.0),
                                                  "k1": ("k1", 1.0), "k2": ("k2", 1.0), "abar": ("abar", 1.0),
                                                  "bbar": ("bbar", 1.0)}),
}


@functools.cache
def load_mechanisms() -> str:
    """Compile tests/nmodl/*.mod with nrnivmodl (once per process) and load them into NEURON."""
    import neuron

    build = pathlib.Path(tempfile.mkdtemp(prefix="bf_nmodl_"))
    atexit.register(shutil.rmtree, build, ignore_errors=True)  # the loaded library stays mapped
    for mod in sorted(NMODL_DIR.glob("*.mod")):
        shutil.copy(mod, build)
    nrnivmodl = shutil.which("nrnivmodl")
    if nrnivmodl is None:
        raise RuntimeError("nrnivmodl not found (it comes with NEURON: pip install neuron)")
    proc = subprocess.run([nrnivmodl], cwd=build, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nrnivmodl failed in {build}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not neuron.load_mechanisms(str(build)):
        raise RuntimeError(f"neuron.load_mechanisms({build}) found no compiled library")
    return str(build)


def _scalar(x) -> float:
    arr = np.asarray(x, np.float64)
    if arr.size != 1:
        raise ValueError("the NEURON comparison builds one cell: parameters must be scalars")
    return float(arr.reshape(()))


def neuron_soma(model: bf.PointNeuron, pool_mechanism: str = "bf_cad"):
    """A NEURON section with `model`'s channels, capacitance, temperature and Ca pool
    (`pool_mechanism`: "bf_cad", backward Euler written out, or "bf_cad_di", derivimplicit)."""
    from neuron import h

    load_mechanisms()
    soma = h.Section(name="bf_soma")
    soma.L = soma.diam = math.sqrt(AREA_UM2 / math.pi)
    soma.nseg = 1
    soma.cm = _scalar(model.c_m)
    seg = soma(0.5)
    erev: dict[str, float] = {}
    for name, ch in model.channels.items():
        suffix, ion, fields = MECHANISMS[type(ch)]
        soma.insert(suffix)
        mech = getattr(seg, suffix)
        for field, (nrn_name, scale) in fields.items():
            setattr(mech, nrn_name, _scalar(getattr(ch, field)) * scale)
        if ion is not None:
            e = _scalar(ch.e_rev)
            if erev.setdefault(ion, e) != e:
                raise ValueError(f"NEURON shares one e{ion} per segment: channels disagree ({erev[ion]} vs {e})")
    pool = model.calcium
    if pool is not None:
        soma.insert(pool_mechanism)
        mech = getattr(seg, pool_mechanism)
        mech.depth, mech.taur, mech.cainf = _scalar(pool.depth), _scalar(pool.tau), _scalar(pool.cai_rest)
        h.cai0_ca_ion, h.cao0_ca_ion = _scalar(pool.cai_rest), _scalar(pool.cao)
        if not pool.nernst:  # keep eca a parameter although bf_cad writes cai
            h.ion_style("ca_ion", 3, 1, 0, 0, 1, sec=soma)
    for ion, e in erev.items():
        if not (ion == "ca" and pool is not None and pool.nernst):
            setattr(seg, f"e{ion}", e)
    h.celsius = _scalar(model.temperature)
    return soma


def pulse_inputs(pulses, n_steps: int, dt: float) -> np.ndarray:
    """(n_steps,) current density (uA/cm2): step k uses what an IClamp(del, dur, amp) gives at
    NEURON's mid-step time t_k + dt/2 (on for del <= t < del + dur)."""
    t_mid = (np.arange(n_steps) + 0.5) * dt
    out = np.zeros(n_steps)
    for delay, dur, amp in pulses:
        out += amp * ((t_mid >= delay) & (t_mid < delay + dur))
    return out


def run_neuron(model, protocols, *, dt=0.025, tstop=500.0, v0=-65.0, record=("v",), pool_mechanism="bf_cad"):
    """NEURON traces for each protocol (a list of (delay ms, dur ms, amp uA/cm2) pulses):
    dict name -> array (n_protocols, T + 1), samples at t = 0, dt, ..., T dt."""
    from neuron import h

    h.load_file("stdrun.hoc")
    soma = neuron_soma(model, pool_mechanism)
    seg = soma(0.5)
    h.dt, h.steps_per_ms = dt, 1.0 / dt
    h.cvode_active(0)
    h.secondorder = 0
    area_cm2 = seg.area() * 1e-8
    vecs = {name: h.Vector().record(getattr(seg, f"_ref_{name}")) for name in record}
    out = {name: [] for name in record}
    for pulses in protocols:
        stims = []
        for delay, dur, amp in pulses:
            stim = h.IClamp(seg)
            stim.delay, stim.dur, stim.amp = delay, dur, amp * area_cm2 * 1e3  # nA
            stims.append(stim)
        h.finitialize(v0)
        h.continuerun(tstop)
        for name in record:
            out[name].append(np.array(vecs[name]))
        del stims
    return {name: np.array(traces) for name, traces in out.items()}


def run_ours(model, protocols, *, dt=0.025, tstop=500.0, v0=-65.0, dtype=jnp.float64, record=("v",)):
    """Our traces for the same protocols (samples at t = 0, dt, ..., T dt)."""
    n_steps = int(round(tstop / dt))
    inputs = np.stack([pulse_inputs(p, n_steps, dt) for p in protocols])
    state0 = model.init_state(len(protocols), dtype=dtype, v0=v0)
    _, rec = bf.simulate(model, state0, jnp.asarray(inputs, dtype), dt, record=tuple(record))
    out = {}
    for name in record:
        node = state0
        for part in name.split("."):
            node = node[part]
        first = np.broadcast_to(np.asarray(node, np.float64)[:, None], (len(protocols), 1))
        out[name] = np.concatenate([first, np.asarray(rec[name], np.float64)], axis=1)
    return out


def crossings(v, dt=0.025, thr=0.0):
    """Upward crossings of `thr` (mV), linearly interpolated, in ms."""
    t = np.arange(v.shape[-1]) * dt
    i = np.nonzero((v[:-1] < thr) & (v[1:] >= thr))[0]
    return t[i] + (thr - v[i]) / (v[i + 1] - v[i]) * dt


def compare(ours, ref, dt=0.025, sub_threshold=-50.0):
    """Per protocol: (spike counts ours/NEURON, max spike-time difference ms, max |dV| over all
    samples, max |dV| over samples where both are below `sub_threshold` mV)."""
    rows = []
    for a, b in zip(ours, ref):
        ta, tb = crossings(a, dt), crossings(b, dt)
        if len(ta) != len(tb):
            dts = np.inf
        else:
            dts = float(np.abs(ta - tb).max()) if len(ta) else 0.0
        sub = (a < sub_threshold) & (b < sub_threshold)
        rows.append(dict(n_ours=len(ta), n_neuron=len(tb), dt_spike=dts, dv_max=float(np.abs(a - b).max()),
                         dv_sub=float(np.abs(a - b)[sub].max()) if sub.any() else 0.0))
    return rows
