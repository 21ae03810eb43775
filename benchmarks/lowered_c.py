#!/usr/bin/env python
"""Benchmark (issue 14, "Speed"): the C that `bf.lower.emit_c` generates, against the hand-written
C loop and Brian2 cpp_standalone, on one pinned core, in the same run.

1. HH: 1,000 classic HH neurons x 40,000 steps (hh_speed.py's workload: dt 0.025 ms, I =
   linspace(0, 20, N) uA/cm2 held constant, V0 -65 mV with the gates at steady state, 6.3 degC,
   exponential Euler, float32).
   - `hh_c_loop`: hh_speed.py's hand-fused C loop (`build_c` / `run_c`: expf, gcc -O3
     -march=native -ffast-math), timed inside the program around the time loop;
   - `hh_emit_o2` / `hh_emit_native`: `bf.HH(scheme="exp_euler")` (hh_speed's constants, exact
     exponential decays: the C loop's maths) exported with `bf.lower.to_stablehlo(model,
     model.init_state((1000,), v0=-65), x, dt=0.025)` (one step) and emitted with
     `bf.lower.emit_c`; a benchmark main (below) includes the generated header and is compiled with
     the generated .c at the project's flags (`-std=c99 -O2 -Wall -Wextra -Werror`) or at the C
     loop's (`-O3 -march=native -ffast-math`). Two ways of driving it, each timed with
     clock_gettime around the time loop only: `step` calls `<prefix>_step` 40,000 times with the
     constant input (what depends on the parameters only is recomputed at every call, as the
     emitter documents) and `unroll` calls `<prefix>_unroll` on chunks of 1,000 steps of the
     input series (that work done once per chunk); both count spikes (output != 0) per neuron
     inside the loop, as the C loop does;
   - `hh_brian2`: Brian2 cpp_standalone (hh_population.py's `worker_brian2`, as hh_speed.py calls
     it: float64, Brian2's own main-loop time);
   - `hh_jax`: `bf.simulate` of the same model (float32, backend XLA: the computation that was
     exported), the reference for the spike counts (and a context row).
2. Brunel network (model A, J 0.25, g 5, eta 2, NE 4,000, NI 1,000, dt 0.1 ms, zero external
   input beyond the network's own Poisson drive):
   - `net_emit_o2` / `net_emit_native`: `bf.network.brunel(J=0.25, g=5.0, eta=2.0,
     spike_capacity=None)` exported with `to_stablehlo(net, net.init_state(1), dt=0.1)`, emitted
     and compiled as above; spikes are counted per neuron from the step's output (the recorded
     spike buffer of the default `spike_capacity` is state, which the C step copies at every step:
     its cost is measured separately, `net_emit_o2_rec`). `unroll` in chunks of 500 steps and
     `step`; rates E / I from the C spikes;
   - `net_brian2`: brunel.py's Brian2 worker (the same model: exact integration, refractory
     gating, delay 1.5 ms, PoissonInput), its main-loop time per biological second (RTF);
   - `net_jax`: `bf.simulate` of the same network (backend XLA), for the spike check and rates.
   With `--profile` (default when `perf` exists) the O2 binary runs a short segment under
   `perf record`, and the hottest functions of the generated C are listed.

Clock: as hh_speed.py, the CPU time of the process (`CLOCK_PROCESS_CPUTIME_ID` in the C programs,
`--clock wall` for CLOCK_MONOTONIC); Brian2's times are its own main-loop timers (wall).

Usage:
    python benchmarks/lowered_c.py            # full run: docs/benchmarks.md section `lowered_c`,
                                              # docs/img/lowered_c.png,
                                              # benchmarks/results/lowered_c.json
    python benchmarks/lowered_c.py --quick    # smoke test (small sizes, no Brian2), prints only
    python benchmarks/lowered_c.py --only hh_c_loop,hh_emit_o2 --quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import _harness  # noqa: F401  (pins one core before numpy/JAX load)

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
RESULTS_JSON = os.path.join(HERE, "results", "lowered_c.json")
IMG = os.path.join(ROOT, "docs", "img", "lowered_c.png")

HH_N, HH_T = 1000, 40_000
NET_SET = 1  # brunel.py's SETS[1]: J 0.25, g 5, eta 2
NET_DT = 0.1
UNROLL_CHUNK = {"hh": 1000, "net": 500}  # steps per <prefix>_unroll call (the input series' length)
PROJECT = "o2"  # -std=c99 -O2 -Wall -Wextra -Werror (the emitter's FLAGS)
NATIVE = "native"  # hh_speed's C_FLAGS
IMPLS = {
    "hh_c_loop": "hand-fused C loop (hh_speed.py, gcc -O3 -march=native -ffast-math, expf)",
    "hh_emit_o2": "emit_c, gcc -std=c99 -O2 -Wall -Wextra -Werror",
    "hh_emit_native": "emit_c, gcc -O3 -march=native -ffast-math",
    "hh_brian2": "Brian2 cpp_standalone (float64)",
    "hh_jax": "bf.simulate, backend XLA (float32)",
    "net_emit_o2": "emit_c, gcc -std=c99 -O2 -Wall -Wextra -Werror",
    "net_emit_native": "emit_c, gcc -O3 -march=native -ffast-math",
    "net_emit_o2_rec": "emit_c, -O2, default spike_capacity (spike record in the state)",
    "net_brian2": "Brian2 cpp_standalone (brunel.py's worker)",
    "net_jax": "bf.simulate, backend XLA",
}

# The benchmark main: one step's input held constant, spikes (output != 0) counted per output
# element inside the timed loop; `step` loops <prefix>_step, `unroll` calls <prefix>_unroll on
# chunks of the input series.
BENCH_MAIN = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "%(prefix)s.h"

#define NX %(nx)d     /* one step's input: B x RX */
#define NO %(no)d     /* one step's output: B x RO */
#define B %(batch)d
#define RX (NX / B)
#define RO (NO / B)
#define CHUNK %(chunk)d

typedef %(xt)s xt_t;
typedef %(ot)s ot_t;

static double now(void) {
  struct timespec ts;
  clock_gettime(%(clock)s, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static %(prefix)s_params p;
static %(prefix)s_state s;
static xt_t x[NX];
static ot_t out[NO];
static int counts[NO];

/* the input series (B, k, RX) of k steps of the constant input x */
static void fill(xt_t* xs, long k) {
  for (long b = 0; b < B; ++b)
    for (long t = 0; t < k; ++t) memcpy(xs + (b * k + t) * RX, x + b * RX, sizeof(xt_t) * RX);
}

/* usage: bench MODE(step|unroll) N_STEPS REPEATS X_FILE COUNTS_FILE */
int main(int argc, char** argv) {
  long n_steps, k = 0;
  int repeats, unroll;
  FILE* f;
  xt_t* xs = NULL;
  ot_t* os = NULL;
  if (argc != 6) { fprintf(stderr, "usage: %%s step|unroll N_STEPS REPEATS X_FILE COUNTS_FILE\n", argv[0]); return 2; }
  unroll = strcmp(argv[1], "unroll") == 0;
  n_steps = atol(argv[2]);
  repeats = atoi(argv[3]);
  f = fopen(argv[4], "rb");
  if (!f || fread(x, sizeof(xt_t), NX, f) != NX) { fprintf(stderr, "cannot read %%s\n", argv[4]); return 1; }
  fclose(f);
  if (unroll) {
    xs = (xt_t*)malloc(sizeof(xt_t) * (size_t)NX * CHUNK);
    os = (ot_t*)malloc(sizeof(ot_t) * (size_t)NO * CHUNK);
    if (!xs || !os) return 3;
  }
  %(prefix)s_params_init(&p);
  printf("TIMES");
  for (int r = 0; r < repeats; ++r) {
    double t0, t1;
    %(prefix)s_state_init(&s);
    memset(counts, 0, sizeof counts);
    t0 = now();
    if (!unroll) {
      for (long t = 0; t < n_steps; ++t) {
        %(prefix)s_step(&p, &s, x, out);
        for (int i = 0; i < NO; ++i) counts[i] += out[i] != 0;
      }
    } else {
      for (long t = 0; t < n_steps; t += CHUNK) {
        long kk = n_steps - t < CHUNK ? n_steps - t : CHUNK;
        if (kk != k) { k = kk; fill(xs, k); }
        %(prefix)s_unroll(&p, &s, xs, os, (int)k);
        for (long b = 0; b < B; ++b)
          for (long tt = 0; tt < k; ++tt)
            for (long i = 0; i < RO; ++i) counts[b * RO + i] += os[(b * k + tt) * RO + i] != 0;
      }
    }
    t1 = now();
    printf(" %%.9f", t1 - t0);
    fflush(stdout);
  }
  printf("\n");
  f = fopen(argv[5], "wb");
  if (!f || fwrite(counts, sizeof(int), NO, f) != NO) return 1;
  fclose(f);
  free(xs);
  free(os);
  return 0;
}
"""


