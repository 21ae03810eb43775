r"""Losses and regularisers for spiking networks.

| name | what |
|---|---|
| `cross_entropy` | softmax cross-entropy of logits `(B, C)` against integer labels |
| `rate_cross_entropy` | cross-entropy on spike counts of an output layer `(B, T, C)` |
| `membrane_cross_entropy` | cross-entropy on a membrane trace `(B, T, C)` reduced by mean / max / last |
| `firing_rate_loss` | per-neuron firing-rate target regulariser |
| `variance_invariance_loss` | the variance + invariance terms of VICReg between two views |
| `accuracy` | fraction of correct argmax predictions |
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from ._checks import check_labels, check_sequence
from ._readouts import reduce_time


def _logits(logits, name="logits"):
    if isinstance(logits, (str, bytes)) or logits is None:
        raise TypeError(f"{name} must be a float array of shape (B, C), got {type(logits).__name__}")
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (B, C) = (batch, classes), got {tuple(logits.shape)}"
                         + (" (reduce the time axis first, e.g. with membrane_cross_entropy)" if logits.ndim == 3 else ""))
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        raise TypeError(f"{name} must be floating point, got {logits.dtype}")
    return logits


def cross_entropy(logits: Float[Array, "B C"], labels: Int[ArrayLike, " B"]) -> Float[Array, ""]:
    r"""Mean softmax cross-entropy, $-\frac1B\sum_b \log \mathrm{softmax}(z_b)_{y_b}$ (nats).

    **Arguments:** `logits` `(B, C)`; `labels` integer class indices `(B,)` in [0, C).
    Out-of-range labels raise `ValueError` (or a runtime error under `jit`).
    """
    logits = _logits(logits)
    labels = check_labels(labels, "labels", logits.shape[1], logits.shape[0])
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=1))


def rate_cross_entropy(spikes: Float[Array, "B T C"], labels: Int[ArrayLike, " B"],
                       scale: float = 1.0) -> Float[Array, ""]:
    """Cross-entropy on rate-coded outputs: logits = `scale` * spike counts over time of an
    output layer with one neuron per class."""
    spikes = check_sequence(spikes, "spikes")
    return cross_entropy(scale * jnp.sum(spikes, axis=1), labels)


def membrane_cross_entropy(v: Float[Array, "B T C"], labels: Int[ArrayLike, " B"],
                           reduce: str = "mean") -> Float[Array, ""]:
    """Cross-entropy on a membrane readout `(B, T, C)` (e.g. `LeakyReadout(reduce="none")`)
    reduced over time by `"mean"`, `"max"` or `"last"`."""
    v = check_sequence(v, "v")
    if reduce == "none":
        raise ValueError("reduce must be 'mean', 'max' or 'last' for a loss, got 'none'")
    return cross_entropy(reduce_time(v, reduce), labels)


def firing_rate_loss(spikes: Float[Array, "B T n"], target: float | Float[ArrayLike, " n"],
                     *, per_neuron: bool = True) -> Float[Array, ""]:
    r"""Firing-rate target regulariser: $\frac1n\sum_i (r_i - r^*)^2$ with $r_i$ the mean spikes
    per frame of neuron $i$ over batch and time (`per_neuron=True`), or $(\bar r - r^*)^2$ for the
    layer mean. `target` in spikes per frame (for a rate in Hz: `hz * frame_ms / 1000`)."""
    spikes = check_sequence(spikes, "spikes")
    target = jnp.asarray(target, spikes.dtype)
    if target.ndim > 1 or (target.ndim == 1 and target.shape[0] != spikes.shape[-1]):
        raise ValueError(f"target must be a scalar or have shape ({spikes.shape[-1]},), got {tuple(target.shape)}")
    if per_neuron:
        r = jnp.mean(spikes, axis=tuple(range(spikes.ndim - 1)))
        return jnp.mean((r - jnp.broadcast_to(target, r.shape)) ** 2)
    if target.ndim:
        raise ValueError("per_neuron=False needs a scalar target")
    return (jnp.mean(spikes) - target) ** 2


def variance_invariance_loss(
    z1: Float[Array, "B d"],
    z2: Float[Array, "B d"],
    *,
    gamma: float = 1.0,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    eps: float = 1e-4,
) -> Float[Array, ""]:
    r"""Variance-invariance loss between two views of a batch (the variance and invariance terms
    of VICReg; Bardes, Ponce & LeCun 2022, "VICReg: Variance-Invariance-Covariance Regularization
    for Self-Supervised Learning", ICLR):

    $$L = \lambda\,\frac{1}{B}\sum_b \lVert z^1_b - z^2_b\rVert^2 / d
        \;+\; \mu\,\big[v(z^1) + v(z^2)\big],\qquad
      v(z) = \frac1d\sum_j \max\!\big(0,\; \gamma - \sqrt{\mathrm{Var}_b(z_{bj}) + \epsilon}\big)$$

    With spiking layers `z` is typically a rate or count representation `(B, d)` of the same
    inputs under two perturbations (e.g. clean and noisy): the invariance term pulls the two
    views together, the variance term keeps every feature's spread over the batch at least
    `gamma`, which prevents the collapse to silent (or saturated) neurons that invariance alone
    rewards. Default weights are VICReg's (lambda = mu = 25).
    """
    for name, z in (("z1", z1), ("z2", z2)):
        if jnp.ndim(z) != 2:
            raise ValueError(f"{name} must have shape (B, d) = (batch, features), got {tuple(jnp.shape(z))}")
    z1, z2 = jnp.asarray(z1), jnp.asarray(z2)
    if z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must have the same shape, got {z1.shape} and {z2.shape}")
    if z1.shape[0] < 2:
        raise ValueError(f"the variance term needs a batch of at least 2, got {z1.shape[0]}")
    inv = jnp.mean((z1 - z2) ** 2)

    def var_term(z):
        std = jnp.sqrt(jnp.var(z, axis=0) + eps)
        return jnp.mean(jax.nn.relu(gamma - std))

    return invariance_weight * inv + variance_weight * (var_term(z1) + var_term(z2))


def accuracy(logits: Float[Array, "B C"], labels: Int[ArrayLike, " B"]) -> Float[Array, ""]:
    """Fraction of samples whose argmax logit is the label."""
    logits = _logits(logits)
    labels = check_labels(labels, "labels", logits.shape[1], logits.shape[0])
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(logits.dtype))
