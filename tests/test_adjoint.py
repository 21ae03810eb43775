"""CheckpointAdjoint (the derived backward pass of `simulate`) and ForwardMode: finite differences,
truncation, memory, jit/vmap, bad arguments. Their gradients against autodiff for every model family
and backend: tests/test_execution_matrix.py."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.adjoint import CheckpointAdjoint, DirectAdjoint

DT = 0.025


def _loss(model, state0, x, dt, adjoint, chunk_size=None):
    final, rec = bf.simulate(model, state0, x, dt, record={"v": "v", "spikes": bf.Total("output")},
                             adjoint=adjoint, chunk_size=chunk_size)
    return jnp.mean(jnp.sin(rec["v"])) + jnp.sum(rec["spikes"]) + jnp.sum(final["v"] ** 2) * 1e-3


def test_checkpoint_adjoint_values_identical():
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(3)
    x = jnp.full((3, 257), 10.0)
    direct = bf.simulate(model, state0, x, DT, record="v", adjoint=DirectAdjoint())
    ckpt = bf.simulate(model, state0, x, DT, record="v", adjoint=CheckpointAdjoint(every=16))
    for a, b in zip(jax.tree.leaves(direct), jax.tree.leaves(ckpt)):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_adjoint_finite_differences(x64):
    """d(loss)/d(gbar, c_m, temperature) of a spiking HH trace against central differences."""
    state0 = bf.HH(scheme="exp_euler").init_state(2)
    x = jnp.stack([jnp.full(800, 7.0), jnp.full(800, 12.0)])

    def loss(theta):
        model = bf.HH(g_na=theta[0], g_k=theta[1], c_m=theta[2], temperature=theta[3], scheme="exp_euler")
        _, v = bf.simulate(model, state0, x, DT, record="v", adjoint=CheckpointAdjoint(every=50))
        return jnp.mean((v + 60.0) ** 2) / 100.0

    theta = jnp.array([120.0, 36.0, 1.0, 6.3])
    g = jax.grad(loss)(theta)
    for i in range(4):
        h = 1e-5 * max(1.0, float(abs(theta[i])))
        e = jnp.zeros(4).at[i].set(h)
        fd = (loss(theta + e) - loss(theta - e)) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-5)


def test_truncated_bptt_matches_direct(x64):
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(2)
    x = jnp.stack([jnp.full(130, 9.0), jnp.full(130, 14.0)])
    g = [eqx.filter_grad(lambda m: _loss(m, state0, x, DT, adj, chunk_size=25))(model)
         for adj in (DirectAdjoint(), None)]
    full = eqx.filter_grad(lambda m: _loss(m, state0, x, DT, None))(model)
    for a, b in zip(jax.tree.leaves(g[0]), jax.tree.leaves(g[1])):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    assert not np.allclose(g[1].channels["na"].gbar, full.channels["na"].gbar)  # truncation did cut


def test_jit_vmap_grad():
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(3)
    x = jnp.full((3, 200), 10.0)

    @jax.jit
    @jax.vmap
    def g(gna):
        return jax.grad(lambda gn: _loss(bf.HH(g_na=gn, scheme="exp_euler"), state0, x, DT, None))(gna)

    out = g(jnp.array([100.0, 120.0]))
    ref = [jax.grad(lambda gn: _loss(bf.HH(g_na=gn, scheme="exp_euler"), state0, x, DT, DirectAdjoint()))(v)
           for v in (100.0, 120.0)]
    np.testing.assert_allclose(out, ref, rtol=2e-3)
    assert np.all(np.isfinite(out))


def test_memory_is_bounded_by_checkpoints():
    """XLA's own buffer plan: the backward pass's temporaries shrink with checkpoints; autodiff
    through the scan keeps every step's intermediates."""
    model = bf.HH(scheme="exp_euler")
    n, t = 200, 4000
    state0 = model.init_state(n)
    x = jnp.full((n, t), 10.0)

    def temp_bytes(adjoint):
        f = jax.jit(jax.grad(lambda m: _loss(m, state0, x, DT, adjoint)))
        return f.lower(model).compile().memory_analysis().temp_size_in_bytes

    direct, every1, every100 = (temp_bytes(a) for a in (DirectAdjoint(), CheckpointAdjoint(every=1),
                                                        CheckpointAdjoint(every=100)))
    state_bytes = 4 * n * t * 4  # v, m, h, n per step, float32
    assert every1 < 3 * state_bytes < direct
    assert every1 - every100 > state_bytes / 2  # checkpoints every 100 steps drop the stored states


def test_interval_rule():
    state = bf.HH().init_state(1000, dtype=jnp.float32)  # 16 kB per step
    assert CheckpointAdjoint().interval(4000, state) == 50  # ~sqrt(4000), a divisor of it
    assert CheckpointAdjoint().interval(40000, state) == 200  # sqrt: 200 checkpoints of 16 kB
    assert CheckpointAdjoint().interval(40009, state) == 201  # a prime: ceil(sqrt), then a tail block
    assert CheckpointAdjoint(memory_mb=1).interval(40000, state) == 611  # checkpoints within 1 MiB
    assert CheckpointAdjoint().interval(5, state) == 5
    assert CheckpointAdjoint(every=300).interval(100, state) == 100


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_bad_every(bad):
    with pytest.raises(ValueError, match="every"):
        CheckpointAdjoint(every=bad)


