"""C99 from StableHLO (`brainfuse_jax.lower.emit_c`): the exported step of each model family,
emitted as C, compiled with gcc -std=c99 -O2 -Wall -Wextra -Werror and run, against `simulate`
(backend XLA, the computation that was exported): LIF, ALIF and RecurrentLIF spike trains
identical over 10,000 steps; HH and Pospischil RS spike times within 0.1 ms over 1 s; the Brunel
network (NE=80, NI=20: gathers, scatter-adds, Philox integer ops) identical over 200 ms; a
`while` loop (an exported unroll); unsupported ops refused by name and location."""

import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.lower import FLAGS, emit_c

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


@pytest.fixture
def nan_checks():
    """The library's runtime checks in "nan" mode (no host callbacks, which jax.export refuses)."""
    with bf.lower.checks("nan"):
        yield


def _run_c(tmp_path, model, state0, xs, dt):
    program = emit_c(bf.lower.to_stablehlo(model, state0, jnp.asarray(xs[:, 0]), dt))
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


@pytest.mark.parametrize("make, dt", [(lambda: bf.HH(), 0.025), (lambda: bf.ALIF(), 0.1)], ids=["hh", "alif"])
def test_float64_identical(nan_checks, x64, tmp_path, make, dt):
    """float64 models give float64 C (double, libm's exp): the same spike trains as simulate."""
    model = make()
    state0 = model.init_state((2, 3))
    xs = np.random.default_rng(5).uniform(0.0, 12.0, (2, 4_000, 3))
    program, out, _ = _run_c(tmp_path, model, state0, xs, dt)
    _, want = bf.simulate(model, state0, jnp.asarray(xs), dt, backend=bf.XLA())
    assert program.x_dtype == np.float64 and "double v[" in program.header and np.sum(want) > 10
    np.testing.assert_array_equal(out, np.asarray(want))


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
    lowered = bf.lower.to_stablehlo(model, state0, jnp.asarray(xs), dt, what="unroll")
    assert "stablehlo.while" in lowered.text
    out, _ = emit_c(lowered).run(xs[:, None], tmp_path)  # one "step" = the whole unroll
    _, want = bf.simulate(model, state0, jnp.asarray(xs), dt, backend=bf.XLA())
    np.testing.assert_array_equal(out[:, 0], np.asarray(want))


def test_makefile_and_cxx(nan_checks, tmp_path):
    """`make` builds the object and the test program with the flags; the shared prelude and the
    header compile as C++ too."""
    model = bf.LIF()
    state0 = model.init_state((1, 3))
    program = emit_c(bf.lower.to_stablehlo(model, state0, jnp.zeros((1, 3)), 0.1), prefix="lif")
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


