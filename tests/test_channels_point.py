"""Library channels inside PointNeuron: removable singularities, Ca pool and instantaneous gates
in every scheme, per-gate q10, gradients against finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import channels as C

from ._nmodl import crossings, pulse_inputs

DT = 0.025


# ---- removable singularities (vtrap) -----------------------------------------------------------
# v_t = -56 keeps the singular voltages exactly representable in float32.
SINGULAR = [  # (name, rate as a function of V, V at the 0/0 point, limit value (1/ms), limit slope (1/ms/mV))
    ("PospischilNa alpha_m", lambda v: C.PospischilNa(v_t=-56.0).rates(v)["m"].alpha, -43.0, 1.28, 0.16),
    ("PospischilNa beta_m", lambda v: C.PospischilNa(v_t=-56.0).rates(v)["m"].beta, -16.0, 1.4, -0.14),
    ("PospischilKd alpha_n", lambda v: C.PospischilKd(v_t=-56.0).rates(v)["n"].alpha, -41.0, 0.16, 0.016),
    ("PospischilCaL alpha_q", lambda v: C.PospischilCaL().rates(v)["q"].alpha, -27.0, 0.209, 0.0275),
]


@pytest.mark.parametrize("name, rate, v_sing, value, slope", SINGULAR, ids=[s[0] for s in SINGULAR])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_rate_exact_at_removable_singularity(x64, name, rate, v_sing, value, slope, dtype):
    """Value and d/dV at the 0/0 point equal the analytic limits, finite in float32 and float64,
    and the rate is smooth across the switch to the series."""
    val, grad = jax.value_and_grad(rate)(jnp.asarray(v_sing, dtype))
    assert np.isfinite(float(val)) and np.isfinite(float(grad))
    np.testing.assert_allclose(float(val), value, rtol=1e-6)
    np.testing.assert_allclose(float(grad), slope, rtol=1e-5)
    for dv in (1e-4, 3e-3, -3e-3):
        np.testing.assert_allclose(float(rate(jnp.asarray(v_sing + dv, dtype))), value + slope * dv, rtol=2e-5)


def test_gradient_wrt_threshold_parameter_at_singularity(x64):
    """d alpha_m / d v_t is finite (= -d alpha_m / dV) where V - v_t hits the 0/0 point."""
    def alpha(v_t):
        return C.PospischilNa(v_t=v_t).rates(jnp.asarray(-43.0, jnp.float32))["m"].alpha

    g = jax.grad(alpha)(jnp.asarray(-56.0, jnp.float32))
    np.testing.assert_allclose(float(g), -0.16, rtol=1e-5)


# ---- kinetics --------------------------------------------------------------------------------
def test_per_gate_q10():
    """DestexheCaT: q10 5 for m and 3 for h, relative to 24 degC."""
    ch = C.DestexheCaT()
    v = jnp.linspace(-100.0, 0.0, 11)
    k24, k34 = ch.kinetics(v, 24.0), ch.kinetics(v, 34.0)
    np.testing.assert_allclose(np.asarray(k24["m"].tau / k34["m"].tau), 5.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(k24["h"].tau / k34["h"].tau), 3.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(k24["m"].inf), np.asarray(k34["m"].inf))


def test_instantaneous_gate_follows_v(x64):
    """PospischilCaT's activation is Instantaneous: kinetics has no tau, and after every step the
    state holds s_inf(V_new)."""
    model = bf.PospischilLTS()
    assert model.channels["cat"].kinetics(jnp.asarray([-60.0]), 36.0)["s"].tau is None
    for scheme in ("neuron", "exp_euler", "rk4"):
        m = bf.PospischilLTS(scheme=scheme)
        s = m.init_state(2, v0=jnp.array([-54.0, -80.0]))
        step = eqx.filter_jit(m.step)
        for _ in range(5):
            s, _ = step(s, jnp.array([0.0, -1.0]), DT)
        s_inf = m.channels["cat"].rates(s["v"])["s"].inf
        np.testing.assert_allclose(np.asarray(s["cat"]["s"]), np.asarray(s_inf), rtol=1e-12)


def test_nernst_matches_neuron_constants(x64):
    """E_Ca at 2.4e-4 mM in / 2 mM out, 36 degC: NEURON 9 gives 120.25540343336439 mV."""
    np.testing.assert_allclose(float(C.nernst(2.4e-4, 2.0, 36.0)), 120.25540343336439, rtol=1e-14)


# ---- the Ca pool in every scheme ---------------------------------------------------------------
def ca_model(scheme="neuron", **pool_kw):
    pool = C.CalciumPool(**{"tau": 20.0, "depth": 0.2, "nernst": True, **pool_kw})
    return bf.PointNeuron({
        "na": C.PospischilNa(), "kd": C.PospischilKd(), "leak": C.Leak(0.05, -70.0),
        "cat": C.DestexheCaT(gbar=1.5), "cal": C.PospischilCaL(gbar=0.3),
        "sk": C.DestexheSK(gbar=2.0, e_rev=-90.0), "bk": C.MoczydlowskiLatorreBK(gbar=5.0, e_rev=-90.0),
    }, temperature=36.0, calcium=pool, scheme=scheme)


def run(model, dt, tstop=80.0, pulses=((10.0, 60.0, 3.0),)):
    n = int(round(tstop / dt))
    x = jnp.asarray(pulse_inputs(pulses, n, dt))[None]
    _, rec = bf.simulate(model, model.init_state(1, dtype=jnp.float64, v0=-70.0), x, dt, record=("v", "cai"))
    v = np.concatenate([[-70.0], np.asarray(rec["v"][0])])
    return crossings(v, dt), np.asarray(rec["cai"][0])


def test_ca_pool_resting_state_and_influx(x64):
    model = ca_model()
    s0 = model.init_state(3)
    np.testing.assert_array_equal(np.asarray(s0["cai"]), 2.4e-4)
    t, cai = run(model, DT)
    assert len(t) >= 3 and cai.max() > 10 * 2.4e-4  # spikes bring Ca in
    assert cai.min() > 0


def test_neuron_scheme_converges_to_rk4(x64):
    """With the Ca pool (Nernst E_Ca), SK/BK reading [Ca]i and instantaneous-free Ca currents,
    the "neuron" scheme at dt = 0.0025 ms gives rk4's (dt = 0.025 ms) spikes within 0.05 ms."""
    t_rk4, _ = run(ca_model("rk4"), 0.025)
    t_fine, _ = run(ca_model("neuron"), 0.0025)
    assert len(t_rk4) >= 3
    assert len(t_fine) == len(t_rk4) and np.abs(t_fine - t_rk4).max() < 0.05


