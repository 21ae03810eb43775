"""C99 from StableHLO (`brainfuse_jax.lower.emit_c`): the exported step of each model family,
emitted as C, compiled with gcc -std=c99 -O2 -Wall -Wextra -Werror and run, against `simulate`
(backend XLA, the computation that was exported): LIF, ALIF and RecurrentLIF spike trains
identical over 10,000 steps; HH and Pospischil RS spike times within 0.1 ms over 1 s; the Brunel
network (NE=80, NI=20: gathers, scatter-adds, Philox integer ops) identical over 200 ms; a
`while` loop (an exported unroll); unsupported ops refused by name and location."""

import shutil
import subprocess

import equinox as eqx
import equinox._errors
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.lower import FLAGS, emit_c

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture
def nan_checks(monkeypatch):
    """equinox's runtime checks as NaN (no host callbacks, which jax.export refuses). The library's
    own check mode (`brainfuse_jax.lower`'s export) replaces this."""
    monkeypatch.setattr(equinox._errors, "EQX_ON_ERROR", "nan")


def _name(path) -> str:
    return ".".join(str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k)))) for k in path)


def _export(model, state0, x, dt, what="step"):
    """jax.export of the flat f(*params, *state, x) -> (*new_state, out) of `model`'s step (or its
    XLA unroll): the exported function, the names and values of its params and state leaves."""
    model = bf.XLA().prepare(model)
    params, static = eqx.partition(model, eqx.is_array)
    p_paths, p_def = jax.tree_util.tree_flatten_with_path(params)
    s_paths, s_def = jax.tree_util.tree_flatten_with_path(state0)
    n_p, n_s = len(p_paths), len(s_paths)

    def f(*args):
        m = eqx.combine(jax.tree.unflatten(p_def, args[:n_p]), static)
        state = jax.tree.unflatten(s_def, args[n_p:n_p + n_s])
        if what == "step":
            new, out = m.step(state, args[-1], dt)
        else:
            new, out = bf.simulate(m, state, args[-1], dt, backend=bf.XLA(), adjoint=bf.DirectAdjoint())
        return (*jax.tree.leaves(new), out)

    p_leaves, s_leaves = [v for _, v in p_paths], [v for _, v in s_paths]
    exported = jax.export.export(jax.jit(f))(*p_leaves, *s_leaves, x)
    return exported, dict(param_names=[_name(k) for k, _ in p_paths], state_names=[_name(k) for k, _ in s_paths],
                          param_values=p_leaves, state_values=s_leaves)


def _run_c(tmp_path, model, state0, xs, dt):
    exported, names = _export(model, state0, jnp.asarray(xs[:, 0]), dt)
    program = emit_c(exported, **names)
    out, final = program.run(xs, tmp_path)
    return program, out, final


@pytest.mark.parametrize("name, make, batch", [
    ("lif", lambda: bf.LIF(beta=0.95, reset="zero", refractory=0.3), 1),
    ("alif", lambda: bf.ALIF(), 2),
    ("recurrent_lif", lambda: bf.RecurrentLIF(20, key=jax.random.key(3), gain=0.5), 2),
])
def test_lif_family_spikes_identical(nan_checks, tmp_path, name, make, batch):
    """10,000 steps of random input: the C spike trains equal simulate's (final membrane within
    a few ulp: XLA fuses the scanned step a little differently)."""
    model, dt = make(), 0.1
    state0 = model.init_state((batch, 20))
    xs = np.random.default_rng(1).uniform(0.0, 0.6, (batch, 10_000, 20)).astype(np.float32)
    program, out, final = _run_c(tmp_path, model, state0, xs, dt)
    want_final, want = bf.simulate(model, state0, jnp.asarray(xs), dt, backend=bf.XLA())
    assert 1_000 < np.sum(want) < np.size(want) / 2  # spiking, not saturated
    np.testing.assert_array_equal(out, np.asarray(want))
    np.testing.assert_allclose(final["v"], np.asarray(want_final["v"]), rtol=1e-6, atol=1e-6)  # a few ulp
    assert "float v[" in program.header and "_step(const bf_params* p, bf_state* s" in program.header


def _spike_times(spikes, dt):
    """Spike times (ms) of each neuron of `(B, T, n)` spike trains."""
    return [np.nonzero(spikes[b, :, i])[0] * dt for b in range(spikes.shape[0]) for i in range(spikes.shape[2])]


