"""brainfuse_jax.nn layers: shapes, dtypes, jit/vmap/grad, finite differences, probes,
composition with equinox layers, mixed precision and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import nn

KEY = jax.random.PRNGKey(0)


def _layers(F=3, n=4):
    k = jax.random.split(KEY, 6)
    return {
        "hh": nn.HHLayer(F, n, key=k[0], substeps=2, dt=0.1),
        "hh_rec": nn.HHLayer(F, n, key=k[1], substeps=2, dt=0.1, recurrent=True),
        "lif": nn.LIFLayer(F, n, key=k[2]),
        "alif": nn.ALIFLayer(F, n, key=k[3], recurrent=True),
        "rlif": nn.RecurrentLIFLayer(F, n, key=k[4]),
        "asn": nn.ASNLayer(F, n, key=k[5]),
    }


def _x(B=2, T=5, F=3, scale=3.0, key=1):
    return scale * jax.random.uniform(jax.random.PRNGKey(key), (B, T, F))


def test_layer_shapes_dtypes_and_state():
    x = _x()
    for name, layer in _layers().items():
        s = layer(x)
        assert s.shape == (2, 5, 4) and s.dtype == jnp.float32, name
        assert bool(jnp.all((s >= 0) & (s == jnp.round(s)))), name  # counts per frame
        s2, info = layer(x, return_state=True, return_details=True)
        np.testing.assert_array_equal(s, s2)
        assert info["v"].shape == (2, 5, 4), name
        assert set(nn.PROBES) <= set(info), name
        if name == "hh_rec":  # the final state continues the sequence: halves == whole
            a, ia = layer(x[:, :2], return_state=True)
            b = layer(x[:, 2:], state0=ia["state"])
            np.testing.assert_array_equal(jnp.concatenate([a, b], axis=1), s, err_msg=name)


def test_hh_layer_spikes_are_hh_spikes():
    """A strong constant input makes the HH layer fire; each frame count equals the spikes of the
    library's HH neuron driven by the same current (the layer reuses bf.HH, no re-implementation)."""
    layer = nn.HHLayer(None, 2, key=KEY, substeps=4, dt=0.05, input_scale=1.0)
    current = jnp.broadcast_to(jnp.array([0.0, 20.0]), (1, 100, 2))  # uA/cm2 per frame
    s, info = layer(current, return_state=True)
    ref = bf.HH(scheme="exp_euler")
    _, rec = bf.simulate(ref, ref.init_state((1, 2)), jnp.repeat(current, 4, axis=1), 0.05, record=("output", "v"))
    np.testing.assert_array_equal(s, rec["output"].reshape(1, 100, 4, 2).sum(2))
    np.testing.assert_allclose(info["v"], rec["v"][:, 3::4], rtol=1e-5, atol=1e-3)
    assert float(s[0, :, 1].sum()) >= 2 and float(s[0, :, 0].sum()) == 0
    assert layer.c_m_log is None and float(layer.capacitance()[0]) == 1.0


@pytest.mark.parametrize("names", [("hh_rec", "lif"),
                                   pytest.param(("hh", "rlif", "alif", "asn"), marks=pytest.mark.slow)])
def test_jit_vmap_grad(names):
    x = _x()
    layers = _layers()
    for name in names:
        layer = layers[name]
        eager = layer(x)
        np.testing.assert_array_equal(eqx.filter_jit(lambda l, x: l(x))(layer, x), eager, err_msg=name)
        xs = jnp.stack([x, 2 * x])
        vm = jax.vmap(layer)(xs)
        np.testing.assert_array_equal(vm[1], layer(2 * x), err_msg=name)
        def loss(l):
            s, info = l(x, return_state=True)
            return jnp.sum(info["v"] ** 2) + jnp.sum(s)

        g = eqx.filter_grad(loss)(layer)
        gw = g.linear.weight
        assert bool(jnp.all(jnp.isfinite(gw))) and float(jnp.abs(gw).sum()) > 0, name


