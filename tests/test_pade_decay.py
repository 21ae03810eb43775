"""`decay="pade"`: exponential-Euler decays by the [2/3] Pade approximant, and the HH rates from
two shared exponentials. Error bounds, stability, gradients against finite differences, and what
XLA compiles. (Spike times against float64 with exact exponentials: tests/test_fast_math.py.)"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax._math import pade_decay, vtrap
from brainfuse_jax.channels import HHK, HHNa


def test_pade_decay_error_bounds_and_positivity(x64):
    z = jnp.asarray(np.concatenate([np.linspace(0.0, 3.0, 30_001), np.geomspace(3.0, 1e6, 2_000)]))
    p, q, s = pade_decay(z)
    r = np.asarray(p / q)
    exact = np.exp(-np.asarray(z))
    assert np.all((r > 0.0) & (r <= 1.0))  # a decay factor, never negative
    np.testing.assert_allclose(np.asarray(p + z * s), np.asarray(q), rtol=1e-14)  # 1 - p/q = z s/q
    small = np.asarray(z) <= 3.0
    rel = np.abs(r[small] / exact[small] - 1.0)
    for z0, bound in ((0.1, 2e-10), (0.25, 3.3e-8), (1.0, 1.3e-4)):  # documented in pade_decay
        assert rel[np.asarray(z)[small] <= z0].max() <= bound
    assert np.abs(r - exact).max() <= 0.064
    assert r[-1] < 1e-5  # L-stable: -> 0 for z -> inf
    assert float(pade_decay(0.0)[2] / pade_decay(0.0)[1]) == 1.0  # (1 - e^-z)/z at z = 0, no 0/0


def test_hh_rates_equal_the_textbook_formulas(x64):
    v = np.concatenate([np.linspace(-120.0, 80.0, 4001), [-40.0, -55.0, -40.0 + 1e-9, -55.0 - 1e-7]])
    na, k = HHNa().rates(jnp.asarray(v)), HHK().rates(jnp.asarray(v))
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = {"am": 0.1 * (v + 40) / -np.expm1(-(v + 40) / 10), "bm": 4 * np.exp(-(v + 65) / 18),
               "ah": 0.07 * np.exp(-(v + 65) / 20), "bh": 1 / (1 + np.exp(-(v + 35) / 10)),
               "an": 0.01 * (v + 55) / -np.expm1(-(v + 55) / 10), "bn": 0.125 * np.exp(-(v + 65) / 80)}
    ref["am"][v == -40.0], ref["an"][v == -55.0] = 1.0, 0.1  # the limits at the 0/0 points
    got = {"am": na["m"].alpha, "bm": na["m"].beta, "ah": na["h"].alpha, "bh": na["h"].beta,
           "an": k["n"].alpha, "bn": k["n"].beta}
    for name, r in ref.items():
        np.testing.assert_allclose(np.asarray(got[name]), r, rtol=1e-9, err_msg=name)
    # float32: within 2e-6 of float64 everywhere, the 0/0 neighbourhoods included
    v32 = jnp.asarray(v, jnp.float32)
    got32 = HHNa().rates(v32)["m"].alpha
    np.testing.assert_allclose(np.asarray(got32, np.float64), ref["am"], rtol=2e-6)
    np.testing.assert_allclose(np.asarray(HHK().rates(v32)["n"].alpha, np.float64), ref["an"], rtol=2e-6)
    assert float(vtrap(0.0, 10.0, 1.0)) == 10.0  # a given exp is not used at the singular point


def test_compiled_hh_step_has_two_exponentials():
    """With decay="pade" the compiled step keeps two `exp` (the shared y = exp(-(v+65)/80), computed
    once for both channels, and beta_m's); exact decays add four (three gates and V)."""
    def count(decay):
        model = bf.HH(scheme="exp_euler", decay=decay)
        state = model.init_state(16, dtype=jnp.float32)
        hlo = jax.jit(lambda s, x: model.step(s, x, 0.025)).lower(state, jnp.zeros(16, jnp.float32)).compile().as_text()
        return len(re.findall(r"= f32\[16\]\{0\} exponential\(", hlo))
    assert count("pade") == 2
    assert count("exp") == 6


def test_pade_is_stable_and_keeps_gates_in_range_for_large_steps():
    for dt in (0.5, 2.0, 10.0):  # gate z up to ~100, V z up to ~500
        model = bf.HH(scheme="exp_euler", decay="pade")
        final, rec = bf.simulate(model, model.init_state(8, dtype=jnp.float32), jnp.linspace(0.0, 50.0, 8), dt,
                                 n_steps=400, record=["v", "na.m", "na.h", "k.n"])
        assert np.isfinite(np.asarray(rec["v"])).all()
        assert np.abs(np.asarray(rec["v"])).max() < 200.0
        for g in ("na.m", "na.h", "k.n"):
            assert np.asarray(rec[g]).min() >= 0.0 and np.asarray(rec[g]).max() <= 1.0


def test_pade_gradients_match_finite_differences(x64):
    n, t = 6, 1200
    current = jnp.linspace(2.0, 15.0, n)

    def loss(g):
        model = bf.HH(g_na=g[0], g_k=g[1], c_m=g[2], scheme="exp_euler", decay="pade")
        return jnp.mean(bf.simulate(model, model.init_state(n), current, 0.025, n_steps=t, record="v")[1])

    g0 = jnp.array([120.0, 36.0, 1.0])
    grad = np.asarray(jax.jit(jax.grad(loss))(g0))
    for i, h in enumerate((1e-4, 1e-4, 1e-6)):
        e = jnp.zeros(3).at[i].set(h)
        fd = (loss(g0 + e) - loss(g0 - e)) / (2 * h)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-5)


def test_bad_decay_raises():
    with pytest.raises(ValueError, match="decay must be one of"):
        bf.HH(decay="taylor")
