"""Network health: layer_metrics / probes against hand computations, snn_metrics per layer (activity,
gradient norms, jit), and train's per-epoch health log and dead/saturated warnings."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from brainfuse_jax import nn
from brainfuse_jax.nn._metrics import grad_norms, health_warnings, SNNHealthWarning, snn_metrics
from brainfuse_jax.nn._probes import ACTIVITY, layer_metrics

KEY = jax.random.PRNGKey(0)


def _spikes():
    """B=2, T=4, n=5. Neuron 0 silent, 1 fires every frame, 2 fires once, 3 fires 3 of 8 frames
    (one of them a count of 2, as an HH/ASN frame can hold), 4 fires in 7 of 8 frames."""
    s = np.zeros((2, 4, 5), np.float32)
    s[:, :, 1] = 1
    s[1, 2, 2] = 1
    s[0, 0, 3], s[0, 3, 3], s[1, 1, 3] = 2, 1, 1
    s[:, :, 4] = 1
    s[1, 3, 4] = 0
    return s


def test_layer_metrics_by_hand():
    s = _spikes()
    v = np.arange(40, dtype=np.float32).reshape(2, 4, 5) - 10.0
    m = layer_metrics(jnp.asarray(s), jnp.asarray(v), frame_ms=2.0)
    assert set(m) == set(ACTIVITY)
    spikes_total = 8 + 1 + 4 + 7  # neurons 1, 2, 3 (2 + 1 + 1), 4
    np.testing.assert_allclose(float(m["rate"]), spikes_total / 40, rtol=1e-6)
    np.testing.assert_allclose(float(m["rate_hz"]), spikes_total / 40 * 500.0, rtol=1e-6)
    np.testing.assert_allclose(float(m["sparsity"]), 1 - (8 + 1 + 3 + 7) / 40, rtol=1e-6)
    assert m["dead"] == np.float32(1 / 5)  # neuron 0
    assert m["saturated"] == np.float32(1 / 5)  # neuron 1 only: neuron 4 misses one frame
    assert float(layer_metrics(jnp.asarray(s), saturation=7 / 8)["saturated"]) == np.float32(2 / 5)  # 1 and 4
    assert float(layer_metrics(jnp.asarray(s), saturation=0.9)["saturated"]) == np.float32(1 / 5)  # 7/8 < 0.9
    np.testing.assert_allclose(float(m["v_mean"]), np.mean(v), rtol=1e-6)
    np.testing.assert_allclose(float(m["v_std"]), np.std(v), rtol=1e-6)
    np.testing.assert_allclose(float(m["v_var"]), np.var(v), rtol=1e-6)
    assert float(m["v_min"]) == -10.0 and float(m["v_max"]) == 29.0
    # without membrane / frame duration: only the spike statistics
    assert set(layer_metrics(jnp.asarray(s))) == {"rate", "sparsity", "dead", "saturated"}
    # convolutional layout (B, T, C, H, W): a neuron is one (c, h, w); same numbers as flattened
    conv = layer_metrics(jnp.asarray(s.reshape(2, 4, 5, 1, 1)), jnp.asarray(v.reshape(2, 4, 5, 1, 1)), 2.0)
    for k in ACTIVITY:
        np.testing.assert_allclose(conv[k], m[k])
    # integer / boolean spike tensors are accepted
    np.testing.assert_allclose(layer_metrics(jnp.asarray(s > 0))["dead"], m["dead"])


def test_layer_metrics_bad_input():
    s = jnp.asarray(_spikes())
    with pytest.raises(ValueError, match=r"spikes must have shape \(B, T, \*neurons\)"):
        layer_metrics(s[0])
    with pytest.raises(ValueError, match="v must have the shape of spikes"):
        layer_metrics(s, s[:, :2])
    for bad in (0.0, 1.5, True, "1"):
        with pytest.raises(ValueError, match=r"saturation must be a number in \(0, 1\]"):
            layer_metrics(s, saturation=bad)


def test_probes_keep_their_names_and_default():
    """The debug probes are layer_metrics with the membrane, frame duration and saturation 0.9."""
    s, v = jnp.asarray(_spikes()), jnp.ones((2, 4, 5))
    p = nn.probes(s, v, frame_ms=0.5)
    assert set(nn.PROBES) == set(p) and {"rate", "rate_hz", "v_mean", "v_var", "sparsity", "dead",
                                         "saturated"} <= set(nn.PROBES)
    ref = layer_metrics(s, v, 0.5, saturation=0.9)
    for k in nn.PROBES:
        np.testing.assert_array_equal(p[k], ref[k])


def _model(threshold2=1.0, key=KEY):
    k = jax.random.split(key, 3)
    return nn.Sequential([nn.LIFLayer(3, 8, key=k[0]), nn.LIFLayer(8, 6, key=k[1], threshold=threshold2),
                          nn.SpikeCountReadout(6, 2, key=k[2])])


def _xy(B=8, T=6, seed=1):
    x = 3.0 * jax.random.uniform(jax.random.PRNGKey(seed), (B, T, 3))
    return x, jnp.arange(B) % 2


def _loss(m, x, y):
    return nn.cross_entropy(m(x), y)


def test_snn_metrics_per_layer_against_the_layers_own_outputs_and_gradients():
    model, (x, y) = _model(), _xy()
    met = eqx.filter_jit(snn_metrics)(model, x, y, loss_fn=_loss)  # jit-compatible (eager below)
    assert list(met) == ["0.LIFLayer", "1.LIFLayer", "2.SpikeCountReadout"]
    _, details = model(x, return_details=True)
    assert set(details) == {"0.LIFLayer", "1.LIFLayer"}  # the same names as Sequential's probes
    # activity = layer_metrics of each layer's own spikes and membrane
    s0, i0 = model.layers[0](x, return_state=True)
    s1, i1 = model.layers[1](s0, return_state=True)
    for name, (s, info) in {"0.LIFLayer": (s0, i0), "1.LIFLayer": (s1, i1)}.items():
        ref = layer_metrics(s, info["v"], 1.0)
        for k in ACTIVITY:
            np.testing.assert_allclose(met[name][k], ref[k], rtol=1e-6)
    assert set(met["2.SpikeCountReadout"]) == {"grad_norm"}
    # gradient norms: the Euclidean norm of each layer's gradient, by hand
    g = eqx.filter_jit(eqx.filter_grad(_loss))(model, x, y)
    for i, name in enumerate(met):
        leaves = [a for a in jax.tree.leaves(g.layers[i]) if eqx.is_inexact_array(a)]
        want = np.sqrt(sum(float(jnp.sum(a ** 2)) for a in leaves))
        np.testing.assert_allclose(float(met[name]["grad_norm"]), want, rtol=1e-5)
        np.testing.assert_allclose(float(grad_norms(g)[name]), want, rtol=1e-5)
    assert float(met["2.SpikeCountReadout"]["grad_norm"]) > 0
    # eagerly from a gradient pytree: the same
    by_grads = snn_metrics(model, x, grads=g)
    for name in met:
        for k in met[name]:
            np.testing.assert_allclose(by_grads[name][k], met[name][k], rtol=1e-5, atol=1e-7)
    # a single layer, and a model that reports its own probes (return_details)
    assert list(snn_metrics(model.layers[0], x)) == ["LIFLayer"]

    class Custom(eqx.Module):
        inner: nn.Sequential

        def __call__(self, x, *, return_details=False):
            return self.inner(x, return_details=return_details)

    custom = snn_metrics(Custom(model), x)
    np.testing.assert_allclose(custom["0.LIFLayer"]["rate"], met["0.LIFLayer"]["rate"])


def test_snn_metrics_bad_input():
    model, (x, y) = _model(), _xy()
    with pytest.raises(ValueError, match="loss_fn needs the labels y"):
        snn_metrics(model, x, loss_fn=_loss)
    with pytest.raises(ValueError, match="not both"):
        snn_metrics(model, x, y, loss_fn=_loss, grads=model)
    with pytest.raises(TypeError, match="no spiking layer found in Linear"):
        snn_metrics(eqx.nn.Linear(3, 2, key=KEY), x)
    with pytest.raises(ValueError, match="saturation must be"):
        snn_metrics(model, x, saturation=2)


def test_dead_and_saturated_layers_are_named():
    x, _ = _xy()
    dead = snn_metrics(_model(threshold2=1e4), x)
    assert float(dead["1.LIFLayer"]["dead"]) == 1.0 and float(dead["1.LIFLayer"]["rate"]) == 0.0
    msgs = health_warnings(dead)
    assert len(msgs) == 1 and "'1.LIFLayer' is dead: 100% of its neurons never spike" in msgs[0]
    hot = nn.LIFLayer(None, 3, key=KEY, threshold=1e-3, beta=0.0)  # input straight in
    sat = snn_metrics(hot, x + 1.0)
    assert float(sat["LIFLayer"]["saturated"]) == 1.0
    assert "'LIFLayer' is saturated" in health_warnings(sat)[0]
    assert health_warnings(snn_metrics(_model(), x)) == []
    # the threshold is configurable: a fraction of the layer's neurons, reached (>=) or not
    half = {"a": {"dead": 0.5, "saturated": 0.25}}
    assert health_warnings(half) == [] and len(health_warnings(half, threshold=0.5)) == 1
    assert len(health_warnings(half, threshold=0.25)) == 2
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\]"):
        health_warnings(half, threshold=0)


def test_train_logs_health_and_warns_on_a_dead_layer_only():
    x, y = _xy(32)
    kw = dict(optimizer=optax.adam(1e-2), epochs=2, batch_size=16, key=KEY, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SNNHealthWarning)  # a healthy network: no warning
        _, hist = nn.train(_model(), _loss, (np.asarray(x), np.asarray(y)), **kw)
    assert all(set(h["health"]) == {"0.LIFLayer", "1.LIFLayer", "2.SpikeCountReadout"} for h in hist)
    h0 = hist[0]["health"]["0.LIFLayer"]
    assert set(ACTIVITY) | {"grad_norm"} == set(h0) and all(isinstance(v, float) for v in h0.values())
    assert 0 < h0["rate"] < 1 and hist[0]["health"]["2.SpikeCountReadout"]["grad_norm"] > 0
    dead_msg = r"before epoch 1: layer '1.LIFLayer' is dead: 100% .*\(threshold 90%\)"
    with pytest.warns(SNNHealthWarning, match=dead_msg) as rec:
        _, hist = nn.train(_model(threshold2=1e4), _loss, (np.asarray(x), np.asarray(y)), **kw)
    assert len([w for w in rec if issubclass(w.category, SNNHealthWarning)]) == 1  # once, not every epoch
    assert hist[1]["health"]["1.LIFLayer"]["dead"] == 1.0
    # health=False computes nothing and warns of nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error", SNNHealthWarning)
        _, hist = nn.train(_model(threshold2=1e4), _loss, (np.asarray(x), np.asarray(y)), health=False, **kw)
    assert "health" not in hist[0]
    with pytest.raises(ValueError, match=r"health_threshold must be a number in \(0, 1\]"):
        nn.train(_model(), _loss, (x, y), health_threshold=0.0, **kw)
    with pytest.raises(ValueError, match="health_data must be inputs shaped like"):
        nn.train(_model(), _loss, (x, y), health_data=np.zeros((4, 6, 2)), **kw)
    with pytest.raises(ValueError, match="health=True: snn_metrics cannot see"):
        readout = nn.SpikeCountReadout(3, 2, key=KEY)
        nn.train(readout, _loss, (x, y), health=True, **kw)
