"""Network gradients: exact through HH populations (central finite differences, float64), and a
network parameter fitted by gradient descent to a target population rate."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax.network import (CurrentDrive, Network, PairwiseBernoulli, PoissonDrive, Population, Projection,
                                   Uniform)


def _feedforward():
    """Six IAF sources firing at fixed times (a fixed current each) onto four HH neurons through
    conductance and current synapses with delays of 0.5-2 ms: the HH voltages depend smoothly on
    the weights, the synapses' time constants and the HH parameters."""
    src = bf.IAFPscDelta(tau_m=10.0, V_th=15.0, V_reset=0.0, E_L=0.0, t_ref=2.0)
    return Network({"s": Population(src, 6), "h": Population(bf.HH(), 4)},
                   [Projection("s", "h", PairwiseBernoulli(0.6), bf.CondExp(tau=3.0, e=0.0), Uniform(0.2, 0.6),
                               Uniform(0.5, 2.0)),
                    Projection("s", "h", PairwiseBernoulli(0.5), bf.CurrExp(tau=2.0), 2.0, 1.0)],
                   dt=0.025, drives=[CurrentDrive("s", np.linspace(420.0, 700.0, 6)[None, :])], seed=4)


@pytest.mark.parametrize("backend", [None, "xla"])
@pytest.mark.parametrize("adjoint", [bf.CheckpointAdjoint(every=50), bf.DirectAdjoint()])
def test_hh_network_gradient_matches_finite_differences(x64, backend, adjoint):
    net = _feedforward()
    assert net.conn.uniform_delay < 0  # per-synapse delays

    def loss(m):
        _, v = bf.simulate(m, m.init_state(1), jnp.zeros((1, m.n)), 0.025, n_steps=1200, record="populations.h.v",
                           adjoint=adjoint, backend=backend)
        return jnp.mean((v + 60.0) ** 2)

    # differentiate w.r.t. the synaptic weights, the synapses and the HH population (the sources'
    # spike times stay fixed: their parameters are held out)
    spec = jax.tree.map(lambda _: False, net)
    spec = eqx.tree_at(lambda m: (m.conn.weights, m.synapses, m.populations["h"]), spec,
                       (True, jax.tree.map(lambda _: True, net.synapses), jax.tree.map(lambda _: True, net.populations["h"])))
    diff, rest = eqx.partition(net, jax.tree.map(lambda s, x: s and eqx.is_inexact_array(x), spec, net))
    f = lambda d: loss(eqx.combine(d, rest))  # noqa: E731
    grad = jax.grad(f)(diff)
    rng = np.random.default_rng(0)
    direction = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape)) * (jnp.abs(a) + 1e-3), diff)
    eps = 1e-6
    shift = lambda s: jax.tree.map(lambda a, d: a + s * d, diff, direction)  # noqa: E731
    fd = (f(shift(eps)) - f(shift(-eps))) / (2 * eps)
    dot = sum(jnp.sum(g * d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction)))
    assert abs(float(fd)) > 1e-3
    assert float(dot) == pytest.approx(float(fd), rel=1e-6)
    assert float(jnp.abs(grad.conn.weights).min()) > 0  # every synapse's weight matters


def test_fit_drive_to_a_target_rate():
    """The worked example of docs/networks.md: a sparse E/I LIF network under Poisson drive; the
    drive's weight is fitted by gradient descent (surrogate gradients through the spikes,
    truncated every 2 ms: untruncated, they grow ~10^13-fold over 40 ms of this recurrent network)
    until the excitatory rate is 20 Hz."""
    lif = bf.LIF(beta=float(np.exp(-0.1 / 10.0)), threshold=1.0, refractory=2.0)
    net = Network({"E": Population(lif, 400), "I": Population(lif, 100)},
                  [Projection("E", p, bf.network.FixedInDegree(40), bf.Delta(), 0.05, 1.5) for p in "EI"]
                  + [Projection("I", p, bf.network.FixedInDegree(10), bf.Delta(), -0.25, 1.5) for p in "EI"],
                  dt=0.1, drives=[PoissonDrive(p, 4000.0, 0.1) for p in "EI"], seed=0)
    target, steps = 20.0, 2000  # Hz over 200 ms

    def rate(w):
        m = eqx.tree_at(lambda n: (n.drives[0].weight, n.drives[1].weight), net, (w, w))
        _, counts = bf.simulate(m, m.init_state(1), jnp.zeros((1, m.n)), 0.1, n_steps=steps,
                                record=bf.Total(lambda s, out: m.population_counts(out)), chunk_size=20)
        return counts[0, 0] / 400 / (steps * 0.1e-3)

    loss = jax.jit(jax.value_and_grad(lambda w: (rate(w) - target) ** 2))
    w, opt = jnp.asarray(0.04), optax.adam(0.002)
    assert float(rate(w)) > 3 * target
    state = opt.init(w)
    for _ in range(40):
        value, g = loss(w)
        updates, state = opt.update(g, state)
        w = optax.apply_updates(w, updates)
    assert float(rate(w)) == pytest.approx(target, rel=0.1)
