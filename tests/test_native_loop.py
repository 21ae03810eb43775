"""The native CPU loop (`brainfuse_kernels._loop_cpu`, C++ generated from a jaxpr) and
`ForwardMode` with `backend=bf.NativeCPU()` (or the default), which runs a model's forward sensitivities through it: against XLA
running the same JAX code, against the checkpointed adjoint and against finite differences. (The
model families of tests/test_execution_matrix.py, HH with Pade decays, LIF, ALIF, ASN and
Pospischil IB among them, are compared there, in float64 for both kinds of loss.)"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brainfuse_kernels import _jaxpr_c, _loop_cpu

import brainfuse_jax as bf

DT = 0.025
NATIVE = (bf.ForwardMode(), bf.NativeCPU())  # (adjoint, backend): the native loop, required
XLA_FWD = (bf.ForwardMode(), bf.XLA())  # the same sensitivities as an XLA loop


def _run(execution):
    """simulate's `adjoint=`/`backend=` from an adjoint or an (adjoint, backend) pair."""
    return dict(zip(("adjoint", "backend"), execution)) if isinstance(execution, tuple) else {"adjoint": execution}

pytestmark = pytest.mark.skipif(not _loop_cpu.available(), reason="native loops need a C++ compiler (g++ or $CXX) "
                                "and JAX's CPU backend")


def _records(fn, state0, xs):
    """`fn(s, x) -> (new, record)` unrolled by XLA: records (B, T)."""
    def body(s, x):
        new, rec = jax.vmap(fn)(s, x)
        return new, rec
    return jax.lax.scan(body, state0, xs.T)[1].T


