"""The fused Pallas kernels (kernels/brainfuse_kernels), run on CPU in interpret mode, against
the pure-JAX (XLA) path: same trajectories, same gradients, same errors. (The model families of
tests/test_execution_matrix.py, LIF, ALIF, ASN, HH and Pospischil IB among them, are compared
there; here: float32, a user's channel, the other schemes, neuron blocks, truncation, errors.)"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.adjoint import CheckpointAdjoint
from brainfuse_jax.channels import InfTau
from brainfuse_kernels import pallas_unroll

DT = 0.025


def _hh_inputs(n=64, t=1000):
    return jnp.broadcast_to(jnp.linspace(0.0, 20.0, n)[:, None], (n, t))


def test_forward_float32_matches_xla():
    """1,000 steps of 64 HH neurons (0-20 uA/cm2, most of them spiking): within 1e-5 relative."""
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(64, dtype=jnp.float32)
    x = _hh_inputs()
    record = {"v": "v", "n": "k.n", "spikes": bf.Total("output")}
    fin_x, rec_x = bf.simulate(model, state0, x, DT, record=record)
    fin_p, rec_p = bf.simulate(model, state0, x, DT, record=record, backend="pallas")
    assert float(jnp.sum(rec_x["spikes"])) > 100  # 56 of 64 neurons spike (25 ms): the comparison covers spikes
    for a, b in zip(jax.tree.leaves((fin_x, rec_x)), jax.tree.leaves((fin_p, rec_p))):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(a))))


def test_gradients_float32_match_xla():
    model = bf.HH(scheme="exp_euler", g_na=jnp.full(64, 120.0))
    state0 = model.init_state(64, dtype=jnp.float32)
    x = _hh_inputs()

    def loss(args, backend):
        m, s0, xs = args
        fin, v = bf.simulate(m, s0, xs, DT, record="v", backend=backend, adjoint=CheckpointAdjoint(every=64))
        return jnp.mean((v + 60.0) ** 2) / 100.0 + jnp.mean(fin["v"])

    ref = eqx.filter_grad(lambda a: loss(a, "xla"))((model, state0, x))
    got = eqx.filter_grad(lambda a: loss(a, "pallas"))((model, state0, x))
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
        scale = float(jnp.max(jnp.abs(a)))
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * scale)


class _SlowK(bf.Channel):
    """A user's channel (not in the library): non-inactivating K with a sigmoidal inf and a
    bell-shaped tau, written in plain jnp; no kernel code."""

    gbar: jax.Array = eqx.field(converter=jnp.asarray, default=2.0)
    e_rev: jax.Array = eqx.field(converter=jnp.asarray, default=-90.0)
    gates: ClassVar[dict[str, int]] = {"w": 1}
    q10: ClassVar[float] = 2.3
    temp_ref: ClassVar[float] = 23.0

    def rates(self, v):
        return {"w": InfTau(jax.nn.sigmoid((v + 35.0) / 10.0), 100.0 / (jnp.exp((v + 35.0) / 20.0)
                                                                         + jnp.exp(-(v + 35.0) / 20.0)))}


def _custom_neuron():
    hh = bf.HH(scheme="exp_euler")
    return bf.PointNeuron(channels={**hh.channels, "slow": _SlowK()}, scheme="exp_euler")


@pytest.mark.parametrize("name, make, dt, amp", [
    ("custom_channel", _custom_neuron, 0.025, 12.0),
    # interpret mode compiles slowly (rk4: ~1 min): python -m pytest -m slow
    pytest.param("hh_rk4", lambda: bf.HH(scheme="rk4"), 0.025, 10.0, marks=pytest.mark.slow),
    pytest.param("hh_backward_euler", lambda: bf.HH(scheme="backward_euler"), 0.025, 10.0, marks=pytest.mark.slow),
])
def test_models_forward_and_gradient_float64(x64, name, make, dt, amp):
    """Any elementwise neuron gets a kernel; values and gradients equal the XLA path's."""
    model = make()
    state0 = model.init_state(5)
    x = amp * (1.0 + jnp.sin(jnp.arange(301)[None, :] / 7.0 + jnp.arange(5)[:, None]))

    def loss(args, backend):
        m, xs = args
        fin, rec = bf.simulate(m, state0, xs, dt, record={"v": "v", "s": bf.Total("output")}, backend=backend,
                               adjoint=CheckpointAdjoint(every=50))
        return jnp.mean(jnp.sin(rec["v"])) + jnp.sum(rec["s"]) + jnp.sum(fin["v"]) * 1e-2

    (l_x, g_x), (l_p, g_p) = (eqx.filter_value_and_grad(lambda a: loss(a, b))((model, x)) for b in ("xla", "pallas"))
    np.testing.assert_allclose(l_p, l_x, rtol=1e-12)
    for a, b in zip(jax.tree.leaves(g_x), jax.tree.leaves(g_p)):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-12)


