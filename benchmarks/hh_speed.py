#!/usr/bin/env python
"""Benchmark (issue 5): speed of the classic HH population, forward and gradient, on one core.

Workload: as `hh_population.py` (its constants are imported): N classic HH point neurons,
I_i = linspace(0, 20, N)[i] uA/cm2 constant from t = 0, V0 = -65 mV (gates at steady state),
dt = 0.025 ms, 6.3 degC, exponential-Euler gates, float32 unless noted.

Implementations, each in its own child process (`--worker NAME --job JOB`, one `RESULT {json}`
line, through `_harness.run_child`):
- `naive`: hh_population's `naive_hh` (jit + lax.scan, exponential Euler, 30 lines);
- `c_loop`: the same maths as a hand-fused C loop (float32, `expf`), written and built here with
  `gcc -O3 -march=native -ffast-math`, timed inside the C program (clock_gettime of the process
  CPU clock, or the monotonic clock with `--clock wall`, around the time loop only);
- `ours_xla`: `bf.simulate(bf.HH(scheme="exp_euler", decay="pade"), state0, current, DT, n_steps=T,
  record=bf.Total("output"))` in one jitted function: the (N,) current held constant, as in the
  naive version and the C loop; the decays exp(-z) by the [2/3] Pade approximant;
- `ours_xla_exact`: the same with exact exponential decays (`decay="exp"`, the default);
- `ours_xla_rec`: `ours_xla` with V also recorded at every step (`record={"n": bf.Total("output"),
  "v": "v"}`, V returned as (N, T)); `naive_rec`: `naive` with V recorded at every step as a new user
  would (its `lax.scan` also returns V, transposed to (N, T) as `simulate` returns it);
  `naive_rec_tm`: the same, V left time-major (T, N) as the scan stacks it. These rows run at the
  first size only (at N = 10,000 the record is 1.6 GB) and their 'x naive' is against `naive_rec`;
- `ours_xla_series`: as `ours_xla`, the inputs an (N, T) array broadcast from the current inside
  the jitted function (what the input stream costs);
- `ours_xla_fastexp`: exact decays, every exp replaced by the polynomial `fast_exp`;
- `ours_xla_f64`: `ours_xla_exact` in float64 (the accuracy reference: same scheme, exact
  exponentials);
- `ours_pallas`: `backend="pallas"`; on CPU the kernels run with `interpret=True` (emulation,
  not a speed path), so only at a small size;
- anchors: NEURON and NEURON+CoreNEURON (hh_population's workers: backward Euler, float64),
  Brian2 cpp_standalone (hh_population's worker: exponential Euler, float64), Jaxley (one
  `jx.Compartment` with `jaxley.channels.HH`, `jax.vmap` over the cells' stimuli, from the venv
  /tmp/jaxley_venv) and BrainPy (`brainpy.dyn.HH`, exp_auto, `bm.for_loop` under `bm.jit`, from
  the venv /tmp/brainpy_venv).

Jobs: `fwd` (throughput at one (N, T); with `--trace-steps` also the V trace of the first steps,
for spike times), `sweep` (throughput against N and against T), `grad` (value_and_grad of the
mean V over neurons and time w.r.t. (g_na, g_k, g_l), over its own forward time), `mem` (peak RSS
and XLA memory analysis of the gradient through 40,000 steps of 1,000 neurons).

Clock: by default (`--clock cpu`) every time a worker measures -- runs and compilation, in this
file and in hh_population's NEURON / Brian2 workers -- is the CPU time of the worker process and
its finished children (`time.process_time()` + `RUSAGE_CHILDREN`; the C loop reads
`CLOCK_PROCESS_CPUTIME_ID`): on a machine shared with other jobs, wall time also counts the time a
worker waits for its core, which differs between workers run one after another. Everything runs
single-threaded, so on a quiet machine the two clocks agree. `--clock wall` uses wall time.

Usage:
    python benchmarks/hh_speed.py             # full run: docs/benchmarks.md section `hh_speed`,
                                              # docs/img/hh_speed_scaling.png,
                                              # benchmarks/results/hh_speed.json
    python benchmarks/hh_speed.py --quick     # smoke test (small sizes), prints only
    python benchmarks/hh_speed.py --only naive,c_loop,ours_xla --repeats 3
    python benchmarks/hh_speed.py --only naive,naive_rec,naive_rec_tm,ours_xla,ours_xla_rec --jobs fwd
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback

import _harness  # noqa: F401  (pins one core before numpy/JAX/NEURON load)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMG = os.path.join(ROOT, "docs", "img", "hh_speed_scaling.png")
RESULTS_JSON = os.path.join(HERE, "results", "hh_speed.json")
JAXLEY_PY = "/tmp/jaxley_venv/bin/python"
BRAINPY_PY = "/tmp/brainpy_venv/bin/python"

# the workload: hh_population's constants (kept in one place)
DT, V0, CELSIUS, I_MAX = 0.025, -65.0, 6.3, 20.0
GNA, GK, GL, ENA, EK, EL, CM = 120.0, 36.0, 0.3, 50.0, -77.0, -54.387, 1.0
EDGE = (6.0, 6.5)  # uA/cm2: the bistable edge (a few spikes vs tonic firing)

# name -> (label, kind, scheme note, interpreter)
IMPLS = {
    "naive": ("naive JAX (jit + lax.scan, hh_population.naive_hh)", "jax", "exp. Euler", None),
    "c_loop": ("hand-fused C loop (gcc -O3 -march=native -ffast-math, expf)", "c", "exp. Euler", None),
    "ours_xla": ("brainfuse_jax simulate(..., n_steps=T), HH(scheme=\"exp_euler\", decay=\"pade\"), XLA", "jax",
                 "exp. Euler, Pade decays", None),
    "ours_xla_exact": ("brainfuse_jax simulate(..., n_steps=T), HH(scheme=\"exp_euler\") (exact exp decays), XLA",
                       "jax", "exp. Euler", None),
    "ours_xla_rec": ("brainfuse_jax simulate(..., n_steps=T), decay=\"pade\", V recorded every step, (N, T)", "jax",
                     "exp. Euler, Pade decays", None),
    "naive_rec": ("naive JAX, V recorded every step (the scan's V transposed to (N, T), as simulate's)", "jax",
                  "exp. Euler", None),
    "naive_rec_tm": ("naive JAX, V recorded every step, left time-major (T, N)", "jax", "exp. Euler", None),
    "ours_xla_series": ("brainfuse_jax simulate, decay=\"pade\", inputs as an (N, T) array, XLA", "jax",
                        "exp. Euler, Pade decays", None),
    "ours_xla_fastexp": ("brainfuse_jax simulate(..., n_steps=T), HH(scheme=\"exp_euler\", fast_exp=True), XLA",
                         "jax", "exp. Euler", None),
    "ours_xla_f64": ("brainfuse_jax simulate, float64, exact exp decays (accuracy reference)", "jax", "exp. Euler",
                     None),
    "ours_pallas": ("brainfuse_jax simulate(backend=\"pallas\"): interpret mode (CPU emulation; "
                    "not a speed path)", "jax", "exp. Euler", None),
    "neuron": ("NEURON (hh)", "anchor", "backward Euler (NEURON)", None),
    "neuron_coreneuron": ("NEURON + CoreNEURON", "anchor", "backward Euler (NEURON)", None),
    "brian2": ("Brian2 cpp_standalone", "anchor", "exp. Euler", None),
    "jaxley": ("Jaxley (Compartment + HH, vmap over cells)", "anchor", "implicit V, exp. Euler gates",
               JAXLEY_PY),
    "brainpy": ("BrainPy (brainpy.dyn.HH, exp_auto)", "anchor", "exp. Euler (exp_auto)", BRAINPY_PY),
}
DTYPE = {"ours_xla_f64": "float64", "neuron": "float64", "neuron_coreneuron": "float64", "brian2": "float64"}
GRAD_IMPLS = ("ours_ckpt", "ours_fwdmode", "ours_fwdmode_xla", "ours_direct", "naive", "jaxley", "ours_f64")
MEM_IMPLS = ("ours_ckpt", "ours_fwdmode", "ours_direct", "naive")
# rows with V recorded at every step: compared with naive_rec (same record) instead of naive; first size only
REC_IMPLS = ("ours_xla_rec", "naive_rec", "naive_rec_tm")


def current_density(n):
    return np.linspace(0.0, I_MAX, n)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return None


def _maxrss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# =================================================================================================
# spike times from V traces (N, T+1), trace[:, 0] = V0
# =================================================================================================
def spike_times(trace, dt=DT, max_spikes=160):
    """Upward 0-mV crossings, linearly interpolated between samples; (N, max_spikes), NaN-padded."""
    trace = np.asarray(trace, np.float64)
    n = trace.shape[0]
    out = np.full((n, max_spikes), np.nan)
    a, b = trace[:, :-1], trace[:, 1:]
    rows, cols = np.nonzero((a < 0.0) & (b >= 0.0))
    frac = -a[rows, cols] / (b[rows, cols] - a[rows, cols])
    t = (cols + frac) * dt
    k = np.zeros(n, int)
    for r, tt in zip(rows, t):
        if k[r] < max_spikes:
            out[r, k[r]] = tt
        k[r] += 1
    return out, k


def compare_spike_times(st, k, st_ref, k_ref, current, t_window=None):
    """Max |spike time difference| (ms) over neurons with the same number of spikes (within
    `t_window` ms if given), all neurons / outside the bistable edge; and count mismatches."""
    keep = ~((current >= EDGE[0]) & (current <= EDGE[1]))
    if t_window is not None:
        st = np.where(st <= t_window, st, np.nan)
        st_ref = np.where(st_ref <= t_window, st_ref, np.nan)
        k, k_ref = np.sum(~np.isnan(st), 1), np.sum(~np.isnan(st_ref), 1)
    same = k == k_ref
    both = ~np.isnan(st) & ~np.isnan(st_ref)
    d = np.max(np.where(both, np.abs(np.nan_to_num(st) - np.nan_to_num(st_ref)), 0.0), axis=1)
    out = dict(max_dt_ms=float(d[same].max()) if same.any() else None,
               max_dt_ms_excl_edge=float(d[same & keep].max()) if (same & keep).any() else None,
               count_mismatch=int((~same).sum()), count_mismatch_excl_edge=int((~same & keep).sum()),
               spikes_compared=int(np.sum(k_ref[same])))
    return out


# =================================================================================================
# the C loop
# =================================================================================================
C_SOURCE = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec ts; clock_gettime(CLOCK_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }

#define GNA %(GNA)sf
#define GK %(GK)sf
#define GL %(GL)sf
#define ENA %(ENA)sf
#define EK %(EK)sf
#define EL %(EL)sf
#define CM %(CM)sf
#define DT %(DT)sf
#define V0 %(V0)sf

static void init(int n, float *v, float *m, float *h, float *g) {
  for (int i = 0; i < n; i++) {
    float x = V0;
    float am = 0.1f * (x + 40.f) / (1.f - expf(-(x + 40.f) / 10.f)), bm = 4.f * expf(-(x + 65.f) / 18.f);
    float ah = 0.07f * expf(-(x + 65.f) / 20.f), bh = 1.f / (1.f + expf(-(x + 35.f) / 10.f));
    float an = 0.01f * (x + 55.f) / (1.f - expf(-(x + 55.f) / 10.f)), bn = 0.125f * expf(-(x + 65.f) / 80.f);
    v[i] = x; m[i] = am / (am + bm); h[i] = ah / (ah + bh); g[i] = an / (an + bn);
  }
}

/* one exponential-Euler step of every neuron: the naive maths, fused by hand */
static inline void step(int n, float *restrict v, float *restrict m, float *restrict h, float *restrict g,
                        const float *restrict I, int *restrict count) {
  for (int i = 0; i < n; i++) {
    float x = v[i];
    float am = 0.1f * (x + 40.f) / (1.f - expf(-(x + 40.f) / 10.f));
    float bm = 4.f * expf(-(x + 65.f) / 18.f);
    float ah = 0.07f * expf(-(x + 65.f) / 20.f);
    float bh = 1.f / (1.f + expf(-(x + 35.f) / 10.f));
    float an = 0.01f * (x + 55.f) / (1.f - expf(-(x + 55.f) / 10.f));
    float bn = 0.125f * expf(-(x + 65.f) / 80.f);
    float mi = m[i], hi = h[i], ni = g[i], n2 = ni * ni;
    float gna = GNA * mi * mi * mi * hi, gk = GK * n2 * n2, gt = gna + gk + GL;
    float vinf = (gna * ENA + gk * EK + GL * EL + I[i]) / gt;
    float vn = vinf + (x - vinf) * expf(-DT * gt / CM);
    float sm = am + bm, sh = ah + bh, sn = an + bn;
    m[i] = am / sm + (mi - am / sm) * expf(-DT * sm);
    h[i] = ah / sh + (hi - ah / sh) * expf(-DT * sh);
    g[i] = an / sn + (ni - an / sn) * expf(-DT * sn);
    count[i] += (x < 0.f) & (vn >= 0.f);
    v[i] = vn;
  }
}

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: n steps repeats currents.f32 counts.i32 trace_steps [trace.f32]\n"); return 2; }
  int n = atoi(argv[1]); long T = atol(argv[2]); int repeats = atoi(argv[3]); long trace_steps = atol(argv[6]);
  float *I = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));
  float *h = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
  int *count = malloc(n * sizeof(int));
  FILE *f = fopen(argv[4], "rb");
  if (!f || fread(I, sizeof(float), n, f) != (size_t)n) { fprintf(stderr, "cannot read currents\n"); return 1; }
  fclose(f);
  printf("WALLS");
  for (int r = 0; r < repeats; r++) {
    init(n, v, m, h, g);
    memset(count, 0, n * sizeof(int));
    double t0 = now();
    for (long t = 0; t < T; t++) step(n, v, m, h, g, I, count);
    double t1 = now();
    printf(" %%.9f", t1 - t0);
  }
  printf("\n");
  int finite = 1;
  for (int i = 0; i < n; i++) finite &= isfinite(v[i]) != 0;
  printf("FINITE %%d\n", finite);
  f = fopen(argv[5], "wb"); fwrite(count, sizeof(int), n, f); fclose(f);
  if (trace_steps > 0) {  /* V after each step, (n, trace_steps + 1) row-major, for spike times */
    float *tr = malloc((size_t)n * (trace_steps + 1) * sizeof(float));
    int *c2 = calloc(n, sizeof(int));
    init(n, v, m, h, g);
    for (int i = 0; i < n; i++) tr[(size_t)i * (trace_steps + 1)] = v[i];
    for (long t = 0; t < trace_steps; t++) {
      step(n, v, m, h, g, I, c2);
      for (int i = 0; i < n; i++) tr[(size_t)i * (trace_steps + 1) + t + 1] = v[i];
    }
    f = fopen(argv[7], "wb"); fwrite(tr, sizeof(float), (size_t)n * (trace_steps + 1), f); fclose(f);
  }
  return 0;
}
"""
C_FLAGS = ["-O3", "-march=native", "-ffast-math"]


