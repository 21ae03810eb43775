"""Connection rules, weight/delay distributions and `connect` (brainfuse_jax/network/_connect.py).

Statistical checks use fixed seeds and a tolerance of 5 standard errors (stated in each test), so
they are deterministic and a correct implementation fails them with probability < 1e-6 per check
over seeds.
"""

import math

import numpy as np
import pytest

from brainfuse_jax.network._connect import (
    AllToAll,
    Constant,
    Explicit,
    FixedInDegree,
    FixedOutDegree,
    FixedTotalNumber,
    Lognormal,
    Normal,
    OneToOne,
    PairwiseBernoulli,
    Synapses,
    Uniform,
    connect,
)


def rng(seed=0):
    return np.random.default_rng(seed)


def assert_no_autapses(pre, post):
    assert not np.any(pre == post)


def assert_no_multapses(pre, post, n_post):
    key = pre * n_post + post
    assert np.unique(key).size == key.size


def within(x, expected, se, what):
    """|x - expected| <= 5 standard errors."""
    assert abs(x - expected) <= 5 * se, f"{what}: {x} vs {expected} (5 SE = {5 * se})"


# ------------------------------------------------------------------------------------- degrees

DEGREE_CASES = [  # (n_pre, n_post, k, same_population, allow_autapses, allow_multapses)
    (300, 200, 40, False, True, True),
    (300, 200, 40, False, True, False),     # sparse distinct draw
    (60, 80, 50, False, True, False),       # dense distinct draw (complement)
    (60, 80, 60, False, True, False),       # every source
    (100, 100, 30, True, False, True),
    (100, 100, 30, True, False, False),
    (50, 50, 49, True, False, False),       # every other neuron
    (50, 50, 45, True, False, False),
]


@pytest.mark.parametrize("n_pre, n_post, k, same, autapses, multapses", DEGREE_CASES)
def test_fixed_in_degree_exact(n_pre, n_post, k, same, autapses, multapses):
    pre, post = FixedInDegree(k, autapses, multapses).connect(n_pre, n_post, rng(), same)
    assert pre.dtype == post.dtype == np.int64
    assert np.array_equal(np.bincount(post, minlength=n_post), np.full(n_post, k))
    assert pre.min() >= 0 and pre.max() < n_pre
    if same and not autapses:
        assert_no_autapses(pre, post)
    if not multapses:
        assert_no_multapses(pre, post, n_post)


@pytest.mark.parametrize("n_pre, n_post, k, same, autapses, multapses", DEGREE_CASES)
def test_fixed_out_degree_exact(n_pre, n_post, k, same, autapses, multapses):
    # roles swapped so that k fits the targets
    pre, post = FixedOutDegree(k, autapses, multapses).connect(n_post, n_pre, rng(1), same)
    assert np.array_equal(np.bincount(pre, minlength=n_post), np.full(n_post, k))
    assert post.min() >= 0 and post.max() < n_pre
    if same and not autapses:
        assert_no_autapses(pre, post)
    if not multapses:
        assert_no_multapses(pre, post, n_pre)


@pytest.mark.parametrize("k, multapses", [(20, True), (20, False), (150, False)])
def test_fixed_in_degree_sources_uniform(k, multapses):
    """Each source is used k * n_post / m times on average (m candidates); binomial standard
    error (conservative for distinct draws); 5 SE per source. Self excluded (no autapses)."""
    n, n_post = 200, 200
    pre, post = FixedInDegree(k, False, multapses).connect(n, n_post, rng(2), True)
    counts = np.bincount(pre, minlength=n)
    q = k / (n - 1)
    expected, se = n_post * q, math.sqrt(n_post * q * (1 - q) + 1e-12)
    assert np.all(np.abs(counts - expected) <= 5 * se), (counts.min(), counts.max(), expected, se)


# ----------------------------------------------------------------------------- Bernoulli & total