def test_bad_adjoint_arguments():
    model = bf.HH()
    state0 = model.init_state(2)
    x = jnp.zeros((2, 10))
    with pytest.raises(ValueError, match="memory_mb"):
        CheckpointAdjoint(memory_mb=0)
    with pytest.raises(TypeError, match="adjoint"):
        bf.simulate(model, state0, x, DT, adjoint="checkpoint")
    with pytest.raises(ValueError, match="remat"):
        bf.simulate(model, state0, x, DT, adjoint=CheckpointAdjoint(), remat=True)
    with pytest.raises(ValueError, match="backend"):
        bf.simulate(model, state0, x, DT, backend="cuda")
    with pytest.raises(ValueError, match="pallas"):
        bf.simulate(model, state0, x, DT, backend="pallas", adjoint=DirectAdjoint())


@pytest.mark.parametrize("record", ["per_step", "totals"])
def test_forward_mode_equals_autodiff(x64, record):
    """ForwardMode (forward sensitivities) gives autodiff's parameter gradients, for losses of
    per-step records (tangents contracted in the backward pass) and of totals/final state only
    (tangents carried in the forward pass); scalar and per-neuron parameters."""
    model = bf.HH(scheme="exp_euler", g_na=jnp.linspace(100.0, 130.0, 4))
    state0 = model.init_state(4)
    x = 8.0 * (1.0 + jnp.sin(jnp.arange(103)[None, :] / 9.0 + jnp.arange(4)[:, None]))
    if record == "per_step":
        spec = {"v": "v", "spikes": bf.Total("output")}
    else:
        spec = {"v": bf.Total(lambda s, out: jnp.sin(s["v"])), "spikes": bf.Total("output")}

    def loss(m, adjoint):
        final, rec = bf.simulate(m, state0, x, 0.025, record=spec, adjoint=adjoint)
        return jnp.mean(jnp.sin(rec["v"])) + jnp.sum(rec["spikes"]) + jnp.sum(final["v"] ** 2) * 1e-3

    ref = eqx.filter_grad(lambda m: loss(m, DirectAdjoint()))(model)
    got = eqx.filter_grad(lambda m: loss(m, bf.ForwardMode()))(model)
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    # only some leaves differentiated (the fit use case): the others get no tangent
    g = jax.grad(lambda gk: loss(bf.HH(scheme="exp_euler", g_na=model.channels["na"].gbar, g_k=gk),
                                 bf.ForwardMode()))(36.0)
    np.testing.assert_allclose(g, ref.channels["k"].gbar, rtol=1e-9)


def test_forward_mode_errors():
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(2)
    x = jnp.full((2, 20), 10.0)
    with pytest.raises(ValueError, match="parameters only"):
        jax.grad(lambda xs: jnp.sum(bf.simulate(model, state0, xs, DT, record="v", adjoint=bf.ForwardMode())[1]))(x)
    with pytest.raises(ValueError, match="does not combine"):
        bf.simulate(model, state0, x, DT, adjoint=bf.ForwardMode(), chunk_size=5)
    # recurrent weights couple neurons: ForwardMode seeds every element of them (exact), no longer a refusal
    rec = bf.RecurrentLIF(2, key=jax.random.key(0))

    def loss(m, adjoint):
        return jnp.sum(jnp.sin(bf.simulate(m, rec.init_state(2), x, 1.0, record="v", adjoint=adjoint)[1]))

    got = eqx.filter_grad(lambda m: loss(m, bf.ForwardMode()))(rec)
    ref = eqx.filter_grad(lambda m: loss(m, bf.CheckpointAdjoint()))(rec)
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert any(np.abs(np.asarray(a)).max() > 0 for a in jax.tree.leaves(ref))


def test_forward_mode_integer_state_leaves():
    """ForwardMode with an integer state leaf (a step counter, as a Cell has): no tangent for it,
    gradients equal CheckpointAdjoint's (regression: the tangents were built in the leaf's dtype)."""
    class Counted(bf.AbstractNeuron):
        tau: jax.Array

        def init_state(self, batch_shape, dtype=None):
            return {"v": jnp.zeros(batch_shape), "step": jnp.zeros(batch_shape, jnp.int32)}

        def step(self, s, x, dt):
            v = s["v"] + dt * (x - s["v"] / self.tau)
            return {"v": v, "step": s["step"] + 1}, v

    model, x = Counted(jnp.asarray(10.0)), jnp.ones((2, 5))
    for record in ("v", bf.Total("v")):
        def loss(m, adjoint):
            return jnp.sum(bf.simulate(m, m.init_state(2), x, 0.1, record=record, adjoint=adjoint,
                                       backend=bf.XLA())[1])
        np.testing.assert_allclose(eqx.filter_grad(lambda m: loss(m, bf.ForwardMode()))(model).tau,
                                   eqx.filter_grad(lambda m: loss(m, bf.CheckpointAdjoint()))(model).tau, rtol=1e-6)
