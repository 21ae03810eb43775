#!/usr/bin/env python
"""Benchmark: a 10,000-point (g_Na, g_K, I) f-I sweep of the classic HH neuron, brainfuse_jax's
`sweep` against NEURON simulating the same points.

Workload: classic HH (gL 0.3 mS/cm2, ENa 50, EK -77, EL -54.387 mV, Cm 1 uF/cm2, 6.3 degC) at
every point of a 50 x 50 x 4 grid: g_Na = linspace(60, 180, 50) mS/cm2, g_K = linspace(18, 54, 50)
mS/cm2, I = 5, 10, 15, 20 uA/cm2 (constant from t = 0); V0 = -65 mV with gates at steady state;
dt = 0.025 ms, 1000 ms (40,000 steps) per point; measured: the number of upward 0-mV crossings
(firing rate in Hz = count / 1 s). 10,000 points x 40,000 steps = 4e8 neuron-steps.

Anchors (each in its own child process, pinned to one core as in hh_population.py):
- `ours_sweep_f32` / `ours_sweep_f64`: `bf.sweep(bf.HH(...), grid, stimulus, dt=...)`, the public
  call with its defaults (batches from the default 256 MiB memory budget, `Total` spike counts).
  The time is the whole call, returning numpy counts; the first call (trace + compile) is timed
  separately.
- `ours_simulate_f32` (diagnostic): one `bf.simulate` of 10,000 HH neurons whose parameters are
  per-neuron arrays (no `vmap`, no batches) - what `sweep` costs on top of the bare unroll.
- `neuron`: NEURON, one simulation holding one section per point (10,000 sections, nseg 1,
  100 um2, `hh` with the point's gnabar/gkbar, an IClamp of the point's current, NetCon threshold
  0 mV). This is the fast way to run many independent cells in NEURON: one `psolve`, one
  interpreter round trip.
- `neuron_coreneuron`: the same model run by CoreNEURON (in-memory transfer, cache_efficient).
- `neuron_loop`: one section, a Python loop over points (set gnabar, gkbar, amp; finitialize;
  continuerun). Slow per point (each run pays NEURON's per-step overhead for one cell), so only a
  subset of the points (every `--loop-stride`-th) is timed and the time is extrapolated to
  10,000 points - labelled as such in the table.

Times: wall clock (best of `--repeats`), and the process's CPU time (`time.process_time`), which
is what an implementation costs when other jobs share the core (this machine is shared; the
table says when the load average exceeded the core count).

Rates must agree: each anchor's counts are compared with NEURON's (one simulation) point by point.
NEURON's NetCon reports a crossing during the final step only one step later (see
docs/benchmarks.md), so for our anchors the final-step crossings (from an untimed second run of
T - 1 steps) are removed before comparing; the raw mismatches are listed too.

Usage:
    python benchmarks/sweep_fi.py            # full run; writes the sweep_fi section of docs/benchmarks.md
                                             # and benchmarks/results/sweep_fi.json
    python benchmarks/sweep_fi.py --quick    # smoke test (6 x 6 x 2 points, 200 ms), prints only
    python benchmarks/sweep_fi.py --only ours_sweep_f32,neuron
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback

import _harness  # noqa: E402,F401  (pins one core before numpy/JAX/NEURON load)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
RESULTS_JSON = os.path.join(HERE, "results", "sweep_fi.json")

# ---- the workload (units: mV, ms, mS/cm2, uA/cm2, uF/cm2) ---------------------------------------
DT = 0.025
V0 = -65.0
GL, ENA, EK, EL, CM, CELSIUS = 0.3, 50.0, -77.0, -54.387, 1.0, 6.3
GNA_RANGE, GK_RANGE = (60.0, 180.0), (18.0, 54.0)
CURRENTS = (5.0, 10.0, 15.0, 20.0)

ANCHORS = {
    "ours_sweep_f32": ("brainfuse_jax `sweep` (vmap, batched), HH(scheme=\"neuron\")", "ours_sweep", dict(x64=False)),
    "ours_sweep_f64": ("brainfuse_jax `sweep` (vmap, batched), HH(scheme=\"neuron\")", "ours_sweep", dict(x64=True)),
    "ours_simulate_f32": ("brainfuse_jax `simulate`, per-neuron parameter arrays (diagnostic: no sweep)",
                          "ours_simulate", dict(x64=False)),
    "neuron": ("NEURON, one simulation, one section per point", "neuron", dict(coreneuron=False)),
    "neuron_coreneuron": ("NEURON + CoreNEURON, one simulation, one section per point", "neuron", dict(coreneuron=True)),
    "neuron_loop": ("NEURON, Python loop over points, one section", "neuron_loop", {}),
}


def grid_axes(n_g):
    return (np.linspace(*GNA_RANGE, n_g), np.linspace(*GK_RANGE, n_g),
            np.asarray(CURRENTS if n_g >= 10 else CURRENTS[1::2]))


def points(n_g):
    """Flattened (g_na, g_k, current) of every point, in the grid's C order."""
    gna, gk, cur = grid_axes(n_g)
    G, K, C = np.meshgrid(gna, gk, cur, indexing="ij")
    return G.ravel(), K.ravel(), C.ravel()