def _clock_id():
    return "CLOCK_MONOTONIC" if os.environ.get("HH_SPEED_CLOCK") == "wall" else "CLOCK_PROCESS_CPUTIME_ID"


def _flags(variant):
    from brainfuse_jax.lower import FLAGS

    import hh_speed
    return list(FLAGS) if variant == PROJECT else list(hh_speed.C_FLAGS)


def build_emitted(program, directory, variant):
    """Write the generated C and the benchmark main into `directory` and compile both with the
    flags of `variant` (the generated .c with them too). Returns (executable, build seconds)."""
    import brainfuse_kernels._c_ops as c_ops

    d = program.write(directory)
    nx, no = int(np.prod(program.x_shape)), int(np.prod(program.out_shape))
    main = d / "bench_main.c"
    main.write_text(BENCH_MAIN % dict(prefix=program.prefix, nx=nx, no=no, batch=program.batch,
                                      chunk=UNROLL_CHUNK["hh" if program.prefix == "hh" else "net"],
                                      xt=c_ops.CTYPES[np.dtype(program.x_dtype)],
                                      ot=c_ops.CTYPES[np.dtype(program.out_dtype)], clock=_clock_id()))
    flags = _flags(variant)
    exe = d / f"bench_{variant}"
    obj = d / f"{program.prefix}_{variant}.o"
    t = time.perf_counter()
    for cmd in (["gcc", *flags, "-c", "-o", str(obj), str(d / f"{program.prefix}.c")],
                ["gcc", *flags, "-I", str(d), "-o", str(exe), str(main), str(obj), "-lm"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return exe, time.perf_counter() - t


def run_bench(exe, mode, n_steps, repeats, x, directory):
    """Run the benchmark main: (times in s, spike counts per output element)."""
    xf, cf = os.path.join(directory, "x.bin"), os.path.join(directory, "counts.i32")
    np.ascontiguousarray(x).tofile(xf)
    out = subprocess.run([str(exe), mode, str(n_steps), str(repeats), xf, cf], check=True, capture_output=True,
                         text=True).stdout
    times = [float(v) for v in next(ln for ln in out.splitlines() if ln.startswith("TIMES")).split()[1:]]
    return times, np.fromfile(cf, np.int32)


def perf_profile(exe, mode, n_steps, x, directory, top=6):
    """The hottest symbols of `exe` under `perf record` (None without perf)."""
    if shutil.which("perf") is None:
        return None
    xf, cf, data = (os.path.join(directory, n) for n in ("x.bin", "counts.i32", "perf.data"))
    np.ascontiguousarray(x).tofile(xf)
    rec = subprocess.run(["perf", "record", "-q", "-o", data, str(exe), mode, str(n_steps), "1", xf, cf],
                         capture_output=True, text=True)
    if rec.returncode:
        return dict(error=(rec.stderr.strip().splitlines() or ["perf record failed"])[-1])
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "symbol"],
                         capture_output=True, text=True).stdout
    rows = []
    for ln in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+\[\.\]\s+(\S+)", ln)
        if m:
            rows.append((m.group(2), float(m.group(1))))
    return dict(mode=mode, n_steps=n_steps, top=rows[:top])


