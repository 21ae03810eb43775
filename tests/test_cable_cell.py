"""`Cell` API: regions and densities, a one-compartment cell equals the `PointNeuron`, the units,
recompilation, truncated BPTT."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.channels import PospischilCaT, PospischilKd, PospischilM, PospischilNa
from brainfuse_jax.morphology import Cell, CompartmentTree, ExpSyn, IClamp

from ._cable_cells import SITES, ball_and_stick_cell, run_cell

DT = 0.025


def one_compartment(area_um2=2000.0):
    return CompartmentTree(parent=[-1], area_um2=[area_um2], ri_MOhm=[0.0], section=[0], x=[0.5],
                           swc_type=[1], dist_um=[0.0], section_names=("soma",))


@pytest.mark.parametrize("scheme,decay", [("neuron", "exp"), ("backward_euler", "exp"), ("crank_nicolson", "exp"),
                                          ("neuron", "pade")])
def test_one_compartment_equals_point_neuron(x64, scheme, decay):
    """Same channels (incl. an instantaneous gate) and current: nA = uA/cm2 * area * 1e-5. The
    scheme and the gate update (exact or Pade decays) are the same objects in both models."""
    channels = {"na": PospischilNa(50.0), "kd": PospischilKd(5.0), "km": PospischilM(0.07),
                "cat": PospischilCaT(0.4), "leak": bf.Leak(0.1, -70.0)}
    area = 2000.0
    point = bf.PointNeuron(channels=channels, temperature=36.0, scheme=scheme, c_m=1.0, decay=decay)
    cell = Cell(one_compartment(area), channels, temperature=36.0, scheme=scheme, decay=decay)
    k = np.arange(4000)
    i_density = jnp.asarray(np.where((k >= 400) & (k < 3000), 6.0, -1.0))[None, :]  # uA/cm2
    _, v_point = bf.simulate(point, point.init_state(1, jnp.float64), i_density, DT, record="v")
    _, v_cell = bf.simulate(cell, cell.init_state(1, jnp.float64), (i_density * area * 1e-5)[..., None],
                            DT, record="v")
    assert int(np.sum(np.diff((np.asarray(v_point[0]) > 0).astype(int)) == 1)) >= 3
    np.testing.assert_allclose(np.asarray(v_cell[0, :, 0]), np.asarray(v_point[0]), atol=1e-9)


def test_calcium_dependent_channels_rejected():
    from brainfuse_jax.channels import DestexheSK

    with pytest.raises(ValueError, match="depends on intracellular Ca"):
        Cell(one_compartment(), {"sk": DestexheSK()})


def test_regions_and_densities():
    cell = ball_and_stick_cell("iclamp")
    soma, dend = cell.region("soma"), cell.region("dend")
    assert soma.sum() == 1 and dend.sum() == 51 and not (soma & dend).any()
    np.testing.assert_array_equal(cell.region(3), dend)
    np.testing.assert_array_equal(cell.region(["soma", "dend"]), np.ones(52, bool))
    np.testing.assert_array_equal(cell.region(lambda d: d > 250.0), np.asarray(cell.tree.dist_um) > 250.0)
    np.testing.assert_array_equal(cell.region(soma), soma)
    # channel placement: zero where absent
    np.testing.assert_allclose(np.asarray(cell.channels["na"].gbar), np.where(soma, 120.0, 0.0))
    np.testing.assert_allclose(np.asarray(cell.channels["pas"].gbar), np.where(dend, 0.1, 0.0))
    # a density as a function of the distance from the soma, in one region only
    c2 = cell.set_density("pas", lambda d: 0.1 + 1e-4 * d, where=lambda d: d > 250.0)
    g = np.asarray(c2.channels["pas"].gbar)
    far = np.asarray(cell.tree.dist_um) > 250.0
    np.testing.assert_allclose(g[far], 0.1 + 1e-4 * np.asarray(cell.tree.dist_um)[far])
    np.testing.assert_allclose(g[~far], np.asarray(cell.channels["pas"].gbar)[~far])
    # re-inserting merges per node, including the reversal potential
    c3 = cell.insert("pas", bf.Leak(0.2, -70.0), where=lambda d: d > 400.0)
    far = np.asarray(cell.tree.dist_um) > 400.0
    np.testing.assert_allclose(np.asarray(c3.channels["pas"].e_rev), np.where(far, -70.0, -65.0))
    np.testing.assert_allclose(np.asarray(c3.channels["pas"].gbar), np.where(far, 0.2, np.where(dend, 0.1, 0.0)))
    c4 = cell.set("cm", 2.0, "dend")
    np.testing.assert_allclose(np.asarray(c4.cm), np.where(dend, 2.0, 1.0))


def test_channels_live_in_their_regions(x64):
    """A channel placed by `insert` is evaluated only in its region (`channel_mask`): the same
    voltages as the cell whose channels span every node with gbar = 0 outside (to rounding), gates
    outside the region untouched, and gbar outside it without effect or gradient."""
    cell = ball_and_stick_cell("synapse")
    soma, dend = cell.region("soma"), cell.region("dend")
    np.testing.assert_array_equal(cell.channel_mask("na"), soma)
    np.testing.assert_array_equal(cell.channel_mask("pas"), dend)
    with pytest.raises(ValueError, match="no channel named"):
        cell.channel_mask("kdr")
    # the reference: the same channel values given to the constructor (every node)
    full = Cell(cell.tree, cell.channels, temperature=6.3, input_locs=(),
                point_processes=cell.point_processes)
    assert all(full.channel_mask(c).all() for c in full.channels)
    (s0, out), (_, out_f) = run_cell(cell, 2000), run_cell(full, 2000)
    np.testing.assert_allclose(np.asarray(out["v"]), np.asarray(out_f["v"]), atol=1e-10)
    final = bf.simulate(cell, s0, jnp.zeros((1, 200, 0)), DT, record=None)[0]
    np.testing.assert_array_equal(np.asarray(final["na"]["m"])[:, dend], np.asarray(s0["na"]["m"])[:, dend])
    assert not np.allclose(np.asarray(final["na"]["m"])[:, soma], np.asarray(s0["na"]["m"])[:, soma])

    def loss(gbar):
        c = eqx.tree_at(lambda c: c.channels["na"].gbar, cell, gbar)
        return jnp.sum(bf.simulate(c, s0, jnp.zeros((1, 400, 0)), DT, record="v")[1])

    g = np.asarray(jax.grad(loss)(cell.channels["na"].gbar))
    assert np.all(g[dend] == 0.0) and np.all(g[soma] != 0.0)
    # setting a density outside the region inserts the channel there; inside, the region stays
    np.testing.assert_array_equal(cell.set_density("na", 10.0, "dend").channel_mask("na"), soma | dend)
    np.testing.assert_array_equal(cell.set_density("pas", 0.2, "dend").channel_mask("pas"), dend)
    np.testing.assert_array_equal(cell.insert("na", bf.HHNa(50.0), "dend").channel_mask("na"), soma | dend)


def test_no_recompilation_for_new_parameter_values(x64):
    """Cells that differ only in array values (channel densities, weights, the tree's ri) and
    re-created probes reuse one compilation of `simulate`."""
    from brainfuse_jax.simulate import _unroll

    cell = ball_and_stick_cell("synapse_weak")
    s0 = cell.init_state(1, jnp.float64)
    x = jnp.zeros((1, 100, 0))
    bf.simulate(cell, s0, x, DT, record=cell.probe("v", SITES))
    before = _unroll._cached._cache_size()
    for c in (cell.set_density("pas", 0.2, "dend"),
              eqx.tree_at(lambda c: c.tree.ri_MOhm, cell, cell.tree.ri_MOhm * 2.0),
              ball_and_stick_cell("synapse")):
        bf.simulate(c, s0, x, DT, record=c.probe("v", SITES))
    assert _unroll._cached._cache_size() == before


@pytest.mark.slow  # ~20 s: four compilations of generic `simulate` machinery
def test_truncated_bptt(x64):
    """chunk_size cuts the gradient through the state between chunks, not the forward values."""
    cell = ball_and_stick_cell("synapse_weak")
    s0 = cell.init_state(1, jnp.float64)
    x = jnp.zeros((1, 1000, 0))
    probe = cell.probe("v", SITES)

    def loss(w, **kw):
        c = eqx.tree_at(lambda c: c.point_processes["syn"].weights, cell, w)
        return jnp.sum((bf.simulate(c, s0, x, DT, record=probe, **kw)[1][..., 0] + 65.0) ** 2)

    # the event at 20 ms (step 800) falls in the chunk [600, 900); [900, 1000) loses that path
    v_chunk = bf.simulate(cell, s0, x, DT, record=probe, chunk_size=300)[1]
    v_full = bf.simulate(cell, s0, x, DT, record=probe)[1]
    np.testing.assert_allclose(np.asarray(v_chunk), np.asarray(v_full), atol=1e-12)
    g = jax.grad(loss)(jnp.asarray(0.002))
    g_chunk = jax.grad(lambda w: loss(w, chunk_size=300))(jnp.asarray(0.002))
    assert 0 < float(g_chunk) < float(g)


def test_point_process_currents_units(x64):
    """An IClamp of I nA into a passive one-compartment cell charges it as I / C (nA / nF = mV/ms)."""
    area = 1000.0  # um2 -> C = 1 uF/cm2 * 1000 um2 = 0.01 nF
    cell = Cell(one_compartment(area), {"pas": bf.Leak(0.0, -65.0)}, input_locs=(),
                point_processes={"stim": IClamp(0, delay=0.0, dur=1.0, amp=0.01)})
    _, v = bf.simulate(cell, cell.init_state(1, jnp.float64), jnp.zeros((1, 80, 0)), DT, record="v")
    # 0.01 nA into 0.01 nF: 1 mV/ms for 1 ms (40 steps), then flat
    np.testing.assert_allclose(float(v[0, 39, 0]), -64.0, atol=1e-9)
    np.testing.assert_allclose(float(v[0, -1, 0]), -64.0, atol=1e-9)
    # an ExpSyn of 1 nS with E = V0 + 10 mV at a node with no leak
    syn = ExpSyn(0, tau=1e9, e=-55.0, event_times=[0.0], weights=1e-3)
    cell = Cell(one_compartment(area), {"pas": bf.Leak(0.0, -65.0)}, input_locs=(), point_processes={"syn": syn})
    _, v = bf.simulate(cell, cell.init_state(1, jnp.float64), jnp.zeros((1, 4000, 0)), DT, record="v")
    # tau_m = C / g = 0.01 nF / 0.001 uS = 10 ms: V -> E exponentially (backward Euler per step)
    expected = -55.0 - 10.0 * (1.0 / (1.0 + DT / 10.0)) ** np.arange(1, 4001)
    np.testing.assert_allclose(np.asarray(v[0, :, 0]), expected, atol=1e-6)


def test_native_and_xla_tree_solves_agree(x64):
    """The compiled tree solve (default on CPU) and the XLA sweeps give the same cell traces."""
    from brainfuse_kernels import _native
    if not _native.available(np.float64):
        pytest.skip("the native Hines kernel needs a C++ compiler ($CXX or g++) on the CPU backend")
    v_native, v_xla = (np.asarray(run_cell(ball_and_stick_cell(), n_steps=2000, backend=b)[1]["v"])
                       for b in (bf.NativeCPU(), bf.XLA()))
    assert np.abs(v_native).max() > 0 and np.isfinite(v_native).all()
    np.testing.assert_allclose(v_native, v_xla, rtol=0, atol=1e-9)


def test_iclamp_pulse_train_equals_separate_clamps(x64):
    """IClamp with arrays of delays/durations/amplitudes = one IClamp per pulse (same traces,
    same recorded current), in one process."""
    delays, durs, amps = [5.0, 20.0, 30.0], [2.0, 1.0, 5.0], [0.8, 1.2, -0.3]
    base = ball_and_stick_cell(protocol="none")
    one = base.with_point_processes(stim=IClamp(("soma", 0.5), delay=delays, dur=durs, amp=amps))
    many = base.with_point_processes(stim=IClamp(("soma", 0.5), delay=0.0, dur=0.0, amp=0.0), **{
        f"p{k}": IClamp(("soma", 0.5), delay=d, dur=u, amp=a) for k, (d, u, a) in enumerate(zip(delays, durs, amps))})
    rec = lambda c: {"v": c.probe("v", SITES), "i": c.probe("stim.i")}  # noqa: E731
    _, out_one = run_cell(one, n_steps=1600, record=rec(one))
    _, out_many = run_cell(many, n_steps=1600, record={"v": many.probe("v", SITES)})
    np.testing.assert_allclose(np.asarray(out_one["v"]), np.asarray(out_many["v"]), rtol=0, atol=1e-10)
    t = (np.arange(1600) + 0.5) * 0.025
    i_ref = sum(np.where((t >= d) & (t < d + u), a, 0.0) for d, u, a in zip(delays, durs, amps))
    np.testing.assert_allclose(np.asarray(out_one["i"])[0], i_ref, atol=1e-12)
    assert np.ptp(np.asarray(out_one["v"])) > 5.0  # the pulses do something


@pytest.mark.parametrize("kw", [dict(delay=[1.0, 2.0], dur=[1.0, 2.0, 3.0]), dict(amp=np.ones((2, 2)))])
def test_iclamp_bad_pulse_train(kw):
    with pytest.raises(ValueError, match="IClamp delay, dur and amp"):
        IClamp(0, **{"delay": 1.0, "dur": 1.0, "amp": 1.0, **kw})
