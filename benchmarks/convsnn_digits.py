"""Acceptance of issue 15: a convolutional spiking network (`nn.ConvSNN`) on scikit-learn's 8x8
digits, images `(B, 1, 8, 8)` encoded into T = 8 frames of spikes, rate coding (Bernoulli
spikes with probability = pixel intensity, seeded) and latency coding (time to first spike,
linear in intensity), 3 seeds each.

    python benchmarks/convsnn_digits.py              # both encodings, 3 seeds; writes docs/benchmarks.md
    python benchmarks/convsnn_digits.py --quick      # 1 seed, few epochs (smoke run, writes nothing)
    python benchmarks/convsnn_digits.py --validate   # score on 20% of the training split (pilots)

Writes the `convsnn_digits` section of docs/benchmarks.md and benchmarks/results/convsnn_digits.json.
Runs on one pinned core, one XLA thread (benchmarks/_harness.py): the wall times are an upper
bound for 2 cores. Training wall time includes compilation; evaluation is excluded.
"""

from __future__ import annotations

import _harness  # noqa: F401  (pins one core and one thread before numpy / JAX load)

import argparse
import json
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, _harness.ROOT)
from brainfuse_jax import nn  # noqa: E402

RESULTS = os.path.join(_harness.HERE, "results", "convsnn_digits.json")
T = 8
# Set-up (chosen on a validation split of the training data, see --validate; never the test set)
CONFIG = dict(channels=(32, 64), kernel_size=3, pool=2, pool_kind="avg", hidden=None, readout="leaky", beta=0.9,
              input_gain=3.0, epochs=20, batch=64, lr=3e-3, copies=4)