def test_hh_learnable_leaves_and_frozen_leaves():
    layer = nn.HHLayer(3, 4, key=KEY, substeps=2, recurrent=True, learn_c_m=True, input_scale=60.0)
    x = _x(T=30, scale=2.0)
    assert float(layer(x).sum()) > 0  # spikes happen, so the recurrence acts
    g = eqx.filter_grad(lambda l: jnp.mean(l(x, return_state=True)[1]["v"]))(layer)
    leaves = {**{f"{c}.g_log": g.g_log[c] for c in ("na", "k", "leak")}, "c_m_log": g.c_m_log}
    for name, leaf in leaves.items():
        assert leaf.shape == (4,) and float(jnp.abs(leaf).sum()) > 0, name
    assert float(jnp.abs(g.input_scale).sum()) > 0 and float(jnp.abs(g.w_rec).sum()) > 0
    # the neuron's own parameters are not trained
    for leaf in (g.neuron.channels["na"].gbar, g.neuron.channels["na"].e_rev, g.neuron.temperature, g.neuron.c_m):
        assert float(jnp.abs(leaf).sum()) == 0
    # the multipliers act: doubling g_Na is exp(log 2)
    doubled = eqx.tree_at(lambda l: l.g_log["na"], layer, jnp.full(4, np.log(2.0)))
    np.testing.assert_allclose(doubled.conductances()["na"], 240.0, rtol=1e-6)
    assert nn.HHLayer(3, 4, key=KEY).c_m_log is None


def test_hh_layer_any_channel_set():
    rs = nn.HHLayer(2, 3, key=KEY, neuron=bf.PospischilRS(scheme="exp_euler"), v0=-71.9, substeps=2)
    s, info = rs(_x(F=2, scale=5.0), return_state=True)
    assert s.shape == (2, 5, 3) and rs.neuron.channels["km"].gbar.shape == (3,)
    assert float(info["v"][0, 0, 0]) < -60  # starts near its own rest
    custom = nn.HHLayer(2, 3, key=KEY, neuron={"na": bf.HHNa(), "k": bf.HHK(), "leak": bf.Leak()}, substeps=2)
    assert custom(_x(F=2)).shape == (2, 5, 3)


def test_finite_differences_float64(x64):
    """Gradients of a smooth loss (mean squared membrane) match central finite differences.
    (Without recurrence: a recurrent path carries the spikes' surrogate gradient, by design not
    the derivative of the exact Heaviside.)"""
    x = 0.3 * jax.random.uniform(jax.random.PRNGKey(3), (2, 4, 2), jnp.float64)
    hh = nn.HHLayer(2, 2, key=KEY, substeps=2, dt=0.05, input_scale=4.0, learn_c_m=True)
    assert hh.input_scale.dtype == jnp.float64

    def loss(layer):
        _, info = layer(x, return_state=True)
        return jnp.mean((info["v"] + 60.0) ** 2)

    g = eqx.filter_grad(loss)(hh)
    loss = eqx.filter_jit(loss)
    leaves = {
        "weight": (lambda m: m.linear.weight, (0, 1)),
        "input_scale": (lambda m: m.input_scale, (1,)),
        "g_log_na": (lambda m: m.g_log["na"], (0,)),
        "g_log_k": (lambda m: m.g_log["k"], (1,)),
        "c_m_log": (lambda m: m.c_m_log, (0,)),
    }
    for name, (get, idx) in leaves.items():
        eps = 1e-5 * max(1.0, abs(float(get(hh)[idx])))
        bump = lambda d: eqx.tree_at(get, hh, get(hh).at[idx].add(d))  # noqa: E731
        fd = (loss(bump(eps)) - loss(bump(-eps))) / (2 * eps)
        np.testing.assert_allclose(float(get(g)[idx]), float(fd), rtol=1e-5, atol=1e-8, err_msg=name)

    ro = nn.LeakyReadout(2, 3, key=KEY, beta=0.8, reduce="max")
    lro = lambda m: jnp.sum(m(x) ** 2)  # noqa: E731
    gr = eqx.filter_grad(lro)(ro)
    eps = 1e-6
    fd = (lro(eqx.tree_at(lambda m: m.linear.weight, ro, ro.linear.weight.at[1, 0].add(eps)))
          - lro(eqx.tree_at(lambda m: m.linear.weight, ro, ro.linear.weight.at[1, 0].add(-eps)))) / (2 * eps)
    np.testing.assert_allclose(float(gr.linear.weight[1, 0]), float(fd), rtol=1e-6)


