"""SWC reading and validation, sections, compartments and the CompartmentTree (no NEURON needed;
the NEURON comparisons are in test_morphology_neuron.py)."""

import math
import re
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.morphology import CompartmentTree, Morphology, SWCWarning, parse_swc, read_swc

from .conftest import ref_file


# A small valid cell: 3-point soma (NeuroMorpho), a dendrite that branches, an axon.
GOOD = """\
# a comment
#  id type x y z r parent
1 1 0 0 0 5 -1
2 1 0 -5 0 5 1
3 1 0 5 0 5 1
4 3 5 0 0 1 1
5 3 15 0 0 1 4
6 3 25 5 0 0.5 5
7 3 35 10 0 0.5 6
8 3 25 -5 0 0.5 5
9 2 -5 0 0 0.5 1
10 2 -30 0 0 0.5 9
"""


def write(tmp_path, text, name="cell.swc"):
    path = tmp_path / name
    path.write_text(text)
    return path


def morph_file(name):
    return ref_file(name, "morphologies")


# --------------------------------------------------------------------------------------------
# CompartmentTree
# --------------------------------------------------------------------------------------------


def small_tree():
    return CompartmentTree(parent=[-1, 0, 1, 1], area_um2=[10.0, 5.0, 0.0, 5.0], ri_MOhm=[0.0, 1.0, 1.0, 2.0],
                           section=[0, 1, 1, 2], x=[0.5, 0.5, 1.0, 0.5], swc_type=[1, 3, 3, 3],
                           dist_um=[0.0, 5.0, 10.0, 15.0], section_names=("soma[0]", "dend[0]", "dend[1]"))


def test_tree_fields_are_static_numpy_and_arrays():
    t = small_tree()
    assert isinstance(t.parent, np.ndarray) and t.parent.dtype == np.int64
    assert isinstance(t.section, np.ndarray) and isinstance(t.swc_type, np.ndarray)
    with pytest.raises(ValueError):
        t.parent[0] = 3  # read-only
    leaves = jax.tree_util.tree_leaves(t)
    assert all(isinstance(leaf, jax.Array) for leaf in leaves)
    assert len(leaves) == 4  # area, ri, x, dist (cm is None): the int arrays are static
    assert t.n_nodes == 4 and t.n_compartments == 3 and t.is_membrane.tolist() == [True, True, False, True]
    assert t.nseg == {"soma[0]": 1, "dend[0]": 1, "dend[1]": 1}
    # same topology -> same treedef (one compilation); jit works on the tree
    t2 = eqx.tree_at(lambda tr: tr.area_um2, t, t.area_um2 * 2)
    assert jax.tree_util.tree_structure(t) == jax.tree_util.tree_structure(t2)
    total = eqx.filter_jit(lambda tr: jnp.sum(tr.area_um2))
    assert float(total(t2)) == pytest.approx(40.0)
    assert "3 compartments" in repr(t)


def test_tree_validation():
    kw = dict(area_um2=[1.0, 1.0], ri_MOhm=[0.0, 1.0], section=[0, 0], x=[0.25, 0.75], swc_type=[1, 1],
              dist_um=[0.0, 1.0], section_names=("soma[0]",))
    with pytest.raises(ValueError, match="Hines order"):
        CompartmentTree(parent=[1, -1], **kw)
    with pytest.raises(ValueError, match="area_um2 must have shape"):
        CompartmentTree(parent=[-1, 0], **{**kw, "area_um2": [1.0]})
    with pytest.raises(ValueError, match="section must index"):
        CompartmentTree(parent=[-1, 0], **{**kw, "section": [0, 1]})


