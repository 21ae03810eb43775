"""The event contract of neurons (`receptors`, `voltage_unit`, `step_events`): the default
behaviour, unknown ports, and LIF's "delta" port."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.neurons import AbstractNeuron, IAFPscDelta, IAFPscExp

DT = 1.0  # ms


def test_receptors_and_voltage_units():
    assert AbstractNeuron.receptors == () and AbstractNeuron.voltage_unit is None
    for cls in (bf.LIF, bf.ALIF, bf.RecurrentLIF):
        assert cls.receptors == ("delta",) and cls.voltage_unit is None
    assert bf.HH().receptors == () and bf.HH().voltage_unit == "mV"
    assert bf.PointNeuron.voltage_unit == "mV"
    assert IAFPscDelta.voltage_unit == IAFPscExp.voltage_unit == "mV"


@pytest.mark.parametrize("events", [None, {}])
def test_default_step_events_without_events_is_step(events):
    """A model without receptors (HH): step_events with no events is exactly step."""
    model = bf.HH()
    state = model.init_state((2,))
    x = jnp.asarray([0.0, 10.0], jnp.float32)
    got = model.step_events(state, x, events, 0.025)
    want = model.step(state, x, 0.025)
    jax.tree.map(np.testing.assert_array_equal, got, want)


def test_default_step_events_unknown_port():
    model = bf.HH()
    state = model.init_state((2,))
    with pytest.raises(ValueError, match=r"unknown event port 'delta' for PointNeuron: its receptors are \(\)"):
        model.step_events(state, jnp.zeros((2,)), {"delta": jnp.ones((2,))}, 0.025)


def test_lif_unknown_port_names_receptors():
    model = bf.LIF()
    state = model.init_state((2,))
    with pytest.raises(ValueError, match=r"unknown event port 'ex' for LIF: its receptors are \('delta',\)"):
        model.step_events(state, jnp.zeros((2,)), {"ex": jnp.ones((2,))}, DT)
    with pytest.raises(TypeError, match="events must be a mapping"):
        model.step_events(state, jnp.zeros((2,)), [jnp.ones((2,))], DT)


@pytest.mark.parametrize("cls", [bf.LIF, bf.ALIF])
def test_lif_delta_port_equals_adding_to_x(cls):
    """Over a run with spikes, step_events(x, {"delta": d}) equals step(x + d)."""
    model = cls(beta=0.8, refractory=2.0)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(-0.1, 0.4, (30, 3, 4)), jnp.float32)
    d = jnp.asarray(rng.choice([0.0, 0.0, 0.5, -0.2], (30, 3, 4)), jnp.float32)

    def run(use_events):
        def body(s, inp):
            xk, dk = inp
            s, out = model.step_events(s, xk, {"delta": dk}, DT) if use_events else model.step(s, xk + dk, DT)
            return s, (s["v"], out)
        return jax.lax.scan(body, model.init_state((3, 4)), (x, d))[1]

    got, want = run(True), run(False)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert 0 < float(jnp.mean(got[1])) < 0.5


def test_recurrent_lif_delta_port():
    model = bf.RecurrentLIF(4, key=jax.random.PRNGKey(0))
    state = model.init_state((2, 4))
    x = jnp.full((2, 4), 0.3, jnp.float32)
    d = jnp.asarray([[0.0, 0.8, 0.0, 0.2]] * 2, jnp.float32)
    jax.tree.map(np.testing.assert_array_equal, model.step_events(state, x, {"delta": d}, DT),
                 model.step(state, x + d, DT))


def test_refractory_lif_ignores_delta_events():
    """While refractory, a LIF ignores delta events as it ignores x: v stays at its post-reset
    value and no spike is emitted however large the event."""
    model = bf.LIF(beta=0.9, refractory=3.0)
    state = model.init_state((1,))
    state, s = model.step_events(state, jnp.zeros((1,)), {"delta": jnp.asarray([1.5])}, DT)
    assert float(s[0]) == 1.0
    v_reset = float(state["v"][0])
    for _ in range(3):  # three refractory steps
        state, s = model.step_events(state, jnp.zeros((1,)), {"delta": jnp.asarray([5.0])}, DT)
        assert float(s[0]) == 0.0 and float(state["v"][0]) == v_reset
    state, s = model.step_events(state, jnp.zeros((1,)), {"delta": jnp.asarray([5.0])}, DT)
    assert float(s[0]) == 1.0  # integrates again afterwards


def test_delta_events_shape_checked():
    model = bf.LIF()
    state = model.init_state((2, 3))
    with pytest.raises(ValueError, match=r"events\['delta'\] must have shape \(2, 3\)"):
        model.step_events(state, jnp.zeros((2, 3)), {"delta": jnp.ones((3,))}, DT)


def test_step_events_under_jit_and_grad():
    """The delta port is differentiable (surrogate) and traceable."""
    model = bf.LIF(beta=0.9)
    state = model.init_state((3,))
    x = jnp.zeros((3,))

    @jax.jit
    def f(d):
        return jnp.sum(model.step_events(state, x, {"delta": d}, DT)[1])

    d = jnp.asarray([0.5, 1.0, 2.0])
    assert float(f(d)) == 2.0
    g = jax.grad(f)(d)
    assert np.all(np.asarray(g) > 0)
