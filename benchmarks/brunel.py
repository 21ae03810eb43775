#!/usr/bin/env python
"""Benchmark (issue 13): the Brunel (2000) network, model A, against NEST and Brian2, on one core.

Workload: NE = 4,000 excitatory + NI = 1,000 inhibitory iaf_psc_delta neurons (tau_m 20 ms, theta
20 mV, V_reset 10 mV, t_ref 2 ms, V(0) = 0), fixed in-degree CE = 400 / CI = 100 (autapses and
multapses allowed), PSP jumps J / -g J mV, delay 1.5 ms, external Poisson drive eta nu_thr per
input x CE inputs, dt 0.1 ms, 1 s of biological time; the three parameter sets of the reference
data (../shared/reference/data/brunel_nest*.npz): (J, g, eta) = (0.1, 5, 2), (0.25, 5, 2),
(0.1, 6, 4). The NEST model is that of tests/_nest_brunel.py (copied from the reference script).

Implementations, each in its own child process (`--worker NAME --set K`, one `RESULT {json}` line,
through `_harness.run_child`):
- `nest`: NEST 3 (`tests/_nest_brunel.run_nest_here`), one thread: build = Create + Connect,
  Prepare, run = Run(1000 ms); peak RSS of the worker (`getrusage(RUSAGE_SELF).ru_maxrss`).
- `brian2`: Brian2 cpp_standalone, single thread (openmp_threads 0): NeuronGroup with the
  iaf_psc_delta equation (exact integration, `(unless refractory)`), two Synapses (E and I sources)
  with `on_pre: v_post += J * int(not_refractory_post)` (NEST drops inputs while refractory) and a
  homogeneous delay, a PoissonInput (CE inputs at eta nu_thr, weight J, also gated by
  refractoriness); the same in-degree connectivity (numpy, explicit i/j arrays). Schedule
  groups -> synapses -> thresholds -> resets, delay D - dt and refractory t_ref + dt, which give
  NEST's step semantics exactly (a spike of step t with delay d lands in step t + d before the
  threshold test; 20 refractory steps). Timings: Python definition + connectivity, code generation
  + compilation (gcc, Brian2's `make` timer), the binary's set-up (loading the connectivity,
  creating synapses; its wall time minus the main loop) and Brian2's own main-loop time
  (`device._last_run_time`); peak RSS of the binary (`os.wait4` around it).
- `ours`: `bf.network.brunel(...)` (build = connectivity), `bf.simulate(net, state0,
  zeros((1, N)), 0.1, n_steps=10_000, record=None)`: first call (compile + run) and best of
  `--repeats` further calls (run); RTF = run wall seconds per biological second.
- `ours_grad`: value_and_grad of the membrane potential summed over neurons and the steps of
  200 ms w.r.t. every synaptic weight of the network, against the forward pass of the same 200 ms;
  peak RSS growth of the worker over its RSS after building the network (ru_maxrss; jax's
  memory_stats() is None on CPU).

Rates (E, I: spikes per neuron per second over the whole second) and CV(ISI) (mean over neurons with
>= 3 spikes after 200 ms) by `tests/_nest_brunel.spike_stats` for every implementation.

Usage:
    python benchmarks/brunel.py                      # everything; writes docs/benchmarks.md section
                                                     # `brunel`, docs/img/brunel_raster.png,
                                                     # benchmarks/results/brunel.json
    python benchmarks/brunel.py --only nest,brian2   # the anchors alone (prints only)
    python benchmarks/brunel.py --sets 0 --only nest,ours
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import traceback

import _harness  # noqa: F401  (pins one core before numpy/JAX load)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from tests import _nest_brunel as nb  # noqa: E402  (the NEST model and the spike statistics)

IMG = os.path.join(ROOT, "docs", "img", "brunel_raster.png")
RESULTS_JSON = os.path.join(HERE, "results", "brunel.json")

SETS = [dict(J=0.1, g=5.0, eta=2.0), dict(J=0.25, g=5.0, eta=2.0), dict(J=0.1, g=6.0, eta=4.0)]
REF_FILES = ["brunel_nest.npz", "brunel_nest_J0.25.npz", "brunel_nest_g6_eta4.npz"]
T_SIM = 1000.0  # ms
T_GRAD = 200.0  # ms
NEST_SEED = 12345  # the reference data's
OUR_SEED = 0
IMPLS = {
    "nest": "NEST 3 (iaf_psc_delta, 1 thread)",
    "brian2": "Brian2 cpp_standalone (1 thread)",
    "ours": "brainfuse_jax (bf.network.brunel + bf.simulate, default backend: native spike delivery on CPU)",
    "ours_grad": "brainfuse_jax value_and_grad w.r.t. all weights (200 ms)",
    "ours_grad_short": "the same over 20 ms (where the gradient is still finite)",
}
GRAD_T = {"ours_grad": T_GRAD, "ours_grad_short": 20.0}  # ms


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t):
    return time.perf_counter() - t[0], time.process_time() - t[1]


# =================================================================================================
# workers
# =================================================================================================
def worker_nest(p, t_sim, seed, out):
    res = nb.run_nest_here(p, t_sim=t_sim, seed=seed)
    np.savez(out, senders=res.pop("senders"), times_ms=res.pop("times_ms"))
    res.update(n_synapses=res["num_connections"] - (p["NE"] + p["NI"]) * 2,  # minus Poisson + recorder links
               compile_s=None, setup_s=res["prepare_s"])
    res["mem_growth_bytes"] = res["peak_rss"] - res["rss_after_import"]
    return res


# Runs Brian2's binary and writes its own rusage (peak RSS, CPU) for the worker to read.
_WAIT4 = ("import os, subprocess, sys\n"
          "p = subprocess.Popen(sys.argv[1:])\n"
          "_, st, ru = os.wait4(p.pid, 0)\n"
          "open(os.environ['BRUNEL_B2_RUSAGE'], 'w').write('%d %r %r' % (ru.ru_maxrss, ru.ru_utime, ru.ru_stime))\n"
          "sys.exit(os.waitstatus_to_exitcode(st))\n")


def worker_brian2(p, t_sim, seed, out):
    import shutil

    t_all = _clock()
    import brian2 as b2
    from brian2 import Hz, mV, ms

    build_dir = tempfile.mkdtemp(prefix="brian2_brunel_")
    b2.set_device("cpp_standalone", build_on_run=False, directory=build_dir)
    b2.prefs.devices.cpp_standalone.openmp_threads = 0
    b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, "-c", _WAIT4, "./main"]
    b2.prefs.logging.std_redirection = False
    b2.defaultclock.dt = p["dt"] * ms
    b2.seed(seed)
    import_s = _since(t_all)[0]

    t = _clock()
    n, ne = p["NE"] + p["NI"], p["NE"]
    dt = p["dt"]
    group = b2.NeuronGroup(n, "dv/dt = -(v - E_L) / tau_m : volt (unless refractory)",
                           threshold="v >= theta", reset="v = V_reset", refractory=(p["t_ref"] + dt) * ms,
                           method="exact",
                           namespace=dict(E_L=p["E_L"] * mV, tau_m=p["tau_m"] * ms, theta=p["theta"] * mV,
                                          V_reset=p["V_reset"] * mV))
    group.v = p["V_m0"] * mV
    rng = np.random.default_rng(seed)
    post_e = np.repeat(np.arange(n, dtype=np.int32), p["CE"])
    post_i = np.repeat(np.arange(n, dtype=np.int32), p["CI"])
    pre_e = rng.integers(0, ne, size=n * p["CE"], dtype=np.int32)  # fixed in-degree, with replacement
    pre_i = rng.integers(0, p["NI"], size=n * p["CI"], dtype=np.int32)
    delay = (p["delay"] - dt) * ms  # pushed one step after the threshold under this schedule
    syn_e = b2.Synapses(group[:ne], group, on_pre="v_post += J_E * int(not_refractory_post)", delay=delay,
                        namespace=dict(J_E=p["J"] * mV))
    syn_e.connect(i=pre_e, j=post_e)
    syn_i = b2.Synapses(group[ne:], group, on_pre="v_post += J_I * int(not_refractory_post)", delay=delay,
                        namespace=dict(J_I=-p["g"] * p["J"] * mV))
    syn_i.connect(i=pre_i, j=post_i)
    drive = b2.PoissonInput(group, "v", N=p["CE"], rate=p["nu_ext_Hz"] * Hz, weight="J_X * int(not_refractory)")
    mon = b2.SpikeMonitor(group)
    net = b2.Network(group, syn_e, syn_i, drive, mon)
    net.schedule = ["start", "groups", "synapses", "thresholds", "resets", "end"]
    net.run(t_sim * ms, namespace=dict(J_X=p["J"] * mV))  # (the PoissonInput's names)
    define_s, define_cpu = _since(t)

    t = _clock()
    device = b2.get_device()
    device.build(directory=build_dir, compile=True, run=False)
    codegen_compile_s = _since(t)[0]
    make_s = device.timers["compile"]["make"]

    ru_path = os.path.join(build_dir, "rusage.txt")
    os.environ["BRUNEL_B2_RUSAGE"] = ru_path
    t = _clock()
    device.run(directory=build_dir, with_output=False)
    binary_s = device.timers["run_binary"]
    loop_s = float(device._last_run_time)
    with open(ru_path) as f:
        maxrss_kb, utime, stime = f.read().split()
    senders = np.asarray(mon.i[:], np.int64)
    times_ms = np.asarray(mon.t / ms, np.float64) + dt  # NEST stamps a spike of step t at (t + 1) dt
    np.savez(out, senders=senders, times_ms=times_ms)
    res = dict(version=b2.__version__, import_s=import_s, build_s=define_s, build_cpu_s=define_cpu,
               compile_s=codegen_compile_s, make_s=make_s, setup_s=binary_s - loop_s, run_s=loop_s,
               binary_s=binary_s, binary_cpu_s=float(utime) + float(stime), run_cpu_s=None,
               peak_rss=int(maxrss_kb) * 1024, worker_peak_rss=_maxrss_bytes(),
               n_synapses=int(len(pre_e) + len(pre_i)))
    res["mem_growth_bytes"] = res["peak_rss"]
    shutil.rmtree(build_dir, ignore_errors=True)
    return res


def _ours_setup():
    import jax

    jax.config.update("jax_platforms", "cpu")
    import brainfuse_jax as bf

    return jax, bf


def _capacity(n, t_ms, max_rate_hz=250.0):
    """Spike buffer entries for n neurons firing at up to max_rate_hz on average for t_ms."""
    return int(n * t_ms / 1000.0 * max_rate_hz)


def worker_ours(p, t_sim, seed, out, repeats):
    t = _clock()
    jax, bf = _ours_setup()
    import jax.numpy as jnp
    import_s = _since(t)[0]
    rss0 = _rss_bytes()

    t = _clock()
    net = bf.network.brunel(J=p["J"], g=p["g"], eta=p["eta"], NE=p["NE"], NI=p["NI"], epsilon=p["epsilon"],
                            delay=p["delay"], dt=p["dt"], seed=seed,
                            spike_capacity=_capacity(p["NE"] + p["NI"], t_sim))
    build_s, build_cpu = _since(t)
    rss_build = _rss_bytes()
    n_steps = int(round(t_sim / p["dt"]))
    state0 = net.init_state((1,))
    x = jnp.zeros((1, net.n), jnp.float32)

    def run():
        final, _ = bf.simulate(net, state0, x, p["dt"], n_steps=n_steps, record=None)
        return jax.block_until_ready(final)

    t = _clock()
    final = run()
    first_s, first_cpu = _since(t)
    walls, cpus = [], []
    for _ in range(repeats):
        t = _clock()
        final = run()
        w, c = _since(t)
        walls.append(w)
        cpus.append(c)
    senders, times_ms = _our_spikes(net, final, p["dt"])
    np.savez(out, senders=senders, times_ms=times_ms)
    n_syn = net.conn.n_synapses
    run_s = min(walls)
    return dict(version=bf.__version__ if hasattr(bf, "__version__") else "dev", import_s=import_s,
                build_s=build_s, build_cpu_s=build_cpu, first_call_s=first_s, compile_s=max(first_s - run_s, 0.0),
                run_s=run_s, run_median_s=float(np.median(walls)), run_cpu_s=min(cpus), runs_s=walls,
                setup_s=None, n_synapses=n_syn, bytes_per_synapse=net.bytes_per_synapse(),
                native_delivery=bool(getattr(net, "native", False)),
                rss_after_import=rss0, rss_after_build=rss_build, peak_rss=_maxrss_bytes(),
                mem_growth_bytes=_maxrss_bytes() - rss0, connectivity_rss_bytes=rss_build - rss0)


def _our_spikes(net, final, dt):
    steps, ids = net.spikes(final)
    return np.asarray(ids, np.int64), (np.asarray(steps, np.float64) + 1.0) * dt  # NEST's time stamps


def _weight_filter(net):
    """A filter spec (as eqx.partition takes) selecting every synaptic weight of the network: the
    CSR's one weight array `net.conn.weights`."""
    import jax

    import equinox as eqx

    return eqx.tree_at(lambda m: m.conn.weights, jax.tree.map(lambda _: False, net), replace=True)


