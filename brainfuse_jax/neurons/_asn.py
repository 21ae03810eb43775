r"""The adaptive spiking neuron (ASN): integer-valued training, spike-driven inference.

One time step of `dt` ms, with membrane time constant $\tau_m$, rest $v_\text{rest}$, base
threshold $\vartheta_0$, adaptation strength $\kappa$ and adaptation time constant $\tau_a$:

$$\vartheta_t = \vartheta_0 + \kappa\,a_{t-1}, \qquad
  d_t = e^{-\Delta t/\tau_m}\,(v_{t-1} - v_\text{rest}) + x_t, \qquad
  q_t = d_t / \vartheta_t$$

$$n_t = \min\big(D, \max(0, \lfloor q_t \rfloor)\big), \qquad
  v_t = v_\text{rest} + \vartheta_t\,(q_t - n_t), \qquad
  a_t = e^{-\Delta t/\tau_a}\,a_{t-1} + n_t$$

$n_t \in \{0, \dots, D\}$ is the number of spikes of the step (`D = max_spikes`): the number of
times the depolarisation $d_t$ contains the threshold, each spike subtracting one threshold
(reset by subtraction; what is left above $D\vartheta_t$ stays in the membrane). The threshold
of the step is fixed by the trace of the previous steps (Bellec et al. 2018; Yin, Corradi &
Bohte 2021, "Accurate and efficient time-domain classification with adaptive spiking recurrent
neural networks", Nat. Mach. Intell. 3:905).

Two `mode`s compute the same $n_t$ and the same new state, bit for bit:

* `"train"` — integer-valued training (Luo et al. 2024, "Integer-valued training and
  spike-driven inference spiking neural network for high-performance and energy-efficient object
  detection", ECCV; SpikeYOLO's I-LIF): $n_t$ in one shot, with a straight-through gradient
  $\partial n_t / \partial q_t = 1$ for $0 < q_t < D$ (0 outside).
* `"infer"` — spike-driven inference: the step is replayed as $D$ binary sub-steps on the
  membrane measured in thresholds, $r_0 = q_t$; sub-step $k$ emits $s_k = [r_{k-1} \ge 1]$ and
  subtracts one threshold, $r_k = r_{k-1} - s_k$; then $n_t = \sum_k s_k$ and $q_t - n_t = r_D$.

Why the two are exactly equal in floating point: both modes share $q_t$, and every later
operation is exact. For $|q| < 2^{p}$ ($p$ = 24 in float32, 53 in float64) the spacing of the
floats near $q$ is at most 1, so $q - k$ for integers $0 \le k \le q$ is representable: each
sub-step subtraction $r_{k-1} - 1$ and the one-shot $q - n$ are exact, the comparisons are exact,
$[r_{k-1} \ge 1] = [q \ge k]$, hence $\sum_k s_k = \min(D, \lfloor q \rfloor)$ and $r_D = q - n$
exactly; the new state, $v_\text{rest} + \vartheta_t r$ and $\rho a + n$, is then the same
expression on identical values. (Repeated subtraction of $\vartheta$ in membrane units would round differently from
$d - n\vartheta$, which is why the replay works in threshold units.) The gradients of the two modes
agree as well: sub-step $k$ carries the straight-through ramp $\mathrm{clip}(q - k + 1, 0, 1)$, and
these ramps sum to $\mathrm{clip}(q, 0, D)$.

The reset is detached from the gradient ($\partial v_t/\partial d_t = 1$, $\partial v_t /
\partial \vartheta_t = -n_t$): with a straight-through count, an attached reset would cancel the
membrane's gradient through time exactly.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._validate import as_float_array, check_dt, check_finite, check_nonnegative, check_positive
from ._base import AbstractNeuron, State, check_step_input, normalize_batch_shape, resolve_dtype
from ._lif import _check_broadcast, _like, _param, decay

MODES = ("train", "infer")
# Where it divides, the adaptive threshold is floored at this value (units of v), so a trained
# threshold that wanders to <= 0 cannot divide by zero.
THRESHOLD_MIN = 1e-6


def _ste(exact, ramp):
    """`exact` in the forward pass, the derivative of `ramp` in the backward pass."""
    return exact + (ramp - jax.lax.stop_gradient(ramp))


def integer_spikes(q: Float[Array, "*b"], max_spikes: int) -> tuple[Float[Array, "*b"], Float[Array, "*b"]]:
    """Training mode: `(count, residual)` for a membrane `q` in units of threshold.

    `count = clip(floor(q), 0, D)` exactly (with straight-through gradient 1 on 0 < q < D) and
    `residual = q - count` (gradient 1 in `q`: the count is detached there).
    """
    n = jax.lax.stop_gradient(jnp.clip(jnp.floor(q), 0, max_spikes))
    count = _ste(n, jnp.clip(q, 0, max_spikes))
    return count, q - n


def binary_spikes(q: Float[Array, "*b"], max_spikes: int) -> tuple[Float[Array, "*b d"], Float[Array, "*b"]]:
    """Inference mode: `(spikes, residual)`, `D = max_spikes` binary sub-steps of `q` (thresholds).

    Sub-step k fires iff the residual has reached one threshold, `r >= 1`, and then subtracts it,
    `r -= 1`. `spikes[..., k-1]` is exactly 0.0 or 1.0 (straight-through ramp
    `clip(q - k + 1, 0, 1)` in the backward pass); their sum equals `integer_spikes`' count.
    """
    r = jax.lax.stop_gradient(q)
    spikes = []
    for k in range(1, max_spikes + 1):
        s = (r >= 1).astype(q.dtype)
        r = r - s
        spikes.append(_ste(s, jnp.clip(q - (k - 1), 0, 1)))
    # == r (exactly, see the module docstring) with gradient 1 in q; r itself where q = +-inf
    residual = jnp.where(jnp.isfinite(q), _ste(r, q), r)
    return jnp.stack(spikes, axis=-1), residual


class ASN(AbstractNeuron):
    r"""Adaptive spiking neuron with integer-valued training and spike-driven inference.

    See the module docstring for the equations and the proof that `mode="train"` and
    `mode="infer"` give identical spike counts and states. State: `{"v": membrane (units of v),
    "a": adaptation trace (spikes)}`. `step(state, x, dt)` returns `(state, counts)` with counts
    in {0, ..., max_spikes} (exact integers as floats) in both modes; `spike_train` returns the
    binary sub-step spikes themselves.

    **Arguments** (parameters are scalars or per-neuron arrays `(n,)`, all learnable):
    - `tau_m`: membrane time constant in ms, > 0; decay per step exp(-dt / tau_m).
    - `v_rest`: resting potential (mV-like units, the units of `v` and `x`).
    - `threshold`: base threshold above rest, > 0 (units of v).
    - `adapt`: threshold increase per spike, >= 0 (units of v per spike).
    - `tau_adapt`: adaptation time constant in ms, > 0.
    - `max_spikes`: D, the most spikes per step (int >= 1). Static.
    - `mode`: `"train"` or `"infer"`. Static; switch with `with_mode`.

    `x` is the depolarisation added in one step (units of v; a current I through a resistance R
    corresponds to `x = (1 - exp(-dt/tau_m)) R I`). Where they are used, `tau_m` and
    `tau_adapt` are floored at 1e-3 ms and the effective threshold at 1e-6 so training cannot
    produce NaN; the train/infer equality holds while |v - v_rest| < 2^24 thresholds (float32).
    """

    tau_m: Float[Array, "..."]
    v_rest: Float[Array, "..."]
    threshold: Float[Array, "..."]
    adapt: Float[Array, "..."]
    tau_adapt: Float[Array, "..."]
    max_spikes: int = eqx.field(static=True)
    mode: str = eqx.field(static=True)

    def __init__(
        self,
        tau_m: Real[ArrayLike, "..."] = 20.0,
        v_rest: Real[ArrayLike, "..."] = 0.0,
        threshold: Real[ArrayLike, "..."] = 1.0,
        adapt: Real[ArrayLike, "..."] = 0.1,
        tau_adapt: Real[ArrayLike, "..."] = 100.0,
        *,
        max_spikes: int | np.integer = 4,
        mode: str = "train",
    ):
        self.tau_m = _param(tau_m, "tau_m")
        self.v_rest = _param(v_rest, "v_rest")
        self.threshold = _param(threshold, "threshold")
        self.adapt = _param(adapt, "adapt")
        self.tau_adapt = _param(tau_adapt, "tau_adapt")
        if isinstance(max_spikes, bool) or not isinstance(max_spikes, (int, np.integer)):
            raise TypeError(f"max_spikes must be an int >= 1 (most spikes per step), got {max_spikes!r}")
        self.max_spikes = int(max_spikes)
        self.mode = mode

    def __check_init__(self):
        if self.max_spikes < 1:
            raise ValueError(f"max_spikes must be an int >= 1 (most spikes per step), got {self.max_spikes}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("tau_m", "v_rest", "threshold", "adapt", "tau_adapt"):
            check_finite(getattr(self, name), name)
        check_positive(self.tau_m, "tau_m", "ms")
        check_positive(self.threshold, "threshold", "(units of v)")
        check_nonnegative(self.adapt, "adapt", "(units of v per spike)")
        check_positive(self.tau_adapt, "tau_adapt", "ms")

    def with_mode(self, mode: str) -> ASN:
        """The same neuron (same parameter arrays) in `mode` (`"train"` or `"infer"`)."""
        return dataclasses.replace(self, mode=mode)

    # ---- state -------------------------------------------------------------------------------
    def init_state(self, batch_shape, dtype=None, v0: Real[ArrayLike, "..."] | None = None) -> State:
        """State at `v = v0` (default `v_rest`) with no adaptation, `a = 0`."""
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        _check_broadcast({n: getattr(self, n) for n in ("tau_m", "v_rest", "threshold", "adapt",
                                                         "tau_adapt")}, shape)
        v0 = self.v_rest if v0 is None else as_float_array(v0, "v0")
        check_finite(v0, "v0")
        try:
            v = jnp.broadcast_to(v0.astype(dtype), shape)
        except ValueError as err:
            raise ValueError(f"v0 has shape {tuple(v0.shape)}, which does not broadcast to "
                             f"batch_shape {shape}") from err
        return {"v": v, "a": jnp.zeros(shape, dtype)}

    # ---- dynamics ----------------------------------------------------------------------------
    def _begin(self, state: State, x, dt):
        v, a = state["v"], state["a"]
        dtype = v.dtype
        x = jnp.asarray(x, dtype)
        check_step_input(self, state, x)
        dt = check_dt(dt).astype(dtype)
        v_rest = _like(self.v_rest, v)
        theta = jnp.maximum(_like(self.threshold, a) + _like(self.adapt, a) * a, THRESHOLD_MIN)
        d = _like(decay(dt, self.tau_m.astype(dtype)), v) * (v - v_rest) + x
        return d / theta, theta, v_rest, dt

    def _end(self, state: State, count, residual, theta, v_rest, dt) -> State:
        a = state["a"]
        return {"v": v_rest + theta * residual,
                "a": _like(decay(dt, self.tau_adapt.astype(a.dtype)), a) * a + count}

    def spike_train(
        self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]
    ) -> tuple[State, Float[Array, "*b d"]]:
        """One step as `max_spikes` binary sub-steps (the `"infer"` computation, whatever `mode`).

        Returns `(state, spikes)` with `spikes[..., k]` exactly 0.0/1.0 and non-increasing in
        `k`; `spikes.sum(-1)` is `step`'s count and the state is `step`'s state.
        """
        q, theta, v_rest, dt = self._begin(state, x, dt)
        spikes, residual = binary_spikes(q, self.max_spikes)
        return self._end(state, jnp.sum(spikes, axis=-1), residual, theta, v_rest, dt), spikes

    def step(self, state: State, x: Real[ArrayLike, "*b"], dt: Real[ArrayLike, ""]) -> tuple[State, Float[Array, "*b"]]:
        """Advance one step of `dt` ms under input `x` (units of v); `(state, spike counts)`."""
        if self.mode == "infer":
            new, spikes = self.spike_train(state, x, dt)
            return new, jnp.sum(spikes, axis=-1)
        q, theta, v_rest, dt = self._begin(state, x, dt)
        count, residual = integer_spikes(q, self.max_spikes)
        return self._end(state, count, residual, theta, v_rest, dt), count