# =================================================================================================
# HH workers
# =================================================================================================
def _hh_setup(n):
    import jax
    import jax.numpy as jnp

    import brainfuse_jax as bf
    import hh_speed
    model = hh_speed._ours_model(bf)  # bf.HH(scheme="exp_euler", hh_population's constants), exact exp decays
    state0 = model.init_state((n,), v0=hh_speed.V0)
    x = jnp.asarray(hh_speed.current_density(n), jnp.float32)
    return jax, bf, model, state0, x


def worker_hh_emit(variant, n, n_steps, repeats):
    jax, bf, model, state0, x = _hh_setup(n)
    t = time.perf_counter()
    lowered = bf.lower.to_stablehlo(model, state0, x, dt=0.025)
    program = bf.lower.emit_c(lowered, prefix="hh")
    export_s = time.perf_counter() - t
    info = dict(export_emit_s=export_s, c_lines=program.source.count("\n"),
                c_loops=len(re.findall(r"^\s*for \(int i0? = 0; i0? < \d+; \+\+i0?\)", program.source, re.M)),
                c_calls=len(re.findall(r"^\s*hh_fn_\w+\(", program.source, re.M)))
    with tempfile.TemporaryDirectory() as tmp:
        exe, build_s = build_emitted(program, tmp, variant)
        for mode in ("step", "unroll"):
            times, counts = run_bench(exe, mode, n_steps, repeats, np.asarray(x), tmp)
            info[mode] = dict(times_s=times, best_s=min(times), counts=counts.tolist())
    info.update(compile_s=build_s, flags=" ".join(_flags(variant)))
    return info


def worker_hh_c_loop(n, n_steps, repeats):
    import hh_speed
    with tempfile.TemporaryDirectory() as tmp:
        exe, build_s = hh_speed.build_c(tmp)
        info = hh_speed.run_c(exe, tmp, n, n_steps, repeats)
    return dict(times_s=info["times_s"], best_s=min(info["times_s"]), counts=info["counts"].tolist(),
                compile_s=build_s, flags=" ".join(hh_speed.C_FLAGS))


def worker_hh_brian2(n, n_steps, repeats):
    import hh_population as hp
    info = hp.worker_brian2(n, n_steps, repeats)
    return dict(times_s=info["walls_s"], best_s=min(info["walls_s"]), counts=np.asarray(info["counts"]).tolist(),
                compile_s=info["compile_s"], version=info["version"], notes=info["notes"],
                process_times_s=info["walls_process_s"])  # the binary's whole run (CPU time with --clock cpu)


def worker_hh_jax(n, n_steps, repeats):
    jax, bf, model, state0, x = _hh_setup(n)
    run = jax.jit(lambda m, s, c: bf.simulate(m, s, c, 0.025, n_steps=n_steps, record=bf.Total("output"),
                                               backend=bf.XLA()))
    t = time.perf_counter()
    _, counts = jax.block_until_ready(run(model, state0, x))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(run(model, state0, x))
        times.append(time.perf_counter() - t)
    counts = np.asarray(counts).reshape(-1)
    return dict(times_s=times, best_s=min(times), compile_s=max(first - min(times), 0.0),
                counts=np.rint(counts).astype(np.int64).tolist())


# =================================================================================================
# network workers
# =================================================================================================
def _net(capacity=None):
    import jax

    import brainfuse_jax as bf
    import brunel as bw
    p = bw.SETS[NET_SET]
    net = bf.network.brunel(J=p["J"], g=p["g"], eta=p["eta"], seed=bw.OUR_SEED, spike_capacity=capacity)
    return jax, bf, net


