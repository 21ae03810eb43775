"""Morphologies against NEURON itself: the same SWC loaded with NEURON's Import3d
(`Import3d_SWC_read` + `Import3d_GUI(r, 0).instantiate`) and with `read_swc`, the same nseg
(d_lambda rule and fixed): same sections and connections, same compartments, NEURON's
`seg.area()`, `seg.ri()` and `h.distance`, and the same segment lookup."""

import warnings

import jax
import numpy as np
import pytest

from brainfuse_jax.morphology import SWCWarning, read_swc

from ._neuron_morph import neuron_geometry, write_swc
from .conftest import ref_file

pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")

LOCATE_X = (0.05, 0.2, 1 / 3, 0.5, 0.6, 0.8, 0.99)

# The brief's bar is 0.1 % on total area; we reproduce NEURON's arithmetic, so per segment too.
TOTAL_AREA_RTOL = 1e-3
SEGMENT_RTOL = 1e-9


def compare_with_neuron(morph, swc_path, *, nseg=None, Ra=35.4, cm=1.0, check_locate=False, dist_atol=1e-9):
    """Compare `morph.compartmentalize(nseg, Ra=Ra, cm=cm)` with NEURON on `swc_path`; returns
    the measured agreement (asserting it on the way)."""
    with jax.enable_x64(True):
        tree = morph.compartmentalize(nseg, Ra=Ra, cm=cm)
    nrn = neuron_geometry(swc_path, nseg=nseg, Ra=Ra, cm=cm, locate_x=LOCATE_X if check_locate else ())
    names = tree.section_names
    assert sorted(names) == sorted(nrn), "Import3d made different sections"
    area, ri = np.asarray(tree.area_um2), np.asarray(tree.ri_MOhm)
    dist, x = np.asarray(tree.dist_um), np.asarray(tree.x)
    mem = tree.is_membrane
    err_area, err_ri, err_dist = [0.0], [0.0], [0.0]
    junctions = 0
    for s, name in enumerate(names):
        ref = nrn[name]
        sec = morph.sections[s]
        # topology: parent section and connection point as NEURON's parentseg()
        if sec.parent < 0:
            assert ref["parent"] is None
        else:
            assert (names[sec.parent], sec.parent_x) == (ref["parent"], ref["parent_x"]), name
        idx = np.flatnonzero((tree.section == s) & mem)
        assert idx.size == ref["nseg"], f"{name}: nseg {idx.size} vs NEURON {ref['nseg']}"
        # zero-area nodes where >= 2 children meet, as in NEURON's matrix
        n_kids_end = ref["n_children_at_1"] + (ref["n_children_at_0"] if sec.parent < 0 else 0)
        junctions += int(ref["n_children_at_1"] >= 2) + int(sec.parent < 0 and ref["n_children_at_0"] >= 2)
        assert n_kids_end >= 0
        # areas
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(ref["area"] > 0, np.abs(area[idx] / ref["area"] - 1), np.abs(area[idx]))
        err_area.append(float(rel.max()))
        # ri: NEURON's seg.ri(), plus the eliminated zero-area node on the path to the parent
        expected = ref["ri"].copy()
        first_parent = tree.parent[idx[0]]
        if first_parent < 0:
            expected[0] = 0.0
        elif mem[first_parent] and sec.parent_x in (0.0, 1.0) and sec.parent >= 0:
            pref = nrn[names[sec.parent]]
            expected[0] += pref["ri_end"] if sec.parent_x == 1.0 else pref["ri"][0]
        assert tree.parent[idx[0]] == (-1 if sec.parent < 0 and first_parent < 0 else
                                       tree.locate(names[sec.parent], sec.parent_x) if sec.parent >= 0 else 0)
        err_ri.append(float(np.max(np.abs(ri[idx] - expected) / np.maximum(expected, 1e-300))))
        err_dist.append(float(np.max(np.abs(dist[idx] - ref["dist"]))))
        for xx, loc in zip(LOCATE_X if check_locate else (), ref["loc"]):
            assert x[tree.locate(name, xx)] == pytest.approx(loc, abs=1e-12), (name, xx)
    assert tree.n_nodes - tree.n_compartments == junctions
    total_ours = float(area.sum())
    total_nrn = float(sum(r["area"].sum() for r in nrn.values()))
    rel_total = abs(total_ours / total_nrn - 1) if total_nrn > 0 else abs(total_ours)
    out = dict(sections=len(names), compartments=tree.n_compartments,
               compartments_neuron=int(sum(r["nseg"] for r in nrn.values())), total_area_rel=rel_total,
               max_area_rel=max(err_area), max_ri_rel=max(err_ri), max_dist_um=max(err_dist))
    assert out["compartments"] == out["compartments_neuron"]
    assert rel_total <= TOTAL_AREA_RTOL
    assert out["max_area_rel"] <= SEGMENT_RTOL and out["max_ri_rel"] <= SEGMENT_RTOL, out
    assert out["max_dist_um"] <= dist_atol
    return out


