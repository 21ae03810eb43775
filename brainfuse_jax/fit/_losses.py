r"""Trace losses for fitting: voltage distances, differentiable spike losses, summary features.

Every loss is an `equinox.Module` called as `loss(pred, target, dt) -> scalar`, where `pred` and
`target` are `(B, T)` traces (B sweeps, T samples every `dt` ms; membrane potential in mV for all
but `MSE`/`SMAPE`, which take any unit) and the result is averaged over the sweeps. Losses add and
scale: `MSE() + 10.0 * VanRossum(tau=5.0)` is a loss.

Spike losses use *soft spikes* (`soft_spikes`): with $\sigma_k = \text{sigmoid}((V_k -
\theta)/w)$ ($\theta$ the threshold, $w$ the width, both in mV), the soft spike at sample k is
$s_k = \max(\sigma_k - \sigma_{k-1}, 0)$. A spike that rises through $\theta$ contributes
$\approx 1$ in total (to within $\sigma$ at its foot and peak, ~1e-9 for an HH spike at the
default $w = 1$ mV), so $\sum_k s_k$ is a spike count that is differentiable in $V$ and moves
smoothly when a spike shifts in time or shrinks below threshold.
"""

from __future__ import annotations

import abc
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def _check_pair(pred, target, name: str):
    pred, target = jnp.asarray(pred), jnp.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred and target must have the same shape, got {pred.shape} and "
                         f"{target.shape}")
    if pred.ndim != 2:
        raise ValueError(f"{name}: traces must have shape (B, T) = (sweeps, samples), got {pred.shape}")
    return pred, target.astype(pred.dtype)


class Loss(eqx.Module):
    """Base class: `loss(pred, target, dt)` with `(B, T)` traces and `dt` in ms -> scalar.

    Subclasses implement `__call__`. `a + b`, `w * a` and `a * w` build weighted sums.
    """

    @abc.abstractmethod
    def __call__(self, pred: Float[Array, "B T"], target: Float[Array, "B T"],
                 dt: float) -> Float[Array, ""]:
        """The loss of `pred` against `target` (both `(B, T)`, sampled every `dt` ms)."""

    def __add__(self, other):
        if not isinstance(other, Loss):
            return NotImplemented
        return Sum((*_terms(self), *_terms(other)))

    def __mul__(self, weight):
        if isinstance(weight, Loss) or not isinstance(weight, (int, float)):
            return NotImplemented
        return Sum(tuple((w * float(weight), t) for w, t in _terms(self)))

    __rmul__ = __mul__


def _terms(loss: Loss) -> tuple[tuple[float, Loss], ...]:
    return loss.terms if isinstance(loss, Sum) else ((1.0, loss),)


class Sum(Loss):
    """A weighted sum of losses: `terms` is a tuple of `(weight, loss)` pairs."""

    terms: tuple[tuple[float, Loss], ...]

    def __call__(self, pred, target, dt):
        return sum(w * loss(pred, target, dt) for w, loss in self.terms)


class MSE(Loss):
    """Mean squared error over sweeps and samples, in (unit of the trace)^2: mV^2 for voltage."""

    def __call__(self, pred, target, dt):
        pred, target = _check_pair(pred, target, "MSE")
        return jnp.mean((pred - target) ** 2)


class SMAPE(Loss):
    r"""Symmetric mean absolute percentage error, dimensionless in [0, 2]:
    $\text{mean}_k\; 2|p_k - t_k| / (|p_k| + |t_k| + \epsilon)$.

    Scale-free, so sweeps of different amplitude weigh alike. On membrane potentials the
    denominator is smallest near 0 mV, so samples around spike threshold weigh most. `eps`
    (unit of the trace) keeps it finite where both traces are 0.
    """

    eps: float = eqx.field(default=1e-6, static=True)

    def __call__(self, pred, target, dt):
        pred, target = _check_pair(pred, target, "SMAPE")
        return jnp.mean(2.0 * jnp.abs(pred - target) / (jnp.abs(pred) + jnp.abs(target) + self.eps))


