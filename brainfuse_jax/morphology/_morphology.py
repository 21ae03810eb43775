"""`Section`, `Morphology` and `read_swc`: a cell's geometry as NEURON's sections."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ._geometry import d_lambda_nseg, neuron_arc
from ._import3d import instantiate, type_to_name
from ._swc import SWCPoints, SWCWarning, parse_swc
from ._tree import CompartmentTree

_NAME_TYPES = {"soma": 1, "axon": 2, "dend": 3, "apic": 4}

# NEURON's defaults
RA_DEFAULT = 35.4  # ohm cm
CM_DEFAULT = 1.0  # uF/cm2


@dataclasses.dataclass(frozen=True, eq=False)
class Section:
    """One unbranched cable, as a NEURON section (`h.Section`).

    **Fields:**
    - `name`: e.g. `"dend[3]"`.
    - `swc_type`: SWC type code (1 soma, 2 axon, 3 basal, 4 apical, others as in the file).
    - `parent`: index of the parent section in `Morphology.sections`, -1 for the root.
    - `parent_x`: where the section's 0 end attaches on its parent (0..1), as `connect`.
    - `arc`, `diam`: arc length from the 0 end (um) and diameter (um) at each 3D point (>= 2
      points); the diameter is linear in arc length between points.
    - `xyz`: `(n, 3)` positions of the 3D points (um), or None for a section given by `L, diam`.
    - `lines`: SWC line of each 3D point (empty if not from a file), for messages.
    """

    name: str
    swc_type: int
    parent: int
    parent_x: float
    arc: np.ndarray
    diam: np.ndarray
    xyz: np.ndarray | None = None
    lines: tuple[int, ...] = ()

    @property
    def L(self) -> float:
        """Length, um (NEURON's `sec.L`: the arc length of the last 3D point)."""
        return float(self.arc[-1])

    @property
    def area_um2(self) -> float:
        """Lateral membrane area of the whole section, um2 (sum of the frusta; does not depend
        on nseg)."""
        d1, d2 = self.diam[:-1], self.diam[1:]
        dx = np.diff(self.arc)
        return float(np.sum(np.pi / 2 * (d1 + d2) * np.sqrt(dx * dx + 0.25 * (d2 - d1) ** 2)))

    def __repr__(self):
        par = "root" if self.parent < 0 else f"parent {self.parent} at x={self.parent_x:g}"
        return (f"Section({self.name!r}, type {self.swc_type}, L={self.L:.4g} um, "
                f"{self.arc.shape[0]} points, {par})")


def _resolve(value, what: str, sections: Sequence[Section], unit: str, *, positive=True):
    """A per-section value from a scalar or a dict keyed by section name ("dend[3]"), region name
    ("dend", "soma", ...: the name before "["), SWC type code (int) or "default"."""
    def check(v, where):
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{what}{where} must be a number ({unit}), got {type(v).__name__}") from None
        if not math.isfinite(v) or (v <= 0 if positive else v < 0):
            raise ValueError(f"{what}{where} must be {'> 0' if positive else '>= 0'} {unit}, got {v}")
        return v

    if isinstance(value, Mapping):
        out = []
        for s in sections:
            region = s.name.split("[")[0]
            for key in (s.name, region, s.swc_type, "default"):
                if key in value:
                    out.append(check(value[key], f"[{key!r}]"))
                    break
            else:
                raise ValueError(f"{what} has no value for section {s.name!r} (type {s.swc_type}); "
                                 f"keys may be section names, regions ('{region}'), SWC type codes "
                                 f"or 'default'")
        names = {s.name for s in sections} | {s.name.split("[")[0] for s in sections} \
            | {s.swc_type for s in sections} | {"default"}
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"{what} has keys that match no section: {unknown!r}")
        return out
    v = check(value, "")
    return [v] * len(sections)