def test_readouts():
    s = jnp.zeros((1, 4, 2)).at[0, 1, 0].set(1.0).at[0, 3, 1].set(1.0)
    ro = nn.LeakyReadout(2, 2, key=KEY, beta=0.5, reduce="none")
    ro = eqx.tree_at(lambda m: (m.linear.weight, m.linear.bias), ro, (jnp.eye(2), jnp.zeros(2)))
    u = ro(s)
    np.testing.assert_allclose(u[0, :, 0], [0.0, 1.0, 0.5, 0.25])
    np.testing.assert_allclose(nn.reduce_time(u, "max")[0], [1.0, 1.0])
    np.testing.assert_allclose(nn.reduce_time(u, "mean")[0], [1.75 / 4, 0.25])
    np.testing.assert_allclose(nn.reduce_time(u, "last")[0], [0.25, 1.0])
    np.testing.assert_array_equal(nn.spike_count(s), [[1.0, 1.0]])
    sc = nn.SpikeCountReadout(2, 2, key=KEY, bins=2)
    np.testing.assert_array_equal(sc.counts(s)[0], [[1.0, 0.0], [0.0, 1.0]])
    assert sc(s).shape == (1, 2)


def test_probes_by_hand():
    spikes = jnp.zeros((2, 10, 4)).at[:, :, 1].set(1.0).at[0, 3, 2].set(1.0)
    v = jnp.arange(80.0).reshape(2, 10, 4)
    p = nn.probes(spikes, v, frame_ms=0.5)
    assert float(p["dead"]) == 0.5  # neurons 0 and 3
    assert float(p["saturated"]) == 0.25  # neuron 1 fires every frame
    np.testing.assert_allclose(float(p["rate"]), 21 / 80, rtol=1e-6)
    np.testing.assert_allclose(float(p["rate_hz"]), 21 / 80 * 2000, rtol=1e-6)
    np.testing.assert_allclose(float(p["sparsity"]), 59 / 80, rtol=1e-6)
    np.testing.assert_allclose(float(p["v_mean"]), 39.5, rtol=1e-6)
    np.testing.assert_allclose(float(p["v_var"]), np.var(np.arange(80.0)), rtol=1e-5)
    layer = nn.LIFLayer(3, 4, key=KEY)
    s, info = layer(_x(), return_state=True, return_details=True)
    ref = nn.probes(s, info["v"], layer.frame_ms)
    for k in nn.PROBES:
        np.testing.assert_allclose(info[k], ref[k])


def test_sequential_details_and_composition_with_equinox_layers():
    """Conv2d on each frame (TimeDistributed) -> flatten -> Linear per frame -> LIF (no own
    projection) -> Conv1d per frame over the neuron axis -> readout."""
    k = jax.random.split(KEY, 6)
    model = nn.Sequential([
        nn.TimeDistributed(eqx.nn.Conv2d(1, 2, 3, padding=1, key=k[0])),
        nn.TimeDistributed(jnp.ravel),
        nn.TimeDistributed(eqx.nn.Linear(2 * 8 * 8, 16, key=k[1])),
        nn.LIFLayer(None, 16, key=k[2]),
        nn.TimeDistributed(lambda f: eqx.nn.Conv1d(1, 1, 3, padding=1, key=k[3])(f[None])[0]),
        nn.LeakyReadout(16, 3, key=k[5]),
    ])
    x = jax.random.uniform(jax.random.PRNGKey(2), (2, 3, 1, 8, 8)) * 4.0
    logits, details = model(x, return_details=True)
    assert logits.shape == (2, 3)
    assert list(details) == ["3.LIFLayer"] and set(nn.PROBES) <= set(details["3.LIFLayer"])
    np.testing.assert_array_equal(model(x), logits)
    g = eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2))(model)
    assert float(jnp.abs(g.layers[0].module.weight).sum()) > 0  # gradient reaches the Conv2d


def test_asn_layer_modes_agree():
    layer = nn.ASNLayer(3, 4, key=KEY, max_spikes=3)
    x = _x(scale=20.0)
    a = layer(x)
    b = layer.with_mode("infer")(x)
    np.testing.assert_array_equal(a, b)
    assert float(a.max()) > 1  # several spikes per step happen


def test_mixed_precision_bf16_weights_fp32_state():
    layer = nn.LIFLayer(3, 4, key=KEY, beta=0.95, threshold=100.0)  # subthreshold: v is linear
    x = _x(T=40)
    half = nn.cast_params(layer, jnp.bfloat16)
    assert half.linear.weight.dtype == jnp.bfloat16 and half.neuron.threshold.dtype == jnp.bfloat16
    s, info = half(x, return_state=True)
    assert s.dtype == jnp.float32 and info["v"].dtype == jnp.float32
    assert info["state"]["neuron"]["v"].dtype == jnp.float32
    ref_layer = nn.cast_params(half, jnp.float32)  # the same (bf16-rounded) values in fp32
    _, ref = ref_layer(x, return_state=True)
    np.testing.assert_allclose(info["v"], ref["v"], rtol=2e-2, atol=2e-2)  # bf16 matmul only
    g = eqx.filter_grad(lambda l: jnp.sum(l(x, return_state=True)[1]["v"]))(half)
    assert g.linear.weight.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(g.linear.weight.astype(jnp.float32))))