def build_c(tmp):
    src = os.path.join(tmp, "hh_loop.c")
    exe = os.path.join(tmp, "hh_loop")
    consts = dict(GNA=GNA, GK=GK, GL=GL, ENA=ENA, EK=EK, EL=EL, CM=CM, DT=DT, V0=V0)
    with open(src, "w") as f:
        f.write(C_SOURCE % {k: repr(float(v)) for k, v in consts.items()})
    t = time.perf_counter()
    clock = "CLOCK_MONOTONIC" if os.environ.get("HH_SPEED_CLOCK") == "wall" else "CLOCK_PROCESS_CPUTIME_ID"
    subprocess.run(["gcc", *C_FLAGS, f"-DCLOCK_ID={clock}", "-o", exe, src, "-lm"], check=True, capture_output=True,
                   text=True)
    return exe, time.perf_counter() - t


def run_c(exe, tmp, n, n_steps, repeats, trace_steps=0):
    cur = os.path.join(tmp, f"cur_{n}.f32")
    current_density(n).astype(np.float32).tofile(cur)
    cnt, trp = os.path.join(tmp, "counts.i32"), os.path.join(tmp, "trace.f32")
    out = subprocess.run([exe, str(n), str(n_steps), str(repeats), cur, cnt, str(trace_steps), trp],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    walls = [float(x) for x in next(ln for ln in out if ln.startswith("WALLS")).split()[1:]]
    finite = next(ln for ln in out if ln.startswith("FINITE")).split()[1] == "1"
    info = dict(times_s=walls, counts=np.fromfile(cnt, np.int32), finite=finite, dtype="float32")
    if trace_steps:
        info["trace"] = np.fromfile(trp, np.float32).reshape(n, trace_steps + 1)
    return info


# =================================================================================================
# JAX helpers
# =================================================================================================
def _jax(x64=False):
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    return jax


def _compile(fn, args):
    """(compiled, lower_s, compile_s): lower (trace) + XLA compile of a jitted function."""
    t0 = time.perf_counter()
    lowered = fn.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t1 - t0, time.perf_counter() - t1


def _time(compiled, args, repeats):
    import jax
    walls, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        walls.append(time.perf_counter() - t)
    return out, walls


def _mem_analysis(compiled):
    try:
        m = compiled.memory_analysis()
    except Exception as err:  # noqa: BLE001
        return dict(error=str(err))
    if m is None:
        return dict(error="memory_analysis() returned None")
    keys = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
            "generated_code_size_in_bytes")
    return {k: int(getattr(m, k)) for k in keys if hasattr(m, k)}