def test_neuron_blocks_and_padding(x64):
    """50 neurons in blocks of 16 (the last one padded): same as one block, values and gradients."""
    model = bf.HH(scheme="exp_euler", g_k=jnp.linspace(30.0, 40.0, 50))
    state0 = model.init_state(50)
    x = jnp.broadcast_to(jnp.linspace(0.0, 20.0, 50)[:, None], (50, 200))
    per_step = {"v": lambda s, out: s["v"]}

    def loss(m, bn):
        fin, rec = pallas_unroll(m, state0, x, DT, per_step, {}, 200, 30, block_neurons=bn, interpret=True)
        return jnp.mean(rec["v"] ** 2) + jnp.sum(fin["k"]["n"]), rec["v"]

    (l1, v1), g1 = eqx.filter_value_and_grad(loss, has_aux=True)(model, None)
    (l2, v2), g2 = eqx.filter_value_and_grad(loss, has_aux=True)(model, 16)
    np.testing.assert_array_equal(v1, v2)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


def test_truncated_bptt(x64):
    model = bf.HH(scheme="exp_euler")
    state0 = model.init_state(3)
    x = jnp.full((3, 130), 10.0)

    def grad(backend):
        return eqx.filter_grad(lambda m: jnp.mean(bf.simulate(m, state0, x, DT, record="v", chunk_size=25,
                                                              backend=backend)[1]))(model)

    for a, b in zip(jax.tree.leaves(grad("xla")), jax.tree.leaves(grad("pallas"))):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-13)


def test_errors():
    x = jnp.zeros((4, 20))
    hh = bf.HH()  # scheme="neuron": rate tables = a gather
    with pytest.raises(ValueError, match="gather"):
        bf.simulate(hh, hh.init_state(4), x, DT, backend="pallas")
    rec = bf.RecurrentLIF(4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="elementwise"):
        bf.simulate(rec, rec.init_state(4), x, 1.0, backend="pallas")
    ee = bf.HH(scheme="exp_euler")
    v = jax.jit(lambda xs: bf.simulate(ee, ee.init_state(4), xs, DT, record="v", backend="pallas")[1])(x + 5.0)
    np.testing.assert_allclose(v, bf.simulate(ee, ee.init_state(4), x + 5.0, DT, record="v")[1], rtol=1e-6)
    with pytest.raises(ValueError, match="concrete time step"):
        jax.jit(lambda dt: bf.simulate(ee, ee.init_state(4), x, dt, backend="pallas"))(0.025)
    with pytest.raises(ValueError, match="one value per neuron"):
        bf.simulate(ee, ee.init_state(4), x, DT, record=lambda s, out: jnp.stack([s["v"], s["v"]]), backend="pallas")
    with pytest.raises(ValueError, match="block_neurons"):
        pallas_unroll(ee, ee.init_state(4), x, DT, {}, {}, 20, 5, block_neurons=0)
