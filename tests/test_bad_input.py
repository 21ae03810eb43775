"""Bad input gives a clear ValueError/TypeError naming the argument (one test per case)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import brainfuse_jax as bf

DT = 0.025


@pytest.fixture
def hh():
    model = bf.HH()
    return model, model.init_state(3), jnp.zeros((3, 10))


@pytest.mark.parametrize("dt", [0.0, -0.025, float("nan")])
def test_dt_not_positive(hh, dt):
    model, s0, x = hh
    with pytest.raises(ValueError, match="dt must be"):
        bf.simulate(model, s0, x, dt)
    with pytest.raises(ValueError, match="dt must be"):
        model.step(s0, x[:, 0], dt)


def test_dt_not_positive_inside_jit(hh):
    model, s0, x = hh
    run = eqx.filter_jit(lambda dt: bf.simulate(model, s0, x, dt)[1])
    with pytest.raises(eqx.EquinoxRuntimeError, match="dt must be > 0"):
        jax.block_until_ready(run(jnp.asarray(-1.0)))


def test_dt_not_a_number(hh):
    model, s0, x = hh
    with pytest.raises(TypeError, match="dt must be a number"):
        bf.simulate(model, s0, x, "0.025")


def test_input_batch_mismatch(hh):
    model, s0, _ = hh
    with pytest.raises(ValueError, match=r"inputs must have shape \(3, 10\)"):
        bf.simulate(model, s0, jnp.zeros((4, 10)), DT)


def test_input_missing_time_axis(hh):
    model, s0, _ = hh
    with pytest.raises(ValueError, match="missing time axis"):
        bf.simulate(model, s0, jnp.zeros((3,)), DT)


def test_step_input_shape_mismatch(hh):
    model, s0, _ = hh
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        model.step(s0, jnp.zeros((2,)), DT)


def test_nan_in_inputs(hh):
    model, s0, x = hh
    with pytest.raises(ValueError, match="inputs must be finite"):
        bf.simulate(model, s0, x.at[1, 4].set(jnp.nan), DT)


@pytest.mark.parametrize("bad", [jnp.nan, jnp.inf, -jnp.inf])
def test_nan_in_inputs_inside_jit(hh, bad):
    model, s0, x = hh
    run = eqx.filter_jit(lambda x: bf.simulate(model, s0, x, DT)[1])
    jax.block_until_ready(run(x.at[1, 4].set(1e30)))  # large but finite: no error
    with pytest.raises(eqx.EquinoxRuntimeError, match="inputs must be finite"):
        jax.block_until_ready(run(x.at[1, 4].set(bad)))


@pytest.mark.parametrize("adjoint", [bf.DirectAdjoint(), bf.CheckpointAdjoint(every=3), bf.ForwardMode()])
def test_nan_in_inputs_under_grad(hh, adjoint):
    """Inputs are checked block by block inside each time loop, the tail block included."""
    model, s0, x = hh

    def loss(m, x):
        return bf.simulate(m, s0, x, DT, record=bf.Total("v"), adjoint=adjoint)[1].sum()
    grad = eqx.filter_jit(eqx.filter_grad(loss))
    jax.block_until_ready(grad(model, x))
    with pytest.raises(eqx.EquinoxRuntimeError, match="inputs must be finite"):
        jax.block_until_ready(grad(model, x.at[0, -1].set(jnp.nan)))


@pytest.mark.parametrize("kwarg, name", [("g_na", "HHNa.gbar"), ("g_k", "HHK.gbar"), ("g_l", "Leak.gbar")])
def test_negative_conductance(kwarg, name):
    with pytest.raises(ValueError, match=f"{name} must be >= 0 mS/cm2"):
        bf.HH(**{kwarg: -1.0})


def test_negative_conductance_per_neuron():
    with pytest.raises(ValueError, match=r"HHNa.gbar must be >= 0 mS/cm2; got -5.0 \(1 of 3"):
        bf.HH(g_na=jnp.array([120.0, -5.0, 100.0]))


@pytest.mark.parametrize("c_m", [0.0, -1.0])
def test_nonpositive_capacitance(c_m):
    with pytest.raises(ValueError, match="c_m must be > 0 uF/cm2"):
        bf.HH(c_m=c_m)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="scheme must be one of"):
        bf.HH(scheme="euler")


def test_channels_must_be_channels():
    with pytest.raises(TypeError, match=r"channels\['na'\] must be a Channel"):
        bf.PointNeuron(channels={"na": 1.0})


def test_bad_batch_shape():
    with pytest.raises(ValueError, match="batch_shape"):
        bf.HH().init_state((-1,))
    with pytest.raises(TypeError, match="batch_shape"):
        bf.HH().init_state("3")


def test_state_without_batch_axis():
    model = bf.HH()
    with pytest.raises(ValueError, match="no batch axis"):
        bf.simulate(model, model.init_state(()), jnp.zeros((1, 10)), DT)


def test_nan_initial_voltage():
    with pytest.raises(ValueError, match="v0 must be finite"):
        bf.HH().init_state(2, v0=float("nan"))


def test_bad_chunk_size(hh):
    model, s0, x = hh
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        bf.simulate(model, s0, x, DT, chunk_size=0)


def test_model_not_a_neuron(hh):
    _, s0, x = hh
    with pytest.raises(TypeError, match="model must be a neuron"):
        bf.simulate(lambda s, x, dt: (s, x), s0, x, DT)


def test_negative_conductance_in_a_model_built_under_vmap():
    """Construction checks survive tracing: a model built inside vmap/jit carries eqx.error_if."""
    build_and_run = eqx.filter_jit(jax.vmap(
        lambda g: bf.simulate(bf.HH(g_na=g), bf.HH().init_state(1), jnp.zeros((1, 5)), DT, record="v")[1]))
    assert build_and_run(jnp.array([100.0, 120.0])).shape == (2, 1, 5)
    with pytest.raises(eqx.EquinoxRuntimeError, match="HHNa.gbar must be >= 0"):
        jax.block_until_ready(build_and_run(jnp.array([100.0, -1.0])))