@contextlib.contextmanager
def naive_capture(hp, mode, g=None):
    """Run `hp.naive_hh` unchanged but (while tracing) wrap its `lax.scan` so that it also
    returns the V trace (`mode="trace"`) or the running sum of V (`mode="sum"`) in `box`, and
    (optionally) use the traced conductances `g = (g_na, g_k, g_l)` for its module constants."""
    import jax
    import jax.numpy as jnp
    orig_scan = jax.lax.scan
    saved = (hp.GNA, hp.GK, hp.GL)
    box = {}

    def scan(f, init, xs=None, length=None, **kw):
        if mode == "trace":
            def body(c, x):
                c2, y = f(c, x)
                return c2, c2[0]
            c, ys = orig_scan(body, init, xs, length=length, **kw)
            box["v"] = ys
            return c, None

        def body(carry, x):
            c, acc = carry
            c2, y = f(c, x)
            return (c2, acc + c2[0]), y
        (c, acc), ys = orig_scan(body, (init, jnp.zeros_like(init[0])), xs, length=length, **kw)
        box["sum_v"] = acc
        return c, ys

    jax.lax.scan = scan
    if g is not None:
        hp.GNA, hp.GK, hp.GL = g[0], g[1], g[2]
    try:
        yield box
    finally:
        jax.lax.scan = orig_scan
        hp.GNA, hp.GK, hp.GL = saved


def _ours_kwargs(name):
    if name == "ours_pallas":
        return dict(backend="pallas")
    return {}


def _ours_decay(name):
    """The model options of each of our rows: Pade decays unless the row is about exact ones."""
    return {"ours_xla_exact": {}, "ours_xla_f64": {}, "ours_xla_fastexp": dict(fast_exp=True)}.get(
        name, dict(decay="pade"))


def _ours_model(bf, g=None, **kw):
    g = (GNA, GK, GL) if g is None else g
    return bf.HH(g_na=g[0], g_k=g[1], g_l=g[2], e_na=ENA, e_k=EK, e_l=EL, c_m=CM,
                 temperature=CELSIUS, scheme="exp_euler", **kw)


def worker_fwd_jax(name, n, n_steps, repeats, trace_steps):
    x64 = name == "ours_xla_f64"
    jax = _jax(x64)
    import jax.numpy as jnp
    dtype = jnp.float64 if x64 else jnp.float32
    current = jnp.asarray(current_density(n), dtype)
    info = {}
    if name in ("naive_rec", "naive_rec_tm"):
        import hh_population as hp

        def run(c):
            with naive_capture(hp, "trace") as box:  # naive_hh's scan also returns V (T, N)
                v, counts = hp.naive_hh(c, V0, n_steps, DT, dtype)[:2]
                return v, counts, box["v"].T if name == "naive_rec" else box["v"]
        compiled, lower_s, compile_s = _compile(jax.jit(run), (current,))
        (v, counts, rec), walls = _time(compiled, (current,), repeats)
        if trace_steps:
            tr = np.asarray(rec if name == "naive_rec" else rec.T)[:, :trace_steps]
            info["trace"] = np.concatenate([np.full((n, 1), V0, tr.dtype), tr], axis=1)
    elif name == "naive":
        import hh_population as hp

        def make(T):
            return jax.jit(lambda c: hp.naive_hh(c, V0, T, DT, dtype)[:2])
        run = make(n_steps)
        compiled, lower_s, compile_s = _compile(run, (current,))
        (v, counts), walls = _time(compiled, (current,), repeats)
        if trace_steps:
            with naive_capture(hp, "trace") as box:
                def traced(c):
                    hp.naive_hh(c, V0, trace_steps, DT, dtype)
                    return box["v"]
                lowered = jax.jit(traced).lower(current)
            tr = np.asarray(lowered.compile()(current)).T
            info["trace"] = np.concatenate([np.full((n, 1), V0, tr.dtype), tr], axis=1)
    else:
        import brainfuse_jax as bf
        model = _ours_model(bf, **_ours_decay(name))
        state0 = model.init_state((n,), dtype=dtype, v0=V0)
        kw = _ours_kwargs(name)

        def make(T, record):
            @jax.jit
            def run(model, state0, current):
                if name == "ours_xla_series":
                    final, rec = bf.simulate(model, state0, jnp.broadcast_to(current[:, None], (n, T)), DT,
                                             record=record, **kw)
                else:
                    final, rec = bf.simulate(model, state0, current, DT, n_steps=T, record=record, **kw)
                return final["v"], rec
            return run
        if name == "ours_pallas":
            # simulate is itself one (equinox) jitted function; called directly, dt stays a Python
            # float, which the Pallas kernels need (they are specialised to dt).
            def make(T, record):
                xs = jax.block_until_ready(jnp.broadcast_to(current[:, None], (n, T)))

                def run(model, state0, current):
                    final, rec = bf.simulate(model, state0, xs, DT, record=record, **kw)
                    return final["v"], rec
                return run
            run = make(n_steps, bf.Total("output"))
            t = time.perf_counter()
            jax.block_until_ready(run(model, state0, current))
            first = time.perf_counter() - t
            (v, counts), walls = _time(run, (model, state0, current), repeats)
            lower_s, compile_s = 0.0, first - min(walls)
            info["notes"] = ("bf.simulate(..., backend='pallas') called directly (its own jit), inputs "
                             "materialised outside; Pallas interpret mode on CPU; compile = first call - best call")
        elif name == "ours_xla_rec":  # the V record of the timed run is the trace
            run = make(n_steps, {"n": bf.Total("output"), "v": "v"})
            compiled, lower_s, compile_s = _compile(run, (model, state0, current))
            (v, rec), walls = _time(compiled, (model, state0, current), repeats)
            counts = rec["n"]
            info["memory_analysis"] = _mem_analysis(compiled)
            if trace_steps:
                tr = np.asarray(rec["v"])[:, :trace_steps]
                info["trace"] = np.concatenate([np.full((n, 1), V0, tr.dtype), tr], axis=1)
                trace_steps = 0
        else:
            run = make(n_steps, bf.Total("output"))
            compiled, lower_s, compile_s = _compile(run, (model, state0, current))
            (v, counts), walls = _time(compiled, (model, state0, current), repeats)
            info["memory_analysis"] = _mem_analysis(compiled)
        if trace_steps:
            (_, tr) = make(trace_steps, "v")(model, state0, current)
            tr = np.asarray(tr)
            info["trace"] = np.concatenate([np.full((n, 1), V0, tr.dtype), tr], axis=1)
    info.update(times_s=walls, lower_s=lower_s, compile_s=compile_s, counts=np.asarray(counts).astype(np.int64),
                finite=bool(np.isfinite(np.asarray(v)).all()), dtype=str(jnp.dtype(dtype)))
    return info


def worker_fwd_c(n, n_steps, repeats, trace_steps):
    with tempfile.TemporaryDirectory() as tmp:
        exe, build_s = build_c(tmp)
        info = run_c(exe, tmp, n, n_steps, repeats, trace_steps)
    info.update(compile_s=build_s, notes="built by the benchmark: gcc " + " ".join(C_FLAGS) +
                "; timed inside the program (clock_gettime(" + ("CLOCK_MONOTONIC" if os.environ.get("HH_SPEED_CLOCK")
                                                                == "wall" else "CLOCK_PROCESS_CPUTIME_ID")
                + ") around the time loop)")
    return info


def worker_fwd_anchor(name, n, n_steps, repeats):
    if name in ("neuron", "neuron_coreneuron"):
        import hh_population as hp
        info = hp.worker_neuron(n, n_steps, repeats, coreneuron=name == "neuron_coreneuron")
        info["compile_s"] = info.pop("setup_s")
        info["times_s"] = info.pop("walls_s")
        return info
    if name == "brian2":
        import hh_population as hp
        info = hp.worker_brian2(n, n_steps, repeats)
        info.pop("last_step", None)
        info["times_s"] = info.pop("walls_s")
        return info
    if name == "jaxley":
        return worker_jaxley(n, n_steps, repeats)
    if name == "brainpy":
        return worker_brainpy(n, n_steps, repeats)
    raise ValueError(name)


