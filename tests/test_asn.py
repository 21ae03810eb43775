"""Adaptive spiking neuron: train (integer) and infer (binary sub-step) modes agree exactly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax.neurons._asn import binary_spikes, integer_spikes

DT = 1.0  # ms
D = 4


def _asn(n, seed=0, dtype=np.float32, **kw):
    rng = np.random.default_rng(seed)
    return bf.ASN(tau_m=rng.uniform(2.0, 40.0, n).astype(dtype),
                  v_rest=rng.uniform(-70.0, -60.0, n).astype(dtype),
                  threshold=rng.uniform(0.3, 2.0, n).astype(dtype),
                  adapt=rng.uniform(0.0, 0.5, n).astype(dtype),
                  tau_adapt=rng.uniform(10.0, 200.0, n).astype(dtype), max_spikes=D, **kw)


def _inputs(B, T, n, seed=1, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.8, 1.5, (B, T, n))
    x[:, ::17] *= 8.0  # some large drives that saturate at max_spikes
    return x.astype(dtype)


def _run_both(model, x):
    s0 = model.init_state(x.shape[::2])
    rec = ("output", "v", "a")
    f_tr, r_tr = bf.simulate(model.with_mode("train"), s0, x, DT, record=rec)
    f_in, r_in = bf.simulate(model.with_mode("infer"), s0, x, DT, record=rec)
    return (f_tr, r_tr), (f_in, r_in)


def _assert_identical(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), a, b)


# ---- the two modes agree exactly -------------------------------------------------------------------
def test_modes_give_identical_counts_and_state_float32():
    B, T, n = 8, 300, 16
    model = _asn(n)
    x = _inputs(B, T, n)
    (f_tr, r_tr), (f_in, r_in) = _run_both(model, x)
    counts = np.asarray(r_tr["output"])
    # the run exercises every count 0..D, including saturation
    assert set(np.unique(counts)) == set(range(D + 1))
    assert np.array_equal(counts, np.round(counts))
    _assert_identical(r_tr, r_in)  # counts, v and a at every step, bit for bit
    _assert_identical(f_tr, f_in)  # final state


def test_modes_give_identical_counts_and_state_float64(x64):
    B, T, n = 4, 200, 8
    model = _asn(n, seed=2, dtype=np.float64)
    x = _inputs(B, T, n, seed=3, dtype=np.float64)
    (f_tr, r_tr), (f_in, r_in) = _run_both(model, x)
    assert r_tr["output"].dtype == jnp.float64
    assert set(np.unique(np.asarray(r_tr["output"]))) == set(range(D + 1))
    _assert_identical(r_tr, r_in)
    _assert_identical(f_tr, f_in)


def test_modes_agree_step_by_step_eager_and_jit():
    B, T, n = 3, 40, 5
    model = _asn(n, seed=4)
    x = _inputs(B, T, n, seed=5)
    tr, inf = model.with_mode("train"), model.with_mode("infer")
    step_jit = eqx.filter_jit(lambda m, s, xx: m.step(s, xx, DT))
    s_tr = s_in = model.init_state((B, n))
    for t in range(T):
        # one step from the same state: eager train == eager infer, jit train == jit infer
        _assert_identical(step_jit(tr, s_tr, x[:, t]), step_jit(inf, s_tr, x[:, t]))
        s_tr, c_tr = tr.step(s_tr, x[:, t], DT)
        s_in, c_in = inf.step(s_in, x[:, t], DT)
        _assert_identical((s_tr, c_tr), (s_in, c_in))


def test_modes_agree_at_exact_threshold_multiples():
    # dyadic thresholds: x = k * threshold exactly, from rest with no adaptation
    theta = np.array([0.5, 0.75, 1.25, 2.0], np.float32)
    model = bf.ASN(tau_m=10.0, v_rest=0.0, threshold=theta, adapt=0.0, max_spikes=D)
    k = np.arange(-1, D + 3, dtype=np.float32)
    x = (k[:, None] * theta[None, :]).astype(np.float32)  # (B = len(k), n = 4)
    s0 = model.init_state(x.shape)
    new_tr, c_tr = model.step(s0, x, DT)
    new_in, spikes = model.with_mode("infer").spike_train(s0, x, DT)
    expected = np.clip(k, 0, D)[:, None] * np.ones_like(theta)
    np.testing.assert_array_equal(np.asarray(c_tr), expected)
    np.testing.assert_array_equal(np.asarray(spikes).sum(-1), expected)
    _assert_identical(new_tr, new_in)
    # residual above D thresholds stays in the membrane; exact multiples below D leave 0
    v = np.asarray(new_tr["v"])
    np.testing.assert_array_equal(v, x - expected * theta)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_helpers_agree_bitwise(dtype):
    with jax.enable_x64(dtype == np.float64):
        rng = np.random.default_rng(6)
        q = np.concatenate([rng.uniform(-3, 8, 5000), rng.uniform(-1e6, 1e6, 1000),
                            np.arange(-2, 10, 0.5), np.nextafter(np.arange(1, 8), 0),
                            [0.0, -0.0, 1e-30, 1e30, np.inf, -np.inf]]).astype(dtype)
        q = jnp.asarray(q)
        for max_spikes in (1, 3, 8):
            n_tr, r_tr = jax.jit(integer_spikes, static_argnums=1)(q, max_spikes)
            spikes, r_in = jax.jit(binary_spikes, static_argnums=1)(q, max_spikes)
            s = np.asarray(spikes)
            assert s.shape == q.shape + (max_spikes,)
            assert set(np.unique(s)) <= {0.0, 1.0}
            assert np.all(np.diff(s, axis=-1) <= 0)  # once a sub-step is silent, the rest are
            np.testing.assert_array_equal(s.sum(-1), np.asarray(n_tr))
            np.testing.assert_array_equal(np.asarray(n_tr),
                                          np.clip(np.floor(np.asarray(q)), 0, max_spikes))
            np.testing.assert_array_equal(np.asarray(r_in), np.asarray(r_tr))
            np.testing.assert_array_equal(np.asarray(r_tr), np.asarray(q) - np.asarray(n_tr))


def test_count_helper_gradients_agree():
    q = jnp.asarray(np.random.default_rng(7).uniform(-2, 7, 200), jnp.float32)
    g_tr = jax.vmap(jax.grad(lambda z: integer_spikes(z, D)[0]))(q)
    g_in = jax.vmap(jax.grad(lambda z: binary_spikes(z, D)[0].sum()))(q)
    np.testing.assert_array_equal(np.asarray(g_tr), np.asarray(g_in))
    inside = (np.asarray(q) > 0) & (np.asarray(q) < D)
    np.testing.assert_array_equal(np.asarray(g_tr), inside.astype(np.float32))  # straight-through
    gr_tr = jax.vmap(jax.grad(lambda z: integer_spikes(z, D)[1]))(q)
    gr_in = jax.vmap(jax.grad(lambda z: binary_spikes(z, D)[1]))(q)
    np.testing.assert_array_equal(np.asarray(gr_tr), np.ones(200, np.float32))
    np.testing.assert_array_equal(np.asarray(gr_in), np.ones(200, np.float32))


# ---- against a hand-written reference --------------------------------------------------------------
def test_matches_numpy_reference_with_repeated_subtraction(x64):
    """Spikes counted the "hardware" way: subtract the threshold in mV while above it."""
    B, T, n = 3, 120, 6
    model = _asn(n, seed=8, dtype=np.float64)
    x = _inputs(B, T, n, seed=9, dtype=np.float64)
    p = {k: np.asarray(getattr(model, k)) for k in ("tau_m", "v_rest", "threshold", "adapt", "tau_adapt")}
    alpha, rho = np.exp(-DT / p["tau_m"]), np.exp(-DT / p["tau_adapt"])
    v = np.broadcast_to(p["v_rest"], (B, n)).copy()
    a = np.zeros((B, n))
    counts, vs = [], []
    for t in range(T):
        theta = p["threshold"] + p["adapt"] * a
        v = p["v_rest"] + alpha * (v - p["v_rest"]) + x[:, t]
        c = np.zeros((B, n))
        for _ in range(D):
            fire = v - p["v_rest"] >= theta
            v = np.where(fire, v - theta, v)
            c += fire
        a = rho * a + c
        counts.append(c)
        vs.append(v)
    for mode in ("train", "infer"):
        _, rec = bf.simulate(model.with_mode(mode), model.init_state((B, n)), x, DT,
                             record=("output", "v"))
        np.testing.assert_array_equal(np.asarray(rec["output"]), np.stack(counts, 1))
        np.testing.assert_allclose(np.asarray(rec["v"]), np.stack(vs, 1), rtol=1e-10, atol=1e-10)


# ---- gradients and training -----------------------------------------------------------------------
def test_gradients_flow_and_agree_between_modes():
    B, T, n = 4, 30, 5
    model = _asn(n, seed=10)
    x = _inputs(B, T, n, seed=11)
    s0 = model.init_state((B, n))

    def loss(m):
        final, c = bf.simulate(m, s0, x, DT)
        return jnp.mean((c.mean(1) - 1.0) ** 2) + 1e-3 * jnp.mean(final["v"] ** 2)

    g_tr = eqx.filter_grad(loss)(model.with_mode("train"))
    g_in = eqx.filter_grad(loss)(model.with_mode("infer"))
    for name in ("tau_m", "v_rest", "threshold", "adapt", "tau_adapt"):
        gt, gi = np.asarray(getattr(g_tr, name)), np.asarray(getattr(g_in, name))
        assert np.all(np.isfinite(gt)) and np.any(gt != 0), name
        np.testing.assert_allclose(gi, gt, rtol=1e-4, atol=1e-7, err_msg=name)


def test_integer_training_reduces_loss():
    B, T, n_in, n = 16, 20, 4, 6
    k1, k2 = jax.random.split(jax.random.key(0))
    x_in = jax.random.uniform(k1, (B, T, n_in))
    target = jnp.linspace(0.2, 1.0, n)  # mean spikes per step
    params = (0.5 * jax.random.normal(k2, (n_in, n)), bf.ASN(tau_m=10.0, threshold=0.5, max_spikes=D))
    opt = optax.adam(0.02)
    opt_state = opt.init(eqx.filter(params, eqx.is_array))

    def loss_fn(params):
        w, asn = params
        _, c = bf.simulate(asn, asn.init_state((B, n)), x_in @ w, DT)
        return jnp.mean((c.mean(1) - target[None]) ** 2)

    @eqx.filter_jit
    def train_step(params, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(params)
        with jax.numpy_dtype_promotion("standard"):  # optax's adam mixes int/float (strict runs)
            updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(15):
        params, opt_state, loss = train_step(params, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    # the trained network runs spike-driven with the same counts
    w, asn = params
    _, c_tr = bf.simulate(asn, asn.init_state((B, n)), x_in @ w, DT)
    _, c_in = bf.simulate(asn.with_mode("infer"), asn.init_state((B, n)), x_in @ w, DT)
    np.testing.assert_array_equal(np.asarray(c_tr), np.asarray(c_in))


# ---- API, transformations ------------------------------------------------------------------------
def test_with_mode():
    model = _asn(3)
    inf = model.with_mode("infer")
    assert inf.mode == "infer" and model.mode == "train"
    assert inf.threshold is model.threshold and inf.tau_m is model.tau_m
    assert inf.with_mode("train") == model
    # also inside jit (the mode is static; parameters may be tracers)
    out = eqx.filter_jit(lambda m: m.with_mode("infer").spike_train(
        m.init_state((2, 3)), jnp.ones((2, 3)), DT)[1])(model)
    assert out.shape == (2, 3, D)


def test_jit_vmap_grad():
    B, n = 4, 3
    model = _asn(n, seed=12)
    x = jnp.asarray(_inputs(B, 2, n, seed=13)[:, 0])
    state = model.init_state((B, n))
    state_j = eqx.filter_jit(lambda m: m.init_state((B, n)))(model)
    _assert_identical(state_j, state)
    for m in (model, model.with_mode("infer")):
        new, c = m.step(state, x, DT)
        # vmap over the batch axis == batched step
        _assert_identical(jax.vmap(lambda s, xx: m.step(s, xx, DT))(state, x), (new, c))
        # dt traced
        new_t, c_t = jax.jit(lambda dt: m.step(state, x, dt))(jnp.asarray(DT))
        np.testing.assert_array_equal(np.asarray(c_t), np.asarray(c))
        # spike_train under vmap
        _, sp = jax.vmap(lambda s, xx: m.spike_train(s, xx, DT))(state, x)
        np.testing.assert_array_equal(np.asarray(sp).sum(-1), np.asarray(c))
        # grad w.r.t. the input
        g = jax.grad(lambda xx: m.step(state, xx, DT)[1].sum() + m.step(state, xx, DT)[0]["v"].sum())(x)
        assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)
    # vmap over a parameter
    ths = jnp.asarray([0.25, 0.5, 1.0])
    counts = jax.vmap(lambda th: eqx.tree_at(lambda m: m.threshold, model, th).step(state, x, DT)[1])(ths)
    assert counts.shape == (3, B, n)
    assert float(counts[0].sum()) >= float(counts[1].sum()) >= float(counts[2].sum())


def test_simulate_with_chunk_size():
    model = _asn(4, seed=14)
    x = _inputs(2, 23, 4, seed=15)
    s0 = model.init_state((2, 4))
    f1, r1 = bf.simulate(model, s0, x, DT, record=("output", "v"))
    f2, r2 = bf.simulate(model, s0, x, DT, record=("output", "v"), chunk_size=5)
    _assert_identical((f1, r1), (f2, r2))


def test_init_state_and_per_neuron_parameters():
    model = bf.ASN(v_rest=np.array([-65.0, -70.0], np.float32))
    s = model.init_state((3, 2))
    np.testing.assert_array_equal(np.asarray(s["v"]), [[-65.0, -70.0]] * 3)
    np.testing.assert_array_equal(np.asarray(s["a"]), np.zeros((3, 2)))
    assert float(model.init_state((1, 2), v0=1.0)["v"][0, 0]) == 1.0
    with pytest.raises(ValueError, match=r"v_rest has shape \(2,\)"):
        model.init_state((3, 4))


def test_integer_arguments_are_accepted():
    model = bf.ASN(tau_m=20, v_rest=-65, threshold=2, adapt=0, tau_adapt=100, max_spikes=np.int64(3))
    assert model.max_spikes == 3 and model.tau_m.dtype == jnp.float32
    _, c = model.step(model.init_state((1, 2)), np.array([[7, 1]], np.int32), 1)
    np.testing.assert_array_equal(np.asarray(c), [[3.0, 0.0]])


def test_adaptation_raises_threshold():
    x = np.full((1, 50, 2), 1.2, np.float32)
    model = bf.ASN(tau_m=5.0, threshold=1.0, adapt=np.array([0.0, 0.5], np.float32), tau_adapt=50.0)
    _, c = bf.simulate(model, model.init_state((1, 2)), x, DT)
    c = np.asarray(c)[0]
    assert c[:, 1].sum() < c[:, 0].sum()


# ---- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau_m", [0.0, -5.0, np.array([10.0, 0.0])])
def test_tau_m_not_positive(tau_m):
    with pytest.raises(ValueError, match="tau_m must be > 0 ms"):
        bf.ASN(tau_m=tau_m)


@pytest.mark.parametrize("max_spikes", [0, -2])
def test_max_spikes_below_one(max_spikes):
    with pytest.raises(ValueError, match="max_spikes must be an int >= 1"):
        bf.ASN(max_spikes=max_spikes)


@pytest.mark.parametrize("max_spikes", [2.5, "4", True])
def test_max_spikes_not_int(max_spikes):
    with pytest.raises(TypeError, match="max_spikes"):
        bf.ASN(max_spikes=max_spikes)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        bf.ASN(mode="eval")
    with pytest.raises(ValueError, match="mode must be one of"):
        bf.ASN().with_mode("test")


def test_input_shape_mismatch():
    model = bf.ASN()
    state = model.init_state((2, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(2, 3\)"):
        model.step(state, jnp.zeros((3, 2)), DT)
    with pytest.raises(ValueError, match=r"x must have shape \(2, 3\)"):
        model.with_mode("infer").spike_train(state, jnp.zeros((2,)), DT)


@pytest.mark.parametrize("kwargs, match", [({"threshold": 0.0}, "threshold must be > 0"),
                                           ({"adapt": -0.1}, "adapt must be >= 0"),
                                           ({"tau_adapt": 0.0}, "tau_adapt must be > 0 ms"),
                                           ({"v_rest": float("nan")}, "v_rest must be finite")])
def test_other_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bf.ASN(**kwargs)
