r"""Input encoders: analogue data `(B, ...)` -> spike (or current) sequences `(B, T, ...)`.

| encoder | input | output | random | gradient |
|---|---|---|---|---|
| `rate` | intensities `(B, ...)` in [0, 1] | `(B, T, ...)` 0/1 spikes (Bernoulli) or counts (Poisson) | yes (`key`) | straight-through |
| `latency`, `latency_times` | intensities `(B, ...)` | `(B, T, ...)`, one spike per input at most / first-spike times `(B, ...)` in steps | no | zero (spikes); exact (times) |
| `delta`, `delta_reconstruct` | sequences `(B, T, ...)` | on/off spike counts `(B, T, ..., 2)` (or `(B, T, ..., 2F)`) / the signal back | no | zero |
| `receptive_fields`, `population`, `PopulationEncoder` | values `(B, ...)` in any range | activations `(B, ..., n)` / `(B, T, ..., n)` rates or spikes | spikes only | exact (rates, learnable centres and widths in the module); straight-through (spikes) |
| `direct` | any `(B, ...)` | `(B, T, ...)`: the value held for T steps (an analogue current) | no | exact |

Times are in steps (frames) of the network that reads the sequence; a rate in spikes per step is
`f * dt / 1000` for a frequency `f` in Hz and frames of `dt` ms. Every encoder checks its
arguments eagerly (a `ValueError`/`TypeError` naming the argument) and its data too when concrete
(NaN or inf -> `ValueError`); under `jit` the data check is a runtime `error_if`.
"""

from __future__ import annotations

import functools
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import as_float_array, check_finite, is_concrete
from ._checks import check_positive_int

Gradient = Literal["expected", "identity", "none"]
GRADIENTS = ("expected", "identity", "none")


# ----------------------------------------------------------------------------------------------
# argument checks


def _data(x, name: str, min_ndim: int, layout: str):
    """`x` as a finite float array with at least `min_ndim` axes and a non-empty batch (and time)."""
    if isinstance(x, (dict, list, tuple)):
        raise TypeError(f"{name} must be an array of shape {layout}, got {type(x).__name__}")
    arr = as_float_array(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have shape {layout}; got shape {tuple(arr.shape)}"
                         + (" (add a batch axis with x[None])" if arr.ndim == min_ndim - 1 else ""))
    if any(s == 0 for s in arr.shape[:min_ndim]):
        raise ValueError(f"{name} must have shape {layout} with non-empty leading axes; got {tuple(arr.shape)}")
    return check_finite(arr, name)


