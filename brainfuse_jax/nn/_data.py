"""Offline data sets for sequence classification (nothing is downloaded).

| loader | sequences | classes | source |
|---|---|---|---|
| `load_digits("pixel")` | `(N, 64, 1)`: one pixel per step | 10 | scikit-learn's bundled 8x8 digits (1,797 images) |
| `load_digits("row")` | `(N, 8, 8)`: one image row per step | 10 | same |
| `load_mnist1d()` | `(N, 40, 1)` | 10 | MNIST-1D (Greydanus 2020), generated locally by `mnist1d.data.make_dataset` |
| `delayed_spike_patterns()` | `(N, T, channels)` 0/1 spikes | `n_classes` | generated from a seed |

Every loader returns a `Dataset` with a seeded train/test split; features are float32.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_positive_int


class Dataset(NamedTuple):
    """A classification data set: `x_*` `(N, T, features)` float32, `y_*` `(N,)` int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str


def _split(x, y, test_fraction, seed, n_classes, name):
    if not (0.0 < float(test_fraction) < 1.0):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    perm = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * float(test_fraction)))
    te, tr = perm[:n_test], perm[n_test:]
    x = x.astype(np.float32)
    y = y.astype(np.int32)
    return Dataset(x[tr], y[tr], x[te], y[te], n_classes, name)


def _need(module: str, extra: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise ImportError(f"this data set needs the `{module.split('.')[0]}` package: "
                          f"pip install 'brainfuse_jax[{extra}]' (or pip install {extra_pkg(module)})") from err


def extra_pkg(module: str) -> str:
    return {"sklearn.datasets": "scikit-learn", "mnist1d.data": "mnist1d"}.get(module, module)


def load_digits(mode: str = "pixel", *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, UCI), as sequences.

    **Arguments:**
    - `mode`: `"pixel"`: 64 steps of one pixel each, row-major (`(N, 64, 1)`); `"row"`: 8 steps of
      one 8-pixel row (`(N, 8, 8)`). Intensities are scaled from 0..16 to [0, 1].
    - `test_fraction`: fraction held out for testing; `seed`: the split's seed.

    Needs scikit-learn (`pip install 'brainfuse_jax[learning]'`); the data ships with it.
    """
    if mode not in ("pixel", "row"):
        raise ValueError(f"mode must be 'pixel' (64 steps x 1) or 'row' (8 steps x 8), got {mode!r}")
    datasets = _need("sklearn.datasets", "learning")
    d = datasets.load_digits()
    x = d.images.astype(np.float32) / 16.0  # (N, 8, 8)
    x = x.reshape(len(x), 64, 1) if mode == "pixel" else x
    return _split(x, d.target, test_fraction, seed, 10, f"digits-{mode}")


def load_mnist1d(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2024, "Scaling down deep learning with MNIST-1D", ICML):
    5,000 sequences of 40 steps, 10 classes, generated locally by `mnist1d.data.make_dataset`
    with its default arguments (its `get_dataset` would download a pickle; this does not).

    The generator's own 80/20 split is replaced by a split seeded by `seed`; features are the
    generator's standardised values `(N, 40, 1)`. NumPy's global RNG state, which the generator
    reseeds, is restored afterwards. Needs `mnist1d` (`pip install 'brainfuse_jax[learning]'`).
    """
    data = _need("mnist1d.data", "learning")
    saved = np.random.get_state()
    try:
        d = data.make_dataset(data.get_dataset_args())
    finally:
        np.random.set_state(saved)
    x = np.concatenate([d["x"], d["x_test"]])[..., None]
    y = np.concatenate([d["y"], d["y_test"]])
    return _split(x, y, test_fraction, seed, 10, "mnist1d")


def delayed_spike_patterns(
    n_classes: int = 4,
    *,
    n_channels: int = 20,
    pattern_steps: int = 20,
    delay_steps: int = 30,
    rate: float = 0.15,
    jitter: int = 1,
    noise_rate: float = 0.02,
    n_samples: int = 1000,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Delayed spike-pattern classification: remember which of `n_classes` frozen spike patterns
    was shown, across a silent delay.

    Each class has a frozen Poisson pattern (`n_channels` channels x `pattern_steps` steps, spike
    probability `rate` per step). A sample is its class's pattern with every spike moved by up to
    `jitter` steps, followed by `delay_steps` steps of background only; background spikes
    (probability `noise_rate` per step and channel) are added throughout. Sequences are
    `(N, pattern_steps + delay_steps, n_channels)` of 0/1; the label should be read out at the end
    (e.g. `LeakyReadout(reduce="last")`). Everything is drawn from `seed`.
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    n_channels = check_positive_int(n_channels, "n_channels")
    pattern_steps = check_positive_int(pattern_steps, "pattern_steps")
    n_samples = check_positive_int(n_samples, "n_samples")
    if isinstance(delay_steps, bool) or not isinstance(delay_steps, (int, np.integer)) or delay_steps < 0:
        raise ValueError(f"delay_steps must be an int >= 0, got {delay_steps!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, np.integer)) or jitter < 0:
        raise ValueError(f"jitter must be an int >= 0 (steps), got {jitter!r}")
    for name, p in (("rate", rate), ("noise_rate", noise_rate)):
        if not (0.0 <= float(p) <= 1.0):
            raise ValueError(f"{name} must be a probability per step in [0, 1], got {p!r}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    rng = np.random.default_rng(seed)
    templates = rng.random((n_classes, pattern_steps, n_channels)) < rate
    T = pattern_steps + delay_steps
    y = np.arange(n_samples) % n_classes
    rng.shuffle(y)
    x = np.zeros((n_samples, T, n_channels), np.float32)
    for i, label in enumerate(y):
        t, c = np.nonzero(templates[label])
        t = np.clip(t + rng.integers(-jitter, jitter + 1, size=t.shape), 0, pattern_steps - 1)
        x[i, t, c] = 1.0
    x = np.maximum(x, (rng.random(x.shape) < noise_rate).astype(np.float32))
    return _split(x, y, test_fraction, seed, n_classes, "delayed-spike-patterns")
