"""Weight and delay distributions of network projections (`Constant`, `Normal`, `Lognormal`,
`Uniform`) and the argument checks the connection rules share. Plain NumPy on the host, drawn
from a `numpy.random.Generator` when a network is built."""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers

import numpy as np

# A truncated distribution whose bounds accept fewer draws than this is refused: redrawing
# would need more than a million draws per value.
_MIN_ACCEPTANCE = 1e-6
# Largest batch of candidate draws held at once while redrawing (values).
_REDRAW_BATCH = 1 << 22


# ----------------------------------------------------------------------------- validation helpers

def _real(x, name: str, *, finite: bool = True) -> float:
    """`x` as a Python float: a real number (not bool), finite unless `finite=False` (NaN never)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    value = float(x)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be finite (no NaN{'' if not finite else ' or inf'}), got {value!r}")
    return value


def _count(x, name: str, *, minimum: int = 0) -> int:
    """`x` as a Python int >= `minimum` (a bool is refused)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    value = int(x)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def _std(x, name: str) -> float:
    value = _real(x, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def _flag(x, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(x).__name__}")
    return bool(x)


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _normal_mass(a: float, b: float) -> float:
    """P(a <= Z <= b) for a standard normal Z, accurate in both tails."""
    if a > 0:  # both bounds in the upper tail: mirror, so the difference is of small numbers
        a, b = -b, -a
    return max(_normal_cdf(b) - _normal_cdf(a), 0.0)


# --------------------------------------------------------------------------------- distributions

class Distribution(abc.ABC):
    """A distribution of synaptic weights or delays: `sample(rng, n)` -> float64 `(n,)`."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` independent draws (float64, shape `(n,)`) from `rng`."""


@dataclasses.dataclass(frozen=True)
class Constant(Distribution):
    """Every draw is `value` (finite)."""

    value: float

    def __post_init__(self):
        object.__setattr__(self, "value", _real(self.value, "Constant.value"))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        _check_rng(rng)
        return np.full(_count(n, "n"), self.value, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class Normal(Distribution):
    """Normal(`mean`, `std`) restricted to `[low, high]` (inclusive): a draw outside is drawn
    again, as NEST's `nest.math.redraw`; the result is the normal distribution truncated to
    `[low, high]`. Without bounds it is the plain normal distribution.

    **Arguments:** `mean` (finite), `std` (>= 0), `low` <= `high` (may be infinite). Bounds that
    keep less than 1e-6 of the mass raise `ValueError` (redrawing could not finish); otherwise
    drawing costs about `n / P` normal draws, `P` the probability mass inside the bounds.
    """

    mean: float
    std: float
    low: float = -math.inf
    high: float = math.inf

    def __post_init__(self):
        object.__setattr__(self, "mean", _real(self.mean, "Normal.mean"))
        object.__setattr__(self, "std", _std(self.std, "Normal.std"))
        low = _real(self.low, "Normal.low", finite=False)
        high = _real(self.high, "Normal.high", finite=False)
        if low > high:
            raise ValueError(f"Normal.low must be <= Normal.high, got low={low!r} > high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def acceptance(self) -> float:
        """Probability that one normal draw falls in `[low, high]`."""
        if self.std == 0:
            return 1.0 if self.low <= self.mean <= self.high else 0.0
        return _normal_mass((self.low - self.mean) / self.std, (self.high - self.mean) / self.std)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        _check_rng(rng)
        n = _count(n, "n")
        p = self.acceptance
        if p < _MIN_ACCEPTANCE:
            raise ValueError(
                f"Normal(mean={self.mean}, std={self.std}) keeps only P = {p:.3g} of its draws in "
                f"[low, high] = [{self.low}, {self.high}]; redrawing needs P >= {_MIN_ACCEPTANCE:g}: "
                "choose bounds nearer the mean or a larger std")
        if self.std == 0:
            return np.full(n, self.mean, dtype=np.float64)
        if p == 1.0 and math.isinf(self.low) and math.isinf(self.high):
            return rng.normal(self.mean, self.std, n)
        out = np.empty(n, dtype=np.float64)
        filled = 0
        while filled < n:  # each round draws about what the remaining values need
            need = n - filled
            batch = min(int(need / p * 1.1) + 64, max(_REDRAW_BATCH, need))
            x = rng.normal(self.mean, self.std, batch)
            x = x[(x >= self.low) & (x <= self.high)][:need]
            out[filled:filled + x.size] = x
            filled += x.size
        return out


@dataclasses.dataclass(frozen=True)
class Lognormal(Distribution):
    """Lognormal with the given `mean` (> 0) and `std` (>= 0) *of the distribution itself*
    (NEST's `lognormal` takes those of the underlying normal instead): draws
    `exp(N(mu, sigma))` with `sigma^2 = ln(1 + std^2 / mean^2)`, `mu = ln(mean) - sigma^2 / 2`."""

    mean: float
    std: float

    def __post_init__(self):
        mean = _real(self.mean, "Lognormal.mean")
        if mean <= 0:
            raise ValueError(f"Lognormal.mean must be > 0, got {mean!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", _std(self.std, "Lognormal.std"))

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal distribution."""
        var = math.log1p((self.std / self.mean) ** 2)
        return math.log(self.mean) - var / 2, math.sqrt(var)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        _check_rng(rng)
        mu, sigma = self.mu_sigma
        return rng.lognormal(mu, sigma, _count(n, "n"))


@dataclasses.dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on `[low, high)` (finite, `low <= high`)."""

    low: float
    high: float

    def __post_init__(self):
        low, high = _real(self.low, "Uniform.low"), _real(self.high, "Uniform.high")
        if low > high:
            raise ValueError(f"Uniform.low must be <= Uniform.high, got low={low!r} > high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        _check_rng(rng)
        return rng.uniform(self.low, self.high, _count(n, "n"))