_X = np.random.default_rng(0).normal(size=(2, 12)).astype(np.float32)
_XI = np.random.default_rng(1).integers(-50, 50, size=(2, 12)).astype(np.int32)
_PERM = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8])
_OPS = {  # name: (function of one (2, 12) array, input)
    "elementwise": (lambda x: jnp.tanh(x) + jnp.log1p(jnp.abs(x)) + jnp.expm1(x) * jnp.sign(x)
                    + jnp.sqrt(jnp.abs(x)) + jax.lax.rsqrt(jnp.abs(x) + 1) + jnp.sin(x) * jnp.cos(x) + jnp.floor(x)
                    + jnp.ceil(x) + jnp.round(x) + jnp.power(jnp.abs(x), 1.7) + jnp.maximum(x, 0.1)
                    + jnp.minimum(x, -0.1) + jnp.clip(x, -0.5, 0.5) + jnp.remainder(x, 0.7) + jax.nn.sigmoid(x)
                    + jax.scipy.special.erf(x) + jnp.arctan2(x, 1.5), _X),
    "windows": (lambda x: jnp.cumsum(x, axis=1) + jnp.cumprod(x * 0.1 + 1, axis=1)  # prefix scans: one pass
                + jnp.cumsum(x[:, ::-1], axis=1)[:, ::-1] + jnp.cumsum(x, axis=0) + jax.lax.cummax(x, axis=1)
                + jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3), (1, 1), "SAME"), _X),  # a sliding window
    "reductions": (lambda x: jnp.concatenate([jnp.sum(x, 1, keepdims=True), jnp.max(x, 1, keepdims=True),
                                              jnp.min(x, 1, keepdims=True), jnp.prod(x, 1, keepdims=True),
                                              jnp.argmax(x, 1, keepdims=True).astype(jnp.float32)], 1), _X),
    "dot_transpose_reverse": (lambda x: x @ jnp.arange(144.0, dtype=jnp.float32).reshape(12, 12) / 100.0
                              + x[:, ::-1] + jnp.einsum("bi,bj->bij", x, x).sum(2)
                              + x.reshape(2, 3, 4).transpose(0, 2, 1).reshape(2, 12), _X),
    "gather_scatter": (lambda x: x[:, _PERM] + jnp.zeros_like(x).at[:, _PERM[::-1]].add(x)
                       + jnp.zeros_like(x).at[:, 3].set(x[:, 0]) + jnp.zeros_like(x).at[:, _PERM].max(x), _X),
    "dynamic_slices": (lambda x: jax.lax.dynamic_update_slice(x, jax.lax.dynamic_slice(x, (0, jnp.argmax(x[0])),
                                                                                       (2, 3)), (0, jnp.argmin(x[1]))),
                       _X),
    "control_flow": (lambda x: jax.lax.fori_loop(0, 7, lambda i, c: c * 0.9 + jnp.where(c > 0, x, -x) * i, x)
                     + jax.lax.cond(x[0, 0] > 0, lambda: x * 2, lambda: x - 1)
                     + jax.lax.switch(jnp.int32(x[1, 1] > 0) + 1, [lambda: x, lambda: -x, lambda: x * x]), _X),
    "iota_compare": (lambda x: jnp.where(jnp.arange(12) % 3 == 0, x, 0.0)
                     + (jnp.arange(24).reshape(2, 12) > 10).astype(jnp.float32)
                     + jnp.isfinite(x / (x - x[0:1, 0:1])).astype(jnp.float32), _X),
    "integers": (lambda v: jnp.stack([
        v // 7, v % 7, v << 3, jax.lax.shift_right_logical(v, 2), jax.lax.shift_right_arithmetic(v, 2), v ^ 0x5A5A,
        v | 3, v & 12, ~v, -v, jnp.abs(v), jnp.sign(v), jnp.maximum(v, 3), v * 123456789,
        (v.astype(jnp.uint32) * jnp.uint32(2654435761)).astype(jnp.int32), jnp.clip(v, -10, 10),
        v.astype(jnp.float32).astype(jnp.int32), jax.lax.div(v, jnp.int32(-3)), jax.lax.rem(v, jnp.int32(-3)),
        jax.lax.div(v, jnp.zeros_like(v)), jax.lax.rem(v, jnp.zeros_like(v))], 1).reshape(2, -1), _XI),
    "random_bits": (lambda v: jax.random.bits(jax.random.fold_in(jax.random.key(v[0, 0]), 3), (2, 12),
                                              jnp.uint32).astype(jnp.int32) ^ v, _XI),
}


@pytest.mark.parametrize("name", list(_OPS))
def test_ops_against_jax(tmp_path, name):
    """Each supported op family (elementwise, window and plain reductions, dot_general,
    transpose, reverse, gather, scatter, dynamic slices, while/case, iota, integer and Threefry
    ops) in C against JAX: floats within 2e-6, integers exactly."""
    fn, x = _OPS[name]
    exported = jax.export.export(jax.jit(fn))(jnp.asarray(x))
    program = emit_c(exported)
    out, _ = program.run(x[:, None], tmp_path)
    want = np.asarray(fn(jnp.asarray(x)))
    if want.dtype.kind == "f":
        np.testing.assert_allclose(out[:, 0], want, rtol=2e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(out[:, 0], want)


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