def _scalar(value, name: str, *, low: float | None = None, low_open: bool = False,
            high: float | None = None, what: str = "") -> float:
    """A concrete finite real scalar within [low, high] (or (low, ...) if `low_open`)."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number{what}, got {value!r}")
    if not is_concrete(value):
        raise TypeError(f"{name} must be a concrete number{what} (a static setting), not a traced value")
    try:
        v = float(np.asarray(value))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number{what}, got {value!r}") from err
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar{what}, got shape {np.shape(value)}")
    bad_low = low is not None and (v <= low if low_open else v < low)
    bad_high = high is not None and v > high
    if not np.isfinite(v) or bad_low or bad_high:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "inf)" if high is None else f"{high}]"
        raise ValueError(f"{name} must be {'finite and in ' + lo + hi if lo else 'finite'}{what}, got {value!r}")
    return v


def _key(key, name: str = "key"):
    if key is None or isinstance(key, (int, np.integer, str)):
        raise TypeError(f"{name} must be a JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), "
                        f"got {key!r}")
    return key


def _time_axis(x, num_steps: int):
    """`x` `(B, ...)` -> `(B, num_steps, ...)` by broadcasting (no copy until used)."""
    return jnp.broadcast_to(x[:, None], (x.shape[0], num_steps, *x.shape[1:]))


# ----------------------------------------------------------------------------------------------
# direct and rate


def direct(x: Float[Array, "B ..."], num_steps: int) -> Float[Array, "B T ..."]:
    """Direct (analogue) coding: the value `x` held for `num_steps` steps, `(B, ...) -> (B, T, ...)`.

    The first layer then receives a constant current (in whatever units `x` has); the gradient is
    the identity (summed over the steps).

    **Raises:** `ValueError` for `num_steps` < 1, `x` without a batch axis or holding NaN/inf.
    """
    num_steps = check_positive_int(num_steps, "num_steps", "time steps T")
    return _time_axis(_data(x, "x", 1, "(B, ...)"), num_steps)


def rate(
    x: Float[Array, "B ..."],
    num_steps: int,
    *,
    key: PRNGKeyArray,
    max_rate: float = 1.0,
    dist: Literal["bernoulli", "poisson"] = "bernoulli",
    gradient: Gradient = "expected",
) -> Float[Array, "B T ..."]:
    r"""Rate coding: independent spikes at every step with mean $p = \mathrm{clip}(x, 0, 1) \cdot r_{max}$
    per step, `(B, ...) -> (B, T, ...)`.

    **Arguments:**
    - `x`: intensities (dimensionless; values outside [0, 1] are clipped), batch first.
    - `num_steps`: T, the number of steps (frames).
    - `key`: a JAX PRNG key; the same key gives the same spikes.
    - `max_rate`: $r_{max}$, the mean spike count per step at intensity 1 (spikes / step; for a
      frequency `f` Hz and frames of `dt` ms, `f * dt / 1000`). In [0, 1] for `"bernoulli"`.
    - `dist`: `"bernoulli"`: one spike (1.0) with probability p per step; `"poisson"`: a count
      drawn from Poisson(p) per step (0, 1, 2, ...; use it for `max_rate` > 1).
    - `gradient`: the straight-through estimator of the backward pass, the forward pass always
      being the sampled spikes. `"expected"` (default): the derivative of the expected spikes,
      $\partial s / \partial x = r_{max}$ for `x` in [0, 1] and 0 where `x` is clipped;
      `"identity"`: $\partial s / \partial x = 1$ everywhere; `"none"`: no gradient.

    **Returns:** float spikes (or counts) `(B, T, ...)` in `x`'s float dtype. Over T steps the spike
    rate has mean p and standard deviation $\sqrt{p(1-p)/T}$ (Bernoulli), $\sqrt{p/T}$ (Poisson).

    **Raises:** `ValueError` for `num_steps` < 1, negative `max_rate` (or > 1 with Bernoulli),
    an unknown `dist`/`gradient`, `x` without a batch axis or with NaN/inf; `TypeError` for a
    missing key.
    """
    num_steps = check_positive_int(num_steps, "num_steps", "time steps T")
    if dist not in ("bernoulli", "poisson"):
        raise ValueError(f"dist must be 'bernoulli' or 'poisson', got {dist!r}")
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    max_rate = _scalar(max_rate, "max_rate", low=0.0, high=1.0 if dist == "bernoulli" else None,
                       what=" (spikes per step" + (", a probability for dist='bernoulli')"
                                                    if dist == "bernoulli" else ")"))
    key = _key(key)
    x = _data(x, "x", 1, "(B, ...)")
    return _rate(x, key, jnp.asarray(max_rate, x.dtype), num_steps, dist, gradient)


@functools.partial(jax.jit, static_argnums=(3, 4, 5))
def _rate(x, key, max_rate, num_steps: int, dist: str, gradient: str):
    # clip(x, 0, 1) with slope 1 on the closed interval (jnp.clip's slope is 1/2 at 0 and 1)
    xc = jnp.where((x >= 0.0) & (x <= 1.0), x, jnp.clip(x, 0.0, 1.0))
    p = _time_axis(xc * max_rate, num_steps)
    if dist == "bernoulli":
        s = (jax.random.uniform(key, p.shape, dtype=x.dtype) < jax.lax.stop_gradient(p)).astype(x.dtype)
    else:
        s = jax.random.poisson(key, jax.lax.stop_gradient(p), p.shape).astype(x.dtype)
    return _straight_through(s, p, _time_axis(x, num_steps), gradient)


def _straight_through(s, expected, x_t, gradient: str):
    """Forward `s` exactly; backward through `expected` ("expected"), `x_t` ("identity") or none."""
    if gradient == "expected":
        return s + (expected - jax.lax.stop_gradient(expected))
    if gradient == "identity":
        return s + (x_t - jax.lax.stop_gradient(x_t))
    return jax.lax.stop_gradient(s)


# ----------------------------------------------------------------------------------------------
# latency


def latency_times(
    x: Float[Array, "B ..."],
    num_steps: int,
    *,
    method: Literal["linear", "log"] = "linear",
    threshold: float = 0.0,
    tau: float | None = None,
    normalize: bool = False,
) -> Float[Array, "B ..."]:
    r"""First-spike times (in steps, real-valued; `inf` where no spike) of `latency` coding.

    An input fires once, when a threshold decaying from 1 reaches its intensity
    $x_c = \mathrm{clip}(x, 0, 1)$: linearly, $t = \tau (1 - x_c)$ (`"linear"`), or exponentially,
    $t = \tau \ln(1 / x_c)$ (`"log"`: equal ratios of intensity, equal delays, so a wide dynamic
    range fits the window). Both are strictly decreasing in $x_c$: the brighter, the earlier.

    **Arguments:**
    - `x`: intensities (dimensionless, clipped to [0, 1]), batch first.
    - `num_steps`: T, the window in steps (sets the default `tau` and the normalisation).
    - `method`: `"linear"` or `"log"`.
    - `threshold`: intensity at or below which an input never fires, in [0, 1).
    - `tau`: time constant in steps (> 0). Default: `T - 1` for `"linear"` (intensity 1 fires at
      step 0, intensity 0+ at step T - 1) and 1 step for `"log"` (one step per factor e).
    - `normalize`: choose `tau` so the inputs that fire span the whole window: intensity 1 at
      step 0 and intensity `threshold` at step T - 1 (`tau = (T-1)/(1-threshold)` linear,
      `(T-1)/ln(1/threshold)` log, which needs `threshold` > 0). Not together with `tau`.

    The times are differentiable in `x` (where they are finite).
    """
    x, tau, threshold = _latency_setup(x, num_steps, method, threshold, tau, normalize)
    return _latency_times(x, jnp.asarray(tau, x.dtype), jnp.asarray(threshold, x.dtype), method)


@functools.partial(jax.jit, static_argnums=3)
def _latency_times(x, tau, threshold, method: str):
    xc = jnp.clip(x, 0.0, 1.0)
    active = xc > threshold
    safe = jnp.where(active, xc, jnp.ones_like(xc))
    t = tau * (1.0 - safe) if method == "linear" else tau * -jnp.log(safe) + 0.0  # + 0.0: no -0.0
    return jnp.where(active, t, jnp.asarray(jnp.inf, x.dtype))


def latency(
    x: Float[Array, "B ..."],
    num_steps: int,
    *,
    method: Literal["linear", "log"] = "linear",
    threshold: float = 0.0,
    tau: float | None = None,
    normalize: bool = False,
) -> Float[Array, "B T ..."]:
    """Latency (time-to-first-spike) coding, `(B, ...) -> (B, T, ...)`: one spike per input, at
    step `round(t)` with `t` from `latency_times` (same arguments; see there), so higher
    intensities fire earlier (never later); inputs at or below `threshold` never fire, nor inputs
    whose step is beyond the window (`round(t) > T - 1`; with the defaults of `"linear"` or with
    `normalize=True` every input above `threshold` fires within the window).

    **Returns:** float 0/1 spikes `(B, T, ...)`, at most one per input. The spikes have no gradient
    (a step function of `x`); differentiate `latency_times` for a time-based loss.

    **Raises:** `ValueError` for `num_steps` < 1, an unknown `method`, `threshold` outside [0, 1),
    `tau` <= 0, `normalize=True` with `tau` (or with `"log"` and `threshold` = 0), `x` without a
    batch axis or with NaN/inf.
    """
    t = latency_times(x, num_steps, method=method, threshold=threshold, tau=tau, normalize=normalize)
    return _one_spike(t, num_steps)


@functools.partial(jax.jit, static_argnums=1)
def _one_spike(t, num_steps: int):
    step = jnp.round(jax.lax.stop_gradient(t))[:, None]  # (B, 1, ...); inf matches no step
    steps = jnp.arange(num_steps, dtype=t.dtype).reshape((1, num_steps) + (1,) * (t.ndim - 1))
    return (step == steps).astype(t.dtype)


def _latency_setup(x, num_steps, method, threshold, tau, normalize):
    num_steps = check_positive_int(num_steps, "num_steps", "time steps T")
    if method not in ("linear", "log"):
        raise ValueError(f"method must be 'linear' or 'log', got {method!r}")
    threshold = _scalar(threshold, "threshold", low=0.0, what=" (intensity below which no spike, in [0, 1))")
    if threshold >= 1.0:
        raise ValueError(f"threshold must be in [0, 1) (intensity at or below which no spike), got {threshold!r}")
    if not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be a bool, got {normalize!r}")
    if normalize and tau is not None:
        raise ValueError("tau and normalize=True are exclusive: normalize chooses tau to fill the window; "
                         f"got tau={tau!r}")
    if tau is not None:
        tau = _scalar(tau, "tau", low=0.0, low_open=True, what=" (time constant in steps)")
    elif normalize:
        if method == "log" and threshold == 0.0:
            raise ValueError("threshold must be > 0 for method='log' with normalize=True "
                             "(ln(1/x) is unbounded as x -> 0); got threshold=0.0")
        span = (1.0 - threshold) if method == "linear" else float(np.log(1.0 / threshold))
        tau = (num_steps - 1) / span
    else:
        tau = float(num_steps - 1) if method == "linear" else 1.0
    return _data(x, "x", 1, "(B, ...)"), tau, threshold


# ----------------------------------------------------------------------------------------------
# temporal contrast (delta)


def delta(
    x: Float[Array, "B T ..."],
    threshold: float | Float[Array, "..."],
    *,
    reference: float | Float[Array, "B ..."] | None = None,
    channels: Literal["stack", "concat"] = "stack",
    max_per_step: int | None = None,
) -> Float[Array, "B T ... 2"]:
    r"""Temporal-contrast (delta, send-on-delta) coding of a sequence `(B, T, ...)`.

    A reference level $r$ follows the signal in steps of the threshold $\theta$: at every step
    $k_t = \mathrm{sign}(d) \lfloor |d| / \theta \rfloor$ with $d = x_t - r_{t-1}$, then
    $r_t = r_{t-1} + \theta k_t$. Positive $k_t$ are ON spikes, negative ones OFF spikes (a count
    per step: a jump of several thresholds emits several). Hence $|x_t - r_t| < \theta$ at every
    step, and `delta_reconstruct` (which computes $r_t$ from the spikes) recovers the signal
    within one threshold.

    **Arguments:**
    - `x`: the signal `(B, T, ...)` (any units).
    - `threshold`: $\theta$ > 0, in the units of `x`: a scalar or an array broadcastable to one
      frame's features `x.shape[2:]`.
    - `reference`: initial level $r_{-1}$: None (default) uses the first frame `x[:, 0]`, so step
      0 emits nothing (pure change detection, as an event camera); `0.0` (or any scalar or
      `(B, ...)` array) codes the first frame's value as well.
    - `channels`: where ON and OFF go: `"stack"`: a new trailing axis of size 2, `[..., 0]` ON and
      `[..., 1]` OFF (`(B, T, ..., 2)`); `"concat"`: ON then OFF concatenated along the last
      feature axis (`(B, T, ..., 2F)` for `x` `(B, T, ..., F)`, which needs a feature axis).
    - `max_per_step`: cap on the spikes per channel and step (1: binary spikes). Then the
      reference lags a signal that moves faster than `max_per_step * threshold` per step, and the
      one-threshold bound holds only for slower signals. Default: no cap.

    **Returns:** non-negative float spike counts. No gradient (a step function of `x`).

    **Raises:** `ValueError` for `threshold` <= 0, an unknown `channels`, `max_per_step` < 1,
    `x` not `(B, T, ...)` or with NaN/inf, a `reference` of the wrong shape.
    """
    x = _data(x, "x", 2, "(B, T, ...) = (batch, time, ...)")
    if channels not in ("stack", "concat"):
        raise ValueError(f"channels must be 'stack' (trailing axis of 2: ON, OFF) or 'concat' "
                         f"(ON then OFF along the last feature axis), got {channels!r}")
    if channels == "concat" and x.ndim < 3:
        raise ValueError(f"channels='concat' needs x with a feature axis (B, T, ..., F); got shape {tuple(x.shape)} "
                         "(use channels='stack', or x[..., None])")
    if max_per_step is not None:
        max_per_step = check_positive_int(max_per_step, "max_per_step", "spikes per channel and step")
    frame = x.shape[:1] + x.shape[2:]
    th = jnp.broadcast_to(_threshold(threshold, x.shape[2:], x.dtype), frame)
    ref = x[:, 0] if reference is None else _reference(reference, frame, x.dtype)
    return _delta(x, th, ref, max_per_step, channels)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _delta(x, th, ref, max_per_step: int | None, channels: str):
    x, ref = jax.lax.stop_gradient((x, ref))

    def body(q, x_t):
        d = x_t - (ref + th * q)
        k = jnp.sign(d) * jnp.floor(jnp.abs(d) / th)
        if max_per_step is not None:
            k = jnp.clip(k, -max_per_step, max_per_step)
        return q + k, k

    _, k = jax.lax.scan(body, jnp.zeros_like(ref), jnp.swapaxes(x, 0, 1))
    k = jnp.swapaxes(k, 0, 1)
    on, off = jnp.maximum(k, 0.0), jnp.maximum(-k, 0.0)
    if channels == "stack":
        return jnp.stack([on, off], axis=-1)
    return jnp.concatenate([on, off], axis=-1)


def delta_reconstruct(
    spikes: Float[Array, "B T ... 2"],
    threshold: float | Float[Array, "..."],
    *,
    reference: float | Float[Array, "B ..."] = 0.0,
    channels: Literal["stack", "concat"] = "stack",
) -> Float[Array, "B T ..."]:
    r"""The signal back from `delta` spikes: $r_t = r_{-1} + \theta \sum_{s \le t} (\mathrm{ON}_s -
    \mathrm{OFF}_s)$, `(B, T, ...)`; within one `threshold` of the encoded signal (exactly the
    encoder's reference level).

    **Arguments:** `spikes` as returned by `delta` with the same `channels`; `threshold` as given
    to `delta` (units of the signal); `reference`: the encoder's initial level, i.e. `x[:, 0]`
    when `delta` was called with `reference=None`, else the same value (default 0.0).
    """
    if channels not in ("stack", "concat"):
        raise ValueError(f"channels must be 'stack' or 'concat', got {channels!r}")
    s = _data(spikes, "spikes", 3, "(B, T, ..., 2) for channels='stack', "
              "(B, T, ..., 2F) for 'concat'")
    if channels == "stack":
        if s.shape[-1] != 2:
            raise ValueError("spikes must have a trailing ON/OFF axis of size 2 (channels='stack'); "
                             f"got {tuple(s.shape)}")
        on, off = s[..., 0], s[..., 1]
    else:
        if s.shape[-1] % 2:
            raise ValueError(f"spikes' last axis must be even (ON then OFF, channels='concat'); got {tuple(s.shape)}")
        f = s.shape[-1] // 2
        on, off = s[..., :f], s[..., f:]
    frame = on.shape[:1] + on.shape[2:]
    th = jnp.broadcast_to(_threshold(threshold, on.shape[2:], s.dtype), frame)
    ref = _reference(reference, frame, s.dtype)
    return _integrate(on, off, th, ref)


@jax.jit
def _integrate(on, off, th, ref):
    return ref[:, None] + th[:, None] * jnp.cumsum(on - off, axis=1)


def _threshold(threshold, features: tuple, dtype):
    th = check_finite(as_float_array(threshold, "threshold"), "threshold")
    if is_concrete(th) and not bool(np.all(np.asarray(th) > 0)):
        raise ValueError(f"threshold must be > 0 (in the signal's units), got {np.asarray(threshold)!r}")
    try:
        return jnp.broadcast_to(th.astype(dtype), features)
    except ValueError as err:
        raise ValueError(f"threshold must be a scalar or broadcastable to one frame's features {features}; "
                         f"got shape {tuple(th.shape)}") from err


def _reference(reference, frame: tuple, dtype):
    ref = check_finite(as_float_array(reference, "reference"), "reference").astype(dtype)
    try:
        return jnp.broadcast_to(ref, frame)
    except ValueError as err:
        raise ValueError(f"reference must be a scalar or an array of one frame's shape (B, ...) = {frame}; "
                         f"got shape {tuple(ref.shape)}") from err


# ----------------------------------------------------------------------------------------------
# population (Gaussian receptive fields)


def receptive_fields(
    x: Float[Array, "B ..."],
    n: int,
    low: float,
    high: float,
    *,
    sigma: float | None = None,
) -> Float[Array, "B ... n"]:
    r"""Gaussian receptive fields: $a_i = \exp(-(x - c_i)^2 / 2\sigma^2)$ for `n` neurons with
    centres $c_i$ evenly spaced over [`low`, `high`] (both ends included), `(B, ...) -> (B, ..., n)`.

    **Arguments:** `x`: values in the units of `low`/`high` (values outside the range are
    allowed: the end neurons respond most); `n` >= 2 neurons; `low` < `high`; `sigma` (> 0, units
    of `x`): the tuning width, default the spacing of the centres `(high - low) / (n - 1)`.

    **Returns:** activations in (0, 1], largest at the neuron whose centre is nearest to `x`;
    differentiable in `x`. Feed them to `direct`, `rate` or `latency` for a time axis (`population`
    does the first two).
    """
    n = check_positive_int(n, "n", "number of neurons in the population")
    if n < 2:
        raise ValueError(f"n must be >= 2 (neurons with centres over [low, high]), got {n}")
    low = _scalar(low, "low", what=" (lower end of the centres)")
    high = _scalar(high, "high", what=" (upper end of the centres)")
    if not high > low:
        raise ValueError(f"high must be > low (the range of the centres), got low={low!r}, high={high!r}")
    spacing = (high - low) / (n - 1)
    sigma = spacing if sigma is None else _scalar(sigma, "sigma", low=0.0, low_open=True,
                                                  what=" (tuning width, units of x)")
    x = _data(x, "x", 1, "(B, ...)")
    c = population_centres(n, low, high).astype(x.dtype)
    return _gaussian(x, c, jnp.asarray(sigma, x.dtype))


@jax.jit
def _gaussian(x, centres, sigma):
    z = (x[..., None] - centres.reshape((1,) * x.ndim + centres.shape)) / sigma
    return jnp.exp(-0.5 * z * z)


def population_centres(n: int, low: float, high: float) -> Float[Array, " n"]:
    """The `n` receptive-field centres of `receptive_fields`: `linspace(low, high, n)` (units of x)."""
    return jnp.linspace(float(low), float(high), int(n))


def population(
    x: Float[Array, "B ..."],
    num_steps: int,
    *,
    n: int,
    low: float,
    high: float,
    sigma: float | None = None,
    spikes: bool = False,
    key: PRNGKeyArray | None = None,
    max_rate: float = 1.0,
    gradient: Gradient = "expected",
) -> Float[Array, "B T ... n"]:
    """Population coding, `(B, ...) -> (B, T, ..., n)`: each value drives `n` neurons through
    Gaussian receptive fields (`receptive_fields`, same `n`, `low`, `high`, `sigma`).

    With `spikes=False` (default) the activations (rates in [0, 1]) are held over the T steps
    (`direct`); with `spikes=True` they are rate-coded (`rate`: Bernoulli spikes with probability
    `activation * max_rate` per step, straight-through `gradient`, needs `key`). For a latency code
    use `latency(receptive_fields(x, ...), T)`.
    """
    a = receptive_fields(x, n, low, high, sigma=sigma)
    if not isinstance(spikes, (bool, np.bool_)):
        raise TypeError(f"spikes must be a bool, got {spikes!r}")
    if spikes:
        if key is None:
            raise TypeError("key must be a JAX PRNG key when spikes=True (the spikes are random)")
        return rate(a, num_steps, key=key, max_rate=max_rate, gradient=gradient)
    return direct(a, num_steps)


class PopulationEncoder(eqx.Module):
    r"""A population code with learnable receptive fields: $a_i = \exp(-(x - c_i)^2 / 2\sigma_i^2)$
    held over `num_steps` steps, `(B, ...) -> (B, T, ..., n)` (as `population` with rates), with the
    centres $c_i$ and widths $\sigma_i = \exp(\log\sigma_i)$ (units of `x`) trained with the
    network (the log keeps them positive; Adam's steps on it are relative changes).

    **Arguments:** `n`, `low`, `high`, `sigma`: the initial receptive fields, as in
    `receptive_fields`; `num_steps`: T. Deterministic, so it can be the first layer of a
    `Sequential`.
    """

    centres: Float[Array, " n"]
    log_sigma: Float[Array, " n"]
    num_steps: int = eqx.field(static=True)

    def __init__(self, n: int, low: float, high: float, num_steps: int, *, sigma: float | None = None):
        self.num_steps = check_positive_int(num_steps, "num_steps", "time steps T")
        receptive_fields(jnp.zeros((1,)), n, low, high, sigma=sigma)  # checks n, low, high, sigma
        n = int(n)
        width = (float(high) - float(low)) / (n - 1) if sigma is None else float(sigma)
        self.centres = population_centres(n, low, high)
        self.log_sigma = jnp.full((n,), np.log(width), self.centres.dtype)

    def __call__(self, x: Float[Array, "B ..."], *,
                 key: PRNGKeyArray | None = None) -> Float[Array, "B T ... n"]:
        """`(B, ...)` -> rates `(B, T, ..., n)`; `key` is unused (for `Sequential`-style calls)."""
        x = _data(x, "x", 1, "(B, ...)")
        a = _gaussian_each(x, self.centres.astype(x.dtype), jnp.exp(self.log_sigma).astype(x.dtype))
        return _time_axis(a, self.num_steps)


@jax.jit
def _gaussian_each(x, centres, sigmas):
    shape = (1,) * x.ndim + centres.shape
    z = (x[..., None] - centres.reshape(shape)) / sigmas.reshape(shape)
    return jnp.exp(-0.5 * z * z)


__all__ = ["PopulationEncoder", "delta", "delta_reconstruct", "direct", "latency", "latency_times", "population",
           "population_centres", "rate", "receptive_fields"]
