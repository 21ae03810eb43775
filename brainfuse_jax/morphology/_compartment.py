"""Sections -> `CompartmentTree`: NEURON's node graph, reduced to a tree in Hines order."""

from __future__ import annotations

from collections import deque

import numpy as np

from ._geometry import segment_geometry
from ._tree import CompartmentTree


def build_tree(sections, nsegs, ras, cms) -> CompartmentTree:
    """NEURON's nodes and axial resistances for `sections` with `nsegs` segments.

    NEURON's matrix has one node per segment, a zero-area node at every section's 1 end and one
    at the root section's 0 end. A child attached at `parent(x)` couples to the node NEURON's
    `node_index` gives (`x == 1`: the parent's end node; `x == 0`: the node at the parent's own 0
    end; else the segment containing x). Zero-area nodes are then removed where that is exact
    (one neighbour: dropped; two: their resistances added in series) and kept where three or
    more sections meet.
    """
    nsec = len(sections)
    offs = np.concatenate([[0], np.cumsum(nsegs)]).astype(int)
    nseg_total = int(offs[-1])
    END = nseg_total  # end node of section s: END + s
    ROOT = nseg_total + nsec  # the root section's 0-end node
    n_all = ROOT + 1

    area = np.zeros(n_all)
    geo = []
    for s, sec in enumerate(sections):
        a, rl, rr = segment_geometry(sec.arc, sec.diam, nsegs[s], ras[s])
        area[offs[s]:offs[s + 1]] = a
        geo.append((rl, rr))

    def node_at(s, x):
        """NEURON's node for a connection at sections[s](x)."""
        if x == 1.0:
            return END + s
        if x == 0.0:
            if sections[s].parent < 0:
                return ROOT
            return node_at(sections[s].parent, sections[s].parent_x)
        n = nsegs[s]
        return offs[s] + min(int(x * n), n - 1)

    edges: list[tuple[int, int, float]] = []
    for s, sec in enumerate(sections):
        rl, rr = geo[s]
        o, n = offs[s], nsegs[s]
        up = ROOT if sec.parent < 0 else node_at(sec.parent, sec.parent_x)
        edges.append((o, up, float(rl[0])))
        for k in range(1, n):
            edges.append((o + k, o + k - 1, float(rr[k - 1] + rl[k])))
        edges.append((END + s, o + n - 1, float(rr[n - 1])))

    adj: list[dict[int, float]] = [dict() for _ in range(n_all)]
    for a, b, r in edges:
        adj[a][b] = r
        adj[b][a] = r
    # remove zero-area nodes with < 3 neighbours (they never neighbour each other)
    keep = np.ones(n_all, dtype=bool)
    for z in range(END, n_all):
        nb = adj[z]
        if len(nb) >= 3:
            continue
        keep[z] = False
        if len(nb) == 2:
            (a, ra_), (b, rb_) = nb.items()
            adj[a][b] = adj[b][a] = ra_ + rb_
        for a in nb:
            del adj[a][z]
        adj[z] = {}

    # order: section by section (root 0-end node first, segments by x, then the 1-end node)
    order = []
    for s in range(nsec):
        if s == 0 and keep[ROOT]:
            order.append(ROOT)
        order.extend(range(offs[s], offs[s + 1]))
        if keep[END + s]:
            order.append(END + s)
    new = np.full(n_all, -1, dtype=np.int64)
    new[order] = np.arange(len(order))

    # orient from the root (breadth first)
    root = order[0]
    parent_old = np.full(n_all, -2, dtype=np.int64)
    parent_old[root] = -1
    ri_old = np.zeros(n_all)
    queue = deque([root])
    while queue:
        a = queue.popleft()
        for b, r in adj[a].items():
            if parent_old[b] == -2:
                parent_old[b] = a
                ri_old[b] = r
                queue.append(b)
    order_arr = np.array(order, dtype=np.int64)
    if np.any(parent_old[order_arr] == -2):  # pragma: no cover - the graph is a tree by construction
        raise AssertionError("disconnected compartment graph")
    parent = np.where(parent_old[order_arr] >= 0, new[np.maximum(parent_old[order_arr], 0)], -1)
    if np.any(parent[1:] >= np.arange(1, len(order))):  # pragma: no cover
        raise AssertionError("node order is not a Hines order")

    sec_of = np.empty(n_all, dtype=np.int64)
    x_of = np.empty(n_all)
    for s in range(nsec):
        n = nsegs[s]
        sec_of[offs[s]:offs[s + 1]] = s
        x_of[offs[s]:offs[s + 1]] = (np.arange(n) + 0.5) / n
        sec_of[END + s] = s
        x_of[END + s] = 1.0
    sec_of[ROOT] = 0
    x_of[ROOT] = 0.0

    section = sec_of[order_arr]
    x = x_of[order_arr]
    swc_type = np.array([sections[s].swc_type for s in section], dtype=np.int64)
    cm = np.array([cms[s] for s in section])
    dist = _distances(sections, nsegs)
    dist_um = np.array([dist(s, xx) for s, xx in zip(section.tolist(), x.tolist())])
    ri = ri_old[order_arr]
    ri[0] = 0.0
    return CompartmentTree(parent=parent, area_um2=area[order_arr], ri_MOhm=ri, section=section, x=x,
                           swc_type=swc_type, dist_um=dist_um,
                           section_names=tuple(s.name for s in sections), cm_uF_cm2=cm)


def _distances(sections, nsegs):
    """`dist(s, x)`: path distance (um) from the origin, as NEURON's `h.distance(origin, sec(x))`.

    The origin is `soma[0](0.5)` (the first section of SWC type 1) or the root section's 0 end.
    NEURON measures along its node tree: the origin is the centre of the soma segment that contains
    x = 0.5 (0.5 itself for an odd nseg; 0.75 for nseg = 2), and a child attached at an interior x
    of its parent starts at that segment's centre (where it is coupled), not at x.
    Each section gets `dist(s, x) = base[s] + |x - xa[s]| * L[s]`: `xa` is where the path from the
    origin enters it (the origin's x, the point a child on the path attaches, or 0).
    """
    nsec = len(sections)
    L = [s.L for s in sections]
    somas = [i for i, s in enumerate(sections) if s.swc_type == 1]
    def node_x(s, x):  # where NEURON couples at sections[s](x)
        if x in (0.0, 1.0):
            return x
        n = nsegs[s]
        return (min(int(x * n), n - 1) + 0.5) / n

    o, xo = (somas[0], node_x(somas[0], 0.5)) if somas else (0, 0.0)
    base = [None] * nsec
    xa = [0.0] * nsec
    base[o], xa[o] = 0.0, xo
    child, s = o, sections[o].parent
    while s >= 0:  # ancestors of the origin: entered where the path's child attaches
        xa[s] = node_x(s, sections[child].parent_x)
        base[s] = base[child] + abs(0.0 - xa[child]) * L[child]
        child, s = s, sections[s].parent
    for s in range(nsec):  # the rest hang off sections already done (parents come first)
        if base[s] is None:
            p = sections[s].parent
            base[s] = base[p] + abs(node_x(p, sections[s].parent_x) - xa[p]) * L[p]
            xa[s] = 0.0

    def dist(s, x):
        return base[s] + abs(x - xa[s]) * L[s]

    return dist