# =================================================================================================
# workers (each runs in its own process)
# =================================================================================================
def _compile_timer():
    """Seconds JAX spent tracing, lowering and compiling since the call (jax.monitoring events)."""
    import jax.monitoring

    spent = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, secs, **_: spent.append(secs) if name.startswith("/jax/core/compile/") else None)
    return lambda: float(sum(spent))


def worker_ours_sweep(n_g, n_steps, repeats, x64):
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import brainfuse_jax as bf
    from brainfuse_jax.sweep import _run as _sweep

    compile_s = _compile_timer()
    batches = []
    run_batch = _sweep._run_batch

    def spy(model, values, stim, static):  # records the batch plan sweep chose (no effect on timing)
        batches.append(len(next(iter(values.values()))))
        return run_batch(model, values, stim, static)

    _sweep._run_batch = spy

    gna, gk, cur = grid_axes(n_g)
    model = bf.HH(e_l=EL, g_l=GL, e_na=ENA, e_k=EK, c_m=CM, temperature=CELSIUS)
    grid = {"na.gbar": gna, "k.gbar": gk, "stimulus.current": cur}

    def constant(n):
        return lambda p: jnp.full((n,), p["current"])

    stim = constant(n_steps)
    call = lambda: bf.sweep(model, grid, stim, dt=DT, v0=V0, progress=False)  # noqa: E731
    t = time.perf_counter()
    counts = call()  # first call: trace + compile + run
    first = time.perf_counter() - t
    compiled = compile_s()
    plan = f"{len(batches)} batches of {batches[0]} points"
    walls, cpus = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        cpu0 = time.process_time()
        counts = call()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - cpu0)
    # untimed: the same sweep one step shorter, for the crossings on the final step
    before = bf.sweep(model, grid, constant(n_steps - 1), dt=DT, v0=V0, progress=False)
    return dict(walls_s=walls, cpus_s=cpus, compile_s=compiled, first_call_s=first, counts=counts.ravel(),
                last_step=(counts - before).ravel(), dtype="float64" if x64 else "float32",
                notes=f"bf.sweep(...) with its defaults ({plan}, from the 256 MiB memory budget); the "
                      "time is the whole call, returning numpy counts")


def worker_ours_simulate(n_g, n_steps, repeats, x64):
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import brainfuse_jax as bf

    g, k, c = points(n_g)
    dtype = jnp.float64 if x64 else jnp.float32
    model = bf.HH(g_na=g, g_k=k, e_l=EL, g_l=GL, e_na=ENA, e_k=EK, c_m=CM, temperature=CELSIUS)
    state0 = model.init_state((g.size,), dtype=dtype, v0=V0)
    cur = jnp.asarray(c, dtype)

    compile_s = _compile_timer()

    @eqx.filter_jit
    def run(model, state0, cur, n):
        x = jnp.broadcast_to(cur[:, None], (cur.size, n))
        _, counts = bf.simulate(model, state0, x, DT, record=bf.Total())
        return counts

    t = time.perf_counter()
    jax.block_until_ready(run(model, state0, cur, n_steps))
    first = time.perf_counter() - t
    compiled = compile_s()
    walls, cpus = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        cpu0 = time.process_time()
        counts = np.asarray(run(model, state0, cur, n_steps))
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - cpu0)
    before = np.asarray(run(model, state0, cur, n_steps - 1))
    return dict(walls_s=walls, cpus_s=cpus, compile_s=compiled, first_call_s=first, counts=counts, last_step=counts - before,
                dtype="float64" if x64 else "float32", notes="one simulate of all points, Total counts")


