"""Native CPU kernels: C++ compiled at first use with the machine's compiler and called from XLA
through its FFI (`jax.ffi.ffi_call`), for loops that XLA's CPU backend runs slowly.

The kernels (`tree_cpu.cc`) are the tree operations of a cable step: the Hines solve, whose O(N)
elimination is a chain of tiny dependent operations that XLA compiles into ~3 small kernels per
tree level (~150 for the CA1 cell, ~70 ns each; NEURON's two C loops take ~2 us), and the axial
current `L v` of the tree (a gather and a scatter-add in XLA).

Shared libraries are built once per machine into `$BRAINFUSE_CACHE` (default
`~/.cache/brainfuse_jax`) by `compile_library`, keyed by the source, the flags, the jaxlib
version, the compiler and the CPU, with `$CXX` (default `g++`); the native time loops of
`_loop_cpu` are built the same way. Without a compiler, or with `BRAINFUSE_NATIVE=0`,
`cpu_kernels()` returns None and callers use their XLA forms.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax
import numpy as np

_SOURCE = Path(__file__).with_name("tree_cpu.cc")
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _cache_dir() -> Path:
    return Path(os.environ.get("BRAINFUSE_CACHE", Path.home() / ".cache" / "brainfuse_jax"))


def compile_library(source: str, stem: str, flags: tuple[str, ...] = ("-O3",)) -> Path:
    """Compile the C++ `source` (with the XLA FFI headers) into a shared library in the cache, once
    per source / flags / jaxlib / compiler / CPU, and return its path. Raises `OSError` /
    `subprocess.CalledProcessError` if no compiler works."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise FileNotFoundError(f"no C++ compiler {cxx!r} on PATH (set $CXX)")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    key = hashlib.sha256("\0".join([source, *flags, jax.lib.__version__, version, _cpu()]).encode()).hexdigest()[:16]
    out = _cache_dir() / f"lib{stem}_{key}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src, tmp_lib = Path(tmp) / f"{stem}.cc", Path(tmp) / out.name
        src.write_text(source)
        subprocess.run([cxx, *flags, "-std=c++17", "-shared", "-fPIC", "-w", f"-I{jax.ffi.include_dir()}",
                        str(src), "-o", str(tmp_lib)], capture_output=True, text=True, check=True)
        os.replace(tmp_lib, out)  # atomic: concurrent builders leave one complete library
    return out


@functools.cache
def _cpu() -> str:
    """What identifies this CPU for code built with -march=native (its model and flags)."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return "\n".join(sorted({line for line in info if line.startswith(("model name", "flags"))}))


def build_library() -> Path:
    """Compile `tree_cpu.cc` and return the library's path (see `compile_library`)."""
    return compile_library(_SOURCE.read_text(), "bf_tree")


class CpuKernels:
    """The compiled kernels as jittable, vmappable functions of JAX arrays (float32 / float64,
    any leading batch dimensions; `parent` a static int array, `parent[i] < i`, roots -1)."""

    @staticmethod
    def _call(name, *args, parent):
        args = jax.numpy.broadcast_arrays(*args)  # the kernels read every argument with one shape
        like = args[0]
        call = jax.ffi.ffi_call(f"{name}_{_SUFFIX[np.dtype(like.dtype)]}", jax.ShapeDtypeStruct(like.shape, like.dtype),
                                vmap_method="broadcast_all")
        return call(*args, parent=np.asarray(parent, np.int64))

    def hines_solve(self, parent, d, a, b, rhs):
        """x with M x = rhs; M: diagonal d, M[i, parent i] = a[i], M[parent i, i] = b[i]."""
        return self._call("bf_hines", d, a, b, rhs, parent=parent)

    def tree_laplacian(self, parent, g, v):
        """L v: out[i] = sum over the edges of node i of g_edge (v_i - v_other), g[i] the edge to
        i's parent."""
        return self._call("bf_laplacian", g, v, parent=parent)


@functools.cache
def cpu_kernels() -> CpuKernels | None:
    """The compiled kernels, or None if they cannot be built here."""
    if os.environ.get("BRAINFUSE_NATIVE", "1") == "0":
        return None
    try:
        lib = ctypes.cdll.LoadLibrary(str(build_library()))
    except (OSError, subprocess.CalledProcessError):
        return None
    for kernel in ("bf_hines", "bf_laplacian"):
        for suffix in _SUFFIX.values():
            name = f"{kernel}_{suffix}"
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    return CpuKernels()


def available(dtype) -> bool:
    """Whether the native kernels can run arrays of `dtype` on JAX's default (CPU) backend."""
    return jax.default_backend() == "cpu" and np.dtype(dtype) in _SUFFIX and cpu_kernels() is not None


__all__ = ["CpuKernels", "available", "build_library", "compile_library", "cpu_kernels"]
