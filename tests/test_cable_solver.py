"""The Hines tree solver and its adjoint (custom VJP) against dense linear algebra."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainfuse_jax.morphology import HinesStructure, hines_solve
from brainfuse_jax.morphology._cable import _hines_solve, dense_hines_matrix
from brainfuse_kernels import _native


def random_tree(rng, n, n_roots=1):
    parent = np.full(n, -1)
    for i in range(n_roots, n):
        # mix of long chains and bushy branching
        parent[i] = i - 1 if rng.random() < 0.6 else rng.integers(0, i)
    return parent


def random_system(rng, parent, dtype=np.float64):
    n = parent.size
    a = -rng.uniform(0.1, 2.0, n)
    b = -rng.uniform(0.1, 2.0, n)  # non-symmetric on purpose: the solver is general
    d = rng.uniform(0.5, 1.5, n)
    # diagonal dominance: add each off-diagonal's magnitude to both rows it touches
    for i in range(n):
        if parent[i] >= 0:
            d[i] += abs(a[i]) + abs(b[i])
            d[parent[i]] += abs(a[i]) + abs(b[i])
    rhs = rng.normal(size=n)
    return tuple(jnp.asarray(z, dtype) for z in (d, a, b, rhs))


def dense_np(parent, d, a, b):
    m = np.diag(np.asarray(d, np.float64))
    i = np.flatnonzero(parent >= 0)
    m[i, parent[i]] = np.asarray(a)[i]
    m[parent[i], i] = np.asarray(b)[i]
    return m


TREES = [(1, 1), (3, 1), (200, 1), (40, 3)]
# The three forms of the solve: the compiled C++ kernel (through XLA's FFI), the XLA sweeps
# unrolled over level-ordered slices, and the XLA scan over levels.
FORMS = {"native": dict(native=True), "unrolled": dict(unroll=True, native=False),
         "scan": dict(unroll=False, native=False)}


def structure(parent, form):
    if form == "native" and not _native.available(np.float64):
        pytest.skip("the native Hines kernel needs a C++ compiler ($CXX or g++) on the CPU backend")
    return HinesStructure(parent, **FORMS[form])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n,roots", TREES)
def test_solve_matches_dense(x64, n, roots, form):
    rng = np.random.default_rng(n + roots)
    parent = random_tree(rng, n, roots)
    d, a, b, rhs = random_system(rng, parent)
    x = hines_solve(structure(parent, form), d, a, b, rhs)
    m = dense_np(parent, d, a, b)
    x_ref = np.linalg.solve(m, np.asarray(rhs))
    assert np.max(np.abs(np.asarray(x) - x_ref)) < 1e-12 * (np.max(np.abs(x_ref)) + 1)
    np.testing.assert_allclose(m @ np.asarray(x), np.asarray(rhs), atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("n,roots", TREES[1:])
def test_vjp_matches_dense_autodiff(x64, n, roots, form):
    """Gradients w.r.t. the diagonal, both off-diagonals and the rhs, through a nonlinear loss."""
    rng = np.random.default_rng(100 + n)
    parent = random_tree(rng, n, roots)
    s = structure(parent, form)
    args = random_system(rng, parent)
    w = jnp.asarray(rng.normal(size=n))

    def loss_tree(d, a, b, rhs):
        return jnp.sum(jnp.sin(hines_solve(s, d, a, b, rhs)) * w)

    def loss_dense(d, a, b, rhs):
        return jnp.sum(jnp.sin(jnp.linalg.solve(dense_hines_matrix(s, d, a, b), rhs)) * w)

    g_tree = jax.jit(jax.grad(loss_tree, argnums=(0, 1, 2, 3)))(*args)
    g_dense = jax.jit(jax.grad(loss_dense, argnums=(0, 1, 2, 3)))(*args)
    nonroot = parent >= 0
    for name, gt, gd in zip("d a b rhs".split(), g_tree, g_dense):
        gt, gd = np.asarray(gt), np.asarray(gd)
        if name in ("a", "b"):  # root entries are not matrix entries: zero gradient
            assert np.all(gt[~nonroot] == 0.0)
            gt, gd = gt[nonroot], gd[nonroot]
        rel = np.max(np.abs(gt - gd)) / np.max(np.abs(gd))
        assert rel < 1e-8, f"grad {name}: relative error {rel:.2e}"


def test_backward_pass_is_the_adjoint_solve(x64):
    """The VJP is the custom rule (one transposed Hines solve), not autodiff of the elimination
    loop: the gradient's jaxpr holds the custom_vjp call and the forward loop is never
    linearised."""
    rng = np.random.default_rng(3)
    parent = random_tree(rng, 30)
    s = HinesStructure(parent)
    args = random_system(rng, parent)
    assert "custom_vjp_call" in str(jax.make_jaxpr(lambda *a: hines_solve(s, *a))(*args))
    # forward-mode through the custom rule is unavailable: JAX never differentiates the loop
    with pytest.raises(TypeError):
        jax.jvp(lambda d: _hines_solve(s, d, *args[1:]), (args[0],), (args[0],))


@pytest.mark.parametrize("form", FORMS)
def test_batched_and_vmapped(x64, form):
    rng = np.random.default_rng(7)
    tree = random_tree(rng, 25)
    parent = structure(tree, form)
    systems = [random_system(rng, tree) for _ in range(4)]
    stacked = [jnp.stack(z) for z in zip(*systems)]
    x = hines_solve(parent, *stacked)
    x_vmap = jax.jit(jax.vmap(lambda *z: hines_solve(parent, *z)))(*stacked)
    for k, sys_k in enumerate(systems):
        x_k = np.linalg.solve(dense_np(tree, *sys_k[:3]), np.asarray(sys_k[3]))
        np.testing.assert_allclose(np.asarray(x[k]), x_k, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.asarray(x_vmap[k]), x_k, rtol=1e-12, atol=1e-12)
    # gradients of a batched solve match per-system ones
    loss = jax.jit(jax.grad(lambda d, a, b, r: jnp.sum(hines_solve(parent, d, a, b, r) ** 2)))
    g = loss(*stacked)
    g0 = np.array([loss(*sys_k) for sys_k in systems])
    np.testing.assert_allclose(np.asarray(g), g0, rtol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_float32(form):
    rng = np.random.default_rng(11)
    parent = random_tree(rng, 100)
    args = random_system(rng, parent, np.float32)
    x = hines_solve(structure(parent, form), *args)
    assert x.dtype == jnp.float32
    x_ref = np.linalg.solve(dense_np(parent, *args[:3]),
                            np.asarray(args[3], np.float64))
    assert np.max(np.abs(np.asarray(x, np.float64) - x_ref)) < 1e-5 * np.max(np.abs(x_ref))


def test_structure_levels_and_hash():
    parent = np.array([-1, 0, 1, 1, 0, 4, 5, -1, 7])
    s = HinesStructure(parent)
    assert s.n_levels == 4 and s.levels.shape[1] == 3
    np.testing.assert_array_equal(s.depth, [0, 1, 2, 2, 1, 2, 3, 0, 1])
    assert s == HinesStructure(parent.copy()) and hash(s) == hash(HinesStructure(list(parent)))
    assert s != HinesStructure(np.array([-1, 0, 1, 1, 0, 4, 5, -1, 0]))
    assert s.unroll and s != HinesStructure(parent, unroll=False)
    # level order: each depth a contiguous block, children of one parent together, parents in order
    np.testing.assert_array_equal(s.order, [0, 7, 1, 4, 8, 2, 3, 5, 6])
    assert s.offsets == (0, 2, 5, 8, 9)
    np.testing.assert_array_equal(s.order[s.position], np.arange(9))
    np.testing.assert_array_equal(s.depth[s.order], np.sort(s.depth))


def test_deep_tree_uses_the_scan(x64):
    """The level-order solve roots a tree at its centre (a chain of N nodes: N // 2 + 1 levels);
    past UNROLL_MAX_LEVELS such levels the default is the scan form (compile time)."""
    from brainfuse_jax.morphology._cable import UNROLL_MAX_LEVELS

    assert HinesStructure(np.arange(-1, 51)).solve_levels == 27  # the ball-and-stick: 52 -> 27
    longest = 2 * UNROLL_MAX_LEVELS - 1  # centre height UNROLL_MAX_LEVELS - 1
    assert HinesStructure(np.arange(-1, longest - 1)).unroll
    chain = np.arange(-1, longest + 1)
    s = HinesStructure(chain)
    assert s.solve_levels == UNROLL_MAX_LEVELS + 1 and not s.unroll
    rng = np.random.default_rng(5)
    d, a, b, rhs = random_system(rng, chain)
    for unroll in (False, True):
        x = hines_solve(HinesStructure(chain, unroll=unroll), d, a, b, rhs)
        np.testing.assert_allclose(dense_np(chain, d, a, b) @ np.asarray(x), np.asarray(rhs), atol=1e-12)


@pytest.mark.parametrize("parent,match", [
    (np.array([0, 0]), "Hines order"),
    (np.array([-1, 1]), "Hines order"),
    (np.array([-1, 0, 3, 0]), "Hines order"),
    (np.array([-1, -2]), "Hines order"),
    (np.zeros((0,), int), "non-empty"),
])
def test_bad_structure(parent, match):
    with pytest.raises(ValueError, match=match):
        HinesStructure(parent)


def test_bad_shapes():
    parent = np.array([-1, 0, 1])
    with pytest.raises(ValueError, match="last dimension N = 3"):
        hines_solve(parent, jnp.ones(4), jnp.ones(4), jnp.ones(4), jnp.ones(4))
    with pytest.raises(TypeError, match="integers"):
        HinesStructure(np.array([-1.0, 0.0]))


def test_native_required_but_unavailable(x64, monkeypatch):
    monkeypatch.setattr(_native, "available", lambda dtype: False)
    rng = np.random.default_rng(5)
    parent = random_tree(rng, 10)
    with pytest.raises(ValueError, match="native=True"):
        hines_solve(HinesStructure(parent, native=True), *random_system(rng, parent))
    # the default falls back to the XLA sweeps
    x = hines_solve(HinesStructure(parent), *random_system(np.random.default_rng(5), parent))
    assert np.all(np.isfinite(np.asarray(x)))


def test_native_form_is_one_custom_call(x64):
    """The native solve is one FFI call per system in the compiled program (the XLA sweeps are a
    few kernels per tree level)."""
    rng = np.random.default_rng(9)
    parent = random_tree(rng, 200)
    args = random_system(rng, parent)
    hlo = lambda s: jax.jit(lambda *z: hines_solve(s, *z)).lower(*args).as_text()  # noqa: E731
    assert hlo(structure(parent, "native")).count("custom_call") == 1
    assert "custom_call" not in hlo(structure(parent, "unrolled"))


@pytest.mark.parametrize("form", ["native", "unrolled"])
def test_tree_laplacian_matches_dense(x64, form):
    """L v (axial currents) and its VJP w.r.t. the conductances and v, against the dense Laplacian."""
    from brainfuse_jax.morphology import tree_laplacian
    rng = np.random.default_rng(21)
    tree = random_tree(rng, 60, 2)
    s = structure(tree, form)
    g = jnp.asarray(rng.uniform(0.1, 2.0, tree.size))
    v = jnp.asarray(rng.normal(size=(3, tree.size)))  # a batch of 3

    def dense(g):
        i = np.flatnonzero(tree >= 0)
        lap = jnp.zeros((tree.size, tree.size)).at[i, tree[i]].add(-g[i]).at[tree[i], i].add(-g[i])
        return lap - jnp.diag(lap.sum(axis=1))

    np.testing.assert_allclose(np.asarray(tree_laplacian(s, g, v)), np.asarray(v @ dense(g).T), rtol=1e-12, atol=1e-12)
    w = jnp.asarray(rng.normal(size=(3, tree.size)))
    grads = jax.grad(lambda g, v: jnp.sum(jnp.tanh(tree_laplacian(s, g, v)) * w), argnums=(0, 1))(g, v)
    ref = jax.grad(lambda g, v: jnp.sum(jnp.tanh(v @ dense(g).T) * w), argnums=(0, 1))(g, v)
    nonroot = tree >= 0
    np.testing.assert_allclose(np.asarray(grads[0])[nonroot], np.asarray(ref[0])[nonroot], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(grads[1]), np.asarray(ref[1]), rtol=1e-10, atol=1e-12)