def _neuron_section(h, name):
    sec = h.Section(name=name)
    sec.L = sec.diam = math.sqrt(100.0 / math.pi)  # 100 um2
    sec.nseg = 1
    sec.cm = CM
    sec.insert("hh")
    seg = sec(0.5)
    seg.hh.gl, seg.hh.el = GL * 1e-3, EL
    seg.ena, seg.ek = ENA, EK
    stim = h.IClamp(seg)
    stim.delay, stim.dur = 0.0, 1e9
    return sec, seg, stim


def _neuron_setup(h):
    h.load_file("stdrun.hoc")
    h.celsius = CELSIUS
    h.dt = DT
    h.steps_per_ms = 1.0 / DT
    h.cvode_active(0)
    h.secondorder = 0


def worker_neuron(n_g, n_steps, repeats, coreneuron):
    t0 = time.perf_counter()
    from neuron import h
    _neuron_setup(h)
    pc = h.ParallelContext()
    g, k, c = points(n_g)
    cells = []
    for i in range(g.size):
        sec, seg, stim = _neuron_section(h, f"p{i}")
        seg.hh.gnabar, seg.hh.gkbar = g[i] * 1e-3, k[i] * 1e-3  # S/cm2
        stim.amp = c[i] * seg.area() * 1e-5  # uA/cm2 * um2 -> nA
        pc.set_gid2node(i, pc.id())
        nc = h.NetCon(seg._ref_v, None, sec=sec)
        nc.threshold = 0.0
        pc.cell(i, nc)
        cells.append((sec, stim))
    tvec, idvec = h.Vector(), h.Vector()
    pc.spike_record(-1, tvec, idvec)
    notes = f"{g.size} sections (nseg 1, 100 um2), hh + IClamp(delay 0), NetCon threshold 0 mV, one psolve"
    if coreneuron:
        from neuron import coreneuron as cn
        h.cvode.cache_efficient(1)
        cn.enable = True
        cn.verbose = 0
        cn.gpu = False
        notes += "; CoreNEURON in-memory transfer (each psolve includes the model transfer)"
    pc.set_maxstep(10)
    h.finitialize(V0)
    setup_s = time.perf_counter() - t0
    tstop = n_steps * DT
    walls, cpus, counts = [], [], None
    for _ in range(repeats):
        tvec.resize(0)
        idvec.resize(0)
        h.finitialize(V0)
        t = time.perf_counter()
        cpu0 = time.process_time()
        pc.psolve(tstop)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - cpu0)
        counts = np.bincount(np.asarray(idvec, dtype=np.int64), minlength=g.size)
        if abs(h.t - tstop) > DT / 2:
            raise RuntimeError(f"NEURON stopped at t = {h.t}, expected {tstop}")
    import neuron
    return dict(walls_s=walls, cpus_s=cpus, setup_s=setup_s, counts=counts, dtype="float64", notes=notes,
                version=neuron.__version__)


