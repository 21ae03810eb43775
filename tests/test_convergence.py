"""Empirical order of convergence of each HH scheme against diffrax (Tsit5, rtol = atol = 1e-10).

Regress log(max |V - V_ref|) on log(dt) over a spiking 10 ms run (I = 10 uA/cm2, float64).
The "neuron" scheme is compared with the ODE it discretises: HH with NEURON's tabulated rates.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.integrate import reference_solution

I_DENS, T1, SAMPLE = 10.0, 10.0, 0.5  # uA/cm2, ms, ms
FIRST_ORDER_DTS = [0.02, 0.01, 0.005, 0.0025]
RK4_DTS = [0.05, 0.025, 0.0125, 0.00625]


def reference_v(scheme):
    model = bf.HH(scheme=scheme)
    ts = jnp.arange(0.0, T1 + 1e-9, SAMPLE)
    ys = reference_solution(model, model.init_state(1), lambda t: jnp.full((1,), I_DENS), ts)
    return np.asarray(ys["v"][1:, 0])


def max_error(scheme, dt, v_ref):
    model = bf.HH(scheme=scheme)
    n = int(round(T1 / dt))
    _, v = bf.simulate(model, model.init_state(1), jnp.full((1, n), I_DENS), dt, record="v")
    stride = int(round(SAMPLE / dt))
    return np.abs(np.asarray(v[0, stride - 1::stride]) - v_ref).max()


@pytest.fixture(scope="module")
def refs():
    import jax

    with jax.enable_x64(True):
        return {"exact": reference_v("rk4"), "tabulated": reference_v("neuron")}


@pytest.mark.parametrize(
    "scheme, dts, ref, lo, hi",
    [
        ("exp_euler", FIRST_ORDER_DTS, "exact", 0.85, 1.25),
        ("backward_euler", FIRST_ORDER_DTS, "exact", 0.85, 1.25),
        ("neuron", FIRST_ORDER_DTS, "tabulated", 0.85, 1.25),
        ("rk4", RK4_DTS, "exact", 3.6, 4.5),
    ],
)
def test_order_of_convergence(x64, refs, scheme, dts, ref, lo, hi):
    errs = [max_error(scheme, dt, refs[ref]) for dt in dts]
    assert all(np.diff(errs) < 0), errs
    order = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert lo < order < hi, f"{scheme}: errors {errs}, order {order:.2f}"
