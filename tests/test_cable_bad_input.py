"""Bad input to `Cell`, its point processes and the tree solver: clear errors naming the argument."""

import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.morphology import AlphaSyn, Cell, CompartmentTree, Exp2Syn, ExpSyn, IClamp

from ._cable_cells import ball_and_stick_cell


def small_tree(area=(100.0, 50.0, 50.0), ri=(0.0, 1.0, 1.0)):
    return CompartmentTree(parent=[-1, 0, 1], area_um2=area, ri_MOhm=ri, section=[0, 1, 1],
                           x=[0.5, 0.25, 0.75], swc_type=[1, 3, 3], dist_um=[0.0, 10.0, 30.0],
                           section_names=("soma", "dend"))


@pytest.fixture(scope="module")
def cell():
    return ball_and_stick_cell("iclamp")


def test_negative_axial_resistance():
    with pytest.raises(ValueError, match=r"tree.ri_MOhm \(non-root nodes\) must be > 0"):
        Cell(small_tree(ri=(0.0, 1.0, -2.0)))
    with pytest.raises(ValueError, match="tree.ri_MOhm"):
        Cell(small_tree(ri=(0.0, 0.0, 1.0)))  # zero resistance: an infinite conductance
    with pytest.raises(ValueError, match="tree.ri_MOhm"):
        Cell(small_tree(ri=(0.0, np.nan, 1.0)))


def test_negative_area():
    with pytest.raises(ValueError, match="tree.area_um2 must be >= 0"):
        Cell(small_tree(area=(100.0, -1.0, 50.0)))


def test_not_a_tree():
    with pytest.raises(TypeError, match="tree must be a CompartmentTree"):
        Cell(np.zeros(3))


@pytest.mark.parametrize("loc,err,match", [
    (5, ValueError, r"node index 5 out of range 0..2"),
    (-1, ValueError, "out of range"),
    (("dend", 1.5), ValueError, r"x must be in \[0, 1\]"),
    (("dend", -0.1), ValueError, r"x must be in \[0, 1\]"),
    (("axon", 0.5), ValueError, "no section named 'axon'"),
    (("dend", "middle"), TypeError, "x must be a number"),
    ("dend", TypeError, "node index .* or a .*section, x"),
    (True, TypeError, "node index"),
])
def test_bad_locations(loc, err, match):
    with pytest.raises(err, match=match):
        Cell(small_tree(), point_processes={"stim": IClamp(loc, delay=1.0, dur=1.0, amp=0.1)})


def test_bad_probe_and_input_locations(cell):
    with pytest.raises(ValueError, match="no section named 'dendrite'"):
        cell.probe("v", [("dendrite", 0.5)])
    with pytest.raises(ValueError, match="out of range"):
        cell.probe("v", [1000])
    with pytest.raises(ValueError, match="input_locs.*out of range"):
        Cell(small_tree(), input_locs=(7,))
    with pytest.raises(ValueError, match="spike_loc.*no section named 'axon'"):
        Cell(small_tree(), spike_loc=("axon", 0.5))


def test_unknown_section_or_region_names(cell):
    with pytest.raises(ValueError, match="unknown region or section name 'apical_tuft'"):
        cell.insert("kdr", bf.HHK(), where="apical_tuft")
    with pytest.raises(ValueError, match="unknown region"):
        cell.set_density("na", 1.0, where=["soma", "basl"])
    with pytest.raises(ValueError, match="channel of"):
        cell.set_density("nav", 1.0)
    with pytest.raises(ValueError, match="has no field 'gmax'"):
        cell.set("na.gmax", 1.0)
    with pytest.raises(ValueError, match="boolean array of shape"):
        cell.region(lambda d: d * 2)


