"""brainfuse_jax.nn losses, the training loop, and checkpoints."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax import nn

KEY = jax.random.PRNGKey(0)


def _toy(n=256, T=12, seed=0):
    """Which half of the sequence holds the pulse? Needs memory (read out over the whole sequence)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n).astype(np.int32)
    x = 0.1 * rng.random((n, T, 2)).astype(np.float32)
    t = np.where(y == 0, rng.integers(0, T // 2, n), rng.integers(T // 2, T, n))
    x[np.arange(n), t, 0] = 1.0
    return x, y


def _model(key=KEY):
    k1, k2 = jax.random.split(key)
    return nn.Sequential([nn.LIFLayer(2, 16, key=k1, recurrent=True, rec_gain=0.5),
                          nn.SpikeCountReadout(16, 2, bins=2, key=k2)])


def _loss(m, x, y):
    return nn.cross_entropy(m(x), y)


def test_cross_entropy_and_accuracy():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    y = jnp.array([0, 2])
    p = jax.nn.softmax(logits)
    np.testing.assert_allclose(nn.cross_entropy(logits, y), -(np.log(p[0, 0]) + np.log(p[1, 2])) / 2, rtol=1e-6)
    np.testing.assert_allclose(nn.accuracy(logits, y), 0.5)
    spikes = jnp.zeros((2, 4, 3)).at[0, :, 0].set(1.0).at[1, :2, 2].set(1.0)
    np.testing.assert_allclose(nn.rate_cross_entropy(spikes, y), nn.cross_entropy(jnp.sum(spikes, 1), y))
    v = jnp.stack([logits] * 3, axis=1)
    for r in ("mean", "max", "last"):
        np.testing.assert_allclose(nn.membrane_cross_entropy(v, y, reduce=r), nn.cross_entropy(logits, y), rtol=1e-6)


def test_firing_rate_and_variance_invariance_losses():
    s = jnp.zeros((2, 10, 3)).at[:, :, 0].set(1.0).at[:, :5, 1].set(1.0)  # rates 1, 0.5, 0
    np.testing.assert_allclose(nn.firing_rate_loss(s, 0.5), (0.25 + 0 + 0.25) / 3)
    np.testing.assert_allclose(nn.firing_rate_loss(s, 0.5, per_neuron=False), 0.0, atol=1e-7)
    np.testing.assert_allclose(nn.firing_rate_loss(s, jnp.array([1.0, 0.5, 0.0])), 0.0)
    z1 = jnp.array([[0.0, 1.0], [2.0, 1.0]])
    z2 = jnp.array([[0.0, 1.0], [2.0, 3.0]])
    # invariance: mean sq diff = 4/4 = 1; std of z1 columns: 1, 0 ; of z2: 1, 1 (eps tiny)
    expect = 25 * 1.0 + 25 * ((0.0 + (1 - np.sqrt(1e-4))) / 2 + 0.0)
    np.testing.assert_allclose(nn.variance_invariance_loss(z1, z2), expect, rtol=1e-5)
    z = jnp.array([[0.0, 1.0], [4.0, 1.1]])  # feature 0 spread (std 2), feature 1 nearly collapsed
    g = jax.grad(lambda z: nn.variance_invariance_loss(z, z))(z)
    assert float(jnp.abs(g[:, 1]).sum()) > 0 and float(jnp.abs(g[:, 0]).sum()) == 0  # only the collapsed one


def test_loss_bad_inputs():
    logits = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        nn.cross_entropy(logits, jnp.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        nn.accuracy(logits, jnp.array([-1, 0]))
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        nn.cross_entropy(logits, jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels has 3 labels but the predictions have batch size 2"):
        nn.cross_entropy(logits, jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, C\).*reduce the time axis"):
        nn.cross_entropy(jnp.zeros((2, 4, 3)), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="missing time axis"):
        nn.rate_cross_entropy(jnp.zeros((2, 3)), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="z1 and z2 must have the same shape"):
        nn.variance_invariance_loss(jnp.zeros((4, 2)), jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"target must be a scalar or have shape \(3,\)"):
        nn.firing_rate_loss(jnp.zeros((2, 4, 3)), jnp.zeros(2))
    # inside jit the label check is a runtime error
    with pytest.raises(Exception, match=r"labels must be in \[0, 3\)"):
        jax.block_until_ready(jax.jit(nn.cross_entropy)(logits, jnp.array([0, 5])))


def test_tiny_lif_network_learns(tmp_path):
    x, y = _toy()
    xt, yt = _toy(128, seed=1)
    model = _model()
    before = float(_loss(model, jnp.asarray(x), jnp.asarray(y)))

    def ev(m, x, y):
        logits, details = m(x, return_details=True)
        return {"acc": nn.accuracy(logits, y), "rate": details["0.LIFLayer"]["rate"]}

    model, hist = nn.train(model, _loss, (x, y), optimizer=optax.adam(2e-2), epochs=12, batch_size=64, key=KEY,
                           eval_fn=ev, eval_data=(xt, yt), progress=False)
    after = float(_loss(model, jnp.asarray(x), jnp.asarray(y)))
    assert after < 0.5 * before and after < 0.35, (before, after)
    assert hist[-1]["eval_acc"] > 0.9
    assert [h["epoch"] for h in hist] == list(range(1, 13)) and all(h["time_s"] > 0 for h in hist)
    assert 0 < hist[-1]["eval_rate"] < 1


def test_checkpoint_round_trip_and_resume(tmp_path):
    x, y = _toy(128)
    model = _model()
    opt = optax.adam(1e-2)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    path = tmp_path / "ckpt.eqx"
    nn.save_checkpoint(path, (model, opt_state))
    fresh = _model(jax.random.PRNGKey(99))
    loaded, _ = nn.load_checkpoint(path, (fresh, opt.init(eqx.filter(fresh, eqx.is_inexact_array))))
    for a, b in zip(jax.tree.leaves(eqx.filter(model, eqx.is_array)), jax.tree.leaves(eqx.filter(loaded, eqx.is_array))):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(fresh.layers[0].linear.weight, model.layers[0].linear.weight)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.load_checkpoint(tmp_path / "missing.eqx", model)

    # training with a checkpoint, interrupted after 1 of 2 epochs, resumes at epoch 2 and ends
    # exactly where an uninterrupted run ends
    ck = tmp_path / "run.eqx"
    kw = dict(optimizer=opt, batch_size=32, key=KEY, progress=False)
    full, _ = nn.train(_model(), _loss, (x, y), epochs=2, **kw)
    nn.train(_model(), _loss, (x, y), epochs=1, checkpoint=ck, **kw)
    resumed, hist = nn.train(_model(), _loss, (x, y), epochs=2, checkpoint=ck, resume=True, **kw)
    assert [h["epoch"] for h in hist] == [2]
    for a, b in zip(jax.tree.leaves(eqx.filter(full, eqx.is_array)), jax.tree.leaves(eqx.filter(resumed, eqx.is_array))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_bad_arguments():
    x, y = _toy(64)
    kw = dict(optimizer=optax.adam(1e-3), key=KEY, progress=False)
    with pytest.raises(ValueError, match="batch_size .* must be <= the number of samples"):
        nn.train(_model(), _loss, (x, y), epochs=1, batch_size=100, **kw)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        nn.train(_model(), _loss, (x, y), epochs=0, batch_size=8, **kw)
    with pytest.raises(TypeError, match=r"data must be a pair \(x, y\)"):
        nn.train(_model(), _loss, x, epochs=1, batch_size=8, **kw)
    with pytest.raises(ValueError, match="x has 64 samples but y has shape"):
        nn.train(_model(), _loss, (x, y[:10]), epochs=1, batch_size=8, **kw)
    with pytest.raises(ValueError, match="pass eval_fn and eval_data together"):
        nn.train(_model(), _loss, (x, y), epochs=1, batch_size=8, eval_fn=lambda m, x, y: {}, **kw)


def test_train_passes_adjoint_and_backend_to_the_layers():
    """train(adjoint=, backend=) sets them on every spiking layer (nn.with_execution) and so
    reaches simulate: DirectAdjoint trains as the default adjoint does (same loss history to
    float32 rounding); ForwardMode, which cannot differentiate the layer's input projection, and
    an unknown backend fail in simulate, naming the argument."""
    x, y = _toy(64)
    kw = dict(optimizer=optax.adam(1e-2), epochs=2, batch_size=32, key=KEY, progress=False)
    model = nn.with_execution(_model(), adjoint=bf.DirectAdjoint())
    assert model.layers[0].adjoint == bf.DirectAdjoint() and model.layers[0].backend is None
    assert _model().layers[0].adjoint is None
    _, hist0 = nn.train(_model(), _loss, (x, y), **kw)
    trained, hist1 = nn.train(_model(), _loss, (x, y), adjoint=bf.DirectAdjoint(), **kw)
    assert trained.layers[0].adjoint == bf.DirectAdjoint()
    np.testing.assert_allclose([h["loss"] for h in hist1], [h["loss"] for h in hist0], rtol=1e-4)
    with pytest.raises(ValueError, match="ForwardMode"):
        nn.train(_model(), _loss, (x, y), adjoint=bf.ForwardMode(), **kw)
    with pytest.raises((TypeError, ValueError), match="backend"):
        nn.train(_model(), _loss, (x, y), backend="no-such-backend", **kw)
    readout = nn.SpikeCountReadout(2, 2, key=KEY)
    with pytest.raises(ValueError, match="holds none"):
        nn.train(readout, lambda m, x, y: nn.cross_entropy(m(x), y), (x, y), adjoint=bf.DirectAdjoint(), **kw)
    assert nn.with_execution(readout) is readout  # nothing to set: unchanged
