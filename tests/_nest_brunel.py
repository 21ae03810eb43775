"""Brunel (2000) model A run by the real NEST simulator, in a child process; spike statistics.

Imported by `tests/test_brunel_nest.py` (slow) and `benchmarks/brunel.py` (the NEST anchor); needs
NEST 3 (`pip install nest-simulator`) only in the child. Running the file itself is the child:

    python tests/_nest_brunel.py --J 0.1 --g 5 --eta 2 --out spikes.npz   # prints `RESULT {json}`

The model is that of the project's reference data script (../shared/reference/scripts/
ref_brunel_nest.py, which made ../shared/reference/data/brunel_nest*.npz); its few model lines are
copied here so that the project does not import from outside itself: NE excitatory + NI inhibitory
`iaf_psc_delta` neurons (tau_m 20 ms, C_m 1 pF, theta 20 mV, V_reset 10 mV, E_L 0 mV, t_ref 2 ms,
V_m(0) = 0 mV), fixed in-degree CE = epsilon NE excitatory and CI = epsilon NI inhibitory inputs per
neuron (autapses and multapses allowed, NEST's defaults), PSP jumps J (exc.) and -g J (inh.) mV,
delay D ms; external drive: one `poisson_generator` at eta nu_thr CE (nu_thr = theta / (J CE tau_m))
connected to every neuron (an independent realisation per target), weight J, delay D; one thread.

Statistics (`spike_stats`) as the reference script computes them: rates over the whole run and after
`t0` ms, CV of the inter-spike intervals of the spikes after `t0` per neuron with >= 3 such spikes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# Brunel's model A as in ref_brunel_nest.py (units: mV, ms, pF)
NEURON = dict(tau_m=20.0, C_m=1.0, theta=20.0, V_reset=10.0, E_L=0.0, t_ref=2.0, V_m0=0.0)


def brunel_params(*, J: float = 0.1, g: float = 5.0, eta: float = 2.0, NE: int = 4000, NI: int = 1000,
                  epsilon: float = 0.1, delay: float = 1.5, dt: float = 0.1) -> dict:
    """Every parameter of the network, derived ones included (CE, CI, nu_thr_Hz, poisson_rate_Hz).

    **Arguments:** `J` excitatory PSP jump (mV), `g` relative inhibition (inhibitory jump -g J mV),
    `eta` external rate / threshold rate, `NE`/`NI` population sizes, `epsilon` connection
    probability (in-degrees CE = int(epsilon NE), CI = int(epsilon NI)), `delay` (ms), `dt` (ms).
    """
    p = dict(J=float(J), g=float(g), eta=float(eta), NE=int(NE), NI=int(NI), epsilon=float(epsilon),
             delay=float(delay), dt=float(dt), **NEURON)
    p["CE"] = int(p["epsilon"] * p["NE"])
    p["CI"] = int(p["epsilon"] * p["NI"])
    nu_th = p["theta"] / (p["J"] * p["CE"] * p["tau_m"])  # 1/ms
    p["nu_thr_Hz"] = 1000.0 * nu_th
    p["nu_ext_Hz"] = p["eta"] * p["nu_thr_Hz"]  # per external input (CE of them)
    p["poisson_rate_Hz"] = p["nu_ext_Hz"] * p["CE"]  # total external rate per neuron
    return p


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_nest_here(p: dict, *, t_sim: float = 1000.0, seed: int = 12345) -> dict:
    """Build and run the network in this process (NEST, one thread); spikes and timings.

    Returns senders (0-based, E first), times_ms, and wall / CPU seconds of the import, the build
    (Create + Connect), Prepare and Run (`t_sim` ms), RSS after the import and peak RSS (bytes).
    """
    t, c = time.perf_counter(), time.process_time()
    import nest
    nest.set_verbosity("M_ERROR")
    out = dict(import_s=time.perf_counter() - t, version=nest.__version__, rss_after_import=_rss_bytes())

    t, c = time.perf_counter(), time.process_time()
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": p["dt"], "local_num_threads": 1, "rng_seed": seed, "print_time": False})
    nest.SetDefaults("iaf_psc_delta", {"C_m": p["C_m"], "tau_m": p["tau_m"], "t_ref": p["t_ref"], "E_L": p["E_L"],
                                       "V_th": p["theta"], "V_reset": p["V_reset"], "V_m": p["V_m0"]})
    exc = nest.Create("iaf_psc_delta", p["NE"])
    inh = nest.Create("iaf_psc_delta", p["NI"])
    noise = nest.Create("poisson_generator", params={"rate": p["poisson_rate_Hz"]})
    sr = nest.Create("spike_recorder")
    allpop = exc + inh
    syn_e = {"synapse_model": "static_synapse", "weight": p["J"], "delay": p["delay"]}
    syn_i = {"synapse_model": "static_synapse", "weight": -p["g"] * p["J"], "delay": p["delay"]}
    nest.Connect(noise, allpop, syn_spec=syn_e)
    nest.Connect(exc, allpop, {"rule": "fixed_indegree", "indegree": p["CE"]}, syn_e)
    nest.Connect(inh, allpop, {"rule": "fixed_indegree", "indegree": p["CI"]}, syn_i)
    nest.Connect(allpop, sr)
    out.update(build_s=time.perf_counter() - t, build_cpu_s=time.process_time() - c, rss_after_build=_rss_bytes())

    t, c = time.perf_counter(), time.process_time()
    nest.Prepare()
    out.update(prepare_s=time.perf_counter() - t, prepare_cpu_s=time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    nest.Run(t_sim)
    out.update(run_s=time.perf_counter() - t, run_cpu_s=time.process_time() - c)
    nest.Cleanup()

    ev = sr.get("events")
    out["senders"] = np.asarray(ev["senders"], dtype=np.int64) - allpop[0].global_id
    out["times_ms"] = np.asarray(ev["times"], dtype=np.float64)
    out["num_connections"] = int(nest.GetKernelStatus("num_connections"))
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["threads"] = int(nest.GetKernelStatus("local_num_threads"))
    return out


def spike_stats(senders: np.ndarray, times_ms: np.ndarray, NE: int, NI: int, t_sim: float,
                t0: float = 200.0) -> dict:
    """Population rates (Hz; whole run and after `t0` ms) and CV(ISI) of the spikes after `t0`.

    `senders`: 0-based neuron index (E = 0..NE-1, I = NE..NE+NI-1); `times_ms`: spike times (ms).
    CV per neuron with >= 3 spikes after t0 (ISI std / mean, population std as numpy's default),
    averaged over those neurons (`cv_mean`, as the reference script's `cv_isi_mean`).
    """
    senders = np.asarray(senders, np.int64)
    times_ms = np.asarray(times_ms, np.float64)
    n = NE + NI
    isE = senders < NE
    late = times_ms > t0
    order = np.lexsort((times_ms, senders))
    s, tt = senders[order], times_ms[order]
    keep = tt > t0
    s, tt = s[keep], tt[keep]
    k = np.bincount(s, minlength=n)
    same = s[1:] == s[:-1]  # consecutive spikes of one neuron -> an ISI
    isi, who = np.diff(tt)[same], s[1:][same]
    m1 = np.bincount(who, isi, minlength=n)
    m2 = np.bincount(who, isi * isi, minlength=n)
    ok = k >= 3
    cnt = np.maximum(k - 1, 1)
    mean = m1 / cnt
    var = np.maximum(m2 / cnt - mean * mean, 0.0)
    cv = np.where(ok, np.sqrt(var) / np.where(mean > 0, mean, 1.0), np.nan)
    pop = np.histogram(times_ms, bins=np.arange(0.0, t_sim + 1.0, 1.0))[0]
    pl = pop[int(t0):]
    return dict(rate_E_Hz=float(isE.sum() / NE / (t_sim / 1000.0)),
                rate_I_Hz=float((~isE).sum() / NI / (t_sim / 1000.0)),
                rate_E_Hz_after_t0=float((isE & late).sum() / NE / ((t_sim - t0) / 1000.0)),
                rate_I_Hz_after_t0=float((~isE & late).sum() / NI / ((t_sim - t0) / 1000.0)),
                cv_mean=float(np.nanmean(cv)) if ok.any() else float("nan"),
                cv_mean_E=float(np.nanmean(cv[:NE])) if ok[:NE].any() else float("nan"),
                cv_mean_I=float(np.nanmean(cv[NE:])) if ok[NE:].any() else float("nan"),
                cv_n=int(ok.sum()), n_spikes=int(len(times_ms)),
                pop_fano_after_t0=float(pl.var() / max(pl.mean(), 1e-12)), t0_ms=float(t0))


def run_nest(*, t_sim: float = 1000.0, seed: int = 12345, timeout: float = 1800.0, out: str | None = None,
             **params) -> dict:
    """Run the network in a fresh NEST child process; its timings, spikes and `spike_stats`.

    `params` as `brunel_params`. `out` (an .npz path) keeps the spikes; a temporary file otherwise.
    Raises RuntimeError with the child's last stderr lines if it fails.
    """
    import tempfile

    p = brunel_params(**params)
    with tempfile.TemporaryDirectory() as tmp:
        path = out or os.path.join(tmp, "spikes.npz")
        cmd = [sys.executable, os.path.abspath(__file__), "--params", json.dumps(p), "--t-sim", str(t_sim),
               "--seed", str(seed), "--out", path]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise RuntimeError(f"NEST child failed (code {proc.returncode}): " + "\n".join(
                proc.stderr.strip().splitlines()[-15:]))
        res = json.loads(lines[-1][len("RESULT "):])
        with np.load(path) as z:
            res["senders"], res["times_ms"] = z["senders"], z["times_ms"]
    res["process_s"] = time.perf_counter() - t
    return res


def _main(argv=None):
    ap = argparse.ArgumentParser(description="NEST child: run the Brunel network, write spikes, print RESULT.")
    ap.add_argument("--params", required=True, help="json of brunel_params(...)")
    ap.add_argument("--t-sim", type=float, default=1000.0, help="biological time (ms)")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", required=True, help="npz for senders / times_ms")
    args = ap.parse_args(argv)
    p = json.loads(args.params)
    res = run_nest_here(p, t_sim=args.t_sim, seed=args.seed)
    np.savez(args.out, senders=res.pop("senders"), times_ms=res.pop("times_ms"))
    with np.load(args.out) as z:
        res.update(spike_stats(z["senders"], z["times_ms"], p["NE"], p["NI"], args.t_sim))
    res.update(params=p, t_sim_ms=args.t_sim, seed=args.seed)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    _main()