@pytest.mark.parametrize("cls", [ExpSyn, Exp2Syn, AlphaSyn])
def test_event_times_nan_or_negative(cls):
    with pytest.raises(ValueError, match="event_times must be >= 0 ms.*got nan"):
        cls(0, event_times=[1.0, float("nan")], weights=0.01)
    with pytest.raises(ValueError, match="event_times must be >= 0"):
        cls(0, event_times=[-1.0], weights=0.01)
    with pytest.raises(ValueError, match="event_times must be a 1-D"):
        cls(0, event_times=[[1.0]], weights=0.01)
    with pytest.raises(ValueError, match="weights must be a scalar or have the shape of event_times"):
        cls(0, event_times=[1.0, 2.0], weights=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="weights must be finite"):
        cls(0, event_times=[1.0], weights=float("nan"))
    cls(0, event_times=[1.0, float("inf")], weights=0.01)  # +inf pads: allowed


def test_synapse_and_clamp_parameters():
    with pytest.raises(ValueError, match="ExpSyn.tau must be > 0"):
        ExpSyn(0, tau=0.0)
    with pytest.raises(ValueError, match="Exp2Syn.tau2 must be > 0"):
        Exp2Syn(0, tau2=-1.0)
    with pytest.raises(ValueError, match="IClamp.dur must be >= 0"):
        IClamp(0, dur=-1.0)
    with pytest.raises(ValueError, match="IClamp.amp must be finite"):
        IClamp(0, amp=float("nan"))


def test_bad_cell_arguments():
    tree = small_tree()
    with pytest.raises(ValueError, match="scheme must be one of"):
        Cell(tree, scheme="rk4")
    with pytest.raises(ValueError, match="names must be strings other than"):
        Cell(tree, channels={"v": bf.Leak()})
    with pytest.raises(ValueError, match="used twice"):
        Cell(tree, channels={"syn": bf.Leak()}, point_processes={"syn": ExpSyn(0)})
    with pytest.raises(TypeError, match=r"channels\['na'\] must be a Channel"):
        Cell(tree, channels={"na": 1.0})
    with pytest.raises(ValueError, match=r"gbar must be a scalar or have shape \(3,\)"):
        Cell(tree, channels={"leak": bf.Leak(gbar=jnp.ones(5))})
    with pytest.raises(ValueError, match="cm must be >= 0"):
        Cell(tree, cm=-1.0)
    with pytest.raises(ValueError, match=r"cm must be a scalar or have shape \(3,\)"):
        Cell(tree, cm=jnp.ones(2))
    with pytest.raises(ValueError, match="temperature must be finite"):
        Cell(tree, temperature=float("nan"))


def test_bad_densities(cell):
    with pytest.raises(ValueError, match="na.gbar must be >= 0"):
        cell.set_density("na", -1.0, "soma")
    with pytest.raises(ValueError, match=r"must be a scalar, an array of shape \(52,\)"):
        cell.set_density("na", jnp.ones(3))
    with pytest.raises(ValueError, match="na.gbar must be finite"):
        cell.set_density("na", lambda d: d * np.nan)


def test_bad_state_and_step(cell):
    with pytest.raises(ValueError, match=r"v0 must be a scalar or have shape \(52,\)"):
        cell.init_state(1, v0=jnp.zeros(3))
    with pytest.raises(ValueError, match="v0 must be finite"):
        cell.init_state(1, v0=float("nan"))
    s0 = cell.init_state(2)
    with pytest.raises(ValueError, match=r"x must have shape \(2, 0\)"):
        cell.step(s0, jnp.zeros((2, 3)), 0.025)
    with pytest.raises(ValueError, match="dt must be"):
        cell.step(s0, None, -0.025)
    with pytest.raises(ValueError, match=r"inputs must have shape \(2, 10, 0\)"):
        bf.simulate(cell, s0, jnp.zeros((2, 10, 1)), 0.025)
    with pytest.raises(ValueError, match="not a state variable"):
        bf.simulate(cell, s0, jnp.zeros((2, 10, 0)), 0.025, record=cell.probe("na.q"))