@pytest.mark.parametrize("same, autapses", [(False, True), (True, False), (True, True)])
def test_pairwise_bernoulli_count(same, autapses):
    """Number of synapses within 5 SE of p * (pairs allowed); no multapses; no autapses if so."""
    n, p = 700, 0.1
    pre, post = PairwiseBernoulli(p, autapses).connect(n, n, rng(3), same)
    pairs = n * (n - 1) if (same and not autapses) else n * n
    within(pre.size, p * pairs, math.sqrt(pairs * p * (1 - p)), "synapse count")
    assert_no_multapses(pre, post, n)
    if same and not autapses:
        assert_no_autapses(pre, post)


def test_pairwise_bernoulli_pair_frequency():
    """Over R draws every allowed pair is connected with frequency p +- 5 SE, sqrt(p(1-p)/R)."""
    n_pre, n_post, p, reps = 6, 6, 0.3, 2000
    freq = np.zeros((n_pre, n_post))
    g = rng(4)
    for _ in range(reps):
        pre, post = PairwiseBernoulli(p, allow_autapses=False).connect(n_pre, n_post, g, True)
        np.add.at(freq, (pre, post), 1.0)
    freq /= reps
    off = ~np.eye(n_pre, dtype=bool)
    assert np.all(np.diag(freq) == 0)
    assert np.all(np.abs(freq[off] - p) <= 5 * math.sqrt(p * (1 - p) / reps)), freq


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_pairwise_bernoulli_extremes(p):
    pre, post = PairwiseBernoulli(p).connect(30, 20, rng(), False)
    assert pre.size == int(p * 600)


@pytest.mark.parametrize("n, same, autapses, multapses", [
    (5000, False, True, True), (5000, True, False, True),
    (5000, False, True, False), (5000, True, False, False),
    (8000, True, False, False),   # more than half of the 9,900 pairs: complement path
    (9900, True, False, False),   # all of them
])
def test_fixed_total_number_exact(n, same, autapses, multapses):
    pre, post = FixedTotalNumber(n, autapses, multapses).connect(100, 100, rng(5), same)
    assert pre.size == post.size == n
    assert pre.min() >= 0 and pre.max() < 100 and post.min() >= 0 and post.max() < 100
    if same and not autapses:
        assert_no_autapses(pre, post)
    if not multapses:
        assert_no_multapses(pre, post, 100)


def test_fixed_total_number_pair_frequency():
    """Distinct pairs: each allowed pair chosen with probability n / pairs, +- 5 binomial SE."""
    n_pre, n, reps = 5, 8, 3000
    pairs = n_pre * (n_pre - 1)
    freq = np.zeros((n_pre, n_pre))
    g = rng(6)
    for _ in range(reps):
        pre, post = FixedTotalNumber(n, False, False).connect(n_pre, n_pre, g, True)
        np.add.at(freq, (pre, post), 1.0)
    freq /= reps
    q = n / pairs
    assert np.all(np.diag(freq) == 0)
    off = ~np.eye(n_pre, dtype=bool)
    assert np.all(np.abs(freq[off] - q) <= 5 * math.sqrt(q * (1 - q) / reps)), freq


def test_all_to_all_and_one_to_one():
    pre, post = AllToAll().connect(7, 5, rng(), False)
    assert_no_multapses(pre, post, 5)
    assert pre.size == 35
    pre, post = AllToAll(allow_autapses=False).connect(6, 6, rng(), True)
    assert pre.size == 30
    assert_no_autapses(pre, post)
    assert_no_multapses(pre, post, 6)
    pre, post = AllToAll(allow_autapses=False).connect(6, 6, rng(), False)  # different populations
    assert pre.size == 36
    pre, post = OneToOne().connect(9, 9, rng(), False)
    assert np.array_equal(pre, np.arange(9)) and np.array_equal(post, np.arange(9))


# ------------------------------------------------------------------------------ reproducibility

RULES = [AllToAll(), PairwiseBernoulli(0.2), FixedInDegree(10), FixedInDegree(10, False, False),
         FixedOutDegree(10), FixedTotalNumber(500), FixedTotalNumber(500, False, False)]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: repr(r))
def test_seeds_reproducible(rule):
    def make(seed):
        return connect(rule, 60, 60, weight=Normal(1.0, 0.5, low=0.0),
                       delay=Uniform(0.5, 3.0), dt=0.1, rng=rng(seed), same_population=True)

    a, b, c = make(7), make(7), make(8)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a.weight, c.weight)
    if not isinstance(rule, AllToAll):
        assert not (np.array_equal(a.pre, c.pre) and np.array_equal(a.post, c.post))


