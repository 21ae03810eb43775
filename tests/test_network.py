"""Networks: Brunel (2000) against NEST's runs, delivery and delays against an independent dense
reference, synapse kinetics, drives, recording, backends and adjoints."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.network import (CurrentDrive, Explicit, FixedInDegree, Network, PairwiseBernoulli, PoissonDrive,
                                   Population, Projection, Uniform, population_summary)
from brainfuse_jax.network._random import philox4x32, uniforms

from .conftest import ref_file

BRUNEL = ["brunel_nest.npz", "brunel_nest_J0.25.npz", "brunel_nest_g6_eta4.npz"]


# ---- Brunel (2000) model A against NEST 3.10 ---------------------------------------------------
@pytest.mark.parametrize("name", BRUNEL)
def test_brunel_matches_nest(name):
    """Mean E and I rates within 5% of NEST's, mean CV(ISI) within 0.1, and the same (synchronous)
    regime: the Fano factor of the 1-ms population count within a factor 2 of NEST's."""
    ref = np.load(ref_file(name))
    p, want = json.loads(str(ref["params_json"])), json.loads(str(ref["summary_json"]))
    net = bf.network.brunel(p["J_mV"], p["g"], p["eta"], NE=p["NE"], NI=p["NI"], epsilon=p["epsilon"],
                            delay=p["delay_ms"], dt=p["dt_ms"], seed=3)
    steps = int(round(p["simtime_ms"] / p["dt_ms"]))
    final, _ = bf.simulate(net, net.init_state(1), jnp.zeros((1, net.n)), p["dt_ms"], n_steps=steps, record=None)
    s, ids = net.spikes(final)
    got = population_summary(s, ids, {**net.ranges, "all": (0, net.n)}, p["dt_ms"], p["simtime_ms"])
    assert got["E"]["rate_all_Hz"] == pytest.approx(want["rate_E_Hz"], rel=0.05)
    assert got["I"]["rate_all_Hz"] == pytest.approx(want["rate_I_Hz"], rel=0.05)
    assert abs(got["all"]["cv_mean"] - want["cv_isi_mean"]) < 0.1
    assert 0.5 < got["all"]["pop_rate_fano"] / want["pop_rate_fano_after200"] < 2.0


# ---- an independent dense reference ---------------------------------------------------------------
def _lif_network(propagation="auto", seed=0):
    rng = np.random.default_rng(seed)
    lif = bf.LIF(beta=0.9, threshold=1.0)
    pops = {"A": Population(lif, 12), "B": Population(lif, 7)}
    projs = []
    for pre, post, n_pre, n_post, k in (("A", "A", 12, 12, 30), ("A", "B", 12, 7, 20), ("B", "A", 7, 12, 15)):
        projs.append(Projection(pre, post, Explicit(rng.integers(0, n_pre, k), rng.integers(0, n_post, k),
                                                    rng.normal(0.2, 0.4, k)), bf.Delta(), None, Uniform(1.0, 4.4)))
    return Network(pops, projs, dt=1.0, seed=seed, propagation=propagation)


def _dense_reference(net, x, weights):
    """Run `net`'s populations with the delivery written out directly: the delta input of step t is
    the sum over synapses of `w spike[t - delay, pre]` (spike history kept whole, no ring)."""
    T = x.shape[0]
    ranges = net.ranges
    pre_g, post_g, delay = [], [], []
    for i, (pre, post, _) in enumerate(net.projection_info):
        tab = net.synapse_table(i)
        pre_g.append(tab["pre"] + ranges[pre][0])
        post_g.append(tab["post"] + ranges[post][0])
        delay.append(tab["delay"])
    pre_g, post_g, delay = map(np.concatenate, (pre_g, post_g, delay))
    states = {k: p.model.init_state((1, p.n), x.dtype) for k, p in net.populations.items()}
    history = jnp.zeros((T + 1, net.n), x.dtype)  # history[t + 1] = spikes of step t
    out = []
    for t in range(T):
        src = jnp.clip(t - delay + 1, 0, None)
        arrive = jnp.where(t - delay >= 0, history[src, pre_g] * weights, 0.0)
        delta = jax.ops.segment_sum(arrive, post_g, net.n)
        spikes = []
        for name, (lo, hi) in ranges.items():
            model = net.populations[name].model
            states[name], s = model.step_events(states[name], x[None, t, lo:hi], {"delta": delta[None, lo:hi]}, 1.0)
            spikes.append(s[0])
        spikes = jnp.concatenate(spikes)
        history = history.at[t + 1].set(spikes)
        out.append(spikes)
    return jnp.stack(out)


