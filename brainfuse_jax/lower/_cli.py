"""`brainfuse export MODEL_FILE --to stablehlo|c --out DIR`: the lowering pass from the shell.

`MODEL_FILE` is a Python file that defines `model` (any neuron or network) and optionally
`state0` (default `model.init_state(1)`), `inputs` (one step's input, default zeros), `dt` (ms;
default the model's own, e.g. a network's) and `n_steps` (with `--what unroll`: the unroll's
length, default 1,000).
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model's step or unroll as StableHLO or as dependency-free C99",
        description=(
            "Load MODEL_FILE (a Python file defining `model`, optionally `state0`, `inputs`, `dt`, "
            "`n_steps`), export its step (or a whole unroll) with jax.export and write to DIR either "
            "the StableHLO artefacts (model.stablehlo serialised, model.mlir text, model.json names, "
            "shapes, values) or C99 (model.c, model.h, Makefile, README.md) that compiles with "
            "gcc -std=c99 -Wall -Wextra -Werror and needs only libm."),
    )
    p.add_argument("model_file", metavar="MODEL_FILE", help="Python file defining `model`")
    p.add_argument("--to", choices=("stablehlo", "c"), required=True, help="what to write")
    p.add_argument("--out", metavar="DIR", required=True, help="output directory (created)")
    p.add_argument("--what", choices=("step", "unroll"), default="step",
                   help="one step (default) or a whole unroll of n_steps")
    p.add_argument("--prefix", default="bf", help="prefix of the C symbols (default: %(default)s)")
    p.set_defaults(func=lambda args: _export(args, p))


def _load(path: str, parser: argparse.ArgumentParser) -> dict:
    file = Path(path)
    if not file.is_file():
        parser.error(f"MODEL_FILE {path!r} is not a file")
    scope = runpy.run_path(str(file))
    if "model" not in scope:
        parser.error(f"MODEL_FILE {path!r} must define `model` (a neuron or network)")
    return scope


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ._export import to_stablehlo

    scope = _load(args.model_file, parser)
    model = scope["model"]
    state0 = scope.get("state0") or model.init_state(1)
    n_steps = scope.get("n_steps", 1000) if args.what == "unroll" else None
    lowered = to_stablehlo(model, state0, scope.get("inputs"), scope.get("dt"), what=args.what, n_steps=n_steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.to == "stablehlo":
        written = lowered.write(out)
    else:
        from ._emit_c import emit_c

        program = emit_c(lowered, prefix=args.prefix)
        program.write(out)
        written = [out / name for name in (f"{args.prefix}.c", f"{args.prefix}.h", "Makefile", "README.md")]
    for path in written:
        print(path)
    return 0
