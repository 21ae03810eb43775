"""The `brainfuse` command line.

```
brainfuse quickstart [--out DIR] [--neurons N] [--duration MS] [--dt MS] [--float64] ...
                     [--no-fit] [--fit-target PATH] [--fit-ms MS] [--fit-steps N] [--fit-starts N]
```

Subcommands are registered in `_COMMANDS` (name -> function adding its subparser); each sets
`func(args) -> int` as its handler. `main(argv)` returns the process exit code, so the
command can also be run in-process (tests, notebooks): `main(["quickstart", "--out", "tmp"])`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .lower._cli import add_export

# ---- quickstart workload -------------------------------------------------------------------
I_MIN, I_MAX = 0.0, 20.0  # uA/cm2, range of the constant currents
SAMPLE_CURRENTS = (0.0, 3.0, 6.5, 10.0, 15.0, 20.0)  # uA/cm2, neurons whose voltage is plotted
RATE_AT = 10.0  # uA/cm2, the current whose firing rate is printed (classic HH: ~68 Hz over 1 s)
TRACE_MS = 100.0  # ms of voltage trace shown in panel (a)
BLOCK_STEPS = 100  # steps per inner `simulate` call: bounds the (neurons, steps) spike buffer

# ---- quickstart panel (c): fitting gNa, gK, gL to a NEURON trace ------------------------------
FIT_TARGET_NAME = "hh_noisy_fit_target.npz"  # ../shared/reference/data/, made with NEURON 9.0.2
FIT_TRUTH = {"na.gbar": 100.0, "k.gbar": 40.0, "leak.gbar": 0.35}  # mS/cm2, the target's conductances
FIT_LABELS = {"na.gbar": "gNa", "k.gbar": "gK", "leak.gbar": "gL"}
FIT_DT = 0.025  # ms, the target's sampling interval (and time step of the fit)


# ---- argument types: argparse turns ArgumentTypeError into "argument --opt: ..." + exit 2 ----
def _number(text: str, kind: type, what: str) -> float | int:
    try:
        x = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return x


def _positive_ms(text: str) -> float:
    x = _number(text, float, "a time in ms")
    if x <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 ms, got {text!r}")
    return x


def _neuron_count(text: str) -> int:
    n = _number(text, int, "an integer")
    if n < 2:
        raise argparse.ArgumentTypeError(f"must be an integer >= 2 (the f-I curve needs at least two "
                                         f"currents), got {text!r}")
    return n


def _count_at_least_1(text: str) -> int:
    n = _number(text, int, "an integer")
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


# ---- quickstart ----------------------------------------------------------------------------
def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="simulate 1,000 HH neurons for 1 s and plot their f-I curve; fit HH conductances to a NEURON trace",
        description=(
            "Simulate N independent Hodgkin-Huxley neurons (NEURON's hh, scheme 'neuron') driven by "
            f"constant currents linspace({I_MIN:g}, {I_MAX:g}, N) uA/cm2, count their spikes (upward "
            "0 mV crossings), print a summary and draw sample voltage traces and the f-I curve to "
            "OUT/quickstart.png. Runs in chunks: one jitted function, compiled once, advances all "
            "neurons by --chunk ms per call, carrying the state. Then (panel c) fits gNa, gK and gL of "
            "an HH neuron by gradient descent (brainfuse_jax.fit, float64, several starts at once) to "
            f"NEURON's trace under noisy current ({FIT_TARGET_NAME} from ../shared/reference/data; "
            "without it, to a target made with our own HH at the same conductances) and prints the "
            "recovered conductances."),
    )
    p.add_argument("--out", metavar="DIR", default="brainfuse-out",
                   help="output directory (default: %(default)s)")
    p.add_argument("--neurons", type=_neuron_count, default=1000, metavar="N",
                   help="number of neurons (default: %(default)s)")
    p.add_argument("--duration", type=_positive_ms, default=1000.0, metavar="MS",
                   help="biological time to simulate, ms (default: %(default)s)")
    p.add_argument("--dt", type=_positive_ms, default=0.025, metavar="MS",
                   help="time step, ms (default: %(default)s)")
    p.add_argument("--chunk", type=_positive_ms, default=50.0, metavar="MS",
                   help="biological time per jitted call, ms (default: %(default)s)")
    p.add_argument("--float64", action="store_true",
                   help="simulate in float64 (enables jax_enable_x64) instead of float32")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--no-fit", action="store_true", help="skip the fitting panel (c)")
    p.add_argument("--fit-target", metavar="PATH", default=None,
                   help=f"NEURON target for the fit ({FIT_TARGET_NAME}; default: look in "
                        "../shared/reference/data), or 'synthetic' for a target made with our own HH")
    p.add_argument("--fit-ms", type=_positive_ms, default=200.0, metavar="MS",
                   help="length of the fitted window, ms (default: %(default)s)")
    p.add_argument("--fit-steps", type=_count_at_least_1, default=150, metavar="N",
                   help="optimiser iterations of the fit (default: %(default)s)")
    p.add_argument("--fit-starts", type=_count_at_least_1, default=4, metavar="N",
                   help="starts fitted at once: NEURON's default conductances and N-1 draws within "
                        "+-30%% of them (default: %(default)s)")
    p.set_defaults(func=lambda args: _quickstart(args, p))


def _whole_steps(ms: float, dt: float, option: str, parser: argparse.ArgumentParser) -> int:
    n = round(ms / dt)
    if n < 1:
        parser.error(f"{option} ({ms:g} ms) must be at least one time step (--dt {dt:g} ms)")
    if abs(n * dt - ms) > 1e-6 * max(ms, dt):
        parser.error(f"{option} ({ms:g} ms) must be a whole number of time steps of --dt ({dt:g} ms)")
    return n


def _chunk_runner(model, dt: float, n_steps: int, sample_idx: np.ndarray, half: int):
    """A function `(state, current, start) -> (state, counts, late_counts, v_samples)` advancing
    every neuron by `n_steps` steps from global step `start`.

    `counts` are the spikes per neuron, `late_counts` those on global steps >= `half`, and
    `v_samples` the voltage (mV) of neurons `sample_idx` after every step, shape (S, n_steps).
    The steps run as `simulate` calls of `BLOCK_STEPS` steps inside a `lax.scan`, so the per-step
    spike record never exceeds (neurons, BLOCK_STEPS).
    """
    import jax
    import jax.numpy as jnp

    from .simulate import simulate

    def record(state, spike):
        return {"spike": spike, "v": state["v"][sample_idx]}

    def block(state, current, first, length):
        inputs = jnp.broadcast_to(current[:, None], (current.shape[0], length))
        state, rec = simulate(model, state, inputs, dt, record=record)
        spikes = rec["spike"]  # (B, length), exactly 0.0 / 1.0
        late = (first + jnp.arange(length)) >= half
        return state, spikes.sum(axis=1), jnp.where(late, spikes, 0.0).sum(axis=1), rec["v"]

    def run(state, current, start):
        n_blocks, tail = divmod(n_steps, BLOCK_STEPS)
        zeros = jnp.zeros(current.shape, current.dtype)
        counts, late, vs = zeros, zeros, []
        if n_blocks:
            def body(carry, b):
                state, counts, late = carry
                state, c, lc, v = block(state, current, start + b * BLOCK_STEPS, BLOCK_STEPS)
                return (state, counts + c, late + lc), v

            (state, counts, late), v = jax.lax.scan(body, (state, counts, late), jnp.arange(n_blocks))
            vs.append(jnp.moveaxis(v, 0, 1).reshape(len(sample_idx), -1))  # (S, n_blocks*BLOCK)
        if tail:
            state, c, lc, v = block(state, current, start + n_blocks * BLOCK_STEPS, tail)
            counts, late = counts + c, late + lc
            vs.append(v)
        return state, counts, late, jnp.concatenate(vs, axis=1)

    return jax.jit(run)


def _quickstart(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import jax

    n_steps = _whole_steps(args.duration, args.dt, "--duration", parser)
    chunk_steps = min(max(1, round(args.chunk / args.dt)), n_steps)  # at least one step
    fit_target = None if args.no_fit else _find_fit_target(args, parser)
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"brainfuse quickstart: error: cannot create --out directory {str(out_dir)!r}: {err}",
              file=sys.stderr)
        return 1

    t_start = time.perf_counter()
    x64_before = jax.config.jax_enable_x64
    if args.float64:
        jax.config.update("jax_enable_x64", True)  # before any array is created
    try:
        result = _run_quickstart(args, n_steps, chunk_steps)
    finally:
        jax.config.update("jax_enable_x64", x64_before)

    fit = None if args.no_fit else _run_fit_panel(args, fit_target)
    png = out_dir / "quickstart.png"
    _plot_quickstart(result, png, fit)
    result["t_total"] = time.perf_counter() - t_start  # model, compile, simulate, fit and plot
    _print_summary(result, png, fit)
    return 0


def _run_quickstart(args: argparse.Namespace, n_steps: int, chunk_steps: int) -> dict:
    import jax
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    from .neurons import HH

    dtype = jnp.float64 if args.float64 else jnp.float32
    n, dt = args.neurons, args.dt
    currents_np = np.linspace(I_MIN, I_MAX, n)
    sample_idx = np.unique([int(np.argmin(np.abs(currents_np - c))) for c in SAMPLE_CURRENTS])
    trace_steps = min(n_steps, max(1, round(TRACE_MS / dt)))

    model = HH()  # classic HH 1952, NEURON's hh (rest -65 mV), scheme "neuron", 6.3 degC
    # Jitted: run eagerly, init_state's ~40 small ops compile one by one (~2 s on CPU).
    state = jax.jit(lambda: model.init_state((n,), dtype))()
    current = jnp.asarray(currents_np, dtype)
    half = n_steps // 2  # "late" window: the second half of the run, for sustained firing

    # One compiled function for every full chunk; a shorter last chunk (if --duration is not a
    # multiple of --chunk) needs one more compilation.
    n_full, tail = divmod(n_steps, chunk_steps)
    t0 = time.perf_counter()
    step_full = _chunk_runner(model, dt, chunk_steps, sample_idx, half).lower(state, current, 0).compile()
    step_tail = (_chunk_runner(model, dt, tail, sample_idx, half).lower(state, current, 0).compile()
                 if tail else None)
    t_compile = time.perf_counter() - t0

    counts = np.zeros(n, np.int64)
    late = np.zeros(n, np.int64)
    traces = []
    chunks = [(k * chunk_steps, step_full) for k in range(n_full)]
    if tail:
        chunks.append((n_full * chunk_steps, step_tail))
    t0 = time.perf_counter()
    with tqdm(total=len(chunks), unit="chunk", desc=f"simulating {n_steps * dt:g} ms",
              disable=args.no_progress, leave=False) as bar:
        for start, fn in chunks:
            state, c, lc, v = fn(state, current, start)
            counts += np.asarray(c).astype(np.int64)  # waits for the chunk: honest progress bar
            late += np.asarray(lc).astype(np.int64)
            if start < trace_steps:
                traces.append(np.asarray(v))
            bar.update(1)
    jax.block_until_ready(state)
    t_sim = time.perf_counter() - t0

    return {
        "currents": currents_np, "counts": counts, "late_counts": late, "n_steps": n_steps, "dt": dt,
        "duration_ms": n_steps * dt, "sample_idx": sample_idx,
        "traces": np.concatenate(traces, axis=1)[:, :trace_steps], "dtype": np.dtype(dtype).name,
        "scheme": model.scheme.name, "t_compile": t_compile, "t_sim": t_sim,
    }


def _find_fit_target(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path | None:
    """The NEURON target file for panel (c), or None for a synthetic target (after checking
    --fit-ms against it)."""
    n_steps = _whole_steps(args.fit_ms, FIT_DT, "--fit-ms", parser)
    path = None
    if args.fit_target is not None and args.fit_target != "synthetic":
        path = Path(args.fit_target)
        if not path.is_file():
            parser.error(f"--fit-target: no such file: {str(path)!r}")
    elif args.fit_target is None:
        here = Path(__file__).resolve().parents[2]  # the repository's parent, next to ../shared
        for base in (Path.cwd().parent, here):
            if (base / "shared" / "reference" / "data" / FIT_TARGET_NAME).is_file():
                path = base / "shared" / "reference" / "data" / FIT_TARGET_NAME
                break
    if path is not None:
        try:
            with np.load(path) as d:
                n_file = len(d["V_mV"])
        except (OSError, ValueError, KeyError) as err:
            parser.error(f"--fit-target: {str(path)!r} is not a target file like {FIT_TARGET_NAME}: {err}")
        if n_steps + 1 > n_file:
            parser.error(f"--fit-ms ({args.fit_ms:g} ms) is longer than the target "
                         f"({(n_file - 1) * FIT_DT:g} ms in {str(path)!r})")
    return path


def _ou_current(n: int, seed: int = 20240607, mu: float = 5.0, sigma: float = 5.0, tau: float = 5.0,
                dt: float = FIT_DT) -> np.ndarray:
    """Ornstein-Uhlenbeck current density (uA/cm2), exact discretisation: the recipe of
    hh_noisy_fit_target.npz (so the synthetic target has the same stimulus)."""
    xi = np.random.default_rng(seed).standard_normal(n)
    a = np.exp(-dt / tau)
    x = np.empty(n)
    x[0] = mu
    for k in range(n - 1):
        x[k + 1] = mu + (x[k] - mu) * a + sigma * np.sqrt(1 - a * a) * xi[k]
    return x


def _run_fit_panel(args: argparse.Namespace, target_path: Path | None) -> dict:
    """Fit gNa, gK, gL of `HH()` to the first `--fit-ms` ms of the target, in float64."""
    import json

    import jax

    from .fit import Bounded, fit, predict, sample_starts
    from .neurons import HH

    n = round(args.fit_ms / FIT_DT) + 1  # samples at t = 0, dt, ..., fit_ms
    with jax.enable_x64(True):
        if target_path is not None:
            d = np.load(target_path)
            dt = float(json.loads(str(d["params_json"]))["dt_ms"])
            if abs(dt - FIT_DT) > 1e-12:
                raise SystemExit(f"brainfuse quickstart: error: {target_path} must be sampled every {FIT_DT} ms")
            stim, target = d["I_stim_uA_per_cm2"][:n], d["V_mV"][:n]
            truth = {"na.gbar": float(d["true_gnabar_hh_S_per_cm2"]) * 1e3,
                     "k.gbar": float(d["true_gkbar_hh_S_per_cm2"]) * 1e3,
                     "leak.gbar": float(d["true_gl_hh_S_per_cm2"]) * 1e3}
            source = f"NEURON's trace {target_path}"
        else:
            truth = dict(FIT_TRUTH)
            stim = _ou_current(n)
            target = predict(HH(g_na=truth["na.gbar"], g_k=truth["k.gbar"], g_l=truth["leak.gbar"]),
                             stim, FIT_DT)
            source = (f"a target generated with our own HH (NEURON's {FIT_TARGET_NAME} not found in "
                      "../shared/reference/data)")
        params = {name: Bounded(lo, hi, "log") for name, (lo, hi) in
                  {"na.gbar": (20.0, 400.0), "k.gbar": (5.0, 150.0), "leak.gbar": (0.03, 3.0)}.items()}
        start_model = HH()  # NEURON's default hh: 120, 36, 0.3 mS/cm2
        starts = sample_starts(params, args.fit_starts, jax.random.key(0), around=start_model, spread=0.3)
        for name in params:  # start 0: NEURON's defaults themselves
            starts[name][0] = float(start_model.channels[name.split(".")[0]].gbar)
        result = fit(start_model, params, stim, target, dt=FIT_DT, n_steps=args.fit_steps, starts=starts,
                     progress=not args.no_progress)
        before = predict(start_model, stim, FIT_DT)  # start 0, NEURON's defaults
        after = predict(result.model, stim, FIT_DT)
    return {"source": source, "truth": truth, "result": result, "stim": stim, "target": target,
            "before": before, "after": after, "n_samples": n,
            "start": {name: float(starts[name][result.best_start]) for name in params}}


def _analyse(result: dict) -> dict:
    """Rates (Hz), the interpolated rate at `RATE_AT`, rheobase and maximum rate."""
    currents, duration_s = result["currents"], result["duration_ms"] / 1e3
    rates = result["counts"] / duration_s
    # Repetitive (sustained) firing: >= 2 spikes in the second half of the run. This excludes the
    # transient bursts of classic HH just below its rheobase (~6.2 uA/cm2 with these parameters).
    sustained = result["late_counts"] >= 2
    rheobase = float(currents[np.argmax(sustained)]) if sustained.any() else None
    i_max = int(np.argmax(rates))
    return {"rates": rates, "rate_at": float(np.interp(RATE_AT, currents, rates)),
            "rheobase": rheobase, "max_rate": float(rates[i_max]), "max_rate_at": float(currents[i_max])}


def _print_summary(result: dict, png: Path, fit: dict | None = None) -> None:
    a = _analyse(result)
    neuron_steps = len(result["currents"]) * result["n_steps"]
    rheobase = (f"{a['rheobase']:.2f} uA/cm2 (lowest current still firing in the second half)"
                if a["rheobase"] is not None else f"none up to {I_MAX:g} uA/cm2")
    print(f"brainfuse quickstart: {len(result['currents']):,} HH neurons (scheme {result['scheme']!r}, "
          f"{result['dtype']}), {result['duration_ms']:g} ms at dt = {result['dt']:g} ms "
          f"({result['n_steps']:,} steps), I = {I_MIN:g}..{I_MAX:g} uA/cm2")
    print(f"  rate at {RATE_AT:g} uA/cm2:   {a['rate_at']:.1f} Hz")
    print(f"  rheobase:            {rheobase}")
    print(f"  max rate:            {a['max_rate']:.1f} Hz (first reached at {a['max_rate_at']:.2f} uA/cm2)")
    fit_time = "" if fit is None else f"fit {fit['result'].wall_time:.2f} s, "
    print(f"  wall time:           {result['t_total']:.2f} s (compile {result['t_compile']:.2f} s, "
          f"simulate {result['t_sim']:.2f} s, {fit_time}rest is setup and plotting)")
    print(f"  throughput:          {neuron_steps / result['t_sim']:.3g} neuron-steps/s "
          f"({neuron_steps:.3g} neuron-steps, simulation only)")
    if fit is not None:
        _print_fit(fit)
    print(f"  figure:              {png}")


def _print_fit(fit: dict) -> None:
    r = fit["result"]
    n_starts = len(r.start_losses)
    print(f"  fit (panel c):       gNa, gK, gL of HH() to {fit['source']}, first "
          f"{(fit['n_samples'] - 1) * FIT_DT:g} ms, float64, {n_starts} start{'s' if n_starts > 1 else ''} "
          f"x {r.n_iter} iterations (Adam, MSE on V)")
    pad = " " * 23
    print(f"{pad}{'mS/cm2':<8}{'start':>10}{'fitted':>12}{'true':>10}{'error':>10}")
    for name, label in FIT_LABELS.items():
        got, true = float(r.params[name]), fit["truth"][name]
        print(f"{pad}{label:<8}{fit['start'][name]:>10.4g}{got:>12.6g}{true:>10.4g}{(got / true - 1) * 100:>+9.3f}%")
    print(f"{pad}loss {r.history[0, r.best_start]:.4g} -> {r.loss:.3g} mV^2 (best start #{r.best_start}); "
          f"fit time {r.wall_time:.2f} s (compile {r.compile_time:.2f} s)")


def _plot_quickstart(result: dict, png: Path, fit: dict | None = None) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    a = _analyse(result)
    currents, idx, traces = result["currents"], result["sample_idx"], result["traces"]
    t = np.arange(1, traces.shape[1] + 1) * result["dt"]  # V recorded after each step
    colors = [f"C{k}" for k in range(len(idx))]

    fig = Figure(figsize=(12.5, 6.2 if fit is None else 10.4), layout="constrained")
    FigureCanvasAgg(fig)
    if fit is None:
        top = fig
    else:
        top, bottom = fig.subfigures(2, 1, height_ratios=[6.2, 4.2])
        _plot_fit(bottom, fit)
    left, right = top.subfigures(1, 2, width_ratios=[1.2, 1])
    axs = np.atleast_1d(left.subplots(len(idx), 1, sharex=True, sharey=True))
    for k, (ax, i, c) in enumerate(zip(axs, idx, colors, strict=True)):
        ax.plot(t, traces[k], color=c, lw=0.9)
        ax.axhline(0.0, color="0.85", lw=0.6, zorder=0)
        ax.text(1.01, 0.5, f"{currents[i]:.2f}\nµA/cm²", transform=ax.transAxes, ha="left",
                va="center", fontsize=9, color=c)
        ax.set_ylim(-90, 60)
        ax.set_yticks([-80, -40, 0, 40])
        ax.spines[["top", "right"]].set_visible(False)
    axs[-1].set_xlabel("time (ms)")
    axs[-1].set_xlim(0, t[-1])
    left.supylabel("membrane potential V (mV)")
    left.suptitle(f"(a) voltage traces, first {t[-1]:g} ms (labels: injected current)", fontsize=12)

    ax = right.subplots()
    ax.plot(currents, a["rates"], color="k", lw=1.4, marker="." if len(currents) <= 100 else None,
            label=f"rate = spikes / {result['duration_ms']:g} ms")
    ax.scatter(currents[idx], a["rates"][idx], c=colors, s=45, zorder=3, clip_on=False,
               edgecolors="white", linewidths=0.8)
    ax.plot([], [], "o", color="0.5", label="neurons shown in (a)")
    if a["rheobase"] is not None:
        ax.axvline(a["rheobase"], color="0.5", ls="--", lw=1,
                   label=f"rheobase (sustained firing) {a['rheobase']:.2f} µA/cm²")
    ax.set_xlabel("injected current I (µA/cm²)")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_xlim(I_MIN, I_MAX)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", frameon=False)
    right.suptitle(f"(b) f-I curve, {len(currents):,} neurons", fontsize=12)

    top.suptitle(f"Classic Hodgkin-Huxley neurons (NEURON's hh, 6.3 °C) under constant current: "
                 f"{result['duration_ms']:g} ms at dt = {result['dt']:g} ms ({result['dtype']})",
                 fontsize=13, fontweight="bold")
    fig.savefig(png, dpi=120)


def _plot_fit(sub, fit: dict) -> None:
    """Panel (c): target, before and after traces with the stimulus; (d): loss of every start."""
    r = fit["result"]
    t = np.arange(fit["n_samples"]) * FIT_DT
    left, right = sub.subfigures(1, 2, width_ratios=[2.2, 1])
    ax_v, ax_i = left.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax_v.plot(t, fit["target"], color="k", lw=2.2, alpha=0.35, label="target")
    ax_v.plot(t, fit["before"], color="C3", lw=0.8, ls="--", label="before (NEURON defaults 120/36/0.3)")
    vals = "/".join(f"{float(r.params[n]):.4g}" for n in FIT_LABELS)
    ax_v.plot(t, fit["after"], color="C0", lw=0.9, label=f"after fit ({vals} mS/cm²)")
    ax_v.set_ylabel("V (mV)")
    ax_v.set_ylim(-90, 60)
    ax_v.legend(loc="upper right", frameon=False, fontsize=8, ncol=3)
    ax_i.plot(t, fit["stim"], color="0.4", lw=0.6)
    ax_i.set_ylabel("I (µA/cm²)")
    ax_i.set_xlabel("time (ms)")
    ax_i.set_xlim(0, t[-1])
    for ax in (ax_v, ax_i):
        ax.spines[["top", "right"]].set_visible(False)
    what = "NEURON's" if fit["source"].startswith("NEURON") else "a synthetic (own HH)"
    left.suptitle(f"(c) fitting gNa, gK, gL of HH to {what} trace under noisy current (float64)", fontsize=12)

    ax = right.subplots()
    its = np.arange(1, r.n_iter + 1)
    for s in range(r.history.shape[1]):
        best = s == r.best_start
        ax.semilogy(its, r.history[:, s], color="C0" if best else "0.6", lw=1.4 if best else 0.8,
                    label="best start" if best else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE (mV²)")
    ax.grid(alpha=0.3, which="both")
    ax.spines[["top", "right"]].set_visible(False)
    lines = [f"{FIT_LABELS[n]}: {float(r.params[n]):.6g} (true {fit['truth'][n]:.4g})" for n in FIT_LABELS]
    ax.text(0.97, 0.97, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=8.5,
            family="monospace")
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    right.suptitle(f"(d) loss of {r.history.shape[1]} starts", fontsize=12)


# ---- entry point ---------------------------------------------------------------------------
_COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "quickstart": _add_quickstart,
    "export": add_export,
    # later: "bench", "fit"
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brainfuse_jax")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The `brainfuse` argument parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="brainfuse",
        description="brainfuse_jax: differentiable biophysical and spiking neuron simulation in JAX.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str | os.PathLike] | None = None) -> int:
    """Run the `brainfuse` command line with `argv` (default `sys.argv[1:]`); returns the exit code.

    Bad options raise `SystemExit(2)` with argparse's message naming the option, as on the shell.
    """
    if argv is not None:
        argv = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