def _weights_by_projection(net, w):
    """The CSR weights `w` in the order `synapse_table` lists them, projection after projection."""
    proj = np.asarray(net.conn.projection)
    return jnp.concatenate([w[proj == i] for i in range(len(net.projection_info))])


@pytest.mark.parametrize("propagation", ["event", "dense"])
@pytest.mark.parametrize("backend", [None, "xla"])
def test_delivery_matches_dense_reference(x64, propagation, backend):
    """Spikes equal, and surrogate gradients w.r.t. every synaptic weight equal (1e-10), to the
    directly written network with per-synapse delays of 1-4 steps."""
    net = _lif_network("event")
    if propagation == "dense":  # the dense path needs one delay: rebuild with 2 ms
        net = Network(net.populations, [Projection(a, b, Explicit(*_explicit(net, i)), bf.Delta(), None, 2.0)
                                        for i, (a, b, _) in enumerate(net.projection_info)], dt=1.0, propagation="dense")
        assert net.conn.dense
    x = jnp.asarray(np.random.default_rng(1).uniform(0.0, 0.5, (40, net.n)))
    readout = jnp.asarray(np.random.default_rng(2).normal(size=(40, net.n)))

    def ours(w):
        m = eqx.tree_at(lambda n: n.conn.weights, net, w)
        _, spikes = bf.simulate(m, m.init_state(1), x[None], 1.0, backend=backend)
        return jnp.sum(spikes[0] * readout), spikes[0]

    def reference(w):
        spikes = _dense_reference(net, x, w)
        return jnp.sum(spikes * readout), spikes

    (loss, spikes), grad = jax.value_and_grad(ours, has_aux=True)(net.conn.weights)
    w_tab = _weights_by_projection(net, net.conn.weights)
    (loss_ref, spikes_ref), grad_ref = jax.value_and_grad(reference, has_aux=True)(w_tab)
    assert 20 < float(spikes.sum()) < 0.8 * spikes.size  # the network is active, not saturated
    np.testing.assert_array_equal(np.asarray(spikes), np.asarray(spikes_ref))
    np.testing.assert_allclose(np.asarray(_weights_by_projection(net, grad)), np.asarray(grad_ref), rtol=1e-10, atol=1e-12)


def _explicit(net, i):
    tab = net.synapse_table(i)
    return tab["pre"], tab["post"], tab["weight"]


def test_native_and_xla_delivery_agree(x64):
    net = _lif_network()
    x = jnp.asarray(np.random.default_rng(1).uniform(0.0, 0.5, (1, 30, net.n)))
    assert net.native
    loss = lambda m, b: jnp.sum(bf.simulate(m, m.init_state(1), x, 1.0, backend=b, record="populations.A.v")[1] ** 2)  # noqa: E731
    g_native = eqx.filter_grad(lambda m: loss(m, None))(net)
    g_xla = eqx.filter_grad(lambda m: loss(m, "xla"))(net)
    np.testing.assert_allclose(g_native.conn.weights, g_xla.conn.weights, rtol=1e-12, atol=1e-14)


def test_delay_semantics_as_nest():
    """A spike emitted in step t with a delay of d steps acts in step t + d (NEST's rule): a
    single synapse of 2 mV and 0.7 ms at dt 0.1 ms (7 steps)."""
    src = bf.IAFPscDelta(tau_m=10.0, V_th=15.0, V_reset=0.0, E_L=0.0, t_ref=2.0)
    tgt = bf.IAFPscDelta(tau_m=1e6, V_th=1e3, E_L=0.0)
    net = Network({"s": Population(src, 1), "t": Population(tgt, 1)},
                  [Projection("s", "t", Explicit([0], [0]), bf.Delta(), 2.0, 0.7)], dt=0.1,
                  drives=[CurrentDrive("s", 500.0)], spike_capacity=10)
    final, v = bf.simulate(net, net.init_state(1), jnp.zeros((1, 2)), 0.1, n_steps=200,
                           record=lambda s, out: s["populations"]["t"]["v"][:, 0])
    steps, ids = net.spikes(final)
    first = int(steps[ids == 0][0])
    jump = int(np.argmax(np.asarray(v[0]) > 1.0))
    assert jump == first + 7


