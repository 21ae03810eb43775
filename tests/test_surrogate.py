"""Surrogate spike functions: exact Heaviside forward, surrogate derivative normalised to max 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainfuse_jax import surrogate
from brainfuse_jax.surrogate import Surrogate

KINDS = ["atan", "fast_sigmoid", "sigmoid", "ste"]
XS = np.linspace(-3.0, 3.0, 601)  # contains 0 exactly (index 300)


def _grad_on(sg: Surrogate, xs) -> np.ndarray:
    return np.asarray(jax.vmap(jax.grad(sg))(jnp.asarray(xs)))


@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_exactly_binary(kind):
    sg = Surrogate(kind, 3.0)
    x = jnp.asarray(np.concatenate([XS, [-1e-30, 0.0, 1e-30, -np.inf, np.inf]]), jnp.float32)
    out = np.asarray(sg(x))
    assert out.dtype == np.float32
    assert set(np.unique(out)) <= {0.0, 1.0}
    np.testing.assert_array_equal(out, (np.asarray(x) >= 0).astype(np.float32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slope", [0.5, 4.0])
def test_max_gradient_is_one_at_threshold(kind, slope):
    sg = Surrogate(kind, slope)
    assert float(jax.grad(sg)(0.0)) == 1.0
    g = _grad_on(sg, XS)
    assert np.all(g <= 1.0) and np.all(g >= 0.0)
    assert g.max() == 1.0 and g[300] == 1.0
    np.testing.assert_allclose(g, np.asarray(sg.grad(jnp.asarray(XS))), rtol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_larger_slope_narrows_the_surrogate(kind):
    wide, narrow = Surrogate(kind, 1.0), Surrogate(kind, 4.0)
    g_wide, g_narrow = _grad_on(wide, XS), _grad_on(narrow, XS)
    assert np.all(g_narrow <= g_wide + 1e-7)
    # strictly narrower somewhere away from threshold (x = 0.3 is inside the ste window of slope 1
    # and outside that of slope 4)
    assert float(jax.grad(narrow)(0.3)) < float(jax.grad(wide)(0.3))
    # integral (width) shrinks
    assert g_narrow.sum() < 0.5 * g_wide.sum()


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_reaches_threshold(kind):
    sg = Surrogate(kind, 2.0)
    v = jnp.asarray([0.6, 0.95, 1.0, 1.2, 3.0])

    def total(th):
        return jnp.sum(sg(v - th))

    g_th = jax.grad(total)(jnp.asarray(1.0))
    np.testing.assert_allclose(float(g_th), -float(jnp.sum(sg.grad(v - 1.0))), rtol=1e-6)
    per_elem = jax.vmap(jax.grad(lambda vi, th: sg(vi - th), argnums=1), in_axes=(0, None))(v, 1.0)
    np.testing.assert_allclose(np.asarray(per_elem), -np.asarray(sg.grad(v - 1.0)), rtol=1e-6)
    assert np.all(np.asarray(per_elem) <= 0.0) and float(per_elem[2]) == -1.0


@pytest.mark.parametrize("kind", KINDS)
def test_jit_vmap_grad_and_float64(kind):
    sg = Surrogate(kind, 2.0)
    x = jnp.linspace(-1.0, 1.0, 11)
    np.testing.assert_array_equal(np.asarray(jax.jit(sg)(x)), np.asarray(sg(x)))
    np.testing.assert_array_equal(np.asarray(jax.vmap(sg)(x)), np.asarray(sg(x)))
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(jax.grad(sg)))(x)),
                               np.asarray(sg.grad(x)), rtol=1e-6)
    with jax.enable_x64(True):
        x64 = jnp.linspace(-1.0, 1.0, 11, dtype=jnp.float64)
        assert sg(x64).dtype == jnp.float64
        assert jax.grad(lambda z: sg(z).sum())(x64).dtype == jnp.float64
        assert float(jax.grad(sg)(jnp.float64(0.0))) == 1.0


def test_factory_functions():
    assert surrogate.atan() == Surrogate("atan", 2.0)
    assert surrogate.fast_sigmoid().kind == "fast_sigmoid"
    assert surrogate.sigmoid().kind == "sigmoid"
    assert surrogate.ste().kind == "ste"


@pytest.mark.parametrize("kwargs, match", [({"kind": "relu"}, "kind"),
                                           ({"kind": "atan", "slope": 0.0}, "slope"),
                                           ({"kind": "atan", "slope": -1.0}, "slope")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Surrogate(**kwargs)