def morph_file(name):
    return ref_file(name, "morphologies")


@pytest.mark.parametrize("nseg", [None, 3], ids=["d_lambda", "nseg3"])
@pytest.mark.parametrize("name", ["ca1_n120.swc", "allen_485574832.swc", "l5pc_with_axon.swc"])
def test_reference_morphology_matches_neuron(name, nseg):
    path = morph_file(name)
    m = read_swc(path)
    compare_with_neuron(m, path, nseg=nseg, check_locate=(nseg is None and name == "ca1_n120.swc"))


def test_ball_and_stick_swc_matches_neuron_and_reference():
    path = ref_file("ball_and_stick.swc")
    m = read_swc(path)
    compare_with_neuron(m, path, nseg=None, Ra=100.0)
    compare_with_neuron(m, path, nseg=51, Ra=100.0)


@pytest.mark.parametrize("nseg", [None, 3], ids=["d_lambda", "nseg3"])
def test_flywire_matches_neuron_after_unit_and_order_fix(tmp_path, nseg):
    # NEURON's Import3d rejects this file (parents after children); compare on the same points
    # in um and in parent-first order, which is what read_swc loads.
    with pytest.warns(SWCWarning):
        m = read_swc(morph_file("flywire_t4_720575940626407426.swc"))
    fixed = tmp_path / "flywire_um_sorted.swc"
    write_swc(fixed, m.swc)
    with pytest.warns(SWCWarning, match="have radius 0"):
        m_fixed = read_swc(fixed)
    assert m_fixed.section_names == m.section_names
    compare_with_neuron(m_fixed, fixed, nseg=nseg)


def test_retina_matches_neuron_with_zero_radii_and_with_min_radius(tmp_path):
    path = morph_file("retina_20161028_1.swc")
    with pytest.warns(SWCWarning):
        m = read_swc(path)
    # zero area and NEURON's 1e15 resistances: the same numbers. (NEURON gives the zero-length
    # soma L = 1e-9 um, which shows in h.distance.)
    compare_with_neuron(m, path, nseg=3, dist_atol=1e-8)
    with pytest.warns(SWCWarning):
        m2 = read_swc(path, min_radius_um=0.2)
    fixed = tmp_path / "retina_r02.swc"
    write_swc(fixed, m2.swc)
    compare_with_neuron(read_swc(fixed), fixed, nseg=None)


def test_per_region_Ra_cm_match_neuron():
    path = morph_file("ca1_n120.swc")
    m = read_swc(path)
    Ra = {"soma": 100.0, "dend": 200.0, "apic": 150.0}
    cm = {"soma": 1.0, "dend": 2.0, "apic": 0.75}
    compare_with_neuron(m, path, nseg=None, Ra=Ra, cm=cm)


