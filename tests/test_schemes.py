"""Numerical schemes as objects (`brainfuse_jax.integrate`): objects equal their shorthands in
`PointNeuron` and `Cell`, `Cell` accepts only the implicit ones, bad schemes raise with the valid
list, and `Cell(decay="pade")` (the shared gate update) stays within 1e-6 mV of NEURON."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import integrate
from brainfuse_jax.morphology import Cell

from ._cable_cells import ball_and_stick_cell, ball_and_stick_data, ball_and_stick_tree, run_cell
from .test_cable_neuron import spike_count, with_t0

DT = 0.025
OBJECTS = {"neuron": integrate.NeuronTables, "backward_euler": integrate.BackwardEuler,
           "exp_euler": integrate.ExpEuler, "rk4": integrate.RK4, "crank_nicolson": integrate.CrankNicolson}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_point_scheme_object_equals_shorthand(name):
    """Same model (pytree and static fields) and bit-identical traces, with a Ca pool (IB)."""
    obj = OBJECTS[name]()
    assert obj.name == name and integrate.as_scheme(name) == obj
    for make in (bf.HH, bf.PospischilIB):
        by_name, by_obj = make(scheme=name), make(scheme=obj)
        assert by_name.scheme == by_obj.scheme == obj
        assert bool(eqx.tree_equal(by_name, by_obj))
        s0 = by_name.init_state(2, jnp.float32)
        i = jnp.full((2, 400), 8.0, jnp.float32)
        traces = [np.asarray(bf.simulate(m, s0, i, DT, record="v")[1]) for m in (by_name, by_obj)]
        np.testing.assert_array_equal(traces[0], traces[1])
    # the same compiled step serves both (static fields compare equal)
    assert hash(bf.HH(scheme=name).scheme) == hash(obj)


@pytest.mark.parametrize("name", integrate._shorthands.CELL_SCHEMES)
def test_cell_scheme_object_equals_shorthand(name):
    a, b = ball_and_stick_cell("iclamp", scheme=name), ball_and_stick_cell("iclamp", scheme=OBJECTS[name]())
    assert a.scheme == b.scheme == OBJECTS[name]()
    assert bool(eqx.tree_equal(a, b))
    _, va = run_cell(a, n_steps=800, dtype=jnp.float32)
    _, vb = run_cell(b, n_steps=800, dtype=jnp.float32)
    np.testing.assert_array_equal(np.asarray(va["v"]), np.asarray(vb["v"]))


def test_bad_schemes_raise_with_the_valid_list():
    tree = ball_and_stick_tree()
    with pytest.raises(ValueError, match=r"scheme must be one of .*'exp_euler'.*'rk4'.*RK4\(\)") as err:
        bf.HH(scheme="euler")
    assert "'euler'" in str(err.value)
    with pytest.raises(TypeError, match="scheme must be one of"):
        bf.HH(scheme=3)
    with pytest.raises(TypeError, match=r"not a class: pass RK4\(\)"):
        bf.HH(scheme=integrate.RK4)
    # a Cell's cable is implicit: exp_euler and rk4 (names or objects) are refused with the valid list
    for bad in ("rk4", "exp_euler", integrate.RK4(), integrate.ExpEuler(), "euler"):
        with pytest.raises(ValueError, match=r"scheme must be one of \('neuron', 'backward_euler', "
                                             r"'crank_nicolson'\).*for a Cell"):
            Cell(tree, scheme=bad)
    with pytest.raises(TypeError, match="scheme must be one of"):
        Cell(tree, scheme=None)
    with pytest.raises(ValueError, match=r"decay must be one of \('exp', 'pade'\)"):
        Cell(tree, decay="taylor")
    with pytest.raises(ValueError, match=r"decay must be one of \('exp', 'pade'\)"):
        bf.HH(decay="taylor")


def test_cell_rebuild_keeps_scheme_and_decay():
    cell = ball_and_stick_cell("iclamp", scheme=integrate.CrankNicolson(), decay="pade")
    c2 = cell.set_density("pas", 0.2, "dend")
    assert c2.scheme == integrate.CrankNicolson() and c2.decay == "pade"


def test_cell_pade_decays_match_exp_and_neuron(x64):
    """Cell(decay="pade"): gates by the [2/3] Pade approximant (as PointNeuron). Measured on the
    ball-and-stick (dt = 0.025 ms, 100 ms, float64): 1.3e-7 mV from exact decays and from NEURON
    for the iclamp protocol, 1.1e-7 mV for the synapse protocol; tolerance 1e-6 mV."""
    ref = ball_and_stick_data()
    for protocol, key in (("iclamp", "V_iclamp_mV"), ("synapse", "V_synapse_mV")):
        _, out_exp = run_cell(ball_and_stick_cell(protocol))
        _, out_pade = run_cell(ball_and_stick_cell(protocol, decay="pade"))
        v_exp, v_pade = with_t0(out_exp["v"][0]), with_t0(out_pade["v"][0])
        assert 0 < np.abs(v_pade - v_exp).max() < 1e-6, protocol  # really a different update, and close
        assert np.abs(v_pade - ref[key]).max() < 1e-6, protocol
        assert spike_count(v_pade[0]) == spike_count(ref[key][0])


def test_cell_pade_decays_float32():
    """float32: within 0.05 mV of NEURON (as exact decays, tests/test_cable_neuron.py); measured
    3.3e-3 mV (exact decays: 1.9e-3 mV)."""
    ref = ball_and_stick_data()
    _, out = run_cell(ball_and_stick_cell("iclamp", decay="pade"), dtype=jnp.float32)
    assert np.abs(with_t0(out["v"][0]) - ref["V_iclamp_mV"]).max() < 0.05


def test_cell_pade_gradient_matches_exp(x64):
    """d(mean V)/d(gbar) through 200 steps: Pade decays give the exact-decay gradient to 1e-6."""
    def grads(decay):
        cell = ball_and_stick_cell("iclamp", decay=decay)

        def loss(gbar):
            c = eqx.tree_at(lambda c: c.channels["k"].gbar, cell, gbar)
            _, out = run_cell(c, n_steps=200, record={"v": c.probe("v", [("soma", 0.5)])})
            return jnp.mean(out["v"])

        return jax.grad(loss)(cell.channels["k"].gbar)

    g_exp, g_pade = grads("exp"), grads("pade")
    assert np.abs(np.asarray(g_exp)).max() > 0
    np.testing.assert_allclose(np.asarray(g_pade), np.asarray(g_exp), rtol=1e-6, atol=1e-9)


def test_point_crank_nicolson_is_second_order_in_v(x64):
    """PointNeuron(scheme="crank_nicolson") on a passive membrane under a constant current
    (exact solution known): the error falls ~4x per halving of dt (backward Euler: ~2x)."""
    leak = {"leak": bf.Leak(0.3, -65.0)}
    exact = lambda t: -65.0 + 3.0 / 0.3 * (1.0 - np.exp(-0.3 * t))  # noqa: E731  (c_m = 1)
    for name, order in (("crank_nicolson", 2.0), ("backward_euler", 1.0)):
        m = bf.PointNeuron(channels=leak, scheme=name)
        errs = []
        for dt in (0.4, 0.2, 0.1):
            n = int(round(4.0 / dt))
            _, v = bf.simulate(m, m.init_state(1, jnp.float64), jnp.full((1, n), 3.0), dt, record="v")
            errs.append(abs(float(v[0, -1]) - exact(4.0)))
        rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
        assert np.all(np.abs(rates - order) < 0.15), (name, rates)
