"""Reading and validating SWC files (Cannon et al. 1998; NeuroMorpho.Org's standard).

Each data line is `id type x y z radius parent` (lengths in um, `parent == -1` for the root).
`parse_swc` turns a file into an `SWCPoints` table with every problem reported by line number;
`read_swc` (in `_morphology.py`) turns that into a `Morphology` as NEURON's Import3d does.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from fractions import Fraction

import numpy as np

_COLUMNS = ("id", "type", "x", "y", "z", "radius", "parent")

# Plausibility limits for micrometre files (what a file in nanometres violates by ~1000x).
MAX_EXTENT_UM = 10_000.0  # bounding-box diagonal of the whole cell
MAX_MEDIAN_RADIUS_UM = 50.0


class SWCWarning(UserWarning):
    """An SWC file is unusual but usable (what NEURON's Import3d accepts): it was loaded, and the
    message says what was done."""


@dataclasses.dataclass(frozen=True)
class SWCPoints:
    """The points of an SWC file, in an order where every parent comes before its children.

    **Fields** (per point, shape `(n,)` unless noted):
    - `id`, `type`: the file's integer id and type code.
    - `xyz`: `(n, 3)` coordinates, um (after `scale`).
    - `radius`: um (after `scale` and `min_radius_um`).
    - `parent`: index (not id) of the parent point in this table, -1 for the root.
    - `line`: line number of the point in the file (1-based), for messages.
    - `header`: the comment lines (without the leading `#`).
    - `path`: the file name.
    - `read32`: `(n, 4)` x, y, z, radius as NEURON's Import3d reads them: its `sscanf("%f")`
      rounds the text to single precision (correctly, from the decimal text; given back as
      float64). None if unknown.
    """

    id: np.ndarray
    type: np.ndarray
    xyz: np.ndarray
    radius: np.ndarray
    parent: np.ndarray
    line: np.ndarray
    header: tuple[str, ...] = ()
    path: str = ""
    read32: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def where(self, i: int) -> str:
        """`"file.swc line 12 (id 11)"` for point index `i`, for messages."""
        return f"{os.path.basename(self.path) or 'SWC'} line {int(self.line[i])} (id {int(self.id[i])})"


def _err(path, lineno, msg) -> ValueError:
    return ValueError(f"{path}: line {lineno}: {msg}")


def _integer(text: str, path, lineno, column) -> int:
    try:
        v = float(text)
    except ValueError:
        raise _err(path, lineno, f"{column} {text!r} is not a number") from None
    if not math.isfinite(v) or v != int(v):
        raise _err(path, lineno, f"{column} {text!r} is not an integer")
    return int(v)


_UNIT_RE = re.compile(
    r"units?\W{0,4}?\s*[:=]?\s*[\"']?\s*([0-9.]+(?:[eE][-+]?[0-9]+)?)?\s*"
    r"(nanomet(?:er|re)s?|nm|micromet(?:er|re)s?|microns?|um|µm)\b", re.IGNORECASE)


def declared_scale(header) -> float | None:
    """The factor to micrometres declared in a header (navis writes `"units": "1 nanometer"`),
    or None if the header says nothing about units."""
    for line in header:
        m = _UNIT_RE.search(line)
        if m:
            number = float(m.group(1)) if m.group(1) else 1.0
            unit = m.group(2).lower()
            return number * (1e-3 if unit.startswith("nano") or unit == "nm" else 1.0)
    return None


def parse_swc(path, *, scale: float | None = None, reorder: bool = True,
              min_radius_um: float | None = None) -> SWCPoints:
    """Read and validate an SWC file; see `read_swc` for the arguments and the checks."""
    path = os.fspath(path)
    name = os.path.basename(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()

    header: list[str] = []
    rows: list[tuple[int, int, float, float, float, float, int]] = []
    texts: list[list[str]] = []
    lines: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        body, hash_, comment = raw.partition("#")
        if hash_ and not body.strip():
            header.append(comment.strip())
        fields = body.replace(",", " ").split()
        if not fields:
            continue
        if len(fields) != 7:
            raise _err(path, lineno, f"expected 7 columns (id type x y z radius parent), got "
                                     f"{len(fields)}: {body.strip()!r}")
        pid = _integer(fields[0], path, lineno, "id")
        typ = _integer(fields[1], path, lineno, "type")
        vals = []
        for col, t in zip(_COLUMNS[2:6], fields[2:6]):
            try:
                v = float(t)
            except ValueError:
                raise _err(path, lineno, f"{col} {t!r} is not a number") from None
            if not math.isfinite(v):
                raise _err(path, lineno, f"{col} is {t!r}; it must be finite")
            vals.append(v)
        par = _integer(fields[6], path, lineno, "parent")
        if vals[3] < 0:
            raise _err(path, lineno, f"negative radius {fields[5]} (radii must be >= 0 um)")
        if pid < 0:
            raise _err(path, lineno, f"negative id {pid} (ids must be >= 0; -1 is only for the "
                                     f"root's parent)")
        rows.append((pid, typ, *vals, par))
        texts.append(fields[2:6])
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: no data lines (expected 'id type x y z radius parent' lines)")

    arr = np.array(rows, dtype=np.float64)
    ids = arr[:, 0].astype(np.int64)
    types = arr[:, 1].astype(np.int64)
    xyz = arr[:, 2:5].copy()
    radius = arr[:, 5].copy()
    pids = arr[:, 6].astype(np.int64)
    read32 = _float32_from_text(arr[:, 2:6], texts)
    line = np.array(lines, dtype=np.int64)
    n = len(rows)

    # --- ids, parents, tree ----------------------------------------------------------------------
    index_of: dict[int, int] = {}
    for i, pid in enumerate(ids.tolist()):
        if pid in index_of:
            raise _err(path, line[i], f"duplicate id {pid} (first used on line {line[index_of[pid]]})")
        index_of[pid] = i
    parent = np.full(n, -1, dtype=np.int64)
    for i, p in enumerate(pids.tolist()):
        if p < 0:
            continue
        if p == ids[i]:
            raise _err(path, line[i], f"point {p} is its own parent (a cycle)")
        j = index_of.get(p)
        if j is None:
            raise _err(path, line[i], f"parent id {p} of point {ids[i]} does not exist in the file")
        parent[i] = j
    roots = np.flatnonzero(parent < 0)
    # cycles: points from which following parents never reaches a root
    state = np.zeros(n, dtype=np.int8)  # 0 unknown, 1 reaches a root, 2 on the current walk
    state[roots] = 1
    for start in range(n):
        walk = []
        i = start
        while state[i] == 0:
            state[i] = 2
            walk.append(i)
            i = parent[i]
        if state[i] == 2:  # came back onto this walk: a cycle
            k = walk.index(i)
            cyc = walk[k:] + [i]
            chain = " -> ".join(str(ids[c]) for c in cyc)
            raise _err(path, line[i], f"the parents form a cycle: {chain} (ids)")
        for w in walk:
            state[w] = 1
    if len(roots) > 1:
        where = ", ".join(f"line {line[r]} (id {ids[r]}, type {types[r]})" for r in roots[:6])
        more = f" and {len(roots) - 6} more" if len(roots) > 6 else ""
        soma_roots = int(np.sum(types[roots] == 1))
        hint = (" Several of them are soma points: if they are pieces of one soma, give them a "
                "parent (e.g. the first soma point)." if soma_roots > 1 else "")
        raise ValueError(f"{path}: {len(roots)} roots (parent -1) at {where}{more}: an SWC file must "
                         f"describe a single tree.{hint}")

    # --- order: Import3d sorts by id and needs parent id < id ---------------------------------------
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(order, np.arange(n)):
        ids, types, xyz, radius, line = ids[order], types[order], xyz[order], radius[order], line[order]
        read32 = read32[order]
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        parent = np.where(parent[order] >= 0, inv[np.maximum(parent[order], 0)], -1)
    bad = np.flatnonzero(parent >= np.arange(n))
    if bad.size:
        i = int(bad[0])
        if not reorder:
            raise _err(path, line[i], f"parent id {ids[parent[i]]} comes after its child id {ids[i]} "
                                      f"({bad.size} points like this); SWC needs parents first "
                                      f"(pass reorder=True to sort the points)")
        order = _preorder(parent)
        ids, types, xyz, radius, line = ids[order], types[order], xyz[order], radius[order], line[order]
        read32 = read32[order]
        inv = np.empty(n, dtype=np.int64)
        inv[order] = np.arange(n)
        parent = np.where(parent[order] >= 0, inv[np.maximum(parent[order], 0)], -1)
        warnings.warn(f"{name}: {bad.size} points come before their parent (first: line {line[inv[i]]}, "
                      f"id {ids[inv[i]]}); NEURON's Import3d rejects this, so the points were put in "
                      f"depth-first order from the root (parents first, siblings in file order).",
                      SWCWarning, stacklevel=3)

    # --- units ----------------------------------------------------------------------------------
    if scale is None:
        declared = declared_scale(header)
        if declared is not None and declared != 1.0:
            scale = declared
            warnings.warn(f"{name}: the header declares units of {declared:g} um; coordinates and "
                          f"radii were multiplied by {declared:g} to give um.", SWCWarning, stacklevel=3)
        else:
            scale = 1.0
            extent = float(np.linalg.norm(np.ptp(xyz, axis=0)))
            med_r = float(np.median(radius))
            if extent > MAX_EXTENT_UM or med_r > MAX_MEDIAN_RADIUS_UM:
                raise ValueError(
                    f"{path}: implausible size for micrometres (SWC's unit): the cell spans {extent:.4g} "
                    f"(bounding-box diagonal; limit {MAX_EXTENT_UM:g} um) and its median radius is "
                    f"{med_r:.4g} (limit {MAX_MEDIAN_RADIUS_UM:g} um). The file is probably in "
                    f"nanometres: read it with scale=1e-3 (or scale=1.0 to take the numbers as um).")
    else:
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite factor to um, got {scale}")
    if scale != 1.0:
        xyz = xyz * scale
        radius = radius * scale
        read32 = _f32(np.column_stack([xyz, radius]))  # (NEURON cannot scale: no text to follow)

    # --- radii ----------------------------------------------------------------------------------
    zero = np.flatnonzero(radius == 0)
    if min_radius_um is not None:
        if not (math.isfinite(min_radius_um) and min_radius_um > 0):
            raise ValueError(f"min_radius_um must be a positive number of um, got {min_radius_um}")
        small = np.flatnonzero(radius < min_radius_um)
        if small.size:
            warnings.warn(f"{name}: {small.size} of {n} radii are below min_radius_um = {min_radius_um:g} um "
                          f"(first: line {line[small[0]]}); they were raised to it.", SWCWarning,
                          stacklevel=3)
            radius = np.maximum(radius, min_radius_um)
            read32 = read32.copy()
            read32[small, 3] = _f32(min_radius_um)
    elif zero.size:
        warnings.warn(f"{name}: {zero.size} of {n} points have radius 0 (first: line {line[zero[0]]}). "
                      f"They are kept, as NEURON's Import3d does: a zero diameter gives no membrane "
                      f"area and a near-infinite axial resistance (NEURON's 1e15 fallback) where it "
                      f"occurs. Pass min_radius_um=... to read_swc to replace them.", SWCWarning,
                      stacklevel=3)

    return SWCPoints(id=ids, type=types, xyz=xyz, radius=radius, parent=parent, line=line,
                     header=tuple(header), path=path, read32=read32)


def _f32(values):
    return np.asarray(values, dtype=np.float64).astype(np.float32).astype(np.float64)


def _float32_from_text(doubles: np.ndarray, texts: list[list[str]]) -> np.ndarray:
    """Single-precision values correctly rounded from the decimal text, as C's `strtof` (what
    NEURON's hoc `sscanf("%f")` gives). Rounding the nearest double instead differs only where
    that double is exactly halfway between two floats; those ties are settled exactly."""
    out = _f32(doubles)
    f = doubles.astype(np.float32)
    up = np.nextafter(f, np.float32(np.inf))
    down = np.nextafter(f, np.float32(-np.inf))
    other = np.where(doubles >= f.astype(np.float64), up, down)
    tie = (doubles - f.astype(np.float64)) == (other.astype(np.float64) - doubles)
    for i, j in zip(*np.nonzero(tie & np.isfinite(doubles))):
        exact = Fraction(texts[i][j])
        a, b = Fraction(float(f[i, j])), Fraction(float(other[i, j]))
        if abs(exact - a) == abs(exact - b):  # a true tie: to even
            pick = a if (int(f[i, j].view(np.uint32)) & 1) == 0 else b
        else:
            pick = a if abs(exact - a) < abs(exact - b) else b
        out[i, j] = float(pick)
    return out


def _preorder(parent: np.ndarray) -> np.ndarray:
    """Depth-first preorder from the root, children in their current order (so unbranched runs
    become contiguous, as Import3d's sectioning expects)."""
    n = parent.shape[0]
    children: list[list[int]] = [[] for _ in range(n)]
    root = -1
    for i, p in enumerate(parent.tolist()):
        if p < 0:
            root = i
        else:
            children[p].append(i)
    out = []
    stack = [root]
    while stack:
        i = stack.pop()
        out.append(i)
        stack.extend(reversed(children[i]))
    return np.array(out, dtype=np.int64)
