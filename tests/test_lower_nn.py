"""A trained `nn` LIF classifier exported and run in C (`brainfuse_jax.lower.export_module`,
`emit_c`): scikit-learn's digits as 8 frames of 8 pixels, `LIFLayer(8, 64)` ->
`SpikeCountReadout(64, 10, bins=4)`, trained 10 epochs (94.7 % test accuracy when written);
exported for the whole test set (359 digits), emitted as C99, compiled with gcc -std=c99 -O2
-Wall -Wextra -Werror and run: the same predictions and test accuracy as JAX, the same spikes,
logits within a few rounding errors of the readout's dot product; a round trip through bytes;
check mode "nan" (a NaN input gives NaN logits, no host callback)."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax import nn
from brainfuse_jax.lower import emit_c, export_module, Lowered

pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (pip install -e .[learning])")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def trained():
    """(model, data): the LIF classifier trained on the digits (row by row), ~3 s."""
    data = nn.load_digits("row")
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    model = nn.Sequential([nn.LIFLayer(8, 64, key=k1), nn.SpikeCountReadout(64, 10, bins=4, key=k2)])
    model, _ = nn.train(model, lambda m, x, y: nn.cross_entropy(m(x), y), (data.x_train, data.y_train),
                        optimizer=optax.adam(1e-2), epochs=10, batch_size=64, key=k3, progress=False,
                        backend=bf.XLA(), adjoint=bf.DirectAdjoint())
    return model, data


@pytest.fixture(scope="module")
def lowered(trained):
    model, data = trained
    return export_module(model, jnp.asarray(data.x_test))


def test_export_names_and_call(trained, lowered):
    """f(*params, x) -> (logits,): parameters named by their paths, no state, no callback; the
    deserialised call equals the model's own forward pass bit for bit."""
    model, data = trained
    assert lowered.what == "module" and lowered.dt is None and lowered.state == ()
    assert [s.name for s in lowered.params] == bf.params.names(model) == [
        "layers.0.linear.weight", "layers.0.linear.bias", "layers.0.neuron.beta_raw", "layers.0.neuron.threshold",
        "layers.0.neuron.refractory", "layers.1.linear.weight", "layers.1.linear.bias"]
    assert [(s.name, s.shape) for s in lowered.inputs] == [("x", (359, 8, 8))]
    assert [(s.name, s.shape) for s in lowered.outputs] == [("output", (359, 10))]
    assert "callback" not in lowered.text and "custom_call" not in lowered.text
    x = jnp.asarray(data.x_test)
    (got,) = lowered.call(*lowered.arguments(x))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(model(x)))
    (again,) = lowered.call(*lowered.arguments(x, model=model))  # the values of a model, by name
    np.testing.assert_array_equal(np.asarray(again), np.asarray(got))


@needs_gcc
def test_classifier_in_c(trained, lowered, tmp_path):
    """The C classifier: predictions and test accuracy identical to JAX's, the hidden layer's
    spikes identical, logits within 8 eps * (|W| |counts| + |b|).

    Why that tolerance: with identical spikes the spike counts are exact small integers, so the
    logits differ only in how the readout's 257-term dot product (`W counts + b`) is summed:
    XLA's vectorised blocks against the C loop. A reordered float32 sum differs from the exact
    one by at most a few eps times the sum of the absolute terms (worst case (n - 1) eps);
    measured: 2.9 eps (<= 8 ulp of each digit's largest logit) in C, 0.9 eps in XLA, against
    float64."""
    model, data = trained
    x = np.asarray(data.x_test, np.float32)
    want = np.asarray(model(jnp.asarray(x)))
    acc = float(np.mean(want.argmax(1) == data.y_test))
    assert acc >= 0.9, acc  # 0.947 when written
    program = emit_c(lowered)
    assert program.state == () and "char unused;" in program.header
    assert "float layers_1_linear_weight[2560];" in program.header
    out, state = program.run(x[:, None], tmp_path / "clf")  # one call: the whole test set
    logits = out[:, 0]
    assert state == {}
    np.testing.assert_array_equal(logits.argmax(1), want.argmax(1))
    assert float(np.mean(logits.argmax(1) == data.y_test)) == acc

    layer, readout = model.layers
    spikes = np.asarray(layer(jnp.asarray(x)))
    c_spikes, _ = emit_c(export_module(layer, jnp.asarray(x))).run(x[:, None], tmp_path / "layer")
    np.testing.assert_array_equal(c_spikes[:, 0], spikes)
    assert 0.05 < spikes.mean() < 0.5  # spiking, not saturated

    counts = np.asarray(readout.counts(jnp.asarray(spikes))).reshape(len(x), -1)
    w, b = np.asarray(readout.linear.weight), np.asarray(readout.linear.bias)
    scale = np.abs(counts) @ np.abs(w).T + np.abs(b)
    assert np.all(np.abs(logits - want) <= 8 * EPS * scale)


