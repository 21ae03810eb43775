r"""Discrete-time leaky integrate-and-fire neurons: `LIF`, `ALIF` and `RecurrentLIF`.

All three share one update (snnTorch's `Leaky` convention, Eshraghian et al. 2023, "Training
spiking neural networks using lessons from deep learning", Proc. IEEE 111(9)):

$$u_t = \beta\,v_{t-1} + I_t, \qquad s_t = \Theta(u_t - \vartheta_t), \qquad
  v_t = \begin{cases} u_t - s_t\,\vartheta_t & \texttt{reset="subtract"} \\
                      u_t\,(1 - s_t) & \texttt{reset="zero"} \end{cases}$$

where $I_t$ is the input of step $t$ (dimensionless, in units of the threshold: an input of
`threshold` brings a neuron at rest to threshold in one step), $\beta \in [0, 0.999]$ is the
per-step membrane decay and $\Theta$ is the Heaviside step, exact in the forward pass (spikes are
exactly 0.0 or 1.0) with a `Surrogate` derivative in the backward pass. The stored `v` is the
membrane *after* reset. (snnTorch applies the reset one step later, $v_t = \beta v_{t-1} + I_t -
s_{t-1}\vartheta$ with $v$ kept un-reset; the spike trains agree when $\beta = 1$ and differ by the
factor $\beta$ on the subtracted threshold otherwise.)

Because $\beta$ is a per-step factor, only the refractory period and the adaptation time
constant of `ALIF` depend on `dt` (ms).

In a network, spikes arrive through one event port, `"delta"` (`receptors`): `step_events(state,
x, {"delta": w}, dt)` is `step(state, x + w, dt)`, `w` the summed weights (units of the
threshold) delivered in the step; a refractory neuron ignores them as it ignores `x`.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._validate import (as_float_array, check_dt, check_finite, check_in_range, check_nonnegative,
                         check_positive)
from ..surrogate import Surrogate
from ._base import AbstractNeuron, State, check_events, check_step_input, normalize_batch_shape, resolve_dtype

#: Upper bound of the membrane decay `beta` (its parameterisation maps onto [0, BETA_MAX]).
BETA_MAX = 0.999
# |beta_raw| is clipped to this at construction, so beta = 0 is stored finitely
# (beta = 0.999 * sigmoid(-30) ~ 1e-13).
_RAW_MAX = 30.0
# Time constants are floored at this value (ms) where they are used, so a trained time constant
# that wanders to <= 0 gives a decay of 0 instead of inf/NaN.
TAU_MIN = 1e-3
RESETS = ("subtract", "zero")


def _param(x, name: str) -> Array:
    """`x` as a floating-point, non-weakly-typed array (dtype kept if already floating)."""
    arr = as_float_array(x, name)
    return jnp.asarray(arr, dtype=arr.dtype)


def beta_to_raw(beta: Real[ArrayLike, "..."]) -> Float[Array, "..."]:
    """Inverse of the `beta` parameterisation: `raw = logit(beta / 0.999)`, clipped to [-30, 30].

    Values of `beta` in [0.999, 1) map to `raw = 30`, i.e. `beta = 0.999` (to within rounding).
    """
    beta = jnp.asarray(beta)
    p = jnp.clip(beta / BETA_MAX, 0.0, 1.0)
    raw = jnp.log(p) - jnp.log1p(-p)  # +-inf at the end points, clipped below
    return jnp.clip(raw, -_RAW_MAX, _RAW_MAX)


def raw_to_beta(raw: Real[ArrayLike, "..."]) -> Float[Array, "..."]:
    """The `beta` parameterisation: `beta = 0.999 * sigmoid(raw)`, always in [0, 0.999]."""
    return BETA_MAX * jax.nn.sigmoid(as_float_array(raw, "raw"))


def decay(dt: Real[ArrayLike, ""], tau: Real[ArrayLike, "..."]) -> Float[Array, "..."]:
    """Per-step decay factor `exp(-dt / tau)` of a time constant `tau` (ms) over `dt` (ms).

    `tau` is floored at `TAU_MIN` = 1e-3 ms, so the factor stays in [0, 1) with a finite gradient
    even if a trained time constant becomes non-positive.
    """
    return jnp.exp(-dt / jnp.maximum(tau, TAU_MIN))


def _like(p: Array, ref: Array) -> Array:
    """Parameter `p` in the dtype of `ref`, broadcast explicitly to its shape (per-neuron `(n,)`
    against a state `(B, n)`; implicit rank promotion is an error in strict configurations)."""
    return jnp.broadcast_to(p.astype(ref.dtype), ref.shape)


def _check_broadcast(params: dict[str, Array], shape: tuple[int, ...]):
    for name, p in params.items():
        try:
            out = np.broadcast_shapes(tuple(p.shape), shape)
        except ValueError:
            out = None
        if out != shape:
            raise ValueError(f"{name} has shape {tuple(p.shape)}, which does not broadcast to the "
                             f"state's batch_shape {shape}; per-neuron parameters must match its "
                             "trailing axes, e.g. (n,) for batch_shape (B, n)")


class _AbstractLIF(AbstractNeuron):
    """Fields and update shared by `LIF`, `ALIF` and `RecurrentLIF` (not public)."""

    #: One event port, `"delta"`: its summed weights (units of the threshold) add to the step's
    #: input `x`, so a refractory neuron ignores them as it ignores `x`.
    receptors: ClassVar[tuple[str, ...]] = ("delta",)

    beta_raw: Float[Array, "..."]
    threshold: Float[Array, "..."]
    refractory: Float[Array, "..."]
    surrogate: Surrogate
    reset: str = eqx.field(static=True)
    learn_beta: bool = eqx.field(static=True)
    detach_reset: bool = eqx.field(static=True)

    def _init_common(self, beta, threshold, learn_beta, reset, refractory, detach_reset, surrogate):
        beta = _param(beta, "beta")
        check_in_range(beta, "beta", 0.0, 1.0)
        self.beta_raw = beta_to_raw(beta)
        self.threshold = _param(threshold, "threshold")
        self.refractory = _param(refractory, "refractory")
        self.surrogate = Surrogate("atan", 2.0) if surrogate is None else surrogate
        self.reset = reset
        self.learn_beta = learn_beta
        self.detach_reset = detach_reset

    def __check_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        for name in ("learn_beta", "detach_reset"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.surrogate, Surrogate):
            raise TypeError(f"surrogate must be a Surrogate (e.g. brainfuse_jax.surrogate.atan()), "
                            f"got {type(self.surrogate).__name__}")
        check_finite(self.threshold, "threshold")
        check_positive(self.threshold, "threshold", "(units of the input)")
        check_finite(self.refractory, "refractory")
        check_nonnegative(self.refractory, "refractory", "ms")

    # ---- parameters --------------------------------------------------------------------------
    @property
    def beta(self) -> Float[Array, "..."]:
        """Membrane decay per step, `0.999 * sigmoid(beta_raw)` in [0, 0.999]
        (gradient stopped unless `learn_beta`)."""
        beta = raw_to_beta(self.beta_raw)
        return beta if self.learn_beta else jax.lax.stop_gradient(beta)

    def refractory_steps(self, dt: Real[ArrayLike, ""]) -> Float[Array, "..."]:
        """The refractory period in steps, `round(refractory / dt)` (ties to even)."""
        dt = check_dt(dt)
        return jnp.round(jax.lax.stop_gradient(self.refractory).astype(dt.dtype) / dt)

    def _params(self) -> dict[str, Array]:
        return {"beta": self.beta_raw, "threshold": self.threshold, "refractory": self.refractory}

    def _base_state(self, batch_shape, dtype, v0) -> State:
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        _check_broadcast(self._params(), shape)
        v0 = as_float_array(v0, "v0")
        check_finite(v0, "v0")
        try:
            v = jnp.broadcast_to(v0.astype(dtype), shape)
        except ValueError as err:
            raise ValueError(f"v0 has shape {tuple(v0.shape)}, which does not broadcast to "
                             f"batch_shape {shape}") from err
        return {"v": v, "refractory": jnp.zeros(shape, dtype)}

    # ---- dynamics ----------------------------------------------------------------------------
    def _update(self, state: State, drive, theta, dt) -> tuple[Array, Array, Array]:
        """The shared LIF update: returns `(v_new, spike, refractory_new)`."""
        v, r = state["v"], state["refractory"]
        held = r > 0
        u = jnp.where(held, v, _like(self.beta, v) * v + drive)
        spike = self.surrogate(u - theta)
        spike = jnp.where(held, jnp.zeros_like(spike), spike)
        s_reset = jax.lax.stop_gradient(spike) if self.detach_reset else spike
        if self.reset == "subtract":
            v_new = u - s_reset * theta
        else:
            v_new = u * (1.0 - s_reset)
        n_ref = _like(self.refractory_steps(dt), v)
        r_new = jnp.where(spike > 0, n_ref, jnp.maximum(r - 1.0, 0.0))
        return v_new, spike, r_new

    def step_events(self, state: State, x: Real[ArrayLike, "*b"], events, dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """`step(state, x + events["delta"], dt)`: the summed weights of the spikes delivered
        in this step (units of the threshold) add to the input; no events: `step(state, x, dt)`."""
        events = check_events(self, state, events)
        if "delta" in events:
            x = jnp.asarray(x, state["v"].dtype)
            check_step_input(self, state, x)
            x = x + events["delta"]
        return self.step(state, x, dt)

    def _prepare(self, state: State, x, dt):
        dtype = state["v"].dtype
        x = jnp.asarray(x, dtype)
        check_step_input(self, state, x)
        return x, check_dt(dt).astype(dtype)


_COMMON_ARGS = """
    - `beta`: membrane decay per step, in [0, 1) (scalar or one value per neuron). Stored as
      `beta_raw = logit(beta / 0.999)` and used as `beta = 0.999 * sigmoid(beta_raw)`, so it stays
      in [0, 0.999] whatever an optimiser does to `beta_raw`; values in [0.999, 1) are clamped
      to 0.999. For a membrane time constant `tau` (ms) at step `dt`, `beta = exp(-dt / tau)`.
    - `threshold`: firing threshold, > 0, in units of the input. Learnable.
    - `learn_beta`: if False (default) `beta` is a constant (`stop_gradient`). `beta_raw` (like
      `refractory`) is still an array leaf, with zero gradient: keep frozen leaves away from
      updates that need no gradient (weight decay), e.g. with `eqx.partition`.
    - `reset`: `"subtract"` (default; `v -= threshold` on a spike) or `"zero"` (`v = 0`).
    - `refractory`: refractory period in ms (>= 0, default 0). After a spike the neuron is held
      for `round(refractory / dt)` steps: `v` keeps its post-reset value, input is ignored and no
      spike is emitted. Not learnable.
    - `detach_reset`: stop the gradient through the reset term (default True, as snnTorch; the
      gradient still reaches `threshold` through it).
    - `surrogate`: `Surrogate` for the spike's derivative (default `atan`, slope 2 per unit of
      input)."""


class LIF(_AbstractLIF):
    __doc__ = r"""Leaky integrate-and-fire neuron (discrete time, snnTorch convention).

    $$u_t = \beta v_{t-1} + x_t,\quad s_t = \Theta(u_t - \vartheta),\quad
      v_t = u_t - s_t\vartheta \;\;(\text{or } u_t(1 - s_t))$$

    Eshraghian et al. 2023, "Training spiking neural networks using lessons from deep learning",
    Proc. IEEE 111(9):1016-1054 (see the module docstring for the one-step reset difference).

    State: `{"v": membrane after reset, "refractory": refractory steps left}`, each of the batch
    shape, e.g. `(B, n)`; parameters are scalars or per-neuron arrays `(n,)`. `step(state, x, dt)`
    takes `x` of the batch shape (units of threshold) and `dt` in ms and returns
    `(state, spikes)` with spikes exactly 0.0/1.0.

    **Arguments:**
    """ + _COMMON_ARGS

    def __init__(
        self,
        beta: Real[ArrayLike, "..."] = 0.9,
        threshold: Real[ArrayLike, "..."] = 1.0,
        *,
        learn_beta: bool = False,
        reset: str = "subtract",
        refractory: Real[ArrayLike, "..."] = 0.0,
        detach_reset: bool = True,
        surrogate: Surrogate | None = None,
    ):
        self._init_common(beta, threshold, learn_beta, reset, refractory, detach_reset, surrogate)

    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] = 0.0) -> State:
        """State at `v = v0` (default 0), not refractory, for `batch_shape`, e.g. `(B, n)`."""
        return self._base_state(batch_shape, dtype, v0)

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under input `x` (units of threshold); `(state, spikes)`."""
        x, dt = self._prepare(state, x, dt)
        v, s, r = self._update(state, x, _like(self.threshold, x), dt)
        return {"v": v, "refractory": r}, s