def worker_neuron_loop(n_g, n_steps, repeats, stride):
    t0 = time.perf_counter()
    from neuron import h
    _neuron_setup(h)
    g, k, c = points(n_g)
    sec, seg, stim = _neuron_section(h, "soma")
    nc = h.NetCon(seg._ref_v, None, sec=sec)
    nc.threshold = 0.0
    times = h.Vector()
    nc.record(times)
    subset = np.arange(0, g.size, stride)
    setup_s = time.perf_counter() - t0
    tstop = n_steps * DT
    walls, cpus = [], []
    counts = np.full(g.size, -1, dtype=np.int64)
    for _ in range(repeats):
        t = time.perf_counter()
        cpu0 = time.process_time()
        for i in subset:
            seg.hh.gnabar, seg.hh.gkbar = g[i] * 1e-3, k[i] * 1e-3
            stim.amp = c[i] * seg.area() * 1e-5
            h.finitialize(V0)
            h.continuerun(tstop)
            counts[i] = times.size()
        walls.append((time.perf_counter() - t) * g.size / subset.size)  # extrapolated to all points
        cpus.append((time.process_time() - cpu0) * g.size / subset.size)
    return dict(walls_s=walls, cpus_s=cpus, setup_s=setup_s, counts=counts, subset=subset.tolist(), dtype="float64",
                notes=f"{subset.size} of {g.size} points timed (every {stride}th), time x {g.size / subset.size:g} "
                      "(extrapolated)")


def run_worker(name, n_g, n_steps, repeats, counts_path, stride):
    label, kind, opts = ANCHORS[name]
    n_points = n_g * n_g * (len(CURRENTS) if n_g >= 10 else 2)
    result = dict(name=name, label=label, kind=kind, ok=False, n_points=n_points, n_steps=n_steps)
    try:
        if kind == "ours_sweep":
            info = worker_ours_sweep(n_g, n_steps, repeats, **opts)
        elif kind == "ours_simulate":
            info = worker_ours_simulate(n_g, n_steps, repeats, **opts)
        elif kind == "neuron":
            info = worker_neuron(n_g, n_steps, repeats, **opts)
        elif kind == "neuron_loop":
            info = worker_neuron_loop(n_g, n_steps, max(1, min(repeats, 2)), stride)
        else:
            raise ValueError(kind)
        counts = np.asarray(info.pop("counts"), dtype=np.int64)
        last = np.asarray(info.pop("last_step", np.zeros_like(counts)), dtype=np.int64)
        np.save(counts_path, np.stack([counts, last]))
        result.update(info)
        result["ok"] = True
        result["best_s"] = min(info["walls_s"])
        result["points_per_s"] = n_points / result["best_s"]
        result["steps_per_s"] = n_points * n_steps / result["best_s"]
        result["points_per_cpu_s"] = n_points / min(info["cpus_s"])
    except Exception as err:  # noqa: BLE001 - report and carry on
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
    result["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    print("RESULT " + json.dumps(result), flush=True)


# =================================================================================================
# driver
# =================================================================================================
def launch(name, args, counts_path):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--n-g", str(args.n_g),
           "--steps", str(args.steps), "--repeats", str(args.repeats), "--counts-out", counts_path,
           "--loop-stride", str(args.loop_stride)]
    res = _harness.run_child(cmd, args.timeout, ANCHORS[name][0])
    res.setdefault("name", name)
    if res.get("ok"):
        res["counts"], res["last_step"] = np.load(counts_path)
    return res


def compare(results, n_steps):
    """Point-by-point count mismatches against NEURON (one simulation): NEURON convention (our
    final-step crossings removed) and raw; the loop anchor only on its timed subset."""
    ref = results.get("neuron", {})
    if not ref.get("ok"):
        return
    ref_counts = ref["counts"]
    for name, res in results.items():
        if not res.get("ok") or name == "neuron":
            continue
        counts, last = res["counts"], res["last_step"]
        sel = np.asarray(res.get("subset", np.arange(counts.size)))
        conv = (counts - last)[sel] != ref_counts[sel]
        raw = counts[sel] != ref_counts[sel]
        res["mismatch"] = dict(n=int(sel.size), conv=int(conv.sum()), raw=int(raw.sum()),
                               max_abs=int(np.abs((counts - last)[sel] - ref_counts[sel]).max()),
                               where=[int(i) for i in sel[conv][:10]])


