"""A native CPU time loop for neurons that do not interact, generated from JAX code.

`native_loop(fn, ...)` runs `n_steps` steps of a per-neuron function `fn` (traced on scalars,
translated to C++ by `_jaxpr_c.emit`, compiled with the machine's compiler at first use, cached
on disk, and called through XLA's FFI) for every neuron of a batch. The loop is the one XLA's CPU
backend cannot give: all of a neuron's steps, and the derivatives carried alongside them, in one
compiled loop over blocks of `LANES` neurons whose state stays in registers and L1 (XLA splits a
step and its tangents into dozens of fused kernels with buffers between them: docs/kernels.md).

`fn(params, state, tangents, inputs) -> (new_state, records, totals, d_new_state, d_records,
d_totals)`, all lists of scalars (`tangents`, `d_*`: one list per tangent direction). Per neuron:

    s = state0; d = 0; tot = 0; dtot = 0; acc = 0
    for t in range(n_steps):
        s, rec, tt, d, drec, dtt = fn(params, s, d, x[:, t])
        tot += tt; dtot += dtt; records[:, t] = rec; acc[k] += sum_r cts[r][:, t] * drec[k][r]

`Unsupported` (from `_jaxpr_c`) says `fn` cannot be translated; `available()` whether a compiler
and the CPU backend are there.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._jaxpr_c import CTYPES, PRELUDE, Unsupported, emit
from ._native import compile_library

CHECK_FAILED = ("a runtime check (eqx.error_if) of the model's step failed in the native loop: NaN/inf or a value out "
                "of range; rerun with ForwardMode(native=False) for its message")
LANES = 16  # neurons per block: two AVX2 / one AVX-512 vector of float32
CHUNK = 64  # time steps whose inputs / records are staged, transposed, in a block's buffers
# -march=native: the machine's vector width (AVX2 / AVX-512 on x86, preferred 512-bit: 1.3x over
# 256-bit for an HH step with three tangents, measured); no -ffast-math: NaN and inf keep their
# meaning (the step's guards and checks rely on them), only errno and FP traps are given up.
FLAGS = ("-O3", "-march=native", *(("-mprefer-vector-width=512",) if platform.machine() in ("x86_64", "AMD64") else ()),
         "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd")


@functools.cache
def available() -> bool:
    """Whether native loops can be built and run here (CPU backend, a working C++ compiler,
    `$BRAINFUSE_NATIVE` not 0)."""
    if os.environ.get("BRAINFUSE_NATIVE", "1") == "0" or jax.default_backend() != "cpu":
        return False
    try:
        _load(_SMOKE_SOURCE, "bf_loop_smoke")
    except (OSError, subprocess.CalledProcessError):
        return False
    return True


_SMOKE_SOURCE = PRELUDE + '#include "xla/ffi/api/ffi.h"\nint bf_loop_smoke() { return (int)bf_exp(0.0f); }\n'


@functools.cache
def _load(source: str, symbol: str):
    lib = ctypes.cdll.LoadLibrary(str(compile_library(source, symbol, FLAGS)))
    if symbol != "bf_loop_smoke":
        jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    return lib


def _source(symbol: str, jaxpr, n: dict[str, int], dtypes: dict[str, list]) -> str:
    """The C++ of one loop. `n`: counts of params `p`, states `s`, inputs `x`, cotangents `c`,
    directions `k`, records `r`, totals `t`; `dtypes`: the dtypes of `p`, `s`, `x`, `r`, `t`."""
    P, S, X, C, K, R, T = (n[c] for c in "psxckrt")
    ct = {key: [CTYPES[np.dtype(d)] for d in ds] for key, ds in dtypes.items()}
    inputs = ([(f"in_p{j}", True) for j in range(P)] + [(f"in_s{j}", False) for j in range(S)]
              + [(f"in_d{k}_{j}", False) for k in range(K) for j in range(S)]
              + [(f"in_x{j}", False) for j in range(X)])
    decls, pre, body, outs, checks = emit(jaxpr, inputs)
    o_new, o_rec, o_tot = outs[:S], outs[S:S + R], outs[S + R:S + R + T]
    rest = outs[S + R + T:]
    o_dnew = [rest[k * S:(k + 1) * S] for k in range(K)]
    rest = rest[K * S:]
    o_drec = [rest[k * R:(k + 1) * R] for k in range(K)]
    o_dtot = [rest[K * R + k * T:K * R + (k + 1) * T] for k in range(K)]
    store = bool(C == 0 and R)  # records are returned (forward) or contracted with cotangents
    ts, tr, tt = ct["s"], ct["r"], ct["t"]

    fields = ([f"const {ct['p'][j]}* p{j};" for j in range(P)] + [f"const {ts[j]}* s{j};" for j in range(S)]
              + [f"const {ct['x'][j]}* x{j};" for j in range(X)] + [f"const {tr[j]}* c{j};" for j in range(C)]
              + [f"{ts[j]}* o_s{j};" for j in range(S)]
              + [f"{tt[j]}* o_t{j};" for j in range(T)] + ([f"{tr[j]}* o_r{j};" for j in range(R)] if store else [])
              + [f"{ts[j]}* o_d{k}_{j};" for k in range(K) for j in range(S)]
              + [f"{tt[j]}* o_dt{k}_{j};" for k in range(K) for j in range(T)]
              + [f"{ts[0]}* o_acc{k};" for k in range(K) if C])
    acc_t = ts[0]
    lane = "for (int i = 0; i < W; ++i)"
    load = ([f"{ct['p'][j]} in_p{j}[W];" for j in range(P)]
            + [f"{ts[j]} S{j}[W];" for j in range(S)] + [f"{ts[j]} D{k}_{j}[W];" for k in range(K) for j in range(S)]
            + [f"{tt[j]} TOT{j}[W];" for j in range(T)] + [f"{tt[j]} DT{k}_{j}[W];" for k in range(K) for j in range(T)]
            + [f"{acc_t} ACC{k}[W];" for k in range(K) if C] + (["bool ERR[W];"] if checks else [])
            + [f"{ct['x'][j]} XB{j}[CHUNK][W];" for j in range(X)] + [f"{tr[j]} CB{j}[CHUNK][W];" for j in range(C)]
            + ([f"{tr[j]} RB{j}[CHUNK][W];" for j in range(R)] if store else [])
            + [f"{lane} {{"] + [f"  in_p{j}[i] = a.p{j}[base + i];" for j in range(P)]
            + [f"  S{j}[i] = a.s{j}[base + i];" for j in range(S)]
            + [f"  D{k}_{j}[i] = 0;" for k in range(K) for j in range(S)] + [f"  TOT{j}[i] = 0;" for j in range(T)]
            + [f"  DT{k}_{j}[i] = 0;" for k in range(K) for j in range(T)]
            + [f"  ACC{k}[i] = 0;" for k in range(K) if C] + (["  ERR[i] = false;"] if checks else [])
            + ["}"] + decls + [f"{lane} {{"] + [f"  {s}" for s in pre] + ["}"])
    step = ([f"const {ts[j]} in_s{j} = S{j}[i];" for j in range(S)]
            + [f"const {ts[j]} in_d{k}_{j} = D{k}_{j}[i];" for k in range(K) for j in range(S)]
            + [f"const {ct['x'][j]} in_x{j} = XB{j}[q][i];" for j in range(X)] + body
            + [f"S{j}[i] = {o_new[j]};" for j in range(S)]
            + [f"D{k}_{j}[i] = {o_dnew[k][j]};" for k in range(K) for j in range(S)]
            + [f"TOT{j}[i] = TOT{j}[i] + {o_tot[j]};" for j in range(T)]
            + [f"DT{k}_{j}[i] = DT{k}_{j}[i] + {o_dtot[k][j]};" for k in range(K) for j in range(T)]
            + ([f"RB{j}[q][i] = {o_rec[j]};" for j in range(R)] if store else [])
            + [f"ACC{k}[i] = ACC{k}[i] + " + " + ".join(f"CB{j}[q][i] * {o_drec[k][j]}" for j in range(C)) + ";"
               for k in range(K) if C]
            + (["ERR[i] = ERR[i] | " + " | ".join(f"({c})" for c in checks) + ";"] if checks else []))
    loop = (["for (int64_t t0 = 0; t0 < a.T; t0 += CHUNK) {",
             "  const int tn = (int)std::min<int64_t>(CHUNK, a.T - t0);"]
            + [f"  {lane} for (int q = 0; q < tn; ++q) XB{j}[q][i] = a.x{j}[(base + i) * a.T + t0 + q];"
               for j in range(X)]
            + [f"  {lane} for (int q = 0; q < tn; ++q) CB{j}[q][i] = a.c{j}[(base + i) * a.T + t0 + q];"
               for j in range(C)]
            + ["  for (int q = 0; q < tn; ++q) {", "#pragma omp simd", f"    {lane} {{"]
            + [f"      {s}" for s in step] + ["    }", "  }"]
            + ([f"  {lane} for (int q = 0; q < tn; ++q) a.o_r{j}[(base + i) * a.T + t0 + q] = RB{j}[q][i];"
                for j in range(R)] if store else [])
            + ["}"])
    write = ([f"{lane} {{"] + [f"  a.o_s{j}[base + i] = S{j}[i];" for j in range(S)]
             + [f"  a.o_t{j}[base + i] = TOT{j}[i];" for j in range(T)]
             + [f"  a.o_d{k}_{j}[base + i] = D{k}_{j}[i];" for k in range(K) for j in range(S)]
             + [f"  a.o_dt{k}_{j}[base + i] = DT{k}_{j}[i];" for k in range(K) for j in range(T)]
             + [f"  a.o_acc{k}[base + i] = ACC{k}[i];" for k in range(K) if C] + ["}"]
             + ([f"{lane} if (ERR[i]) return true;"] if checks else []) + ["return false;"])
    n_args = P + S + X + C
    n_rets = S + T + (R if store else 0) + K * S + K * T + (K if C else 0)
    arg_names = [f"p{j}" for j in range(P)] + [f"s{j}" for j in range(S)] + [f"x{j}" for j in range(X)] + \
        [f"c{j}" for j in range(C)]
    ret_names = [f"o_s{j}" for j in range(S)] + [f"o_t{j}" for j in range(T)] + \
        ([f"o_r{j}" for j in range(R)] if store else []) + [f"o_d{k}_{j}" for k in range(K) for j in range(S)] + \
        [f"o_dt{k}_{j}" for k in range(K) for j in range(T)] + ([f"o_acc{k}" for k in range(K)] if C else [])
    bind = ([f"  a.{name} = static_cast<decltype(a.{name})>(args.get<ffi::AnyBuffer>({j}).value().untyped_data());"
             for j, name in enumerate(arg_names)]
            + [f"  a.{name} = static_cast<decltype(a.{name})>(rets.get<ffi::AnyBuffer>({j}).value()->untyped_data());"
               for j, name in enumerate(ret_names)])
    return "\n".join([
        f"// Generated by brainfuse_kernels._loop_cpu from a jaxpr: {P} parameters, {S} states, {K} tangent "
        f"directions, {X} inputs, {R} records, {T} totals.",
        PRELUDE, '#include <algorithm>', '#include "xla/ffi/api/ffi.h"', "namespace ffi = xla::ffi;",
        f"constexpr int CHUNK = {CHUNK};", "struct Args {", *[f"  {f}" for f in fields], "  int64_t T;", "};",
        "template <int W>", "static bool block(const Args& a, const int64_t base) {  // true: a check failed",
        *[f"  {s}" for s in load + loop + write], "}",
        "static ffi::Error Impl(int64_t n_steps, ffi::RemainingArgs args, ffi::RemainingRets rets) {",
        f"  if (args.size() != {n_args} || rets.size() != {n_rets}) "
        f'return ffi::Error::InvalidArgument("{symbol}: wrong number of buffers");',
        "  Args a;", "  a.T = n_steps;", *bind,
        f"  const int64_t m = (int64_t)args.get<ffi::AnyBuffer>({P}).value().element_count();",
        "  int64_t base = 0;", "  bool failed = false;",
        f"  for (; base + {LANES} <= m; base += {LANES}) failed |= block<{LANES}>(a, base);",
        "  for (; base < m; ++base) failed |= block<1>(a, base);",
        f'  if (failed) return ffi::Error::InvalidArgument("{CHECK_FAILED}");', "  return ffi::Error::Success();", "}",
        f"XLA_FFI_DEFINE_HANDLER_SYMBOL({symbol}, Impl, "
        'ffi::Ffi::Bind().Attr<int64_t>("n_steps").RemainingArgs().RemainingRets());', ""])


def native_loop(fn: Callable, params: Sequence, state0: Sequence, inputs: Sequence, n_steps: int, *,
                n_dirs: int = 0, cts: Sequence = (), n_records: int, n_totals: int):
    """Run `fn` (module docstring) natively. `params`, `state0`: arrays of the batch shape
    (broadcast by the caller; at least one state); `inputs`, `cts`: `(*batch, n_steps)`.

    **Returns:** `(final_state, records, totals, d_final_state, d_totals, acc)`: lists; records
    `(*batch, n_steps)` (only without `cts`), `d_*` one list per direction, `acc` one array per
    direction (with `cts`). Raises `Unsupported` if `fn` cannot be translated.
    """
    scalar = lambda a: jax.ShapeDtypeStruct((), a.dtype)  # noqa: E731
    S = len(state0)
    if not S:
        raise Unsupported("a model without state")
    jaxpr = jax.make_jaxpr(lambda p, s, d, x: jax.tree.leaves(fn(p, s, d, x)))(
        [scalar(p) for p in params], [scalar(s) for s in state0], [[scalar(s) for s in state0]] * n_dirs,
        [scalar(x) for x in inputs])
    outs = jaxpr.out_avals
    if len(outs) != S + n_records + n_totals + n_dirs * (S + n_records + n_totals):
        raise Unsupported("fn's outputs do not match its declared records and totals")
    rec_avals = outs[S:S + n_records]
    tot_avals = outs[S + n_records:S + n_records + n_totals]
    n = dict(p=len(params), s=S, x=len(inputs), c=len(cts), k=n_dirs, r=n_records, t=n_totals)
    dtypes = dict(p=[p.dtype for p in params], s=[s.dtype for s in state0], x=[x.dtype for x in inputs],
                  r=[a.dtype for a in rec_avals], t=[a.dtype for a in tot_avals])
    if any(np.dtype(d) not in CTYPES for ds in dtypes.values() for d in ds):
        raise Unsupported("a dtype without a C type")
    if any(jnp.dtype(c.dtype) != jnp.dtype(state0[0].dtype) for c in cts):
        raise Unsupported("cotangents of another dtype than the state")
    source = _source("BF_LOOP_SYMBOL", jaxpr, n, dtypes)
    symbol = "bf_loop_" + hashlib.sha256(source.encode()).hexdigest()[:16]
    try:
        _load(source.replace("BF_LOOP_SYMBOL", symbol), symbol)
    except (OSError, subprocess.CalledProcessError) as err:  # not expected once available(): say why
        detail = getattr(err, "stderr", None) or str(err)
        warnings.warn(f"brainfuse_kernels: building the native loop {symbol} failed, XLA is used instead: "
                      f"{detail[-2000:]}", RuntimeWarning, stacklevel=2)
        raise Unsupported(f"the C++ build failed ({detail[-300:]})") from err
    shape = np.shape(state0[0])
    series = (*shape, n_steps)
    store = not cts and n_records
    result = ([jax.ShapeDtypeStruct(shape, s.dtype) for s in state0]
              + [jax.ShapeDtypeStruct(shape, a.dtype) for a in tot_avals]
              + ([jax.ShapeDtypeStruct(series, a.dtype) for a in rec_avals] if store else [])
              + [jax.ShapeDtypeStruct(shape, s.dtype) for _ in range(n_dirs) for s in state0]
              + [jax.ShapeDtypeStruct(shape, a.dtype) for _ in range(n_dirs) for a in tot_avals]
              + ([jax.ShapeDtypeStruct(shape, state0[0].dtype) for _ in range(n_dirs)] if cts else []))
    call = jax.ffi.ffi_call(symbol, result, vmap_method="broadcast_all")
    out = list(call(*params, *state0, *inputs, *cts, n_steps=np.int64(n_steps)))
    take = lambda k: [out.pop(0) for _ in range(k)]  # noqa: E731
    final, totals = take(S), take(n_totals)
    records = take(n_records) if store else []
    d_final = [take(S) for _ in range(n_dirs)]
    d_totals = [take(n_totals) for _ in range(n_dirs)]
    acc = take(n_dirs) if cts else []
    return final, records, totals, d_final, d_totals, acc


__all__ = ["LANES", "Unsupported", "available", "native_loop"]