def test_state_accumulates_in_fp32_not_bf16():
    """Many small increments: an fp32 state integrates them, a bf16 state would stall."""
    layer = nn.LIFLayer(None, 1, key=KEY, beta=0.998, threshold=100.0)
    x = jnp.full((1, 400, 1), 1e-3)
    v = nn.cast_params(layer, jnp.bfloat16)(x, return_state=True)[1]["v"][0, -1, 0]
    beta = float(nn.cast_params(nn.cast_params(layer, jnp.bfloat16), jnp.float32).neuron.beta[0])
    exact = 1e-3 * (1 - beta ** 400) / (1 - beta)
    np.testing.assert_allclose(float(v), exact, rtol=1e-4)
    bf16_state = nn.LIFLayer(None, 1, key=KEY, beta=0.998, threshold=100.0, state_dtype=jnp.bfloat16)
    v16 = bf16_state(x, return_state=True)[1]["v"][0, -1, 0]
    assert abs(float(v16) - exact) > 0.05 * exact  # what the fp32 policy avoids


def test_bad_inputs():
    layer = nn.LIFLayer(3, 4, key=KEY)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, 3\).*missing time axis"):
        layer(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x has \(5,\) features per step, expected \(3,\)"):
        layer(jnp.ones((2, 4, 5)))
    with pytest.raises(TypeError, match="x must be an array"):
        layer("abc")
    with pytest.raises(TypeError, match="x must hold real numbers"):
        layer(jnp.ones((2, 4, 3), jnp.complex64))
    with pytest.raises(ValueError, match="at least one sample and one time step"):
        layer(jnp.ones((2, 0, 3)))
    with pytest.raises(ValueError, match="n must be a positive int"):
        nn.LIFLayer(3, 0, key=KEY)
    with pytest.raises(ValueError, match="substeps must be a positive int"):
        nn.HHLayer(3, 2, key=KEY, substeps=0)
    with pytest.raises(ValueError, match="dt must be > 0"):
        nn.HHLayer(3, 2, key=KEY, dt=-0.1)
    with pytest.raises(TypeError, match="key"):
        nn.LIFLayer(3, 2, key=None)
    with pytest.raises(TypeError, match="neuron must be a PointNeuron"):
        nn.HHLayer(3, 2, key=KEY, neuron=bf.LIF())
    with pytest.raises(ValueError, match=r"gbar must be a scalar or have shape \(2,\)"):
        nn.HHLayer(3, 2, key=KEY, neuron=bf.HH(g_na=jnp.ones(3) * 120.0))
    with pytest.raises(ValueError, match="beta must be a scalar or have shape"):
        nn.LIFLayer(3, 2, key=KEY, beta=jnp.ones(5) * 0.9)
    with pytest.raises(ValueError, match="reduce must be one of"):
        nn.LeakyReadout(3, 2, key=KEY, reduce="median")
    with pytest.raises(ValueError, match="beta must be in"):
        nn.LeakyReadout(3, 2, key=KEY, beta=1.5)
    with pytest.raises(ValueError, match="T=5 must be a multiple of bins=2"):
        nn.SpikeCountReadout(4, 2, key=KEY, bins=2)(jnp.ones((1, 5, 4)))
    with pytest.raises(ValueError, match="x has"):
        nn.LeakyReadout(3, 2, key=KEY)(jnp.ones((1, 5, 4)))
    with pytest.raises(ValueError, match="missing time axis"):
        nn.spike_count(jnp.ones((2, 4)))
    with pytest.raises(TypeError, match="recurrent must be a bool"):
        nn.LIFLayer(3, 2, key=KEY, recurrent="yes")


def test_truncated_bptt_chunk_size():
    """chunk_size leaves the forward pass alone and cuts the gradient through the state."""
    x = _x(T=6, scale=2.0)
    full = nn.LIFLayer(3, 4, key=KEY, beta=0.95, recurrent=True)
    cut = nn.LIFLayer(3, 4, key=KEY, beta=0.95, recurrent=True, chunk_size=2)
    np.testing.assert_array_equal(full(x), cut(x))

    # the last frame's membrane depends on the first frames' input only through the state
    gx_full = jax.grad(lambda x: jnp.sum(full(x, return_state=True)[1]["v"][:, -1]))(x)
    gx_cut = jax.grad(lambda x: jnp.sum(cut(x, return_state=True)[1]["v"][:, -1]))(x)
    assert float(jnp.abs(gx_full[:, 0]).sum()) > 0 and float(jnp.abs(gx_cut[:, :4]).sum()) == 0
    assert float(jnp.abs(gx_cut[:, 4:]).sum()) > 0
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        nn.HHLayer(3, 2, key=KEY, chunk_size=0)


def test_hh_detach_gates_forward_unchanged_gradient_bounded():
    """detach_gates stops the gradient through the gates: the forward pass is bit-identical, the
    gradient still reaches every learnable leaf, and it stays bounded where the exact one grows."""
    x = jax.random.uniform(jax.random.PRNGKey(1), (2, 24, 1))

    def make(detach, recurrent=True):
        layer = nn.HHLayer(1, 4, key=KEY, dt=0.1, substeps=8, input_scale=40.0, recurrent=recurrent,
                           detach_gates=detach)
        return eqx.tree_at(lambda l: l.linear.bias, layer, jnp.full(4, 0.15))

    exact, det = make(False), make(True)
    assert exact.detach_gates is False and det.detach_gates is True
    s_e, i_e = exact(x, return_state=True)
    s_d, i_d = det(x, return_state=True)
    np.testing.assert_array_equal(s_e, s_d)
    np.testing.assert_array_equal(i_e["v"], i_d["v"])
    assert float(s_d.sum()) > 0

    def norm(layer):
        g = eqx.filter_grad(lambda l: jnp.sum(l(x)))(layer)
        leaves = jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array))
        return g, float(jnp.sqrt(sum(jnp.sum(a ** 2) for a in leaves)))

    g_d, n_d = norm(det)
    _, n_e = norm(exact)
    assert np.isfinite(n_d) and n_e > 30 * n_d  # measured: ~1.2e3 vs ~14
    for name, leaf in {"linear": g_d.linear.weight, "input_scale": g_d.input_scale, "w_rec": g_d.w_rec,
                       **{f"g_log.{c}": g_d.g_log[c] for c in ("na", "k", "leak")}}.items():
        assert bool(jnp.all(jnp.isfinite(leaf))) and float(jnp.abs(leaf).sum()) > 0, name

    # the V-to-V factor of a detached exponential-Euler step is exp(-dt G / C_m) in (0, 1]: with no
    # recurrence, d V(end) / d V(0) is a product of such factors
    layer = make(True, recurrent=False)
    st0 = layer.init_state(2)

    def v_end(v0):
        st = {**st0, "neuron": {**st0["neuron"], "v": v0}}
        return jnp.sum(layer(x, state0=st, return_state=True)[1]["v"][:, -1])

    g = jax.grad(v_end)(st0["neuron"]["v"])
    assert bool(jnp.all((g >= 0) & (g <= 1)))
    with pytest.raises(TypeError, match="detach_gates must be a bool"):
        nn.HHLayer(1, 2, key=KEY, detach_gates=1)


