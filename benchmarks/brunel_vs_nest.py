"""Brunel (2000) model A: our network against NEST 3.10's runs in ../shared/reference/data.

    python benchmarks/brunel_vs_nest.py      # ~15 s; writes docs/img/brunel_vs_nest.png, prints the table

For each of the three reference parameter sets: mean E and I rates, mean CV(ISI) and the Fano
factor of the 1-ms population count after 200 ms, ours (seed 0) beside NEST's; the figure shows
the first 50 neurons' spikes and the population rate of both for J = 0.25 mV, and the CV
histograms of all three.
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import brainfuse_jax as bf  # noqa: E402
from brainfuse_jax.network import cv_isi, population_rate, population_summary  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "reference" / "data"
FILES = ["brunel_nest.npz", "brunel_nest_J0.25.npz", "brunel_nest_g6_eta4.npz"]


def run(p, seed=0):
    net = bf.network.brunel(p["J_mV"], p["g"], p["eta"], seed=seed)
    final, _ = bf.simulate(net, net.init_state(1), jnp.zeros((1, net.n)), p["dt_ms"],
                           n_steps=int(round(p["simtime_ms"] / p["dt_ms"])), record=None)
    return net, *net.spikes(final)


def main():
    if not REF.exists():
        sys.exit(f"the NEST reference data ({REF}) is not here")
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    print("| J (mV), g, eta | rate E (Hz) ours / NEST | rate I (Hz) ours / NEST | CV ours / NEST | Fano ours / NEST |")
    print("|---|---|---|---|---|")
    for col, name in enumerate(FILES):
        ref = np.load(REF / name)
        p, want = json.loads(str(ref["params_json"])), json.loads(str(ref["summary_json"]))
        net, steps, ids = run(p)
        got = population_summary(steps, ids, {**net.ranges, "all": (0, net.n)}, p["dt_ms"], p["simtime_ms"])
        print(f"| {p['J_mV']}, {p['g']}, {p['eta']} | {got['E']['rate_all_Hz']:.2f} / {want['rate_E_Hz']:.2f} | "
              f"{got['I']['rate_all_Hz']:.2f} / {want['rate_I_Hz']:.2f} | {got['all']['cv_mean']:.3f} / "
              f"{want['cv_isi_mean']:.3f} | {got['all']['pop_rate_fano']:.1f} / {want['pop_rate_fano_after200']:.1f} |")
        cv = cv_isi(steps, ids, net.n, p["dt_ms"], t_start=200.0)
        ax = axes[1, col]
        bins = ref["cv_isi_hist_edges"]
        ax.hist(cv[np.isfinite(cv)], bins=bins, histtype="step", lw=1.5, label="brainfuse_jax")
        ax.stairs(ref["cv_isi_hist"], bins, lw=1.5, label="NEST 3.10")
        ax.set(xlabel="CV(ISI)", ylabel="neurons", title=f"J = {p['J_mV']} mV, g = {p['g']}, eta = {p['eta']}")
        ax.legend(frameon=False)
        if name == "brunel_nest_J0.25.npz":
            t_ref, i_ref = ref["first50_times_ms"], ref["first50_senders"]
            keep = (ids < 50) & ((steps + 1) * p["dt_ms"] <= 300)
            axes[0, 0].plot((steps[keep] + 1) * p["dt_ms"], ids[keep], "|", ms=3, color="C0")
            axes[0, 0].set(title="brainfuse_jax: first 50 neurons", xlabel="time (ms)", ylabel="neuron", xlim=(0, 300))
            axes[0, 1].plot(t_ref[t_ref <= 300], i_ref[t_ref <= 300], "|", ms=3, color="C1")
            axes[0, 1].set(title="NEST 3.10: first 50 neurons", xlabel="time (ms)", xlim=(0, 300))
            rate = population_rate(steps, ids, net.n, p["dt_ms"], 1.0, p["simtime_ms"])
            t = np.arange(len(rate)) + 0.5
            axes[0, 2].plot(t, rate, lw=0.8, label="brainfuse_jax")
            axes[0, 2].plot(t, ref["pop_rate_1ms_Hz"], lw=0.8, label="NEST 3.10")
            axes[0, 2].set(xlim=(200, 300), xlabel="time (ms)", ylabel="population rate (Hz, 1 ms bins)",
                           title="population rate, J = 0.25 mV")
            axes[0, 2].legend(frameon=False)
    out = ROOT / "docs" / "img" / "brunel_vs_nest.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