class Morphology:
    """A neuron's sections: their 3D geometry and how they connect (NEURON's section tree).

    Build one with `read_swc` (sections exactly as NEURON's Import3d makes them) or
    `Morphology.from_sections` (like creating and connecting `h.Section`s); turn it into
    compartments with `compartmentalize`.
    """

    sections: tuple[Section, ...]
    swc: SWCPoints | None

    def __init__(self, sections: Sequence[Section], swc: SWCPoints | None = None):
        sections = tuple(sections)
        if not sections:
            raise ValueError("a Morphology needs at least one section")
        names = [s.name for s in sections]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"section names must be unique, repeated: {sorted(dup)}")
        roots = [i for i, s in enumerate(sections) if s.parent < 0]
        if roots != [0]:
            raise ValueError(f"sections must form one tree with the root first, parents before "
                             f"children; roots at {roots}")
        for i, s in enumerate(sections):
            if i > 0 and not 0 <= s.parent < i:
                raise ValueError(f"section {s.name!r}: parent index {s.parent} must refer to an "
                                 f"earlier section")
            if not 0.0 <= s.parent_x <= 1.0:
                raise ValueError(f"section {s.name!r}: parent_x must be in [0, 1], got {s.parent_x}")
        self.sections = sections
        self.swc = swc
        self._index = {n: i for i, n in enumerate(names)}

    # ------------------------------------------------------------------------------- building
    @classmethod
    def from_sections(cls, specs: Sequence[Mapping | Section]) -> Morphology:
        """Build a morphology section by section, as with `h.Section` and `connect`.

        Each spec is a dict with:
        - `name` (str, optional): defaults to NEURON's Import3d naming by type (`"dend[0]"`, ...).
        - either `L` and `diam` (um; a cylinder) or `points`: `(n, 4)` rows `x, y, z, diam` (um,
          n >= 2), like `pt3dadd` (stored in single precision, as NEURON does).
        - `parent` (name or index of an earlier section; omitted for the root) and `parent_x`
          (0..1, default 1.0: like `child.connect(parent(parent_x))`).
        - `swc_type` (int, optional): defaults from the name (soma 1, axon 2, dend 3, apic 4,
          else 0).

        Example: `Morphology.from_sections([dict(name="soma", L=20, diam=20),
        dict(name="dend", L=500, diam=2, parent="soma", parent_x=0.5)])` is NEURON's
        ball-and-stick with `dend.connect(soma(0.5))`.
        """
        specs = list(specs)
        built: list[Section] = []
        names: list[str] = []
        counts: dict[int, int] = {}
        for i, spec in enumerate(specs):
            if isinstance(spec, Section):
                built.append(spec)
                names.append(spec.name)
                continue
            if not isinstance(spec, Mapping):
                raise TypeError(f"section spec {i} must be a dict or a Section, got {type(spec).__name__}")
            unknown = set(spec) - {"name", "L", "diam", "points", "parent", "parent_x", "swc_type"}
            if unknown:
                raise ValueError(f"section spec {i}: unknown keys {sorted(unknown)}")
            name = spec.get("name")
            swc_type = spec.get("swc_type")
            if swc_type is None:
                swc_type = _NAME_TYPES.get(str(name).split("[")[0], 0) if name is not None else 3
            swc_type = int(swc_type)
            if name is None:
                k = counts.get(swc_type, 0)
                name = f"{type_to_name(swc_type)}[{k}]"
            counts[swc_type] = counts.get(swc_type, 0) + 1
            label = f"section {name!r}"
            if "points" in spec:
                if "L" in spec or "diam" in spec:
                    raise ValueError(f"{label}: give either points or L and diam, not both")
                pts = np.asarray(spec["points"], dtype=np.float64)
                if pts.ndim != 2 or pts.shape[1] != 4 or pts.shape[0] < 2:
                    raise ValueError(f"{label}: points must have shape (n >= 2, 4) (x, y, z, diam in "
                                     f"um), got {pts.shape}")
                if not np.all(np.isfinite(pts)):
                    raise ValueError(f"{label}: points must be finite")
                if np.any(pts[:, 3] < 0):
                    raise ValueError(f"{label}: diameters must be >= 0 um")
                xyz32 = pts[:, :3].astype(np.float32)
                arc = neuron_arc(xyz32)
                xyz = xyz32.astype(np.float64)
                diam = pts[:, 3].astype(np.float32).astype(np.float64)
                if arc[-1] <= 0:
                    raise ValueError(f"{label}: the points have zero total length")
            else:
                if "L" not in spec or "diam" not in spec:
                    raise ValueError(f"{label}: give L and diam (um) or points")
                L, d = float(spec["L"]), float(spec["diam"])
                if not (math.isfinite(L) and L > 0):
                    raise ValueError(f"{label}: L must be > 0 um, got {spec['L']}")
                if not (math.isfinite(d) and d > 0):
                    raise ValueError(f"{label}: diam must be > 0 um, got {spec['diam']}")
                arc, diam, xyz = np.array([0.0, L]), np.array([d, d]), None
            parent = spec.get("parent")
            if parent is None:
                pidx = -1
                if i != 0 and built:
                    raise ValueError(f"{label}: only the first section may have no parent")
            elif isinstance(parent, str):
                if parent not in names:
                    raise ValueError(f"{label}: parent {parent!r} is not an earlier section "
                                     f"(have {names})")
                pidx = names.index(parent)
            else:
                pidx = int(parent)
                if not 0 <= pidx < len(built):
                    raise ValueError(f"{label}: parent index {parent} is not an earlier section")
            px = float(spec.get("parent_x", 1.0))
            if pidx >= 0 and not 0.0 <= px <= 1.0:
                raise ValueError(f"{label}: parent_x must be in [0, 1], got {px}")
            built.append(Section(name=str(name), swc_type=swc_type, parent=pidx,
                                 parent_x=px if pidx >= 0 else 1.0, arc=arc, diam=diam, xyz=xyz))
            names.append(str(name))
        return cls(built)

    # ------------------------------------------------------------------------------- queries
    @property
    def section_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sections)

    def __len__(self) -> int:
        return len(self.sections)

    def __getitem__(self, key: str | int) -> Section:
        return self.sections[self.section_index(key)]

    def section_index(self, key: str | int) -> int:
        """Index of a section given by name (`"dend[3]"`) or index."""
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(f"no section named {key!r}")
            return self._index[key]
        i = int(key)
        if not 0 <= i < len(self.sections):
            raise IndexError(f"section index {i} out of range 0..{len(self.sections) - 1}")
        return i

    @property
    def area_um2(self) -> float:
        """Total membrane area, um2 (independent of nseg)."""
        return float(sum(s.area_um2 for s in self.sections))

    def __repr__(self):
        regions: dict[str, int] = {}
        for s in self.sections:
            r = s.name.split("[")[0]
            regions[r] = regions.get(r, 0) + 1
        desc = ", ".join(f"{k} {v}" for k, v in regions.items())
        src = f" from {os.path.basename(self.swc.path)}" if self.swc is not None and self.swc.path else ""
        return f"Morphology({len(self.sections)} sections: {desc}; area {self.area_um2:.6g} um2{src})"

    # ------------------------------------------------------------------------------- compartments
    def nseg(self, nseg: int | Mapping | None = None, *, d_lambda: float = 0.1, freq: float = 100.0,
             Ra: float | Mapping = RA_DEFAULT, cm: float | Mapping = CM_DEFAULT) -> dict[str, int]:
        """Number of segments per section (by name): `nseg` if given (an int for all sections, or
        a dict keyed like `Ra` below whose missing sections use the rule), else NEURON's d_lambda
        rule `int((L / (d_lambda * lambda_f(freq)) + 0.9) / 2) * 2 + 1` (odd; fixnseg.hoc).

        `d_lambda`: maximum segment length in AC length constants; `freq`: Hz; `Ra`: ohm cm;
        `cm`: uF/cm2 (scalars or per-region dicts, see `compartmentalize`).
        """
        return dict(zip(self.section_names, self._nseg(nseg, d_lambda, freq, Ra, cm)[0]))

    def _nseg(self, nseg, d_lambda, freq, Ra, cm):
        ras = _resolve(Ra, "Ra", self.sections, "ohm cm")
        cms = _resolve(cm, "cm", self.sections, "uF/cm2", positive=False)
        for v, what, unit in ((d_lambda, "d_lambda", "(length constants)"), (freq, "freq", "Hz")):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{what} must be > 0 {unit}, got {v!r}")
        fixed: list[int | None]
        if nseg is None:
            fixed = [None] * len(self.sections)
        elif isinstance(nseg, Mapping):
            fixed = []
            keys_ok = {s.name for s in self.sections} | {s.name.split("[")[0] for s in self.sections} \
                | {s.swc_type for s in self.sections} | {"default"}
            unknown = [k for k in nseg if k not in keys_ok]
            if unknown:
                raise ValueError(f"nseg has keys that match no section: {unknown!r}")
            for s in self.sections:
                v = None
                for key in (s.name, s.name.split("[")[0], s.swc_type, "default"):
                    if key in nseg:
                        v = nseg[key]
                        break
                fixed.append(v)
        else:
            fixed = [nseg] * len(self.sections)
        out = []
        for s, n, ra, c in zip(self.sections, fixed, ras, cms):
            if n is None:
                try:
                    n = d_lambda_nseg(s.arc, s.diam, d_lambda=d_lambda, freq=freq, Ra=ra, cm=c)
                except ValueError as err:
                    where = f" (SWC line {s.lines[0]}...)" if s.lines else ""
                    raise ValueError(f"d_lambda rule: section {s.name!r}{where}: {err}; NEURON's "
                                     f"lambda_f fails the same way. Give nseg for it, or read the "
                                     f"file with read_swc(..., min_radius_um=...)") from None
            elif isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"nseg for section {s.name!r} must be an integer >= 1, got {n!r}")
            out.append(int(n))
        return out, ras, cms

    def compartmentalize(self, nseg: int | Mapping | None = None, *, d_lambda: float = 0.1,
                         freq: float = 100.0, Ra: float | Mapping = RA_DEFAULT,
                         cm: float | Mapping = CM_DEFAULT) -> CompartmentTree:
        """Split every section into segments and return the `CompartmentTree`, as NEURON does.

        **Arguments:**
        - `nseg`: segments per section: an int for all, a dict (keys as for `Ra`; sections it
          does not cover use the d_lambda rule), or None for the d_lambda rule everywhere.
        - `d_lambda`, `freq`: the d_lambda rule's maximum segment length in AC length constants
          at `freq` Hz (NEURON book defaults 0.1 and 100 Hz).
        - `Ra`: axial resistivity, ohm cm (NEURON default 35.4).
        - `cm`: specific membrane capacitance, uF/cm2 (default 1), stored per node in the tree.
        `Ra` and `cm` are scalars or dicts keyed by section name (`"dend[3]"`), region (`"dend"`,
        `"apic"`, ...), SWC type code (`3`) or `"default"` (first match in that order).

        **Returns:** a `CompartmentTree` with NEURON's segment areas (`seg.area()`) and axial
        resistances (`seg.ri()`); see its docstring for the zero-area junction nodes.
        """
        from ._compartment import build_tree

        nsegs, ras, cms = self._nseg(nseg, d_lambda, freq, Ra, cm)
        return build_tree(self.sections, nsegs, ras, cms)