def worker_net_emit(variant, n_steps, short_steps, repeats, profile, rec=False):
    jax, bf, net = _net(2_000_000 if rec else None)  # 2,000,000: brunel()'s default
    t = time.perf_counter()
    lowered = bf.lower.to_stablehlo(net, net.init_state(1), dt=NET_DT)
    program = bf.lower.emit_c(lowered, prefix="net")
    export_s = time.perf_counter() - t
    x = np.zeros(program.x_shape, np.float32)
    info = dict(export_emit_s=export_s, c_bytes=len(program.source), n=net.n, NE=net.n - 1000)
    with tempfile.TemporaryDirectory() as tmp:
        exe, build_s = build_emitted(program, tmp, variant)
        for mode, steps in (("unroll", n_steps), ("step", short_steps)):
            if steps <= 0:
                continue
            times, counts = run_bench(exe, mode, steps, repeats if steps == n_steps else 1, x, tmp)
            info[mode] = dict(times_s=times, best_s=min(times), n_steps=steps, counts=counts.tolist(),
                              ms_per_step=1e3 * min(times) / steps, rtf=min(times) / (steps * NET_DT / 1000.0))
        if profile:
            try:
                info["profile"] = perf_profile(exe, "unroll", min(short_steps or 200, 200), x, tmp)
            except Exception as err:  # noqa: BLE001
                info["profile"] = dict(error=str(err))
            info["hot_source"] = _describe_hot(program.source, (info.get("profile") or {}).get("top", []))
    info.update(compile_s=build_s, flags=" ".join(_flags(variant)))
    return info


def _describe_hot(source, top):
    """For the hottest generated functions: the first loop nest of each (what it computes)."""
    out = {}
    for sym, _ in top[:3]:
        name = sym.split(".")[0]
        m = re.search(r"^static void " + re.escape(name) + r"\([^)]*\) \{\n(.*?)^\}", source, re.S | re.M)
        if m:
            body = [ln for ln in m.group(1).splitlines() if "for (" in ln or "acc =" in ln or "if (" in ln]
            out[name] = "\n".join(body[:6])
    return out


def worker_net_brian2(t_sim):
    import brunel as bw
    from tests import _nest_brunel as nb
    p = nb.brunel_params(**bw.SETS[NET_SET])
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "b2.npz")
        info = bw.worker_brian2(p, t_sim, bw.NEST_SEED, out)
        with np.load(out) as z:
            info.update(nb.spike_stats(z["senders"], z["times_ms"], p["NE"], p["NI"], t_sim))
    info["rtf"] = info["run_s"] / (t_sim / 1000.0)
    return info


def worker_net_jax(n_steps, repeats):
    jax, bf, net = _net(None)
    import jax.numpy as jnp
    state0 = net.init_state(1)
    x = jnp.zeros((1, net.n), jnp.float32)
    run = jax.jit(lambda m, s: bf.simulate(m, s, x, NET_DT, n_steps=n_steps, record=bf.Total("output"),
                                            backend=bf.XLA()))
    t = time.perf_counter()
    _, counts = jax.block_until_ready(run(net, state0))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(run(net, state0))
        times.append(time.perf_counter() - t)
    counts = np.rint(np.asarray(counts)).astype(np.int64).reshape(-1)
    return dict(times_s=times, best_s=min(times), compile_s=max(first - min(times), 0.0), counts=counts.tolist(),
                n_steps=n_steps, rtf=min(times) / (n_steps * NET_DT / 1000.0))


def _cpu_seconds():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ru.ru_utime + ru.ru_stime


def run_worker(args):
    if os.environ.get("HH_SPEED_CLOCK") != "wall":
        time.perf_counter = _cpu_seconds  # as hh_speed.py: every timer of the worker reads CPU time
    name = args.worker
    result = dict(name=name, ok=False)
    try:
        if name == "hh_c_loop":
            info = worker_hh_c_loop(args.n, args.steps, args.repeats)
        elif name.startswith("hh_emit_"):
            info = worker_hh_emit(name.split("_")[-1], args.n, args.steps, args.repeats)
        elif name == "hh_brian2":
            info = worker_hh_brian2(args.n, args.steps, args.repeats)
        elif name == "hh_jax":
            info = worker_hh_jax(args.n, args.steps, args.repeats)
        elif name in ("net_emit_o2", "net_emit_native", "net_emit_o2_rec"):
            info = worker_net_emit(PROJECT if "o2" in name else NATIVE, args.steps, args.short_steps,
                                   args.repeats, args.profile, rec=name.endswith("_rec"))
        elif name == "net_brian2":
            info = worker_net_brian2(args.steps * NET_DT)
        elif name == "net_jax":
            info = worker_net_jax(args.steps, args.repeats)
        else:
            raise ValueError(name)
        result.update(info)
        result["ok"] = True
    except Exception as err:  # noqa: BLE001 - report and carry on
        result["error"] = f"{type(err).__name__}: {err}"
        result["traceback"] = traceback.format_exc()
    print("RESULT " + json.dumps(result, default=float), flush=True)