@pytest.mark.parametrize("make", [lambda: bf.HH(), lambda: bf.PospischilRS()], ids=["hh", "pospischil_rs"])
def test_conductance_neurons_spike_times(nan_checks, tmp_path, make):
    """1 s of step and noisy drive (float32): every spike in C within 0.1 ms of simulate's."""
    model, dt, n_steps = make(), 0.025, 40_000
    state0 = model.init_state((2, 4))
    rng = np.random.default_rng(2)
    t = np.arange(n_steps) * dt
    amp = np.array([2.0, 5.0, 10.0, 20.0], np.float32)
    steps = np.where((t > 100.0) & (t < 900.0), 1.0, 0.0)[:, None] * amp  # (T, 4) uA/cm2
    noisy = amp * 0.6 + 3.0 * rng.standard_normal((n_steps, 4))
    xs = np.stack([steps, noisy]).astype(np.float32)
    _, out, _ = _run_c(tmp_path, model, state0, xs, dt)
    _, want = bf.simulate(model, state0, jnp.asarray(xs), dt, backend=bf.XLA())
    got_t, want_t = _spike_times(out, dt), _spike_times(np.asarray(want), dt)
    assert sum(map(len, want_t)) > 50
    for g, w in zip(got_t, want_t, strict=True):
        assert len(g) == len(w)
        assert np.all(np.abs(g - w) <= 0.1 + 1e-9)


def test_brunel_network_identical(nan_checks, tmp_path):
    """The Brunel network's step (CSR delivery, delay ring, Philox-drawn Poisson drive) in C:
    the same spikes as simulate over 200 ms."""
    net = bf.network.brunel(NE=80, NI=20, spike_capacity=None)
    state0 = net.init_state(1)
    xs = np.zeros((1, 2_000, net.n), np.float32)
    program, out, _ = _run_c(tmp_path, net, state0, xs, 0.1)
    _, want = bf.simulate(net, state0, jnp.asarray(xs), 0.1, backend=bf.XLA())
    assert np.sum(want) > 100
    np.testing.assert_array_equal(out, np.asarray(want))
    assert "populations_E_v[" in program.header  # names: '.' -> '_'


def test_unrolled_module_while_loop(nan_checks, tmp_path):
    """An exported unroll (a `while` over dynamic slices and updates) as one C call."""
    model, dt = bf.ALIF(), 0.1
    state0 = model.init_state((2, 5))
    xs = np.random.default_rng(4).uniform(0.0, 0.6, (2, 300, 5)).astype(np.float32)
    exported, names = _export(model, state0, jnp.asarray(xs), dt, what="unroll")
    assert "stablehlo.while" in exported.mlir_module()
    out, _ = emit_c(exported, **names).run(xs[:, None], tmp_path)  # one "step" = the whole unroll
    _, want = bf.simulate(model, state0, jnp.asarray(xs), dt, backend=bf.XLA())
    np.testing.assert_array_equal(out[:, 0], np.asarray(want))


def test_makefile_and_cxx(nan_checks, tmp_path):
    """`make` builds the object and the test program with the flags; the shared prelude and the
    header compile as C++ too."""
    model = bf.LIF()
    state0 = model.init_state((1, 3))
    exported, names = _export(model, state0, jnp.zeros((1, 3)), 0.1)
    program = emit_c(exported, prefix="lif", **names)
    program.write(tmp_path)
    if shutil.which("make"):
        subprocess.run(["make", "-s", "-C", str(tmp_path)], check=True, capture_output=True)
        assert (tmp_path / "lif_main").exists() and (tmp_path / "lif.o").exists()
    assert " ".join(FLAGS) in program.makefile and "lif_params_init" in program.readme
    if shutil.which("g++"):
        (tmp_path / "use.cc").write_text('#include "lif.h"\nint main() { lif_params p; lif_params_init(&p); return 0; }\n')
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c", "-o", str(tmp_path / "use.o"),
                        str(tmp_path / "use.cc")], check=True, capture_output=True)
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++", "-"],
                       input=__import__("brainfuse_kernels._c_ops", fromlist=["PRELUDE"]).PRELUDE, text=True,
                       check=True, capture_output=True)


def test_unsupported_op_refused(nan_checks):
    """An op outside the supported set raises ValueError naming the op and its source location."""
    exported = jax.export.export(jax.jit(lambda x: jnp.sort(x) * 2.0))(jnp.zeros((8,), jnp.float32))
    with pytest.raises(ValueError, match=r"stablehlo\.sort.*test_lower_c\.py:\d+"):
        emit_c(exported)
    exported = jax.export.export(jax.jit(lambda x: jnp.fft.fft(x).real))(jnp.zeros((8,), jnp.float32))
    with pytest.raises(ValueError, match=r"stablehlo\.(fft|real).*test_lower_c\.py:\d+"):
        emit_c(exported)
    text = """
module @m {
  func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.custom_call @my_kernel(%arg0) : (tensor<4xf32>) -> tensor<4xf32> loc("my_kernel_site")
    return %0 : tensor<4xf32>
  }
}"""
    with pytest.raises(ValueError, match=r"stablehlo\.custom_call.*my_kernel_site"):
        emit_c(text)
    with pytest.raises(ValueError, match="prefix"):
        emit_c(text, prefix="1bad")
    with pytest.raises(TypeError, match="exported_or_lowered"):
        emit_c(42)