def read_swc(path: str | os.PathLike, *, scale: float | None = None, reorder: bool = True,
             min_radius_um: float | None = None) -> Morphology:
    """Read an SWC file into a `Morphology` with the sections NEURON's Import3d makes.

    Sections are the unbranched runs of same-type points (`Import3d_SWC_read`); the soma
    follows Import3d for all three SWC conventions: a single point (a sphere, represented as a
    cylinder with L = diam), NeuroMorpho's three-point soma (the same), and a stack of points (a
    cylinder stack, split into `soma[0]`, `soma[1]`, ... where it branches). Children of a
    single-point soma attach at `soma(0.5)` and start at their own first point (Import3d's "wire");
    dendrites leaving the soma take their second point's diameter at their first. Names are
    Import3d's: `soma[i]`, `axon[i]`, `dend[i]`, `apic[i]`, `dend_<t>[i]` for other type codes.

    **Arguments:**
    - `path`: the file (`id type x y z radius parent` per line, um; `#` comments).
    - `scale`: factor to um for all coordinates and radii. None: 1, or what the header declares
      (navis writes `"units": "1 nanometer"`). A file whose size is implausible in um (extent
      > 10 mm or median radius > 50 um) raises `ValueError` suggesting `scale=1e-3`, unless
      `scale` is given.
    - `reorder`: points listed before their parent (which NEURON rejects) are put in depth-first
      order with a warning; `reorder=False` raises `ValueError` instead.
    - `min_radius_um`: raise smaller radii (e.g. zeros) to this, um. None (default) keeps zero
      radii as NEURON does, with a warning.

    **Raises** `ValueError` naming the line for: a wrong column count, a non-numeric or
    non-finite field, a non-integer id/type/parent, a negative radius, duplicate ids, a missing
    parent, a cycle, several roots. **Warns** (`SWCWarning`) for what it can load: zero radii,
    points before their parent (reordered), nanometre files converted from a declared unit, soma
    points far from the soma (often an axon labelled as soma), soma pieces separated by other
    points, and Import3d's removal of zero-length sections.
    """
    pts = parse_swc(path, scale=scale, reorder=reorder, min_radius_um=min_radius_um)
    specs, notes = instantiate(pts)
    name = os.path.basename(os.fspath(path))
    for sec, why in notes["removed"]:
        warnings.warn(f"{name}: removed a {why} at line {pts.line[sec.pts[-1]]}, as NEURON's Import3d "
                      f"does; its children attach to its parent.", SWCWarning, stacklevel=2)
    sections = []
    for s in specs:
        xyz = s["xyz"]
        sections.append(Section(name=s["name"], swc_type=int(s["type"]), parent=int(s["parent"]),
                                parent_x=float(s["parent_x"]), arc=neuron_arc(xyz), diam=s["diam"],
                                xyz=xyz, lines=s["lines"]))
    morph = Morphology(sections, swc=pts)
    _check_soma(morph, pts, name)
    return morph