# -------------------------------------------------------------------------------- distributions

def moments_ok(x, mean, std, what):
    """Sample mean within 5 SE (std / sqrt(n)); sample variance within 5 SE, its SE estimated
    from the sample's fourth central moment, sqrt((m4 - var^2) / n)."""
    n = x.size
    within(x.mean(), mean, std / math.sqrt(n), f"{what} mean")
    c = x - x.mean()
    m4 = np.mean(c**4)
    within(np.mean(c**2), std**2, math.sqrt(max(m4 - std**4, 0.0) / n), f"{what} variance")


N_SAMPLES = 200_000


def test_normal_moments():
    x = Normal(-2.0, 3.0).sample(rng(9), N_SAMPLES)
    assert x.dtype == np.float64 and x.shape == (N_SAMPLES,)
    moments_ok(x, -2.0, 3.0, "Normal")


@pytest.mark.parametrize("mean, std, low, high", [
    (1.0, 2.0, 0.0, math.inf),       # half-line (weights >= 0)
    (0.0, 1.0, -0.5, 2.0),           # two-sided
    (0.0, 1.0, 3.0, 4.0),            # tail only: P = 1.3e-3
])
def test_normal_redraw_bounds_and_truncated_moments(mean, std, low, high):
    """Redraw = the normal truncated to [low, high]: all draws inside, and mean / std those of
    the truncated normal (closed form), within 5 SE."""
    d = Normal(mean, std, low, high)
    x = d.sample(rng(10), N_SAMPLES)
    assert x.min() >= low and x.max() <= high
    a, b = (low - mean) / std, (high - mean) / std
    phi = lambda z: 0.0 if math.isinf(z) else math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    z = d.acceptance
    ta = 0.0 if math.isinf(a) else a * phi(a)
    tb = 0.0 if math.isinf(b) else b * phi(b)
    t_mean = mean + std * (phi(a) - phi(b)) / z
    t_var = std**2 * (1 + (ta - tb) / z - ((phi(a) - phi(b)) / z) ** 2)
    moments_ok(x, t_mean, math.sqrt(t_var), "truncated Normal")


def test_lognormal_moments():
    x = Lognormal(2.0, 0.8).sample(rng(11), N_SAMPLES)
    assert np.all(x > 0)
    moments_ok(x, 2.0, 0.8, "Lognormal")


def test_uniform_and_constant():
    x = Uniform(-1.0, 3.0).sample(rng(12), N_SAMPLES)
    assert x.min() >= -1.0 and x.max() < 3.0
    moments_ok(x, 1.0, 4.0 / math.sqrt(12), "Uniform")
    assert np.array_equal(Constant(0.25).sample(rng(), 4), np.full(4, 0.25))
    assert np.array_equal(Normal(1.0, 0.0).sample(rng(), 3), np.ones(3))


# --------------------------------------------------------------------------- connect & Explicit

def test_connect_types_and_delay_rounding():
    s = connect(FixedInDegree(5), 20, 30, weight=2, delay=1.5, dt=0.1, rng=rng())
    assert isinstance(s, Synapses)
    assert s.pre.dtype == s.post.dtype == s.delay_steps.dtype == np.int64
    assert s.weight.dtype == np.float64
    assert np.all(s.weight == 2.0) and np.all(s.delay_steps == 15)
    # NEST: steps = floor(delay * (1 / dt) + 1/2); the steps NEST 3.10.0 stores at resolution 0.1
    for d, steps in [(0.15, 2), (0.25, 3), (0.35, 4), (1.45, 15), (1.55, 16), (0.149, 1),
                     (2.05, 21), (0.3, 3), (0.05, 1), (1.0, 10)]:
        s = connect(OneToOne(), 3, 3, weight=1.0, delay=d, dt=0.1, rng=rng())
        assert np.all(s.delay_steps == steps), (d, s.delay_steps)
    s = connect(AllToAll(), 40, 40, weight=Uniform(0, 1), delay=Uniform(1.0, 2.0), dt=0.1, rng=rng())
    assert s.delay_steps.min() >= 10 and s.delay_steps.max() <= 20