def worker_ours_grad(p, t_grad, seed, repeats):
    jax, bf = _ours_setup()
    import jax.numpy as jnp

    import equinox as eqx

    net = bf.network.brunel(J=p["J"], g=p["g"], eta=p["eta"], NE=p["NE"], NI=p["NI"], epsilon=p["epsilon"],
                            delay=p["delay"], dt=p["dt"], seed=seed, spike_capacity=None)  # no recording
    rss_build = _rss_bytes()
    n_steps = int(round(t_grad / p["dt"]))
    state0 = net.init_state((1,))
    x = jnp.zeros((1, net.n), jnp.float32)
    params, static = eqx.partition(net, _weight_filter(net))

    def loss(params):
        model = eqx.combine(params, static)
        sum_v = lambda state, out: sum(jnp.sum(pop["v"], axis=-1) for pop in state["populations"].values())  # noqa
        _, total_v = bf.simulate(model, state0, x, p["dt"], n_steps=n_steps, record=bf.Total(sum_v))
        return jnp.sum(total_v) / n_steps  # V summed over neurons, mean over the steps (mV)

    fwd = eqx.filter_jit(loss)
    vg = eqx.filter_jit(jax.value_and_grad(loss))

    def timed(f):
        t = _clock()
        jax.block_until_ready(f(params))
        first = _since(t)[0]
        best = np.inf
        for _ in range(repeats):
            t = _clock()
            out = jax.block_until_ready(f(params))
            best = min(best, _since(t)[0])
        return first, best, out

    f_first, f_best, val = timed(fwd)
    rss_fwd = _maxrss_bytes()
    g_first, g_best, (val2, grad) = timed(vg)
    g = np.asarray(grad.conn.weights)
    return dict(t_ms=t_grad, weight_field="conn.weights", n_weights=int(g.size), fwd_first_s=f_first, fwd_s=f_best,
                grad_first_s=g_first, grad_s=g_best, ratio=g_best / f_best, loss=float(val),
                loss_in_grad=float(val2), grad_finite=bool(np.isfinite(g).all()),
                grad_nonzero=int(np.count_nonzero(g)), grad_nan=int(np.isnan(g).sum()), grad_inf=int(np.isinf(g).sum()),
                grad_abs_max=float(np.nanmax(np.abs(g))) if not np.isnan(g).all() else float("nan"),
                rss_after_build=rss_build, peak_rss_fwd=rss_fwd, peak_rss=_maxrss_bytes(),
                fwd_mem_growth_bytes=rss_fwd - rss_build, grad_mem_growth_bytes=_maxrss_bytes() - rss_build,
                memory_measure="ru_maxrss of the worker minus its RSS after building the network")


