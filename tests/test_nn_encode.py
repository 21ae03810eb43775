"""Input encoders (brainfuse_jax.nn._encode): property tests (hypothesis) of what each code
promises, straight-through gradients, jit/vmap, and argument errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brainfuse_jax.nn import _encode as enc

SETTINGS = settings(max_examples=25, deadline=None, database=None)


def f32(low, high):
    """Floats in [low, high] that are exactly float32 values."""
    return st.floats(low, high, allow_nan=False).map(lambda v: float(np.float32(v)))


floats01 = f32(0.0, 1.0)


def _first_step(spikes):
    """(B, T, ...) 0/1 -> first spike step per input, inf where none."""
    s = np.asarray(spikes)
    t = np.argmax(s > 0, axis=1).astype(float)
    return np.where(s.any(axis=1), t, np.inf)


# ---------------------------------------------------------------------------------------- rate


@SETTINGS
@given(st.lists(floats01, min_size=16, max_size=16), f32(0.05, 1.0), st.integers(0, 2**31 - 1))
def test_rate_bernoulli_converges_to_intensity(x, max_rate, seed):
    """Spike rate over T steps ~ Binomial(T, p)/T: within 5 standard deviations sqrt(p(1-p)/T)
    of p = x * max_rate (a false alarm per input has probability 6e-7)."""
    T = 2000
    xs = jnp.asarray([x], jnp.float32)
    s = np.asarray(enc.rate(xs, T, key=jax.random.key(seed), max_rate=max_rate))
    assert s.shape == (1, T, 16) and set(np.unique(s)) <= {0.0, 1.0}
    p = np.asarray(x, np.float64) * np.float32(max_rate)
    tol = 5 * np.sqrt(p * (1 - p) / T) + 1e-6
    np.testing.assert_array_less(np.abs(s.mean(axis=1)[0] - p), tol)


@SETTINGS
@given(st.lists(floats01, min_size=8, max_size=8), f32(0.1, 4.0), st.integers(0, 2**31 - 1))
def test_rate_poisson_converges_to_intensity(x, max_rate, seed):
    """Poisson counts per step: mean over T steps within 5 sd sqrt(p/T) of p = x * max_rate."""
    T = 2000
    s = np.asarray(enc.rate(jnp.asarray([x], jnp.float32), T, key=jax.random.key(seed), max_rate=max_rate,
                            dist="poisson"))
    assert np.all(s == np.round(s)) and np.all(s >= 0)
    p = np.asarray(x, np.float64) * np.float32(max_rate)
    np.testing.assert_array_less(np.abs(s.mean(axis=1)[0] - p), 5 * np.sqrt(p / T) + 1e-6)


def test_rate_clips_and_is_seeded():
    x = jnp.asarray([[-0.5, 0.0, 1.0, 3.0]])
    s = enc.rate(x, 50, key=jax.random.key(1))
    np.testing.assert_array_equal(s[0, :, 0], 0.0)
    np.testing.assert_array_equal(s[0, :, 1], 0.0)
    np.testing.assert_array_equal(s[0, :, 2:], 1.0)
    y = jnp.full((2, 3, 4), 0.5)
    a, b = enc.rate(y, 20, key=jax.random.key(7)), enc.rate(y, 20, key=jax.random.key(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 20, 3, 4)
    assert not np.array_equal(a, enc.rate(y, 20, key=jax.random.key(8)))


def test_rate_straight_through_gradients():
    x = jnp.asarray([[-0.2, 0.0, 0.3, 0.7, 1.0, 1.4]])
    key, T, r = jax.random.key(3), 10, 0.8

    def total(x, gradient):
        return jnp.sum(enc.rate(x, T, key=key, max_rate=r, gradient=gradient))

    # the forward pass is the sampled spikes, whatever the estimator
    ref = enc.rate(x, T, key=key, max_rate=r, gradient="none")
    for g in ("expected", "identity"):
        np.testing.assert_array_equal(enc.rate(x, T, key=key, max_rate=r, gradient=g), ref)
    # "expected": d/dx of the expected spike count T * r * clip(x, 0, 1), checked by finite differences
    g = jax.grad(total)(x, "expected")
    expected_count = lambda x: T * r * jnp.clip(x, 0, 1)  # noqa: E731
    h = 1e-3
    fd = (expected_count(x + h) - expected_count(x - h)) / (2 * h)
    np.testing.assert_allclose(g[0, [0, 2, 3, 5]], fd[0, [0, 2, 3, 5]], rtol=1e-4)
    np.testing.assert_allclose(g, [[0, T * r, T * r, T * r, T * r, 0]], rtol=1e-6)  # slope 1 on [0, 1]
    np.testing.assert_allclose(jax.grad(total)(x, "identity"), jnp.full_like(x, T))
    np.testing.assert_array_equal(jax.grad(total)(x, "none"), 0.0)
    gp = jax.grad(lambda x: jnp.sum(enc.rate(x, T, key=key, max_rate=2.0, dist="poisson")))(x)
    np.testing.assert_allclose(gp, [[0, 2 * T, 2 * T, 2 * T, 2 * T, 0]], rtol=1e-6)


def test_rate_jit_and_vmap():
    x = jnp.linspace(0, 1, 12).reshape(3, 4)
    key = jax.random.key(0)
    f = jax.jit(lambda x, k: enc.rate(x, 6, key=k))
    np.testing.assert_array_equal(f(x, key), enc.rate(x, 6, key=key))
    keys = jax.random.split(key, 5)
    many = jax.vmap(lambda k: enc.rate(x, 6, key=k))(keys)
    assert many.shape == (5, 3, 6, 4)
    np.testing.assert_array_equal(many[2], enc.rate(x, 6, key=keys[2]))
    per_sample = jax.vmap(lambda xi, k: enc.rate(xi[None], 6, key=k)[0])(x, jax.random.split(key, 3))
    assert per_sample.shape == (3, 6, 4)
    g = jax.jit(jax.grad(lambda x: jnp.sum(enc.rate(x, 6, key=key))))(x)
    np.testing.assert_allclose(g, 6.0)


# ------------------------------------------------------------------------------------- latency


@SETTINGS
@given(st.lists(floats01, min_size=12, max_size=12), st.sampled_from(["linear", "log"]),
       f32(0.0, 0.9), st.booleans(), st.integers(1, 30))
def test_latency_monotone_one_spike_threshold(x, method, threshold, normalize, T):
    if method == "log" and normalize and threshold == 0.0:
        threshold = 0.05
    xs = jnp.asarray([x], jnp.float32)
    s = np.asarray(enc.latency(xs, T, method=method, threshold=threshold, normalize=normalize))
    assert s.shape == (1, T, 12) and set(np.unique(s)) <= {0.0, 1.0}
    assert s.sum(axis=1).max() <= 1  # at most one spike per input
    step = _first_step(s)[0]
    xv = np.asarray(xs[0])
    assert np.all(np.isinf(step[xv <= np.float32(threshold)]))  # at or below threshold: silent
    order = np.argsort(xv, kind="stable")
    late = lambda t: np.where(np.isinf(t), 1e9, t)  # noqa: E731  (silent = after everything)
    assert np.all(np.diff(late(step[order])) <= 0)  # higher intensity -> earlier (or same) spike
    if method == "linear" or normalize:  # every input above threshold fires inside the window
        assert np.all(np.isfinite(step[xv > np.float32(threshold)]))
    t = np.asarray(enc.latency_times(xs, T, method=method, threshold=threshold, normalize=normalize))[0]
    np.testing.assert_array_equal(np.isfinite(t), xv > np.float32(threshold))
    assert np.all(np.diff(late(t[order])) <= 1e-6 * T)  # times: (numerically) non-increasing


def test_latency_normalize_fills_window_and_times_gradient():
    T = 16
    x = jnp.asarray([[1.0, 0.2 + 1e-6, 0.2, 0.6]])
    for method in ("linear", "log"):
        s = enc.latency(x, T, method=method, threshold=0.2, normalize=True)
        np.testing.assert_array_equal(_first_step(s)[0, :3], [0, T - 1, np.inf])
    # defaults: linear tau = T - 1 (intensity 1 at step 0, small intensities at T - 1); log tau = 1 step
    np.testing.assert_allclose(enc.latency_times(x, T)[0, [0, 3]], [0.0, 0.4 * (T - 1)], rtol=1e-6)
    np.testing.assert_allclose(enc.latency_times(x, T, method="log")[0, 3], -np.log(0.6), rtol=1e-6)
    np.testing.assert_allclose(enc.latency_times(x, T, method="log", tau=3.0)[0, 3], -3 * np.log(0.6), rtol=1e-6)
    g = jax.grad(lambda x: enc.latency_times(x, T, method="log", threshold=0.1)[0, 3])(x)
    np.testing.assert_allclose(g[0, 3], -1 / 0.6, rtol=1e-5)
    np.testing.assert_array_equal(jax.grad(lambda x: enc.latency(x, T).sum())(x), 0.0)
    f = jax.jit(lambda x: enc.latency(x, T, method="log", threshold=0.1, normalize=True))
    np.testing.assert_array_equal(f(x), enc.latency(x, T, method="log", threshold=0.1, normalize=True))
    v = jax.vmap(lambda xi: enc.latency(xi[None], T)[0])(jnp.tile(x, (3, 1)))
    assert v.shape == (3, T, 4)
    imgs = jnp.linspace(0, 1, 2 * 3 * 5).reshape(2, 3, 5)  # any trailing shape
    assert enc.latency(imgs, T).shape == (2, T, 3, 5)


# --------------------------------------------------------------------------------------- delta


signals = st.lists(st.lists(f32(-10, 10), min_size=3, max_size=3),
                   min_size=20, max_size=20)


@SETTINGS
@given(signals, f32(0.05, 2.0), st.sampled_from([None, 0.0]), st.sampled_from(["stack", "concat"]))
def test_delta_reconstructs_within_threshold(sig, threshold, reference, channels):
    x = jnp.asarray([sig, sig[::-1]], jnp.float32)  # (B=2, T=20, F=3)
    s = enc.delta(x, threshold, reference=reference, channels=channels)
    assert s.shape == ((2, 20, 3, 2) if channels == "stack" else (2, 20, 6))
    assert np.all(np.asarray(s) >= 0) and np.all(np.asarray(s) == np.round(np.asarray(s)))
    ref = x[:, 0] if reference is None else reference
    if reference is None:
        np.testing.assert_array_equal(s[:, 0], 0.0)
    r = enc.delta_reconstruct(s, threshold, reference=ref, channels=channels)
    assert r.shape == x.shape
    err = np.abs(np.asarray(r, np.float64) - np.asarray(x, np.float64))
    assert err.max() < np.float32(threshold) * (1 + 1e-5) + 2e-5, err.max()


@SETTINGS
@given(st.lists(f32(-1, 1), min_size=30, max_size=30), f32(0.05, 1.0))
def test_delta_binary_spikes_track_slow_signals(steps, threshold):
    """With max_per_step=1 (binary spikes) the bound holds while the signal moves at most one
    threshold per step."""
    x = jnp.cumsum(jnp.asarray(steps, jnp.float32) * np.float32(threshold))[None, :, None]
    s = enc.delta(x, threshold, max_per_step=1)
    assert set(np.unique(np.asarray(s))) <= {0.0, 1.0}
    r = enc.delta_reconstruct(s, threshold, reference=x[:, 0])
    assert np.abs(np.asarray(r) - np.asarray(x)).max() < np.float32(threshold) * (1 + 1e-5) + 1e-5


def test_delta_on_off_and_per_feature_threshold_jit_vmap():
    x = jnp.asarray([[0.0, 0.5, 1.0, 0.25, 0.25]])[..., None]  # (1, 5, 1)
    s = enc.delta(x, 0.25, reference=0.0)
    np.testing.assert_array_equal(s[0, :, 0, 0], [0, 2, 2, 0, 0])  # ON counts
    np.testing.assert_array_equal(s[0, :, 0, 1], [0, 0, 0, 3, 0])  # OFF counts
    c = enc.delta(x, 0.25, reference=0.0, channels="concat")
    np.testing.assert_array_equal(c, s.reshape(1, 5, 2))
    two = jnp.concatenate([x, 2 * x], axis=-1)  # (1, 5, 2), thresholds per feature
    s2 = enc.delta(two, jnp.asarray([0.25, 0.5]), reference=0.0)
    np.testing.assert_array_equal(s2[..., 0, :], s2[..., 1, :])
    f = jax.jit(lambda x: enc.delta(x, 0.25))
    np.testing.assert_array_equal(f(two), enc.delta(two, 0.25))
    v = jax.vmap(lambda xi: enc.delta(xi[None], 0.25)[0])(jnp.tile(two, (4, 1, 1)))
    assert v.shape == (4, 5, 2, 2)
    np.testing.assert_array_equal(jax.grad(lambda x: enc.delta(x, 0.25).sum())(two), 0.0)


# ---------------------------------------------------------------------------------- population


@SETTINGS
@given(f32(-0.2, 1.2), st.integers(2, 12), f32(-1, 0.5), f32(0.1, 2), st.one_of(st.none(), f32(0.3, 3.0)))
def test_population_peaks_at_nearest_centre(u, n, low, width, sigma_factor):
    """x anywhere in the range (and 20% beyond), sigma from 0.3 to 3 spacings (activations far
    in the tails underflow to 0 in float32, where no neuron peaks)."""
    high = low + width
    x = float(np.float32(low + u * width))
    sigma = None if sigma_factor is None else sigma_factor * width / (n - 1)
    a = np.asarray(enc.receptive_fields(jnp.asarray([x], jnp.float32), n, low, high, sigma=sigma))
    assert a.shape == (1, n) and np.all((a >= 0) & (a <= 1))  # far tails may underflow to 0
    c = np.asarray(enc.population_centres(n, low, high), np.float64)
    dist = np.abs(np.float32(x) - c)
    # the peak neuron's centre is the nearest (up to ties at midpoints, within float32 rounding)
    assert dist[np.argmax(a[0])] <= dist.min() + 1e-5 * (1 + abs(x) + width)
    if dist.min() < 1e-7:
        assert a[0].max() > 1 - 1e-5


def test_population_shapes_spikes_gradient():
    x = jnp.asarray([[0.1, 0.5], [0.9, 0.3]])
    p = enc.population(x, 4, n=5, low=0.0, high=1.0)
    assert p.shape == (2, 4, 2, 5)
    np.testing.assert_allclose(p[:, 0], enc.receptive_fields(x, 5, 0.0, 1.0))
    np.testing.assert_array_equal(p[:, 0], p[:, 3])
    np.testing.assert_allclose(p[0, 0, 1, 2], 1.0)  # 0.5 sits on the middle centre
    s = enc.population(x, 500, n=5, low=0.0, high=1.0, spikes=True, key=jax.random.key(0))
    assert s.shape == (2, 500, 2, 5)
    q = np.asarray(p[:, 0], np.float64)
    np.testing.assert_array_less(np.abs(np.asarray(s).mean(axis=1) - q), 5 * np.sqrt(q * (1 - q) / 500) + 1e-6)
    g = jax.grad(lambda x: enc.population(x, 3, n=5, low=0.0, high=1.0)[0, 0, 0, 0])(x)
    np.testing.assert_allclose(g[0, 0], -0.1 / 0.25**2 * np.exp(-0.5 * (0.1 / 0.25) ** 2), rtol=1e-5)
    f = jax.jit(lambda x, k: enc.population(x, 3, n=4, low=-1, high=1, spikes=True, key=k))
    assert f(x, jax.random.key(1)).shape == (2, 3, 2, 4)


# ------------------------------------------------------------------------------------- direct


def test_direct_repeats_value_with_identity_gradient():
    x = jnp.arange(6.0).reshape(2, 3)
    d = enc.direct(x, 5)
    assert d.shape == (2, 5, 3)
    np.testing.assert_array_equal(d, jnp.broadcast_to(x[:, None], (2, 5, 3)))
    np.testing.assert_array_equal(jax.grad(lambda x: enc.direct(x, 5).sum())(x), 5.0)
    assert jax.vmap(lambda xi: enc.direct(xi[None], 2))(x).shape == (2, 1, 2, 3)


# ---------------------------------------------------------------------------------- bad input

K = jax.random.key(0)
X = jnp.full((2, 3), 0.5)
SEQ = jnp.zeros((2, 4, 3))
NAN = jnp.asarray([[0.5, jnp.nan]])

BAD = [
    (lambda: enc.rate(X, 0, key=K), ValueError, "num_steps"),
    (lambda: enc.rate(X, -3, key=K), ValueError, "num_steps"),
    (lambda: enc.rate(X, 2.5, key=K), ValueError, "num_steps"),
    (lambda: enc.rate(X, 4, key=K, max_rate=-0.1), ValueError, "max_rate"),
    (lambda: enc.rate(X, 4, key=K, max_rate=1.5), ValueError, "max_rate"),
    (lambda: enc.rate(X, 4, key=K, max_rate=-1.0, dist="poisson"), ValueError, "max_rate"),
    (lambda: enc.rate(X, 4, key=K, max_rate=float("nan")), ValueError, "max_rate"),
    (lambda: enc.rate(X, 4, key=K, dist="gauss"), ValueError, "dist"),
    (lambda: enc.rate(X, 4, key=K, gradient="sigmoid"), ValueError, "gradient"),
    (lambda: enc.rate(X, 4, key=None), TypeError, "key"),
    (lambda: enc.rate(NAN, 4, key=K), ValueError, "x must be finite"),
    (lambda: enc.rate(jnp.asarray(0.5), 4, key=K), ValueError, r"x must have shape \(B, ...\)"),
    (lambda: enc.rate(jnp.zeros((0, 3)), 4, key=K), ValueError, "x must have shape"),
    (lambda: enc.rate("img", 4, key=K), TypeError, "x"),
    (lambda: enc.latency(X, 0), ValueError, "num_steps"),
    (lambda: enc.latency(X, 4, threshold=-0.1), ValueError, "threshold"),
    (lambda: enc.latency(X, 4, threshold=1.0), ValueError, "threshold"),
    (lambda: enc.latency(X, 4, tau=0.0), ValueError, "tau"),
    (lambda: enc.latency(X, 4, tau=2.0, normalize=True), ValueError, "tau"),
    (lambda: enc.latency(X, 4, method="log", normalize=True), ValueError, "threshold"),
    (lambda: enc.latency(X, 4, method="exp"), ValueError, "method"),
    (lambda: enc.latency(NAN, 4), ValueError, "x must be finite"),
    (lambda: enc.latency_times(NAN, 4), ValueError, "x must be finite"),
    (lambda: enc.delta(SEQ, 0.0), ValueError, "threshold"),
    (lambda: enc.delta(SEQ, -1.0), ValueError, "threshold"),
    (lambda: enc.delta(SEQ, jnp.asarray([0.1, 0.0, 0.1])), ValueError, "threshold"),
    (lambda: enc.delta(SEQ, jnp.asarray([0.1, 0.2])), ValueError, "threshold"),
    (lambda: enc.delta(jnp.zeros((2, 4)), 0.1, channels="concat"), ValueError, "channels"),
    (lambda: enc.delta(SEQ, 0.1, channels="split"), ValueError, "channels"),
    (lambda: enc.delta(SEQ, 0.1, max_per_step=0), ValueError, "max_per_step"),
    (lambda: enc.delta(SEQ, 0.1, reference=jnp.zeros((3, 3))), ValueError, "reference"),
    (lambda: enc.delta(jnp.zeros(4), 0.1), ValueError, r"x must have shape \(B, T"),
    (lambda: enc.delta(SEQ.at[0, 1, 1].set(jnp.inf), 0.1), ValueError, "x must be finite"),
    (lambda: enc.delta_reconstruct(jnp.zeros((2, 4, 3)), 0.1), ValueError, "spikes"),
    (lambda: enc.delta_reconstruct(jnp.zeros((2, 4, 3)), 0.1, channels="concat"), ValueError, "spikes"),
    (lambda: enc.delta_reconstruct(jnp.zeros((2, 4, 3, 2)), 0.0), ValueError, "threshold"),
    (lambda: enc.receptive_fields(X, 1, 0.0, 1.0), ValueError, "n must be >= 2"),
    (lambda: enc.receptive_fields(X, 0, 0.0, 1.0), ValueError, "n must be"),
    (lambda: enc.receptive_fields(X, 4, 1.0, 1.0), ValueError, "high"),
    (lambda: enc.receptive_fields(X, 4, 0.0, 1.0, sigma=0.0), ValueError, "sigma"),
    (lambda: enc.receptive_fields(NAN, 4, 0.0, 1.0), ValueError, "x must be finite"),
    (lambda: enc.population(X, 0, n=4, low=0, high=1), ValueError, "num_steps"),
    (lambda: enc.population(X, 3, n=4, low=0, high=1, spikes=True), TypeError, "key"),
    (lambda: enc.direct(X, 0), ValueError, "num_steps"),
    (lambda: enc.direct(NAN, 2), ValueError, "x must be finite"),
]


@pytest.mark.parametrize("call, err, match", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_raise_naming_them(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_nan_inside_jit_is_a_runtime_error():
    f = jax.jit(lambda x: enc.rate(x, 3, key=K))
    with pytest.raises(Exception, match="x must be finite"):
        jax.block_until_ready(f(NAN))
    g = jax.jit(lambda x: enc.delta(x, 0.1))
    with pytest.raises(Exception, match="x must be finite"):
        jax.block_until_ready(g(SEQ.at[0, 1, 1].set(jnp.nan)))
    assert eqx.is_array(f(X))


def test_population_encoder_module_learns_centres_and_widths():
    x = jnp.asarray([[0.1, 0.5], [0.9, 0.3]])
    m = enc.PopulationEncoder(5, 0.0, 1.0, 4)
    np.testing.assert_allclose(m(x), enc.population(x, 4, n=5, low=0.0, high=1.0), rtol=1e-6)
    seq = __import__("brainfuse_jax").nn.Sequential([m])  # deterministic: fits a Sequential
    assert seq(x).shape == (2, 4, 2, 5)

    def loss(m):
        return jnp.sum((m(x)[:, 0] - 0.5) ** 2)

    g = eqx.filter_grad(loss)(m)
    assert g.centres.shape == (5,) and g.log_sigma.shape == (5,)
    assert np.all(np.isfinite(g.centres)) and np.abs(g.centres).max() > 0 and np.abs(g.log_sigma).max() > 0
    h = 1e-3  # d loss / d c_2 by central differences
    shift = lambda d: eqx.tree_at(lambda m: m.centres, m, m.centres.at[2].add(d))  # noqa: E731
    np.testing.assert_allclose(g.centres[2], (loss(shift(h)) - loss(shift(-h))) / (2 * h), rtol=2e-2)
    with pytest.raises(ValueError, match="n must be >= 2"):
        enc.PopulationEncoder(1, 0.0, 1.0, 4)
    with pytest.raises(ValueError, match="num_steps"):
        enc.PopulationEncoder(3, 0.0, 1.0, 0)
