"""The adjoint contract: how `simulate` is differentiated, as a value with one `unroll` method
(as diffrax's adjoints are). A new adjoint is one file: subclass `AbstractAdjoint`, implement
`unroll`, and optionally `configure` to check which `simulate` options it combines with."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp


class AbstractAdjoint(eqx.Module):
    """How `simulate` computes gradients. `simulate` calls `configure` once (validation, at trace
    time) and then `unroll`, inside its jit."""

    def configure(self, *, chunk_size: int | None, remat: bool, backend) -> AbstractAdjoint:
        """The adjoint to run with these `simulate` options (`ValueError` where they do not
        combine). Default: itself, without truncation, remat or a fused backend."""
        if chunk_size is not None or remat:
            raise ValueError(f"{type(self).__name__}() does not combine with chunk_size or remat")
        check_unfused(backend)
        return self

    @abc.abstractmethod
    def unroll(self, model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
               n_steps: int, *, chunk_size: int | None, remat: bool, native: bool | None):
        """`(final_state, {name: (B, T, ...) per-step record | (B, ...) total})` of `n_steps` steps
        of `model.step` from `state0` under `inputs` `(B, T, ...)`, differentiable by this adjoint.
        `per_step`/`totals` map record names to `(state, output) -> pytree`; `chunk_size` is
        simulate's truncation; `native` is the backend's choice of compiled CPU loops (None:
        where available, True: required, False: never)."""


def check_unfused(backend) -> None:
    """`ValueError` for a backend with fused kernels of its own (they run `CheckpointAdjoint` only)."""
    if backend.fused:
        raise ValueError("backend='pallas' is differentiated by its own backward kernel: use "
                         "adjoint=CheckpointAdjoint(every=K) (the default) or None")


def _zeros_ct(x):
    """A zero cotangent for primal `x` (float0 for integer/bool arrays)."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros(x.shape, x.dtype)
    return jnp.zeros(x.shape, jax.dtypes.float0)


def _with_leaves(tree, idx, values):
    """`tree` with its leaves number `idx[j]` replaced by `values[j]`."""
    leaves, treedef = jax.tree.flatten(tree)
    for j, i in enumerate(idx):
        leaves[i] = values[j]
    return jax.tree.unflatten(treedef, leaves)


def _internal_names(per_step, totals):
    """Records renamed "p0", "p1", ..., "t0", ... (user names may be None, which cannot share a
    dict with string names), and the map back."""
    names = {**{f"p{i}": k for i, k in enumerate(per_step)}, **{f"t{i}": k for i, k in enumerate(totals)}}
    return (names, {f"p{i}": f for i, f in enumerate(per_step.values())},
            {f"t{i}": f for i, f in enumerate(totals.values())})
