"""SWC points -> sections, exactly as NEURON's Import3d does it.

A line-by-line port of `Import3d_SWC_read` (`sectionify`, `mark_branch`, `mksections`,
`neuromorph_3point_soma`; NEURON's lib/hoc/import3d/read_swc.hoc) and of the parts of
`Import3d_GUI.instantiate` that shape the cell (`chk_valid`, section naming, `sphere_rep`, the
"wire" first point; import3d_gui.hoc), so that a cell loaded here has NEURON's sections, names,
connection points and 3D points.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._swc import SWCPoints


@dataclasses.dataclass
class RawSection:
    """One section as Import3d builds it, before it is turned into a `Section`."""

    type: int
    pts: list[int]  # point indices; for non-root sections pts[0] is the parent point (a copy)
    d: np.ndarray  # diameters of pts (um), d[0] possibly replaced as Import3d does
    parent: int = -1  # index into the section list
    parentx: float = 1.0
    first: int = 0  # 1: the first point is a "wire" to the parent, not part of the geometry
    id: int = 0  # Import3d's `id`: index of the first own point


def type_to_name(t: int) -> str:
    """Import3d's `type2name`: 1 soma, 2 axon, 3 dend, 4 apic, other t >= 0 dend_t, t < 0 minus_t."""
    t = int(t)
    if t == 1:
        return "soma"
    if t == 2:
        return "axon"
    if t == 3:
        return "dend"
    if t == 4:
        return "apic"
    if t < 0:
        return f"minus_{-t}"
    return f"dend_{t}"


def sectionify(pts: SWCPoints) -> tuple[list[RawSection], dict]:
    """Import3d_SWC_read's `sectionify` + `mksections`: returns the sections and a dict of notes
    (`soma3geom`: the NeuroMorpho three-point soma was recognised)."""
    n = len(pts)
    typ = pts.type.tolist()
    parent = pts.parent.tolist()  # local copy: neuromorph_3point_soma edits it
    xyz = as_read(pts)[:, :3]
    d = (2.0 * as_read(pts)[:, 3]).tolist()

    def pix(i):
        return parent[i]

    # ---- mark_branch ----
    nchild = [0.0] * n
    connect2prox = [0] * n
    for i in range(n):
        p = pix(i)
        if p >= 0:
            nchild[p] += 1
            if p != i - 1:
                nchild[p] += 0.01
                if p > 1:
                    if typ[p] != 1 and typ[pix(p)] == 1:
                        connect2prox[i] = 1
                        nchild[p] = 1
                elif p == 0:
                    if typ[p] != 1:
                        connect2prox[i] = 1
                        nchild[p] = 1
            if typ[p] != typ[i]:
                nchild[p] += 0.01

    # ---- sectionify ----
    nchild_soma = [0] * n
    nsoma_pts = 1 if typ[0] == 1 else 0
    for i in range(1, n):
        if typ[i] == 1:
            nsoma_pts += 1
            p = pix(i)
            if p >= 0 and typ[p] == 1:
                nchild_soma[p] += 1

    soma3geom = False
    if nsoma_pts == 3 and n >= 3:  # neuromorph_3point_soma
        if pix(1) == 0 and pix(2) == 0 and nchild[1] == 0 and nchild[2] == 0:
            if d[1] == d[0] and d[2] == d[0] and d[0] > 0:
                length = sum(math.sqrt(float(np.sum((xyz[i] - xyz[0]) ** 2))) for i in (1, 2))
                if abs(length / d[0] - 1) < 0.01:
                    soma3geom = True
                    parent[2] = 1  # "prevent treating as two soma sections"

    for i in range(n - 1):
        if typ[i] == 1 and typ[i + 1] == 1 and pix(i + 1) == i:
            if i != 0 and nchild_soma[i] > 1:
                pass  # more than one soma child: the soma branches here
            else:
                nchild[i] = 1  # not a section end

    sec2point = [i for i in range(n) if nchild[i] != 1]
    point2sec = [0] * n
    si = 0
    for i in range(1, n):
        if i > sec2point[si]:
            si += 1
        point2sec[i] = si

    # ---- mksections ----
    sections: list[RawSection] = []

    def pt2sec(i):
        return point2sec[i]

    def mksection(isec, first, i):
        if isec == 0:
            if soma3geom:
                i = 1
            sec = RawSection(type=typ[first], pts=list(range(first, i)), d=np.array(d[first:i]), id=first)
        else:
            sec = RawSection(type=typ[first], pts=[pix(first)] + list(range(first, i)),
                             d=np.array([d[pix(first)]] + d[first:i]), id=first)
            sec.parent = pt2sec(pix(first))
            psec = sections[sec.parent]
            den_con_soma = psec.type == 1 and typ[first] != 1
            con_soma = psec.type == 1
            handled = False
            if sec.parent == 0:  # connect to root
                handled = True
                if den_con_soma and psec.d.size == 1:  # single point soma
                    sec.parentx = 0.5
                    if i - first > 1:
                        sec.first = 1
                elif pix(first) == psec.id:  # first point of the root
                    sec.parentx = 0.0
                    if typ[first] != 1 and nchild_soma[pix(first)] > 1:
                        sec.first = 1
                else:
                    handled = False
            if not handled and con_soma:
                offset = -1 if psec.id == 0 else -2
                if pix(first) < psec.id + psec.d.size + offset:
                    # not the last point of the soma: interior connection
                    sec.parentx = 0.5
                    if den_con_soma and i - first > 1:
                        sec.first = 1
                elif i - first > 1 and nchild_soma[pix(first)] > 1:
                    if typ[first] != 1:
                        sec.first = 1
        sections.append(sec)
        if sec.parent >= 0 and sections[sec.parent].type == 1 and sec.type != 1:
            sec.d[0] = sec.d[1]
        if connect2prox[first]:
            sec.parentx = 0.0

    isec, first = 0, 0
    for i in range(n):
        if point2sec[i] > isec:
            mksection(isec, first, i)
            isec += 1
            first = i
    mksection(isec, first, n)
    return sections, {"soma3geom": soma3geom}


