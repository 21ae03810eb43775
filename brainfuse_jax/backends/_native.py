"""`NativeCPU()`: compiled C++ kernels on the CPU where a model or adjoint has one."""

from __future__ import annotations

import equinox as eqx

from ._base import AbstractBackend


class NativeCPU(AbstractBackend):
    """Run the parts that have compiled CPU kernels as C++ (built with the machine's compiler,
    `$CXX` or `g++`, at first use and cached, called through XLA's FFI): `ForwardMode`'s
    sensitivities as one loop generated from the model's step (`_native_loop.py`), a `Cell`'s
    tree solve and Laplacian (`brainfuse_kernels._native`). Everything else runs as XLA.

    **Arguments:**
    - `fallback`: False (default): a `ValueError` says why where a native kernel cannot run
      (no compiler, a step that is not elementwise over neurons, a traced dt, ...). True: XLA
      there instead; `simulate(backend=None)` means `NativeCPU(fallback=True)`.

    `BRAINFUSE_NATIVE=0` in the environment switches the compiled kernels off globally.
    """

    fallback: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not isinstance(self.fallback, bool):
            raise TypeError(f"NativeCPU.fallback must be True or False, got {self.fallback!r}")

    @property
    def native(self) -> bool | None:
        return None if self.fallback else True
