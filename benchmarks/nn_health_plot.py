"""Network health over training: firing rate, dead and saturated fractions per layer, per epoch, as
`nn.train` logs them (`history[i]["health"]`), for a small two-layer LIF network on the 8x8 digits
(one image row per frame, T = 8). Two runs: the default initialisation, and the same network with
its input weights and biases scaled down (x0.05) so that it starts silent, and scaled
up (x20) so that its first layer starts saturated: `train` warns
(`SNNHealthWarning`, naming the layer) and the plot shows whether training revives the layers.

    python benchmarks/nn_health_plot.py              # ~1-2 min on 2 shared cores
    python benchmarks/nn_health_plot.py --epochs 4   # quicker

Writes docs/img/learning_health.png and prints the numbers (used in docs/_draft_health.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from brainfuse_jax import nn  # noqa: E402
from brainfuse_jax.nn._metrics import SNNHealthWarning, snn_metrics  # noqa: E402

IMG = os.path.join(ROOT, "docs", "img", "learning_health.png")
LAYERS = ("0.LIFLayer", "1.LIFLayer")
LR = 1e-2
WEAK, STRONG = 0.05, 20.0  # input weight scales of the unhealthy runs


def build(key, input_gain: float) -> nn.Sequential:
    k1, k2, k3 = jax.random.split(key, 3)
    first = nn.LIFLayer(8, 64, key=k1)
    first = eqx.tree_at(lambda l: (l.linear.weight, l.linear.bias), first,
                        (first.linear.weight * input_gain, first.linear.bias * input_gain))
    return nn.Sequential([first, nn.LIFLayer(64, 32, key=k2), nn.SpikeCountReadout(32, 10, key=k3)])


def run(name: str, input_gain: float, epochs: int, data, seed: int = 0):
    key = jax.random.PRNGKey(seed)
    model = build(key, input_gain)

    def loss(m, x, y):
        return nn.cross_entropy(m(x), y)

    def acc(m, x, y):
        return {"acc": nn.accuracy(m(x), y)}

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SNNHealthWarning)
        _, hist = nn.train(model, loss, (data.x_train, data.y_train), optimizer=optax.adam(LR), epochs=epochs,
                           batch_size=64, key=key, eval_fn=acc, eval_data=(data.x_test, data.y_test), progress=False,
                           health_data=data.x_test[:256])
    msgs = [str(w.message) for w in caught if issubclass(w.category, SNNHealthWarning)]
    print(f"== {name} (first layer's weights and bias x{input_gain}): {time.perf_counter() - t0:.1f} s, "
          f"test accuracy {100 * hist[-1]['eval_acc']:.1f}%")
    for m in msgs:
        print("   warning:", m)
    for h in hist:
        print(f"   epoch {h['epoch']:2d} acc {100 * h['eval_acc']:5.1f}%  " + "  ".join(
            f"{lay}: rate {h['health'][lay]['rate']:.3f} dead {h['health'][lay]['dead']:.2f} "
            f"sat {h['health'][lay]['saturated']:.2f} |g| {h['health'][lay]['grad_norm']:.3g}" for lay in LAYERS))
    return hist, msgs


def plot(runs: dict, path: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = (("rate", "firing rate (spikes / neuron / frame)"), ("dead", "dead fraction"),
            ("saturated", "saturated fraction"))
    fig, axes = plt.subplots(len(runs), len(cols), figsize=(12, 3.2 * len(runs)), squeeze=False)
    for r, (title, (hist, msgs)) in enumerate(runs.items()):
        ep = [0] + [h["epoch"] for h in hist]
        for c, (key, label) in enumerate(cols):
            ax = axes[r, c]
            for i, lay in enumerate(LAYERS):
                ys = [hist[0]["health0"][lay][key]] + [h["health"][lay][key] for h in hist]
                ax.plot(ep, ys, "o-", ms=3, color=f"C{i}", label=lay)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            if key != "rate":
                ax.set_ylim(-0.03, 1.03)
                ax.axhline(0.9, color="0.6", ls=":", lw=1)
            ax.grid(alpha=0.3)
        axes[r, 0].legend(fontsize=8)
        axes[r, 0].set_title(f"{title}: test accuracy {100 * hist[-1]['eval_acc']:.1f}%"
                             + (f", {len(msgs)} warning(s)" if msgs else ""), loc="left", fontsize=10)
    fig.suptitle("LIF 8-64-32-10 on 8x8 digits (row per frame): health per layer over training "
                 "(epoch 0: initialisation; dotted: warning threshold 0.9)", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    print("wrote", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default=IMG)
    args = ap.parse_args()
    data = nn.load_digits("row")
    runs = {}
    for name, gain in (("default initialisation", 1.0), (f"weak input (x{WEAK})", WEAK),
                       (f"strong input (x{STRONG})", STRONG)):
        hist, msgs = run(name, gain, args.epochs, data)
        # the state before training, on the same monitored batch, for epoch 0 of the plot
        m0 = eqx.filter_jit(snn_metrics)(build(jax.random.PRNGKey(0), gain), jnp.asarray(data.x_test[:256]))
        hist[0]["health0"] = {k: {kk: float(v) for kk, v in d.items()} for k, d in m0.items()}
        runs[name] = (hist, msgs)
    plot(runs, args.out)


if __name__ == "__main__":
    main()
