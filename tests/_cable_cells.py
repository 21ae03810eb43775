"""Cells shared by the cable tests: the ball-and-stick of ../shared/reference (npz) and NEURON builds."""

import json

import jax.numpy as jnp
import numpy as np

import brainfuse_jax as bf
from brainfuse_jax.morphology import Cell, CompartmentTree, ExpSyn, IClamp

from .conftest import ref_file


def ball_and_stick_data():
    return dict(np.load(ref_file("ball_and_stick.npz")))


def ball_and_stick_tree(d=None):
    """Soma node 0 (hh), dend nodes 1..51 chained, dend(0) on soma(0.5): NEURON's seg.area/ri."""
    d = ball_and_stick_data() if d is None else d
    nd = d["dend_seg_area_um2"].size
    L = json.loads(str(d["geometry_json"]))["dend_L_um"]
    return CompartmentTree(
        parent=np.arange(-1, nd),
        area_um2=np.concatenate([[float(d["soma_area_um2"])], d["dend_seg_area_um2"]]),
        ri_MOhm=np.concatenate([[0.0], d["dend_seg_ri_MOhm"]]),
        section=np.array([0] + [1] * nd),
        x=np.concatenate([[0.5], d["dend_seg_x"]]),
        swc_type=np.array([1] + [3] * nd),
        dist_um=np.concatenate([[0.0], d["dend_seg_x"] * L]),
        section_names=("soma", "dend"),
    )


def ball_and_stick_cell(protocol="iclamp", tree=None, scheme="neuron", g_pas=0.1, syn_weight=None, input_locs=(), **kw):
    """The reference cell (units: mS/cm2) with the point processes of `protocol`."""
    tree = ball_and_stick_tree() if tree is None else tree
    cell = Cell(tree, scheme=scheme, temperature=6.3, input_locs=input_locs, **kw)
    cell = cell.insert("na", bf.HHNa(120.0, 50.0), "soma")
    cell = cell.insert("k", bf.HHK(36.0, -77.0), "soma")
    cell = cell.insert("leak", bf.Leak(0.3, -54.387), "soma")
    cell = cell.insert("pas", bf.Leak(g_pas, -65.0), "dend")
    pps = {"stim": IClamp(("soma", 0.5), delay=10.0, dur=50.0, amp=0.5 if protocol == "iclamp" else 0.0)}
    w = {"synapse": 0.01, "synapse_weak": 0.002}.get(protocol, 0.0) if syn_weight is None else syn_weight
    pps["syn"] = ExpSyn(("dend", 0.9), tau=2.0, e=0.0, event_times=[20.0], weights=w)
    return cell.with_point_processes(**pps)


SITES = (("soma", 0.5), ("dend", 0.1), ("dend", 0.5), ("dend", 0.9))


def run_cell(cell, n_steps=4000, dt=0.025, dtype=jnp.float64, record=None, batch=1, backend=None):
    """V at SITES, samples at t = 0, dt, ..., n_steps dt (as NEURON's record): (4, n_steps + 1)."""
    state0 = cell.init_state(batch, dtype=dtype)
    x = jnp.zeros((batch, n_steps, 0), dtype)
    rec = {"v": cell.probe("v", SITES)} if record is None else record
    _, out = bf.simulate(cell, state0, x, dt, record=rec, backend=backend)
    return state0, out