def test_locate_follows_neuron_segment_lookup():
    m = Morphology.from_sections([dict(name="soma", L=10, diam=10),
                                  dict(name="dend", L=100, diam=1, parent="soma", parent_x=1.0),
                                  dict(name="d1", L=10, diam=1, parent="dend"),
                                  dict(name="d2", L=10, diam=1, parent="dend")])
    t = m.compartmentalize(nseg={"soma": 1, "dend": 5, "default": 1})
    x = np.asarray(t.x)
    # NEURON: segment k of n covers [k/n, (k+1)/n); a boundary belongs to the segment above
    for xx, centre in [(0.05, 0.1), (0.2, 0.3), (0.4, 0.5), (0.5, 0.5), (0.6, 0.7), (0.8, 0.9), (0.99, 0.9)]:
        i = t.locate("dend", xx)
        assert t.section_names[t.section[i]] == "dend" and x[i] == pytest.approx(centre)
    end = t.locate("dend", 1.0)  # two children at dend(1): a zero-area junction node
    assert not t.is_membrane[end] and float(t.area_um2[end]) == 0.0 and x[end] == 1.0
    assert t.parent[t.locate("d1", 0.5)] == end and t.parent[t.locate("d2", 0.5)] == end
    assert t.locate("d1", 0.0) == end  # a section's 0 end is its parent's node
    assert t.locate("soma", 1.0) == t.locate("soma", 0.5)  # single child: end node merged away
    assert t.locate(1, 0.3) == t.locate("dend", 0.3)
    with pytest.raises(ValueError, match="no section named 'axon'"):
        t.locate("axon", 0.5)
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\]"):
        t.locate("dend", 1.5)


# --------------------------------------------------------------------------------------------
# Building sections by hand and the d_lambda rule
# --------------------------------------------------------------------------------------------


def test_from_sections_ball_and_stick_matches_reference_geometry():
    d = np.load(ref_file("ball_and_stick.npz"))
    with jax.enable_x64(True):
        m = Morphology.from_sections([dict(name="soma", L=20, diam=20),
                                      dict(name="dend", L=500, diam=2, parent="soma", parent_x=0.5)])
        t = m.compartmentalize(nseg={"soma": 1, "dend": 51}, Ra=100.0)
    assert t.n_nodes == 52 and list(t.parent) == list(range(-1, 51))
    np.testing.assert_allclose(np.asarray(t.area_um2)[1:], d["dend_seg_area_um2"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t.ri_MOhm)[1:], d["dend_seg_ri_MOhm"], rtol=1e-12)
    assert float(t.area_um2[0]) == pytest.approx(float(d["soma_area_um2"]), rel=1e-12)
    np.testing.assert_allclose(np.asarray(t.x)[1:], d["dend_seg_x"], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t.dist_um)[1:], d["dend_seg_x"] * 500.0, rtol=1e-12)


def test_read_swc_ball_and_stick_matches_reference_geometry():
    d = np.load(ref_file("ball_and_stick.npz"))
    with jax.enable_x64(True):
        m = read_swc(ref_file("ball_and_stick.swc"))
        t = m.compartmentalize(nseg={"soma": 1, "dend": 51}, Ra=100.0)
    assert m.section_names == ("soma[0]", "dend[0]")
    assert m["dend[0]"].parent == 0 and m["dend[0]"].parent_x == 0.5  # dend(0) -> soma(0.5)
    dend = np.flatnonzero(t.section == 1)
    np.testing.assert_allclose(np.asarray(t.area_um2)[dend], d["dend_seg_area_um2"], rtol=1e-9)
    np.testing.assert_allclose(np.asarray(t.ri_MOhm)[dend], d["dend_seg_ri_MOhm"], rtol=1e-9)
    assert float(t.area_um2[0]) == pytest.approx(float(d["soma_area_um2"]), rel=1e-9)


def test_d_lambda_rule():
    # lambda_f(100 Hz) = 1e5 sqrt(d / (4 pi f Ra cm)) = 398.9 um for d = 2, Ra = 100, cm = 1;
    # L / (0.1 lambda) = 12.53 -> nseg = int((12.53 + 0.9) / 2) * 2 + 1 = 13
    m = Morphology.from_sections([dict(name="soma", L=20, diam=20),
                                  dict(name="dend", L=500, diam=2, parent="soma", parent_x=0.5)])
    lam = 1e5 * math.sqrt(2 / (4 * math.pi * 100 * 100 * 1))
    expected = int((500 / (0.1 * lam) + 0.9) / 2) * 2 + 1
    assert expected == 13
    assert m.nseg(Ra=100.0) == {"soma": 1, "dend": 13}
    assert m.nseg(Ra=100.0, d_lambda=0.05)["dend"] == 25
    assert m.nseg(Ra=100.0, freq=1000.0)["dend"] > 13
    # the same cable given as tapered 3D points uses NEURON's lambda_f over the points
    m3 = Morphology.from_sections([dict(name="dend", points=[[0, 0, 0, 2], [250, 0, 0, 2], [500, 0, 0, 2]])])
    assert m3.nseg(Ra=100.0)["dend"] == 13
    # fixed nseg (int, or dict; sections not covered fall back to the rule)
    assert m.nseg(5) == {"soma": 5, "dend": 5}
    assert m.nseg({"soma": 3}, Ra=100.0) == {"soma": 3, "dend": 13}
    assert m.compartmentalize(nseg=7).n_compartments == 14


