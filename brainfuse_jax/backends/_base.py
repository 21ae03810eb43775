"""The execution-backend contract: where and how `simulate`'s loops run, as a value passed as
`simulate(..., backend=)`. A new backend is one file: subclass `AbstractBackend`."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ..unroll import _HeldInput


class AbstractBackend(eqx.Module):
    """How `simulate` executes.

    - `fused`: whether it runs its own fused forward/backward kernels (adjoints check it).
    - `native`: whether compiled C++ kernels (through XLA's FFI) run the parts that have them:
      `ForwardMode`'s sensitivity loop, a `Cell`'s tree solve. None: where they are available
      (a C++ compiler and JAX's CPU backend), True: required (`ValueError` otherwise), False: never.
    - `prepare(model)`: the model as this backend runs it (a `Cell` takes `native` from here).
    - `hold(model, state0, held, n_steps)`: the model and `(B, T, ...)` inputs for inputs held
      constant (`simulate(n_steps=)`).
    - `unroll(adjoint, ...)`: the unroll; by default the adjoint's own, run by XLA.
    """

    @property
    def native(self) -> bool | None:
        return None

    @property
    def fused(self) -> bool:
        """Whether the backend runs forward and backward passes as fused kernels of its own (then
        only `CheckpointAdjoint`, whose blocks the kernels use, applies)."""
        return False

    def prepare(self, model):
        return model.for_backend(self)

    def hold(self, model, state0, held, n_steps: int):
        batch = model.input_shape(state0)[0]
        return _HeldInput(model, held), jnp.zeros((batch, n_steps, 0), jnp.result_type(*jax.tree.leaves(state0)))

    def unroll(self, adjoint, model, state0, inputs, dt, per_step, totals, n_steps, *, chunk_size, remat):
        return adjoint.unroll(model, state0, inputs, dt, per_step, totals, n_steps, chunk_size=chunk_size,
                              remat=remat, native=self.native)


def as_backend(backend) -> AbstractBackend:
    """`backend` as an object: None (default: `NativeCPU(fallback=True)`, compiled kernels where
    they apply and are available, XLA otherwise), a backend object, or the shorthands `"xla"`,
    `"native"`, `"pallas"`."""
    from ._native import NativeCPU
    from ._pallas import Pallas
    from ._xla import XLA
    if backend is None:
        return NativeCPU(fallback=True)
    if isinstance(backend, AbstractBackend):
        return backend
    shorthands = {"xla": XLA, "native": NativeCPU, "pallas": Pallas}
    if isinstance(backend, str) and backend in shorthands:
        return shorthands[backend]()
    raise ValueError(f"backend must be None, bf.XLA(), bf.NativeCPU(), bf.Pallas() or one of {list(shorthands)}, "
                     f"got {backend!r}")
