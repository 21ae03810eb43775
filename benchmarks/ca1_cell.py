#!/usr/bin/env python
"""Benchmark: the CA1 pyramidal cell (ca1_n120.swc) for 1 s, forward and gradient, brainfuse_jax
against NEURON (and CoreNEURON) and Jaxley.

Workload: `../shared/reference/morphologies/ca1_n120.swc` (read in place), sections as NEURON's
Import3d, nseg by the d_lambda rule (d_lambda 0.1 at 100 Hz, Ra 100 ohm cm, cm 1 uF/cm2), `pas`
everywhere (g 0.1 mS/cm2, e -65 mV), HH (`hh`, el -54.387 mV) in the soma sections, 6.3 degC,
exactly as tests/test_cable_swc.py. Protocol over T (1000 ms; 100 ms with --quick): somatic
current pulses (3 nA, 1 ms, every 25 ms from 10 ms to 0.85 T), and a distal ExpSyn (tau 2 ms, e 0 mV, 0.3 uS)
with an event at 0.9 T. dt = 0.025 ms, fixed-step backward Euler (NEURON's `secondorder = 0`).
V is recorded at the soma every step. Ours: `Cell` defaults (the tree solve as the compiled C++
kernel through XLA's FFI, built at first use) with the pulses as one IClamp pulse train; the row
`ours_f64_xla` is the XLA-only configuration (tree solve as XLA sweeps, one IClamp per pulse, as
NEURON is given them).

* forward: the simulation, V at the soma recorded every step.
* gradient: value_and_grad of loss = mean((V_soma - V_target)^2) over the whole run with respect
  to p = (log Ra scale, log dendritic g_pas scale); the target is the trace at p = (0.1, -0.1).
  The backward pass is chunked with `jax.checkpoint` (outer scan over chunks of 1000 steps), so
  memory is O(T / 1000 + 1000) states. NEURON has no gradient; the table lists the time of the
  forward runs a central finite difference would need (2 x P + 1 = 5) for comparison.

Everything runs pinned to one core (as benchmarks/hh_population.py); each implementation in its own
child process (`--worker NAME`, one `RESULT {json}` line). Each timed call is measured as wall time
and as the worker's CPU (process) time: the machine is shared, and CPU time leaves out the time a
worker waits for its core, so the table's ratios use it. Jaxley is run from a separate venv
(`/tmp/jaxley_venv`, `pip install jaxley`) so it cannot change our JAX; if it is missing the table
says so.

Usage:
    python benchmarks/ca1_cell.py            # full run (1 s); writes the docs/benchmarks.md section
    python benchmarks/ca1_cell.py --quick    # 100 ms, prints only
    python benchmarks/ca1_cell.py --only ours_f64,neuron
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

import _harness  # noqa: E402,F401  (pins one core before numpy/JAX/NEURON load)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SWC = os.path.normpath(os.path.join(ROOT, "..", "shared", "reference", "morphologies", "ca1_n120.swc"))
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
RESULTS_JSON = os.path.join(HERE, "results", "ca1_cell.json")
JAXLEY_PY = "/tmp/jaxley_venv/bin/python"

DT = 0.025
RA, CM, D_LAMBDA, FREQ = 100.0, 1.0, 0.1, 100.0
G_PAS, E_PAS = 0.1, -65.0  # mS/cm2, mV
CELSIUS = 6.3
PULSE_AMP, PULSE_DUR, PULSE_EVERY = 3.0, 1.0, 25.0  # nA, ms, ms
SYN_TAU, SYN_E, SYN_W = 2.0, 0.0, 0.3
P_TARGET = (0.1, -0.1)
CHUNK = 1000

ANCHORS = {
    "ours_f64": ("brainfuse_jax Cell (scheme=\"neuron\"; native tree solve, IClamp pulse train)", "ours",
                 dict(x64=True)),
    "ours_f32": ("brainfuse_jax Cell (scheme=\"neuron\"; native tree solve, IClamp pulse train)", "ours",
                 dict(x64=False)),
    "ours_f64_xla": ("brainfuse_jax Cell, backend=bf.XLA(): tree solve as XLA sweeps, one IClamp per pulse "
                     "(the previous default)", "ours", dict(x64=True, native=False, train=False)),
    "neuron": ("NEURON (Import3d, fixed step)", "neuron", dict(coreneuron=False)),
    "neuron_coreneuron": ("NEURON + CoreNEURON (in-memory)", "neuron", dict(coreneuron=True)),
    "jaxley": ("Jaxley (PyPI, separate venv)", "jaxley", {}),
}


def protocol(t_stop):
    """Somatic current pulses (delay, dur, amp) every PULSE_EVERY ms from 10 ms to 0.85 T, and the
    time of the distal synaptic event (0.9 T)."""
    pulses = [(float(t), PULSE_DUR, PULSE_AMP) for t in np.arange(10.0, 0.85 * t_stop, PULSE_EVERY)]
    return dict(pulses=pulses, syn_t=0.9 * t_stop)


# =================================================================================================
# workers
# =================================================================================================
def _sites(tree):
    dist, area = np.asarray(tree.dist_um), np.asarray(tree.area_um2)
    dendritic = np.flatnonzero((tree.swc_type >= 3) & (area > 0))
    far = dendritic[np.argmax(dist[dendritic])]
    distal = (tree.section_names[tree.section[far]], 0.9)
    soma = (next(s for s in tree.section_names if s.startswith("soma")), 0.5)
    return soma, distal


def worker_ours(t_stop, repeats, x64, trace_path, no_grad=False, native=None, train=True):
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import brainfuse_jax as bf
    from brainfuse_jax.morphology import Cell, ExpSyn, IClamp, read_swc

    dtype = jnp.float64 if x64 else jnp.float32
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        morph = read_swc(SWC)
    tree = morph.compartmentalize(d_lambda=D_LAMBDA, freq=FREQ, Ra=RA, cm=CM)
    soma, distal = _sites(tree)
    pr = protocol(t_stop)
    if train:  # the pulses as one IClamp pulse train (one process)
        delay, dur, amp = (np.asarray(z) for z in zip(*pr["pulses"]))
        pps = {"stim": IClamp(soma, delay=delay, dur=dur, amp=amp)}
    else:
        pps = {f"stim{k}": IClamp(soma, delay=d, dur=u, amp=a) for k, (d, u, a) in enumerate(pr["pulses"])}
    pps.update({"syn": ExpSyn(distal, tau=SYN_TAU, e=SYN_E, event_times=[pr["syn_t"]], weights=SYN_W)})
    cell = Cell(tree, temperature=CELSIUS, input_locs=(), point_processes=pps)
    backend = None if native is None else bf.NativeCPU() if native else bf.XLA()  # where the tree solve runs
    cell = cell.insert("pas", bf.Leak(G_PAS, E_PAS))
    cell = cell.insert("na", bf.HHNa(120.0, 50.0), "soma")
    cell = cell.insert("k", bf.HHK(36.0, -77.0), "soma")
    cell = cell.insert("leak", bf.Leak(0.3, -54.387), "soma")
    build_s = time.perf_counter() - t0
    n_steps = int(round(t_stop / DT))
    chunk = min(CHUNK, n_steps)
    n_chunks = n_steps // chunk
    assert n_chunks * chunk == n_steps
    probe = cell.probe("v", [soma])
    state0 = cell.init_state(1, dtype)
    x = jnp.zeros((1, chunk, 0), dtype)
    dend = jnp.asarray(np.asarray(cell.tree.swc_type) != 1)

    def run(cell):
        def body(state, _):
            state, rec = bf.simulate(cell, state, x, DT, record={"v": probe}, backend=backend)
            return state, rec["v"][0, :, 0]
        _, v = jax.lax.scan(body, state0, None, length=n_chunks)
        return v.reshape(-1)

    def build(p, base=cell):
        c = eqx.tree_at(lambda c: c.tree.ri_MOhm, base, base.tree.ri_MOhm * jnp.exp(p[0]))
        g = base.channels["pas"].gbar
        return eqx.tree_at(lambda c: c.channels["pas"].gbar, c, jnp.where(dend, g * jnp.exp(p[1]), g))

    # the gradient: autodiff through each chunk, rematerialised per chunk by jax.checkpoint
    # (simulate's own adjoint strategies are set aside, where this version of simulate has them)
    direct = {}
    if "adjoint" in inspect.signature(bf.simulate).parameters:
        from brainfuse_jax.adjoint import DirectAdjoint
        direct = {"adjoint": DirectAdjoint()}
    t = time.perf_counter()
    fwd = eqx.filter_jit(run).lower(cell).compile()
    compile_s = time.perf_counter() - t

    def run_ckpt(cell):
        @jax.checkpoint
        def body(state, _):
            state, rec = bf.simulate(cell, state, x, DT, record={"v": probe}, backend=backend, **direct)
            return state, rec["v"][0, :, 0]
        _, v = jax.lax.scan(body, state0, None, length=n_chunks)
        return v.reshape(-1)

    target = jax.block_until_ready(fwd(build(jnp.asarray(P_TARGET, dtype))))

    # the cell's arrays are arguments (traced), not constants baked into the program: XLA then
    # hoists the loop-invariant work (rate tables) out of the time loop, and compiles faster
    @eqx.filter_jit
    def value_and_grad(p, base):
        return jax.value_and_grad(lambda q: jnp.mean((run_ckpt(build(q, base)) - target) ** 2))(p)

    info = dict(compile_s=compile_s, dtype=str(jnp.dtype(dtype)), build_s=build_s, n_compartments=int(tree.n_compartments),
                n_nodes=int(tree.n_nodes), sites=[soma, distal])
    # forward
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        v = jax.block_until_ready(fwd(cell))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    info["walls_s"], info["cpu_s"] = walls, cpus
    v = np.asarray(v, dtype=np.float64)
    np.save(trace_path, np.concatenate([[-65.0], v]))
    info["n_spikes"] = int(((v[:-1] < 0) & (v[1:] >= 0)).sum())
    if not no_grad:
        p0 = jnp.zeros(2, dtype)
        t = time.perf_counter()
        cg = value_and_grad.lower(p0, cell).compile()
        info["grad_compile_s"] = time.perf_counter() - t
        gw, gc = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            val, g = jax.block_until_ready(cg(p0, cell))
            gw.append(time.perf_counter() - t)
            gc.append(time.process_time() - c)
        info["grad_walls_s"], info["grad_cpu_s"] = gw, gc
        info["loss"] = float(val)
        info["grad"] = [float(a) for a in np.asarray(g)]
        # a finite-difference check of the gradient along Ra (cheap: two forward runs)
        eps = 1e-3 if x64 else 1e-2
        lo = jnp.mean((fwd(build(jnp.asarray([-eps, 0.0], dtype))) - target) ** 2)
        hi = jnp.mean((fwd(build(jnp.asarray([eps, 0.0], dtype))) - target) ** 2)
        info["fd_grad_ra"] = float((hi - lo) / (2 * eps))
    return info


def worker_neuron(t_stop, repeats, coreneuron, trace_path):
    t0 = time.perf_counter()
    from neuron import h
    import neuron
    h.load_file("stdrun.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_SWC_read()
    reader.quiet = 1
    reader.input(SWC)

    class Holder:
        pass

    cell = Holder()
    h.Import3d_GUI(reader, False).instantiate(cell)
    prefix = len(str(cell)) + 1
    secs = {sec.name()[prefix:]: sec for sec in cell.all}
    h.celsius = CELSIUS
    h.dt = DT
    h.steps_per_ms = 1.0 / DT
    h.cvode_active(0)
    h.secondorder = 0
    for name, sec in secs.items():
        sec.Ra, sec.cm = RA, CM
        sec.nseg = int((sec.L / (D_LAMBDA * h.lambda_f(FREQ, sec=sec)) + 0.9) / 2) * 2 + 1
        sec.insert("pas")
        for seg in sec:
            seg.pas.g, seg.pas.e = G_PAS * 1e-3, E_PAS
        if name.startswith("soma"):
            sec.insert("hh")
            for seg in sec:
                seg.hh.el = -54.387
                seg.ena, seg.ek = 50.0, -77.0
    # the same sites as ours (the distal one from our tree: the same numbers as NEURON's)
    import jax
    jax.config.update("jax_enable_x64", True)
    from brainfuse_jax.morphology import read_swc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = read_swc(SWC).compartmentalize(d_lambda=D_LAMBDA, freq=FREQ, Ra=RA, cm=CM)
    soma, distal = _sites(tree)
    pr = protocol(t_stop)
    ics = []
    for d, u, a in pr["pulses"]:
        ic = h.IClamp(secs[soma[0]](soma[1]))
        ic.delay, ic.dur, ic.amp = d, u, a
        ics.append(ic)
    es = h.ExpSyn(secs[distal[0]](distal[1]))
    es.tau, es.e = SYN_TAU, SYN_E
    ns = h.NetStim()
    ns.start, ns.number, ns.interval, ns.noise = pr["syn_t"], 1, 1e9, 0
    nc = h.NetCon(ns, es, 0, 0.0, SYN_W)
    pc = h.ParallelContext()
    vrec = h.Vector().record(secs[soma[0]](soma[1])._ref_v)
    notes = "Import3d_GUI(instantiate), d_lambda nseg, pas + hh soma; pc.psolve"
    if coreneuron:
        from neuron import coreneuron as cn
        h.cvode.cache_efficient(1)
        cn.enable = True
        cn.verbose = 0
        cn.gpu = False
        notes += "; CoreNEURON in-memory transfer (each psolve includes the transfer)"
    pc.set_maxstep(10)
    h.finitialize(-65.0)
    setup_s = time.perf_counter() - t0
    walls, cpus = [], []
    for _ in range(repeats):
        h.finitialize(-65.0)
        t, c = time.perf_counter(), time.process_time()
        pc.psolve(t_stop)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        if abs(h.t - t_stop) > DT / 2:
            raise RuntimeError(f"NEURON stopped at t = {h.t}")
    v = np.asarray(vrec)
    np.save(trace_path, v)
    info = dict(dtype="float64", setup_s=setup_s, walls_s=walls, cpu_s=cpus, version=neuron.__version__, notes=notes,
                n_compartments=int(sum(s.nseg for s in secs.values())),
                n_spikes=int(((v[:-1] < 0) & (v[1:] >= 0)).sum()))
    del nc, ns, es, ics
    return info


JAXLEY_SCRIPT = r'''
import os, sys, json, time, warnings
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platform_name", "cpu")
import jax.numpy as jnp
import jaxley as jx
from jaxley.channels import HH
args = json.loads(sys.argv[1])
t_stop, dt, repeats = args["t_stop"], args["dt"], args["repeats"]
out = dict(version=jx.__version__ if hasattr(jx, "__version__") else "?")
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cell = jx.read_swc(args["swc"], ncomp=1)
# d_lambda rule on Jaxley's branches (length, mean radius): nseg per branch
nodes = cell.nodes
ncomps = []
for b in range(cell.total_nbranches if hasattr(cell, "total_nbranches") else len(cell.comb_parents)):
    rows = nodes[nodes["global_branch_index"] == b]
    L = float(rows["length"].sum()); d = 2 * float(rows["radius"].mean())
    lam = 1e5 * np.sqrt(d / (4 * np.pi * args["freq"] * args["Ra"] * args["cm"]))
    ncomps.append(int((L / (args["d_lambda"] * lam) + 0.9) / 2) * 2 + 1)
for b, n in enumerate(ncomps):
    if n != 1:
        cell.branch(b).set_ncomp(n)
out["n_compartments"] = int(len(cell.nodes)); out["n_branches"] = len(ncomps)
cell.set("axial_resistivity", args["Ra"]); cell.set("capacitance", args["cm"])
cell.insert(HH())
# passive dendrites: HH with gNa = gK = 0 outside the soma (Jaxley's leak is part of HH)
cell.set("HH_gNa", 0.0); cell.set("HH_gK", 0.0)
cell.set("HH_gLeak", args["g_pas"] * 1e-3); cell.set("HH_eLeak", args["e_pas"])
soma_branches = sorted(set(int(b) for b in cell.nodes.loc[cell.nodes["soma"], "global_branch_index"]))
out["soma_branches"] = soma_branches
for b in soma_branches:
    soma = cell.branch(b)
    soma.set("HH_gNa", 0.12); soma.set("HH_gK", 0.036); soma.set("HH_gLeak", 0.0003); soma.set("HH_eLeak", -54.387)
cell.set("v", -65.0)
cell.init_states()
n_steps = int(round(t_stop / dt))
stim = sum(jx.step_current(i_delay=d, i_dur=u, i_amp=a, delta_t=dt, t_max=t_stop) for d, u, a in args["pulses"])
site = cell.branch(soma_branches[0]).loc(0.5)  # the first soma piece in the file: Import3d's soma[0]
site.stimulate(stim, verbose=False)
site.record("v", verbose=False)
out["build_s"] = time.perf_counter() - t0
sim = jax.jit(lambda: jx.integrate(cell, delta_t=dt))
t = time.perf_counter(); v = jax.block_until_ready(sim()); out["compile_s"] = time.perf_counter() - t
walls, cpus = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time(); v = jax.block_until_ready(sim())
    walls.append(time.perf_counter() - t); cpus.append(time.process_time() - c)
out["walls_s"], out["cpu_s"] = walls, cpus
v = np.asarray(v)[0]
out["n_spikes"] = int(((v[:-1] < 0) & (v[1:] >= 0)).sum())
out["v_range"] = [float(v.min()), float(v.max())]
sb = cell.branch(soma_branches[0]).nodes
out["soma_area_um2"] = float(sum(2 * np.pi * r * l for r, l in zip(sb["radius"], sb["length"])))
np.save(args["trace"], v)
cell.make_trainable("axial_resistivity"); cell.make_trainable("HH_gLeak")
params = cell.get_parameters()
target = jnp.asarray(v)
def loss(params):
    vv = jx.integrate(cell, params=params, delta_t=dt, checkpoint_lengths=args.get("ckpt"))
    return jnp.mean((vv[0] - target) ** 2)
vg = jax.jit(jax.value_and_grad(loss))
t = time.perf_counter(); jax.block_until_ready(vg(params)); out["grad_compile_s"] = time.perf_counter() - t
gw, gc = [], []
for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time(); jax.block_until_ready(vg(params))
    gw.append(time.perf_counter() - t); gc.append(time.process_time() - c)
out["grad_walls_s"], out["grad_cpu_s"] = gw, gc
print("RESULT " + json.dumps(out), flush=True)
'''


def worker_jaxley(t_stop, repeats, trace_path, timeout):
    if not os.path.exists(JAXLEY_PY):
        raise RuntimeError(f"{JAXLEY_PY} not found (python -m venv /tmp/jaxley_venv && "
                           "/tmp/jaxley_venv/bin/pip install jaxley)")
    chk = subprocess.run([JAXLEY_PY, "-c", "import jaxley, jax; print(jax.__version__)"],
                         capture_output=True, text=True)
    if chk.returncode:
        raise RuntimeError("jaxley not importable in /tmp/jaxley_venv: " + (chk.stderr.strip().splitlines() or ["?"])[-1])
    pr = protocol(t_stop)
    n_steps = int(round(t_stop / DT))
    ckpt = [n_steps // CHUNK + 1, CHUNK] if n_steps > CHUNK else None
    args = dict(swc=SWC, t_stop=t_stop, dt=DT, repeats=repeats, trace=trace_path, Ra=RA, cm=CM,
                d_lambda=D_LAMBDA, freq=FREQ, g_pas=G_PAS, e_pas=E_PAS, pulses=pr["pulses"], ckpt=ckpt)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(JAXLEY_SCRIPT)
    proc = subprocess.run([JAXLEY_PY, f.name, json.dumps(args)], capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError("jaxley run failed: " + " ".join(proc.stderr.strip().splitlines()[-3:]))
    info = json.loads(lines[-1][7:])
    info["dtype"] = "float64"
    info["notes"] = (f"jaxley {info.get('version')}; {info.get('n_branches')} branches, nseg by d_lambda on "
                     "Jaxley's branches (its own branch split, not Import3d's sections); HH everywhere with "
                     "gNa = gK = 0 in dendrites; no distal synapse; "
                     f"soma branches {info.get('soma_branches')}, stimulated/recorded at branch({(info.get('soma_branches') or ['?'])[0]}).loc(0.5) "
                     f"(lateral area {info.get('soma_area_um2', float('nan')):.0f} um2); soma V range "
                     f"{[round(x, 1) for x in info.get('v_range', [])]} mV")
    return info


def run_worker(name, t_stop, repeats, trace_path, timeout):
    label, kind, opts = ANCHORS[name]
    result = dict(name=name, label=label, kind=kind, ok=False, t_stop=t_stop)
    try:
        if kind == "ours":
            info = worker_ours(t_stop, repeats, trace_path=trace_path, **opts)
        elif kind == "neuron":
            info = worker_neuron(t_stop, repeats, trace_path=trace_path, **opts)
        else:
            info = worker_jaxley(t_stop, repeats, trace_path, timeout)
        result.update(info)
        result["ok"] = True
        result["best_s"] = min(info["walls_s"])
        result["cpu_best_s"] = min(info["cpu_s"])
        if "grad_walls_s" in info:
            result["grad_best_s"] = min(info["grad_walls_s"])
            result["grad_cpu_best_s"] = min(info["grad_cpu_s"])
    except Exception as err:  # noqa: BLE001
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
    result["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print("RESULT " + json.dumps(result), flush=True)


# =================================================================================================
# driver
# =================================================================================================
def launch(name, args, trace_path):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--t-stop", str(args.t_stop),
           "--repeats", str(args.repeats), "--trace-out", trace_path, "--timeout", str(args.timeout)]
    res = _harness.run_child(cmd, args.timeout, ANCHORS[name][0])
    res.setdefault("name", name)
    if res.get("ok") and os.path.exists(trace_path):
        res["trace"] = np.load(trace_path)
    return res


def versions():
    out = {}
    for mod in ("jax", "equinox", "neuron"):
        p = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"], capture_output=True, text=True)
        out[mod] = p.stdout.strip() or "?"
    return out


def make_section(results, order, args, total_s, load):
    neuron = results.get("neuron", {})
    jaxley = results.get("jaxley", {})
    t_n = neuron.get("cpu_best_s") if neuron.get("ok") else None
    t_j = jaxley.get("cpu_best_s") if jaxley.get("ok") else None
    g_j = jaxley.get("grad_cpu_best_s") if jaxley.get("ok") else None
    ref = neuron.get("trace") if neuron.get("ok") else None
    cmd = "python benchmarks/ca1_cell.py" + (" --quick" if args.quick else "")
    lines = [f"## CA1 pyramidal cell (ca1_n120.swc), {args.t_stop:g} ms, forward and gradient", "",
             f"Command: `{cmd}` (total {total_s:.0f} s). Workload: `../shared/reference/morphologies/ca1_n120.swc` "
             "as NEURON's Import3d, nseg by d_lambda (0.1 at 100 Hz; Ra 100 ohm cm, cm 1 uF/cm2), pas "
             "(0.1 mS/cm2, -65 mV) everywhere + hh soma (as tests/test_cable_swc.py); somatic IClamp pulses "
             f"({PULSE_AMP} nA, {PULSE_DUR} ms) every {PULSE_EVERY} ms from 10 ms to {0.85 * args.t_stop:g} ms, distal ExpSyn event "
             f"(0.3 uS) at {0.9 * args.t_stop:g} ms; dt 0.025 ms ({int(round(args.t_stop / DT))} steps), "
             "backward Euler; V at soma recorded every step. Gradient: value_and_grad of the mean squared "
             "soma-V error to a target trace w.r.t. (log Ra scale, log dendritic g_pas scale); ours: autodiff "
             f"through `simulate` (the tree solve's custom VJP) with `jax.checkpoint` per {CHUNK}-step chunk, "
             f"Jaxley: `checkpoint_lengths` with {CHUNK}-step chunks. Best of {args.repeats} runs; compile / setup "
             "excluded and listed. One core (sched_setaffinity {0}, single-threaded XLA), each "
             f"implementation in its own process. 1-min load {load[0]:.2f} before / {load[1]:.2f} after: the "
             "machine is shared, so each time is given as wall / CPU (the worker's process time during the "
             "timed call, which excludes waiting for the core) and the ratios use the CPU times.", "",
             "| implementation | dtype | compartments | forward wall / CPU (s) | forward x NEURON | forward x Jaxley "
             "| gradient wall / CPU (s) | gradient x Jaxley | gradient / forward | compile fwd / grad (s) "
             "| max abs dV soma vs NEURON (mV) | spikes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name in order:
        r = results[name]
        if not r.get("ok"):
            err = r.get("error", "failed").replace("|", "/").replace("\n", " ")[:400]
            lines.append(f"| {r.get('label', name)} | - | - | failed | - | - | - | - | - | - | - | {err} |")
            continue
        f, fc = r["best_s"], r.get("cpu_best_s")
        ratio_n = f"{fc / t_n:.2f}" if (t_n and fc) else "-"
        ratio_j = f"{fc / t_j:.2f}" if (t_j and fc) else "-"
        g, gc = r.get("grad_best_s"), r.get("grad_cpu_best_s")
        if g:
            gs = f"{g:.2f} / {gc:.2f}"
        elif r["kind"] == "neuron":
            gs = "n/a (no adjoint; FD needs 5 runs = %.2f CPU)" % (5 * fc)
        else:
            gs = "-"
        gr_j = f"{gc / g_j:.2f}" if (g and g_j) else "-"
        gf = f"{gc / fc:.1f}" if g else "-"
        if "compile_s" in r:
            comp = f"{r['compile_s']:.1f} / {r.get('grad_compile_s', float('nan')):.1f}"
        else:
            comp = f"{r.get('setup_s', float('nan')):.2f} (model build)"
        dv = "(reference)" if name == "neuron" else "-"
        if ref is not None and name != "neuron" and r.get("trace") is not None:
            tr = r["trace"]
            n = min(len(tr), len(ref))
            dv = f"{np.abs(tr[:n] - ref[:n]).max():.1e}"
            if r["kind"] == "jaxley":
                dv += " (different cell discretisation)"
        lines.append(f"| {r['label']} | {r.get('dtype', '-')} | {r.get('n_compartments', '-')} | {f:.2f} / {fc:.2f} | "
                     f"{ratio_n} | {ratio_j} | {gs} | {gr_j} | {gf} | {comp} | {dv} | {r.get('n_spikes', '-')} |")
    lines.append("")
    lines.append("Ratios are time ratios (< 1 = faster than the reference).")
    lines.append("")
    for name in order:
        r = results[name]
        if r.get("ok") and "grad" in r:
            lines.append(f"- `{name}`: loss {r['loss']:.4g} mV^2, gradient {r['grad'][0]:.5g} (Ra), {r['grad'][1]:.5g} "
                         f"(g_pas); central FD along Ra {r['fd_grad_ra']:.5g}")
        elif r.get("ok") and r.get("notes"):
            lines.append(f"- `{name}`: {r['notes']}")
    v = versions()
    lines += ["", f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs (run on core 0), "
              f"Python {platform.python_version()}, jax {v['jax']}, equinox {v['equinox']}, NEURON {v['neuron']}."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100 ms, 1 repeat, no docs")
    ap.add_argument("--t-stop", type=float, default=None, help="ms (default 1000; 100 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs, best reported (3; 1 with --quick)")
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(ANCHORS))
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--write", action="store_true", help="write docs even with --quick/--only")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--trace-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.t_stop = args.t_stop or (100.0 if args.quick else 1000.0)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.worker:
        run_worker(args.worker, args.t_stop, args.repeats, args.trace_out, args.timeout)
        return
    order = list(ANCHORS) if not args.only else [a.strip() for a in args.only.split(",")]
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in order:
            print(f"[ca1_cell] {name} ...", file=sys.stderr, flush=True)
            results[name] = launch(name, args, os.path.join(tmp, f"{name}.npy"))
            r = results[name]
            print(f"[ca1_cell]   ok={r.get('ok')} fwd={r.get('best_s')} grad={r.get('grad_best_s')} "
                  f"{r.get('error', '')}", file=sys.stderr, flush=True)
    section = make_section(results, order, args, time.perf_counter() - t_start, (load0, os.getloadavg()[0]))
    print(section)
    os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
    if not (args.quick or args.only) or args.write:
        _harness.write_doc("ca1_cell", section)
        with open(RESULTS_JSON, "w") as f:
            json.dump({k: {kk: vv for kk, vv in r.items() if kk not in ("trace", "traceback")}
                       for k, r in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
