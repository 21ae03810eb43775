"""`simulate`: recording, truncated BPTT, rematerialisation, jit / vmap / grad."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf

DT = 0.025


def hh_setup(n=4, steps=1000):
    model = bf.HH()
    stim = jnp.broadcast_to(jnp.linspace(2.0, 15.0, n)[:, None], (n, steps))
    return model, model.init_state(n), stim


def test_record_specs():
    model, s0, stim = hh_setup(steps=200)
    final, out = bf.simulate(model, s0, stim, DT)
    assert out.shape == (4, 200)
    _, rec = bf.simulate(model, s0, stim, DT, record=("v", "na.m", "k.n", "output"))
    assert set(rec) == {"v", "na.m", "k.n", "output"}
    assert all(a.shape == (4, 200) for a in rec.values())
    np.testing.assert_array_equal(rec["v"][:, -1], final["v"])
    _, custom = bf.simulate(model, s0, stim, DT, record=lambda s, o: s["v"] * 2)
    np.testing.assert_allclose(custom, 2 * rec["v"])
    _, nothing = bf.simulate(model, s0, stim, DT, record=None)
    assert nothing is None
    with pytest.raises(ValueError, match="record.*'na.x'.*available"):
        bf.simulate(model, s0, stim, DT, record="na.x")
    with pytest.raises(TypeError, match="record entries must be"):
        bf.simulate(model, s0, stim, DT, record={"v": 3})


@pytest.mark.parametrize("chunk_size", [None, 64])
def test_total_records_sum_over_time(chunk_size):
    model, s0, stim = hh_setup(steps=500)
    _, per_step = bf.simulate(model, s0, stim, DT, record=("output", "v"))
    _, counts = bf.simulate(model, s0, stim, DT, record=bf.Total(), chunk_size=chunk_size)
    np.testing.assert_array_equal(counts, per_step["output"].sum(axis=1))
    assert counts.shape == (4,) and counts.sum() > 0
    _, both = bf.simulate(model, s0, stim, DT, chunk_size=chunk_size,
                          record={"n": bf.Total(), "v_sum": bf.Total("v"), "v": "v",
                                  "v2": lambda s, o: s["v"] ** 2})
    np.testing.assert_array_equal(both["n"], counts)
    np.testing.assert_allclose(both["v_sum"], per_step["v"].sum(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(both["v"], per_step["v"])
    np.testing.assert_allclose(both["v2"], per_step["v"] ** 2, rtol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 100, 333, 1000, 5000])
def test_chunked_forward_identical_to_full_unroll(chunk_size):
    model, s0, stim = hh_setup()
    full_final, full = bf.simulate(model, s0, stim, DT, record="v")
    ch_final, ch = bf.simulate(model, s0, stim, DT, record="v", chunk_size=chunk_size)
    np.testing.assert_array_equal(np.asarray(ch), np.asarray(full))
    for a, b in zip(jax.tree_util.tree_leaves(ch_final), jax.tree_util.tree_leaves(full_final)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_chunking_truncates_the_gradient(x64):
    """d(V at the last step)/d(input at step k) is zero for k before the last chunk only with chunking."""
    model, s0, stim = hh_setup(n=1, steps=300)

    def last_v(stim, chunk_size):
        _, v = bf.simulate(model, s0, stim, DT, record="v", chunk_size=chunk_size)
        return v[0, -1]

    g_full = jax.grad(last_v)(stim, None)[0]
    g_trunc = jax.grad(last_v)(stim, 100)[0]
    assert jnp.all(g_full[:200] != 0)
    assert jnp.all(g_trunc[:200] == 0)
    np.testing.assert_allclose(g_trunc[200:], g_full[200:], rtol=1e-12)
    # The first chunk keeps its gradient to the initial state.
    g0 = jax.grad(lambda v0: bf.simulate(model, {**s0, "v": v0}, stim, DT, record="v", chunk_size=100)[1][0, 50])(s0["v"])
    assert jnp.all(g0 != 0)


def test_remat_gives_the_same_gradient(x64):
    model, s0, stim = hh_setup(steps=400)

    def loss(model, remat):
        _, v = bf.simulate(model, s0, stim, DT, record="v", remat=remat)
        return jnp.mean(v)

    g1 = jax.grad(loss)(model, False)
    g2 = jax.grad(loss)(model, True)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_jit_vmap_grad_compose():
    model, s0, stim = hh_setup(n=3, steps=400)
    run = lambda m, s, x: bf.simulate(m, s, x, DT, record="v")[1]  # noqa: E731
    v_eager = run(model, s0, stim)
    np.testing.assert_allclose(jax.jit(run)(model, s0, stim), v_eager, rtol=1e-5, atol=1e-4)

    # vmap over a parameter: a g_Na sweep, each member with its own batch.
    g_na = jnp.array([80.0, 120.0])
    models = jax.vmap(lambda g: bf.HH(g_na=g))(g_na)
    swept = jax.vmap(run, in_axes=(0, None, None))(models, s0, stim)
    assert swept.shape == (2, 3, 400)
    np.testing.assert_allclose(swept[1], v_eager, rtol=1e-5, atol=1e-4)

    # per-neuron parameters inside one batch give the same as the sweep
    per_neuron = bf.HH(g_na=jnp.array([80.0, 80.0, 80.0]))
    np.testing.assert_allclose(run(per_neuron, s0, stim), swept[0], rtol=1e-5, atol=1e-4)

    g = jax.jit(jax.grad(lambda m: jnp.mean(run(m, s0, stim))))(model)
    assert jnp.isfinite(g.channels["na"].gbar)


def test_step_is_usable_on_its_own():
    model = bf.HH()
    s = model.init_state((2, 3))
    s1, spike = eqx.filter_jit(model.step)(s, jnp.ones((2, 3)), DT)
    assert s1["v"].shape == (2, 3) and spike.shape == (2, 3)
    _, rec = bf.simulate(model, s, jnp.ones((2, 5, 3)), DT, record="v")
    assert rec.shape == (2, 5, 3)


# ---- constant inputs: simulate(..., n_steps=T) ----------------------------------------------------
def _held_models():
    return [bf.HH(scheme="exp_euler", decay="pade"), bf.HH(), bf.LIF(), bf.PospischilIB(scheme="exp_euler")]


@pytest.mark.parametrize("model", _held_models(), ids=["hh_pade", "hh_neuron", "lif", "ib"])
def test_held_inputs_equal_a_constant_time_series(x64, model):
    n, t = 5, 700
    s0 = model.init_state(n)
    current = jnp.linspace(0.5, 14.0, n) * (2.0 if isinstance(model, bf.LIF) else 1.0)
    record = {"v": "v", "n": bf.Total("output")}
    held = bf.simulate(model, s0, current, DT, n_steps=t, record=record)
    series = bf.simulate(model, s0, jnp.broadcast_to(current[:, None], (n, t)), DT, record=record)
    for a, b in zip(jax.tree.leaves(held), jax.tree.leaves(series)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("adjoint", [bf.CheckpointAdjoint(), bf.CheckpointAdjoint(every=7), bf.DirectAdjoint(),
                                     bf.ForwardMode()])
def test_held_inputs_gradients(x64, adjoint):
    """d loss / d (held current) = the time sum of d loss / d (current at each step); parameter
    gradients are unchanged."""
    model = bf.HH(scheme="exp_euler", decay="pade")
    n, t = 4, 600
    s0 = model.init_state(n)

    def loss(g_na, current, held):
        m = bf.HH(g_na=g_na, scheme="exp_euler", decay="pade")
        x = current if held else jnp.broadcast_to(current[:, None], (n, t))
        v = bf.simulate(m, s0, x, DT, n_steps=t if held else None, record="v", adjoint=adjoint)[1]
        return jnp.mean(v ** 2)

    current = jnp.linspace(2.0, 12.0, n)
    argnums = (0,) if isinstance(adjoint, bf.ForwardMode) else (0, 1)
    g_held = jax.grad(loss, argnums=argnums)(120.0, current, True)
    g_ref = jax.grad(loss, argnums=argnums)(120.0, current, False)
    for a, b in zip(g_held, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    if not isinstance(adjoint, bf.ForwardMode):  # and against finite differences
        h, e = 1e-5, jnp.zeros(n).at[2].set(1.0)
        fd = (loss(120.0, current + h * e, True) - loss(120.0, current - h * e, True)) / (2 * h)
        np.testing.assert_allclose(g_held[1][2], fd, rtol=1e-6)


def test_held_inputs_jit_vmap_and_pallas():
    model = bf.HH(scheme="exp_euler", decay="pade")
    n, t = 3, 300
    s0 = model.init_state(n, dtype=jnp.float32)
    run = lambda c: bf.simulate(model, s0, c, DT, n_steps=t, record="v")[1]  # noqa: E731
    currents = jnp.stack([jnp.full(n, 5.0), jnp.linspace(0.0, 20.0, n)])
    swept = jax.jit(jax.vmap(run))(currents)
    assert swept.shape == (2, n, t)
    np.testing.assert_allclose(swept[1], run(currents[1]), rtol=1e-5, atol=1e-4)
    pallas = bf.simulate(model, s0, currents[1], DT, n_steps=t, record="v", backend="pallas")[1]
    np.testing.assert_allclose(pallas, swept[1], rtol=1e-5, atol=1e-4)


def test_held_inputs_bad_input():
    model = bf.HH()
    s0 = model.init_state(3)
    for bad in (0, -5, 2.5, True, "10"):
        with pytest.raises(ValueError, match="n_steps must be a positive int"):
            bf.simulate(model, s0, jnp.ones(3), DT, n_steps=bad)
    with pytest.raises(ValueError, match=r"held constant and have no time axis: shape \(3,\)"):
        bf.simulate(model, s0, jnp.ones((3, 10)), DT, n_steps=10)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        bf.simulate(model, s0, jnp.ones(4), DT, n_steps=10)
    with pytest.raises(TypeError, match="inputs must be numeric"):
        bf.simulate(model, s0, jnp.ones(3, bool), DT, n_steps=10)
    with pytest.raises(ValueError, match="inputs must be finite"):
        bf.simulate(model, s0, jnp.array([1.0, jnp.nan, 2.0]), DT, n_steps=10)
    run = eqx.filter_jit(lambda c: bf.simulate(model, s0, c, DT, n_steps=10)[1])
    with pytest.raises(eqx.EquinoxRuntimeError, match="inputs must be finite"):
        jax.block_until_ready(run(jnp.array([1.0, jnp.inf, 2.0])))


# ---- record layouts: each block writes its steps into its place in the (B, T, ...) result ----
def _layout_records():
    """Per-step records of several dtypes and shapes (a pytree, a trailing axis, an int), and a total."""
    return {"v": "v", "out": "output", "m": "na.m", "tot": bf.Total("v"),
            "tree": lambda s, o: {"vm": jnp.stack([s["v"], s["na"]["m"]], axis=-1), "up": (s["v"] > 0).astype(jnp.int32)}}


def _bare_scan(model, s0, xs, dt):
    """model.step in one lax.scan over time-major inputs, its stacked records transposed to (B, T, ...)."""
    def body(carry, x):
        s, tot = carry
        new, out = model.step(s, x, dt)
        rec = {"v": new["v"], "out": out, "m": new["na"]["m"],
               "tree": {"vm": jnp.stack([new["v"], new["na"]["m"]], axis=-1), "up": (new["v"] > 0).astype(jnp.int32)}}
        return (new, tot + new["v"]), rec
    (final, tot), ys = jax.lax.scan(body, (s0, jnp.zeros_like(s0["v"])), jnp.swapaxes(xs, 0, 1))
    return final, {**jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), ys), "tot": tot}


@pytest.mark.parametrize("steps, chunk_size, adjoint", [
    (1000, None, None), (1003, None, None), (1003, 64, None), (700, 333, bf.DirectAdjoint()),
    (513, None, bf.CheckpointAdjoint(every=100)), (600, None, bf.ForwardMode()), (5, None, None)],
    ids=["blocks", "tail", "chunks+tail", "direct-chunks+tail", "ckpt-tail", "fwdmode", "one-block"])
def test_record_layouts_equal_a_bare_scan(x64, steps, chunk_size, adjoint):
    """Per-step records (pytrees, trailing axes, ints, bools/floats), totals and the final state equal
    those of a bare `lax.scan` of the step, with a tail block, truncation chunks, under each adjoint,
    for (B, T) inputs and held ones (`n_steps=`)."""
    model = bf.HH(scheme="exp_euler", decay="pade")
    s0 = model.init_state(3)
    current = jnp.array([2.0, 8.0, 15.0])
    stim = current[:, None] * (1.0 + 0.2 * jnp.sin(jnp.arange(steps) / 9.0))[None, :]
    for inputs, n_steps, xs in ((stim, None, stim), (current, steps, jnp.broadcast_to(current[:, None], (3, steps)))):
        final, rec = bf.simulate(model, s0, inputs, DT, n_steps=n_steps, record=_layout_records(),
                                 chunk_size=chunk_size, adjoint=adjoint)
        ref_final, ref = _bare_scan(model, s0, xs, DT)
        assert rec["tree"]["vm"].shape == (3, steps, 2) and rec["tree"]["up"].dtype == jnp.int32
        for a, b in zip(jax.tree.leaves((final, rec)), jax.tree.leaves((ref_final, ref))):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-9)  # XLA may fuse differently


@pytest.mark.parametrize("adjoint", [None, bf.DirectAdjoint()])
def test_per_step_records_are_the_only_time_sized_buffer(adjoint):
    """XLA's buffer plan: the (B, T) records are written in place into the result, not stacked by
    block and transposed (or concatenated with a tail) into it, which needed a second buffer of
    their size (temporaries were as large as the output)."""
    model = bf.HH(scheme="exp_euler", decay="pade")
    n, steps = 64, 5003  # 19 blocks of 256 steps and a tail of 139
    s0 = model.init_state((n,), dtype=jnp.float32)
    run = jax.jit(lambda c: bf.simulate(model, s0, c, DT, n_steps=steps, record=("v", "output"), adjoint=adjoint)[1])
    mem = run.lower(jnp.ones(n, jnp.float32)).compile().memory_analysis()
    assert mem.output_size_in_bytes >= 2 * n * steps * 4
    assert mem.temp_size_in_bytes < mem.output_size_in_bytes / 4


def test_per_step_record_derivatives_forward_and_reverse(x64):
    """The in-place record write is differentiated as a placement: jvp (forward mode, DirectAdjoint
    only) and grad agree through per-step records with a tail and chunks, int records alongside, and
    equal autodiff through a bare scan."""
    model = bf.HH(scheme="exp_euler", decay="pade")
    s0 = model.init_state(3)
    stim = jnp.broadcast_to(jnp.array([2.0, 8.0, 15.0])[:, None], (3, 531))
    w = jnp.cos(jnp.arange(531) / 17.0)

    def loss(g, adjoint, chunk_size=None):
        _, rec = bf.simulate(bf.HH(scheme="exp_euler", decay="pade", g_na=g), s0, stim, DT, adjoint=adjoint,
                             chunk_size=chunk_size, record=_layout_records())
        return jnp.sum(rec["v"] * w[None, :]) * 1e-3 + jnp.sum(rec["tree"]["vm"][..., 1]) + jnp.sum(rec["tot"]) * 1e-4

    def bare(g):
        _, rec = _bare_scan(bf.HH(scheme="exp_euler", decay="pade", g_na=g), s0, stim, DT)
        return jnp.sum(rec["v"] * w[None, :]) * 1e-3 + jnp.sum(rec["tree"]["vm"][..., 1]) + jnp.sum(rec["tot"]) * 1e-4

    ref = jax.grad(bare)(120.0)
    assert ref != 0
    for adjoint in (bf.DirectAdjoint(), bf.CheckpointAdjoint()):
        np.testing.assert_allclose(jax.grad(loss)(120.0, adjoint), ref, rtol=1e-9)
    np.testing.assert_allclose(jax.jvp(lambda g: loss(g, bf.DirectAdjoint()), (120.0,), (1.0,))[1], ref, rtol=1e-9)
    # truncated: forward and reverse mode cut at the same chunk boundaries
    np.testing.assert_allclose(jax.jvp(lambda g: loss(g, bf.DirectAdjoint(), 100), (120.0,), (1.0,))[1],
                               jax.grad(loss)(120.0, bf.DirectAdjoint(), 100), rtol=1e-9)
