"""`Pallas()`: fused Pallas kernels (a block of neurons over all time steps, state on-chip)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._validate import check_finite_block
from ._base import AbstractBackend


class Pallas(AbstractBackend):
    """Run `simulate` as the fused kernels of the `brainfuse_kernels` package (`kernels/` in the
    repository): each program advances a block of neurons over all time steps with the state
    on-chip, and a backward kernel walks the discrete adjoint from checkpoints. For models whose
    step is elementwise over neurons (point neurons, the LIF family; proven from the step's
    jaxpr, else a `ValueError` naming the primitive). Differentiated with `CheckpointAdjoint`
    only. On a GPU the kernels compile through Triton; on the CPU they run in Pallas interpret
    mode (for testing).

    **Arguments:**
    - `block_neurons`: neurons per program (default: all of them in interpret mode, 128 on a GPU).
    - `interpret`: Pallas interpret mode (default: when JAX's default backend is the CPU).
    """

    block_neurons: int | None = eqx.field(static=True, default=None)
    interpret: bool | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self.block_neurons is not None and (not isinstance(self.block_neurons, int)
                                               or isinstance(self.block_neurons, bool) or self.block_neurons <= 0):
            raise ValueError(f"Pallas.block_neurons must be a positive int or None, got {self.block_neurons!r}")
        if self.interpret not in (None, True, False):
            raise TypeError(f"Pallas.interpret must be True, False or None, got {self.interpret!r}")

    @property
    def native(self) -> bool | None:
        return False

    @property
    def fused(self) -> bool:
        return True

    def hold(self, model, state0, held, n_steps: int):  # the kernels stream (B, T) inputs
        return model, jax.tree.map(lambda a: jnp.broadcast_to(a[:, None], (a.shape[0], n_steps, *a.shape[1:])), held)

    def unroll(self, adjoint, model, state0, inputs, dt, per_step, totals, n_steps, *, chunk_size, remat):
        try:
            from brainfuse_kernels import pallas_unroll
        except ImportError as err:  # pragma: no cover - only without the kernels package
            raise ImportError("backend='pallas' needs the brainfuse_kernels package (kernels/ in the repository, "
                              "installed with brainfuse_jax by `pip install -e .`)") from err
        return pallas_unroll(model, state0, check_finite_block(inputs), dt, per_step, totals, n_steps,
                             adjoint.interval(n_steps, state0), truncate=chunk_size is not None,
                             block_neurons=self.block_neurons, interpret=self.interpret)
