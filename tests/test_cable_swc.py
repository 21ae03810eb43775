"""Real reconstructions against NEURON (live, Import3d): same nseg (d_lambda rule), passive
dendrites + HH soma, somatic current steps/pulses and a distal synapse.

Acceptance (issue 4): same spike counts; V within 1 mV at the soma and at a distal site;
compartment count and total membrane area agree with NEURON's to 0.1 %.
"""

import pathlib
import re
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.morphology import Cell, ExpSyn, IClamp, read_swc

from .conftest import ref_file

DT = 0.025
T_STOP = 200.0
CELLS = {"ca1_n120.swc": 0.3, "allen_485574832.swc": 0.05}  # distal synaptic weight, uS


def spike_times(v, thr=0.0):
    return np.flatnonzero((v[:-1] < thr) & (v[1:] >= thr)) * DT


def build(path, syn_weight):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # files' oddities are the reader's tests
        morph = read_swc(path)
    tree = morph.compartmentalize(d_lambda=0.1, freq=100.0, Ra=100.0, cm=1.0)
    # the distal site: the dendritic segment farthest from the soma along the tree
    dist, area = np.asarray(tree.dist_um), np.asarray(tree.area_um2)
    dendritic = np.flatnonzero((tree.swc_type >= 3) & (area > 0))
    far = dendritic[np.argmax(dist[dendritic])]
    distal = (tree.section_names[tree.section[far]], 0.9)
    soma = (next(s for s in tree.section_names if s.startswith("soma")), 0.5)
    # a step into depolarisation block, then three brief pulses, then a distal synaptic event
    stims = [(*soma, 20.0, 40.0, 1.0)] + [(*soma, t, 1.0, 3.0) for t in (80.0, 100.0, 120.0)]
    syn = (*distal, 2.0, 0.0, 150.0, syn_weight)
    pps = {f"stim{k}": IClamp(s[:2], delay=s[2], dur=s[3], amp=s[4]) for k, s in enumerate(stims)}
    pps["syn"] = ExpSyn(syn[:2], tau=syn[2], e=syn[3], event_times=[syn[4]], weights=syn[5])
    cell = Cell(tree, temperature=6.3, input_locs=(), point_processes=pps)
    cell = cell.insert("pas", bf.Leak(0.1, -65.0))  # mS/cm2 (NEURON pas.g = 1e-4 S/cm2)
    cell = cell.insert("na", bf.HHNa(120.0, 50.0), "soma")
    cell = cell.insert("k", bf.HHK(36.0, -77.0), "soma")
    cell = cell.insert("leak", bf.Leak(0.3, -54.387), "soma")
    return cell, (soma, distal), stims, syn


@pytest.mark.parametrize("name", list(CELLS))
def test_reconstruction_matches_neuron(x64, name):
    pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")
    from ._neuron_cable import swc_cell_neuron

    path = ref_file(name, "morphologies")
    cell, sites, stims, syn = build(path, CELLS[name])
    _, v_ref, info = swc_cell_neuron(path, stims=stims, syn=syn, record=sites, tstop=T_STOP, dt=DT)
    tree = cell.tree
    assert tree.n_compartments == info["nseg"]
    assert abs(float(jnp.sum(tree.area_um2)) / info["area"] - 1) < 1e-3

    n_steps = int(round(T_STOP / DT))
    _, v = bf.simulate(cell, cell.init_state(1, jnp.float64), jnp.zeros((1, n_steps, 0)), DT,
                       record=cell.probe("v", sites))
    v = np.concatenate([np.full((2, 1), -65.0), np.asarray(v[0]).T], axis=1)
    err = np.abs(v - v_ref).max(axis=1)
    assert err.max() < 1.0, f"max |dV| soma, distal: {err}"
    assert err.max() < 1e-6  # the same arithmetic as NEURON
    for ours, theirs in zip(v, v_ref):
        assert len(spike_times(ours)) == len(spike_times(theirs))
    assert len(spike_times(v[0])) == 4
    assert v[1][int(150 / DT):].max() > -20.0  # the synaptic event really depolarises the distal site


def test_docs_example_runs(monkeypatch):
    """The code block of docs/cable.md runs as written (from the project root)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    ref_file("ca1_n120.swc", "morphologies")
    code = re.findall(r"```python\n(.*?)```", (root / "docs" / "cable.md").read_text(), re.S)
    assert code
    monkeypatch.chdir(root)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code[0], "docs/cable.md", "exec"), namespace)
    v = np.asarray(namespace["v"])
    assert v.shape == (1, 8000, 2) and v[0, :, 0].max() > 0.0  # the soma spikes
