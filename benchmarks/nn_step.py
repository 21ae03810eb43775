"""One training step (value_and_grad + optimiser update) of a matched LIF network: brainfuse_jax.nn
against snnTorch (CPU torch), and the HH layer's step time relative to the LIF layer's.

    python benchmarks/nn_step.py            # writes the nn-step section of docs/benchmarks.md

Network: Linear(F -> n) -> LIF (beta 0.9, threshold 1, subtract reset, atan surrogate) over T
steps -> spike counts -> Linear(n -> C) -> cross-entropy; Adam. Each variant runs in its own
child process on one pinned core, one thread (benchmarks/_harness.py); the time is the median
over repeated steps after warm-up (compilation excluded, reported separately).
"""

from __future__ import annotations

import _harness  # noqa: F401  (pins the core and threads before numpy / JAX / torch load)

import argparse
import json
import os
import sys
import time

B, T, F, N, C = 128, 64, 20, 128, 10
REPEATS = 20


def _median_time(fn, repeats):
    """Median wall and CPU (process) time of `fn`. The machine is shared: the CPU time of a
    single-threaded, pinned worker excludes the time spent waiting for the core."""
    ts, cs = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t)
        cs.append(time.process_time() - c)
    return sorted(ts)[len(ts) // 2], sorted(cs)[len(cs) // 2], ts


def worker_ours(kind: str, substeps: int, repeats: int):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    sys.path.insert(0, _harness.ROOT)
    from brainfuse_jax import nn

    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    if kind == "lif":
        layer = nn.LIFLayer(F, N, key=k1, beta=0.9, learn_beta=False, substeps=substeps)
    else:
        layer = nn.HHLayer(F, N, key=k1, dt=0.1, substeps=substeps, input_scale=20.0, scheme="exp_euler")
    model = nn.Sequential([layer, nn.SpikeCountReadout(N, C, key=k2)])
    opt = optax.adam(1e-3)
    params = eqx.filter(model, eqx.is_inexact_array)
    state = opt.init(params)
    rng = np.random.default_rng(0)
    x = jnp.asarray((rng.random((B, T, F)) < 0.2).astype(np.float32) * 2.0)
    y = jnp.asarray(rng.integers(0, C, B).astype(np.int32))

    @eqx.filter_jit
    def step(model, state, x, y):
        loss, g = eqx.filter_value_and_grad(lambda m: nn.cross_entropy(m(x), y))(model)
        upd, state = opt.update(g, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, upd), state, loss

    t = time.perf_counter()
    out = step(model, state, x, y)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t
    holder = {"m": model, "s": state}

    def one():
        m, s, loss = step(holder["m"], holder["s"], x, y)
        jax.block_until_ready(loss)
        holder["m"], holder["s"] = m, s

    for _ in range(3):  # warm-up (the first updates may change leaves' weak types once)
        one()
    med, cpu, ts = _median_time(one, repeats)
    return dict(ok=True, label=f"ours-{kind}-s{substeps}", step_s=med, cpu_s=cpu, compile_s=compile_s, times=ts,
                loss=float(out[2]), jax=jax.__version__)


def worker_snntorch(repeats: int):
    import numpy as np
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(1)
    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(F, N), torch.nn.Linear(N, C)
    lif = snn.Leaky(beta=0.9, threshold=1.0, spike_grad=surrogate.atan(), reset_mechanism="subtract")
    params = list(fc1.parameters()) + list(fc2.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(0)
    x = torch.tensor((rng.random((B, T, F)) < 0.2).astype(np.float32) * 2.0)
    y = torch.tensor(rng.integers(0, C, B))

    def one():
        opt.zero_grad()
        mem = lif.init_leaky()
        count = 0
        cur = fc1(x)  # (B, T, N): the projection of all steps at once, as ours
        for t in range(T):
            spk, mem = lif(cur[:, t], mem)
            count = count + spk
        loss = torch.nn.functional.cross_entropy(fc2(count), y)
        loss.backward()
        opt.step()
        return loss

    t = time.perf_counter()
    loss = one()
    first = time.perf_counter() - t
    one()
    med, cpu, ts = _median_time(one, repeats)
    return dict(ok=True, label="snntorch", step_s=med, cpu_s=cpu, compile_s=first, times=ts, loss=float(loss.detach()),
                torch=torch.__version__, snntorch=snn.__version__)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", default=None)
    ap.add_argument("--substeps", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    if args.worker:
        try:
            res = (worker_snntorch(args.repeats) if args.worker == "snntorch"
                   else worker_ours(args.worker, args.substeps, args.repeats))
        except Exception as err:  # noqa: BLE001
            res = dict(ok=False, label=args.worker, error=f"{type(err).__name__}: {err}")
        print("RESULT " + json.dumps(res))
        return
    me = [sys.executable, os.path.abspath(__file__), "--repeats", str(args.repeats)]
    runs = {
        "ours_lif": _harness.run_child(me + ["--worker", "lif"], 1200, "ours-lif"),
        "snntorch": _harness.run_child(me + ["--worker", "snntorch"], 1200, "snntorch"),
        "ours_hh_s1": _harness.run_child(me + ["--worker", "hh", "--substeps", "1"], 1200, "ours-hh-s1"),
        "ours_lif_s4": _harness.run_child(me + ["--worker", "lif", "--substeps", "4"], 1200, "ours-lif-s4"),
        "ours_hh_s4": _harness.run_child(me + ["--worker", "hh", "--substeps", "4"], 1200, "ours-hh-s4"),
    }
    info = _harness.machine_info(("jax", "jaxlib", "equinox", "optax", "numpy", "torch", "snntorch"))
    out = dict(config=dict(B=B, T=T, F=F, N=N, C=C, repeats=args.repeats), runs=runs, machine=info,
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    os.makedirs(os.path.join(_harness.HERE, "results"), exist_ok=True)
    with open(os.path.join(_harness.HERE, "results", "nn_step.json"), "w") as f:
        json.dump(out, f, indent=1)

    def ms(key):
        r = runs[key]
        return (f"{1e3 * r['step_s']:.1f} / {1e3 * r['cpu_s']:.1f}" if r.get("ok")
                else f"failed ({r.get('error', '?')})")

    def ratio(a, b):
        ra, rb = runs[a], runs[b]
        return f"{ra['cpu_s'] / rb['cpu_s']:.2f}x" if ra.get("ok") and rb.get("ok") else "n/a"

    v = info["versions"]
    lines = [
        "## One training step of a spiking network (`benchmarks/nn_step.py`)", "",
        f"Linear({F} -> {N}) -> spiking layer over T = {T} steps -> spike counts -> Linear({N} -> {C}) -> "
        f"cross-entropy, batch {B}, Adam; value_and_grad + update, median of {args.repeats} steps after "
        "warm-up, each variant in its own process on one pinned core with one thread; the machine is "
        "shared, so ratios use each worker's CPU (process) time, which excludes waiting for the core. "
        f"{info['cpu']}; JAX {v.get('jax')}, torch {v.get('torch')}, snnTorch {v.get('snntorch')}; {out['date']}.", "",
        "| variant | ms / step, wall / CPU | first step (compile), s | relative (CPU time) |",
        "|---|---|---|---|",
        f"| brainfuse_jax `LIFLayer` | {ms('ours_lif')} | {runs['ours_lif'].get('compile_s', float('nan')):.1f} | 1 |",
        f"| snnTorch `Leaky` (CPU torch, eager) | {ms('snntorch')} | {runs['snntorch'].get('compile_s', float('nan')):.2f} | "
        f"{ratio('snntorch', 'ours_lif')} |",
        f"| brainfuse_jax `HHLayer` (exp_euler, dt 0.1 ms), 1 step per frame | {ms('ours_hh_s1')} | "
        f"{runs['ours_hh_s1'].get('compile_s', float('nan')):.1f} | {ratio('ours_hh_s1', 'ours_lif')} |",
        f"| brainfuse_jax `LIFLayer`, 4 substeps per frame | {ms('ours_lif_s4')} | "
        f"{runs['ours_lif_s4'].get('compile_s', float('nan')):.1f} | {ratio('ours_lif_s4', 'ours_lif')} |",
        f"| brainfuse_jax `HHLayer`, 4 substeps per frame (as in docs/learning.md) | {ms('ours_hh_s4')} | "
        f"{runs['ours_hh_s4'].get('compile_s', float('nan')):.1f} | {ratio('ours_hh_s4', 'ours_lif')} |",
        "",
        f"snnTorch / ours (LIF): {ratio('snntorch', 'ours_lif')}. HH / LIF per integration step: "
        f"{ratio('ours_hh_s1', 'ours_lif')} (1 step per frame each), {ratio('ours_hh_s4', 'ours_lif_s4')} "
        "(4 substeps each); the HH network of the learning study (4 substeps) against the LIF network "
        f"(1 step per frame): {ratio('ours_hh_s4', 'ours_lif')}.",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_doc:
        _harness.write_doc("nn-step", section)


if __name__ == "__main__":
    main()