def fmt_pts(r):
    return f"{r:,.0f}" if r >= 100 else f"{r:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: 6 x 6 x 2 points, 200 ms, no docs")
    ap.add_argument("--n-g", type=int, default=None, help="conductance values per axis (default 50)")
    ap.add_argument("--steps", type=int, default=None, help="steps per point (default 40000 = 1 s)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per anchor, best reported (3)")
    ap.add_argument("--loop-stride", type=int, default=None, help="neuron_loop times every k-th point (100)")
    ap.add_argument("--only", default=None, help="comma-separated anchor names: " + ",".join(ANCHORS))
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per anchor")
    ap.add_argument("--write", action="store_true", help="write docs even with --quick/--only")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--counts-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.n_g = args.n_g or (6 if args.quick else 50)
    args.steps = args.steps or (8000 if args.quick else 40000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.loop_stride = args.loop_stride or (4 if args.quick else 100)

    if args.worker:
        run_worker(args.worker, args.n_g, args.steps, args.repeats, args.counts_out, args.loop_stride)
        return

    from tqdm import tqdm

    order = list(ANCHORS) if not args.only else [a.strip() for a in args.only.split(",")]
    unknown = [a for a in order if a not in ANCHORS]
    if unknown:
        ap.error(f"unknown anchors {unknown}; choose from {list(ANCHORS)}")
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    machine = _harness.machine_info(("jax", "jaxlib", "equinox", "numpy", "neuron"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        bar = tqdm(order, desc="anchors", unit="anchor")
        for name in bar:
            bar.set_postfix_str(name)
            res = launch(name, args, os.path.join(tmp, f"{name}.npy"))
            results[name] = res
            msg = (f"{name}: {res['points_per_s']:,.1f} points/s" if res.get("ok")
                   else f"{name}: FAILED ({res.get('error')})")
            tqdm.write(msg)
    load_after = os.getloadavg()
    compare(results, args.steps)
    total_s = time.perf_counter() - t_start

    ok = {nm: r for nm, r in results.items() if r.get("ok")}
    neuron_rate = ok.get("neuron", {}).get("points_per_s")
    neuron_kinds = [nm for nm in ok if ok[nm]["kind"].startswith("neuron")]
    fastest = max(neuron_kinds, key=lambda nm: ok[nm]["points_per_s"]) if neuron_kinds else None
    fastest_rate = ok[fastest]["points_per_s"] if fastest else None
    neuron_cpu = ok.get("neuron", {}).get("points_per_cpu_s")
    fastest_cpu = ok[fastest]["points_per_cpu_s"] if fastest else None
    n_points = next(iter(results.values())).get("n_points", 0)
    gna, gk, cur = grid_axes(args.n_g)
    cmd = "python benchmarks/sweep_fi.py" + " ".join([""] + sys.argv[1:])
    rows = ["| implementation | dtype | points/s, best (median) | neuron-steps/s | points per CPU-s, best "
            f"| x NEURON (one simulation): wall [CPU] | x fastest NEURON ({fastest or '-'}): wall [CPU] "
            "| compile / setup (s) | rate mismatches vs NEURON [raw] |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name in order:
        res = results[name]
        label = res.get("label", ANCHORS[name][0])
        if not res.get("ok"):
            err = res.get("error", "failed").replace("|", "/").replace("\n", " ")
            rows.append(f"| {label} | - | failed | - | - | - | - | - | {err[:300]} |")
            continue
        rate = res["points_per_s"]
        med = res["n_points"] / float(np.median(res["walls_s"]))
        comp = (f"{res['compile_s']:.2f} (trace + compile)" if "compile_s" in res
                else f"{res.get('setup_s', float('nan')):.2f} (model build)")
        if name == "neuron":
            mism = "(reference)"
        elif "mismatch" in res:
            m = res["mismatch"]
            mism = f"{m['conv']} / {m['n']} [{m['raw']}]"
        else:
            mism = "n/a"
        extra = " (extrapolated)" if res["kind"] == "neuron_loop" else ""
        cpu = res["points_per_cpu_s"]
        vs_n = f"{rate / neuron_rate:.2f} [{cpu / neuron_cpu:.2f}]" if neuron_rate else "-"
        vs_f = f"{rate / fastest_rate:.2f} [{cpu / fastest_cpu:.2f}]" if fastest_rate else "-"
        rows.append(f"| {label} | {res['dtype']} | {fmt_pts(rate)}{extra} ({fmt_pts(med)}) | "
                    f"{res['steps_per_s'] / 1e6:.1f} M | {fmt_pts(cpu)} | {vs_n} | {vs_f} | {comp} | {mism} |")

    lines = [f"## f-I sweep: {n_points:,} (g_Na, g_K, I) points of classic HH, ours vs NEURON", "",
             f"Command: `{cmd}` (total {total_s:.0f} s). Workload: classic HH (gL 0.3 mS/cm2, EL -54.387 mV, "
             f"6.3 degC, Cm 1 uF/cm2) on a {len(gna)} x {len(gk)} x {len(cur)} grid: g_Na = linspace("
             f"{gna[0]:g}, {gna[-1]:g}, {len(gna)}) mS/cm2, g_K = linspace({gk[0]:g}, {gk[-1]:g}, {len(gk)}) "
             f"mS/cm2, I = {', '.join(f'{c:g}' for c in cur)} uA/cm2 constant from t = 0; V0 -65 mV; "
             f"dt {DT} ms, {args.steps * DT:g} ms ({args.steps:,} steps) per point; measured: spike count "
             "(upward 0-mV crossings) = rate. Points/s = points / best of "
             f"{args.repeats} timed runs, median in brackets (compilation / model building excluded and "
             "listed separately). One core: `sched_setaffinity(0, {0})`, OMP_NUM_THREADS=1, "
             "XLA_FLAGS=`--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`; every "
             f"implementation in its own process. 1-min load average {load_before[0]:.2f} before / "
             f"{load_after[0]:.2f} after (other jobs share the machine). Points per CPU-s uses the process's "
             "CPU time (`time.process_time`) instead of the wall clock: it is what each implementation costs "
             "when it has to share core 0 with other jobs.", "", *rows, ""]
    if max(load_before[0], load_after[0]) > (os.cpu_count() or 1):
        lines.append(f"**Loaded machine**: the load average exceeded the {os.cpu_count()} logical CPUs, so "
                     "other jobs competed for core 0 and the anchors (run one after another) saw different "
                     "loads; wall-clock ratios are uncertain, the CPU-time ratios in brackets less so.")
        lines.append("")
    lines.append("Rate mismatches: points whose spike count differs from NEURON's (one simulation), "
                 "after removing our crossings on the final step, which NEURON's NetCon reports one "
                 "step later ([raw] = without that correction); the loop is compared on its timed subset.")
    bad = [f"`{nm}` at points {r['mismatch']['where']} (max |diff| {r['mismatch']['max_abs']})"
           for nm, r in ok.items() if r.get("mismatch", {}).get("conv")]
    if bad:
        lines.append("MISMATCHES: " + "; ".join(bad) + ".")
    elif ok.get("neuron"):
        lines.append("All rates agree with NEURON.")
    lines.append("")
    notes = [f"- `{nm}`: {r['notes']}" for nm, r in ok.items() if r.get("notes")]
    if notes:
        lines += ["Notes:"] + notes + [""]
    v = machine["versions"]
    lines += [f"Machine: {machine['cpu']} ({machine['logical_cpus']} logical CPUs, run on core "
              f"{machine['affinity']}), Linux {machine['kernel']}, Python {machine['python']}, jax "
              f"{v['jax']} / jaxlib {v['jaxlib']}, equinox {v['equinox']}, numpy {v['numpy']}, NEURON "
              f"{v['neuron']}.", ""]
    section = "\n".join(lines)
    print(section)

    if args.write or (not args.quick and not args.only):
        _harness.write_doc("sweep_fi", section)
        os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
        dump = {nm: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()
                     if k not in ("counts", "last_step")} for nm, r in results.items()}
        counts = {nm: r["counts"].tolist() for nm, r in ok.items() if nm in ("neuron", "ours_sweep_f32")}
        with open(RESULTS_JSON, "w") as f:
            json.dump(dict(machine=machine, command=cmd, total_s=total_s, n_points=n_points, steps=args.steps,
                           load_before=load_before, load_after=load_after, results=dump, counts=counts), f)
        print(f"wrote {DOC} and {RESULTS_JSON}")


if __name__ == "__main__":
    main()
