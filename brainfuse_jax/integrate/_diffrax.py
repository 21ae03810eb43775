"""Bridges from our step-based neurons to diffrax, for high-accuracy reference solutions.

The time discretisations themselves are the scheme objects of this package (`PointNeuron(scheme=
...)`); see `docs/numerics.md` for what each scheme does and its measured order of convergence.
diffrax is imported on first use, so that importing `brainfuse_jax` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

if TYPE_CHECKING:  # the schemes sit below the neurons in the import order: no runtime import
    import diffrax

    from ..neurons._point import PointNeuron


def _check_model(model) -> None:
    if not callable(getattr(model, "derivatives", None)):
        raise TypeError(f"model must be a PointNeuron (a model with derivatives(state, x)), got "
                        f"{type(model).__name__}")


def to_diffrax_term(model: PointNeuron, current: Callable[[Array], Array]) -> diffrax.ODETerm:
    """The continuous-time vector field of `model` as a diffrax term.

    `current(t)` gives the input current density (uA/cm2) at time `t` (ms), with the state's batch
    shape. The term's state is the neuron's state pytree.
    """
    import diffrax

    _check_model(model)
    return diffrax.ODETerm(lambda t, y, args: model.derivatives(y, current(t)))


def reference_solution(
    model: PointNeuron,
    state0: PyTree,
    current: Callable[[Array], Array],
    ts: Float[ArrayLike, " n"],
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    jump_ts: Sequence[float] | None = None,
    max_steps: int = 1_000_000,
) -> PyTree:
    """Solve `model` with diffrax's Tsit5 at tight tolerances; the state at times `ts` (ms).

    `jump_ts` (ms) lists discontinuities of `current` so the step controller restarts there.
    Returns the state pytree with a leading time axis of length `len(ts)`.
    """
    import diffrax

    ts = jnp.asarray(ts)
    sol = diffrax.diffeqsolve(
        to_diffrax_term(model, current), diffrax.Tsit5(), t0=ts[0], t1=ts[-1], dt0=1e-3, y0=state0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=jump_ts),
        max_steps=max_steps,
    )
    return sol.ys
