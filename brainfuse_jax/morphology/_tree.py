"""`CompartmentTree`: the compartmentalised cell that the cable solver works on."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class _Static:
    """A read-only integer array that is hashable and compares by value, so it can live in a
    static (`eqx.field(static=True)`) field: jit caches on it, and two trees with the same
    topology share one compilation."""

    __slots__ = ("array", "_hash")

    def __init__(self, values, name: str):
        arr = np.array(values, dtype=np.int64, copy=True)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        arr.flags.writeable = False
        self.array = arr
        self._hash = hash((arr.shape, arr.tobytes()))

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, _Static) and np.array_equal(self.array, other.array)

    def __repr__(self):
        return f"{self.array!r}"


class CompartmentTree(eqx.Module):
    r"""A neuron split into compartments (NEURON's segments), in Hines order.

    Node `i` is the centre of one segment (NEURON's `sec(x)`); its parent `parent[i] < i` is the
    node it is coupled to by the axial resistance `ri_MOhm[i]`. The root has `parent == -1`.
    Nodes are grouped by section (sections in `section_names` order, each from x = 0 to 1).

    Where two or more child sections attach at a point of their parent that is not a segment
    centre (a branch point at `parent(1)`, as every SWC import makes), NEURON's matrix has a
    *zero-area node* there (`sec(1).area() == 0`), and so does this tree: it is kept with
    `area_um2 == 0` (no membrane, no capacitance, no channels) and `x == 1` (or 0 at the start of
    the root section), because coupling the children directly to the parent's last segment would
    not reproduce NEURON's matrix. Zero-area nodes with one or two neighbours are eliminated
    exactly (dropped, or their two resistances added in series). `is_membrane` tells the two
    kinds apart; `n_compartments` counts the nodes with membrane (NEURON's segments).

    **Fields** (all per node, shape `(N,)`):
    - `parent`: static int, Hines order (`parent[i] < i`), root `-1`.
    - `area_um2`: membrane area of the node's segment, um2, as NEURON's `seg.area()`: the lateral
      area of the frusta between the 3D points inside the segment; 0 for junction nodes.
    - `ri_MOhm`: axial resistance between the node and its parent node, MOhm, as NEURON's
      `seg.ri()` (plus the parent's half segment where a zero-area node was merged away):
      `4 Ra / pi * \int dx / d(x)^2` over the half segments on the path. Root: 0 (unused).
    - `section`: static int, index into `section_names` of the node's section.
    - `x`: normalised position of the node in its section, 0..1.
    - `swc_type`: static int, SWC type code of the node's section (1 soma, 2 axon, 3 basal,
      4 apical, other codes as in the file).
    - `dist_um`: path distance from the centre of the soma to the node, um, exactly as NEURON's
      `h.distance(soma[0](0.5), seg)`, which measures between node centres (so the origin is the
      centre of the soma segment containing x = 0.5: the soma's middle for odd nseg). Without a
      soma, from the start of the root section.
    - `section_names`: static, NEURON's Import3d names (`"soma[0]"`, `"dend[3]"`, ...).
    - `cm_uF_cm2`: specific membrane capacitance of each node, uF/cm2, or None if it was not
      given (the cell then uses its own).

    Floating-point fields take JAX's default float dtype when the tree is built (build it under
    `jax.enable_x64(True)` for float64). Build one with `Morphology.compartmentalize`.
    """

    _parent: _Static = eqx.field(static=True)
    area_um2: Float[Array, " N"]
    ri_MOhm: Float[Array, " N"]
    _section: _Static = eqx.field(static=True)
    x: Float[Array, " N"]
    _swc_type: _Static = eqx.field(static=True)
    dist_um: Float[Array, " N"]
    section_names: tuple[str, ...] = eqx.field(static=True)
    cm_uF_cm2: Float[Array, " N"] | None = None

    def __init__(self, parent, area_um2, ri_MOhm, section, x, swc_type, dist_um, section_names,
                 cm_uF_cm2=None):
        self._parent = parent if isinstance(parent, _Static) else _Static(parent, "parent")
        self._section = section if isinstance(section, _Static) else _Static(section, "section")
        self._swc_type = swc_type if isinstance(swc_type, _Static) else _Static(swc_type, "swc_type")
        self.section_names = tuple(str(s) for s in section_names)
        self.area_um2 = jnp.asarray(area_um2, dtype=float)
        self.ri_MOhm = jnp.asarray(ri_MOhm, dtype=float)
        self.x = jnp.asarray(x, dtype=float)
        self.dist_um = jnp.asarray(dist_um, dtype=float)
        self.cm_uF_cm2 = None if cm_uF_cm2 is None else jnp.asarray(cm_uF_cm2, dtype=float)

    def __check_init__(self):
        p = self._parent.array
        n = p.shape[0]
        if n == 0:
            raise ValueError("a CompartmentTree needs at least one node")
        if p[0] != -1 or np.any(p[1:] < 0) or np.any(p[1:] >= np.arange(1, n)):
            raise ValueError("parent must be in Hines order: parent[0] == -1 and 0 <= parent[i] < i")
        for name in ("area_um2", "ri_MOhm", "x", "dist_um", "cm_uF_cm2"):
            a = getattr(self, name)
            if a is not None and a.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like parent, got {a.shape}")
        for name in ("_section", "_swc_type"):
            if getattr(self, name).array.shape != (n,):
                raise ValueError(f"{name[1:]} must have shape ({n},) like parent")
        s = self._section.array
        if np.any(s < 0) or np.any(s >= len(self.section_names)):
            raise ValueError(f"section must index section_names (0..{len(self.section_names) - 1})")

    # -- static integer arrays, exposed as read-only numpy arrays ---------------------------------
    @property
    def parent(self) -> np.ndarray:
        """int (N,), Hines order, root -1 (read-only numpy array)."""
        return self._parent.array

    @property
    def section(self) -> np.ndarray:
        """int (N,), index into `section_names` (read-only numpy array)."""
        return self._section.array

    @property
    def swc_type(self) -> np.ndarray:
        """int (N,), SWC type code of each node's section (read-only numpy array)."""
        return self._swc_type.array

    # -- derived ---------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """N, the number of nodes (compartments plus zero-area junction nodes)."""
        return int(self._parent.array.shape[0])

    def __len__(self) -> int:
        return self.n_nodes

    @property
    def is_membrane(self) -> np.ndarray:
        """bool (N,): True for segment nodes (NEURON's segments, 0 < x < 1), False for the
        zero-area junction nodes at section ends (x == 0 or 1). (A segment can have zero area
        too, where the file has zero radii.)"""
        x = np.asarray(self.x)
        return (x > 0) & (x < 1)

    @property
    def n_compartments(self) -> int:
        """Number of nodes with membrane: NEURON's total `nseg`."""
        return int(self.is_membrane.sum())

    @property
    def nseg(self) -> dict[str, int]:
        """Number of segments (nodes with membrane) of each section, by name."""
        counts = np.bincount(self.section[self.is_membrane], minlength=len(self.section_names))
        return {name: int(c) for name, c in zip(self.section_names, counts)}

    def section_index(self, section: str | int) -> int:
        """Index of `section` (a name such as `"dend[3]"`, or an index) in `section_names`."""
        if isinstance(section, (int, np.integer)) and not isinstance(section, bool):
            if not 0 <= section < len(self.section_names):
                raise ValueError(f"section index {section} out of range 0..{len(self.section_names) - 1}")
            return int(section)
        if isinstance(section, str):
            try:
                return self.section_names.index(section)
            except ValueError:
                close = [s for s in self.section_names if s.split("[")[0] == section.split("[")[0]]
                hint = f" (this cell has {close[0]}..{close[-1]})" if close else ""
                raise ValueError(f"no section named {section!r}{hint}") from None
        raise TypeError(f"section must be a name or an index, got {type(section).__name__}")

    def locate(self, section: str | int, x: float = 0.5) -> int:
        """Node index of `(section, x)`, as NEURON's `sec(x)` (`x` in [0, 1]).

        For 0 < x < 1 this is segment `min(int(x * nseg), nseg - 1)` of the section (a boundary
        between two segments belongs to the one above it, as in NEURON). `x == 1` is the section's
        end: its zero-area junction node where one was kept, otherwise its last segment. `x == 0`
        is the section's start, which NEURON shares with the parent: the node the section's first
        segment is coupled to (for the root section: its start junction node or first segment).
        """
        s = self.section_index(section)
        x = float(x)
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"x must be in [0, 1], got {x}")
        nodes = np.flatnonzero(self.section == s)
        xs = np.asarray(self.x)[nodes]
        mem = self.is_membrane[nodes]
        seg = nodes[mem]  # sections always have >= 1 segment
        if x in (0.0, 1.0):
            ends = nodes[(~mem) & (xs == x)]
            if ends.size:
                return int(ends[0])
            if x == 0.0:
                p = int(self.parent[seg[0]])
                return int(seg[0]) if p < 0 else p
        return int(seg[min(int(x * seg.size), seg.size - 1)])

    def __repr__(self):
        return (f"CompartmentTree({len(self.section_names)} sections, {self.n_compartments} "
                f"compartments, {self.n_nodes - self.n_compartments} zero-area junction nodes, "
                f"total area {float(np.asarray(self.area_um2).sum()):.6g} um2)")
