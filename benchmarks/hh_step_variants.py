#!/usr/bin/env python
"""Where does the time of one HH step go? Variants of the `scheme="neuron"` step, timed alone.

Companion of `hh_population.py` (same workload: N = 1000 HH neurons, I = linspace(0, 20, N)
uA/cm2, dt = 0.025 ms, one core), timing `T` steps of each variant in a bare `lax.scan`
(spike counts carried, nothing recorded), best of `--repeats` runs, float32 and float64 (the
float64 half runs in a child process with `jax_enable_x64`). The hand-written variants reuse the
package's own channel tables (`Channel.kinetics` on the `Channel.table` grid) and the package's
arithmetic order, so they compute the same numbers as `HH(scheme="neuron")` up to rounding
(the script reports the final-voltage difference and the spike count).

Variants:
- `ours`: `HH(scheme="neuron").step` (six inf/tau tables, each interpolated with its own
  two gathers: 12 gathers per step).
- `ours_simulate`: the same through `simulate` in chunks of 1000 steps (the recording overhead).
- `hand_separate`: the same maths written out by hand with six separate tables (= ours).
- `hand_packed`: one packed `(n, 12)` table `[value | slope]` (slope = t[i+1] - t[i], computed once),
  one gather of a row per neuron and step, then `value + theta * slope`.
- `ours_backward_euler`: `HH(scheme="backward_euler").step` (analytic rates, no tables).

Usage: python benchmarks/hh_step_variants.py [--steps 20000] [--repeats 5] [--write]
(`--write` puts the table into docs/benchmarks.md between `hh_step_variants` markers.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
try:
    os.sched_setaffinity(0, {0})
except (AttributeError, OSError):
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(os.path.dirname(HERE), "docs", "benchmarks.md")
MARK_START, MARK_END = "<!-- hh_step_variants:start -->", "<!-- hh_step_variants:end -->"
N, DT, V0, EL = 1000, 0.025, -65.0, -54.387


def worker(x64, n_steps, repeats):
    import jax
    if x64:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    import brainfuse_jax as bf

    dtype = jnp.float64 if x64 else jnp.float32
    current = jnp.linspace(0.0, 20.0, N, dtype=dtype)
    model = bf.HH(e_l=EL, scheme="neuron")
    s0 = model.init_state((N,), dtype=dtype, v0=V0)

    def scan_steps(step, state):
        def body(carry, _):
            s, c = carry
            s, spike = step(s)
            return (s, c + spike.astype(jnp.int32)), None
        return jax.lax.scan(body, (state, jnp.zeros((N,), jnp.int32)), None, length=n_steps)[0]

    def ours(model, state, current):
        return scan_steps(lambda s: model.step(s, current, DT), state)

    def ours_simulate(model, state, current, chunk=1000):
        def outer(carry, _):
            s, c = carry
            s, spikes = bf.simulate(model, s, jnp.broadcast_to(current[:, None], (N, chunk)), DT)
            return (s, c + spikes.sum(1).astype(jnp.int32)), None
        return jax.lax.scan(outer, (state, jnp.zeros((N,), jnp.int32)), None, length=n_steps // chunk)[0]

    def tables(model, dt_):
        """The package's tables: per gate (inf, tau) on the channel's grid, in channel order."""
        out = []
        for name, gates in (("na", ("m", "h")), ("k", ("n",))):  # (pytree dicts come back key-sorted)
            ch = model.channels[name]
            lo, hi, n = ch.table  # both HH channels use hh.mod's (-100, 100, 200)
            grid = jnp.linspace(lo, hi, n + 1, dtype=dt_)
            kin = ch.kinetics(grid, model.temperature.astype(dt_))
            for g in gates:
                out += [kin[g].inf, kin[g].tau]
        return out, ch.table

    def hand(model, state, current, packed):
        dt_ = state["v"].dtype
        tabs, (lo, hi, n) = tables(model, dt_)
        if packed:
            t = jnp.stack(tabs, axis=1)  # (n + 1, 6)
            t2 = jnp.concatenate([t[:-1], t[1:] - t[:-1]], axis=1)  # (n, 12): value | slope
        na, k, leak = model.channels["na"], model.channels["k"], model.channels["leak"]
        c_m, dt = model.c_m.astype(dt_), jnp.asarray(DT, dt_)

        def step(s):
            v, m, h, nn = s["v"], s["na"]["m"], s["na"]["h"], s["k"]["n"]
            g_na, g_k, g_l = na.gbar * m ** 3 * h, k.gbar * nn ** 4, leak.gbar
            G = 0.0 + g_na + g_k + g_l
            GE = 0.0 + g_na * na.e_rev + g_k * k.e_rev + g_l * leak.e_rev
            v_new = (c_m / dt * v + GE + current) / (c_m / dt + G)
            xi = (v_new - lo) * (n / (hi - lo))
            i = jnp.clip(jnp.floor(xi), 0, n - 1).astype(jnp.int32)
            theta = jnp.clip(xi - i, 0.0, 1.0)
            if packed:
                row = t2[i]  # one gather: (N, 12)
                val = [row[:, j] + theta * row[:, 6 + j] for j in range(6)]
            else:
                val = [tt[i] + theta * (tt[i + 1] - tt[i]) for tt in tabs]
            gate = lambda x, inf, tau: inf + (x - inf) * jnp.exp(-dt / tau)  # noqa: E731
            new = {"v": v_new, "na": {"m": gate(m, val[0], val[1]), "h": gate(h, val[2], val[3])},
                   "k": {"n": gate(nn, val[4], val[5])}, "leak": {}}
            return new, ((v_new >= 0) & (v < 0)).astype(dt_)
        return scan_steps(step, state)

    variants = {
        "ours": (jax.jit(ours), model),
        "ours_simulate": (jax.jit(ours_simulate), model),
        "hand_separate": (jax.jit(lambda m, s, c: hand(m, s, c, False)), model),
        "hand_packed": (jax.jit(lambda m, s, c: hand(m, s, c, True)), model),
        "ours_backward_euler": (jax.jit(ours), bf.HH(e_l=EL, scheme="backward_euler")),
    }
    results, finals = {}, {}
    for name, (fn, mdl) in variants.items():
        args = (mdl, s0 if name != "ours_backward_euler" else mdl.init_state((N,), dtype=dtype, v0=V0), current)
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - t0
        hlo = compiled.as_text()
        walls = []
        for _ in range(repeats):
            t = time.perf_counter()
            state, counts = jax.block_until_ready(compiled(*args))
            walls.append(time.perf_counter() - t)
        finals[name] = np.asarray(state["v"])
        results[name] = dict(steps_per_s=N * n_steps / min(walls), compile_s=compile_s,
                             spikes=int(np.asarray(counts).sum()), gathers=hlo.count(" gather("))
    for name in ("ours_simulate", "hand_separate", "hand_packed"):
        results[name]["max_dv_vs_ours"] = float(np.abs(finals[name] - finals["ours"]).max())
    print("RESULT " + json.dumps(dict(dtype=str(jnp.dtype(dtype)), results=results)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--worker", choices=("f32", "f64"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker == "f64", args.steps, args.repeats)
        return
    out = {}
    for prec in ("f32", "f64"):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", prec,
                               "--steps", str(args.steps), "--repeats", str(args.repeats)],
                              capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{prec} worker failed")
        out[prec] = json.loads(lines[-1][7:])["results"]
    names = list(out["f32"])
    rows = [f"## HH step variants ({N} neurons, {args.steps:,} steps, bare `lax.scan`, one core)", "",
            f"Command: `python benchmarks/hh_step_variants.py{' '.join([''] + sys.argv[1:])}`; best of "
            f"{args.repeats}; million neuron-steps/s. max dV = largest difference of the final voltage from "
            "`ours` (mV; not bit-identical because XLA fuses, and so rounds / contracts to FMA, "
            "differently).", "",
            "| variant | float32 | float64 | gathers in HLO | max dV, mV (f32 / f64) | spikes (f32 / f64) |",
            "|---|---:|---:|---:|---|---|"]
    for nm in names:
        a, b = out["f32"][nm], out["f64"][nm]
        same = (f"{a['max_dv_vs_ours']:.2g} / {b['max_dv_vs_ours']:.2g}" if "max_dv_vs_ours" in a else "-")
        rows.append(f"| {nm} | {a['steps_per_s'] / 1e6:.1f} | {b['steps_per_s'] / 1e6:.1f} | {a['gathers']} "
                    f"| {same} | {a['spikes']} / {b['spikes']} |")
    section = "\n".join(rows) + "\n"
    print(section)
    if args.write:
        block = f"{MARK_START}\n{section}{MARK_END}\n"
        text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
        pat = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END) + r"\n?", re.S)
        text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
        os.makedirs(os.path.dirname(DOC), exist_ok=True)
        with open(DOC, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