def test_explicit_lists():
    s = connect(Explicit([0, 2, 2], [1, 0, 0], [0.5, -1.0, 2.0]), 3, 2, weight=None, delay=1.0,
                dt=0.5, rng=rng())
    assert s.pre.tolist() == [0, 2, 2] and s.post.tolist() == [1, 0, 0]
    assert s.weight.tolist() == [0.5, -1.0, 2.0] and s.delay_steps.tolist() == [2, 2, 2]
    s = connect(Explicit([0, 1], [1, 1]), 2, 2, weight=Constant(3.0), delay=1.0, dt=0.5, rng=rng())
    assert s.weight.tolist() == [3.0, 3.0]


def test_explicit_from_matrix_round_trip():
    sparse = pytest.importorskip("scipy.sparse", reason="Explicit.from_matrix of a scipy.sparse matrix needs scipy")
    m = sparse.random(40, 30, density=0.1, format="csr", random_state=13,
                      data_rvs=lambda n: np.random.default_rng(13).normal(size=n) + 5.0)
    for matrix in (m, m.tocoo(), m.toarray()):
        rule = Explicit.from_matrix(matrix)
        s = connect(rule, 40, 30, weight=None, delay=1.0, dt=0.1, rng=rng())
        back = sparse.coo_matrix((s.weight, (s.pre, s.post)), shape=(40, 30)).toarray()
        assert s.pre.size == m.nnz
        assert np.array_equal(back, m.toarray())


# ---------------------------------------------------------------------------------- bad input

def _connect(rule, n_pre=10, n_post=10, **kw):
    args = dict(weight=1.0, delay=1.0, dt=0.1, rng=rng(), same_population=False)
    args.update(kw)
    return connect(rule, n_pre, n_post, **args)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability(p):
    with pytest.raises(ValueError, match=r"PairwiseBernoulli\.p must be a probability in \[0, 1\]"):
        PairwiseBernoulli(p)


def test_bad_negative_degree():
    with pytest.raises(ValueError, match=r"FixedInDegree\.k must be an int >= 0"):
        FixedInDegree(-1)
    with pytest.raises(TypeError, match=r"FixedOutDegree\.k must be an int"):
        FixedOutDegree(2.5)


def test_bad_in_degree_too_large_without_multapses():
    with pytest.raises(ValueError, match=r"FixedInDegree\.k must be <= n_pre = 10 without multapses"):
        _connect(FixedInDegree(11, allow_multapses=False))
    _connect(FixedInDegree(11))  # with multapses: fine


def test_bad_in_degree_self_projection_without_autapses():
    _connect(FixedInDegree(10, allow_multapses=False), same_population=True)  # autapses allowed
    with pytest.raises(ValueError, match=r"FixedInDegree\.k must be <= n_pre - 1 .* = 9"):
        _connect(FixedInDegree(10, allow_autapses=False, allow_multapses=False), same_population=True)


def test_bad_out_degree_too_large_without_multapses():
    with pytest.raises(ValueError, match=r"FixedOutDegree\.k must be <= n_post = 4 without multapses"):
        _connect(FixedOutDegree(5, allow_multapses=False), n_post=4)


def test_bad_total_number_without_multapses():
    _connect(FixedTotalNumber(100, allow_multapses=False))
    with pytest.raises(ValueError, match=r"FixedTotalNumber\.n must be <= n_pre \* n_post = 100"):
        _connect(FixedTotalNumber(101, allow_multapses=False))


def test_bad_one_to_one_sizes():
    with pytest.raises(ValueError, match="OneToOne needs n_pre == n_post"):
        _connect(OneToOne(), 3, 4)


