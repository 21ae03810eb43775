"""brainfuse_jax.nn data sets: offline, seeded, shaped as documented."""

import socket
import sys

import numpy as np
import pytest

from brainfuse_jax import nn

pytest.importorskip("sklearn", reason="scikit-learn not installed (pip install 'brainfuse_jax[learning]')")


def test_digits_pixel_and_row():
    d = nn.load_digits("pixel", seed=0)
    assert d.x_train.shape == (1438, 64, 1) and d.x_test.shape == (359, 64, 1)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert d.n_classes == 10 and set(np.unique(d.y_train)) == set(range(10))
    assert 0.0 == d.x_train.min() and d.x_train.max() == 1.0
    r = nn.load_digits("row", seed=0)
    assert r.x_train.shape == (1438, 8, 8)
    np.testing.assert_array_equal(r.x_train.reshape(-1, 64, 1), d.x_train)  # same split, same images
    np.testing.assert_array_equal(r.y_test, d.y_test)


def test_digits_split_is_seeded():
    a, b, c = nn.load_digits(seed=1), nn.load_digits(seed=1), nn.load_digits(seed=2)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.y_train, c.y_train)
    # each split partitions the same 1,797 images
    rows = lambda d: np.sort(np.concatenate([d.x_train, d.x_test]).reshape(1797, 64).view("V256"), axis=0)  # noqa: E731
    np.testing.assert_array_equal(rows(a), rows(c))


def test_mnist1d_generated_offline(monkeypatch):
    pytest.importorskip("mnist1d", reason="mnist1d not installed (pip install 'brainfuse_jax[learning]')")

    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist1d tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    d = nn.load_mnist1d(seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global RNG left alone
    assert d.x_train.shape == (4000, 40, 1) and d.x_test.shape == (1000, 40, 1)
    assert d.n_classes == 10 and set(np.unique(d.y_test)) == set(range(10))
    assert abs(float(np.concatenate([d.x_train, d.x_test]).std()) - 1.0) < 1e-3  # standardised
    d2 = nn.load_mnist1d(seed=0)
    np.testing.assert_array_equal(d.x_train, d2.x_train)


def test_delayed_spike_patterns():
    d = nn.delayed_spike_patterns(4, n_channels=10, pattern_steps=12, delay_steps=20, n_samples=200,
                                  noise_rate=0.0, jitter=0, seed=3)
    assert d.x_train.shape == (160, 32, 10) and d.x_test.shape == (40, 32, 10)
    assert set(np.unique(d.x_train)) <= {0.0, 1.0}
    assert d.x_train[:, 12:].sum() == 0  # the delay is silent without background noise
    # without jitter and noise, every sample is exactly its class's template
    for c in range(4):
        xs = d.x_train[d.y_train == c]
        assert len(xs) > 0 and (xs == xs[0]).all()
    assert len({d.x_train[d.y_train == c][0].tobytes() for c in range(4)}) == 4
    e = nn.delayed_spike_patterns(4, seed=3)
    f = nn.delayed_spike_patterns(4, seed=3)
    np.testing.assert_array_equal(e.x_train, f.x_train)
    assert e.x_train.shape == (800, 50, 20)
    # with jitter and noise the class is still recoverable by the nearest class mean (pattern part)
    means = np.stack([e.x_train[e.y_train == c, :20].mean(0) for c in range(4)])
    dist = ((e.x_test[:, None, :20] - means[None]) ** 2).sum((2, 3))
    assert (dist.argmin(1) == e.y_test).mean() > 0.9


def test_bad_arguments_and_missing_extra(monkeypatch):
    with pytest.raises(ValueError, match="mode must be 'pixel'"):
        nn.load_digits("column")
    with pytest.raises(ValueError, match="test_fraction must be in"):
        nn.load_digits(test_fraction=1.5)
    with pytest.raises(TypeError, match="seed must be an int"):
        nn.load_digits(seed="a")
    with pytest.raises(ValueError, match="n_classes must be >= 2"):
        nn.delayed_spike_patterns(1)
    with pytest.raises(ValueError, match="rate must be a probability"):
        nn.delayed_spike_patterns(rate=2.0)
    with pytest.raises(ValueError, match="jitter must be an int"):
        nn.delayed_spike_patterns(jitter=-1)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"brainfuse_jax\[learning\]"):
        nn.load_digits()
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match="mnist1d"):
        nn.load_mnist1d()
