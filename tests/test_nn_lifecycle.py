"""State lifecycle of the spiking layers: reset (no state leaks across batches or samples), carry
(windows with call_with_state equal one call), detach (truncated windows cut the gradient), and
mixed precision (bfloat16 compute keeps the neuron state float32); jit compatibility."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import nn
from brainfuse_jax.nn._base import call_with_state, detach_state, reset_state

KEY = jax.random.PRNGKey(0)


def _stack(F=3, n=6, key=KEY, **kw):
    k = jax.random.split(key, 3)
    return nn.Sequential([nn.LIFLayer(F, n, key=k[0], recurrent=True, beta=0.95, **kw),
                          nn.ALIFLayer(n, 5, key=k[1], **kw),
                          nn.SpikeCountReadout(5, 2, key=k[2])])


def _x(B=3, T=8, F=3, seed=1):
    return 3.0 * jax.random.uniform(jax.random.PRNGKey(seed), (B, T, F))


def _spikes(model, x, state=None):
    """The last spiking layer's output (before the readout), carrying `state`."""
    body = nn.Sequential(model.layers[:2])
    return call_with_state(body, x, state if state is None else state[:2])


def test_no_state_leaks_across_batches_or_samples():
    model = _stack()
    a, b = _x(seed=1), _x(seed=2)
    alone = model(b)
    f = eqx.filter_jit(lambda m, x: m(x))
    model(a)  # a call leaves nothing behind (the model is a value)
    np.testing.assert_array_equal(model(b), alone)
    f(model, a)
    np.testing.assert_array_equal(f(model, b), f(model, b))
    np.testing.assert_allclose(f(model, b), alone, rtol=1e-6, atol=1e-6)
    # the samples of a batch are independent: b inside [a; b] gives b's outputs
    np.testing.assert_array_equal(model(jnp.concatenate([a, b]))[len(a):], alone)
    # explicit reset: b from the rest state is b alone; b carried on from a's final state is not
    s_b, _ = _spikes(model, b, reset_state(model, 3))
    np.testing.assert_array_equal(s_b, _spikes(model, b)[0])
    _, after_a = _spikes(model, a)
    carried, _ = _spikes(model, b, after_a + (None,))
    assert not np.array_equal(carried, s_b)  # the state matters, so resetting it is meaningful
    # the rest state is the layer's init_state
    rest = reset_state(model, 3)
    assert rest[2] is None and len(rest) == 3
    for got, want in zip(jax.tree.leaves(rest[0]), jax.tree.leaves(model.layers[0].init_state(3))):
        np.testing.assert_array_equal(got, want)