def _grads_and_outputs(layer, x, loss_x=False):
    """Spikes, membrane and the gradient of a loss that uses both (w.r.t. the layer, and w.r.t.
    the input if `loss_x`)."""
    def loss(l, x):
        s, info = l(x, return_state=True)
        return jnp.mean((info["v"] - 0.2) ** 2) + jnp.mean(s * jnp.arange(1, s.shape[-1] + 1, dtype=s.dtype)[None, None])

    s, info = layer(x, return_state=True)
    g = eqx.filter_grad(loss)(layer, x)
    gx = jax.grad(loss, argnums=1)(layer, x) if loss_x else None
    return s, info["v"], g, gx


def _assert_trees_close(a, b, rtol, atol, what):
    la, lb = jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array)), jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb) > 0, what
    for i, (u, v) in enumerate(zip(la, lb)):
        np.testing.assert_allclose(u, v, rtol=rtol, atol=atol, err_msg=f"{what}: leaf {i}")


def test_lif_layer_adjoint_direct_equals_default(x64):
    """adjoint= reaches simulate: DirectAdjoint (autodiff through the scan) and the default
    (CheckpointAdjoint's derived backward pass, here in blocks of ~sqrt(T) frames) give the same
    spikes, membranes and gradients (w.r.t. every leaf and the input) to 1e-10 in float64."""
    x = _x(B=2, T=30, scale=1.5)
    default = nn.LIFLayer(3, 4, key=KEY, beta=0.9, recurrent=True)
    direct = nn.LIFLayer(3, 4, key=KEY, beta=0.9, recurrent=True, adjoint=bf.DirectAdjoint())
    assert default.adjoint is None and default.backend is None and direct.adjoint == bf.DirectAdjoint()
    assert default.linear.weight.dtype == jnp.float64
    s0, v0, g0, gx0 = _grads_and_outputs(default, x, loss_x=True)
    s1, v1, g1, gx1 = _grads_and_outputs(direct, x, loss_x=True)
    assert float(s0.sum()) > 0
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_allclose(v0, v1, rtol=1e-10, atol=1e-10)
    _assert_trees_close(g0, g1, 1e-10, 1e-10, "layer gradient")
    np.testing.assert_allclose(gx0, gx1, rtol=1e-10, atol=1e-10)
    assert float(jnp.abs(g1.w_rec).sum()) > 0 and float(jnp.abs(g1.neuron.beta).sum()) > 0
    # with_execution gives the same layer as the constructor argument (parameters shared)
    moved = default.with_execution(adjoint=bf.DirectAdjoint())
    assert moved.adjoint == bf.DirectAdjoint() and moved.linear is default.linear and default.adjoint is None
    assert moved.with_execution(backend="xla").adjoint == bf.DirectAdjoint()  # None keeps the other
    _assert_trees_close(eqx.filter_grad(lambda l: jnp.sum(l(x)))(moved),
                        eqx.filter_grad(lambda l: jnp.sum(l(x)))(direct), 0, 0, "with_execution")


