"""`brainfuse_jax.params`: one name per parameter for every model family, units and bounds from
the `param()` declarations, closest-first errors, get/set under jit, vmap and grad, and the
constructor arguments of `HH` / `Pospischil` mapped onto the names."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax import params as P
from brainfuse_jax.neurons._point import HH_PARAMETERS, POSPISCHIL_PARAMETERS, _POSPISCHIL_PARAMS

from ._cable_cells import ball_and_stick_cell

DT = 0.025


def _models():
    return {"HH": bf.HH(), "PospischilIB": bf.PospischilIB(), "LIF": bf.LIF(), "ALIF": bf.ALIF(),
            "RecurrentLIF": bf.RecurrentLIF(3, key=jax.random.key(0)), "ASN": bf.ASN(),
            "Cell": ball_and_stick_cell("synapse"),
            "HHLayer": bf.nn.HHLayer(3, 4, key=jax.random.key(0))}


# ---- names -------------------------------------------------------------------------------------
def test_names_of_every_family():
    m = _models()
    assert P.names(m["HH"]) == ["na.gbar", "na.e_rev", "k.gbar", "k.e_rev", "leak.gbar", "leak.e_rev", "c_m",
                                "temperature", "spike_threshold"]
    assert P.names(m["LIF"]) == ["beta_raw", "threshold", "refractory"]
    assert P.names(m["ALIF"]) == ["beta_raw", "threshold", "refractory", "adapt", "tau_adapt"]
    assert P.names(m["ASN"]) == ["tau_m", "v_rest", "threshold", "adapt", "tau_adapt"]
    assert "weight" in P.names(m["RecurrentLIF"])
    ib = P.names(m["PospischilIB"])
    assert {"na.v_t", "kd.v_t", "km.tau_max", "cal.gbar", "calcium.tau", "calcium.cai_rest"} <= set(ib)
    cell = P.names(m["Cell"])
    # channels and point processes named as in the state (state["syn"]), per-node leaves included
    assert {"na.gbar", "pas.e_rev", "syn.tau", "stim.amp", "cm", "temperature", "spike_threshold"} <= set(cell)
    assert not any(n.startswith(("channels.", "point_processes.")) for n in cell)
    assert P.parameters(m["Cell"])["na.gbar"].shape == (m["Cell"].n_nodes,)
    assert {"linear.weight", "neuron.na.gbar", "neuron.c_m"} <= set(P.names(m["HHLayer"]))
    # the aliases of fit and sweep are this naming
    from brainfuse_jax.sweep import parameter_paths

    for model in m.values():
        assert bf.fit.parameter_names(model) == P.names(model) == parameter_paths(model)


def test_names_are_unique_identifiers():
    """One name per leaf, and each a valid identifier with dots as underscores (C symbols, NIR
    keys); a channel name that is not one is refused by `symbol`."""
    for model in _models().values():
        ps = P.parameters(model)
        symbols = [p.symbol for p in ps.values()]
        assert all(s.isidentifier() for s in symbols) and len(set(symbols)) == len(symbols)
        steps = [p.steps for p in ps.values()]
        assert len(set(steps)) == len(steps)
    # every floating leaf of HH is named once
    hh = bf.HH()
    assert len(P.parameters(hh)) == len([x for x in jax.tree.leaves(hh) if jnp.issubdtype(x.dtype, jnp.floating)])
    with pytest.raises(ValueError, match="valid identifier"):
        P.symbol("Na-T.gbar")


def test_long_form_and_colliding_channel_names():
    hh = bf.HH()
    assert P.resolve(hh, "channels.na.gbar") == P.resolve(hh, "na.gbar")
    # a channel named like a field of the neuron keeps its long form
    m = bf.PointNeuron(channels={"c_m": bf.Leak(0.3, -65.0)})
    names = P.names(m)
    assert "channels.c_m.gbar" in names and "c_m" in names
    assert float(P.get(m, "channels.c_m.gbar")) == pytest.approx(0.3)


# ---- units and bounds ----------------------------------------------------------------------------
def test_units_and_bounds_from_param_metadata():
    ps = P.parameters(bf.HH())
    assert (ps["na.gbar"].unit, ps["na.gbar"].low, ps["na.gbar"].bounds) == ("mS/cm2", "nonnegative", (0.0, np.inf))
    assert ps["na.gbar"].label == "HHNa.gbar"
    assert (ps["c_m"].unit, ps["c_m"].low) == ("uF/cm2", "positive")
    assert (ps["na.e_rev"].unit, ps["na.e_rev"].bounds) == ("mV", (-np.inf, np.inf))
    assert ps["temperature"].unit == "degC" and ps["spike_threshold"].unit == "mV"
    ib = P.parameters(bf.PospischilIB())
    assert (ib["km.tau_max"].unit, ib["km.tau_max"].low) == ("ms", "positive")
    assert (ib["calcium.cai_rest"].unit, ib["calcium.depth"].unit) == ("mM", "um")
    cell = P.parameters(ball_and_stick_cell("synapse"))
    assert (cell["syn.tau"].unit, cell["syn.tau"].low) == ("ms", "positive")
    assert cell["stim.amp"].unit == "nA"
    # declared without param(): no unit, no bound
    assert P.parameters(bf.LIF())["threshold"].unit is None and P.parameters(bf.LIF())["threshold"].low is None
    # the bounds check values, naming the argument
    with pytest.raises(ValueError, match="gna must be >= 0 mS/cm2"):
        ps["na.gbar"].check(np.array([-1.0, 2.0]), "gna")
    with pytest.raises(ValueError, match="c_m must be > 0 uF/cm2"):
        ps["c_m"].check(0.0)


# ---- unknown names: ValueError naming the argument, closest first ----------------------------------
def test_unknown_names_list_closest_first():
    hh = bf.HH()
    with pytest.raises(ValueError) as err:
        P.resolve(hh, "na.gbr", "grid")
    msg = str(err.value)
    assert msg.startswith("grid: unknown parameter 'na.gbr' of PointNeuron (did you mean 'na.gbar'?)")
    listed = msg.split("closest first: ")[1].split(", ")
    assert listed[0] == "'na.gbar'" and sorted(listed) == sorted(repr(n) for n in P.names(hh))
    assert P.closest_first("G_NA", ["e_k", "g_k", "g_na"])[0] == "g_na"  # case-insensitive
    with pytest.raises(ValueError, match=r"params\['scheme'\]: 'scheme' is a static field"):
        P.resolve(hh, "scheme")
    with pytest.raises(TypeError, match="params: parameter names must be non-empty strings"):
        P.resolve(hh, 3)
    # the users of the one resolver
    with pytest.raises(ValueError, match=r"params: unknown parameter 'k.gbr'.*closest first: 'k.gbar'"):
        bf.fit.sample_starts({"k.gbr": (1.0, 2.0)}, 2, jax.random.key(0), around=hh)
    with pytest.raises(ValueError, match=r"grid: unknown parameter 'c_n'.*closest first: 'c_m'"):
        bf.sweep(hh, {"c_n": [1.0]}, np.full(10, 1.0), dt=DT)


def test_unknown_state_and_cell_names_closest_first():
    hh = bf.HH()
    s0 = hh.init_state(1)
    with pytest.raises(ValueError, match=r"record: 'na.mm' is not a state variable \(did you mean 'na.m'\?\); "
                                         r"available \(state variables\), closest first: 'na.m'"):
        bf.simulate(hh, s0, jnp.zeros((1, 5)), DT, record="na.mm")
    with pytest.raises(ValueError, match=r"closest first: 'na.h', 'na.m'"):  # a tie: alphabetical, whatever the order
        bf.simulate(hh, s0, jnp.zeros((1, 5)), DT, record="na.n")
    assert sorted(P.state_names(s0)) == ["k.n", "na.h", "na.m", "v"]
    cell = ball_and_stick_cell("synapse")
    with pytest.raises(ValueError, match=r"probe: 'syn.gg' is not a state variable \(did you mean 'syn.g'\?\)"):
        cell.probe("syn.gg")
    with pytest.raises(ValueError, match=r"set: channel 'na' \(HHNa\) has no field 'gbr' \(did you mean 'na.gbar'\?\)"
                                         r"; per-node parameters, closest first: 'na.gbar'"):
        cell.set("na.gbr", 1.0)
    with pytest.raises(ValueError, match=r"set: path must be 'cm' or.*closest first: 'cm'"):
        cell.set("cn", 1.0)
    with pytest.raises(ValueError, match=r"pas.gbar must be >= 0 mS/cm2"):
        cell.set("pas.gbar", -1.0)


# ---- get / set under transformations -----------------------------------------------------------
def _final_v(model, n=400, current=10.0):
    final, _ = bf.simulate(model, model.init_state(1), jnp.full((1, n), current), DT, record=None)
    return final["v"][0]


def test_set_and_get_under_jit_vmap_grad(x64):
    hh = bf.HH()
    p = P.resolve(hh, "na.gbar")
    # jit
    f = jax.jit(lambda g: P.get(P.set_values(hh, [p], [g]), p))
    assert float(f(jnp.float64(99.0))) == 99.0
    # vmap: one model per value equals HH(g_na=value)
    gs = jnp.array([80.0, 120.0, 160.0])
    got = jax.vmap(lambda g: _final_v(P.set_values(hh, ["na.gbar"], [g])))(gs)
    want = jnp.stack([_final_v(bf.HH(g_na=float(g))) for g in gs])
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
    # grad: through set_values equals through the constructor, and central differences
    gk = P.resolve(hh, "k.gbar")
    d_set = jax.grad(lambda g: _final_v(P.set_values(hh, [gk], [g])))(36.0)
    d_ctor = jax.grad(lambda g: _final_v(bf.HH(g_k=g)))(36.0)
    h = 1e-4
    fd = (_final_v(bf.HH(g_k=36.0 + h)) - _final_v(bf.HH(g_k=36.0 - h))) / (2 * h)
    assert float(d_set) != 0.0
    np.testing.assert_allclose(float(d_set), float(d_ctor), rtol=1e-10)
    np.testing.assert_allclose(float(d_set), float(fd), rtol=1e-4)
    # cast keeps the leaf's dtype; several parameters at once
    m = P.set_values(hh, ["na.gbar", "c_m"], [np.float32(100.0), 2], cast=True)
    assert P.get(m, "na.gbar").dtype == P.get(hh, "na.gbar").dtype and float(P.get(m, "c_m")) == 2.0
    assert P.owner(hh, "na.gbar") is hh.channels["na"]
    with pytest.raises(ValueError, match="2 parameters but 1 values"):
        P.set_values(hh, ["na.gbar", "c_m"], [1.0])


# ---- constructor arguments -> parameter names ----------------------------------------------------
def test_hh_unknown_keyword_lists_valid_names():
    with pytest.raises(TypeError) as err:
        bf.HH(g_Na=1.0)
    msg = str(err.value)
    assert "HH() got unexpected keyword argument(s) ['g_Na'] (did you mean 'g_na'?)" in msg
    assert "PointNeuron" not in msg
    assert msg.split("closest first: ")[1].startswith("'g_na' (sets 'na.gbar')")
    with pytest.raises(TypeError, match=r"HH\(\) got unexpected keyword argument\(s\) \['tau'\]"):
        bf.HH(tau=1.0)
    bf.HH(spike_threshold=-10.0, decay="pade")  # PointNeuron's keywords pass
    with pytest.raises(TypeError, match=r"unknown Pospischil parameter\(s\) \['g_Na'\].*'g_na' \(sets 'na.gbar'\)"):
        bf.PospischilRS(g_Na=50.0)


def _changed(base, model):
    a, b = P.parameters(base), P.parameters(model)
    return {n for n in a if not np.array_equal(np.asarray(P.get(base, a[n])), np.asarray(P.get(model, b[n])))}


@pytest.mark.parametrize("arg", sorted(HH_PARAMETERS))
def test_hh_arguments_set_the_named_parameter(arg):
    assert _changed(bf.HH(), bf.HH(**{arg: 0.123})) == {HH_PARAMETERS[arg]}


@pytest.mark.parametrize("arg", sorted(POSPISCHIL_PARAMETERS))
def test_pospischil_arguments_set_the_named_parameters(arg):
    assert set(POSPISCHIL_PARAMETERS) == set(_POSPISCHIL_PARAMS)
    base = bf.Pospischil("LTS", g_cal=0.1)  # every channel present
    model = bf.Pospischil("LTS", **{"g_cal": 0.1, arg: 0.123})
    target = POSPISCHIL_PARAMETERS[arg]
    assert _changed(base, model) == ({target} if isinstance(target, str) else set(target))
