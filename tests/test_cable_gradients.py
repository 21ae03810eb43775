"""Gradients through the cable solver (custom VJP) against finite differences, and a fit of Ra
and the dendritic leak of the ball-and-stick to NEURON's traces."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf

from ._cable_cells import SITES, ball_and_stick_cell, ball_and_stick_data

DT = 0.025
N_STEPS = 1600  # 40 ms: the weak synaptic event at 20 ms and its decay
RA_REF, GPAS_REF = 100.0, 0.1  # ohm cm, mS/cm2 (NEURON's 1e-4 S/cm2)


@pytest.fixture(scope="module")
def problem():
    """loss(log_params) of the ball-and-stick against NEURON's synapse_weak trace, in float64."""
    with jax.enable_x64(True):
        d = ball_and_stick_data()
        cell0 = ball_and_stick_cell("synapse_weak")
        ri0 = cell0.tree.ri_MOhm  # NEURON's seg.ri() at Ra = 100 ohm cm
        dend = jnp.asarray(cell0.region("dend"))
        target = jnp.asarray(d["V_synapse_weak_mV"][:, 1:N_STEPS + 1].T)  # (T, sites)
        state0 = cell0.init_state(1, jnp.float64)
        x = jnp.zeros((1, N_STEPS, 0), jnp.float64)
        probe = cell0.probe("v", SITES)

    def build(p):
        """p = log of (Ra / 100 ohm cm, g_pas / 0.1 mS/cm2, weight / 2 nS, tau / 2 ms)."""
        ra, gpas = RA_REF * jnp.exp(p[0]), GPAS_REF * jnp.exp(p[1])
        c = eqx.tree_at(lambda c: c.tree.ri_MOhm, cell0, ri0 * (ra / RA_REF))  # ri scales with Ra
        c = eqx.tree_at(lambda c: c.channels["pas"].gbar, c, jnp.where(dend, gpas, 0.0))
        c = eqx.tree_at(lambda c: c.point_processes["syn"].weights, c, 0.002 * jnp.exp(p[2]))
        return eqx.tree_at(lambda c: c.point_processes["syn"].tau, c, 2.0 * jnp.exp(p[3]))

    def loss(p):
        cell = build(p)
        _, v = bf.simulate(cell, state0, x, DT, record=probe)
        return jnp.mean((v[0] - target) ** 2)

    return loss


def test_gradient_matches_finite_differences(x64, problem):
    loss = jax.jit(problem)
    p = jnp.log(jnp.array([1.3, 0.8, 1.2, 0.9]))  # away from the optimum: non-trivial gradients
    g = np.asarray(jax.jit(jax.grad(problem))(p))
    eps = 1e-4
    for k, name in enumerate(["Ra", "g_pas", "weight", "tau"]):
        e = jnp.zeros(4).at[k].set(eps)
        fd = float((loss(p + e) - loss(p - e)) / (2 * eps))
        rel = abs(g[k] - fd) / abs(fd)
        assert rel < 1e-4, f"d loss / d log {name}: autodiff {g[k]:.8e}, central FD {fd:.8e}, rel {rel:.1e}"


def test_fit_ra_and_dendritic_leak_to_neuron(x64, problem):
    """Start 50% off in Ra and g_pas; a few dozen Adam steps recover NEURON's values."""
    vg = jax.jit(jax.value_and_grad(lambda q: problem(jnp.concatenate([q, jnp.zeros(2)]))))
    q = jnp.log(jnp.array([1.5, 1.5]))
    opt = optax.adam(0.1)
    opt_state = opt.init(q)
    first, _ = vg(q)
    for _ in range(40):
        value, grad = vg(q)
        updates, opt_state = opt.update(grad, opt_state)
        q = optax.apply_updates(q, updates)
    final, _ = vg(q)
    ra, gpas = np.exp(np.asarray(q)) * [RA_REF, GPAS_REF]
    assert float(final) < 1e-2 * float(first), (float(first), float(final))
    assert abs(ra / RA_REF - 1) < 0.05 and abs(gpas / GPAS_REF - 1) < 0.05, (ra, gpas)
    assert float(problem(jnp.zeros(4))) < 1e-20  # NEURON's own values reproduce its trace
