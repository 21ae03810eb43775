"""Gradients of HH traces: autodiff vs central finite differences in float64, and NaN safety."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf

DT, N_STEPS = 0.025, 2000  # 50 ms

PARAMS = {
    "c_m": lambda m: m.c_m,
    "temperature": lambda m: m.temperature,
    "g_na": lambda m: m.channels["na"].gbar,
    "e_na": lambda m: m.channels["na"].e_rev,
    "g_k": lambda m: m.channels["k"].gbar,
    "e_k": lambda m: m.channels["k"].e_rev,
    "g_l": lambda m: m.channels["leak"].gbar,
    "e_l": lambda m: m.channels["leak"].e_rev,
}


def trace_loss(model, target, stim):
    _, v = bf.simulate(model, model.init_state(1), stim, DT, record="v")
    return jnp.mean((v - target) ** 2)


@pytest.mark.parametrize("scheme", ["neuron", "exp_euler"])
def test_grad_matches_central_differences(x64, scheme):
    t = jnp.arange(N_STEPS, dtype=jnp.float64) * DT
    stim = (8.0 + 4.0 * jnp.sin(2 * jnp.pi * t / 20.0))[None, :]  # uA/cm2, several spikes
    target_model = bf.HH(g_na=110.0, g_k=40.0, g_l=0.25, scheme=scheme)
    _, target = bf.simulate(target_model, target_model.init_state(1), stim, DT, record="v")
    assert int(jnp.sum(target > 0.0)) > 0
    model = bf.HH(scheme=scheme, temperature=8.0)
    _, spikes = bf.simulate(model, model.init_state(1), stim, DT)
    assert spikes.sum() >= 2, "the 50 ms run must contain spikes"

    loss = jax.jit(trace_loss)
    grads = jax.jit(jax.grad(trace_loss))(model, target, stim)
    for name, where in PARAMS.items():
        p = float(where(model))
        h = 1e-6 * max(abs(p), 1.0)
        up = eqx.tree_at(where, model, jnp.asarray(p + h))
        down = eqx.tree_at(where, model, jnp.asarray(p - h))
        fd = (float(loss(up, target, stim)) - float(loss(down, target, stim))) / (2 * h)
        g = float(where(grads))
        assert abs(g - fd) <= 1e-4 * abs(fd), f"{scheme} d/d{name}: autodiff {g}, FD {fd}"


@pytest.mark.parametrize(
    "rate, v_sing, value, slope",
    [  # limits of 0.1(v+40)/(1-exp(-(v+40)/10)) and 0.01(v+55)/(1-exp(-(v+55)/10))
        (lambda v: bf.HHNa().rates(v)["m"].alpha, -40.0, 1.0, 0.05),
        (lambda v: bf.HHK().rates(v)["n"].alpha, -55.0, 0.1, 0.005),
    ],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_rates_exact_at_removable_singularities(x64, rate, v_sing, value, slope, dtype):
    """Value and gradient at the 0/0 points equal the analytic limits (no NaN through `where`)."""
    val, grad = jax.value_and_grad(rate)(jnp.asarray(v_sing, dtype))
    np.testing.assert_allclose(float(val), value, rtol=1e-6)
    np.testing.assert_allclose(float(grad), slope, rtol=1e-5)
    # ... and the function is smooth across the switch to the series.
    for dv in (1e-4, 2e-3):
        np.testing.assert_allclose(float(rate(jnp.asarray(v_sing + dv, dtype))), value + slope * dv, rtol=1e-5)


def test_float32_population_gradient_has_no_nan():
    """1,000 neurons over 1 s in float32 (where textbook rates hit 0/0): gradient stays finite."""
    n, steps = 1000, 4000
    stim = jnp.broadcast_to(jnp.linspace(0.0, 20.0, n, dtype=jnp.float32)[:, None], (n, steps))
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(n, jnp.float32)
    # Force many neurons to sit exactly on the singular voltages at some step.
    state0 = {**state0, "v": state0["v"].at[::3].set(-40.0).at[1::3].set(-55.0)}

    def loss(model):
        _, v = bf.simulate(model, state0, stim, DT, record="v", remat=True)
        return jnp.mean(v)

    grads = jax.jit(jax.grad(loss))(model)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert jnp.all(jnp.isfinite(leaf))
