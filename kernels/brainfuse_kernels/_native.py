"""Native CPU kernels: C++ compiled at first use with the machine's compiler and called from XLA
through its FFI (`jax.ffi.ffi_call`), for loops that XLA's CPU backend runs slowly.

The one kernel is the Hines tree solve (`hines_cpu.cc`): a cable step's O(N) elimination is a
chain of tiny dependent operations, which XLA compiles into ~3 small kernels per tree level
(~150 for the CA1 cell, ~70 ns each); NEURON's two C loops do it in ~2 us. The shared library is
built once per machine into `$BRAINFUSE_CACHE` (default `~/.cache/brainfuse_jax`), keyed by the
source, the jaxlib version and the compiler, with `$CXX` (default `g++`). Without a compiler, or
with `BRAINFUSE_NATIVE=0`, `hines_cpu()` returns None and callers use their XLA form.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

_SOURCE = Path(__file__).with_name("hines_cpu.cc")
_TARGETS = {np.dtype(np.float32): "bf_hines_f32", np.dtype(np.float64): "bf_hines_f64"}


def _cache_dir() -> Path:
    return Path(os.environ.get("BRAINFUSE_CACHE", Path.home() / ".cache" / "brainfuse_jax"))


def build_library() -> Path:
    """Compile `hines_cpu.cc` (once per source / jaxlib / compiler) and return the library's path.
    Raises `OSError` / `subprocess.CalledProcessError` if no compiler works."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise FileNotFoundError(f"no C++ compiler {cxx!r} on PATH (set $CXX)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256(_SOURCE.read_bytes() + jax.lib.__version__.encode() + version.encode()).hexdigest()[:16]
    out = _cache_dir() / f"libbf_hines_{key}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_lib = Path(tmp) / out.name
        subprocess.run([cxx, "-O3", "-std=c++17", "-shared", "-fPIC", "-w", f"-I{jax.ffi.include_dir()}",
                        str(_SOURCE), "-o", str(tmp_lib)], capture_output=True, text=True, check=True)
        os.replace(tmp_lib, out)  # atomic: concurrent builders leave one complete library
    return out


@functools.cache
def hines_cpu() -> Callable | None:
    """`solve(parent, d, a, b, rhs) -> x` running the compiled kernel (float32 / float64, any
    leading batch dimensions, vmappable), or None if it cannot be built here."""
    if os.environ.get("BRAINFUSE_NATIVE", "1") == "0":
        return None
    try:
        lib = ctypes.cdll.LoadLibrary(str(build_library()))
    except (OSError, subprocess.CalledProcessError):
        return None
    for name in _TARGETS.values():
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")

    def solve(parent, d, a, b, rhs):
        call = jax.ffi.ffi_call(_TARGETS[np.dtype(d.dtype)], jax.ShapeDtypeStruct(d.shape, d.dtype),
                                vmap_method="broadcast_all")
        return call(d, a, b, rhs, parent=np.asarray(parent, np.int64))
    return solve


def available(dtype) -> bool:
    """Whether the native solve can run arrays of `dtype` on JAX's default (CPU) backend."""
    return (jax.default_backend() == "cpu" and np.dtype(dtype) in _TARGETS and hines_cpu() is not None)


__all__ = ["available", "build_library", "hines_cpu"]
