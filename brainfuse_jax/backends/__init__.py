"""Where `simulate` runs, as a value (`simulate(..., backend=)`), one file per backend:

- `XLA()`: XLA operations only (`_xla.py`); the reference.
- `NativeCPU(fallback=False)`: compiled C++ kernels where a model or adjoint has one
  (`_native.py`; `ForwardMode`'s loop in `_native_loop.py`, the cable's tree kernels);
  `backend=None` means `NativeCPU(fallback=True)`.
- `Pallas(block_neurons=None, interpret=None)`: fused Pallas kernels (`_pallas.py`).

A new backend subclasses `AbstractBackend` (`_base.py`).
"""

from ._base import AbstractBackend as AbstractBackend
from ._base import as_backend as as_backend
from ._native import NativeCPU as NativeCPU
from ._pallas import Pallas as Pallas
from ._xla import XLA as XLA

__all__ = ["AbstractBackend", "NativeCPU", "Pallas", "XLA", "as_backend"]