def soft_spikes(v: Float[ArrayLike, "*B T"], threshold: float = 0.0, width: float = 1.0
                ) -> Float[Array, "*B T"]:
    r"""Soft spike train of a voltage trace `v` (mV, time last): $s_k = \max(\sigma_k -
    \sigma_{k-1}, 0)$, $\sigma_k = \text{sigmoid}((V_k - \text{threshold}) / \text{width})$,
    $s_0 = 0$. Dimensionless; each upward threshold crossing sums to ~1. `threshold` and `width`
    in mV."""
    v = jnp.asarray(v)
    sig = jax.nn.sigmoid((v - threshold) / width)
    return jnp.concatenate([jnp.zeros_like(sig[..., :1]), jax.nn.relu(jnp.diff(sig, axis=-1))], axis=-1)


def _exp_filter(s, decay):
    """f_k = decay * f_{k-1} + s_k along the last axis (f_{-1} = 0)."""
    def body(f, sk):
        f = decay * f + sk
        return f, f

    _, f = jax.lax.scan(body, jnp.zeros_like(s[..., 0]), jnp.moveaxis(s, -1, 0))
    return jnp.moveaxis(f, 0, -1)


class SpikeCount(Loss):
    """Squared difference of soft spike counts (`soft_spikes` summed over time), in spikes^2,
    averaged over sweeps. Differentiable; blind to spike timing (combine with `VanRossum` or
    `MSE` for that). `threshold`, `width` in mV."""

    threshold: float = eqx.field(default=0.0, static=True)
    width: float = eqx.field(default=1.0, static=True)

    def __call__(self, pred, target, dt):
        pred, target = _check_pair(pred, target, "SpikeCount")
        n_pred = soft_spikes(pred, self.threshold, self.width).sum(axis=-1)
        n_tgt = soft_spikes(target, self.threshold, self.width).sum(axis=-1)
        return jnp.mean((n_pred - n_tgt) ** 2)


class VanRossum(Loss):
    r"""Van Rossum (2001) distance between the soft spike trains of two voltage traces.

    Each spike train is filtered with a causal exponential kernel $e^{-t/\tau}$ (jump 1 per spike)
    and $D^2 = \frac{1}{\tau}\int (f_\text{pred} - f_\text{target})^2\,dt$, computed as
    $\frac{dt}{\tau}\sum_k(\cdot)^2$ and averaged over sweeps. Unit: spikes — an unmatched spike
    adds 1/2, two spikes `delta` ms apart add $1 - e^{-\delta/\tau}$, so the loss sees timing on
    the scale `tau`. Differentiable in V through `soft_spikes` (`threshold`, `width` in mV).

    van Rossum, M. C. W. (2001). A novel spike distance. Neural Computation 13, 751-763.
    """

    tau: float = eqx.field(default=5.0, static=True)
    threshold: float = eqx.field(default=0.0, static=True)
    width: float = eqx.field(default=1.0, static=True)

    def __check_init__(self):
        if not self.tau > 0:
            raise ValueError(f"VanRossum: tau must be > 0 ms, got {self.tau!r}")

    def __call__(self, pred, target, dt):
        pred, target = _check_pair(pred, target, "VanRossum")
        decay = jnp.exp(jnp.asarray(-dt / self.tau, pred.dtype))
        diff = (soft_spikes(pred, self.threshold, self.width)
                - soft_spikes(target, self.threshold, self.width))
        f = _exp_filter(diff, decay)  # linear filter: filter(a) - filter(b) = filter(a - b)
        return jnp.mean(jnp.sum(f ** 2, axis=-1)) * (dt / self.tau)


def spike_features(v: Float[ArrayLike, "B T"], dt: float, *, threshold: float = 0.0,
                   width: float = 1.0, max_spikes: int = 1024) -> dict[str, Float[Array, "B"]]:
    """Summary features of voltage traces `v` (`(B, T)`, mV, one sample every `dt` ms), each of
    shape `(B,)` and differentiable in `v`:

    - `"count"`: soft spike count (`soft_spikes` summed), spikes.
    - `"rate"`: `count / (T dt)`, Hz.
    - `"isi_cv"`: coefficient of variation (std / mean, population std) of the inter-spike
      intervals, dimensionless; spike times are upward `threshold` crossings linearly interpolated
      between samples (differentiable in V), the first `max_spikes` per sweep; 0 with fewer than
      3 spikes.
    - `"spike_height"`: mean peak potential of the spikes (local maxima above `threshold`), mV;
      with no spike, the trace's maximum (so a silent trace is pulled towards threshold).
    """
    v = jnp.asarray(v)
    if v.ndim != 2:
        raise ValueError(f"v must have shape (B, T) = (sweeps, samples), got {v.shape}")
    return _spike_features(v, float(dt), float(threshold), float(width), int(max_spikes))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))  # one compiled call when used eagerly
