"""C99 from an exported step: `emit_c(exported_or_lowered) -> CProgram`.

The StableHLO module of a flat step `f(*params, *state, x) -> (*new_state, out)` (what
`jax.export` gives for `to_stablehlo(..., what="step")`) becomes dependency-free C99 (libm only):

```c
typedef struct { float beta; float weight[400]; } bf_params;   /* names: '.' -> '_' */
typedef struct { float v[40]; int32_t refractory[40]; } bf_state;
void bf_params_init(bf_params* p);      /* the model's values */
void bf_state_init(bf_state* s);        /* the initial state (zeros if not given) */
void bf_step(const bf_params* p, bf_state* s, const float* x, float* out);
void bf_unroll(const bf_params* p, bf_state* s, const float* x, float* out, int n_steps);
```
`x` of `bf_unroll` is `(B, n_steps, ...)` and `out` `(B, n_steps, ...)`, batch first as in
`simulate`; what depends on the parameters only (rate tables, decay factors) is computed once per
`bf_unroll` call (at every `bf_step` call). Intermediate arrays live in static storage: the
functions are not reentrant. A `main` (compiled with `-DBF_MAIN`) reads the input series from a binary file, runs
the unroll and writes the outputs and then the final state (fields in order) to a binary file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from brainfuse_kernels import _c_ops
from jaxlib.mlir import ir

from ._c_stablehlo import SUPPORTED, ModuleC, dtype_of

FLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")


@dataclasses.dataclass(frozen=True)
class CField:
    """One field of the params or state struct: model name, C name, shape, dtype."""

    name: str
    cname: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ctype(self) -> str:
        return _c_ops.CTYPES[self.dtype]


@dataclasses.dataclass(frozen=True)
class CProgram:
    """Generated C: `source` (`{prefix}.c`), `header` (`{prefix}.h`), a `makefile` and a `readme`;
    `params`, `state`: the struct fields; `x_shape`, `out_shape`: one step's input and output
    (batch first); `batch`: the batch size B the unroll's series are laid out with."""

    prefix: str
    source: str
    header: str
    makefile: str
    readme: str
    params: tuple[CField, ...]
    state: tuple[CField, ...]
    x_shape: tuple[int, ...]
    x_dtype: np.dtype
    out_shape: tuple[int, ...]
    out_dtype: np.dtype
    batch: int

    def write(self, directory) -> Path:
        """Write `{prefix}.c`, `{prefix}.h`, `Makefile` and `README.md` into `directory`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name, text in ((f"{self.prefix}.c", self.source), (f"{self.prefix}.h", self.header),
                           ("Makefile", self.makefile), ("README.md", self.readme)):
            (d / name).write_text(text)
        return d

    def compile(self, directory, *, cc: str | None = None, flags: Sequence[str] = FLAGS, main: bool = True) -> Path:
        """Write the files and compile them with `cc` (default `$CC` or gcc): with `main`, the test
        executable `{prefix}_main` (`-DBF_MAIN`), else the object file `{prefix}.o`. Raises
        `RuntimeError` with the compiler's messages if it fails."""
        d = self.write(directory)
        cc = cc or os.environ.get("CC", "gcc")
        out = d / (f"{self.prefix}_main" if main else f"{self.prefix}.o")
        cmd = [cc, *flags, *(["-DBF_MAIN"] if main else ["-c"]), "-o", str(out), str(d / f"{self.prefix}.c"),
               *(["-lm"] if main else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"emit_c: {' '.join(cmd)} failed:\n{proc.stderr[-4000:]}")
        return out

    def run(self, x, directory=None, *, executable=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the compiled test `main` on the input series `x` `(B, T, ...)`.

        **Returns:** `(out, final_state)`: outputs `(B, T, ...)` and the final state by name."""
        x = np.asarray(x, self.x_dtype)
        step_x = self.x_shape[1:] if self.batch_axis else self.x_shape
        if x.shape[:1] != (self.batch,) or x.shape[2:] != tuple(step_x) or x.ndim < 2:
            raise ValueError(f"x must have shape (B={self.batch}, T, *{tuple(step_x)}), got {x.shape}")
        n_steps = x.shape[1]
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(directory or tmp)
            exe = Path(executable) if executable else self.compile(directory)
            fin, fout = directory / "x.bin", directory / "out.bin"
            np.ascontiguousarray(x).tofile(fin)
            subprocess.run([str(exe), str(fin), str(fout), str(n_steps)], check=True, capture_output=True)
            raw = fout.read_bytes()
        step_out = self.out_shape[1:] if self.batch_axis else self.out_shape
        n_out = self.batch * n_steps * int(np.prod(step_out, dtype=np.int64))
        out = np.frombuffer(raw, self.out_dtype, n_out).reshape(self.batch, n_steps, *step_out)
        pos = n_out * self.out_dtype.itemsize
        state = {}
        for f in self.state:
            state[f.name] = np.frombuffer(raw, f.dtype, f.size, pos).reshape(f.shape)
            pos += f.size * f.dtype.itemsize
        return out, state

    @property
    def batch_axis(self) -> bool:
        return bool(self.x_shape) and bool(self.out_shape) and self.x_shape[0] == self.out_shape[0] == self.batch \
            and self.batch > 0


def _module_text(obj) -> tuple[str, list | None, list | None, object]:
    """(MLIR text, param specs, state specs, values) of an Exported, a Lowered or MLIR text."""
    if isinstance(obj, str):
        return obj, None, None, None
    exported = getattr(obj, "exported", obj)
    if not hasattr(exported, "mlir_module"):
        raise TypeError(f"exported_or_lowered must be a jax.export.Exported, a Lowered (with .exported) or MLIR "
                        f"text, got {type(obj).__name__}")
    return exported.mlir_module(), getattr(obj, "params", None), getattr(obj, "state", None), obj


_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "bool true false class new delete this template typename namespace operator private public protected".split())


def _cnames(names: Sequence[str], what: str) -> list[str]:
    """C field names: non-identifier characters ('.', '/', ...) -> '_', unique, no C/C++ keyword."""
    out, seen = [], set()
    for n in names:
        c = re.sub(r"[^0-9A-Za-z_]", "_", str(n)) or what
        if c[0].isdigit() or c in _C_KEYWORDS:
            c = "_" + c
        base, k = c, 1
        while c in seen:
            c, k = f"{base}_{k}", k + 1
        seen.add(c)
        out.append(c)
    return out


def emit_c(exported_or_lowered, *, prefix: str = "bf", param_names: Sequence[str] | None = None,
           state_names: Sequence[str] | None = None, param_values: Sequence | None = None,
           state_values: Sequence | None = None) -> CProgram:
    """C99 of an exported step (module docstring).

    **Arguments:**
    - `exported_or_lowered`: a `jax.export.Exported` of a flat step
      `f(*param_leaves, *state_leaves, x) -> (*new_state_leaves, out)`, its MLIR text, or a
      `Lowered` of `brainfuse_jax.lower.to_stablehlo` or `export_module` (its `.params` and
      `.state` name the fields).
    - `prefix`: the C identifier prefix (`bf`: `bf_params`, `bf_step`, ...).
    - `param_names`, `state_names`: names of the parameters / state leaves (default: from the
      `Lowered`, else `p0, p1, ...` / `s0, s1, ...`); '.' and other non-identifier characters
      become '_'.
    - `param_values`, `state_values`: arrays for `bf_params_init` / `bf_state_init` (default:
      `Lowered.param_values` / `.state_values` if present, else zeros).

    An exported unroll (`what="unroll"`, same flat form with `x` `(B, T, ...)`) is translated
    too: one `bf_step` then runs the whole unroll. So is a stateless module's call
    (`export_module`, `f(*params, x) -> (out,)`, e.g. an `nn` classifier's logits): the state
    struct has no field, one `bf_step` is one call, and `bf_unroll` (`CProgram.run(xs)`, `xs`
    `(B, n_calls, *x.shape[1:])`) makes `n_calls` independent calls. Its `while` copies the carried arrays (the
    `(B, T, ...)` outputs among them) at every iteration: prefer the step, which `bf_unroll`
    loops in C.

    Every op of the module is translated or refused: an op outside the supported set
    (`brainfuse_jax.lower.SUPPORTED_OPS`) raises `ValueError` naming it and its MLIR location.
    """
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise ValueError(f"prefix must be a C identifier, got {prefix!r}")
    text, pspecs, sspecs, obj = _module_text(exported_or_lowered)
    if param_names is None and pspecs is not None:
        param_names = [spec[0] for spec in pspecs]
    if state_names is None and sspecs is not None:
        state_names = [spec[0] for spec in sspecs]
    if param_values is None:
        param_values = getattr(obj, "param_values", None)
    if state_values is None:
        state_values = getattr(obj, "state_values", None)
    from jax.interpreters import mlir as jax_mlir

    with jax_mlir.make_ir_context() as ctx:
        module = ir.Module.parse(text, ctx)
        mod = ModuleC(module, prefix)
        main = mod.funcs.get("main")
        if main is None:
            raise ValueError("emit_c: the module has no main function")
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        module_ins = [dtype_of(t) for t in ftype.inputs]
        outs = [dtype_of(t) for t in ftype.results]
        exported = getattr(obj, "exported", obj)
        if hasattr(exported, "module_kept_var_idx"):  # jax.export drops unused inputs from the module
            kept = sorted(exported.module_kept_var_idx)
            ins = [(tuple(a.shape), np.dtype(a.dtype)) for a in exported.in_avals]
        else:
            kept, ins = list(range(len(module_ins))), module_ins
        if [ins[j] for j in kept] != module_ins:
            raise ValueError("emit_c: the module's inputs do not match the exported function's")
        for what in ("inputs", "outputs"):  # a Lowered says how many there are: one of each is translated
            specs = getattr(obj, what, None)
            if specs is not None and len(specs) != 1:
                raise ValueError(f"emit_c translates a step with one input and one output array; this one has "
                                 f"{len(specs)} {what} ({[spec[0] for spec in specs]})")
        n_state = len(outs) - 1
        n_params = len(ins) - n_state - 1
        if n_state < 0 or n_params < 0:
            raise ValueError(f"emit_c: main must be f(*params, *state, x) -> (*new_state, out); it has {len(ins)} "
                             f"inputs and {len(outs)} results")
        # what depends on the parameters only is computed once per unroll (`prep`)
        main_c = mod.function("main", n_invariant=sum(j < n_params for j in kept))
    for k in range(n_state):
        if ins[n_params + k] != outs[k]:
            raise ValueError(f"emit_c: state leaf {k} enters as {ins[n_params + k]} but leaves as {outs[k]}")
    param_names = list(param_names) if param_names is not None else [f"p{k}" for k in range(n_params)]
    state_names = list(state_names) if state_names is not None else [f"s{k}" for k in range(n_state)]
    if len(param_names) != n_params:
        raise ValueError(f"param_names must have {n_params} entries (the module's parameters), got {len(param_names)}")
    if len(state_names) != n_state:
        raise ValueError(f"state_names must have {n_state} entries (the module's state), got {len(state_names)}")
    params = tuple(CField(n, c, *ins[k]) for k, (n, c) in enumerate(zip(param_names, _cnames(param_names, "p"))))
    state = tuple(CField(n, c, *ins[n_params + k])
                  for k, (n, c) in enumerate(zip(state_names, _cnames(state_names, "s"))))
    (x_shape, x_dtype), (out_shape, out_dtype) = ins[-1], outs[-1]
    batch = x_shape[0] if x_shape and out_shape and x_shape[0] == out_shape[0] else 1
    values_p = _values(param_values, params, "param_values")
    values_s = _values(state_values, state, "state_values")
    header = _header(prefix, params, state, x_dtype, out_dtype)
    source = "\n".join([
        f"/* Generated by brainfuse_jax.lower.emit_c from a StableHLO module: C99, libm only. */",
        f'#include "{prefix}.h"', _c_ops.PRELUDE, *mod.protos, "", *mod.defs, "",
        _init(prefix, "params", params, values_p), _init(prefix, "state", state, values_s),
        _step(prefix, main_c, params, state, x_dtype, out_dtype, kept),
        _unroll(prefix, x_shape, x_dtype, out_shape, out_dtype, batch), _main(prefix, state, x_shape, x_dtype,
                                                                               out_shape, out_dtype)])
    makefile = _makefile(prefix)
    readme = _readme(prefix, params, state, x_shape, x_dtype, out_shape, out_dtype, batch)
    return CProgram(prefix, source, header, makefile, readme, params, state, tuple(x_shape), np.dtype(x_dtype),
                    tuple(out_shape), np.dtype(out_dtype), batch)


def _values(values, fields, what):
    if values is None:
        return None
    values = list(values)
    if len(values) != len(fields):
        raise ValueError(f"{what} must have {len(fields)} arrays, got {len(values)}")
    out = []
    for v, f in zip(values, fields):
        a = np.asarray(v)
        if a.shape != f.shape:
            raise ValueError(f"{what}: {f.name} must have shape {f.shape}, got {a.shape}")
        out.append(a.astype(f.dtype))
    return out


def _decl(f: CField) -> str:
    return f"  {f.ctype} {f.cname}{'' if not f.shape else f'[{max(f.size, 1)}]'};  /* {f.name}: {f.shape} */"


def _header(prefix, params, state, x_dtype, out_dtype) -> str:
    xt, ot = _c_ops.CTYPES[np.dtype(x_dtype)], _c_ops.CTYPES[np.dtype(out_dtype)]
    guard = f"{prefix.upper()}_H"
    return "\n".join([
        f"/* Generated by brainfuse_jax.lower.emit_c. */", f"#ifndef {guard}", f"#define {guard}",
        "#include <stdint.h>", "#ifndef __cplusplus", "#include <stdbool.h>", "#endif",
        "#ifdef __cplusplus", 'extern "C" {', "#endif",
        "typedef struct {", *([_decl(f) for f in params] or ["  char unused;"]), f"}} {prefix}_params;",
        "typedef struct {", *([_decl(f) for f in state] or ["  char unused;"]), f"}} {prefix}_state;",
        f"void {prefix}_params_init({prefix}_params* p);", f"void {prefix}_state_init({prefix}_state* s);",
        f"void {prefix}_step(const {prefix}_params* p, {prefix}_state* s, const {xt}* x, {ot}* out);",
        f"void {prefix}_unroll(const {prefix}_params* p, {prefix}_state* s, const {xt}* x, {ot}* out, int n_steps);",
        "#ifdef __cplusplus", "}", "#endif", "#endif", ""])


def _init(prefix, what, fields, values) -> str:
    arg = "p" if what == "params" else "s"
    lines = [f"void {prefix}_{what}_init({prefix}_{what}* {arg}) {{", f"  memset({arg}, 0, sizeof *{arg});"]
    for k, f in enumerate(fields):
        if values is None:
            break
        v = values[k].ravel()
        if not v.size:
            continue
        if not f.shape:
            lines.append(f"  {arg}->{f.cname} = {_c_ops.literal(v[0], f.dtype)};")
        elif np.array_equal(v, np.full_like(v, v[0]), equal_nan=v.dtype.kind == "f"):
            lines.append(f"  for (int i = 0; i < {f.size}; ++i) {arg}->{f.cname}[i] = {_c_ops.literal(v[0], f.dtype)};")
        else:
            body = ", ".join(_c_ops.literal(e, f.dtype) for e in v)
            lines += [f"  {{ static const {f.ctype} init[{f.size}] = {{{body}}};",
                      f"    memcpy({arg}->{f.cname}, init, sizeof init); }}"]
    return "\n".join(lines + ["}", ""])


def _ref(struct: str, f: CField) -> str:
    return f"{struct}{f.cname}" if f.shape else f"&{struct}{f.cname}"


def _step(prefix, main_c, params, state, x_dtype, out_dtype, kept) -> str:
    xt, ot = _c_ops.CTYPES[np.dtype(x_dtype)], _c_ops.CTYPES[np.dtype(out_dtype)]
    inputs = [_ref("p->", f) for f in params] + [_ref("s->", f) for f in state] + ["x"]
    args = [inputs[j] for j in kept] + [_ref("next.", f) for f in state] + ["out"]
    return "\n".join([
        "/* prep: recompute what depends on the parameters only (kept in static storage between calls) */",
        f"static void {prefix}_step_prep(const {prefix}_params* p, {prefix}_state* s, const {xt}* x, {ot}* out, "
        "int prep) {",
        # a stateless function (export_module) has an empty state struct: nothing to carry over
        *([f"  static {prefix}_state next;"] if state else ["  (void)s;"]), "  (void)p;", "  (void)x;",
        f"  {main_c}({', '.join(['prep', *args])});", *(["  *s = next;"] if state else []), "}", "",
        f"void {prefix}_step(const {prefix}_params* p, {prefix}_state* s, const {xt}* x, {ot}* out) {{",
        f"  {prefix}_step_prep(p, s, x, out, 1);", "}", ""])


def _unroll(prefix, x_shape, x_dtype, out_shape, out_dtype, batch) -> str:
    xt, ot = _c_ops.CTYPES[np.dtype(x_dtype)], _c_ops.CTYPES[np.dtype(out_dtype)]
    nx, no = int(np.prod(x_shape, dtype=np.int64)), int(np.prod(out_shape, dtype=np.int64))
    rx, ro = nx // batch, no // batch
    return "\n".join([
        f"void {prefix}_unroll(const {prefix}_params* p, {prefix}_state* s, const {xt}* x, {ot}* out, int n_steps) {{",
        f"  static {xt} xt[{max(nx, 1)}];", f"  static {ot} ot[{max(no, 1)}];",
        "  for (int t = 0; t < n_steps; ++t) {",
        f"    for (int b = 0; b < {batch}; ++b) memcpy(xt + (long)b * {rx}, x + ((long)b * n_steps + t) * {rx}, "
        f"sizeof({xt}) * {rx});",
        f"    {prefix}_step_prep(p, s, xt, ot, t == 0);",
        f"    for (int b = 0; b < {batch}; ++b) memcpy(out + ((long)b * n_steps + t) * {ro}, ot + (long)b * {ro}, "
        f"sizeof({ot}) * {ro});",
        "  }", "}", ""])


def _main(prefix, state, x_shape, x_dtype, out_shape, out_dtype) -> str:
    xt, ot = _c_ops.CTYPES[np.dtype(x_dtype)], _c_ops.CTYPES[np.dtype(out_dtype)]
    nx, no = int(np.prod(x_shape, dtype=np.int64)), int(np.prod(out_shape, dtype=np.int64))
    writes = [f"  ok = ok && fwrite({_ref('s.', f)}, sizeof s.{f.cname}, 1, f) == 1;" for f in state]
    return "\n".join([
        "#ifdef BF_MAIN", "#include <stdio.h>", "#include <stdlib.h>",
        "/* usage: main INPUT OUTPUT N_STEPS: INPUT holds x (B, N_STEPS, ...) raw; OUTPUT gets out (B, N_STEPS, ...)"
        " then the final state's fields in order. */",
        "int main(int argc, char** argv) {",
        f"  static {prefix}_params p;", f"  static {prefix}_state s;",
        "  long n_steps;", "  size_t nx, no;", f"  {xt}* x;", f"  {ot}* out;", "  FILE* f;", "  int ok;",
        '  if (argc != 4) { fprintf(stderr, "usage: %s INPUT OUTPUT N_STEPS\\n", argv[0]); return 2; }',
        "  n_steps = atol(argv[3]);", "  if (n_steps < 0) return 2;",
        f"  nx = (size_t)n_steps * {nx};", f"  no = (size_t)n_steps * {no};",
        f"  x = ({xt}*)malloc(sizeof *x * (nx ? nx : 1));", f"  out = ({ot}*)malloc(sizeof *out * (no ? no : 1));",
        "  if (!x || !out) return 3;",
        '  f = fopen(argv[1], "rb");',
        '  if (!f || fread(x, sizeof *x, nx, f) != nx) { fprintf(stderr, "cannot read %s\\n", argv[1]); return 1; }',
        "  fclose(f);",
        f"  {prefix}_params_init(&p);", f"  {prefix}_state_init(&s);",
        f"  {prefix}_unroll(&p, &s, x, out, (int)n_steps);",
        '  f = fopen(argv[2], "wb");', "  if (!f) return 1;",
        "  ok = fwrite(out, sizeof *out, no, f) == no;", *writes,
        "  ok = (fclose(f) == 0) && ok;", "  free(x);", "  free(out);", "  return ok ? 0 : 1;", "}", "#endif", ""])


def _makefile(prefix) -> str:
    return "\n".join([
        "# Generated by brainfuse_jax.lower.emit_c", "CC ?= gcc", "CFLAGS ?= " + " ".join(FLAGS), "",
        f"all: {prefix}.o {prefix}_main", "",
        f"{prefix}.o: {prefix}.c {prefix}.h", f"\t$(CC) $(CFLAGS) -c -o $@ {prefix}.c", "",
        f"{prefix}_main: {prefix}.c {prefix}.h", f"\t$(CC) $(CFLAGS) -DBF_MAIN -o $@ {prefix}.c -lm", "",
        "clean:", f"\trm -f {prefix}.o {prefix}_main", "", ".PHONY: all clean", ""])


def _readme(prefix, params, state, x_shape, x_dtype, out_shape, out_dtype, batch) -> str:
    def rows(fields):
        return [f"| `{f.cname}` | `{f.name}` | {f.shape} | {f.dtype} |" for f in fields] or ["| (none) | | | |"]

    return "\n".join([
        f"# `{prefix}`: a model step in C99", "",
        "Generated by `brainfuse_jax.lower.emit_c` from the model's StableHLO: plain C99, no dependency beyond libm.",
        f"`make` builds `{prefix}.o` and the test program `{prefix}_main` (`gcc {' '.join(FLAGS)}`).", "",
        "```c", f"{prefix}_params p; {prefix}_state s;",
        f"{prefix}_params_init(&p);   /* the model's parameter values */",
        f"{prefix}_state_init(&s);    /* the initial state */",
        f"{prefix}_step(&p, &s, x, out);               /* x: {x_shape} {x_dtype}, out: {out_shape} {out_dtype} */",
        f"{prefix}_unroll(&p, &s, xs, outs, n_steps);  /* xs: (B={batch}, n_steps, ...), outs likewise */", "```",
        "", f"`{prefix}_main INPUT OUTPUT N_STEPS` reads the input series (raw, (B, N_STEPS, ...)), runs the unroll "
        "and writes the outputs, then the final state's fields in order.", "",
        "## Parameters", "| field | name | shape | dtype |", "|---|---|---|---|", *rows(params), "",
        "## State", "| field | name | shape | dtype |", "|---|---|---|---|", *rows(state), "",
        "The step functions keep their intermediate arrays in static storage: not reentrant.", ""])


SUPPORTED_OPS = tuple(SUPPORTED)

__all__ = ["FLAGS", "SUPPORTED_OPS", "CField", "CProgram", "emit_c"]