def test_per_region_Ra_and_cm():
    m = Morphology.from_sections([dict(name="soma", L=20, diam=20),
                                  dict(name="dend", L=100, diam=2, parent="soma", parent_x=0.5)])
    with jax.enable_x64(True):
        t1 = m.compartmentalize(nseg=3, Ra={"soma": 100.0, "dend": 200.0}, cm={"soma": 1.0, 3: 2.0})
        t0 = m.compartmentalize(nseg=3, Ra=100.0)
    ri0, ri1 = np.asarray(t0.ri_MOhm), np.asarray(t1.ri_MOhm)
    np.testing.assert_allclose(ri1[:3], ri0[:3])  # soma
    np.testing.assert_allclose(ri1[3:], 2 * ri0[3:])  # dend: child half segments only
    np.testing.assert_allclose(np.asarray(t1.cm_uF_cm2), [1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match="Ra has no value for section 'dend'"):
        m.compartmentalize(Ra={"soma": 100.0})
    with pytest.raises(ValueError, match="keys that match no section"):
        m.compartmentalize(Ra={"default": 100.0, "apic": 1.0})
    with pytest.raises(ValueError, match="Ra must be > 0"):
        m.compartmentalize(Ra=-1.0)
    with pytest.raises(ValueError, match="nseg for section 'soma' must be an integer >= 1"):
        m.compartmentalize(nseg=0)
    with pytest.raises(ValueError, match="d_lambda must be > 0"):
        m.compartmentalize(d_lambda=0.0)


def test_from_sections_validation():
    with pytest.raises(ValueError, match="parent 'soma' is not an earlier section"):
        Morphology.from_sections([dict(name="dend", L=1, diam=1), dict(name="d2", L=1, diam=1, parent="soma")])
    with pytest.raises(ValueError, match="only the first section may have no parent"):
        Morphology.from_sections([dict(name="a", L=1, diam=1), dict(name="b", L=1, diam=1)])
    with pytest.raises(ValueError, match="diam must be > 0"):
        Morphology.from_sections([dict(name="a", L=1, diam=0)])
    with pytest.raises(ValueError, match=r"points must have shape \(n >= 2, 4\)"):
        Morphology.from_sections([dict(name="a", points=[[0, 0, 0, 1]])])
    with pytest.raises(ValueError, match="parent_x must be in"):
        Morphology.from_sections([dict(name="a", L=1, diam=1), dict(name="b", L=1, diam=1, parent="a", parent_x=2)])
    with pytest.raises(ValueError, match="section names must be unique"):
        Morphology.from_sections([dict(name="a", L=1, diam=1), dict(name="a", L=1, diam=1, parent=0)])
    with pytest.raises(ValueError, match="unknown keys"):
        Morphology.from_sections([dict(name="a", L=1, diameter=1)])
    auto = Morphology.from_sections([dict(swc_type=1, L=10, diam=10), dict(L=5, diam=1, parent=0),
                                     dict(L=5, diam=1, parent=0, swc_type=4)])
    assert auto.section_names == ("soma[0]", "dend[0]", "apic[0]")


def test_distance_through_the_soma():
    # soma in the middle: a dendrite on each end, distances measured from soma(0.5)
    m = Morphology.from_sections([dict(name="soma", L=20, diam=20),
                                  dict(name="a", L=100, diam=1, parent="soma", parent_x=1.0),
                                  dict(name="b", L=50, diam=1, parent="soma", parent_x=0.0)])
    t = m.compartmentalize(nseg=1)
    assert float(t.dist_um[t.locate("a", 0.5)]) == pytest.approx(10 + 50)
    assert float(t.dist_um[t.locate("b", 0.5)]) == pytest.approx(10 + 25)
    assert float(t.dist_um[t.locate("soma", 0.5)]) == 0.0


# --------------------------------------------------------------------------------------------
# SWC: soma conventions and Import3d's sections
# --------------------------------------------------------------------------------------------


def test_three_point_soma_is_a_sphere(tmp_path):
    m = read_swc(write(tmp_path, GOOD))
    assert m.section_names[0] == "soma[0]"
    soma = m["soma[0]"]
    assert soma.L == pytest.approx(10.0) and soma.area_um2 == pytest.approx(4 * math.pi * 25, rel=1e-6)
    assert [s.name for s in m.sections] == ["soma[0]", "dend[0]", "dend[1]", "dend[2]", "axon[0]"]
    assert [s.parent_x for s in m.sections[1:]] == [0.5, 1.0, 1.0, 0.5]


def test_single_point_soma(tmp_path):
    text = "1 1 0 0 0 6 -1\n2 3 6 0 0 1 1\n3 3 20 0 0 1 2\n4 2 -6 0 0 0.5 1\n5 2 -20 0 0 0.5 4\n"
    m = read_swc(write(tmp_path, text))
    soma = m["soma[0]"]
    assert soma.L == pytest.approx(12.0) and soma.area_um2 == pytest.approx(4 * math.pi * 36, rel=1e-6)
    dend = m["dend[0]"]
    # Import3d: children of a one-point soma attach at soma(0.5) and start at their own first point
    assert dend.parent_x == 0.5 and dend.L == pytest.approx(14.0)


def test_cylinder_stack_soma(tmp_path):
    text = ("1 1 0 0 0 2 -1\n2 1 0 2 0 4 1\n3 1 0 4 0 5 2\n4 1 0 6 0 4 3\n5 1 0 8 0 2 4\n"
            "6 4 0 10 0 1 5\n7 4 0 50 0 1 6\n8 3 0 -2 0 1 1\n9 3 0 -40 0 1 8\n")
    m = read_swc(write(tmp_path, text))
    soma = m["soma[0]"]
    assert soma.arc.shape == (5,) and soma.L == pytest.approx(8.0)
    frusta = sum(math.pi * (r1 + r2) * math.hypot(2, r2 - r1) for r1, r2 in zip([2, 4, 5, 4], [4, 5, 4, 2]))
    assert soma.area_um2 == pytest.approx(frusta, rel=1e-6)
    assert m["apic[0]"].parent_x == 1.0 and m["dend[0]"].parent_x == 0.0
    # a dendrite leaving the soma takes its second point's diameter at its first point
    assert m["apic[0]"].diam[0] == pytest.approx(2.0)


def test_custom_type_codes_and_names(tmp_path):
    text = "1 1 0 0 0 5 -1\n2 7 0 5 0 1 1\n3 7 0 20 0 1 2\n4 0 0 -5 0 1 1\n5 0 0 -20 0 1 4\n"
    m = read_swc(write(tmp_path, text))
    assert m.section_names == ("soma[0]", "dend_7[0]", "dend_0[0]")
    t = m.compartmentalize(nseg=1)
    assert t.swc_type.tolist() == [1, 7, 0]


def test_vaa3d_and_comma_headers(tmp_path):
    text = ("# generated by Vaa3D Plugin sort_neuron_swc\n# id,type,x,y,z,r,pid\n"
            "1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 3 25 0 0 1 2\n")
    pts = parse_swc(write(tmp_path, text))
    assert len(pts) == 3 and pts.header[0].startswith("generated by Vaa3D")
    assert pts.line.tolist() == [3, 4, 5]


@pytest.mark.parametrize("name", ["ca1_n120.swc", "allen_485574832.swc", "l5pc_with_axon.swc"])
def test_reference_morphologies_load_silently(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_swc(morph_file(name))
    assert m.section_names[0] == "soma[0]"
    t = m.compartmentalize()
    assert t.n_compartments >= len(m) and np.all(np.asarray(t.ri_MOhm)[1:] > 0)


def test_flywire_nanometres_and_order():
    path = morph_file("flywire_t4_720575940626407426.swc")
    with pytest.warns(SWCWarning) as rec:
        m = read_swc(path)
    msgs = " | ".join(str(w.message) for w in rec)
    assert "declares units of 0.001 um" in msgs  # navis: "units": "1 nanometer"
    assert "come before their parent" in msgs
    assert "have radius 0" in msgs
    radius = m.swc.radius
    assert 0.05 < np.median(radius) < 1.0  # um now
    assert np.all(m.swc.parent < np.arange(len(m.swc)))
    assert m["soma[0]"].L == pytest.approx(2 * 1.533, rel=1e-4)  # float32 3D points, as NEURON
    # the strict mode raises, naming the first offending line
    with pytest.raises(ValueError, match=r"line 9: parent id 2408 comes after its child id 2"):
        parse_swc(path, scale=1e-3, reorder=False)


def test_retina_zero_radii():
    path = morph_file("retina_20161028_1.swc")
    with pytest.warns(SWCWarning, match="7213 of 7213 points have radius 0"):
        m = read_swc(path)
    with pytest.raises(ValueError, match="0 diameter.*min_radius_um"):
        m.compartmentalize()  # NEURON's lambda_f fails the same way
    t = m.compartmentalize(nseg=1)
    assert float(jnp.sum(t.area_um2)) == 0.0  # as NEURON: no membrane where the diameter is 0
    with pytest.warns(SWCWarning, match="raised to it"):
        m2 = read_swc(path, min_radius_um=0.2)
    assert m2.compartmentalize().n_compartments > len(m2)


# --------------------------------------------------------------------------------------------
# Traps: nanometres, axon labelled as soma, split soma, zero-length sections
# --------------------------------------------------------------------------------------------


def test_nanometre_file_without_declaration_raises_with_scale_hint(tmp_path):
    text = "1 1 0 0 0 5000 -1\n2 3 5000 0 0 1000 1\n3 3 30000 0 0 1000 2\n4 3 90000 0 0 800 3\n"
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=r"implausible size.*median radius is 1000.*scale=1e-3"):
        read_swc(path)
    m = read_swc(path, scale=1e-3)
    assert m["soma[0]"].L == pytest.approx(10.0)
    far = write(tmp_path, "1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 3 20000 0 0 1 2\n", "far.swc")
    with pytest.raises(ValueError, match="spans 2e\\+04"):
        read_swc(far)
    assert read_swc(far, scale=1.0)["dend[0]"].L == pytest.approx(19995.0)


def test_axon_labelled_as_soma_warns(tmp_path):
    rows = ["1 1 0 0 0 5 -1", "2 1 0 -5 0 5 1", "3 1 0 5 0 5 1"]
    rows += [f"{i} 1 {-(i - 3) * 10} 0 0 0.5 {i - 1 if i > 4 else 1}" for i in range(4, 12)]
    rows += ["12 3 5 0 0 1 1", "13 3 50 0 0 1 12"]
    with pytest.warns(SWCWarning, match=r"soma points .* probably axon or dendrite points labelled as soma"):
        m = read_swc(write(tmp_path, "\n".join(rows) + "\n"))
    assert sum(s.swc_type == 1 for s in m.sections) >= 1


def test_soma_split_by_other_points_warns(tmp_path):
    text = ("1 1 0 0 0 5 -1\n2 1 0 5 0 5 1\n3 3 0 8 0 1 2\n4 3 0 10 0 1 3\n5 1 0 12 0 4 4\n"
            "6 1 0 15 0 4 5\n7 3 0 60 0 1 6\n")
    with pytest.warns(SWCWarning, match="soma is split into pieces"):
        m = read_swc(write(tmp_path, text))
    assert [s.name for s in m.sections if s.swc_type == 1] == ["soma[0]", "soma[1]"]


def test_branched_soma_becomes_several_soma_sections_silently(tmp_path):
    # a soma outline that branches (as in ca1_n120): Import3d's soma[0], soma[1]
    text = ("1 1 0 0 0 5 -1\n2 1 0 3 0 4 1\n3 1 0 6 0 3 2\n4 1 0 -3 0 4 1\n5 1 0 -6 0 3 4\n"
            "6 4 0 10 0 1 3\n7 4 0 40 0 1 6\n8 3 0 -10 0 1 5\n9 3 0 -40 0 1 8\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_swc(write(tmp_path, text))
    assert [s.name for s in m.sections if s.swc_type == 1] == ["soma[0]", "soma[1]"]
    assert m["soma[1]"].parent == 0 and m["soma[1]"].parent_x == 0.0


def test_zero_length_section_removed_as_import3d(tmp_path):
    text = ("1 1 0 0 0 5 -1\n2 1 0 -5 0 5 1\n3 1 0 5 0 5 1\n4 3 5 0 0 1 1\n5 3 20 0 0 1 4\n"
            "6 4 20 0 0 1 5\n7 3 20 0 0 1 6\n8 3 40 0 0 1 7\n9 3 20 10 0 1 6\n10 3 20 30 0 1 9\n")
    with pytest.warns(SWCWarning, match="removed a two-point section of zero length"):
        m = read_swc(write(tmp_path, text))
    # names are given after the removal (Import3d_GUI: chk_valid, then set_nameindex)
    assert m.section_names == ("soma[0]", "dend[0]", "dend[1]", "dend[2]")
    assert all(s.L > 0 for s in m.sections)
    assert [(s.parent, s.parent_x) for s in m.sections[2:]] == [(1, 1.0), (1, 1.0)]  # reattached


# --------------------------------------------------------------------------------------------
# Malformed files: ValueError naming the line and the problem
# --------------------------------------------------------------------------------------------

BAD = {
    "missing parent": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 3 9 0 0 1 7\n", r"line 3: parent id 7 of point 3 does not exist"),
    "cycle": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 3\n3 3 9 0 0 1 4\n4 3 12 0 0 1 2\n",
              r"line \d: the parents form a cycle: \d -> \d -> \d -> \d"),
    "own parent": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 2\n", r"line 2: point 2 is its own parent"),
    "negative radius": ("1 1 0 0 0 5 -1\n2 3 5 0 0 -1 1\n", r"line 2: negative radius -1"),
    "non-numeric": ("1 1 0 0 0 5 -1\n2 3 5 abc 0 1 1\n", r"line 2: y 'abc' is not a number"),
    "non-numeric id": ("1 1 0 0 0 5 -1\nx 3 5 0 0 1 1\n", r"line 2: id 'x' is not a number"),
    "non-integer parent": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 1.5\n", r"line 2: parent '1.5' is not an integer"),
    "nan": ("1 1 0 0 0 5 -1\n2 3 nan 0 0 1 1\n", r"line 2: x is 'nan'; it must be finite"),
    "too few columns": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1\n", r"line 2: expected 7 columns .* got 6"),
    "too many columns": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 1 9\n", r"line 2: expected 7 columns .* got 8"),
    "duplicate id": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n2 3 9 0 0 1 1\n", r"line 3: duplicate id 2 \(first used on line 2\)"),
    "two roots": ("1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 1 50 0 0 5 -1\n",
                  r"2 roots \(parent -1\) at line 1 .*line 3 .*single tree.*pieces of one soma"),
    "empty": ("# only a header\n\n", r"no data lines"),
    "huge radii": ("1 1 0 0 0 5000 -1\n2 3 5 0 0 800 1\n3 3 9 0 0 700 2\n", r"implausible size.*scale=1e-3"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_files_raise_naming_the_line(tmp_path, case):
    text, pattern = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=pattern) as info:
        read_swc(path)
    assert str(path) in str(info.value)


def test_parent_after_child_reorders_or_raises(tmp_path):
    text = "1 1 0 0 0 5 -1\n2 3 20 0 0 1 3\n3 3 5 0 0 1 1\n"
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=r"line 2: parent id 3 comes after its child id 2"):
        read_swc(path, reorder=False)
    with pytest.warns(SWCWarning, match="1 points come before their parent"):
        m = read_swc(path)
    assert m.swc.id.tolist() == [1, 3, 2] and m["dend[0]"].L == pytest.approx(15.0)


def test_unsorted_ids_are_sorted_silently_like_import3d(tmp_path):
    text = "3 3 20 0 0 1 2\n1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_swc(write(tmp_path, text))
    assert m.swc.id.tolist() == [1, 2, 3] and m.swc.line.tolist() == [2, 3, 1]


def test_bad_arguments(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ValueError, match="scale must be a positive"):
        read_swc(path, scale=0.0)
    with pytest.raises(ValueError, match="min_radius_um must be a positive"):
        read_swc(path, min_radius_um=-1.0)


def test_top_level_exports():
    assert bf.read_swc is read_swc and bf.Morphology is Morphology and bf.CompartmentTree is CompartmentTree
    assert re.search("Morphology", repr(read_swc(ref_file("ball_and_stick.swc"))))