# =================================================================================================
# driver
# =================================================================================================
def plan(args):
    q = args.quick
    return dict(hh_n=200 if q else HH_N, hh_steps=2000 if q else HH_T, repeats=args.repeats or (1 if q else 5),
                net_steps=200 if q else 10_000, net_short=50 if q else args.net_short,
                net_o2_steps=200 if q else args.net_o2_steps, brian2_repeats=1 if q else 3)


def launch(name, args, *, n=None, steps=None, short_steps=0, repeats=1, profile=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--repeats", str(repeats),
           "--steps", str(steps), "--short-steps", str(short_steps)]
    if n is not None:
        cmd += ["--n", str(n)]
    if profile:
        cmd += ["--profile"]
    res = _harness.run_child(cmd, args.timeout, name)
    res.setdefault("name", name)
    return res


def run_all(args, selected, P, log):
    R = {}
    jobs = [("hh_c_loop", dict(n=P["hh_n"], steps=P["hh_steps"], repeats=P["repeats"])),
            ("hh_emit_o2", dict(n=P["hh_n"], steps=P["hh_steps"], repeats=P["repeats"])),
            ("hh_emit_native", dict(n=P["hh_n"], steps=P["hh_steps"], repeats=P["repeats"])),
            ("hh_brian2", dict(n=P["hh_n"], steps=P["hh_steps"], repeats=P["brian2_repeats"])),
            ("hh_jax", dict(n=P["hh_n"], steps=P["hh_steps"], repeats=3)),
            ("net_brian2", dict(steps=P["net_steps"])),
            ("net_jax", dict(steps=P["net_steps"], repeats=1)),
            ("net_emit_native", dict(steps=P["net_steps"], short_steps=P["net_short"])),
            ("net_emit_o2", dict(steps=P["net_o2_steps"], short_steps=P["net_short"])),
            ("net_emit_o2_rec", dict(steps=0, short_steps=P["net_short"]))]
    for name, kw in jobs:
        if name not in selected:
            continue
        res = launch(name, args, profile=args.profile and name == "net_emit_o2", **kw)
        R[name] = res
        log(f"{name}: " + (f"ok ({res.get('process_s', 0):.0f} s)" if res.get("ok") else f"FAILED {res.get('error')}"))
    return R


def _counts(res, mode=None):
    r = res.get(mode, {}) if mode else res
    return None if not res.get("ok") or "counts" not in r else np.asarray(r["counts"], np.int64)


def hh_rows(R):
    """(label, flags, best s, counts) of every HH implementation that ran."""
    rows = []
    for name in ("hh_c_loop", "hh_emit_o2", "hh_emit_native", "hh_brian2", "hh_jax"):
        res = R.get(name, {})
        if not res.get("ok"):
            if name in R:
                rows.append((name, IMPLS[name], None, None, res.get("error")))
            continue
        if name.startswith("hh_emit_"):
            for mode in ("step", "unroll"):
                rows.append((f"{name} ({mode})", f"{IMPLS[name]}; `hh_{mode}`", res[mode]["best_s"],
                             _counts(res, mode), None))
        else:
            rows.append((name, IMPLS[name], res["best_s"], _counts(res), None))
    return rows


def _mismatch(c, ref):
    if c is None or ref is None or c.shape != ref.shape:
        return "–"
    return f"{int(np.sum(c != ref))}"


def _ratio(a, b):
    return None if a is None or b is None else a / b