def _jaxley_setup(n, n_steps):
    import jax
    import jax.numpy as jnp
    import jaxley as jx
    from jaxley.channels import HH
    comp = jx.Compartment()
    comp.insert(HH())
    comp.set("HH_gNa", GNA * 1e-3)
    comp.set("HH_gK", GK * 1e-3)
    comp.set("HH_gLeak", GL * 1e-3)
    comp.set("HH_eNa", ENA)
    comp.set("HH_eK", EK)
    comp.set("HH_eLeak", EL)
    comp.set("capacitance", CM)
    comp.set("v", V0)
    comp.init_states()
    comp.record("v", verbose=False)
    r, length = float(comp.nodes["radius"].iloc[0]), float(comp.nodes["length"].iloc[0])
    area_cm2 = 2 * np.pi * r * length * 1e-8
    amps = jnp.asarray(current_density(n) * area_cm2 * 1e3, jnp.float32)  # uA/cm2 -> nA

    def one(amp, params):
        stim = jnp.full((n_steps,), amp)
        ds = comp.data_stimulate(stim)
        return jx.integrate(comp, params=params, data_stimuli=ds, delta_t=DT)[0]  # (T + 1,)
    return jax, jnp, jx, comp, amps, one


def worker_jaxley(n, n_steps, repeats):
    jax, jnp, jx, comp, amps, one = _jaxley_setup(n, n_steps)
    sim = jax.jit(jax.vmap(lambda a: one(a, [])))
    compiled, lower_s, compile_s = _compile(sim, (amps,))
    trace, walls = _time(compiled, (amps,), repeats)
    tr = np.asarray(trace)
    counts = ((tr[:, :-1] < 0) & (tr[:, 1:] >= 0)).sum(1)
    return dict(times_s=walls, compile_s=compile_s, lower_s=lower_s, counts=counts, dtype=str(tr.dtype),
                finite=bool(np.isfinite(tr).all()), version=getattr(jx, "__version__", "?"),
                jax_version=jax.__version__,
                notes=f"jaxley {getattr(jx, '__version__', '?')} (jax {jax.__version__}): one "
                      "jx.Compartment with jaxley.channels.HH, jax.vmap over the cells' data_stimulate "
                      "currents, jx.integrate (bwd_euler: implicit V, exponential-Euler gates), V "
                      "recorded every step (its only output; spikes counted from it)")


def worker_brainpy(n, n_steps, repeats):
    import brainpy as bp
    import brainpy.math as bm
    import jax
    bm.set_dt(DT)
    neu = bp.dyn.HH(n, gNa=GNA, gK=GK, gL=GL, ENa=ENA, EK=EK, EL=EL, C=CM, V_th=0.0,
                    V_initializer=bp.init.Constant(V0))
    current = bm.asarray(current_density(n).astype(np.float32))
    count = bm.Variable(bm.zeros(n, dtype=bm.int32))

    def body(i):
        count.value += neu.step_run(i, current).astype(bm.int32)
    idx = np.arange(n_steps)

    @bm.jit
    def run():
        bm.for_loop(body, idx, progress_bar=False)

    walls = []
    for r in range(repeats + 1):  # the first call compiles
        neu.reset_state()
        count.value = bm.zeros(n, dtype=bm.int32)
        jax.block_until_ready(neu.V.value)
        t = time.perf_counter()
        run()
        jax.block_until_ready(count.value)
        walls.append(time.perf_counter() - t)
    v = np.asarray(neu.V.value)
    return dict(times_s=walls[1:], compile_s=walls[0] - min(walls[1:]), counts=np.asarray(count.value),
                dtype=str(v.dtype), finite=bool(np.isfinite(v).all()), version=bp.__version__,
                notes=f"brainpy {bp.__version__} (jax {jax.__version__}): brainpy.dyn.HH(method='exp_auto', "
                      "V_th=0, gL=0.3), bm.for_loop over step_run inside bm.jit, spike counts in a "
                      "bm.Variable; compile = first call - best call")


# ---- sweep ---------------------------------------------------------------------------------------
def worker_sweep(name, sizes, repeats):
    rows = []
    if name == "c_loop":
        with tempfile.TemporaryDirectory() as tmp:
            exe, _ = build_c(tmp)
            for n, T in sizes:
                info = run_c(exe, tmp, n, T, repeats)
                rows.append(dict(n=n, n_steps=T, times_s=info["times_s"]))
        return dict(rows=rows)
    for n, T in sizes:
        info = worker_fwd_jax(name, n, T, repeats, 0)
        rows.append(dict(n=n, n_steps=T, times_s=info["times_s"], compile_s=info["compile_s"]))
    return dict(rows=rows)


# ---- gradient ------------------------------------------------------------------------------------
def _grad_fns(name, n, T):
    """(forward loss fn, value_and_grad fn, args): loss = mean over neurons and time of V (mV),
    w.r.t. g = (g_na, g_k, g_l) in mS/cm2."""
    x64 = name == "ours_f64"
    jax = _jax(x64)
    import jax.numpy as jnp
    dtype = jnp.float64 if x64 else jnp.float32
    current = jnp.asarray(current_density(n), dtype)
    g0 = jnp.asarray([GNA, GK, GL], dtype)
    if name == "naive":
        import hh_population as hp

        def loss(g, current):
            with naive_capture(hp, "sum", g) as box:
                hp.naive_hh(current, V0, T, DT, jnp.float32)
                return jnp.mean(box["sum_v"]) / T
        return jax.jit(loss), jax.jit(jax.value_and_grad(loss)), (g0, current)
    import brainfuse_jax as bf
    adj = getattr(bf, "adjoint", None) if not hasattr(bf, "CheckpointAdjoint") else bf
    adjoint = dict(ours_ckpt=adj.CheckpointAdjoint, ours_fwdmode=getattr(adj, "ForwardMode", None),
                   ours_fwdmode_xla=getattr(adj, "ForwardMode", None)).get(name, adj.DirectAdjoint)()
    execution = {"adjoint": adjoint}
    if name == "ours_fwdmode_xla":  # the same sensitivities as an XLA loop (older versions: ForwardMode(native=False))
        execution["backend"] = bf.XLA()
    state0 = _ours_model(bf).init_state((n,), dtype=dtype, v0=V0)

    def loss(g, current):  # every row (the float64 reference too) with Pade decays, the current held
        model = _ours_model(bf, g, decay="pade")
        _, sv = bf.simulate(model, state0, current, DT, n_steps=T, record=bf.Total("v"), **execution)
        return jnp.mean(sv) / T
    return jax.jit(loss), jax.jit(jax.value_and_grad(loss)), (g0, current)


def worker_grad(name, sizes, repeats):
    rows, info = [], {}
    if name == "jaxley":
        return worker_grad_jaxley(sizes, repeats)
    if name == "ours_fwdmode":  # the native loop's one-time C++ build, from an empty kernel cache
        os.environ["BRAINFUSE_CACHE"] = tempfile.mkdtemp(prefix="bf_cache_")
        t = time.perf_counter()
        fwd, vg, args = _grad_fns(name, 8, 10)
        _time(_compile(vg, args)[0], args, 1)
        info["native_build_s"] = time.perf_counter() - t
    for n, T in sizes:
        fwd, vg, args = _grad_fns(name, n, T)
        c_f, lf, cf = _compile(fwd, args)
        c_g, lg, cg = _compile(vg, args)
        val, fw = _time(c_f, args, repeats)
        (val2, grad), gw = _time(c_g, args, repeats)
        rows.append(dict(n=n, n_steps=T, fwd_times_s=fw, grad_times_s=gw, fwd_compile_s=lf + cf,
                         grad_compile_s=lg + cg, loss=float(val), grad=np.asarray(grad).tolist(),
                         grad_finite=bool(np.isfinite(np.asarray(grad)).all() and np.isfinite(float(val2))),
                         memory_analysis=_mem_analysis(c_g)))
    return dict(rows=rows, **info)