def as_read(pts: SWCPoints) -> np.ndarray:
    """`(n, 4)` x, y, z, radius as Import3d_SWC_read holds them: its `sscanf("%f ...")` reads
    single precision (float64 arrays of float32 values)."""
    if pts.read32 is not None:
        return pts.read32
    vals = np.column_stack([pts.xyz, pts.radius])
    return vals.astype(np.float32).astype(np.float64)


def check_valid(sections: list[RawSection], xyz: np.ndarray) -> list[tuple[RawSection, str]]:
    """Import3d_GUI's `chk_valid`: remove (non-root) one-point sections and two-point sections of
    zero length, reattaching their children to their parent. Edits `sections` in place; returns
    the removed sections with the reason."""
    removed = []
    for i in range(len(sections) - 1, -1, -1):
        sec = sections[i]
        if sec.parent < 0:
            continue
        own = len(sec.pts) - sec.first
        if own <= 1:
            why = "one-point section"
        elif own <= 2 and np.array_equal(xyz[sec.pts[sec.first]], xyz[sec.pts[sec.first + 1]]):
            why = "two-point section of zero length"
        else:
            continue
        removed.append((sec, why))
        # rm0len: drop it, reattach the children (which come after it), renumber parents
        del sections[i]
        for s in sections[i:]:
            if s.parent == i:
                s.parent = sec.parent
                s.parentx = sec.parentx
        for s in sections:
            if s.parent > i:
                s.parent -= 1
    return removed


def neuron_pt3d(values: np.ndarray) -> np.ndarray:
    """What NEURON stores for 3D values: C `float` (its `Pt3d` holds floats), returned as float64.

    This is `Import3d_GUI.instantiate(cell)` for a Python cell object, which passes the values to
    `pt3dadd` as numbers. `instantiate(None)` (hoc) first prints them with "%.8g", which can move a
    coordinate by one more float32 step (~1e-6 relative on a section's length); see
    docs/morphology.md.
    """
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def instantiate(pts: SWCPoints):
    """Sections as `Import3d_GUI(r, 0).instantiate(None)` creates them.

    Returns `(sections, notes)`: `sections` is a list of dicts (name, type, parent, parent_x,
    xyz (m, 3), diam (m,), wire, lines) in Import3d's order; `notes` has `soma3geom` and `removed`.
    """
    raw, notes = sectionify(pts)
    xyz_read = as_read(pts)[:, :3]
    notes["removed"] = check_valid(raw, xyz_read)
    counts: dict[int, int] = {}
    out = []
    for sec in raw:
        k = counts.get(sec.type, 0)
        counts[sec.type] = k + 1
        idx = sec.pts[sec.first:]
        xyz = xyz_read[idx]
        dd = sec.d[sec.first:]
        if dd.size == 1:  # sphere_rep: a 3-point cylinder along x with L = diam
            c, dia = xyz[0], dd[0]
            xyz = np.array([[c[0] - dia / 2, c[1], c[2]], c, [c[0] + dia / 2, c[1], c[2]]])
            dd = np.full(3, dia)
        out.append(dict(name=f"{type_to_name(sec.type)}[{k}]", type=sec.type, parent=sec.parent,
                        parent_x=sec.parentx, xyz=neuron_pt3d(xyz), diam=neuron_pt3d(dd),
                        wire=bool(sec.first), lines=tuple(int(pts.line[i]) for i in idx)))
    return out, notes