def _native_records(fn, state0, xs):
    def per_neuron(p, s, d, x):
        new, rec = fn(s[0], x[0])
        return [new], [rec], [], [], [], []
    return _loop_cpu.native_loop(per_neuron, [], [state0], [xs], xs.shape[1], n_records=1, n_totals=0)[1][0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_matches_numpy(dtype):
    """bf_exp (float32: a polynomial the compiler vectorises) within 2 ulp of exp in float64 over
    the whole range, with inf on overflow, 0 on underflow, NaN kept."""
    with jax.enable_x64(dtype == np.float64):
        x = np.concatenate([np.linspace(-87.0, 88.0, 20001), [-1e-30, 0.0, 1e-30, 100.0, -100.0, np.inf, -np.inf,
                                                               np.nan]]).astype(dtype)
        x = x[: x.size - x.size % 8].reshape(8, -1)
        got = np.asarray(_native_records(lambda s, xx: (s, jnp.exp(xx)), jnp.zeros(8, dtype), jnp.asarray(x)))
    want = np.exp(x.astype(np.float64))
    finite = (want < np.finfo(dtype).max) & (want > np.finfo(dtype).tiny)
    rel = np.abs(got[finite] - want[finite]) / want[finite]
    assert rel.max() < 2 * np.finfo(dtype).eps, rel.max()
    assert np.array_equal(np.isnan(got), np.isnan(x))
    assert np.all(got[want >= np.finfo(dtype).max] == np.inf)
    assert np.all(got[want < np.finfo(dtype).smallest_subnormal] == 0)


def _kitchen_sink(s, x):
    """A step touching most translated primitives."""
    a = jnp.where(x > 0.3, jnp.tanh(s) + jnp.log1p(x * x), jnp.expm1(-jnp.abs(s)) * jnp.sign(x))
    b = jnp.maximum(a, -0.5) + jnp.minimum(s, 0.2) ** 3 + jax.nn.sigmoid(x) * jnp.sqrt(1.0 + s * s)
    c = jnp.clip(b, -2.0, 2.0) + jnp.floor(x * 4.0) / 8.0 + jnp.power(1.5, x) - 1.0 / (2.0 + s ** 2)
    new = 0.9 * s + 0.1 * jnp.sin(c) + jnp.cos(x) * 0.01
    return new, c + jnp.exp(-x) * (s > 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_translated_step_matches_xla(dtype):
    """The generated C gives what XLA gives for the same JAX code, step after step."""
    with jax.enable_x64(dtype == np.float64):
        key = jax.random.key(0)
        xs = jax.random.uniform(key, (37, 300), dtype, -1.0, 1.5)  # 37 neurons: full blocks and a tail
        s0 = jnp.linspace(-1.0, 1.0, 37, dtype=dtype)
        want = _records(_kitchen_sink, s0, xs)
        got = _native_records(_kitchen_sink, s0, xs)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_runtime_check_in_step():
    """An `eqx.error_if` in the step is checked at every step of the native loop too."""
    def step(s, x):
        new = eqx.error_if(s + x, s + x > 5.0, "too big")
        return new, new

    np.testing.assert_allclose(_native_records(step, jnp.zeros(3), jnp.full((3, 10), 0.1))[:, -1], 1.0, rtol=1e-6)
    with pytest.raises(jax.errors.JaxRuntimeError, match="runtime check"):
        jax.block_until_ready(_native_records(step, jnp.zeros(3), jnp.ones((3, 10))))


def test_unsupported_jaxpr():
    """Control flow, arrays and callbacks are refused (callers then keep XLA)."""
    cond = jax.make_jaxpr(lambda s: jax.lax.cond(s > 0, jnp.sin, jnp.cos, s))(1.0)
    with pytest.raises(_jaxpr_c.Unsupported, match="cond"):
        _jaxpr_c.emit(cond, [("in_s0", False)])
    arrays = jax.make_jaxpr(lambda s: jnp.sum(s * jnp.arange(3.0)))(1.0)
    with pytest.raises(_jaxpr_c.Unsupported):
        _jaxpr_c.emit(arrays, [("in_s0", False)])


MODELS = {
    "hh_pade": lambda g: bf.HH(g_na=g[0], g_k=g[1], g_l=g[2], scheme="exp_euler", decay="pade"),
    "hh_backward_euler": lambda g: bf.HH(g_na=g[0], g_k=g[1], g_l=g[2], scheme="backward_euler"),
    "pospischil_rs": lambda g: bf.PospischilRS(g_na=g[0], g_kd=g[1], g_m=g[2]),
}


def _loss(make, state0, x, record):
    def loss(g, adjoint):
        model = make(g)
        if record == "totals":
            final, rec = bf.simulate(model, state0, x, DT, record={"v": bf.Total(lambda s, out: jnp.sin(s["v"]))},
                                     **_run(adjoint))
            return jnp.mean(rec["v"]) + 1e-3 * jnp.sum(final["v"] ** 2)
        _, v = bf.simulate(model, state0, x, DT, record="v", **_run(adjoint))
        return jnp.mean((v + 60.0) ** 2)
    return loss


@pytest.mark.parametrize("record", ["totals", "per_step"])
@pytest.mark.parametrize("name", ["hh_backward_euler", "pospischil_rs"])  # hh_pade: test_execution_matrix.py
def test_native_gradients_equal_checkpoint_adjoint(x64, name, record):
    """ForwardMode(native=True) against the checkpointed adjoint (XLA), float64: the value and the
    gradient w.r.t. three conductances, through spikes, for losses of totals and of traces."""
    g0 = {"pospischil_rs": jnp.asarray([56.0, 6.0, 0.075])}.get(name, jnp.asarray([120.0, 36.0, 0.3]))
    state0 = MODELS[name](g0).init_state(6)
    x = jnp.linspace(2.0, 14.0, 6)[:, None] * (1.0 + 0.3 * jnp.sin(jnp.arange(1200)[None, :] / 40.0))
    loss = _loss(MODELS[name], state0, x, record)
    v_ref, g_ref = jax.value_and_grad(loss)(g0, bf.CheckpointAdjoint())
    v_nat, g_nat = jax.jit(jax.value_and_grad(loss), static_argnums=1)(g0, NATIVE)
    np.testing.assert_allclose(v_nat, v_ref, rtol=1e-10)
    np.testing.assert_allclose(g_nat, g_ref, rtol=1e-9, atol=1e-12)
    assert np.abs(np.asarray(g_ref)).min() > 0


def test_native_gradient_finite_differences(x64):
    """Float64 gradient of a trace loss against central differences."""
    state0 = MODELS["hh_pade"](jnp.ones(3)).init_state(3)
    x = jnp.asarray([4.0, 8.0, 12.0])[:, None] * jnp.ones((1, 800))
    loss = _loss(MODELS["hh_pade"], state0, x, "per_step")
    g0 = jnp.asarray([120.0, 36.0, 0.3])
    grad = jax.grad(loss)(g0, NATIVE)
    for k in range(3):
        e = jnp.zeros(3).at[k].set(1e-6 * g0[k])
        fd = (loss(g0 + e, bf.ForwardMode()) - loss(g0 - e, bf.ForwardMode())) / (2 * e[k])
        np.testing.assert_allclose(grad[k], fd, rtol=1e-6)


def test_native_float32_accuracy():
    """Float32: value and gradient against float64, within the error class of XLA's float32 forward
    mode (through spikes both lose digits: the float64 reference decides)."""
    errors = {}
    for dtype in (np.float32, np.float64):
        with jax.enable_x64(dtype == np.float64):
            state0 = MODELS["hh_pade"](jnp.ones(3)).init_state(8, dtype=dtype)
            x = jnp.asarray(np.linspace(0.0, 15.0, 8)[:, None] * np.ones((1, 200)), dtype)
            g0 = jnp.asarray([120.0, 36.0, 0.3], dtype)
            for record in ("totals", "per_step"):
                loss = jax.jit(jax.value_and_grad(_loss(MODELS["hh_pade"], state0, x, record)), static_argnums=1)
                for native in (True, False):
                    v, g = loss(g0, (NATIVE if native else XLA_FWD))
                    errors[dtype, record, native] = (float(v), np.asarray(g, np.float64))
    for record in ("totals", "per_step"):
        v64, g64 = errors[np.float64, record, False]
        err = {}
        for native in (True, False):
            v32, g32 = errors[np.float32, record, native]
            err[native] = (abs(v32 - v64) / abs(v64), np.max(np.abs(g32 - g64) / np.abs(g64)))
        assert err[True][0] < 3e-5, err
        assert err[True][1] < max(3 * err[False][1], 5e-4), err


def test_native_per_neuron_parameters_held_input_vmap(x64):
    """Per-neuron conductances, the gradient w.r.t. a held current (simulate(n_steps=...)), and vmap
    over parameter sets, against the checkpointed adjoint."""
    state0 = bf.HH().init_state(4)

    def loss(g_na, current, adjoint):
        model = bf.HH(g_na=g_na, scheme="exp_euler", decay="pade")
        _, sv = bf.simulate(model, state0, current, DT, n_steps=600, record=bf.Total("v"), **_run(adjoint))
        return jnp.mean(sv)

    g_na, current = jnp.linspace(100.0, 130.0, 4), jnp.asarray([0.0, 5.0, 10.0, 15.0])
    grad = jax.grad(loss, argnums=(0, 1))
    for got, want in zip(grad(g_na, current, NATIVE), grad(g_na, current, bf.CheckpointAdjoint())):
        np.testing.assert_allclose(got, want, rtol=1e-9)
    sweep = jnp.stack([g_na, g_na * 0.9, g_na * 1.1])
    batched = jax.jit(jax.vmap(jax.value_and_grad(loss), in_axes=(0, None, None)), static_argnums=2)
    values, grads = batched(sweep, current, NATIVE)
    for k in range(3):
        v, g = jax.value_and_grad(loss)(sweep[k], current, bf.CheckpointAdjoint())
        np.testing.assert_allclose(values[k], v, rtol=1e-12)
        np.testing.assert_allclose(grads[k], g, rtol=1e-9)


def test_native_fallbacks_and_errors(monkeypatch):
    """What the native loop cannot run falls back to XLA (native=None, same result) or raises a
    ValueError naming the reason (native=True)."""
    state0 = bf.HH().init_state(3)
    x = jnp.full((3, 50), 10.0)

    def loss(g, adjoint, dt=DT, record="v", scheme="exp_euler"):
        _, rec = bf.simulate(bf.HH(g_na=g, scheme=scheme), state0, x, dt, record=record, **_run(adjoint))
        return jnp.sum(rec)

    want = jax.grad(loss)(120.0, XLA_FWD)
    # a traced dt
    traced = jax.jit(jax.grad(lambda g, dt, a: loss(g, a, dt)), static_argnums=2)
    np.testing.assert_allclose(traced(120.0, DT, bf.ForwardMode()), want, rtol=1e-5)
    with pytest.raises(ValueError, match="traced dt"):
        traced(120.0, DT, NATIVE)
    # NEURON's rate tables (a gather from a table: not translated)
    with pytest.raises(ValueError, match="rate tables"):
        jax.grad(loss)(120.0, NATIVE, scheme="neuron")
    np.testing.assert_allclose(jax.grad(loss)(120.0, bf.ForwardMode(), scheme="neuron"),
                               jax.grad(loss)(120.0, XLA_FWD, scheme="neuron"), rtol=1e-6)
    # a record that is not one number per neuron
    mean_v = bf.Total(lambda s, out: jnp.mean(s["v"]))
    with pytest.raises(ValueError, match="one number per neuron"):
        jax.grad(loss)(120.0, NATIVE, record=mean_v)
    np.testing.assert_allclose(jax.grad(loss)(120.0, bf.ForwardMode(), record=mean_v),
                               jax.grad(loss)(120.0, XLA_FWD, record=mean_v), rtol=1e-6)
    # no compiler / another backend
    monkeypatch.setattr(_loop_cpu, "available", lambda: False)
    with pytest.raises(ValueError, match="compiler"):
        jax.grad(loss)(120.0, NATIVE)
    np.testing.assert_allclose(jax.grad(loss)(120.0, bf.ForwardMode()), want, rtol=1e-6)


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_bad_native_flag(bad):
    with pytest.raises(TypeError, match="fallback"):
        bf.NativeCPU(fallback=bad)
    with pytest.raises(ValueError, match="backend must be"):
        bf.simulate(bf.LIF(), bf.LIF().init_state(2), jnp.zeros((2, 3)), DT, backend=bad)


def test_native_loop_is_one_custom_call():
    """The whole sensitivity run is one FFI call in the compiled HLO (no XLA time loop; the other
    custom calls are the parameter checks of the traced model's construction)."""
    state0 = bf.HH().init_state(4)

    def loss(g):
        _, sv = bf.simulate(bf.HH(g_k=g, scheme="exp_euler"), state0, jnp.full(4, 8.0), DT, n_steps=100,
                            record=bf.Total("v"), **_run(NATIVE))
        return jnp.sum(sv)

    hlo = jax.jit(jax.grad(loss)).lower(36.0).compile().as_text()
    assert hlo.count('custom_call_target="bf_loop_') == 1
    assert " while(" not in hlo


def test_failed_build_falls_back(monkeypatch, tmp_path):
    """A C++ build that fails (here: a compiler that always fails) warns and leaves XLA's result."""
    monkeypatch.setenv("BRAINFUSE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "false")
    monkeypatch.setattr(_loop_cpu, "_load", _loop_cpu._load.__wrapped__)  # no in-process cache
    state0 = bf.HH().init_state(2)

    def loss(g, adjoint):
        _, sv = bf.simulate(bf.HH(g_na=g, scheme="exp_euler", decay="pade"), state0, jnp.full(2, 9.0), DT,
                            n_steps=77, record=bf.Total("v"), **_run(adjoint))
        return jnp.sum(sv)

    with pytest.warns(RuntimeWarning, match="build"):
        got = jax.grad(loss)(118.0, bf.ForwardMode())
    np.testing.assert_allclose(got, jax.grad(loss)(118.0, XLA_FWD), rtol=1e-6)
    with pytest.raises(ValueError, match="build failed"), pytest.warns(RuntimeWarning):
        jax.grad(loss)(118.0, NATIVE)
