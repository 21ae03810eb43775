"""The `brainfuse` command line.

```
brainfuse quickstart [--out DIR] [--neurons N] [--duration MS] [--dt MS] [--float64] ...
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

# ---- quickstart workload -------------------------------------------------------------------
I_MIN, I_MAX = 0.0, 20.0  # uA/cm2, range of the constant currents
SAMPLE_CURRENTS = (0.0, 3.0, 6.5, 10.0, 15.0, 20.0)  # uA/cm2, neurons whose voltage is plotted
RATE_AT = 10.0  # uA/cm2, the current whose firing rate is printed (classic HH: ~68 Hz over 1 s)
TRACE_MS = 100.0  # ms of voltage trace shown in panel (a)
BLOCK_STEPS = 100  # steps per inner `simulate` call: bounds the (neurons, steps) spike buffer


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


# ---- quickstart ----------------------------------------------------------------------------
def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="simulate 1,000 HH neurons for 1 s and plot their f-I curve",
        description=(
            "Simulate N independent Hodgkin-Huxley neurons (NEURON's hh, scheme 'neuron') driven by "
            f"constant currents linspace({I_MIN:g}, {I_MAX:g}, N) uA/cm2, count their spikes (upward "
            "0 mV crossings), print a summary and draw sample voltage traces and the f-I curve to "
            "OUT/quickstart.png. Runs in chunks: one jitted function, compiled once, advances all "
            "neurons by --chunk ms per call, carrying the state."),
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

    png = out_dir / "quickstart.png"
    _plot_quickstart(result, png)
    result["t_total"] = time.perf_counter() - t_start  # model, compile, simulate and plot
    _print_summary(result, png)
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
        "scheme": model.scheme, "t_compile": t_compile, "t_sim": t_sim,
    }


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


def _print_summary(result: dict, png: Path) -> None:
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
    print(f"  wall time:           {result['t_total']:.2f} s (compile {result['t_compile']:.2f} s, "
          f"simulate {result['t_sim']:.2f} s, rest is setup and plotting)")
    print(f"  throughput:          {neuron_steps / result['t_sim']:.3g} neuron-steps/s "
          f"({neuron_steps:.3g} neuron-steps, simulation only)")
    print(f"  figure:              {png}")


def _plot_quickstart(result: dict, png: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    a = _analyse(result)
    currents, idx, traces = result["currents"], result["sample_idx"], result["traces"]
    t = np.arange(1, traces.shape[1] + 1) * result["dt"]  # V recorded after each step
    colors = [f"C{k}" for k in range(len(idx))]

    fig = Figure(figsize=(12.5, 6.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subfigures(1, 2, width_ratios=[1.2, 1])
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

    fig.suptitle(f"Classic Hodgkin-Huxley neurons (NEURON's hh, 6.3 °C) under constant current: "
                 f"{result['duration_ms']:g} ms at dt = {result['dt']:g} ms ({result['dtype']})",
                 fontsize=13, fontweight="bold")
    fig.savefig(png, dpi=120)


# ---- entry point ---------------------------------------------------------------------------
_COMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "quickstart": _add_quickstart,
    # later: "bench", "fit", "export"
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