@needs_gcc
def test_one_digit_per_call(trained, tmp_path):
    """Exported for one digit (B = 1), `bf_unroll` calls it once per digit: the logits of the
    whole test set equal the batch program's bit for bit."""
    model, data = trained
    x = np.asarray(data.x_test, np.float32)
    batch = emit_c(export_module(model, jnp.asarray(x))).run(x[:, None], tmp_path / "batch")[0][:, 0]
    single = emit_c(export_module(model, jnp.asarray(x[:1])))
    assert single.batch == 1
    per_call = single.run(x[None], tmp_path / "single")[0][0]  # (1, 359 calls, 8, 8)
    np.testing.assert_array_equal(per_call, batch)


def test_round_trip_bytes(trained, lowered, tmp_path):
    """serialized + meta -> an equal Lowered: same specs and values, same results, same C."""
    model, data = trained
    back = Lowered.from_serialized(lowered.serialized, lowered.meta)
    assert (back.what, back.dt, back.n_steps, back.model) == ("module", None, 1, "Sequential")
    assert back.params == lowered.params and back.inputs == lowered.inputs and back.outputs == lowered.outputs
    for a, b in zip(back.param_values, lowered.param_values, strict=True):
        np.testing.assert_array_equal(a, b)
    x = jnp.asarray(data.x_test)
    np.testing.assert_array_equal(np.asarray(back.call(*back.arguments(x))[0]),
                                  np.asarray(lowered.call(*lowered.arguments(x))[0]))
    assert emit_c(back).source == emit_c(lowered).source
    lowered.write(tmp_path)
    read = Lowered.read(tmp_path)
    assert read.serialized == lowered.serialized and read.params == lowered.params


@needs_gcc
def test_nan_input_and_parameters(trained, lowered, tmp_path):
    """Check mode "nan": a batch with a NaN or an inf pixel gets NaN logits everywhere, in JAX
    and in C (the library's input check marks the whole block, and every digit would otherwise
    read a NaN membrane as "no spike" and get the readout's bias as logits); a NaN parameter
    makes every logit NaN."""
    _, data = trained
    program = emit_c(lowered)
    exe = program.compile(tmp_path)
    for bad in (np.nan, np.inf):
        x = np.array(data.x_test, np.float32)
        x[3, 2, 5] = bad
        assert np.isnan(np.asarray(lowered.call(*lowered.arguments(jnp.asarray(x)))[0])).all()
        assert np.isnan(program.run(x[:, None], tmp_path, executable=exe)[0]).all()
    args = lowered.arguments(jnp.asarray(data.x_test))
    args[3] = args[3].at[0].set(jnp.nan)  # layers.0.neuron.threshold
    assert np.isnan(np.asarray(lowered.call(*args)[0])).all()


def test_bad_arguments(trained):
    model, data = trained
    x = jnp.asarray(data.x_test[:4])
    with pytest.raises(TypeError, match="to_stablehlo"):
        export_module(bf.LIF(), x)
    with pytest.raises(TypeError, match="module must be an equinox.Module"):
        export_module(lambda v: v, x)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        export_module(model, data.x_test[:4].tolist())
    with pytest.raises(TypeError, match="export_module"):
        bf.lower.to_stablehlo(model, {}, x, 1.0)