def render(R, P, machine, cmd, total_s, load_before, load_after):
    n, T = P["hh_n"], P["hh_steps"]
    lines = ["## Generated C (issue 14, `lowered_c`): the emitter's C against the hand C loop and Brian2", "",
             f"Command: `{cmd}` (total {total_s:.0f} s). One core (sched_setaffinity {{0}}), every implementation "
             f"in its own process, all in this run. 1-min load average {load_before[0]:.2f} before / "
             f"{load_after[0]:.2f} after (2 cores shared with other jobs). Times: CPU time of the process "
             "(clock_gettime(CLOCK_PROCESS_CPUTIME_ID) around the time loop in the C programs; CPU time of the "
             "worker for JAX), except Brian2's, which are its own main-loop timers (wall time; the HH worker also "
             f"stores the CPU time of Brian2's whole binary in the JSON); best of {P['repeats']} (Brian2 "
             f"{P['brian2_repeats']}).", "",
             f"### HH: {n:,} neurons x {T:,} steps", "",
             "hh_speed.py's workload (dt 0.025 ms, I = linspace(0, 20, N) uA/cm2 held, V0 -65 mV at steady "
             "state, 6.3 degC, exponential Euler, float32). Ours: `bf.HH(scheme=\"exp_euler\")` with those "
             "constants (exact exponential decays, the C loop's maths), one step exported by "
             "`bf.lower.to_stablehlo` and emitted by `bf.lower.emit_c`; a benchmark main includes the generated "
             "header, calls `hh_params_init`, `hh_state_init` and either `hh_step` T times with the constant input "
             f"(`step`) or `hh_unroll` on chunks of {UNROLL_CHUNK['hh']:,} steps of the input series (`unroll`: "
             "what depends on the parameters only is computed once per call, not at every step), counting spikes "
             "(output != 0) per neuron inside the timed loop as the C loop does. Both are compiled with the "
             "generated .c at the project's flags (`-std=c99 -O2 -Wall -Wextra -Werror`) and at the C loop's "
             "(`-O3 -march=native -ffast-math`). 'x C loop' = C loop time / time (>= 0.8 is the goal), 'x Brian2' "
             "= Brian2 time / time (>= 2 is the goal). Spike-count mismatches: neurons whose count over the run "
             "differs from `bf.simulate` of the same model (float32, backend XLA, the exported computation); the "
             "C loop counts upward 0-mV crossings, Brian2 (float64) threshold crossings with refractoriness "
             "`v >= 0 mV`.", "",
             "| implementation | time (s) | neuron-steps/s | x C loop | x Brian2 | spikes | count mismatches vs JAX |",
             "|---|---|---|---|---|---|---|"]
    rows = hh_rows(R)
    t_c = next((r[2] for r in rows if r[0] == "hh_c_loop"), None)
    t_b = next((r[2] for r in rows if r[0] == "hh_brian2"), None)
    ref = next((r[3] for r in rows if r[0] == "hh_jax"), None)
    for label, what, best, counts, err in rows:
        if best is None:
            lines.append(f"| `{label}`: {what} | FAILED: {err} | | | | | |")
            continue
        rc, rb = _ratio(t_c, best), _ratio(t_b, best)
        lines.append(f"| `{label}`: {what} | {best:.3f} | {n * T / best / 1e6:.1f} M | "
                     f"{'–' if rc is None else f'{rc:.2f}'} | {'–' if rb is None else f'{rb:.2f}'} | "
                     f"{'–' if counts is None else f'{int(counts.sum()):,}'} | "
                     f"{'(reference)' if label == 'hh_jax' else _mismatch(counts, ref)} |")
    goals = []
    for label, _, best, _, _ in rows:
        if best is None or not label.startswith("hh_emit_"):
            continue
        rc, rb = _ratio(t_c, best), _ratio(t_b, best)
        parts = []
        if rc is not None:
            parts.append(f"{rc:.2f}x the C loop (goal >= 0.8x: {'met' if rc >= 0.8 else 'NOT met'})")
        if rb is not None:
            parts.append(f"{rb:.2f}x Brian2 (goal >= 2x: {'met' if rb >= 2 else 'NOT met'})")
        goals.append(f"- `{label}`: " + "; ".join(parts))
    lines += [""] + (["Goals (issue 14):"] + goals if goals else []) + [""]
    emitted = R.get("hh_emit_o2", {})
    if emitted.get("ok"):
        lines += [f"What dominates: the generated step is the StableHLO module op by op, each op a loop over "
                  f"(N,) arrays in static storage ({emitted['c_loops']} elementwise/broadcast loops and "
                  f"{emitted['c_calls']} calls of helper functions that loop and memcpy their result, in "
                  f"{emitted['c_lines']:,} lines), where the C loop is one fused pass with every intermediate in "
                  "registers; the exported step also carries the NaN checks of `to_stablehlo` (sums of `x * 0 != 0` "
                  "over the input, state and outputs, and selects). At -O2 gcc does not vectorise the polynomial "
                  "`bf_expf`; at -O3 -march=native it does, hence the gap between the two builds. `unroll` is no "
                  "faster here: the HH parameters are scalars (little to hoist), and it copies the (N,) input and "
                  "output of every step element by element into and out of the (B, T) series.", ""]
    lines += net_section(R, P)
    lines += ["", "![HH time and Brunel RTF of every implementation](img/lowered_c.png)"]
    v = machine["versions"]
    lines += ["", f"Machine: {machine['cpu']} ({machine['logical_cpus']} logical CPUs, run on core "
              f"{machine['affinity']}), Linux {machine['kernel']}, Python {machine['python']}, jax {v.get('jax')} / "
              f"jaxlib {v.get('jaxlib')}, numpy {v.get('numpy')}, Brian2 {v.get('brian2')}, {machine['gcc']}.", ""]
    return "\n".join(lines)


