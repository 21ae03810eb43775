"""Load SWC files with NEURON's own Import3d and read back its geometry; imported only by tests."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np


class _Cell:
    """Holder for Import3d's sections (instantiated into a Python object, so that they are freed
    with it and never collide with other tests' sections)."""


def _point_process_x(h, sec, x):
    stim = h.IClamp(sec(x))
    x_node = stim.get_loc()  # pushes the section
    h.pop_section()
    return x_node


def write_swc(path, pts) -> None:
    """Write an `SWCPoints` table (parents first) as a plain SWC file, ids renumbered 1..n."""
    lines = []
    for i in range(len(pts)):
        p = int(pts.parent[i])
        x, y, z = pts.xyz[i]
        r = float(pts.radius[i])
        lines.append(f"{i + 1} {int(pts.type[i])} {float(x)!r} {float(y)!r} {float(z)!r} {r!r} "
                     f"{p + 1 if p >= 0 else -1}")
    path.write_text("\n".join(lines) + "\n")


def _region_value(value, name):
    if isinstance(value, dict):
        return value[name.split("[")[0]]
    return value


def neuron_geometry(path, *, nseg=None, d_lambda=0.1, freq=100.0, Ra=35.4, cm=1.0, locate_x=()):
    """Import `path` with `Import3d_SWC_read` + `Import3d_GUI(r, 0).instantiate(cell)`, set Ra,
    cm (numbers or dicts by region, e.g. {"soma": 100, "dend": 200}) and nseg (an int, or None for
    the d_lambda rule `int((L/(d_lambda*lambda_f(freq))+0.9)/2)*2+1` computed with NEURON's own
    `lambda_f`), and return per section (by Import3d name):
    `dict(nseg, L, parent, parent_x, area [nseg], ri [nseg], ri_end, dist [nseg], dist_end,
    n_children_at_1, n_children_at_0, loc [len(locate_x)])` in NEURON's units (um2, MOhm, um):
    `dist` is `h.distance(soma[0](0.5), seg)` (from the root section's 0 end if there is no soma),
    `loc` the node x where NEURON puts a point process placed at each of `locate_x`."""
    from neuron import h

    h.load_file("stdlib.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_SWC_read()
    reader.quiet = 1
    reader.input(str(path))
    cell = _Cell()
    h.Import3d_GUI(reader, False).instantiate(cell)
    prefix = len(str(cell)) + 1
    secs = list(cell.all)
    try:
        for sec in secs:
            sec.Ra = _region_value(Ra, sec.name()[prefix:])
            sec.cm = _region_value(cm, sec.name()[prefix:])
        for sec in secs:
            if nseg is None:
                sec.nseg = int((sec.L / (d_lambda * h.lambda_f(freq, sec=sec)) + 0.9) / 2) * 2 + 1
            else:
                sec.nseg = nseg
        somas = [s for s in secs if s.name()[prefix:] == "soma[0]"]
        origin = somas[0](0.5) if somas else next(s for s in secs if s.parentseg() is None)(0.0)
        out = {}
        for sec in secs:
            name = sec.name()[prefix:]
            ps = sec.parentseg()
            kids = [c for c in h.SectionRef(sec=sec).child]
            out[name] = dict(
                nseg=sec.nseg, L=sec.L,
                parent=None if ps is None else ps.sec.name()[prefix:],
                parent_x=None if ps is None else ps.x,
                area=np.array([seg.area() for seg in sec]),
                ri=np.array([seg.ri() for seg in sec]),
                ri_end=sec(1).ri(),
                dist=np.array([h.distance(origin, seg) for seg in sec]),
                dist_end=h.distance(origin, sec(1)),
                loc=np.array([_point_process_x(h, sec, x) for x in locate_x]),
                n_children_at_1=sum(1 for c in kids if c.parentseg().x == 1.0),
                n_children_at_0=sum(1 for c in kids if c.parentseg().x == 0.0),
            )
        return out
    finally:
        del secs
        del cell


_HOC_SCRIPT = r"""
import json, sys
from neuron import h
h.load_file("stdlib.hoc")
h.load_file("import3d.hoc")
out = {}
for path in sys.argv[2:]:
    r = h.Import3d_SWC_read()
    r.quiet = 1
    r.input(path)
    h.Import3d_GUI(r, 0).instantiate(None)
    cell = {}
    for sec in h.allsec():
        sec.Ra, sec.cm = 35.4, 1.0
        nseg = sys.argv[1]
        if nseg == "d_lambda":
            sec.nseg = int((sec.L / (0.1 * h.lambda_f(100.0, sec=sec)) + 0.9) / 2) * 2 + 1
        else:
            sec.nseg = int(nseg)
        cell[sec.name()] = dict(nseg=sec.nseg, L=sec.L, area=[seg.area() for seg in sec],
                                ri=[seg.ri() for seg in sec])
    out[path] = cell
    h("forall delete_section()")
print(json.dumps(out))
"""


def neuron_geometry_hoc(paths, *, nseg=None):
    """The brief's exact call, `Import3d_GUI(r, 0).instantiate(None)` (hoc sections, which pass
    3D points through "%.8g"), in a subprocess (it creates global `soma[]`, `dend[]`, ...):
    per path, per section name `dict(nseg, L, area, ri)` (Ra 35.4, cm 1)."""
    arg = "d_lambda" if nseg is None else str(nseg)
    res = subprocess.run([sys.executable, "-c", _HOC_SCRIPT, arg, *map(str, paths)], capture_output=True,
                         text=True, check=True, timeout=600)
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return {p: {k: {**v, "area": np.array(v["area"]), "ri": np.array(v["ri"])} for k, v in cell.items()}
            for p, cell in data.items()}
