"""The coupling guard: a step that mixes neurons (through a gather, a slice, a scatter, a matrix
product, ...) is never treated as elementwise. `ForwardMode` with per-neuron parameters then
seeds every element on its own (exact), the native loop and the Pallas kernels refuse it when
asked for explicitly (naming the primitive) and fall back to XLA when the choice was automatic.

Regression: `jnp.take(v, idx)` used to pass a deny-list, and `ForwardMode` returned gradients off
by ~84 (of ~159) for 10 neurons."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brainfuse_kernels import _loop_cpu
from brainfuse_kernels._elementwise import coupling_primitives

import brainfuse_jax as bf

N, T, DT = 6, 40, 0.1


def _perm(v):
    return jnp.asarray((np.arange(v.shape[0]) + 1) % v.shape[0])


COUPLINGS = {  # each works for any number of neurons (the Pallas check probes two)
    "take": lambda v: jnp.take(v, _perm(v)),
    "index": lambda v: v[_perm(v)],
    "roll": lambda v: jnp.roll(v, 1),
    "matmul": lambda v: jnp.asarray(np.eye(v.shape[0], k=1) + 0.5 * np.eye(v.shape[0], k=-1), v.dtype) @ v,
    "segment_sum": lambda v: jax.ops.segment_sum(v, jnp.asarray(np.arange(v.shape[0]) // 2),
                                                 num_segments=v.shape[0]),
    "at_add": lambda v: jnp.zeros_like(v).at[0].add(v[-1]).at[1:].add(v[:-1]),
}
NAMES = {"take": "gather", "index": "gather", "roll": "slice", "matmul": "dot_general",
         "segment_sum": "scatter-add", "at_add": "slice"}  # the first primitive that mixes neurons


class Coupled(bf.AbstractNeuron):
    """A leaky unit driven by its input and by other units through `couple` (a smooth step, so
    that finite differences apply): v' = -v / tau + x + w tanh(couple(v))."""

    tau: jax.Array  # ms, per neuron
    w: jax.Array  # scalar gain
    couple: str = eqx.field(static=True)

    def init_state(self, batch_shape, dtype=None):
        return {"v": jnp.linspace(-1.0, 1.0, batch_shape if isinstance(batch_shape, int) else batch_shape[0],
                                  dtype=dtype or jnp.result_type(float))}

    def step(self, state, x, dt):
        v = state["v"]
        v = v + dt * (-v / self.tau + x + self.w * jnp.tanh(COUPLINGS[self.couple](v)))
        return {"v": v}, v


def _model(couple, dtype=np.float64):
    return Coupled(jnp.asarray(np.linspace(2.0, 4.0, N), dtype), jnp.asarray(0.8, dtype), couple)


def _loss(model, adjoint, record="v", backend=None):
    state0 = model.init_state(N)
    x = jnp.sin(jnp.arange(T, dtype=state0["v"].dtype) * 0.3)[None, :] * jnp.ones((N, 1))
    final, rec = bf.simulate(model, state0, x, DT, record=record, adjoint=adjoint, backend=backend)
    rec = rec.sum(axis=1) if record != bf.Total("v") else rec
    return jnp.sum(rec * jnp.arange(1, N + 1)) + jnp.sum(final["v"] ** 2)


@pytest.mark.parametrize("record", ["v", bf.Total("v")], ids=["per_step", "total"])
@pytest.mark.parametrize("couple", list(COUPLINGS))
def test_forward_mode_coupled_matches_checkpoint_and_fd(couple, record):
    """float64, per-neuron tau: ForwardMode == CheckpointAdjoint == central differences."""
    with jax.enable_x64(True):
        model = _model(couple)
        assert NAMES[couple] in coupling_primitives(
            jax.make_jaxpr(lambda p, s, x: p.step(s, x, DT))(model, model.init_state(N), jnp.zeros(N)), (N,))
        g_fwd = jax.grad(_loss)(model, bf.ForwardMode(), record)
        g_ckp = jax.grad(_loss)(model, bf.CheckpointAdjoint(), record)
        np.testing.assert_allclose(g_fwd.tau, g_ckp.tau, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(g_fwd.w, g_ckp.w, rtol=1e-10, atol=1e-12)
        eps = 1e-6
        fd = []
        for i in range(N):
            bump = lambda d: eqx.tree_at(lambda m: m.tau, model, model.tau.at[i].add(d))  # noqa: E731
            fd.append((_loss(bump(eps), bf.ForwardMode(), record) - _loss(bump(-eps), bf.ForwardMode(), record))
                      / (2 * eps))
        np.testing.assert_allclose(g_fwd.tau, np.array(fd), rtol=1e-6, atol=1e-8)
        assert np.abs(np.asarray(g_fwd.tau)).max() > 1e-3  # the gradient is not trivially zero


def test_elementwise_model_is_recognised():
    """An elementwise step (HH with its default rate tables: a gather from a shared table) is not
    flagged; the same model with per-neuron parameters neither."""
    model = bf.HH()
    state = model.init_state(4)
    assert not coupling_primitives(jax.make_jaxpr(lambda m, s, x: m.step(s, x, 0.025))(model, state,
                                                                                      jnp.zeros(4)), (4,))
    per_neuron = eqx.tree_at(lambda m: m.c_m, model, jnp.full(4, 1.0))
    assert not coupling_primitives(jax.make_jaxpr(lambda m, s, x: m.step(s, x, 0.025))(per_neuron, state,
                                                                                      jnp.zeros(4)), (4,))


@pytest.mark.parametrize("couple", ["take", "roll", "segment_sum"])
def test_native_refuses_coupled_step(couple):
    """ForwardMode on backend=NativeCPU() refuses, naming the primitive; the default backend falls
    back to XLA."""
    if not _loop_cpu.available():
        pytest.skip("the native loop needs a C++ compiler and JAX's CPU backend")
    with jax.enable_x64(True):
        model = _model(couple)
        with pytest.raises(ValueError, match=NAMES[couple]):
            jax.grad(_loss)(model, bf.ForwardMode(), bf.Total("v"), bf.NativeCPU())
        g_auto = jax.grad(_loss)(model, bf.ForwardMode(), bf.Total("v"))
        g_ckp = jax.grad(_loss)(model, bf.CheckpointAdjoint(), bf.Total("v"))
        np.testing.assert_allclose(g_auto.tau, g_ckp.tau, rtol=1e-10)


@pytest.mark.parametrize("couple", ["take", "matmul", "at_add"])
def test_pallas_refuses_coupled_step(couple):
    model = _model(couple, np.float32)
    state0 = model.init_state(N)
    with pytest.raises(ValueError, match=NAMES[couple]):
        bf.simulate(model, state0, jnp.zeros((N, T), jnp.float32), DT, backend="pallas")


def test_optimization_barrier_passes_labels_through():
    """A barrier over operands of different ranks (`_math.computed_once` on the CPU) keeps each
    operand's own labels: elementwise stays elementwise, a coupling inside is still found."""
    def fine(v, p):
        a, b = jax.lax.optimization_barrier((v * 2.0, p * 3.0))
        return a + b

    def coupled(v, p):
        a, b = jax.lax.optimization_barrier((jnp.roll(v, 1), p))
        return a * b

    args = (jnp.zeros(N), jnp.ones(()))
    assert not coupling_primitives(jax.make_jaxpr(fine)(*args), (N,))
    assert coupling_primitives(jax.make_jaxpr(coupled)(*args), (N,)) == {"slice"}