def test_windows_carry_the_state_and_detach_cuts_the_gradient():
    model = nn.Sequential(_stack().layers[:2])
    x = _x(T=8)
    full, full_state = call_with_state(model, x)
    y1, st = call_with_state(model, x[:, :4])
    y2, st2 = call_with_state(model, x[:, 4:], st)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], axis=1), full, atol=1e-6)
    for got, want in zip(jax.tree.leaves(st2), jax.tree.leaves(full_state)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # detach_state: the same values, no gradient into the earlier window
    for got, want in zip(jax.tree.leaves(detach_state(st)), jax.tree.leaves(st)):
        np.testing.assert_array_equal(got, want)

    def later_window(x, detach):
        _, st = call_with_state(model, x[:, :4])
        st = detach_state(st) if detach else st
        # the membrane of the second window, as a smooth function of the carried state
        _, info = model.layers[0](x[:, 4:], state0=st[0], return_state=True)
        return jnp.sum(info["v"])

    g_carry = jax.jit(jax.grad(later_window), static_argnums=1)(x, False)
    g_cut = jax.jit(jax.grad(later_window), static_argnums=1)(x, True)
    assert float(jnp.abs(g_carry[:, :4]).sum()) > 0  # carried: the earlier input matters
    assert float(jnp.abs(g_cut[:, :4]).sum()) == 0 and float(jnp.abs(g_cut[:, 4:]).sum()) > 0
    np.testing.assert_allclose(g_cut[:, 4:], g_carry[:, 4:], rtol=1e-5, atol=1e-6)


def test_chunk_size_detaches_the_carried_state_inside_one_call():
    """chunk_size = truncated windows inside a call: forward unchanged, the gradient of a later
    window w.r.t. an earlier window's input is zero (on a two-layer stack, under jit)."""
    full = nn.Sequential(_stack().layers[:2])
    cut = nn.Sequential(_stack(chunk_size=4).layers[:2])
    x = _x(T=8)
    np.testing.assert_array_equal(full(x), cut(x))

    def last_v(m, x):
        return jnp.sum(call_with_state(m, x)[1][0]["neuron"]["v"])  # the first layer's final membrane

    g_full = jax.jit(jax.grad(lambda x: last_v(full, x)))(x)
    g_cut = jax.jit(jax.grad(lambda x: last_v(cut, x)))(x)
    assert float(jnp.abs(g_full[:, :4]).sum()) > 0
    assert float(jnp.abs(g_cut[:, :4]).sum()) == 0 and float(jnp.abs(g_cut[:, 4:]).sum()) > 0


def test_mixed_precision_keeps_the_state_float32():
    """bfloat16 weights (cast_params) and another adjoint (with_execution): spikes, membranes and
    every state leaf stay float32, also when a bfloat16 state is passed in, and across windows."""
    k = jax.random.split(KEY, 2)
    model = nn.Sequential([*_stack().layers[:2], nn.HHLayer(5, 3, key=k[0], dt=0.1, substeps=2)])
    half = nn.with_execution(nn.cast_params(model, jnp.bfloat16), adjoint=bf.DirectAdjoint())
    assert half.layers[0].linear.weight.dtype == jnp.bfloat16
    x = _x(T=4)

    def dtypes(tree):
        return {a.dtype for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)}

    assert dtypes(reset_state(half, 3)) == {jnp.dtype(jnp.float32)}
    step = eqx.filter_jit(call_with_state)
    y, st = step(half, x[:, :2])
    assert y.dtype == jnp.float32 and dtypes(st) == {jnp.dtype(jnp.float32)}
    y2, st2 = step(half, x[:, 2:], st)
    assert dtypes(st2) == {jnp.dtype(jnp.float32)}
    # a bfloat16 state (e.g. cast_params applied to a (model, state) pair) is cast back on entry
    y3, st3 = step(half, x[:, 2:], nn.cast_params(st, jnp.bfloat16))
    assert y3.dtype == jnp.float32 and dtypes(st3) == {jnp.dtype(jnp.float32)}
    s0, info = half.layers[0](x, return_state=True)
    assert s0.dtype == jnp.float32 and info["v"].dtype == jnp.float32
    # the gradient w.r.t. bfloat16 weights is bfloat16 and finite
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(call_with_state(m, x)[1][0]["neuron"]["v"])))(half)
    assert g.layers[0].linear.weight.dtype == jnp.bfloat16
    assert bool(jnp.all(jnp.isfinite(g.layers[0].linear.weight.astype(jnp.float32))))


def test_lifecycle_bad_input():
    model = _stack()
    with pytest.raises(TypeError, match="model must be a spiking layer or a stack"):
        reset_state(eqx.nn.Linear(2, 2, key=KEY), 2)
    with pytest.raises(TypeError, match="model must be a spiking layer or a stack"):
        call_with_state(lambda x: x, _x())
    with pytest.raises(ValueError, match="batch must be a positive int"):
        reset_state(model, 0)
    with pytest.raises(ValueError, match=r"state must be a tuple with one entry per layer \(3"):
        call_with_state(model, _x(), reset_state(model, 3)[:2])


class _Wrapped(eqx.Module):
    """A user's spiking layer that is no AbstractSpikingLayer but follows its state contract
    (init_state(B); call with state0= / return_state=), as a convolutional layer may."""

    inner: nn.LIFLayer

    def init_state(self, batch):
        return self.inner.init_state(batch)

    def __call__(self, x, *, state0=None, return_state=False, key=None):
        return self.inner(x, state0=state0, return_state=return_state)


def test_any_layer_with_the_state_contract_takes_part():
    from brainfuse_jax.nn._metrics import snn_metrics

    layer = nn.LIFLayer(3, 4, key=KEY, recurrent=True)
    model = nn.Sequential([_Wrapped(layer), nn.SpikeCountReadout(4, 2, key=KEY)])
    x = _x(T=8)
    rest = reset_state(model, 3)
    assert rest[1] is None and jax.tree.structure(rest[0]) == jax.tree.structure(layer.init_state(3))
    y1, st = call_with_state(model.layers[0], x[:, :4])
    y2, _ = call_with_state(model.layers[0], x[:, 4:], st)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], axis=1), layer(x), atol=1e-6)
    met = snn_metrics(model, x)
    np.testing.assert_allclose(met["0._Wrapped"]["rate"], jnp.mean(layer(x)), rtol=1e-6)
