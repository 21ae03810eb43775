"""`XLA()`: everything as XLA operations (the reference path; no compiled C++ kernels)."""

from __future__ import annotations

from ._base import AbstractBackend


class XLA(AbstractBackend):
    """Run `simulate` as XLA computations only: `lax.scan` loops, the cable's tree solve as XLA
    sweeps, `ForwardMode`'s sensitivities as an XLA loop. Always available, on every device;
    the reference the other backends are tested against."""

    @property
    def native(self) -> bool | None:
        return False