def net_section(R, P):
    from tests import _nest_brunel as nb
    import brunel as bw
    p = nb.brunel_params(**bw.SETS[NET_SET])
    NE, NI = p["NE"], p["NI"]
    lines = [f"### Brunel network (J {p['J']}, g {p['g']}, eta {p['eta']}; NE {NE:,}, NI {NI:,}; dt {NET_DT} ms)",
             "",
             "Ours: `bf.network.brunel(J=0.25, g=5.0, eta=2.0, spike_capacity=None)` (the network draws its own "
             "Poisson drive with a counter-based generator, reproduced in C; zero external input), its step "
             "exported with `to_stablehlo(net, net.init_state(1), dt=0.1)` and emitted; the benchmark main "
             f"counts each neuron's spikes from the step's output. `unroll` runs `net_unroll` in chunks of "
             f"{UNROLL_CHUNK['net']} steps, `step` loops `net_step`. Brian2: brunel.py's cpp_standalone worker "
             "(same model and parameters, its own connectivity and seed), RTF = main-loop seconds per biological "
             "second. 'x Brian2' = Brian2 RTF / RTF (goal >= 1). Rates E / I: spikes per neuron per second over "
             "the run. Spike check: neurons whose spike count differs from `bf.simulate` of the same network "
             "(backend XLA) over the same steps.", "",
             "| implementation | steps timed | RTF (s/s) | ms/step | x Brian2 | rate E (Hz) | rate I (Hz) | "
             "count mismatches vs JAX |", "|---|---|---|---|---|---|---|---|"]
    b2 = R.get("net_brian2", {})
    jx = R.get("net_jax", {})
    ref = _counts(jx)
    b2_rtf = b2.get("rtf") if b2.get("ok") else None
    if b2.get("ok"):
        lines.append(f"| `net_brian2`: {IMPLS['net_brian2']} | {P['net_steps']:,} | {b2['rtf']:.3f} | "
                     f"{1e3 * b2['run_s'] / P['net_steps']:.3f} | 1.00 | {b2['rate_E_Hz']:.2f} | {b2['rate_I_Hz']:.2f} "
                     "| – |")
    elif "net_brian2" in R:
        lines.append(f"| `net_brian2` | FAILED: {b2.get('error')} | | | | | | |")
    if jx.get("ok"):
        c = ref
        lines.append(f"| `net_jax`: {IMPLS['net_jax']} | {jx['n_steps']:,} | {jx['rtf']:.3f} | "
                     f"{1e3 * jx['best_s'] / jx['n_steps']:.3f} | "
                     f"{'–' if b2_rtf is None else format(b2_rtf / jx['rtf'], '.2f')} | "
                     f"{c[:NE].sum() / NE / (jx['n_steps'] * NET_DT / 1e3):.2f} | "
                     f"{c[NE:].sum() / NI / (jx['n_steps'] * NET_DT / 1e3):.2f} | (reference) |")
    goals = []
    for name in ("net_emit_o2", "net_emit_native", "net_emit_o2_rec"):
        res = R.get(name, {})
        if name in R and not res.get("ok"):
            lines.append(f"| `{name}` | FAILED: {res.get('error')} | | | | | | |")
            continue
        for mode in ("unroll", "step"):
            r = res.get(mode)
            if not r:
                continue
            c = np.asarray(r["counts"], np.int64)
            secs = r["n_steps"] * NET_DT / 1e3
            rb = _ratio(b2_rtf, r["rtf"])
            same = ref is not None and r["n_steps"] == jx.get("n_steps")
            rates = (f"{c[:NE].sum() / NE / secs:.2f} | {c[NE:].sum() / NI / secs:.2f}" if r["n_steps"] >= 1000
                     else "– | –")  # (the first ~5 ms are silent: a short run has no rate)
            lines.append(f"| `{name} ({mode})`: {IMPLS[name]} | {r['n_steps']:,} | {r['rtf']:.2f} | "
                         f"{r['ms_per_step']:.2f} | {'–' if rb is None else f'{rb:.4f}'} | {rates} | "
                         f"{_mismatch(c, ref) if same else '– (shorter run)'} |")
            if rb is not None and name != "net_emit_o2_rec":
                goals.append(f"- `{name} ({mode})`: {rb:.3f}x Brian2 (goal >= 1x: {'met' if rb >= 1 else 'NOT met'})")
    lines += [""] + (["Goals (issue 14):"] + goals if goals else [])
    lines += ["", "The C rows run the same network as `net_jax` (same connectivity, same counter-based drive), so "
              "their spike counts would match it if the C reproduced every draw; a mismatch count in the "
              "hundreds or thousands means the two runs diverged at some step and the network's chaos did the "
              "rest (see the note below the profile). Brian2 runs its own connectivity and seed: its rates are "
              "comparable, its spikes are not."]
    prof = R.get("net_emit_o2", {}).get("profile")
    if prof and prof.get("top"):
        lines += ["", f"Where the time goes (`perf record` of the O2 benchmark, `{prof['mode']}` over "
                      f"{prof['n_steps']} steps; share of samples):", ""]
        lines += [f"- `{sym}`: {pct:.1f} %" for sym, pct in prof["top"] if pct >= 0.5]
        hot = R["net_emit_o2"].get("hot_source") or {}
        for sym, loops in list(hot.items())[:1]:  # the hottest (the main function's loops say little)
            lines += ["", f"`{sym}` (its loops):", "", "```c", loops, "```"]
    lines += ["", "Diagnosis (the emitter and the network are not changed by this benchmark):", "",
              "- `net_step` (the `step` rows) redoes at every call what depends on the parameters only, as "
              "documented: the delivery's padded copies of `conn.cols` and `conn.weights` (2.5 M entries each) "
              "and the NaN check of every parameter (sums over the 2.5 M weights); `net_unroll` does it once "
              "per call.",
              "- The emitted step runs the module op by op, each op a loop over its whole array with the "
              "result stored: the elementwise chains of the neuron update and of the Poisson draw are not "
              "fused into one pass, as XLA and the hand-written loops do.",
              "- `net_emit_o2_rec`: with brunel()'s default `spike_capacity` (2,000,000) the spike record (two "
              "int32 arrays of 2 M) is state; the step copies the whole state struct (`*s = next`) and its "
              "arrays at every step (16 MB+ per step).",
              "",
              "Fixed after the first run of this benchmark (RTF 130 at -O3): (1) the emitter translated the "
              "prefix sum of `jnp.nonzero` (a `reduce_window` as long as the axis) literally, O(N^2) = 25 M adds "
              "per call, 89 % of the step; it now emits prefix reductions as one running pass in the same order. "
              "(2) C and JAX diverged after 58 steps: a uniform of 1 - 3.6e-7 met the flat top of the float32 "
              "Poisson CDF, which XLA and C round differently, and got the table's last count (16 events instead "
              "of 9); table entries whose tail probability is below the uniforms' resolution are now never "
              "crossed (`network/_drive.poisson_counts`), which also removed a bias of the JAX draw itself."]
    return lines


