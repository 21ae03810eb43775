"""Native CPU spike delivery for networks (`spikes_cpu.cc`, through XLA's FFI): the event-driven
scatter of the firing sources' synapses into a ring buffer, its transpose for reverse mode, and
the spike recorder.

`delivery_kernels()` returns None where they cannot be built (no compiler, `BRAINFUSE_NATIVE=0`,
not the CPU backend); callers then use their XLA forms. Connectivity arrays: `indptr` (N + 1,)
int32, `cols` (S,) int32, `w` (S,) float, `delay` (S,) int16 steps or empty (every synapse
`uniform_delay` steps).
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
from pathlib import Path

import jax
import numpy as np

from ._native import compile_library

_SOURCE = Path(__file__).with_name("spikes_cpu.cc")
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


class DeliveryKernels:
    """`deliver` and `deliver_vjp` as jittable functions of JAX arrays (ring `(B, depth * columns)`,
    spike `(B, N)`, t `(B,)` int32); under `vmap` they run one batch after another."""

    @staticmethod
    def deliver(ring, spike, t, indptr, cols, w, delay, *, depth: int, uniform_delay: int):
        """`ring` plus every firing source's weights at `(t + delay) % depth` of their targets."""
        call = jax.ffi.ffi_call(f"bf_deliver_{_SUFFIX[np.dtype(ring.dtype)]}",
                                jax.ShapeDtypeStruct(ring.shape, ring.dtype), vmap_method="sequential",
                                input_output_aliases={0: 0})
        return call(ring, spike, t, indptr, cols, w, delay, depth=np.int64(depth),
                    uniform_delay=np.int64(uniform_delay))

    @staticmethod
    def deliver_vjp(ct_ring, spike, t, indptr, cols, w, delay, *, depth: int, uniform_delay: int):
        """`(ct_spike (B, N), ct_w (S,))`: the cotangents of `deliver` w.r.t. spike and w."""
        dtype = ct_ring.dtype
        call = jax.ffi.ffi_call(f"bf_deliver_vjp_{_SUFFIX[np.dtype(dtype)]}",
                                (jax.ShapeDtypeStruct(spike.shape, dtype), jax.ShapeDtypeStruct(w.shape, dtype)),
                                vmap_method="sequential")
        return call(ct_ring, spike, t, indptr, cols, w, delay, depth=np.int64(depth),
                    uniform_delay=np.int64(uniform_delay))

    @staticmethod
    def record(steps, ids, count, spike, t):
        """Append this step's spikes to the `(B, capacity)` int32 buffers `steps` / `ids`; returns
        `(steps, ids, count)` with `count` (B,) counting past the capacity."""
        call = jax.ffi.ffi_call(f"bf_record_{_SUFFIX[np.dtype(spike.dtype)]}",
                                (jax.ShapeDtypeStruct(steps.shape, steps.dtype), jax.ShapeDtypeStruct(ids.shape, ids.dtype),
                                 jax.ShapeDtypeStruct(count.shape, count.dtype)),
                                vmap_method="sequential", input_output_aliases={0: 0, 1: 1, 2: 2})
        return call(steps, ids, count, spike, t)


@functools.cache
def delivery_kernels() -> DeliveryKernels | None:
    """The compiled delivery kernels, or None if they cannot be built here."""
    if os.environ.get("BRAINFUSE_NATIVE", "1") == "0" or jax.default_backend() != "cpu":
        return None
    try:
        lib = ctypes.cdll.LoadLibrary(str(compile_library(_SOURCE.read_text(), "bf_spikes")))
    except (OSError, subprocess.CalledProcessError):
        return None
    for kernel in ("bf_deliver", "bf_deliver_vjp", "bf_record"):
        for suffix in _SUFFIX.values():
            name = f"{kernel}_{suffix}"
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, name)), platform="cpu")
    return DeliveryKernels()


__all__ = ["DeliveryKernels", "delivery_kernels"]
