"""Every library channel against NEURON running NMODL files of the same equations (tests/nmodl/).

Single compartments (area 100 um2) under current pulses, dt = 0.025 ms, our "neuron" scheme in
float64. Acceptance (issue 3): same spike counts, spike times within 0.2 ms, subthreshold error
< 0.5 mV. Measured (printed with -s, recorded in docs/channels.md): the same algorithm as NEURON,
so agreement is at rounding level (<= 1e-6 mV), which the tighter checks hold on to.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import channels as C

from . import _nmodl

DT = 0.025


@pytest.fixture(scope="module")
def mechanisms():
    pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")
    return _nmodl.load_mechanisms()


def spiking_base(**kw):
    """Na + Kd + leak of Pospischil et al. (RS values) to carry the channel under test."""
    e_k = kw.pop("e_k", -90.0)
    return {"na": C.PospischilNa(), "kd": C.PospischilKd(e_rev=e_k), "leak": C.Leak(0.05, -70.0), **kw}


def ca_cell(nernst: bool):
    pool = C.CalciumPool(tau=20.0, depth=0.2, cai_rest=2.4e-4, nernst=nernst)
    return bf.PointNeuron(spiking_base(
        cat=C.DestexheCaT(gbar=1.5, e_rev=120.0),
        cal=C.PospischilCaL(gbar=0.3, e_rev=120.0),
        sk=C.DestexheSK(gbar=2.0, e_rev=-90.0),
        bk=C.MoczydlowskiLatorreBK(gbar=5.0, e_rev=-90.0),
    ), temperature=36.0, calcium=pool)


# name -> (model factory, protocols [(delay ms, dur ms, amp uA/cm2), ...], v0 mV, tstop ms, pool mechanism)
CELLS = {
    "RS (PospischilNa, Kd, M, Leak)": (
        lambda: bf.Pospischil("RS"),
        [[(50.0, 500.0, 0.5)], [(50.0, 500.0, 1.5)], [(50.0, 500.0, 5.0)]], -71.9, 600.0, "bf_cad"),
    "IB (+ PospischilCaL, Ca pool, Nernst)": (
        lambda: bf.Pospischil("IB"),
        [[(50.0, 500.0, 0.5)], [(50.0, 500.0, 0.8)]], -85.3, 600.0, "bf_cad"),
    "LTS (+ PospischilCaT, instantaneous s)": (
        lambda: bf.Pospischil("LTS"),
        [[(50.0, 300.0, -0.5)], [(50.0, 300.0, -1.5)], [(50.0, 300.0, 0.3)]], -54.0, 600.0, "bf_cad"),
    "ConnorStevensKA at 30 degC": (
        lambda: bf.PointNeuron(spiking_base(ka=C.ConnorStevensKA(gbar=3.0, e_rev=-90.0)), temperature=30.0),
        [[(50.0, 100.0, -3.0), (150.0, 200.0, 4.0)], [(50.0, 300.0, 8.0)], [(50.0, 300.0, 2.0)]], -70.0, 400.0,
        "bf_cad"),
    "HuguenardMcCormickIh at 32 degC": (
        lambda: bf.PointNeuron(spiking_base(ih=C.HuguenardMcCormickIh(gbar=0.3)), temperature=32.0),
        [[(50.0, 300.0, -2.0)], [(50.0, 300.0, -6.0)], [(50.0, 300.0, 1.5)]], -70.0, 500.0, "bf_cad"),
    "DestexheCaT + CaL + SK + BK, pool with Nernst E_Ca": (
        lambda: ca_cell(nernst=True),
        [[(50.0, 300.0, 3.0)], [(50.0, 200.0, -2.0)], [(50.0, 300.0, 8.0)]], -70.0, 450.0, "bf_cad"),
    "same, fixed E_Ca, pool by derivimplicit": (
        lambda: ca_cell(nernst=False),
        [[(50.0, 300.0, 3.0)], [(50.0, 200.0, -2.0)], [(50.0, 300.0, 8.0)]], -70.0, 450.0, "bf_cad_di"),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_channel_matches_neuron(x64, mechanisms, name):
    factory, protocols, v0, tstop, pool_mech = CELLS[name]
    model = factory()
    record = ("v", "cai") if model.calcium is not None else ("v",)
    ref = _nmodl.run_neuron(model, protocols, dt=DT, tstop=tstop, v0=v0, record=record, pool_mechanism=pool_mech)
    ours = _nmodl.run_ours(model, protocols, dt=DT, tstop=tstop, v0=v0, record=record)
    rows = _nmodl.compare(ours["v"], ref["v"], DT)
    print(f"\n{name}")
    for pulses, r in zip(protocols, rows):
        print(f"  {pulses}: spikes {r['n_ours']}/{r['n_neuron']}, max spike-time diff {r['dt_spike']:.1e} ms, "
              f"max |dV| {r['dv_max']:.1e} mV (subthreshold {r['dv_sub']:.1e} mV)")
    if "cai" in record:
        print(f"  max |d[Ca]i| {np.abs(ours['cai'] - ref['cai']).max():.1e} mM (peak {ref['cai'].max():.2e} mM)")
        np.testing.assert_allclose(ours["cai"], ref["cai"], rtol=1e-6, atol=1e-12)
    assert sum(r["n_neuron"] for r in rows) > 0, "the protocols must make the cell spike"
    for r in rows:
        assert r["n_ours"] == r["n_neuron"]
        assert r["dt_spike"] < 0.2
        assert r["dv_sub"] < 0.5
        assert r["dv_max"] < 1e-3  # the same algorithm: rounding-level agreement


def test_ca_dependent_channels_matter(x64, mechanisms):
    """The Ca-activated K channels act in the comparison cell (so the comparison tests them)."""
    _, protocols, v0, tstop, _ = CELLS["DestexheCaT + CaL + SK + BK, pool with Nernst E_Ca"]
    model = ca_cell(nernst=True)
    with_k = _nmodl.run_ours(model, protocols, tstop=tstop, v0=v0, record=("v", "cai"))["v"]
    without = _nmodl.run_ours(eqx.tree_at(lambda m: (m.channels["sk"].gbar, m.channels["bk"].gbar), model,
                                          (jnp.asarray(0.0), jnp.asarray(0.0))),
                              protocols, tstop=tstop, v0=v0, record=("v", "cai"))["v"]
    assert np.abs(with_k - without).max() > 5.0