def worker_grad_jaxley(sizes, repeats):
    rows = []
    for n, T in sizes:
        jax, jnp, jx, comp, amps, one = _jaxley_setup(n, T)
        comp.make_trainable("HH_gNa", verbose=False)
        comp.make_trainable("HH_gK", verbose=False)
        comp.make_trainable("HH_gLeak", verbose=False)
        params = comp.get_parameters()

        def loss(params, amps):
            return jnp.mean(jax.vmap(lambda a: one(a, params))(amps))
        fwd, vg = jax.jit(loss), jax.jit(jax.value_and_grad(loss))
        c_f, lf, cf = _compile(fwd, (params, amps))
        c_g, lg, cg = _compile(vg, (params, amps))
        val, fw = _time(c_f, (params, amps), repeats)
        (val2, grad), gw = _time(c_g, (params, amps), repeats)
        leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(grad)]
        rows.append(dict(n=n, n_steps=T, fwd_times_s=fw, grad_times_s=gw, fwd_compile_s=lf + cf,
                         grad_compile_s=lg + cg, loss=float(val), grad=[float(x.ravel()[0]) for x in leaves],
                         grad_finite=bool(all(np.isfinite(x).all() for x in leaves) and np.isfinite(float(val2)))))
    return dict(rows=rows, notes="Jaxley: jax.value_and_grad of the mean V (vmap over cells) w.r.t. "
                "make_trainable HH_gNa, HH_gK, HH_gLeak; plain autodiff through its scan")


def worker_mem(name, n, T):
    jax = _jax()
    rss0 = _rss_bytes()
    fwd, vg, args = _grad_fns(name, n, T)
    c_g, lg, cg = _compile(vg, args)
    rss1, maxrss1 = _rss_bytes(), _maxrss_bytes()
    ma = _mem_analysis(c_g)
    need = ma.get("temp_size_in_bytes", 0) + ma.get("output_size_in_bytes", 0)
    avail = _mem_available_bytes()
    if avail is not None and need > 0.7 * avail:  # do not push the shared machine into the OOM killer
        raise MemoryError(f"not run: XLA needs {need / 2**30:.1f} GiB of temporaries, {avail / 2**30:.1f} GiB "
                          f"available; memory_analysis {ma}")
    t = time.perf_counter()
    val, grad = jax.block_until_ready(c_g(*args))
    wall = time.perf_counter() - t
    maxrss2 = _maxrss_bytes()
    return dict(n=n, n_steps=T, rss_after_import_bytes=rss0, rss_after_compile_bytes=rss1,
                maxrss_after_compile_bytes=maxrss1, peak_rss_bytes=maxrss2,
                peak_minus_after_compile_bytes=maxrss2 - rss1, grad_compile_s=lg + cg, grad_time_s=wall,
                loss=float(val), grad=np.asarray(grad).tolist(),
                grad_finite=bool(np.isfinite(np.asarray(grad)).all()), memory_analysis=ma)