class ALIF(_AbstractLIF):
    __doc__ = r"""Adaptive LIF: a LIF whose threshold rises with each spike and relaxes back.

    $$\vartheta_t = \vartheta_0 + \kappa\,a_{t-1},\quad u_t = \beta v_{t-1} + x_t,\quad
      s_t = \Theta(u_t - \vartheta_t),\quad v_t = u_t - s_t\vartheta_t,\quad
      a_t = \rho\,a_{t-1} + s_t,\quad \rho = e^{-\Delta t/\tau_a}$$

    Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks of spiking
    neurons" (LSNN), NeurIPS. Bellec's trace is $b_t = \rho b_{t-1} + (1-\rho) s_t$ with
    $\vartheta = \vartheta_0 + \beta_a b$; here the trace counts spikes, so `adapt` is
    $\kappa = \beta_a (1 - \rho)$: the threshold increase per spike. The reset subtracts the
    effective threshold $\vartheta_t$.

    State: `{"v", "a": spike trace (spikes), "refractory"}`.

    **Arguments:**
    """ + _COMMON_ARGS + """
    - `adapt`: threshold increase per spike, kappa >= 0, units of the input. Learnable.
    - `tau_adapt`: time constant of the trace in ms (> 0); rho = exp(-dt / tau_adapt)."""

    adapt: Float[Array, "..."]
    tau_adapt: Float[Array, "..."]

    def __init__(
        self,
        beta: Real[ArrayLike, "..."] = 0.9,
        threshold: Real[ArrayLike, "..."] = 1.0,
        adapt: Real[ArrayLike, "..."] = 0.1,
        tau_adapt: Real[ArrayLike, "..."] = 200.0,
        *,
        learn_beta: bool = False,
        reset: str = "subtract",
        refractory: Real[ArrayLike, "..."] = 0.0,
        detach_reset: bool = True,
        surrogate: Surrogate | None = None,
    ):
        self._init_common(beta, threshold, learn_beta, reset, refractory, detach_reset, surrogate)
        self.adapt = _param(adapt, "adapt")
        self.tau_adapt = _param(tau_adapt, "tau_adapt")

    def __check_init__(self):
        check_finite(self.adapt, "adapt")
        check_nonnegative(self.adapt, "adapt", "(units of the input per spike)")
        check_finite(self.tau_adapt, "tau_adapt")
        check_positive(self.tau_adapt, "tau_adapt", "ms")

    def _params(self) -> dict[str, Array]:
        return {**super()._params(), "adapt": self.adapt, "tau_adapt": self.tau_adapt}

    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] = 0.0) -> State:
        """State at `v = v0`, trace `a = 0`, not refractory."""
        state = self._base_state(batch_shape, dtype, v0)
        return {**state, "a": jnp.zeros_like(state["v"])}

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under input `x` (units of threshold); `(state, spikes)`."""
        x, dt = self._prepare(state, x, dt)
        a = state["a"]
        theta = _like(self.threshold, a) + _like(self.adapt, a) * a
        v, s, r = self._update(state, x, theta, dt)
        a_new = _like(decay(dt, self.tau_adapt.astype(dt.dtype)), a) * a + s
        return {"v": v, "a": a_new, "refractory": r}, s


class RecurrentLIF(_AbstractLIF):
    __doc__ = r"""LIF population with lateral (recurrent) weights on the previous step's spikes.

    $$u_t = \beta v_{t-1} + x_t + s_{t-1} W,\quad s_t = \Theta(u_t - \vartheta),\quad
      v_t = u_t - s_t\vartheta$$

    `W[i, j]` is the weight from neuron `i` to neuron `j` (units of threshold per spike); the
    state keeps the last spikes, `{"v", "s", "refractory"}`, all of shape `(..., n)` with the
    neuron axis last (e.g. `batch_shape=(B, n)`). As snnTorch's `RLeaky` (Eshraghian et al. 2023)
    with an all-to-all linear recurrence.

    **Arguments:**
    - `n`: number of neurons (may be omitted when `weight` is given).
    - `key`: PRNG key for `W ~ Normal(0, gain^2 / n)` (exactly one of `key`, `weight`).
    - `weight`: an explicit `(n, n)` matrix instead.
    - `gain`: scale of the random initialisation (default 1).
    """ + _COMMON_ARGS

    weight: Float[Array, "n n"]

    def __init__(
        self,
        n: int | None = None,
        *,
        key: PRNGKeyArray | None = None,
        weight: Real[ArrayLike, "..."] | None = None,  # (n, n), checked below
        gain: float | int = 1.0,
        beta: Real[ArrayLike, "..."] = 0.9,
        threshold: Real[ArrayLike, "..."] = 1.0,
        learn_beta: bool = False,
        reset: str = "subtract",
        refractory: Real[ArrayLike, "..."] = 0.0,
        detach_reset: bool = True,
        surrogate: Surrogate | None = None,
    ):
        if (key is None) == (weight is None):
            raise TypeError("RecurrentLIF needs exactly one of key (PRNG key for a random W) or "
                            "weight (an (n, n) matrix)")
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ValueError(f"n must be a positive int (number of neurons), got {n!r}")
        if weight is not None:
            weight = _param(weight, "weight")
            if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
                raise ValueError(f"weight must be a square (n, n) matrix, got shape {weight.shape}")
            if n is not None and weight.shape[0] != n:
                raise ValueError(f"weight must have shape ({n}, {n}) for n={n}, got {weight.shape}")
        else:
            if n is None:
                raise TypeError("n (number of neurons) is required when W is drawn from key")
            n = int(n)
            weight = gain / np.sqrt(n) * jax.random.normal(key, (n, n), jnp.result_type(float))
        self.weight = weight
        self._init_common(beta, threshold, learn_beta, reset, refractory, detach_reset, surrogate)

    def __check_init__(self):
        check_finite(self.weight, "weight")

    @property
    def n(self) -> int:
        """Number of neurons."""
        return self.weight.shape[0]

    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] = 0.0) -> State:
        """State at `v = v0`, no previous spikes; `batch_shape` must end with `n`, e.g. `(B, n)`."""
        shape = normalize_batch_shape(batch_shape)
        if not shape or shape[-1] != self.n:
            raise ValueError(f"batch_shape must end with the number of neurons n={self.n}, "
                             f"e.g. (B, {self.n}); got {shape}")
        state = self._base_state(shape, dtype, v0)
        return {**state, "s": jnp.zeros_like(state["v"])}

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under input `x` (units of threshold); `(state, spikes)`."""
        x, dt = self._prepare(state, x, dt)
        drive = x + state["s"] @ self.weight.astype(x.dtype)
        v, s, r = self._update(state, drive, _like(self.threshold, x), dt)
        return {"v": v, "s": s, "refractory": r}, s