def run_worker(args):
    p = nb.brunel_params(**SETS[args.set])
    result = dict(name=args.worker, set=args.set, ok=False)
    try:
        if args.worker == "nest":
            info = worker_nest(p, args.t_sim, NEST_SEED, args.out)
        elif args.worker == "brian2":
            info = worker_brian2(p, args.t_sim, NEST_SEED, args.out)
        elif args.worker == "ours":
            info = worker_ours(p, args.t_sim, OUR_SEED, args.out, args.repeats)
        elif args.worker in GRAD_T:
            info = worker_ours_grad(p, args.t_grad, OUR_SEED, args.repeats)
        else:
            raise ValueError(args.worker)
        if args.worker not in GRAD_T:
            with np.load(args.out) as z:
                info.update(nb.spike_stats(z["senders"], z["times_ms"], p["NE"], p["NI"], args.t_sim))
            info["rtf"] = info["run_s"] / (args.t_sim / 1000.0)
        result.update(info)
        result["ok"] = True
    except Exception as err:  # noqa: BLE001 - report and carry on
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
    print("RESULT " + json.dumps(result, default=float), flush=True)


# =================================================================================================
# driver
# =================================================================================================
def launch(name, k, args, tmp):
    out = os.path.join(tmp, f"{name}_{k}.npz")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--set", str(k), "--out", out,
           "--t-sim", str(args.t_sim), "--t-grad", str(GRAD_T.get(name, args.t_grad) if args.t_grad == T_GRAD
                                                      else args.t_grad), "--repeats", str(args.repeats)]
    res = _harness.run_child(cmd, args.timeout, f"{name}/{k}")
    res.setdefault("name", name)
    if res.get("ok") and name not in GRAD_T and os.path.exists(out):
        with np.load(out) as z:
            res["spikes"] = (z["senders"], z["times_ms"])
    return res