# ---- worker entry ----------------------------------------------------------------------------------
def _cpu_seconds():
    """CPU seconds of this process and its finished children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ru.ru_utime + ru.ru_stime


def run_worker(args):
    if os.environ.get("HH_SPEED_CLOCK") != "wall":
        time.perf_counter = _cpu_seconds  # every timer of the worker (also hh_population's) reads CPU time
    name, job = args.worker, args.job
    result = dict(name=name, job=job, ok=False)
    try:
        if job == "fwd":
            if name == "c_loop":
                info = worker_fwd_c(args.n, args.steps, args.repeats, args.trace_steps)
            elif IMPLS[name][1] == "jax":
                info = worker_fwd_jax(name, args.n, args.steps, args.repeats, args.trace_steps)
            else:
                info = worker_fwd_anchor(name, args.n, args.steps, args.repeats)
            counts = np.asarray(info.pop("counts"), np.int64)
            trace = info.pop("trace", None)
            np.savez(args.out, counts=counts, **({} if trace is None else {"trace": trace}))
            info.update(n=args.n, n_steps=args.steps, best_s=min(info["times_s"]))
            info["steps_per_s"] = args.n * args.steps / info["best_s"]
            info["median_steps_per_s"] = args.n * args.steps / float(np.median(info["times_s"]))
        elif job == "sweep":
            info = worker_sweep(name, json.loads(args.sizes), args.repeats)
        elif job == "grad":
            info = worker_grad(name, json.loads(args.sizes), args.repeats)
        elif job == "mem":
            info = worker_mem(name, args.n, args.steps)
        else:
            raise ValueError(job)
        result.update(info)
        result["ok"] = True
    except Exception as err:  # noqa: BLE001 - report and carry on
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
    print("RESULT " + json.dumps(result, default=float), flush=True)


# =================================================================================================
# driver
# =================================================================================================
def launch(name, job, args, timeout, *, n=None, steps=None, sizes=None, trace_steps=0, out=None, repeats=None):
    py = (IMPLS[name][3] if name in IMPLS else None) or sys.executable
    if job == "grad" and name == "jaxley":
        py = JAXLEY_PY
    if not os.path.exists(py):
        return dict(name=name, job=job, ok=False, error=f"{py} not found")
    cmd = [py, os.path.abspath(__file__), "--worker", name, "--job", job,
           "--repeats", str(repeats or args.repeats)]
    if n is not None:
        cmd += ["--n", str(n), "--steps", str(steps)]
    if sizes is not None:
        cmd += ["--sizes", json.dumps(sizes)]
    if trace_steps:
        cmd += ["--trace-steps", str(trace_steps)]
    if out is not None:
        cmd += ["--out", out]
    res = _harness.run_child(cmd, timeout, f"{name}/{job}")
    res.setdefault("name", name)
    res.setdefault("job", job)
    if res.get("ok") and out is not None and os.path.exists(out):
        with np.load(out) as z:
            res["counts"] = z["counts"]
            res["total_spikes"] = int(z["counts"].sum())
            if "trace" in z:
                res["spike_times"], res["n_spikes"] = spike_times(z["trace"])
                res["trace_steps"] = z["trace"].shape[1] - 1
    return res


def plan(args):
    q = args.quick
    fwd_sizes = [(200, 2000)] if q else [(1000, 40000), (10000, 40000)]
    anchor_steps_10k = 4000  # anchors at N = 10,000 run 4,000 steps
    trace_n = fwd_sizes[0][0]
    trace_steps = fwd_sizes[0][1]  # accuracy: V of every step of the N = 1,000 run
    pallas = (200, 500) if q else (1000, 2000)
    sweep_n = [(n, 1000 if q else 4000) for n in ([100, 300] if q else [100, 300, 1000, 3000, 10000, 30000])]
    sweep_t = [(200 if q else 1000, t) for t in ([500, 1000] if q else [1000, 2000, 4000, 10000, 20000, 40000])]
    grad = [(n, 500 if q else 4000) for n in ([50, 100] if q else [100, 300, 1000])]
    mem = (200, 2000) if q else (1000, 40000)
    return dict(fwd_sizes=fwd_sizes, anchor_steps_10k=anchor_steps_10k, trace_n=trace_n, trace_steps=trace_steps,
                pallas=pallas, sweep_n=sweep_n, sweep_t=sweep_t, grad=grad, mem=mem)


def run_all(args, selected, P, tmp, log):
    R = {"fwd": {}, "sweep_n": {}, "sweep_t": {}, "grad": {}, "mem": {}}
    jobs = {j.strip() for j in args.jobs.split(",")}
    # forward throughput (+ V traces of the first size for spike times)
    for name in [nm for nm in IMPLS if nm in selected and "fwd" in jobs]:
        for i, (n, T) in enumerate(P["fwd_sizes"]):
            reps = args.repeats
            if name in REC_IMPLS and i:
                continue  # at N = 10,000 the V record alone is 1.6 GB
            if name == "ours_pallas":
                if i:
                    continue
                n, T = P["pallas"]
                reps = min(args.repeats, 3)
            if name == "ours_xla_f64":
                reps = 1
            if IMPLS[name][1] == "anchor" and n >= 10000:
                T = min(T, P["anchor_steps_10k"])
            tr = T if (n == P["trace_n"] and IMPLS[name][1] != "anchor") else 0
            res = launch(name, "fwd", args, args.timeout, n=n, steps=T, trace_steps=tr, repeats=reps,
                         out=os.path.join(tmp, f"{name}_{n}_{T}.npz"))
            R["fwd"][f"{name}@{n}"] = res
            log(f"fwd {name} N={n} T={T}: " + (f"{res['steps_per_s'] / 1e6:.1f} M/s" if res.get("ok")
                                                 else f"FAILED {res.get('error')}"))
    for key in ("sweep_n", "sweep_t"):
        for name in ("naive", "c_loop", "ours_xla"):
            if name in selected and "sweep" in jobs:
                res = launch(name, "sweep", args, args.timeout, sizes=P[key])
                R[key][name] = res
                log(f"{key} {name}: " + ("ok" if res.get("ok") else f"FAILED {res.get('error')}"))
    for name in GRAD_IMPLS:
        if "grad" in jobs and (name in selected or (name.startswith("ours") and "ours_xla" in selected)):
            res = launch(name, "grad", args, args.timeout, sizes=P["grad"], repeats=1 if name == "ours_f64" else None)
            R["grad"][name] = res
            log(f"grad {name}: " + ("ok" if res.get("ok") else f"FAILED {res.get('error')}"))
    for name in MEM_IMPLS:
        if "mem" in jobs and (name in selected or (name.startswith("ours") and "ours_xla" in selected)):
            n, T = P["mem"]
            res = launch(name, "mem", args, args.timeout, n=n, steps=T, repeats=1)
            R["mem"][name] = res
            log(f"mem {name}: " + (f"peak {res['peak_rss_bytes'] / 2**30:.2f} GiB" if res.get("ok")
                                    else f"FAILED {res.get('error')}"))
    return R


def accuracy(R, P):
    """Spike times of each float32 implementation against ours in float64 (same scheme, exact exp),
    from the V of every step of the first forward size; spike counts over the whole run."""
    n = P["trace_n"]
    ref = R["fwd"].get(f"ours_xla_f64@{n}", {})
    current = current_density(n)
    for key, res in R["fwd"].items():
        if not res.get("ok"):
            continue
        name, nn = key.split("@")
        nn = int(nn)
        refk = R["fwd"].get(f"ours_xla_f64@{nn}", {})
        if refk.get("ok") and refk["n_steps"] == res["n_steps"] and name != "ours_xla_f64":
            res["count_mismatch_vs_f64"] = int((res["counts"] != refk["counts"]).sum())
            res["spike_diff_vs_f64"] = int(res["counts"].sum() - refk["counts"].sum())
        if "spike_times" in res and ref.get("ok") and "spike_times" in ref and name != "ours_xla_f64":
            T = res["trace_steps"]
            t_end = T * DT
            res["spike_times_full"] = compare_spike_times(
                *_window(res, t_end), *_window(ref, t_end), current)
            res["spike_times_100ms"] = compare_spike_times(
                res["spike_times"], res["n_spikes"], ref["spike_times"], ref["n_spikes"], current,
                t_window=min(100.0, t_end))
            res["spike_times_window_ms"] = t_end


def _window(res, t_end):
    st = np.where(res["spike_times"] <= t_end, res["spike_times"], np.nan)
    return st, np.sum(~np.isnan(st), 1)


# ---- reporting -------------------------------------------------------------------------------------
def fmt_rate(r):
    return f"{r / 1e6:.1f} M" if r else "-"


def _best_rate(row):
    return row["n"] * row["n_steps"] / min(row["times_s"])


def make_tables(R, P):
    lines = []
    sizes = P["fwd_sizes"]
    for n, T in sizes:
        base = {nm: R["fwd"].get(f"{nm}@{n}", {}) for nm in ("naive", "c_loop")}
        base_naive = base["naive"].get("steps_per_s") if base["naive"].get("ok") else None
        r_c = base["c_loop"].get("steps_per_s") if base["c_loop"].get("ok") else None
        nr = R["fwd"].get(f"naive_rec@{n}", {})
        r_naive_rec = nr.get("steps_per_s") if nr.get("ok") else None
        lines += [f"**Forward, N = {n:,}** ({T:,} steps unless noted)", "",
                  "| implementation | scheme | dtype | steps | neuron-steps/s, best (median) | x naive | x C loop "
                  "| compile (s): JAX lower + compile; C gcc; NEURON model build; Brian2 codegen + build | spike counts != f64 ref (whole run) | max abs spike-time diff vs f64 (ms): "
                  "first 100 ms / whole trace [excl. 6-6.5 uA/cm2] |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for name in IMPLS:
            res = R["fwd"].get(f"{name}@{n}")
            if name == "ours_pallas" and res is None and n == sizes[0][0]:
                res = R["fwd"].get(f"{name}@{P['pallas'][0]}")
            if res is None:
                continue
            label, _, scheme, _ = IMPLS[name]
            if not res.get("ok"):
                err = str(res.get("error", "failed")).replace("|", "/").replace("\n", " ")[:240]
                lines.append(f"| {label} | {scheme} | - | - | failed: {err} | - | - | - | - | - |")
                continue
            rate = res["steps_per_s"]
            r_naive = r_naive_rec if name in REC_IMPLS else base_naive
            acc = "-"
            if "spike_times_full" in res:
                a, b = res["spike_times_100ms"], res["spike_times_full"]

                def f(x):
                    return "n/a" if x is None else f"{x:.2g}"
                acc = (f"{f(a['max_dt_ms'])} / {f(b['max_dt_ms'])} [{f(a['max_dt_ms_excl_edge'])} / "
                       f"{f(b['max_dt_ms_excl_edge'])}]; count mismatches in trace {b['count_mismatch']} "
                       f"[{b['count_mismatch_excl_edge']}]")
            elif name == "ours_xla_f64":
                acc = "(reference)"
            other = "Euler (NEURON)" in scheme or "implicit" in scheme
            cm = "(reference)" if name == "ours_xla_f64" else (
                f"{res['count_mismatch_vs_f64']}" + (" (other scheme)" if other else "")
                if "count_mismatch_vs_f64" in res else "n/a")
            if res.get("finite") is False:
                cm += "; **V has NaN** (unguarded rate formula at V = -40 or -55 mV exactly)"
            comp = f"{res['compile_s'] + res.get('lower_s', 0.0):.2f}" if "compile_s" in res else "-"
            x_naive = f"{rate / r_naive:.2f}" if r_naive else "-"
            x_c = f"{rate / r_c:.2f}" if r_c else "-"
            lines.append(f"| {label} | {scheme} | {res.get('dtype', DTYPE.get(name, 'float32'))} | {res['n_steps']:,} "
                         f"| {fmt_rate(rate)} ({fmt_rate(res['median_steps_per_s'])}) "
                         f"| {x_naive} | {x_c} | {comp} | {cm} | {acc} |")
        lines.append("")
    # gradient
    g = R["grad"]
    if g:
        lines += ["**Gradient**: `jax.value_and_grad` of the mean V over neurons and time w.r.t. (g_Na, g_K, "
                  "g_L), over the implementation's own forward time (the same loss without the gradient).", "",
                  "| implementation | N | steps | forward (ms) | value_and_grad (ms) | ratio | compile fwd / "
                  "grad (s) | loss and gradient finite | max rel. error of the gradient vs float64 |",
                  "|---|---:|---:|---:|---:|---:|---|---|---:|"]
        labels = dict(ours_ckpt="ours, CheckpointAdjoint()", ours_fwdmode="ours, ForwardMode() (forward "
                      "sensitivities, native loop)", ours_fwdmode_xla="ours, ForwardMode, backend=XLA() (forward "
                      "sensitivities in XLA)", ours_direct="ours, DirectAdjoint() (autodiff "
                      "through the scan)", naive="naive JAX (autodiff through lax.scan)",
                      jaxley="Jaxley (autodiff; float32)", ours_f64="ours, DirectAdjoint(), float64 (reference)")
        ref = {r["n"]: np.asarray(r["grad"]) for r in g.get("ours_f64", {}).get("rows", [])}
        for name, res in g.items():
            if not res.get("ok"):
                err = str(res.get("error", "failed")).replace("|", "/").replace("\n", " ")[:240]
                lines.append(f"| {labels[name]} | - | - | failed: {err} | - | - | - | - | - |")
                continue
            for row in res["rows"]:
                f, gr = min(row["fwd_times_s"]), min(row["grad_times_s"])
                rel = "-"
                if name not in ("ours_f64", "jaxley") and row["n"] in ref:
                    gref = ref[row["n"]]
                    rel = f"{float(np.max(np.abs(np.asarray(row['grad']) - gref) / np.abs(gref))):.1e}"
                    row["grad_max_rel_err_vs_f64"] = float(rel)
                lines.append(f"| {labels[name]} | {row['n']:,} | {row['n_steps']:,} | {1e3 * f:.1f} | {1e3 * gr:.1f} "
                             f"| {gr / f:.2f} | {row['fwd_compile_s']:.2f} / {row['grad_compile_s']:.2f} "
                             f"| {bool(row['grad_finite'] and np.isfinite(row['loss']))} | {rel} |")
        lines.append("")
    m = R["mem"]
    if m:
        n, T = P["mem"]
        lines += [f"**Memory** of the gradient through {T:,} steps of {n:,} neurons (peak RSS of the child "
                  "process = `ru_maxrss`; 'increase' = peak minus the RSS after import + compile; XLA "
                  "`compiled.memory_analysis()` of the value_and_grad):", "",
                  "| implementation | peak RSS (GiB) | increase over RSS after compile (GiB) | XLA temp / "
                  "argument / output (MiB) | grad time (s) | compile (s) |", "|---|---:|---:|---|---:|---:|"]
        for name, res in m.items():
            if not res.get("ok"):
                err = str(res.get("error", "failed")).replace("|", "/").replace("\n", " ")[:240]
                lines.append(f"| {name} | failed: {err} | - | - | - | - |")
                continue
            ma = res["memory_analysis"]
            mib = " / ".join(f"{ma.get(k, float('nan')) / 2**20:.1f}" for k in
                             ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes"))
            lines.append(f"| {name} | {res['peak_rss_bytes'] / 2**30:.3f} | "
                         f"{res['peak_minus_after_compile_bytes'] / 2**30:.3f} | {mib} | {res['grad_time_s']:.2f} "
                         f"| {res['grad_compile_s']:.2f} |")
        lines.append("")
    return lines


def goals(R, P):
    out = []
    for n, T in P["fwd_sizes"]:
        ours, naive, c = (R["fwd"].get(f"{nm}@{n}", {}) for nm in ("ours_xla", "naive", "c_loop"))
        if ours.get("ok") and naive.get("ok") and c.get("ok"):
            rn, rc = ours["steps_per_s"] / naive["steps_per_s"], ours["steps_per_s"] / c["steps_per_s"]
            acc = ours.get("spike_times_full", {}).get("max_dt_ms_excl_edge") if n == P["trace_n"] else None
            out.append(f"- forward N = {n:,}, {T:,} steps: ours {fmt_rate(ours['steps_per_s'])}/s = {rn:.2f}x naive "
                       f"(goal >= 1.5x: {'met' if rn >= 1.5 else 'NOT met'}), {rc:.2f}x the C loop (goal > 1: "
                       f"{'met' if rc > 1 else 'NOT met'})" +
                       (f"; spike times vs float64 max {acc:.2g} ms outside the bistable edge (goal <= 0.05 ms: "
                        f"{'met' if acc <= 0.05 else 'NOT met'})" if acc is not None else ""))
    n, T = P["fwd_sizes"][0]
    rec, tot, nrec, ntm = (R["fwd"].get(f"{nm}@{n}", {}) for nm in ("ours_xla_rec", "ours_xla", "naive_rec",
                                                                      "naive_rec_tm"))
    if rec.get("ok") and nrec.get("ok"):
        rn = rec["steps_per_s"] / nrec["steps_per_s"]
        line = (f"- forward with V recorded every step, N = {n:,}, {T:,} steps: ours {fmt_rate(rec['steps_per_s'])}/s "
                f"= {rn:.2f}x naive JAX with the same (N, T) record "
                f"(goal >= 1.8x: {'met' if rn >= 1.8 else 'NOT met'})")
        if ntm.get("ok"):
            line += f", {rec['steps_per_s'] / ntm['steps_per_s']:.2f}x naive JAX leaving V time-major (T, N)"
        if tot.get("ok"):
            over = tot["steps_per_s"] / rec["steps_per_s"]
            line += (f"; its time {over:.2f}x that of the same run with Total records only (goal <= 1.15: "
                     f"{'met' if over <= 1.15 else 'NOT met'})")
        out.append(line)
    cg = cf = None
    for key, label in (("ours_ckpt", "CheckpointAdjoint"), ("ours_fwdmode", "ForwardMode")):
        g = R["grad"].get(key, {})
        if g.get("ok"):
            ratios = [min(r["grad_times_s"]) / min(r["fwd_times_s"]) for r in g["rows"]]
            out.append(f"- value_and_grad / forward, {label}, N = {', '.join(str(r['n']) for r in g['rows'])}: "
                       f"{', '.join(f'{x:.2f}' for x in ratios)} (goal <= 3: {'met' if max(ratios) <= 3 else 'NOT met'})")
            cg = max([cg or 0.0] + [r["grad_compile_s"] for r in g["rows"]])
            cf = max([cf or 0.0] + [r["fwd_compile_s"] for r in g["rows"]])
    for key, label in (("ours_ckpt", "CheckpointAdjoint"), ("ours_fwdmode", "ForwardMode")):
        mm = R["mem"].get(key, {})
        if mm.get("ok"):
            pk = mm["peak_rss_bytes"]
            out.append(f"- gradient through {mm['n_steps']:,} steps of {mm['n']:,} neurons, {label}: peak RSS "
                       f"{pk / 2**30:.2f} GiB (goal within 1 GB: {'met' if pk <= 1e9 else 'NOT met'})")
    f = R["fwd"].get(f"ours_xla@{P['fwd_sizes'][0][0]}", {})
    if f.get("ok") and cg is not None:
        worst = max(f["compile_s"] + f.get("lower_s", 0.0), cf, cg)
        out.append(f"- compile (lower + compile) of ours: forward {f['compile_s'] + f.get('lower_s', 0.0):.2f} s "
                   f"(N = {f['n']:,}, {f['n_steps']:,} steps), loss forward {cf:.2f} s, value_and_grad {cg:.2f} s "
                   f"(goal < 2 s: {'met' if worst < 2 else 'NOT met'})")
    build = R["grad"].get("ours_fwdmode", {}).get("native_build_s")
    if build is not None:
        out.append(f"- ForwardMode's native loop: one-time C++ build (g++, from an empty kernel cache; then cached on "
                   f"disk per machine and model structure, and not part of the compile times above) {build:.2f} s")
    return out


def make_plot(R, P, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = dict(naive="tab:orange", c_loop="tab:gray", ours_xla="tab:blue")
    for ax, key, xk, title in ((axes[0], "sweep_n", "n", f"against N ({P['sweep_n'][0][1]:,} steps)"),
                               (axes[1], "sweep_t", "n_steps", f"against T (N = {P['sweep_t'][0][0]:,})")):
        for name, res in R[key].items():
            if not res.get("ok"):
                continue
            xs = [r[xk] for r in res["rows"]]
            ys = [_best_rate(r) / 1e6 for r in res["rows"]]
            ax.plot(xs, ys, "o-", color=colors.get(name), label=IMPLS[name][0] if name != "ours_xla"
                    else "brainfuse_jax simulate (XLA)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("neurons N" if xk == "n" else "time steps T")
        ax.set_ylabel("million neuron-steps / s (best)")
        ax.set_title("HH exp-Euler float32, one core: " + title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_table(R):
    lines = []
    for key, title in (("sweep_n", "against N"), ("sweep_t", "against T")):
        names = [nm for nm, r in R[key].items() if r.get("ok")]
        if not names:
            continue
        rows = R[key][names[0]]["rows"]
        lines += [f"Throughput {title} (M neuron-steps/s, best):", "",
                  "| N | T | " + " | ".join(names) + " | ours / naive | ours / C |",
                  "|---:|---:|" + "---:|" * (len(names) + 2)]
        for i, r in enumerate(rows):
            vals = {nm: _best_rate(R[key][nm]["rows"][i]) for nm in names}
            ratio = (f"{vals['ours_xla'] / vals['naive']:.2f}" if {"ours_xla", "naive"} <= set(vals) else "-")
            ratio_c = (f"{vals['ours_xla'] / vals['c_loop']:.2f}" if {"ours_xla", "c_loop"} <= set(vals) else "-")
            lines.append(f"| {r['n']:,} | {r['n_steps']:,} | " + " | ".join(f"{vals[nm] / 1e6:.1f}" for nm in names)
                         + f" | {ratio} | {ratio_c} |")
        lines.append("")
    return lines


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if k not in ("spike_times", "n_spikes", "counts")}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: small sizes, 1 repeat, no docs")
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(list(IMPLS) + list(GRAD_IMPLS)))
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per measurement, best reported (5)")
    ap.add_argument("--jobs", default="fwd,sweep,grad,mem", help="comma-separated jobs to run (default: all)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process")
    ap.add_argument("--write", action="store_true", help="write docs/results even with --quick/--only")
    ap.add_argument("--merge", action="store_true", help="with --only: merge the new gradient/memory results "
                    "into the existing results JSON and re-render the docs section from it")
    ap.add_argument("--render-json", default=None, metavar="PATH",
                    help="only rewrite the docs section and plot from a results JSON (no measurement)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="what workers time: CPU time of the worker process (default) or wall time")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--job", default="fwd", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--trace-steps", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.repeats = args.repeats or (1 if args.quick else 5)
    os.environ["HH_SPEED_CLOCK"] = args.clock  # inherited by the workers
    if args.worker:
        run_worker(args)
        return
    if args.render_json:
        render_json(args.render_json)
        return

    known = set(IMPLS) | set(GRAD_IMPLS)
    if {j.strip() for j in args.jobs.split(",")} - {"fwd", "sweep", "grad", "mem"}:
        ap.error(f"--jobs: choose from fwd, sweep, grad, mem; got {args.jobs!r}")
    selected = set(IMPLS) | set(GRAD_IMPLS) if not args.only else {a.strip() for a in args.only.split(",")}
    if selected - known:
        ap.error(f"unknown names {sorted(selected - known)}; choose from {sorted(known)}")
    P = plan(args)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    machine = _harness.machine_info(("jax", "jaxlib", "equinox", "numpy", "neuron", "brian2"))
    machine["clock"] = args.clock
    with tempfile.TemporaryDirectory() as tmp:
        R = run_all(args, selected, P, tmp, lambda s: print(f"[{time.perf_counter() - t_start:6.0f} s] {s}",
                                                             flush=True))
    load_after = os.getloadavg()
    if args.merge:
        with open(RESULTS_JSON) as f:
            d = json.load(f)
        for cat in ("grad", "mem"):
            d["results"][cat].update(_jsonable(R[cat]))
        d["command"] += " + python benchmarks/hh_speed.py" + " ".join([""] + sys.argv[1:])
        with open(RESULTS_JSON, "w") as f:
            json.dump(d, f, indent=1)
        render_json(RESULTS_JSON)
        return
    accuracy(R, P)
    total_s = time.perf_counter() - t_start
    cmd = "python benchmarks/hh_speed.py" + " ".join([""] + sys.argv[1:])
    section = render(R, P, machine, cmd, total_s, load_before, load_after, args.repeats)
    print(section)
    if args.write or (not args.quick and not args.only):
        _harness.write_doc("hh_speed", section)
        try:
            make_plot(R, P, IMG)
        except Exception as err:  # noqa: BLE001
            print(f"plot failed: {err}", file=sys.stderr)
        os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
        with open(RESULTS_JSON, "w") as f:
            json.dump(_jsonable(dict(machine=machine, command=cmd, total_s=total_s, plan=P, load_before=load_before,
                                     load_after=load_after, repeats=args.repeats, results=R)), f, indent=1)
        print(f"wrote {_harness.DOC}, {IMG}, {RESULTS_JSON}")


def render_json(path):
    """Rewrite the docs section and the plot from a results JSON (no measurement)."""
    with open(path) as f:
        d = json.load(f)
    P = d["plan"]
    repeats = d.get("repeats")
    if repeats is None:  # older files: from the command line, else the default
        words = d["command"].split()
        repeats = int(words[words.index("--repeats") + 1]) if "--repeats" in words else 5
    section = render(d["results"], P, d["machine"], d["command"], d["total_s"], d["load_before"], d["load_after"],
                     repeats)
    _harness.write_doc("hh_speed", section)
    make_plot(d["results"], P, IMG)
    print(section)


def render(R, P, machine, cmd, total_s, load_before, load_after, repeats):
    v = machine["versions"]
    other = {}
    for nm in ("jaxley", "brainpy"):
        r = R["fwd"].get(f"{nm}@{P['fwd_sizes'][0][0]}", {})
        if r.get("ok"):
            other[nm] = r.get("notes", "")
    lines = ["## HH speed (issue 5): forward, gradient, memory, compile", "",
             f"Command: `{cmd}` (total {total_s:.0f} s). Workload: classic HH (hh_population's constants: EL "
             "-54.387 mV, 6.3 degC), I = linspace(0, 20, N) uA/cm2 constant, V0 -65 mV, dt 0.025 ms, "
             "exponential-Euler gates, float32 unless noted. Throughput = N x T / "
             + ("CPU time (of the worker process and its children; compile times too)"
                if machine.get("clock") == "cpu" else "wall time") + " of the simulation "
             f"(best of {repeats}; median in brackets; compile excluded and listed). One core "
             "(sched_setaffinity {0}, single-threaded XLA/OpenMP); every implementation in its own process. "
             f"1-min load average {load_before[0]:.2f} before / {load_after[0]:.2f} after (2 cores shared with "
             "other jobs" + ("; CPU time leaves out the time a worker waits for its core" if machine.get("clock") == "cpu"
                             else ": single runs are noisy; compare best values within this run") + ").", "",
             "Accuracy: spike times are the upward 0-mV crossings of V, linearly interpolated between steps, "
             f"from V recorded at every step of the N = {P['trace_n']:,}, {P['trace_steps']:,}-step run; the "
             "reference is ours in float64 (same scheme, exact exponentials). 'max abs spike-time diff' is over "
             "neurons with the same number of spikes as the reference (first 100 ms / the whole trace; in "
             "brackets: excluding the bistable edge 6-6.5 uA/cm2, where one rounding decides whether a neuron "
             "fires); 'count mismatches' counts the neurons whose spike count differs. The Pallas row compares its "
             "own shorter run against the reference's first steps. NEURON uses backward Euler and Jaxley an "
             "implicit V step, so no same-scheme float64 reference applies to them (their counts are listed in "
             "the JSON).", ""]
    lines += make_tables(R, P)
    lines += sweep_table(R)
    lines += ["![throughput against N and T](img/hh_speed_scaling.png)", ""]
    gl = goals(R, P)
    if gl:
        lines += ["Goals (issue 5):"] + gl + [""]
    seen = set()
    for key, res in R["fwd"].items():
        name = key.split("@")[0]
        if res.get("ok") and res.get("notes") and name not in seen:
            seen.add(name)
            lines.append(f"- `{name}`: {res['notes']}")
    n10 = [s for s in P["fwd_sizes"] if s[0] >= 10000]
    if n10:
        lines.append(f"- Anchors (NEURON, CoreNEURON, Brian2, Jaxley, BrainPy) at N = {n10[0][0]:,} run "
                     f"{P['anchor_steps_10k']:,} steps instead of {n10[0][1]:,} (time budget); their throughput "
                     "does not depend on T at this length.")
    lines.append("- Gradient table: 'finite' covers the forward loss and value_and_grad; a float32 value of V = -40 "
                 "or -55 mV exactly makes the unguarded textbook rates 0/0 (naive, Jaxley), and whether it happens "
                 "depends on N and on how XLA fused the program. Jaxley's gradient is w.r.t. its own parameters "
                 "(S/cm2), so no error vs float64 is given. The float32 error of ours grows with N (more neurons "
                 "near threshold, where the loss is most sensitive) and is the same for both adjoints. All our "
                 "gradient rows, the float64 reference included, use HH(scheme='exp_euler', decay='pade') with the "
                 "current held (simulate(..., n_steps=T)), as the forward row `ours_xla`.")
    if any(f"{nm}@{P['fwd_sizes'][0][0]}" in R["fwd"] for nm in REC_IMPLS):
        n, T = P["fwd_sizes"][0]
        lines.append(f"- Rows with V recorded at every step (N = {n:,} only: at N = 10,000 the record alone is "
                     f"1.6 GB): `ours_xla_rec` is `ours_xla` plus `record['v']` (the whole (N, T) float32 V, "
                     f"{n * T * 4 / 1e6:.0f} MB, a fresh result every call, as a user gets it), `naive_rec` "
                     "hh_population's `naive_hh` whose `lax.scan` also returns V, transposed to (N, T) inside the "
                     "jitted function (the layout simulate returns), `naive_rec_tm` the same left (T, N); their "
                     "'x naive' column is against `naive_rec`. Their V traces are also the accuracy traces. Each call "
                     "allocates its result afresh, and with 4 KiB pages its first write page-faults (kernel time, in "
                     "the CPU time: ~50 ms for 160 MB on the machine below, ~9 ms with transparent huge pages for "
                     "malloc, GLIBC_TUNABLES=glibc.malloc.hugetlb=1); our record writes nothing else of its size.")
    lines.append("- `naive` gradient: hh_population's `naive_hh` unchanged, with its module constants "
                 "GNA/GK/GL replaced by the traced conductances and its `lax.scan` wrapped to also sum V "
                 "(while tracing only); V traces for spike times the same way.")
    lines += ["", f"Machine: {machine['cpu']} ({machine['logical_cpus']} logical CPUs, run on core "
              f"{machine['affinity']}), Linux {machine['kernel']}, Python {machine['python']}, jax {v['jax']} / "
              f"jaxlib {v['jaxlib']}, equinox {v['equinox']}, numpy {v['numpy']}, NEURON {v['neuron']}, Brian2 "
              f"{v['brian2']}, {machine['gcc']}." + "".join(f" {k}: {s.split(':')[0]}." for k, s in other.items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
