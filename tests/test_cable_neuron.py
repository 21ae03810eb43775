"""The ball-and-stick `Cell` against NEURON: stored traces (../shared/reference) and live runs.

Acceptance (issue 4): V at the soma and three dendritic sites within 0.5 mV of NEURON at every
sample (float64, dt = 0.025 ms) for the iclamp, synapse and synapse_weak protocols. With the
"neuron" scheme the agreement is ~1e-10 mV (the same arithmetic as NEURON's fixed step).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.morphology import AlphaSyn, Exp2Syn, ExpSyn

from ._cable_cells import SITES, ball_and_stick_cell, ball_and_stick_data, run_cell

DT = 0.025
PROTOCOLS = {"iclamp": ("V_iclamp_mV", "I_iclamp_nA", "stim.i"),
             "synapse": ("V_synapse_mV", "I_syn_nA", "syn.i"),
             "synapse_weak": ("V_synapse_weak_mV", "I_syn_weak_nA", "syn.i")}


def with_t0(v, v0=-65.0):
    """(T, k) recorded after each step -> (k, T + 1) with the initial sample, as NEURON records."""
    v = np.asarray(v, np.float64).T
    return np.concatenate([np.full((v.shape[0], 1), v0), v], axis=1)


def spike_count(v, thr=0.0):
    return int(np.sum((v[:-1] < thr) & (v[1:] >= thr)))


@pytest.fixture(scope="module")
def ref():
    return ball_and_stick_data()


@pytest.fixture(scope="module")
def live():
    pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")
    from . import _neuron_cable

    return _neuron_cable


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_stored_neuron_traces(x64, ref, protocol):
    key_v, key_i, path_i = PROTOCOLS[protocol]
    cell = ball_and_stick_cell(protocol)
    _, out = run_cell(cell, record={"v": cell.probe("v", SITES), "i": cell.probe(path_i)})
    v = with_t0(out["v"][0])
    err = np.abs(v - ref[key_v]).max(axis=1)
    assert err.max() < 0.5, f"max |dV| per site {dict(zip(ref['site_names'], err))}"
    assert err.max() < 1e-6  # in fact the same arithmetic as NEURON
    # the point process's current as NEURON records it (IClamp.i, ExpSyn.i: g (V_n - e))
    i = np.concatenate([[0.0], np.asarray(out["i"][0])])
    np.testing.assert_allclose(i, ref[key_i], atol=1e-9)
    assert spike_count(v[0]) == spike_count(ref[key_v][0])


def test_stored_traces_float32(ref):
    cell = ball_and_stick_cell("iclamp")
    _, out = run_cell(cell, dtype=jnp.float32)
    assert out["v"].dtype == jnp.float32
    err = np.abs(with_t0(out["v"][0]) - ref["V_iclamp_mV"]).max()
    assert err < 0.05, err


def test_recorded_sites_are_neurons_nodes(ref):
    cell = ball_and_stick_cell("iclamp")
    nodes = [cell.node(loc) for loc in SITES]
    np.testing.assert_allclose(np.asarray(cell.tree.x)[nodes], ref["site_node_x"])


def test_live_neuron_iclamp_backward_euler_and_crank_nicolson(x64, live):
    for scheme, secondorder in (("neuron", 0), ("crank_nicolson", 2)):
        _, v_ref, _ = live.ball_and_stick_neuron(iclamp_amp=0.5, secondorder=secondorder)
        _, out = run_cell(ball_and_stick_cell("iclamp", scheme=scheme))
        v = with_t0(out["v"][0])
        assert np.abs(v - v_ref).max() < 1e-6, (scheme, np.abs(v - v_ref).max(axis=1))
        assert spike_count(v[0]) == spike_count(v_ref[0]) == 5
    # Crank-Nicolson differs from backward Euler: the schemes really are different
    _, v_be, _ = live.ball_and_stick_neuron(iclamp_amp=0.5, secondorder=0)
    assert np.abs(v - v_be).max() > 1.0


def test_live_neuron_events_off_grid(x64, live):
    """Several events, off the step grid, one pair in the same step: NEURON's delivery rule
    (at the first step with t_n + dt/2 >= t_e). Event times are padded with +inf."""
    events = [5.0, 20.01, 20.02, 33.337, 50.0]
    _, v_ref, i_ref = live.ball_and_stick_neuron(events=events, weight=0.003, syn_kw=dict(tau=2.0, e=0.0))
    syn = ExpSyn(("dend", 0.9), tau=2.0, e=0.0, event_times=events + [np.inf], weights=0.003)
    cell = ball_and_stick_cell("none").with_point_processes(syn=syn)
    _, out = run_cell(cell, record={"v": cell.probe("v", SITES), "i": cell.probe("syn.i")})
    assert np.abs(with_t0(out["v"][0]) - v_ref).max() < 1e-6
    np.testing.assert_allclose(np.concatenate([[0.0], np.asarray(out["i"][0])]), i_ref, atol=1e-9)


def test_live_neuron_exp2syn(x64, live):
    events = [10.0, 30.0]
    _, v_ref, i_ref = live.ball_and_stick_neuron(syn="Exp2Syn", events=events, weight=0.006,
                                                 syn_kw=dict(tau1=0.5, tau2=5.0, e=0.0))
    syn = Exp2Syn(("dend", 0.9), tau1=0.5, tau2=5.0, e=0.0, event_times=events, weights=[0.006, 0.006])
    cell = ball_and_stick_cell("none").with_point_processes(syn=syn)
    _, out = run_cell(cell, record={"v": cell.probe("v", SITES), "i": cell.probe("syn.i")})
    assert np.abs(with_t0(out["v"][0]) - v_ref).max() < 1e-6
    np.testing.assert_allclose(np.concatenate([[0.0], np.asarray(out["i"][0])]), i_ref, atol=1e-9)


def test_live_neuron_alpha_synapse(x64, live):
    """The event-driven alpha synapse equals NEURON's AlphaSynapse with onset = t_e + dt/2 (NEURON
    evaluates it at the step midpoints), up to AlphaSynapse's cut-off at 10 tau after onset."""
    t_e, tau, w = 15.0, 2.0, 0.002
    t, v_ref, _ = live.ball_and_stick_neuron(alpha=(t_e + DT / 2, tau, w, 0.0))
    cell = ball_and_stick_cell("none").with_point_processes(
        syn=AlphaSyn(("dend", 0.9), tau=tau, e=0.0, event_times=[t_e], weights=w))
    _, out = run_cell(cell, record={"v": cell.probe("v", SITES), "g": cell.probe("syn.g")})
    v = with_t0(out["v"][0])
    before_cutoff = t <= t_e + 10 * tau
    assert np.abs(v - v_ref)[:, before_cutoff].max() < 1e-6
    assert np.abs(v - v_ref).max() < 0.02  # the cut-off itself (g = 2e-7 uS dropped to 0)
    # peak conductance w at t_e + tau
    g = np.asarray(out["g"][0])
    assert abs(g.max() - w) < 1e-9 and abs((np.argmax(g) + 1) * DT - (t_e + tau)) < 1e-9


