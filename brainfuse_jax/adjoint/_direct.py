"""`DirectAdjoint`: autodiff through the `lax.scan`."""

from __future__ import annotations

from ..unroll import scan_unroll
from ._base import AbstractAdjoint, check_unfused


class DirectAdjoint(AbstractAdjoint):
    """Differentiate `simulate` by autodiff through its `lax.scan` (with `simulate(remat=True)`,
    each step is rematerialised). Fastest backward pass for short runs; memory grows with
    T x N x (intermediates of one step)."""

    def configure(self, *, chunk_size, remat, backend):
        check_unfused(backend)
        return self

    def unroll(self, model, state0, inputs, dt, per_step, totals, n_steps, *, chunk_size, remat, native):
        return scan_unroll(model, state0, inputs, dt, per_step, totals, n_steps, chunk_size, remat)