def _mb(b):
    return "–" if b is None else f"{b / 2**20:,.0f}"


def _s(x, fmt="{:.2f}"):
    return "–" if x is None else fmt.format(x)


def fwd_table(R, sets):
    lines = ["| set (J, g, eta) | implementation | build s | compile s | set-up s | run s | RTF | x NEST "
             "| peak RSS MB | bytes / synapse | rate E Hz | rate I Hz | CV ISI |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k in sets:
        s = SETS[k]
        ref = R.get(f"nest@{k}", {})
        for name in ("nest", "brian2", "ours"):
            r = R.get(f"{name}@{k}")
            if r is None:
                continue
            label = f"({s['J']}, {s['g']:g}, {s['eta']:g})"
            if not r.get("ok"):
                lines.append(f"| {label} | {name} | failed: {r.get('error', '?')[:120]} |" + " |" * 11)
                continue
            x = r["rtf"] / ref["rtf"] if ref.get("ok") else None
            bps = r.get("bytes_per_synapse") or r["mem_growth_bytes"] / r["n_synapses"]
            lines.append(
                f"| {label} | {name} | {_s(r['build_s'])} | {_s(r.get('compile_s'), '{:.1f}')} | "
                f"{_s(r.get('setup_s'))} | {_s(r['run_s'])} | {r['rtf']:.2f} | {_s(x)} | {_mb(r['peak_rss'])} | "
                f"{bps:.1f} | {r['rate_E_Hz']:.2f} | {r['rate_I_Hz']:.2f} | {r['cv_mean']:.3f} |")
    return lines


def grad_table(R, sets):
    rows = [(k, R[f"{nm}@{k}"]) for k in sets for nm in GRAD_T if f"{nm}@{k}" in R]
    if not rows:
        return []
    lines = ["| set (J, g, eta) | time ms | weights | forward s | value_and_grad s | grad / forward | compile fwd / grad s "
             "| peak RSS growth fwd / grad MB | finite | max abs dL/dw |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for k, r in rows:
        s = SETS[k]
        label = f"({s['J']}, {s['g']:g}, {s['eta']:g})"
        if not r.get("ok"):
            lines.append(f"| {label} | failed: {r.get('error', '?')[:160]} |" + " |" * 8)
            continue
        fin = "yes" if r["grad_finite"] else f"no ({r['grad_nan']:,} NaN, {r['grad_inf']:,} inf)"
        lines.append(f"| {label} | {r['t_ms']:.0f} | {r['n_weights']:,} | {r['fwd_s']:.3f} | {r['grad_s']:.3f} | "
                     f"{r['ratio']:.1f} | {r['fwd_first_s'] - r['fwd_s']:.1f} / {r['grad_first_s'] - r['grad_s']:.1f} | "
                     f"{_mb(r['fwd_mem_growth_bytes'])} / {_mb(r['grad_mem_growth_bytes'])} | {fin} | "
                     + (f"{r['grad_abs_max']:.3g} |" if r["grad_finite"] else "– |"))
    return lines


def reference_check(R, sets):
    """Our NEST rerun against the stored reference data (same seed: identical spike counts)."""
    out = []
    for k in sets:
        r = R.get(f"nest@{k}")
        path = os.path.join(ROOT, "..", "shared", "reference", "data", REF_FILES[k])
        if not (r and r.get("ok") and "spikes" in r and os.path.exists(path)):
            continue
        with np.load(path) as z:
            same = np.array_equal(np.bincount(r["spikes"][0], minlength=len(z["spike_counts_all"])),
                                  z["spike_counts_all"])
        out.append(f"set {k}: NEST rerun {'reproduces' if same else 'DIFFERS FROM'} the reference spike counts")
    return out


def make_plot(R, k, path, t_sim=T_SIM):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [nm for nm in ("nest", "brian2", "ours") if R.get(f"{nm}@{k}", {}).get("ok") and
            "spikes" in R[f"{nm}@{k}"]]
    if not rows:
        return False
    p = nb.brunel_params(**SETS[k])
    n = p["NE"] + p["NI"]
    fig, axes = plt.subplots(2, len(rows), figsize=(4.2 * len(rows), 5.2), sharex=True,
                             gridspec_kw=dict(height_ratios=[2, 1]), squeeze=False)
    t0, t1, shown = t_sim - 200.0, t_sim, 100
    titles = {"nest": "NEST (1 thread)", "brian2": "Brian2 cpp_standalone", "ours": "brainfuse_jax"}
    for j, nm in enumerate(rows):
        snd, tms = R[f"{nm}@{k}"]["spikes"]
        sel = (tms >= t0) & (tms < t1) & ((snd < shown // 2) | ((snd >= p["NE"]) & (snd < p["NE"] + shown // 2)))
        y = np.where(snd[sel] < p["NE"], snd[sel], snd[sel] - p["NE"] + shown // 2)
        ax = axes[0, j]
        ax.scatter(tms[sel], y, s=1.5, c=np.where(y < shown // 2, "tab:blue", "tab:red"), linewidths=0)
        ax.set_title(titles[nm], fontsize=10)
        ax.set_ylim(-1, shown)
        if j == 0:
            ax.set_ylabel("neuron (50 E, 50 I)")
        h = np.histogram(tms, bins=np.arange(t0, t1 + 1.0, 1.0))[0] / n / 1e-3
        axes[1, j].plot(np.arange(t0, t1, 1.0) + 0.5, h, lw=0.8, c="k")
        if j:
            axes[1, j].sharey(axes[1, 0])
        axes[1, j].set_xlabel("time (ms)")
        if j == 0:
            axes[1, j].set_ylabel("population rate (Hz, 1 ms bins)")
    fig.suptitle(f"Brunel model A, J = {p['J']} mV, g = {p['g']:g}, eta = {p['eta']:g} "
                 f"(last 200 ms of {t_sim / 1000:g} s; blue E, red I)",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def render(R, sets, machine, cmd, total_s, load_before, load_after, args, chk):
    v = machine["versions"]
    lines = ["## Brunel network (issue 13): build, compile, run, gradient; NEST and Brian2", "",
             f"Command: `{cmd}` (total {total_s:.0f} s). Workload: Brunel (2000) model A, NE 4,000 + NI 1,000 "
             "iaf_psc_delta neurons, fixed in-degree 400 E + 100 I (5,000 x 500 = 2.5 M synapses), delay 1.5 ms, "
             "Poisson drive, dt 0.1 ms, "
             f"{args.t_sim / 1000:g} s of biological time; the reference data's three (J mV, g, eta). One core "
             "(sched_setaffinity {0}; NEST 1 thread, Brian2 without OpenMP, single-threaded XLA); every "
             f"implementation and set in its own process. 1-min load average {load_before[0]:.2f} before / "
             f"{load_after[0]:.2f} after (2 cores shared with other jobs: wall times are noisy).", "",
             "Columns: build = network construction (NEST Create + Connect; Brian2 the Python definition incl. "
             "the numpy in-degree connectivity; ours `bf.network.brunel`), compile (Brian2 code generation + gcc; "
             "ours first `simulate` call minus a later one), set-up (NEST Prepare; Brian2 the binary's wall time "
             "outside its main loop: loading arrays, creating synapses, writing results), run = wall seconds of "
             "the simulation (ours best of "
             f"{args.repeats}), RTF = run / biological seconds, x NEST = RTF / NEST's RTF. Peak RSS: NEST and ours "
             "the worker process (ru_maxrss), Brian2 its compiled binary. bytes / synapse: ours the network's "
             "connectivity arrays; NEST peak RSS minus RSS after `import nest`, Brian2 the binary's peak RSS, "
             "each over its synapse count (upper bounds: neurons, buffers and recorders included). Rates: spikes per "
             "neuron per second over the whole run; CV ISI: mean over neurons of the CV of the ISIs after 200 ms. Seeds "
             "differ between simulators (NEST 12345 as the reference data, Brian2 numpy/`b2.seed` 12345, ours 0): "
             "rates and CV agree statistically, not spike by spike.", ""]
    lines += fwd_table(R, sets) + [""]
    gt = grad_table(R, sets)
    if gt:
        lines += ["Gradient: `jax.value_and_grad` of the membrane potential summed over neurons (mean over the "
                  f"steps) over {T_GRAD:.0f} ms (and 20 ms) w.r.t. every synaptic weight of the network (the "
                  "one CSR weight array `net.conn.weights`, 2.5 M leaves), default adjoint (CheckpointAdjoint), "
                  "against the forward pass of the same loss (both jitted, best of "
                  f"{args.repeats}; compile = first call minus best). Memory: the worker's peak RSS (ru_maxrss; the "
                  "compilation's included) minus its RSS after building the network; jax's `memory_stats()` is not "
                  "available on CPU.", ""] + gt + [""]
        lines += grad_notes(R, sets)
    if chk:
        lines += ["Reference: " + "; ".join(chk) + ".", ""]
    if os.path.exists(IMG):
        lines += ["![raster and population rate](img/brunel_raster.png)", ""]
    lines += [f"Machine: {machine['cpu']} ({machine['logical_cpus']} logical CPUs, run on core "
              f"{machine['affinity']}), Linux {machine['kernel']}, Python {machine['python']}, jax {v.get('jax')}, "
              f"NEST {v.get('nest')}, Brian2 {v.get('brian2')}, {machine['gcc']}.", ""]
    return "\n".join(lines)


def grad_notes(R, sets):
    """What the gradient rows show, from their numbers."""
    out = []
    r = next((R[f"ours_grad@{k}"] for k in sets if R.get(f"ours_grad@{k}", {}).get("ok")), None)
    if r is not None:
        steps = r["t_ms"] / 0.1
        out.append(f"- The value_and_grad costs {r['grad_s'] / steps * 1e3:.2f} ms per step against "
                   f"{r['fwd_s'] / steps * 1e6:.0f} us for the forward pass: the forward delivery touches only the "
                   "synapses of the neurons that fired in the step (60 Hz x 0.1 ms = 0.6 % of them), the transposed "
                   "delivery of the backward pass all of them every step (a surrogate cotangent exists for every "
                   f"neuron, fired or not): {r['grad_s'] / steps / r['n_weights'] * 1e9:.2f} ns per synapse and step.")
    bad = [(k, R[f"ours_grad@{k}"]) for k in sets if R.get(f"ours_grad@{k}", {}).get("ok")
           and not R[f"ours_grad@{k}"]["grad_finite"]]
    if bad:
        short = {k: R[f"ours_grad_short@{k}"]["grad_abs_max"] for k in sets
                 if R.get(f"ours_grad_short@{k}", {}).get("ok")}
        out.append("- Not finite over 200 ms: the BPTT gradient through this recurrent network grows "
                   "exponentially with the horizon (surrogate derivatives times recurrent weights, a chaotic "
                   "network) and overflows float32" + (" (max |dL/dw| " + ", ".join(
                       f"{v:.3g} at 20 ms for set {k}" for k, v in short.items()) + ")" if short else "") +
                   "; the timing and memory are those of the full computation all the same.")
    return out + ([""] if out else [])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(IMPLS))
    ap.add_argument("--sets", default=None, help="comma-separated indices into the parameter sets (0,1,2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of ours after the first call (best)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    ap.add_argument("--t-sim", type=float, default=T_SIM, help="biological time in ms (1000)")
    ap.add_argument("--t-grad", type=float, default=T_GRAD, help="biological time of the gradient in ms (200)")
    ap.add_argument("--write", action="store_true", help="write docs even with --only/--sets")
    ap.add_argument("--render-json", action="store_true",
                    help="rewrite the docs section from benchmarks/results/brunel.json (no measurement)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--set", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.render_json:
        render_json(RESULTS_JSON)
        return

    from tqdm import tqdm

    names = list(IMPLS) if not args.only else [a.strip() for a in args.only.split(",")]
    unknown = [a for a in names if a not in IMPLS]
    if unknown:
        ap.error(f"unknown names {unknown}; choose from {list(IMPLS)}")
    sets = list(range(len(SETS))) if not args.sets else [int(s) for s in args.sets.split(",")]
    if any(not 0 <= k < len(SETS) for k in sets):
        ap.error(f"--sets takes indices 0..{len(SETS) - 1}, got {args.sets!r}")
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    machine = _harness.machine_info(("jax", "jaxlib", "equinox", "numpy", "nest", "brian2"))
    R = {}
    jobs = [(nm, k) for k in sets for nm in names]
    with tempfile.TemporaryDirectory() as tmp:
        bar = tqdm(jobs, desc="brunel", unit="run")
        for nm, k in bar:
            bar.set_postfix_str(f"{nm} set {k}")
            r = launch(nm, k, args, tmp)
            R[f"{nm}@{k}"] = r
            if not r.get("ok"):
                tqdm.write(f"{nm} set {k}: FAILED {r.get('error')}")
            elif nm in GRAD_T:
                tqdm.write(f"{nm} set {k}: fwd {r['fwd_s']:.2f} s, value_and_grad {r['grad_s']:.2f} s "
                           f"({r['ratio']:.1f}x)")
            else:
                tqdm.write(f"{nm} set {k}: build {r['build_s']:.2f} s, run {r['run_s']:.2f} s (RTF {r['rtf']:.2f}), "
                           f"E {r['rate_E_Hz']:.2f} Hz, I {r['rate_I_Hz']:.2f} Hz, CV {r['cv_mean']:.3f}")
        load_after = os.getloadavg()
        total_s = time.perf_counter() - t_start
        cmd = "python benchmarks/brunel.py" + " ".join([""] + sys.argv[1:])
        write = args.write or (not args.only and not args.sets)
        if write:
            try:
                make_plot(R, 1 if 1 in sets else sets[0], IMG, args.t_sim)
            except Exception as err:  # noqa: BLE001
                print(f"plot failed: {err}", file=sys.stderr)
        chk = reference_check(R, sets) if args.t_sim == 1000.0 else []
        section = render(R, sets, machine, cmd, total_s, load_before, load_after, args, chk)
    print(section)
    if write:
        _harness.write_doc("brunel", section)
        os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
        keep = {k: {a: b for a, b in r.items() if a != "spikes"} for k, r in R.items()}
        with open(RESULTS_JSON, "w") as f:
            json.dump(dict(machine=machine, command=cmd, total_s=total_s, load_before=load_before, sets=sets,
                           args=dict(repeats=args.repeats, t_sim=args.t_sim), reference=chk,
                           load_after=load_after, results=keep), f, indent=1, default=float)
        print(f"wrote {_harness.DOC}, {IMG}, {RESULTS_JSON}")


def render_json(path):
    """Rewrite the docs section from a results JSON (the figure and the timings stay as measured)."""
    with open(path) as f:
        d = json.load(f)
    section = render(d["results"], d["sets"], d["machine"], d["command"], d["total_s"], d["load_before"],
                     d["load_after"], argparse.Namespace(**d["args"]), d["reference"])
    _harness.write_doc("brunel", section)
    print(section)


if __name__ == "__main__":
    main()
