"""Bridges from our step-based neurons to diffrax, for high-accuracy reference solutions.

The time discretisations themselves live with the neurons (`PointNeuron(scheme=...)`); see
`docs/numerics.md` for what each scheme does and its measured order of convergence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import diffrax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

from .neurons._point import PointNeuron


def to_diffrax_term(model: PointNeuron, current: Callable[[Array], Array]) -> diffrax.ODETerm:
    """The continuous-time vector field of `model` as a diffrax term.

    `current(t)` gives the input current density (uA/cm2) at time `t` (ms), with the state's batch
    shape. The term's state is the neuron's state pytree.
    """
    if not isinstance(model, PointNeuron):
        raise TypeError(f"model must be a PointNeuron, got {type(model).__name__}")
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
    ts = jnp.asarray(ts)
    sol = diffrax.diffeqsolve(
        to_diffrax_term(model, current), diffrax.Tsit5(), t0=ts[0], t1=ts[-1], dt0=1e-3, y0=state0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol, jump_ts=jump_ts),
        max_steps=max_steps,
    )
    return sol.ys