SYNTHETIC = {
    "single_point_soma": "1 1 0 0 0 6 -1\n2 3 6 0 0 1 1\n3 3 20 0 0 1 2\n4 3 30 5 0 0.5 3\n5 3 30 -5 0 0.5 3\n"
                         "6 2 -6 0 0 0.5 1\n7 2 -20 0 0 0.5 6\n",
    "three_point_soma": "1 1 0 0 0 5 -1\n2 1 0 -5 0 5 1\n3 1 0 5 0 5 1\n4 3 5 0 0 1 1\n5 3 15 0 0 1 4\n"
                        "6 3 25 5 0 0.5 5\n7 3 35 10 0 0.5 6\n8 3 25 -5 0 0.5 5\n9 2 -5 0 0 0.5 1\n"
                        "10 2 -30 0 0 0.5 9\n",
    "cylinder_stack_soma": "1 1 0 0 0 2 -1\n2 1 0 2 0 4 1\n3 1 0 4 0 5 2\n4 1 0 6 0 4 3\n5 1 0 8 0 2 4\n"
                           "6 4 0 10 0 1 5\n7 4 0 50 0 1 6\n8 3 0 -2 0 1 1\n9 3 0 -40 0 1 8\n"
                           "10 3 3 4 0 1 3\n11 3 30 4 0 1 10\n",
    "branched_soma": "1 1 0 0 0 5 -1\n2 1 0 3 0 4 1\n3 1 0 6 0 3 2\n4 1 0 -3 0 4 1\n5 1 0 -6 0 3 4\n"
                     "6 4 0 10 0 1 3\n7 4 0 40 0 1 6\n8 3 0 -10 0 1 5\n9 3 0 -40 0 1 8\n"
                     "10 3 5 -40 0 1 9\n11 3 -5 -45 0 1 9\n",
    "custom_types": "1 1 0 0 0 5 -1\n2 7 0 5 0 1 1\n3 7 0 20 0 1 2\n4 0 0 -5 0 1 1\n5 0 0 -20 0 1 4\n"
                    "6 0 5 -30 0 1 5\n7 0 -5 -30 0 1 5\n",
    "wire_and_proximal_branch": "1 1 0 0 0 6 -1\n2 3 10 0 0 1 1\n3 3 20 0 0 1 2\n4 3 30 0 0 1 3\n"
                                "5 3 10 10 0 1 2\n6 3 10 20 0 1 5\n",
    "zero_length_section": "1 1 0 0 0 5 -1\n2 1 0 -5 0 5 1\n3 1 0 5 0 5 1\n4 3 5 0 0 1 1\n5 3 20 0 0 1 4\n"
                           "6 4 20 0 0 1 5\n7 3 20 0 0 1 6\n8 3 40 0 0 1 7\n9 3 20 10 0 1 6\n"
                           "10 3 20 30 0 1 9\n",
    "type_change_mid_branch": "1 1 0 0 0 5 -1\n2 3 5 0 0 1 1\n3 3 15 0 0 1 2\n4 4 25 0 0 0.8 3\n"
                              "5 4 35 0 0 0.6 4\n6 3 25 8 0 0.5 3\n",
}


@pytest.mark.parametrize("nseg", [None, 2], ids=["d_lambda", "nseg2"])
@pytest.mark.parametrize("case", sorted(SYNTHETIC))
def test_soma_conventions_and_import3d_cases_match_neuron(tmp_path, case, nseg):
    path = tmp_path / f"{case}.swc"
    path.write_text(SYNTHETIC[case])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SWCWarning)  # zero_length_section warns (tested elsewhere)
        m = read_swc(path)
    compare_with_neuron(m, path, nseg=nseg, check_locate=True)


def test_hoc_instantiate_none_matches():
    """The brief's exact NEURON call, `Import3d_GUI(r, 0).instantiate(None)` (run in a subprocess:
    it creates global sections). It prints 3D points with "%.8g" before `pt3dadd`, which changes
    nothing for these files (<= 8 significant digits); read_swc follows the Python-object path,
    which differs by a float32 step only for files with longer numbers (see docs/morphology.md)."""
    from ._neuron_morph import neuron_geometry_hoc

    paths = [morph_file(n) for n in ("ca1_n120.swc", "allen_485574832.swc", "l5pc_with_axon.swc")]
    paths.append(ref_file("ball_and_stick.swc"))
    ref = neuron_geometry_hoc(paths, nseg=None)
    for path in paths:
        nrn = ref[str(path)]
        with jax.enable_x64(True):
            tree = read_swc(path).compartmentalize()
        area, ri = np.asarray(tree.area_um2), np.asarray(tree.ri_MOhm)
        assert sorted(nrn) == sorted(tree.section_names)
        assert tree.n_compartments == sum(v["nseg"] for v in nrn.values())
        total = sum(v["area"].sum() for v in nrn.values())
        assert abs(area.sum() / total - 1) < SEGMENT_RTOL
        for s, name in enumerate(tree.section_names):
            idx = np.flatnonzero((tree.section == s) & tree.is_membrane)
            np.testing.assert_allclose(area[idx], nrn[name]["area"], rtol=SEGMENT_RTOL)
            # (first segments' ri may include a merged parent half segment: checked above)
            np.testing.assert_allclose(ri[idx[1:]], nrn[name]["ri"][1:], rtol=SEGMENT_RTOL)
