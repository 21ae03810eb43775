"""Fast math: the polynomial exp, its substitution into a model's step, and what it and the Pade
decays cost in accuracy (spike times within 0.05 ms of the exact exponentials)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.fast_math import fast_exp, MAX_REL_ERROR, with_fast_exp
from brainfuse_kernels._elementwise import primitive_names as _primitive_names


def test_fast_exp_error_bound():
    x = np.linspace(-87.0, 88.0, 200_001, dtype=np.float32)
    got = np.asarray(jax.jit(fast_exp)(x), np.float64)
    rel = np.abs(got / np.exp(x.astype(np.float64)) - 1.0)
    assert rel.max() <= MAX_REL_ERROR
    assert rel.max() > MAX_REL_ERROR / 2  # the documented bound is tight, not loose
    # derivative = value (custom_jvp), also under vmap
    xs = jnp.array([-30.0, -1.0, 0.0, 0.3, 20.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(fast_exp))(xs), fast_exp(xs), rtol=0)


def test_substitution_replaces_every_exp_and_keeps_custom_rules():
    model = bf.HH(scheme="exp_euler")
    state = model.init_state(3)
    exact = _primitive_names(jax.make_jaxpr(lambda s: model.step(s, jnp.zeros(3), 0.025))(state))
    fast_model = bf.HH(scheme="exp_euler", fast_exp=True)
    fast = _primitive_names(jax.make_jaxpr(lambda s: fast_model.step(s, jnp.zeros(3), 0.025))(state))
    assert "exp" in exact and "exp" not in fast
    assert "custom_jvp_call" in fast  # the spike surrogate's gradient rule survives
    f = with_fast_exp(lambda a, b: {"y": jnp.exp(a) + jax.jit(jnp.exp)(b)})
    out = f(jnp.float32(1.0), jnp.float32(2.0))["y"]
    np.testing.assert_allclose(out, np.e + np.e ** 2, rtol=4e-6)


def _spike_times(v, dt):
    """Upward 0-mV crossings, linearly interpolated between samples (ms)."""
    v = np.asarray(v, np.float64)
    a, b = v[:, :-1], v[:, 1:]
    out = []
    for i in range(v.shape[0]):
        (k,) = np.nonzero((a[i] < 0.0) & (b[i] >= 0.0))
        out.append((k + a[i, k] / (a[i, k] - b[i, k])) * dt)
    return out


@pytest.mark.parametrize("option", [dict(fast_exp=True), dict(decay="pade")], ids=["fast_exp", "pade"])
@pytest.mark.parametrize("make", [lambda **k: bf.HH(scheme="exp_euler", **k),
                                  lambda **k: bf.PospischilRS(scheme="exp_euler", **k),
                                  lambda **k: bf.HH(scheme="backward_euler", **k)], ids=["hh", "rs", "hh_be"])
def test_spike_times_within_005_ms(x64, make, option):
    """96 neurons, 400 ms of constant 0-20 uA/cm2: float32 with fast math (`fast_exp` or Pade
    decays) has the same spike counts as float64 with exact exponentials and spike times within
    0.05 ms (the issue's criterion). Pospischil's slow IM gate (tau up to 608 ms, exp(-dt/tau) =
    1 - 4e-5) checks the slow end: it is why fast_exp's first three terms are exact (an
    unconstrained fit moved spikes by 0.125 ms)."""
    n, t, dt = 96, 16_000, 0.025
    current = jnp.linspace(0.0, 20.0, n)
    runs = []
    for opts, dtype in (({}, jnp.float64), (option, jnp.float32)):
        model = make(**opts)
        s0 = model.init_state(n, dtype=dtype, v0=-70.0)
        v = bf.simulate(model, s0, current.astype(dtype), dt, n_steps=t, record="v")[1]
        runs.append(_spike_times(v, dt))
    total = 0
    for a, b in zip(*runs):
        assert len(a) == len(b)
        if len(a):
            assert np.max(np.abs(a - b)) <= 0.05
        total += len(a)
    assert total > 1000


def test_gradients_close_to_exact():
    state = bf.HH(scheme="exp_euler").init_state(8)
    x = jnp.broadcast_to(jnp.linspace(0.0, 15.0, 8)[:, None], (8, 800))

    def loss(g_na, fast):
        model = bf.HH(g_na=g_na, scheme="exp_euler", fast_exp=fast)
        return jnp.mean(bf.simulate(model, state, x, 0.025, record="v")[1])

    exact, fast = (jax.grad(loss)(120.0, f) for f in (False, True))
    np.testing.assert_allclose(fast, exact, rtol=2e-2)