# ---- synapses, drives, recording --------------------------------------------------------------------
@pytest.mark.parametrize("syn", [bf.CurrExp(tau=3.0), bf.CurrAlpha(tau=2.0), bf.CondExp(tau=4.0, e=-80.0)])
def test_network_synapse_kinetics(x64, syn):
    """One spike of weight w at step t0 + d: the synaptic state follows the closed form (exp,
    alpha with peak w at tau) sampled at the step starts."""
    src = bf.IAFPscDelta(tau_m=10.0, V_th=15.0, V_reset=0.0, E_L=0.0, t_ref=100.0)
    hh = bf.HH()
    net = Network({"s": Population(src, 1), "h": Population(hh, 1)},
                  [Projection("s", "h", Explicit([0], [0]), syn, 0.3, 1.0)], dt=0.05,
                  drives=[CurrentDrive("s", 500.0)], spike_capacity=4)
    state0 = net.init_state(1)
    final, rec = bf.simulate(net, state0, jnp.zeros((1, 2)), 0.05, n_steps=400,
                             record=lambda s, out: s["synapses"][0])
    steps, _ = net.spikes(final)
    arrive = int(steps[0]) + 20  # received at the start of step t0 + d; state recorded after it decays
    key = "g" if isinstance(syn, bf.CondExp) else "i"
    trace = np.asarray(rec[key][0, :, 0])
    assert np.all(trace[:arrive] == 0)
    t = (np.arange(arrive, 400) - arrive + 1) * 0.05  # time since receipt at each recorded sample
    tau = float(syn.tau)
    want = 0.3 * np.exp(-t / tau) if not isinstance(syn, bf.CurrAlpha) else 0.3 * t / tau * np.exp(1 - t / tau)
    np.testing.assert_allclose(trace[arrive:], want, rtol=1e-10, atol=1e-14)


def test_poisson_drive_statistics():
    """Counts per step have the Poisson mean and variance (rate 30 kHz at dt 0.1 ms: 3 per step),
    independent across neurons and steps; the generator starts at its delay."""
    lam = 3.0
    u = jax.vmap(lambda t: uniforms(7, 0, 0, t, jnp.arange(2000, dtype=jnp.uint32), jnp.float32))(jnp.arange(200))
    drive = PoissonDrive("E", lam / 0.1 * 1e3, 1.0, delay=0.5)
    counts, overflow = drive.events(u, jnp.arange(200)[:, None], 0.1)
    counts = np.asarray(counts)
    assert not bool(overflow)
    assert np.all(counts[:5] == 0)  # delay 0.5 ms = 5 steps
    c = counts[5:].ravel()
    n = c.size
    assert abs(c.mean() - lam) < 5 * np.sqrt(lam / n)
    assert abs(c.var() - lam) < 5 * lam * np.sqrt(2 / n) * 1.5
    pmf = np.bincount(c.astype(int), minlength=12)[:12] / n
    from scipy.stats import poisson
    np.testing.assert_allclose(pmf, poisson.pmf(np.arange(12), lam), atol=5 * np.sqrt(0.25 / n))
    assert abs(np.corrcoef(counts[5:, :-1].ravel(), counts[5:, 1:].ravel())[0, 1]) < 0.01


def test_philox_known_answers():
    """Random123's known-answer vectors for Philox-4x32-10 (kat_vectors)."""
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for ctr, key, want in cases:
        assert tuple(int(w) for w in philox4x32(ctr, key)) == want


def test_recording_and_population_counts():
    net = bf.network.brunel(NE=400, NI=100, spike_capacity=50_000, seed=1)
    final, out = bf.simulate(net, net.init_state(2), jnp.zeros((2, net.n)), 0.1, n_steps=1000)
    for row in range(2):
        steps, ids = net.spikes(final, row)
        t, i = np.nonzero(np.asarray(out[row]))
        np.testing.assert_array_equal(steps, t)
        np.testing.assert_array_equal(ids, i)
    assert not np.array_equal(np.asarray(out[0]), np.asarray(out[1]))  # batch rows draw their own input
    _, counts = bf.simulate(net, net.init_state(1), jnp.zeros((1, net.n)), 0.1, n_steps=1000,
                            record=lambda s, o: net.population_counts(o))
    _, out1 = bf.simulate(net, net.init_state(1), jnp.zeros((1, net.n)), 0.1, n_steps=1000)
    np.testing.assert_array_equal(np.asarray(counts[0, :, 0]), np.asarray(out1[0, :, :400].sum(-1)))
    assert net.bytes_per_synapse() < 11


def test_spike_buffer_overflow_is_an_error():
    net = bf.network.brunel(NE=400, NI=100, spike_capacity=100)
    final, _ = bf.simulate(net, net.init_state(1), jnp.zeros((1, net.n)), 0.1, n_steps=300, record=None)
    assert int(final["spikes"]["count"][0]) > 100
    with pytest.raises(ValueError, match="overflowed"):
        net.spikes(final)