@pytest.mark.slow
def test_all_schemes_agree_with_pool(x64):
    """rk4 is self-consistent (dt vs dt/2) and every scheme gives rk4's spike count."""
    t_rk4, _ = run(ca_model("rk4"), 0.025)
    t_rk4_half, _ = run(ca_model("rk4"), 0.0125)
    assert len(t_rk4) == len(t_rk4_half) and np.abs(t_rk4 - t_rk4_half).max() < 0.01
    for scheme in ("neuron", "backward_euler", "exp_euler"):
        t, _ = run(ca_model(scheme), DT)
        assert len(t) == len(t_rk4), scheme


def test_batched_pool_parameters(x64):
    """Pool parameters per neuron (shape (B,)): each neuron equals the same model run alone."""
    def cell(tau):
        return bf.PointNeuron({"cat": C.DestexheCaT(), "leak": C.Leak(0.05, -70.0)}, temperature=36.0,
                              calcium=C.CalciumPool(tau=tau, nernst=True))

    n = 1200
    x = jnp.asarray(pulse_inputs([(5.0, 10.0, -3.0)], n, DT))[None].repeat(2, 0)
    batched = cell(jnp.array([10.0, 40.0]))
    _, cai = bf.simulate(batched, batched.init_state(2, dtype=jnp.float64, v0=-70.0), x, DT, record="cai")
    assert float(cai.max()) > 2 * 2.4e-4
    for i, tau in enumerate([10.0, 40.0]):
        single = cell(jnp.array([tau, tau]))  # same shapes: the compiled unroll is reused
        _, c1 = bf.simulate(single, single.init_state(2, dtype=jnp.float64, v0=-70.0), x, DT, record="cai")
        np.testing.assert_allclose(np.asarray(cai[i]), np.asarray(c1[i]), rtol=1e-12)


# ---- gradients -----------------------------------------------------------------------------------
PARAMS = {  # every new parameter kind: gbar, kinetics parameters, pool parameters
    "na.v_t": lambda m: m.channels["na"].v_t,
    "cat.shift": lambda m: m.channels["cat"].shift,
    "cal.gbar": lambda m: m.channels["cal"].gbar,
    "sk.gbar": lambda m: m.channels["sk"].gbar,
    "sk.cac": lambda m: m.channels["sk"].cac,
    "bk.k1": lambda m: m.channels["bk"].k1,
    "pool.tau": lambda m: m.calcium.tau,
    "pool.depth": lambda m: m.calcium.depth,
}


def test_gradients_match_finite_differences(x64):
    """d(trace loss)/d(parameter) through 40 ms with spikes, Ca influx, SK/BK and Nernst E_Ca."""
    n = 1600
    x = jnp.asarray(pulse_inputs([(5.0, 35.0, 3.0)], n, DT))[None]
    target_model = ca_model(tau=25.0)
    s0 = target_model.init_state(1, dtype=jnp.float64, v0=-70.0)
    _, target = bf.simulate(target_model, s0, x, DT, record="v")
    model = ca_model()

    def loss(m):
        _, v = bf.simulate(m, s0, x, DT, record="v")
        return jnp.mean((v - target) ** 2)

    lossj = jax.jit(loss)
    grads = jax.jit(jax.grad(loss))(model)
    assert float(lossj(model)) > 0
    for name, where in PARAMS.items():
        p = float(where(model))
        h = 1e-6 * max(abs(p), 1e-2)
        up = eqx.tree_at(where, model, jnp.asarray(p + h))
        down = eqx.tree_at(where, model, jnp.asarray(p - h))
        fd = (float(lossj(up)) - float(lossj(down))) / (2 * h)
        g = float(where(grads))
        assert np.isfinite(g)
        assert abs(g - fd) <= 1e-4 * abs(fd) + 1e-9, f"d/d{name}: autodiff {g}, FD {fd}"