def make_plot(R, P, path=IMG):
    """Two panels: HH time per run and Brunel RTF of every implementation (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hh = [(label, best) for label, _, best, _, _ in hh_rows(R) if best is not None]
    net = []
    for name in ("net_brian2", "net_jax"):
        if R.get(name, {}).get("ok"):
            net.append((name, R[name]["rtf"]))
    for name in ("net_emit_o2", "net_emit_native", "net_emit_o2_rec"):
        for mode in ("unroll", "step"):
            if R.get(name, {}).get(mode):
                net.append((f"{name} ({mode})", R[name][mode]["rtf"]))
    if not hh and not net:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, rows, title, unit in ((axes[0], hh, f"HH {P['hh_n']:,} neurons x {P['hh_steps']:,} steps", "s"),
                                  (axes[1], net, "Brunel network (J 0.25): real-time factor", "s per s")):
        if not rows:
            ax.set_axis_off()
            continue
        names, vals = zip(*rows)
        colors = ["tab:gray" if ("brian2" in nm or "c_loop" in nm) else
                  "tab:blue" if "jax" in nm else "tab:orange" for nm in names]
        ax.barh(range(len(vals)), vals, color=colors)
        ax.set_yticks(range(len(vals)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(f"{unit} (lower is faster)")
        ax.set_title(title, fontsize=10)
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
    fig.suptitle("Generated C (orange) against the hand C loop and Brian2 (grey) and JAX/XLA (blue), one core",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def write_json(d, path=RESULTS_JSON):
    """The results, indented, with every list of numbers on one line (the spike counts)."""
    text = json.dumps(_jsonable(d), indent=1)
    text = re.sub(r"\[[\d\s,.eE+-]*\]", lambda m: re.sub(r"\s+", "", m.group(0)), text)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke test: small sizes, 1 repeat, no docs")
    ap.add_argument("--only", default=None, help="comma-separated: " + ",".join(IMPLS))
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (best reported; 5)")
    ap.add_argument("--net-short", type=int, default=300, help="steps of the network's `step` loop (300)")
    ap.add_argument("--net-o2-steps", type=int, default=1000,
                    help="steps of the O2 network unroll (1,000: the emitted network step is slow)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per child process")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip perf on the network")
    ap.add_argument("--write", action="store_true", help="write docs/results even with --quick/--only")
    ap.add_argument("--render-json", default=None, metavar="PATH", help="rewrite the docs section from a JSON")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=HH_N, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=HH_T, help=argparse.SUPPRESS)
    ap.add_argument("--short-steps", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--profile", action="store_true", dest="profile", help=argparse.SUPPRESS)
    ap.set_defaults(profile=True)
    args = ap.parse_args()
    os.environ["HH_SPEED_CLOCK"] = args.clock  # inherited by the workers (and hh_speed.build_c)
    if args.worker:
        args.repeats = args.repeats or 1
        args.profile = "--profile" in sys.argv
        run_worker(args)
        return
    if args.render_json:
        with open(args.render_json) as f:
            d = json.load(f)
        section = render(d["results"], d["plan"], d["machine"], d["command"], d["total_s"], d["load_before"],
                         d["load_after"])
        _harness.write_doc("lowered_c", section)
        make_plot(d["results"], d["plan"])
        print(section)
        return
    selected = set(IMPLS) if not args.only else {a.strip() for a in args.only.split(",")}
    if selected - set(IMPLS):
        ap.error(f"unknown names {sorted(selected - set(IMPLS))}; choose from {sorted(IMPLS)}")
    if args.quick:
        selected -= {"hh_brian2", "net_brian2"} if not args.only else set()
    P = plan(args)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    machine = _harness.machine_info(("jax", "jaxlib", "numpy", "brian2"))
    machine["clock"] = args.clock
    R = run_all(args, selected, P, lambda s: print(f"[{time.perf_counter() - t_start:6.0f} s] {s}", flush=True))
    load_after = os.getloadavg()
    total_s = time.perf_counter() - t_start
    cmd = "python benchmarks/lowered_c.py" + " ".join([""] + sys.argv[1:])
    section = render(R, P, machine, cmd, total_s, load_before, load_after)
    print(section)
    if args.write or (not args.quick and not args.only):
        _harness.write_doc("lowered_c", section)
        os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
        try:
            make_plot(R, P)
        except Exception as err:  # noqa: BLE001
            print(f"plot failed: {err}", file=sys.stderr)
        write_json(dict(machine=machine, command=cmd, total_s=total_s, plan=P, load_before=load_before,
                        load_after=load_after, results=R))
        print(f"wrote {_harness.DOC}, {IMG}, {RESULTS_JSON}")


if __name__ == "__main__":
    main()