# ---- encoders: brainfuse_jax.nn.encode ------------------------------------------------------------
def rate_encode(images: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Bernoulli spikes, P(spike in a frame) = intensity in [0, 1]: `(N, ...) -> (N, steps, ...)`."""
    return np.asarray(nn.encode.rate(jnp.asarray(images, jnp.float32), steps, key=jax.random.PRNGKey(seed)))


def latency_encode(images: np.ndarray, steps: int) -> np.ndarray:
    """One spike per pixel at frame `round((1 - x) * (steps - 1))` (linear time to first spike:
    brighter fires earlier); pixels of intensity 0 never fire."""
    return np.asarray(nn.encode.latency(jnp.asarray(images, jnp.float32), steps))


def encode(images, encoding: str, seed: int, copies: int = 1) -> np.ndarray:
    """`copies` independent encodings stacked along the sample axis (rate); latency is deterministic."""
    if encoding == "latency":
        return np.concatenate([latency_encode(images, T)] * copies)
    return np.concatenate([rate_encode(images, T, seed * 1000 + c) for c in range(copies)])


# ---- one run -------------------------------------------------------------------------------------
def run(encoding: str, seed: int, cfg: dict, validate: bool, progress: bool = False) -> dict:
    data = nn.load_digits("row", seed=seed)  # (N, 8, 8) in [0, 1]
    x_tr, y_tr = data.x_train[:, None], data.y_train  # (N, 1, 8, 8)
    x_te, y_te = data.x_test[:, None], data.y_test
    if validate:  # a fixed 20% of the training split stands in for the test set
        perm = np.random.default_rng(100 + seed).permutation(len(y_tr))
        n_val = len(y_tr) // 5
        x_te, y_te = x_tr[perm[:n_val]], y_tr[perm[:n_val]]
        x_tr, y_tr = x_tr[perm[n_val:]], y_tr[perm[n_val:]]
    copies = cfg["copies"] if encoding == "rate" else 1
    xs_tr = encode(x_tr, encoding, seed, copies)
    ys_tr = np.concatenate([y_tr] * copies)
    xs_te = encode(x_te, encoding, seed + 500)
    key = jax.random.PRNGKey(seed)
    k_model, k_train = jax.random.split(key)
    model = nn.ConvSNN((1, 8, 8), 10, key=k_model, channels=cfg["channels"], kernel_size=cfg["kernel_size"],
                    pool=cfg["pool"], pool_kind=cfg["pool_kind"], hidden=cfg["hidden"], readout=cfg["readout"], beta=cfg["beta"],
                    input_gain=cfg["input_gain"])
    steps = cfg["epochs"] * (len(ys_tr) // cfg["batch"])
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(cfg["lr"], steps)))

    def loss_fn(m, x, y):
        return nn.cross_entropy(m(x), y)

    def eval_fn(m, x, y):
        return {"acc": nn.accuracy(m(x), y)}

    t0 = time.perf_counter()
    model, history = nn.train(model, loss_fn, (xs_tr, ys_tr), optimizer=opt, epochs=cfg["epochs"],
                              batch_size=cfg["batch"], key=k_train, progress=progress)
    train_s = time.perf_counter() - t0
    acc = nn.evaluate(model, eval_fn, (xs_te, y_te))["acc"]
    _, details = eqx.filter_jit(lambda m, x: m(x, return_details=True))(model, jnp.asarray(xs_te[:256]))
    probes = {k: {p: float(v[p]) for p in ("rate", "dead", "saturated")} for k, v in details.items()}
    n_params = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(model) if hasattr(a, "shape"))
    print(f"{encoding} seed {seed}: {'val' if validate else 'test'} acc {100 * acc:.2f}%  train {train_s:.1f} s  "
          f"final loss {history[-1]['loss']:.4f}  probes {probes}", flush=True)
    return dict(encoding=encoding, seed=seed, acc=acc, train_s=train_s, final_loss=history[-1]["loss"],
                epochs=cfg["epochs"], n_train=len(ys_tr), n_test=len(y_te), params=n_params, probes=probes)


def table(results: list[dict], machine: dict, cfg: dict, total_s: float, date: str) -> str:
    lines = [
        f"Run: `python benchmarks/convsnn_digits.py` on {machine['cpu']} (one pinned core, one XLA thread; "
        f"{machine['logical_cpus']} logical cores on the machine, shared), JAX {machine['versions'].get('jax')}, "
        f"{date}; wall time of the whole script (data, training, evaluation) {total_s / 60:.1f} min.",
        "",
        f"Model: `nn.ConvSNN((1, 8, 8), 10, channels={tuple(cfg['channels'])}, kernel_size={cfg['kernel_size']}, "
        f"pool={cfg['pool']}, pool_kind=\"{cfg['pool_kind']}\", readout=\"{cfg['readout']}\", beta={cfg['beta']}, input_gain={cfg['input_gain']})`: "
        f"ConvLIF 3x3 (SAME) -> {cfg['pool_kind']} pool 2 -> ConvLIF 3x3 -> {cfg['pool_kind']} pool 2 -> Flatten -> LeakyReadout (mean "
        f"membrane). T = {T} frames. Adam (clip 1, cosine decay from {cfg['lr']}), batch {cfg['batch']}, "
        f"{cfg['epochs']} epochs; rate coding trains on {cfg['copies']} independently drawn encodings of each "
        "training image (a fresh Bernoulli draw is an augmentation), latency coding on one (it is "
        "deterministic). Test set: 20% of the 1,797 digits (the split is seeded by the seed), one seeded "
        "encoding. Accuracy of the final epoch (no early stopping, no selection on the test set). Training "
        "wall time per seed includes compilation. Dead: fraction of a layer's neurons that never spike on the "
        "first 256 test images (`return_details=True`).",
        "",
        "| encoding | seed | test accuracy (%) | training wall time (s) | final loss | dead (conv1 / conv2) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        dead = " / ".join(f"{v['dead']:.2f}" for v in r["probes"].values())
        lines.append(f"| {r['encoding']} | {r['seed']} | {100 * r['acc']:.2f} | {r['train_s']:.0f} | "
                     f"{r['final_loss']:.4f} | {dead} |")
    lines += ["", "| encoding | test accuracy (%), mean ± std over seeds | training wall time per seed (s), mean | "
                  "params |", "|---|---|---|---|"]
    for enc in ("rate", "latency"):
        rs = [r for r in results if r["encoding"] == enc]
        if rs:
            a = np.array([100 * r["acc"] for r in rs])
            lines.append(f"| {enc} | {a.mean():.2f} ± {a.std():.2f} | {np.mean([r['train_s'] for r in rs]):.0f} | "
                         f"{rs[0]['params']} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 seed, 5 epochs, rate only; writes nothing")
    ap.add_argument("--validate", action="store_true", help="score on a validation split; writes nothing")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--encodings", nargs="+", default=["rate", "latency"], choices=["rate", "latency"])
    ap.add_argument("--json", default=RESULTS, help="where to write the results (default %(default)s)")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--from-json", action="store_true", help="rewrite the doc section from --json, no training")
    ap.add_argument("--set", nargs="*", default=[], help="override CONFIG entries, e.g. epochs=20 lr=1e-2")
    args = ap.parse_args()
    cfg = dict(CONFIG)
    for item in args.set:
        k, v = item.split("=", 1)
        cfg[k] = eval(v, {})  # noqa: S307 (pilot overrides from the command line)
    if args.quick:
        cfg["epochs"], args.seeds, args.encodings = 5, args.seeds[:1], ["rate"]
    if args.from_json:
        with open(args.json) as f:
            rec = json.load(f)
        _harness.write_doc("convsnn_digits", "## ConvSNN on the 8x8 digits (issue 15)\n\n"
                           + table(rec["results"], rec["machine"], rec["config"], rec["total_s"], rec["date"]))
        return
    t0 = time.perf_counter()
    results = [run(enc, s, cfg, args.validate) for enc in args.encodings for s in args.seeds]
    total = time.perf_counter() - t0
    if args.quick or args.validate or args.set:
        return
    machine = _harness.machine_info(("jax", "jaxlib", "equinox", "numpy"))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(config={k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}, T=T,
                       machine=machine, total_s=total, date=date, results=results), f, indent=1)
    if not args.no_doc:
        _harness.write_doc("convsnn_digits", "## ConvSNN on the 8x8 digits (issue 15)\n\n"
                           + table(results, machine, cfg, total, date))
    print(f"wrote {args.json}" + ("" if args.no_doc else f" and {_harness.DOC}"))


if __name__ == "__main__":
    main()
