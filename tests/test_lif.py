"""LIF family: numpy reference loops, reset modes, refractoriness, beta parameterisation,
surrogate-gradient training, transformations and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax.neurons._lif import BETA_MAX, beta_to_raw, decay, raw_to_beta

DT = 1.0  # ms


# ---- reference ----------------------------------------------------------------------------------
def ref_loop(x, beta, threshold, *, reset="subtract", n_ref=0, adapt=None, rho=None, weight=None):
    """Hand-written numpy LIF/ALIF/RecurrentLIF, same operation order as the models.

    x: (B, T, n) float32. Returns spikes (B, T, n) and v (B, T, n)."""
    B, T, n = x.shape
    dt = x.dtype
    v, r, a, s_prev = (np.zeros((B, n), dt) for _ in range(4))
    spikes, vs = [], []
    for t in range(T):
        theta = threshold if adapt is None else threshold + adapt * a
        drive = x[:, t] if weight is None else x[:, t] + s_prev @ weight
        held = r > 0
        u = np.where(held, v, beta * v + drive)
        s = ((u - theta) >= 0).astype(dt)
        s = np.where(held, np.zeros_like(s), s)
        v = u - s * theta if reset == "subtract" else u * (1.0 - s)
        r = np.where(s > 0, np.asarray(n_ref, dt), np.maximum(r - 1.0, 0.0)).astype(dt)
        if adapt is not None:
            a = rho * a + s
        s_prev = s
        spikes.append(s)
        vs.append(v)
    return np.stack(spikes, 1), np.stack(vs, 1)


def eager_loop(model, x, dt=DT):
    state = model.init_state(x.shape[::2])
    spikes, vs = [], []
    for t in range(x.shape[1]):
        state, s = model.step(state, jnp.asarray(x[:, t]), dt)
        spikes.append(np.asarray(s))
        vs.append(np.asarray(state["v"]))
    return np.stack(spikes, 1), np.stack(vs, 1)


def _inputs(seed, B=3, T=60, n=5, high=0.7):
    return np.random.default_rng(seed).uniform(-0.1, high, (B, T, n)).astype(np.float32)


def _check_against_reference(model, x, ref_s, ref_v):
    s, v = eager_loop(model, x)
    assert set(np.unique(s)) <= {0.0, 1.0}
    assert 0.05 < s.mean() < 0.95  # the comparison is not vacuous
    np.testing.assert_array_equal(s, ref_s)  # eager: exactly the same float32 operations
    np.testing.assert_array_equal(v, ref_v)
    # compiled (lax.scan; XLA may fuse multiply-adds, so v agrees to rounding)
    _, rec = bf.simulate(model, model.init_state(x.shape[::2]), x, DT, record=("output", "v"))
    np.testing.assert_array_equal(np.asarray(rec["output"]), ref_s)
    np.testing.assert_allclose(np.asarray(rec["v"]), ref_v, rtol=1e-5, atol=1e-5)


# ---- reference checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("refractory", [0.0, 2.0])
def test_lif_matches_numpy_reference(reset, refractory):
    beta = np.array([0.0, 0.5, 0.8, 0.9, 0.95], np.float32)
    threshold = np.array([0.5, 1.0, 1.0, 1.5, 2.0], np.float32)
    model = bf.LIF(beta, threshold, reset=reset, refractory=refractory)
    x = _inputs(0)
    ref_s, ref_v = ref_loop(x, np.asarray(model.beta), threshold, reset=reset,
                            n_ref=round(refractory / DT))
    _check_against_reference(model, x, ref_s, ref_v)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_alif_matches_numpy_reference(reset):
    threshold = np.array([0.5, 1.0, 1.0, 1.5, 1.0], np.float32)
    adapt = np.array([0.0, 0.1, 0.3, 0.5, 1.0], np.float32)
    tau_adapt = np.float32(30.0)
    model = bf.ALIF(0.9, threshold, adapt, tau_adapt, reset=reset, refractory=1.0)
    rho = np.asarray(decay(jnp.float32(DT), jnp.float32(tau_adapt)))  # XLA's exp, as the model
    np.testing.assert_allclose(rho, np.exp(-DT / 30.0), rtol=1e-6)
    x = _inputs(1, high=0.9)
    ref_s, ref_v = ref_loop(x, np.asarray(model.beta), threshold, reset=reset, n_ref=1,
                            adapt=adapt, rho=rho)
    _check_against_reference(model, x, ref_s, ref_v)
    # adaptation works: the most adaptive neuron fires less than the non-adaptive one with the
    # same base threshold
    assert ref_s[..., 4].sum() < ref_s[..., 1].sum()


def test_recurrent_lif_matches_numpy_reference():
    n = 5
    # dyadic weights: s @ W is exact in any summation order
    weight = (np.random.default_rng(2).integers(-4, 5, (n, n)) / 8.0).astype(np.float32)
    model = bf.RecurrentLIF(weight=weight, beta=0.8, threshold=1.0)
    x = _inputs(2)
    ref_s, ref_v = ref_loop(x, np.asarray(model.beta), np.float32(1.0), weight=weight)
    _check_against_reference(model, x, ref_s, ref_v)
    # the recurrence matters
    no_rec, _ = ref_loop(x, np.asarray(model.beta), np.float32(1.0))
    assert not np.array_equal(no_rec, ref_s)


# ---- resets and refractoriness ------------------------------------------------------------------
@pytest.mark.parametrize("reset, v_after", [("subtract", 0.5), ("zero", 0.0)])
def test_reset_modes(reset, v_after):
    model = bf.LIF(0.5, 1.0, reset=reset)
    state = model.init_state((1, 1), v0=1.0)
    state, s = model.step(state, jnp.ones((1, 1)), DT)  # u = 0.5 * 1 + 1 = 1.5 >= 1
    assert float(s[0, 0]) == 1.0
    assert float(state["v"][0, 0]) == v_after
    state, s = model.step(state, jnp.zeros((1, 1)), DT)  # u = 0.5 * v_after < 1
    assert float(s[0, 0]) == 0.0
    assert float(state["v"][0, 0]) == 0.5 * v_after


@pytest.mark.parametrize("refractory, dt, n_ref", [(0.0, 1.0, 0), (3.0, 1.0, 3), (3.0, 0.5, 6),
                                                   (1.0, 0.25, 4)])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_refractory_period_holds_spikes_off(refractory, dt, n_ref, reset):
    model = bf.LIF(0.5, 1.0, reset=reset, refractory=refractory)
    assert float(model.refractory_steps(dt)) == n_ref
    T = 30
    x = np.full((1, T, 1), 2.5, np.float32)  # crosses threshold in one step from any held value
    _, rec = bf.simulate(model, model.init_state((1, 1)), x, dt, record=("output", "v", "refractory"))
    s, v = np.asarray(rec["output"])[0, :, 0], np.asarray(rec["v"])[0, :, 0]
    spike_steps = np.flatnonzero(s)
    np.testing.assert_array_equal(spike_steps, np.arange(0, T, n_ref + 1))
    for t in spike_steps:
        held = v[t:t + n_ref + 1]  # the post-reset value, held while refractory
        np.testing.assert_array_equal(held, np.full_like(held, 0.0 if reset == "zero" else v[t]))
    assert v[0] == (1.5 if reset == "subtract" else 0.0)
    # counter counts down n_ref, ..., 1, 0
    np.testing.assert_array_equal(np.asarray(rec["refractory"])[0, :n_ref + 1, 0],
                                  np.arange(n_ref, -1, -1))


def test_refractory_per_neuron():
    model = bf.LIF(0.5, 1.0, refractory=np.array([0.0, 1.0, 2.0], np.float32))
    x = np.full((2, 12, 3), 3.0, np.float32)
    _, s = bf.simulate(model, model.init_state((2, 3)), x, DT)
    np.testing.assert_array_equal(np.asarray(s).sum(1), [[12, 6, 4]] * 2)


# ---- beta parameterisation ----------------------------------------------------------------------
def test_beta_parameterisation_stays_in_range():
    raws = jnp.asarray([-jnp.inf, -1e30, -1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4, 1e30, jnp.inf])
    betas = np.asarray(raw_to_beta(raws))
    assert np.all(betas >= 0.0) and np.all(betas <= np.float32(BETA_MAX))
    assert np.all(np.diff(betas) >= 0)
    grads = np.asarray(jax.vmap(jax.grad(raw_to_beta))(raws))
    assert np.all(np.isfinite(grads)) and np.all(grads >= 0)
    # through the model: beta stays bounded whatever happens to beta_raw
    model = bf.LIF(0.9, learn_beta=True)
    for raw in [-1e6, 1e6]:
        m = eqx.tree_at(lambda m: m.beta_raw, model, jnp.asarray(raw, jnp.float32))
        assert 0.0 <= float(m.beta) <= np.float32(BETA_MAX)


def test_integer_arguments_are_accepted():
    model = bf.ALIF(0, 1, 0, 20, refractory=2)
    assert model.threshold.dtype == jnp.float32 and float(model.tau_adapt) == 20.0
    state, s = model.step(model.init_state((2, 3), v0=0), np.ones((2, 3), np.int32), 1)
    assert s.dtype == jnp.float32 and float(s.sum()) == 6.0
    assert float(decay(1, 10)) == pytest.approx(np.exp(-0.1))


def test_beta_round_trip_and_clamping():
    beta = np.linspace(0.0, 0.99, 100)
    np.testing.assert_allclose(np.asarray(raw_to_beta(beta_to_raw(jnp.asarray(beta, jnp.float32)))),
                               beta, atol=2e-6)
    assert float(bf.LIF(0.0).beta) < 1e-12
    assert abs(float(bf.LIF(0.9995).beta) - BETA_MAX) < 1e-6  # [0.999, 1) clamps to 0.999
    assert np.isfinite(float(bf.LIF(0.0).beta_raw)) and np.isfinite(float(bf.LIF(0.9999).beta_raw))


@pytest.mark.parametrize("learn_beta", [False, True])
def test_learn_beta_controls_gradient(learn_beta):
    model = bf.LIF(0.8, learn_beta=learn_beta)
    x = _inputs(3, B=2, T=20, n=3)
    state0 = model.init_state((2, 3))

    def loss(m):
        _, v = bf.simulate(m, state0, x, DT, record="v")
        return jnp.sum(v ** 2)

    g = eqx.filter_grad(loss)(model)
    assert (float(g.beta_raw) != 0.0) == learn_beta
    assert np.isfinite(float(g.beta_raw)) and float(g.refractory) == 0.0


# ---- gradients on a toy task ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", ["LIF", "ALIF", "RecurrentLIF"])
def test_surrogate_gradient_trains_toy_task(cls):
    B, T, n_in, n = 16, 25, 4, 6
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x_in = jax.random.uniform(k1, (B, T, n_in))
    target_rate = jnp.linspace(0.1, 0.5, n)
    if cls == "LIF":
        neuron = bf.LIF(0.8, learn_beta=True)
    elif cls == "ALIF":
        neuron = bf.ALIF(0.8, 1.0, 0.2, 50.0, learn_beta=True)
    else:
        neuron = bf.RecurrentLIF(n, key=k3, gain=0.3, beta=0.8, learn_beta=True)
    params = (0.3 * jax.random.normal(k2, (n_in, n)), neuron)
    opt = optax.adam(0.05)
    opt_state = opt.init(eqx.filter(params, eqx.is_array))

    def loss_fn(params):
        w, nrn = params
        _, s = bf.simulate(nrn, nrn.init_state((B, n)), x_in @ w, DT)
        return jnp.mean((s.mean(1) - target_rate[None]) ** 2)

    @eqx.filter_jit
    def train_step(params, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(params)
        with jax.numpy_dtype_promotion("standard"):  # optax's adam mixes int/float (strict runs)
            updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss, grads

    losses = []
    for i in range(15):
        params, opt_state, loss, grads = train_step(params, opt_state)
        losses.append(float(loss))
        if i == 0:
            leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
            assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
            assert float(jnp.abs(grads[0]).sum()) > 0  # reaches input weights
            assert float(jnp.abs(grads[1].threshold).sum()) > 0  # reaches the threshold
            assert float(jnp.abs(grads[1].beta_raw).sum()) > 0
            if cls == "ALIF":
                assert float(jnp.abs(grads[1].adapt).sum()) > 0
            if cls == "RecurrentLIF":
                assert float(jnp.abs(grads[1].weight).sum()) > 0
    assert losses[-1] < 0.5 * losses[0], losses


# ---- simulate, jit, vmap, grad ------------------------------------------------------------------
def test_simulate_with_chunk_size():
    model = bf.ALIF(0.9, 1.0, 0.2, 20.0, refractory=1.0)
    x = _inputs(4, B=2, T=23, n=4, high=0.9)
    s0 = model.init_state((2, 4))
    f_full, r_full = bf.simulate(model, s0, x, DT, record=("output", "v", "a"))
    f_chunk, r_chunk = bf.simulate(model, s0, x, DT, record=("output", "v", "a"), chunk_size=5)
    for k in r_full:
        np.testing.assert_array_equal(np.asarray(r_chunk[k]), np.asarray(r_full[k]))
    for k in f_full:
        np.testing.assert_array_equal(np.asarray(f_chunk[k]), np.asarray(f_full[k]))

    def loss(th, chunk_size):
        m = eqx.tree_at(lambda m: m.threshold, model, th)
        return jnp.sum(bf.simulate(m, s0, x, DT, record="v", chunk_size=chunk_size)[1] ** 2)

    th = jnp.asarray(1.0)
    g_full, g_chunk = jax.grad(loss)(th, None), jax.grad(loss)(th, 5)
    assert np.isfinite(float(g_chunk)) and float(g_chunk) != 0.0
    assert float(g_chunk) != float(g_full)  # truncated BPTT cuts the gradient between chunks


def _models():
    return [bf.LIF(np.array([0.8, 0.9, 0.95], np.float32), 1.0, refractory=1.0),
            bf.ALIF(0.9, np.array([1.0, 0.8, 1.2], np.float32), 0.2, 30.0, reset="zero"),
            bf.RecurrentLIF(3, key=jax.random.key(1), beta=0.9)]


@pytest.mark.parametrize("idx", [0, 1, 2], ids=["LIF", "ALIF", "RecurrentLIF"])
def test_jit_vmap_grad(idx):
    model = _models()[idx]
    B, n = 4, 3
    x = jnp.asarray(_inputs(5, B=B, T=2, n=n, high=1.5)[:, 0])
    x = x.at[0].set(1.5)  # at least one spike
    state = model.init_state((B, n), v0=0.5)
    # init_state under jit (batch_shape is static)
    state_jit = eqx.filter_jit(lambda m: m.init_state((B, n), v0=0.5))(model)
    jax.tree.map(np.testing.assert_array_equal, state_jit, state)
    # step: jit == eager
    new, s = model.step(state, x, DT)
    new_j, s_j = eqx.filter_jit(lambda m, st, xx: m.step(st, xx, DT))(model, state, x)
    np.testing.assert_array_equal(np.asarray(s_j), np.asarray(s))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new_j, new)
    # dt traced
    new_t, s_t = jax.jit(lambda dt: model.step(state, x, dt))(jnp.asarray(DT))
    np.testing.assert_array_equal(np.asarray(s_t), np.asarray(s))
    # vmap over the batch axis == batched step
    new_v, s_v = jax.vmap(lambda st, xx: model.step(st, xx, DT))(state, x)
    np.testing.assert_array_equal(np.asarray(s_v), np.asarray(s))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), new_v, new)
    # vmap over a parameter (a sweep over thresholds)
    ths = jnp.asarray([0.5, 1.0, 2.0])
    sweep = jax.vmap(lambda th: eqx.tree_at(lambda m: m.threshold, model, th).step(state, x, DT)[1])(ths)
    assert sweep.shape == (3, B, n)
    assert float(sweep[0].sum()) >= float(sweep[1].sum()) >= float(sweep[2].sum())
    # grad w.r.t. parameters and input, through two steps
    def loss(m, xx):
        st, s1 = m.step(state, xx, DT)
        st, s2 = m.step(st, xx, DT)
        return jnp.sum(s1) + jnp.sum(s2) + jnp.sum(st["v"] ** 2)

    g_m, g_x = eqx.filter_jit(eqx.filter_grad(lambda m, xx: loss(m, xx)))(model, x), jax.grad(
        lambda xx: loss(model, xx))(x)
    assert np.all(np.isfinite(np.asarray(g_x))) and float(jnp.abs(g_x).sum()) > 0
    assert float(jnp.abs(g_m.threshold).sum()) > 0
    for leaf in jax.tree_util.tree_leaves(eqx.filter(g_m, eqx.is_array)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # public helpers under jit
    np.testing.assert_array_equal(np.asarray(eqx.filter_jit(lambda m: m.beta)(model)),
                                  np.asarray(model.beta))
    np.testing.assert_array_equal(np.asarray(eqx.filter_jit(lambda m, dt: m.refractory_steps(dt))(
        model, jnp.asarray(0.5))), np.asarray(model.refractory_steps(0.5)))


def test_parameter_helpers_jit_vmap_grad():
    betas = jnp.linspace(0.0, 0.99, 7)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(beta_to_raw))(betas)),
                               np.asarray(beta_to_raw(betas)), rtol=1e-6)
    g = jax.grad(lambda b: raw_to_beta(beta_to_raw(b)))(jnp.asarray(0.5))
    np.testing.assert_allclose(float(g), 1.0, rtol=1e-4)
    taus = jnp.asarray([1.0, 10.0, 100.0])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(decay, in_axes=(None, 0)))(1.0, taus)),
                               np.exp(-1.0 / np.asarray(taus)), rtol=1e-6)
    assert np.isfinite(float(jax.grad(decay, argnums=1)(1.0, -5.0)))  # floored time constant
    assert float(decay(1.0, -5.0)) == 0.0


def test_recurrent_lif_weight_init():
    key = jax.random.key(3)
    a, b = bf.RecurrentLIF(50, key=key), bf.RecurrentLIF(50, key=key)
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))  # explicit key
    assert a.weight.shape == (50, 50) and a.n == 50
    assert abs(float(a.weight.std()) - 1.0 / np.sqrt(50)) < 0.02
    c = bf.RecurrentLIF(50, key=jax.random.key(4), gain=2.0)
    assert abs(float(c.weight.std()) - 2.0 / np.sqrt(50)) < 0.04
    w = np.eye(4, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(bf.RecurrentLIF(weight=w).weight), w)


def test_float64(x64):
    model = bf.ALIF(0.9, 1.0, 0.2, 30.0)
    assert model.threshold.dtype == jnp.float64
    state0 = model.init_state((2, 3))
    assert state0["v"].dtype == jnp.float64
    x = np.random.default_rng(6).uniform(0, 0.8, (2, 20, 3))
    final, s = bf.simulate(model, state0, x, DT)
    assert s.dtype == jnp.float64 and final["a"].dtype == jnp.float64
    g = jax.grad(lambda th: bf.simulate(eqx.tree_at(lambda m: m.threshold, model, th), state0, x, DT,
                                        record="v")[1].sum())(jnp.asarray(1.0))
    assert g.dtype == jnp.float64 and np.isfinite(float(g))


def test_float32_state_with_parameters_from_float64(x64):
    model = bf.LIF(0.9, 1.0)  # float64 parameters
    state = model.init_state((2, 3), dtype=jnp.float32)
    new, s = model.step(state, jnp.ones((2, 3), jnp.float32), DT)
    assert new["v"].dtype == jnp.float32 and s.dtype == jnp.float32


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1.0, 1.5, -0.1, np.array([0.5, 1.0])])
def test_beta_out_of_range(beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0.0, 1.0\)"):
        bf.LIF(beta)


def test_beta_out_of_range_alif_and_recurrent():
    with pytest.raises(ValueError, match="beta must be in"):
        bf.ALIF(beta=1.0)
    with pytest.raises(ValueError, match="beta must be in"):
        bf.RecurrentLIF(3, key=jax.random.key(0), beta=-0.5)


@pytest.mark.parametrize("cls", [bf.LIF, bf.ALIF])
def test_negative_refractory(cls):
    with pytest.raises(ValueError, match="refractory must be >= 0 ms"):
        cls(refractory=-1.0)


def test_input_shape_mismatch():
    model = bf.LIF()
    state = model.init_state((3, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(3, 4\)"):
        model.step(state, jnp.zeros((3, 5)), DT)
    with pytest.raises(ValueError, match=r"inputs must have shape \(3, 10, 4\)"):
        bf.simulate(model, state, jnp.zeros((3, 10, 5)), DT)


def test_threshold_not_positive():
    with pytest.raises(ValueError, match="threshold must be > 0"):
        bf.LIF(threshold=0.0)


def test_bad_reset():
    with pytest.raises(ValueError, match="reset must be one of"):
        bf.LIF(reset="hold")


def test_bad_surrogate():
    with pytest.raises(TypeError, match="surrogate"):
        bf.LIF(surrogate="atan")


def test_parameter_shape_does_not_broadcast_to_state():
    model = bf.LIF(threshold=np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"threshold has shape \(5,\)"):
        model.init_state((3, 4))


def test_tau_adapt_not_positive():
    with pytest.raises(ValueError, match="tau_adapt must be > 0 ms"):
        bf.ALIF(tau_adapt=0.0)


def test_negative_adapt():
    with pytest.raises(ValueError, match="adapt must be >= 0"):
        bf.ALIF(adapt=-0.1)


def test_bad_dt():
    model = bf.LIF()
    with pytest.raises(ValueError, match="dt must be > 0"):
        model.step(model.init_state((1, 2)), jnp.zeros((1, 2)), 0.0)


def test_recurrent_lif_needs_key_or_weight():
    with pytest.raises(TypeError, match="exactly one of key"):
        bf.RecurrentLIF(3)
    with pytest.raises(TypeError, match="exactly one of key"):
        bf.RecurrentLIF(3, key=jax.random.key(0), weight=np.eye(3))


def test_recurrent_lif_bad_weight_shape():
    with pytest.raises(ValueError, match="weight must be a square"):
        bf.RecurrentLIF(weight=np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"weight must have shape \(4, 4\)"):
        bf.RecurrentLIF(4, weight=np.ones((3, 3)))


def test_recurrent_lif_batch_shape_must_end_with_n():
    model = bf.RecurrentLIF(4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="batch_shape must end with the number of neurons n=4"):
        model.init_state((4, 3))