def test_bad_explicit_indices():
    with pytest.raises(ValueError, match=r"Explicit\.post must hold indices < n_post = 10, got 10"):
        _connect(Explicit([0, 1], [3, 10]))
    with pytest.raises(ValueError, match=r"Explicit\.pre must hold indices >= 0"):
        Explicit([0, -1], [3, 4])
    with pytest.raises(ValueError, match=r"Explicit\.pre and Explicit\.post must have the same length"):
        Explicit([0, 1, 2], [3, 4])
    with pytest.raises(TypeError, match=r"Explicit\.pre must hold integer"):
        Explicit([0.0, 1.0], [3, 4])
    with pytest.raises(ValueError, match=r"Explicit\.weight must have the length"):
        Explicit([0, 1], [3, 4], [1.0])
    with pytest.raises(ValueError, match=r"needs \(n_pre, n_post\) = \(3, 4\)"):
        _connect(Explicit.from_matrix(np.ones((3, 4))), 3, 5, weight=None)


def test_bad_std():
    with pytest.raises(ValueError, match=r"Normal\.std must be >= 0"):
        Normal(0.0, -1.0)
    with pytest.raises(ValueError, match=r"Lognormal\.std must be >= 0"):
        Lognormal(1.0, -1.0)


@pytest.mark.parametrize("mean", [0.0, -1.0])
def test_bad_lognormal_mean(mean):
    with pytest.raises(ValueError, match=r"Lognormal\.mean must be > 0"):
        Lognormal(mean, 1.0)


def test_bad_uniform_bounds():
    with pytest.raises(ValueError, match=r"Uniform\.low must be <= Uniform\.high"):
        Uniform(2.0, 1.0)
    with pytest.raises(ValueError, match=r"Normal\.low must be <= Normal\.high"):
        Normal(0.0, 1.0, low=1.0, high=0.0)


def test_bad_normal_bounds_unreachable():
    with pytest.raises(ValueError, match=r"keeps only P = .* redrawing needs P >= 1e-06"):
        Normal(0.0, 1.0, low=6.0).sample(rng(), 10)
    with pytest.raises(ValueError, match="keeps only P = 0"):
        Normal(0.0, 0.0, low=1.0).sample(rng(), 10)


@pytest.mark.parametrize("weight", [math.nan, math.inf, -math.inf])
def test_bad_nonfinite_weight(weight):
    with pytest.raises(ValueError, match=r"weight must be finite"):
        _connect(AllToAll(), weight=weight)
    with pytest.raises(ValueError, match=r"Normal\.mean must be finite"):
        Normal(weight, 1.0)


def test_bad_nonfinite_explicit_weight():
    with pytest.raises(ValueError, match=r"Explicit\.weight must be finite"):
        Explicit.from_matrix(np.array([[0.0, np.nan], [1.0, 0.0]]))


def test_bad_weight_sources():
    with pytest.raises(TypeError, match="weight must be a number or a Distribution"):
        _connect(AllToAll(), weight=None)
    with pytest.raises(ValueError, match="weight must be None when the Explicit rule carries"):
        _connect(Explicit([0], [1], [2.0]), weight=1.0)
    with pytest.raises(TypeError, match="weight must be a real number"):
        _connect(AllToAll(), weight="1")


@pytest.mark.parametrize("delay", [0.04, 0.0, -1.0, Uniform(0.0, 1.0)])
def test_bad_delay_below_one_step(delay):
    with pytest.raises(ValueError, match=r"delay must be at least one step, dt = 0\.1 ms"):
        _connect(AllToAll(), delay=delay)


@pytest.mark.parametrize("dt", [0.0, -0.1])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match=r"dt must be > 0 ms"):
        _connect(AllToAll(), dt=dt)


@pytest.mark.parametrize("n, err", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_population_sizes(n, err):
    with pytest.raises(err, match=r"n_pre must be an int"):
        _connect(AllToAll(), n_pre=n)
    with pytest.raises(err, match=r"n_post must be an int"):
        _connect(AllToAll(), n_post=n)


def test_bad_rng_rule_and_same_population():
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        _connect(AllToAll(), rng=0)
    with pytest.raises(TypeError, match="rule must be a connection Rule"):
        connect("all_to_all", 2, 2, weight=1.0, delay=1.0, dt=0.1, rng=rng())
    with pytest.raises(ValueError, match="same_population=True needs n_pre == n_post"):
        _connect(AllToAll(), 3, 4, same_population=True)
