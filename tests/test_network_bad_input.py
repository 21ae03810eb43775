"""Bad input to networks: each a clear error (or a raised flag), one test each."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.network import (CurrentDrive, Explicit, FixedInDegree, Network, PairwiseBernoulli, PoissonDrive,
                                   Population, Projection)

LIF = bf.LIF(beta=0.9)
IAF = bf.IAFPscDelta()


def _net(projections=(), drives=(), **kw):
    return Network({"A": Population(IAF, 20), "B": Population(IAF, 10)}, projections, dt=0.1, drives=drives, **kw)


def test_probability_outside_unit_interval():
    with pytest.raises(ValueError, match="p"):
        _net([Projection("A", "B", PairwiseBernoulli(1.5), bf.Delta(), 0.1, 1.0)])


def test_in_degree_larger_than_source_population():
    with pytest.raises(ValueError, match="k"):
        _net([Projection("B", "A", FixedInDegree(11, allow_multapses=False), bf.Delta(), 0.1, 1.0)])


def test_delay_below_one_step():
    with pytest.raises(ValueError, match="delay"):
        _net([Projection("A", "B", FixedInDegree(2), bf.Delta(), 0.1, 0.04)])


def test_delay_beyond_the_buffer():
    with pytest.raises(ValueError, match="delays must be below"):
        _net([Projection("A", "B", FixedInDegree(2), bf.Delta(), 0.1, 5000.0)])


def test_negative_conductance_weights():
    hh = Network({"A": Population(IAF, 5), "H": Population(bf.HH(), 3)},
                 [Projection("A", "H", FixedInDegree(2), bf.CondExp(), 0.1, 1.0)], dt=0.1)
    assert hh.conn.n_synapses == 6
    with pytest.raises(ValueError, match="must be >= 0"):
        Network({"A": Population(IAF, 5), "H": Population(bf.HH(), 3)},
                [Projection("A", "H", FixedInDegree(2), bf.CondExp(), -0.1, 1.0)], dt=0.1)
    with pytest.raises(ValueError, match="must be >= 0"):
        PoissonDrive("H", 100.0, -1.0, synapse=bf.CondExp())


def test_synapse_the_target_cannot_receive():
    with pytest.raises(ValueError, match="population 'H'.*cannot receive Delta"):
        Network({"A": Population(IAF, 5), "H": Population(bf.HH(), 3)},
                [Projection("A", "H", FixedInDegree(2), bf.Delta(), 0.1, 1.0)], dt=0.1)
    with pytest.raises(ValueError, match="population 'L'.*needs a membrane potential in mV"):
        Network({"A": Population(IAF, 5), "L": Population(LIF, 3)},
                [Projection("A", "L", FixedInDegree(2), bf.CondExp(), 0.1, 1.0)], dt=0.1)
    with pytest.raises(ValueError, match="cannot receive Port"):
        _net([Projection("A", "B", FixedInDegree(2), bf.Port("ex"), 0.1, 1.0)])


def test_spike_buffer_overflow_raises():
    net = _net([Projection("A", "A", FixedInDegree(2), bf.Delta(), 0.1, 1.0)], [CurrentDrive("A", 800.0)],
               spike_capacity=5)
    final, _ = bf.simulate(net, net.init_state(1), jnp.zeros((1, 30)), 0.1, n_steps=300, record=None)
    with pytest.raises(ValueError, match="overflowed"):
        net.spikes(final)


def test_poisson_rate_beyond_its_table_raises_the_flag():
    net = _net(drives=[PoissonDrive("A", 1000.0, 0.1)], spike_capacity=100)
    fast = eqx.tree_at(lambda n: n.drives[0].rate, net, jnp.asarray(50_000.0))
    final, _ = bf.simulate(fast, fast.init_state(1), jnp.zeros((1, 30)), 0.1, n_steps=5, record=None)
    assert bool(final["overflow"][0])
    with pytest.raises(ValueError, match="max_rate"):
        fast.spikes(final)
    with pytest.raises(ValueError, match="max_rate"):
        PoissonDrive("A", 1000.0, 0.1, max_rate=10.0)


def test_unknown_populations():
    with pytest.raises(ValueError, match="unknown population 'C'"):
        _net([Projection("C", "B", FixedInDegree(2), bf.Delta(), 0.1, 1.0)])
    with pytest.raises(ValueError, match="unknown population 'C'"):
        _net([Projection("A", "C", FixedInDegree(2), bf.Delta(), 0.1, 1.0)])
    with pytest.raises(ValueError, match="unknown population 'C'"):
        _net(drives=[PoissonDrive("C", 10.0, 0.1)])
    with pytest.raises(ValueError, match="unknown population 'C'"):
        _net(drives=[CurrentDrive("C", 10.0)])


def test_dt_other_than_the_networks():
    net = _net([Projection("A", "B", FixedInDegree(2), bf.Delta(), 0.1, 1.0)])
    with pytest.raises(ValueError, match="dt must be the network's dt = 0.1"):
        net.step(net.init_state(1), jnp.zeros((1, 30)), 0.2)
    # simulate hands the adjoints dt as an array: checked when the step runs
    with pytest.raises(eqx.EquinoxRuntimeError, match="dt must be the network's dt = 0.1"):
        bf.simulate(net, net.init_state(1), jnp.zeros((1, 30)), 0.2, n_steps=3)
    with pytest.raises(ValueError, match="dt must be a positive"):
        Network({"A": Population(IAF, 2)}, dt=0.0)


def test_wrong_input_shape():
    net = _net()
    with pytest.raises(ValueError, match="inputs must have shape"):
        bf.simulate(net, net.init_state(1), jnp.zeros((1, 5, 29)), 0.1)
    with pytest.raises(ValueError, match="x must have shape"):
        net.step(net.init_state(1), jnp.zeros((1, 29)), 0.1)


def test_nan_input_is_an_error():
    net = _net()
    with pytest.raises(ValueError, match="inputs"):
        bf.simulate(net, net.init_state(1), jnp.full((1, 5, 30), jnp.nan), 0.1)


def test_bad_batch_shape_population_and_drive_arguments():
    net = _net()
    with pytest.raises(ValueError, match="batch_shape is \\(B,\\)"):
        net.init_state((2, 3))
    with pytest.raises(ValueError, match="positive int"):
        Population(IAF, 0)
    with pytest.raises(TypeError, match="neuron model"):
        Population("iaf", 3)
    with pytest.raises(ValueError, match="rate"):
        PoissonDrive("A", -5.0, 0.1)
    with pytest.raises(ValueError, match="weight"):
        PoissonDrive("A", 5.0, np.nan)
    with pytest.raises(ValueError, match="rate must have shape"):
        _net(drives=[PoissonDrive("A", np.ones(7), 0.1)])
    with pytest.raises(ValueError, match="strictly increasing"):
        CurrentDrive("A", [1.0, 2.0], times=[5.0, 1.0])
    with pytest.raises(TypeError, match="Projection synapse"):
        Projection("A", "B", FixedInDegree(2), bf.ExpSyn(loc=0), 0.1, 1.0)


def test_propagation_choice():
    with pytest.raises(ValueError, match="propagation must be"):
        _net([Projection("A", "B", FixedInDegree(2), bf.Delta(), 0.1, 1.0)], propagation="fast")
    from brainfuse_jax.network import Uniform
    with pytest.raises(ValueError, match="one delay for all synapses"):
        _net([Projection("A", "B", FixedInDegree(5), bf.Delta(), 0.1, Uniform(0.5, 3.0))], propagation="dense")
    assert _net([Projection("A", "B", FixedInDegree(5), bf.Delta(), 0.1, 1.0)]).conn.dense  # small and dense: auto
    assert not _net([Projection("A", "B", FixedInDegree(5), bf.Delta(), 0.1, 1.0)], propagation="event").conn.dense


def test_explicit_indices_out_of_range():
    with pytest.raises(ValueError):
        _net([Projection("A", "B", Explicit([0, 25], [0, 1]), bf.Delta(), 0.1, 1.0)])