def test_injected_current_equals_iclamp(x64, ref):
    """`x` (nA per input location) is injected as an electrode current: the same as the IClamp."""
    cell = ball_and_stick_cell("none", input_locs=(("soma", 0.5),))
    k = np.arange(4000)
    x = jnp.asarray(0.5 * ((k >= 400) & (k < 2400)), jnp.float64)[None, :, None]
    _, v = bf.simulate(cell, cell.init_state(1, jnp.float64), x, DT, record=cell.probe("v", SITES))
    assert np.abs(with_t0(v[0]) - ref["V_iclamp_mV"]).max() < 1e-6
    # input on every node (input_locs=None): shape (B, T, N)
    cell_all = ball_and_stick_cell("none", input_locs=None)
    x_all = jnp.zeros((1, 4000, cell_all.n_nodes)).at[:, :, 0].set(x[:, :, 0])
    _, v_all = bf.simulate(cell_all, cell_all.init_state(1, jnp.float64), x_all, DT, record=cell.probe("v", SITES))
    np.testing.assert_allclose(np.asarray(v_all), np.asarray(v), atol=1e-9)


def test_batches_of_cells(x64, ref):
    """vmap over cells with different parameters == one run each; batch_shape runs copies."""
    cell = ball_and_stick_cell("synapse_weak")
    weights = jnp.array([0.002, 0.01])
    cells = jax.vmap(lambda w: eqx.tree_at(lambda c: c.point_processes["syn"].weights, cell, w))(weights)
    state0 = cell.init_state(1, jnp.float64)
    x = jnp.zeros((1, 4000, 0))

    @eqx.filter_vmap(in_axes=(eqx.if_array(0), None))
    def run(c, s0):
        return bf.simulate(c, s0, x, DT, record=cell.probe("v", SITES))[1]

    v = run(cells, state0)  # (2, 1, T, 4)
    assert np.abs(with_t0(v[0, 0]) - ref["V_synapse_weak_mV"]).max() < 1e-6
    assert np.abs(with_t0(v[1, 0]) - ref["V_synapse_mV"]).max() < 1e-6
    # batch_shape (3,) of identical cells, and a 2-D batch
    for shape in ((2, 2),):
        s0 = cell.init_state(shape, jnp.float64)
        assert s0["v"].shape == (*shape, cell.n_nodes) and s0["step"].shape == shape
        s1, spike = eqx.filter_jit(cell.step)(s0, None, DT)
        assert spike.shape == shape and s1["syn"]["g"].shape == shape
    _, vb = bf.simulate(cell, cell.init_state(3, jnp.float64), jnp.zeros((3, 4000, 0)), DT,
                        record=cell.probe("v", SITES))
    for b in range(3):
        assert np.abs(with_t0(vb[b]) - ref["V_synapse_weak_mV"]).max() < 1e-6


def test_spike_output_and_record_gates(x64, ref):
    cell = ball_and_stick_cell("iclamp")
    _, out = run_cell(cell, record={"spikes": bf.Total("output"), "m": cell.probe("na.m", [("soma", 0.5)]),
                                    "g": "syn.g"})
    assert int(out["spikes"][0]) == 5
    assert out["m"].shape == (1, 4000, 1) and float(out["m"].max()) > 0.9