# ---- adjoints, backends, transformations ---------------------------------------------------------------
def test_adjoints_agree_and_forward_mode_refuses(x64):
    net = _lif_network()
    x = jnp.asarray(np.random.default_rng(1).uniform(0.0, 0.5, (1, 33, net.n)))

    def loss(m, adjoint):
        return jnp.sum(bf.simulate(m, m.init_state(1), x, 1.0, adjoint=adjoint, record="output")[1] * x)

    g_direct = eqx.filter_grad(lambda m: loss(m, bf.DirectAdjoint()))(net)
    g_ckpt = eqx.filter_grad(lambda m: loss(m, bf.CheckpointAdjoint(every=5)))(net)
    np.testing.assert_allclose(g_direct.conn.weights, g_ckpt.conn.weights, rtol=1e-10, atol=1e-14)
    assert float(jnp.abs(g_direct.conn.weights).max()) > 0
    with pytest.raises(ValueError):
        eqx.filter_grad(lambda m: loss(m, bf.ForwardMode()))(net)


def test_jit_and_vmap_over_a_network_parameter():
    net = bf.network.brunel(NE=400, NI=100, spike_capacity=None, seed=2)

    @jax.jit
    def rate(w):
        m = eqx.tree_at(lambda n: (n.drives[0].weight, n.drives[1].weight), net, (w, w))
        _, n_spk = bf.simulate(m, m.init_state(1), jnp.zeros((1, m.n)), 0.1, n_steps=500, record=bf.Total("output"))
        return jnp.sum(n_spk)

    ws = jnp.array([0.06, 0.1, 0.14])
    batched = jax.vmap(rate)(ws)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray([rate(w) for w in ws]))
    assert batched[0] < batched[1] < batched[2]


def test_every_model_family_in_one_network():
    """HH and a Pospischil cell (conductance synapses), NEST's IAF models (their ports), LIF and
    ASN (current synapses; ASN's multi-spike counts weight its deliveries) in one network."""
    pops = {"hh": Population(bf.HH(), 5), "rs": Population(bf.PospischilRS(), 4),
            "iaf": Population(bf.IAFPscExp(), 6), "lif": Population(bf.LIF(beta=0.9), 5),
            "asn": Population(bf.ASN(), 5)}
    projs = [Projection("iaf", "hh", PairwiseBernoulli(0.5), bf.CondExp(tau=3.0, e=0.0), 0.5, 1.0),
             Projection("hh", "rs", PairwiseBernoulli(0.5), bf.CondExp(tau=5.0, e=0.0), 0.3, 2.0),
             Projection("lif", "iaf", PairwiseBernoulli(0.5), bf.Port("ex"), 200.0, 1.0),
             Projection("asn", "iaf", PairwiseBernoulli(0.5), bf.Port("in"), -50.0, 1.5),
             Projection("hh", "lif", PairwiseBernoulli(0.5), bf.CurrAlpha(tau=2.0), 0.5, 1.0),
             Projection("rs", "asn", PairwiseBernoulli(0.5), bf.CurrExp(tau=2.0), 2.0, 1.0)]
    net = Network(pops, projs, dt=0.025, seed=1, spike_capacity=20_000,
                  drives=[PoissonDrive("lif", 2000.0, 0.5), CurrentDrive("asn", 0.3), CurrentDrive("hh", 5.0)])
    final, out = bf.simulate(net, net.init_state(2), jnp.zeros((2, net.n)), 0.025, n_steps=2000)
    counts = net.population_counts(out.sum(axis=1))
    assert np.all(np.asarray(counts) > 0), counts  # every population fires
    steps, ids = net.spikes(final)
    assert len(steps) == int(np.count_nonzero(np.asarray(out[0])))


@pytest.mark.parametrize("lam", [0.3, 2.0, 4.0])
def test_poisson_inverse_cdf_against_float64(lam):
    """Counts from float32 uniforms on a fine grid up to the largest one, 1 - 2^-24: the float64
    inverse CDF's, except within 1e-6 of a CDF step (float32 rounding of the table). The largest
    uniforms get the count of their own probability, not the table's last one."""
    from scipy.stats import poisson

    from brainfuse_jax.network._drive import poisson_counts, poisson_table_size
    size = poisson_table_size(lam)
    u = np.concatenate([np.linspace(0.0, 1 - 2**-24, 100_001), 1 - np.arange(1, 8) * 2.0**-24]).astype(np.float32)
    got = np.asarray(poisson_counts(jnp.asarray(u), lam, size))
    cdf = poisson.cdf(np.arange(size), lam)
    want = np.searchsorted(cdf, u.astype(np.float64), side="right")
    near = np.min(np.abs(u[:, None].astype(np.float64) - cdf[None, :]), axis=1) < 1e-6
    np.testing.assert_array_equal(got[~near], want[~near])
    assert got.max() == want.max() < size - 1