def _check_soma(morph: Morphology, pts: SWCPoints, name: str) -> None:
    """Warn about the soma traps other loaders fall into (the cell is kept as Import3d makes it)."""
    soma_pts = np.flatnonzero(pts.type == 1)
    if soma_pts.size == 0:
        return
    centre = pts.xyz[0] if pts.type[0] == 1 else pts.xyz[soma_pts[0]]
    r_max = float(pts.radius[soma_pts].max())
    dist = np.linalg.norm(pts.xyz[soma_pts] - centre, axis=1)
    limit = max(4.0 * r_max, 30.0)
    far = soma_pts[dist > limit]
    if far.size:
        warnings.warn(
            f"{name}: {far.size} soma points (type 1) lie up to {dist.max():.1f} um from the soma "
            f"centre, beyond {limit:.0f} um (4x the largest soma radius {r_max:.2f} um); they are "
            f"probably axon or dendrite points labelled as soma (first: line {pts.line[far[0]]}). "
            f"They are kept as soma, as NEURON's Import3d does; relabel them in the file to fix.",
            SWCWarning, stacklevel=3)
    soma_secs = [s for s in morph.sections if s.swc_type == 1]
    detached = [s for s in soma_secs if s.parent >= 0 and morph.sections[s.parent].swc_type != 1]
    if detached:
        lines = ", ".join(str(s.lines[0]) for s in detached[:5] if s.lines)
        warnings.warn(
            f"{name}: the soma is split into pieces separated by non-soma points ("
            f"{', '.join(s.name for s in detached[:5])} start at lines {lines}); they are kept as "
            f"separate soma sections, as NEURON's Import3d does. dist_um is measured from soma[0].",
            SWCWarning, stacklevel=3)