def _spike_features(v, dt, threshold, width, max_spikes):
    n_samples = v.shape[-1]
    count = soft_spikes(v, threshold, width).sum(axis=-1)
    rate = count / (n_samples * dt) * 1e3
    return {"count": count, "rate": rate,
            "isi_cv": jax.vmap(lambda x: _isi_cv(x, dt, threshold, max_spikes))(v),
            "spike_height": jax.vmap(lambda x: _spike_height(x, threshold))(v)}


def _isi_cv(v, dt, threshold, max_spikes):
    up = (v[:-1] < threshold) & (v[1:] >= threshold)
    n = jnp.minimum(up.sum(), max_spikes)
    (idx,) = jnp.nonzero(up, size=max_spikes, fill_value=0)
    v0, v1 = v[idx], v[idx + 1]
    slope = jnp.where(v1 > v0, v1 - v0, 1.0)  # > 0 at a genuine crossing
    t = (idx.astype(v.dtype) + (threshold - v0) / slope) * dt
    j = jnp.arange(max_spikes - 1)
    valid = j < n - 1  # intervals between consecutive spikes
    n_isi = jnp.maximum(valid.sum(), 1).astype(v.dtype)
    isi = jnp.where(valid, jnp.diff(t), 0.0)
    mean = isi.sum() / n_isi
    var = jnp.where(valid, (isi - mean) ** 2, 0.0).sum() / n_isi
    ok = (n >= 3) & (var > 0)
    std = jnp.sqrt(jnp.where(ok, var, 1.0))
    return jnp.where(ok, std / jnp.where(ok, mean, 1.0), 0.0)


def _spike_height(v, threshold):
    peak = (v[1:-1] >= threshold) & (v[1:-1] >= v[:-2]) & (v[1:-1] > v[2:])
    n = peak.sum()
    mean_peak = jnp.where(peak, v[1:-1], 0.0).sum() / jnp.maximum(n, 1).astype(v.dtype)
    return jnp.where(n > 0, mean_peak, v.max())


class Features(Loss):
    r"""Summary-feature loss: $\text{mean over sweeps} \sum_f ((f_\text{pred} - f_\text{target})
    / s_f)^2$, dimensionless, over the features of `spike_features`.

    Each argument is the feature's scale $s_f$ in its own unit — the difference that costs 1 —
    or `None` to leave the feature out: `rate` (Hz, default 1), `isi_cv` (dimensionless, default
    0.1), `spike_height` (mV, default 1). `threshold`, `width` (mV) and `max_spikes` as in
    `spike_features`.
    """

    rate: float | None = eqx.field(default=1.0, static=True)
    isi_cv: float | None = eqx.field(default=0.1, static=True)
    spike_height: float | None = eqx.field(default=1.0, static=True)
    threshold: float = eqx.field(default=0.0, static=True)
    width: float = eqx.field(default=1.0, static=True)
    max_spikes: int = eqx.field(default=1024, static=True)

    def __check_init__(self):
        scales = {"rate": self.rate, "isi_cv": self.isi_cv, "spike_height": self.spike_height}
        for name, s in scales.items():
            if s is not None and not s > 0:
                raise ValueError(f"Features: {name} must be a positive scale or None, got {s!r}")
        if all(s is None for s in scales.values()):
            raise ValueError("Features: at least one of rate, isi_cv, spike_height must be given")

    def __call__(self, pred, target, dt):
        pred, target = _check_pair(pred, target, "Features")
        kw = dict(threshold=self.threshold, width=self.width, max_spikes=self.max_spikes)
        fp, ft = spike_features(pred, dt, **kw), spike_features(target, dt, **kw)
        total = 0.0
        for name, s in (("rate", self.rate), ("isi_cv", self.isi_cv),
                        ("spike_height", self.spike_height)):
            if s is not None:
                total = total + ((fp[name] - ft[name]) / s) ** 2
        return jnp.mean(total)