@pytest.mark.parametrize("substeps, dt", [(1, 0.2), (4, 0.05)])
def test_hh_layer_forward_mode_equals_default(x64, substeps, dt):
    """adjoint=bf.ForwardMode() (forward sensitivities of the neuron's parameters) where it
    applies: no input projection and an input that is not differentiated. Gradients w.r.t. the
    conductance multipliers, c_m and the input scale equal the default adjoint's to rtol 1e-9
    (float64; both differentiate the same discrete map, they differ by rounding only: measured
    1e-14 and 5e-14). With substeps > 1 the framed step holds an inner `lax.scan` over the substeps."""
    x = 0.5 + jax.random.uniform(jax.random.PRNGKey(2), (2, 25, 3), jnp.float64)
    kw = dict(key=KEY, substeps=substeps, dt=dt, input_scale=15.0, learn_c_m=True)  # 5 ms at 7.5-22.5 uA/cm2
    default = nn.HHLayer(None, 3, **kw)
    fwd = nn.HHLayer(None, 3, adjoint=bf.ForwardMode(), **kw)
    s0, v0, g0, _ = _grads_and_outputs(default, x)
    s1, v1, g1, _ = _grads_and_outputs(fwd, x)
    assert float(s0.sum()) > 0  # spikes happen: the surrogate path is exercised too
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(v0, v1)
    _assert_trees_close(g0, g1, 1e-9, 1e-12, "HH layer gradient")
    for leaf in (g1.g_log["na"], g1.g_log["k"], g1.c_m_log, g1.input_scale):
        assert float(jnp.abs(leaf).sum()) > 0
    # where it does not apply, simulate says so: the input (here through the projection) is differentiated
    with pytest.raises(ValueError, match="ForwardMode"):
        eqx.filter_grad(lambda l: jnp.sum(l(x)))(nn.HHLayer(3, 3, adjoint=bf.ForwardMode(), **kw))


def test_layer_execution_arguments_bad_input():
    with pytest.raises(TypeError, match="adjoint must be None or an adjoint object"):
        nn.LIFLayer(3, 2, key=KEY, adjoint=[bf.DirectAdjoint()])
    with pytest.raises(TypeError, match="backend must be None or"):
        nn.HHLayer(3, 2, key=KEY, backend={"name": "xla"})
    with pytest.raises(TypeError, match="adjoint must be None or"):
        nn.ASNLayer(3, 2, key=KEY).with_execution(adjoint=[1])
    # anything else is simulate's to judge, at the first call
    with pytest.raises((TypeError, ValueError), match="backend"):
        nn.LIFLayer(3, 2, key=KEY, backend="no-such-backend")(_x())
