"""The O(N) implicit solve on a tree (Hines elimination) and its adjoint (a custom VJP).

A Hines matrix `M` (N x N) has a diagonal `d`, and for every non-root node `i` with parent
`p = parent[i] < i` two off-diagonal entries: `M[i, p] = a[i]` and `M[p, i] = b[i]`. Gaussian
elimination from the leaves to the root creates no fill-in, and back substitution from the root to
the leaves finishes the solve; both cost O(N) (Hines 1984).

Nodes at the same depth of the tree are independent in both sweeps, so the sweeps run level by
level. Each tree is rooted at its centre (fewest levels) and the nodes are permuted once into
level order (each level a contiguous block, children of a parent next to each other), so a level
is a contiguous slice and its coupling to the next level a small gather with constant indices (no
scatter). The levels are unrolled in the compiled program
(one small fused kernel per level and sweep; the fastest form on CPU, where the cost of a level is
the kernel's launch) or, for very deep trees, a `lax.scan` over them. The sequential depth is the
tree's height (for a dendritic tree, tens to a few hundred levels for thousands of nodes).

Hines, M. (1984). Efficient computation of branched nerve equations. Int. J. Bio-Medical
Computing 15, 69-76.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._math import _unbroadcast

UNROLL_MAX_LEVELS = 128


class HinesStructure:
    """The static part of a Hines solve: the tree's levels, in the layout the solver works on.

    Hashable and compared by the parent array and `unroll`, so it can be a static field (one
    compilation per topology). Built from `parent` (int (N,), `parent[i] < i` for non-roots, `-1`
    for roots; a forest of several roots is allowed).

    The solver roots each tree at its centre (the middle of a longest path; `solve_parent`), which
    minimises the number of sequential levels (the matrix is the same, only the elimination order
    changes), and permutes the nodes once into *level order* (`order`): the nodes of depth 0, then
    depth 1, ..., each level a contiguous block (`offsets`), sorted within a level by their
    parent's position. Each level of either sweep is then a contiguous slice and a small gather
    with constant indices (its nodes' parents, or its parents' children), with no scatter.

    **Attributes:** `n` (nodes), `parent` (int (N,)), `depth` (int (N,)), `levels` (int (L, W):
    the nodes of each depth, padded with the dummy index `n`), `level_parent` (int (L, W): their
    parents, `n` for roots and padding) -- the tree as given, used by the scan form; and for the
    level-order form `solve_parent` (int (N,): parents in the tree rooted at its centre),
    `order` (int (N,): the node at each level-order position), `position` (its inverse),
    `offsets` (level `l` is `order[offsets[l]:offsets[l + 1]]`), `solve_levels`; `unroll` (bool:
    the sweeps are unrolled into a few small kernels per level, the fastest on CPU; else a
    `lax.scan` over the levels of the tree as given, which compiles faster for very deep trees.
    Default: unrolled up to `UNROLL_MAX_LEVELS` solve levels); `native` (None: on the CPU backend
    the solve is the compiled C++ kernel of `brainfuse_kernels` (NEURON's two loops, called through
    XLA's FFI; 2.5-3x fewer XLA kernels per cable step) when a C++ compiler is available, else the
    XLA sweeps; True: require the kernel; False: always the XLA sweeps).
    """

    __slots__ = ("n", "parent", "depth", "levels", "level_parent", "order", "position", "offsets",
                 "solve_parent", "unroll", "native", "_edge", "_flip", "_up", "_down", "_hash")

    def __init__(self, parent, unroll: bool | None = None, native: bool | None = None):
        parent = np.asarray(parent)
        if parent.ndim != 1 or parent.size == 0:
            raise ValueError(f"parent must be a non-empty 1-D int array, got shape {parent.shape}")
        if not np.issubdtype(parent.dtype, np.integer):
            raise TypeError(f"parent must hold integers, got dtype {parent.dtype}")
        n = parent.size
        idx = np.arange(n)
        bad = (parent >= idx) | (parent < -1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"parent must be in Hines order (parent[i] < i, roots -1); "
                             f"parent[{i}] = {int(parent[i])}")
        parent = parent.astype(np.int64)
        depth = np.zeros(n, np.int64)
        for i in range(n):
            if parent[i] >= 0:
                depth[i] = depth[parent[i]] + 1
        n_levels = int(depth.max()) + 1
        width = int(np.bincount(depth).max())
        levels = np.full((n_levels, width), n, np.int32)
        level_parent = np.full((n_levels, width), n, np.int32)
        for lvl in range(n_levels):
            nodes = np.flatnonzero(depth == lvl)
            levels[lvl, : nodes.size] = nodes
            level_parent[lvl, : nodes.size] = np.where(parent[nodes] >= 0, parent[nodes], n)

        # The level-order solve roots each tree at its centre (the middle of a longest path),
        # which minimises the number of levels (the matrix is the same; only the elimination order
        # changes): e.g. the CA1 cell 61 -> 55, a chain of N nodes N -> N/2 + 1.
        new_parent = _reroot_at_centres(parent)
        new_depth = np.zeros(n, np.int64)
        for i in _bfs_order(new_parent):
            if new_parent[i] >= 0:
                new_depth[i] = new_depth[new_parent[i]] + 1
        # each node's edge to its new parent is an edge of the original tree: that of the node
        # itself (same orientation) or of its new parent (flipped: a and b swap)
        flipped = (new_parent >= 0) & (new_parent != parent)
        edge = np.where(flipped, new_parent, idx)
        solve_levels = int(new_depth.max()) + 1
        position = np.full(n, -1, np.int64)
        order, offsets = [], [0]
        for lvl in range(solve_levels):
            nodes = np.flatnonzero(new_depth == lvl)
            if lvl > 0:  # children of one parent next to each other, parents in order
                nodes = nodes[np.argsort(position[new_parent[nodes]], kind="stable")]
            position[nodes] = np.arange(len(order), len(order) + nodes.size)
            order.extend(nodes.tolist())
            offsets.append(len(order))
        order = np.asarray(order, np.int64)
        # up[l]: for the nodes of level l >= 1, their parent's index within level l - 1.
        # down[l]: for the nodes of level l < L - 1, their children's indices within level l + 1,
        # (w_l, K) padded with w_{l+1} (a slot that holds 0).
        up, down = [None], []
        for lvl in range(1, solve_levels):
            nodes = order[offsets[lvl]:offsets[lvl + 1]]
            up.append((position[new_parent[nodes]] - offsets[lvl - 1]).astype(np.int32))
        for lvl in range(solve_levels - 1):
            w, w_next = offsets[lvl + 1] - offsets[lvl], offsets[lvl + 2] - offsets[lvl + 1]
            kids = [[] for _ in range(w)]
            for k, j in enumerate(up[lvl + 1]):
                kids[j].append(k)
            down_l = np.full((w, max(len(c) for c in kids)), w_next, np.int32)
            for j, c in enumerate(kids):
                down_l[j, : len(c)] = c
            down.append(down_l)
        edge_order = edge[order]
        flip_order = flipped[order]
        for arr in (parent, depth, levels, level_parent, order, position, new_parent, edge_order,
                    flip_order, *up[1:], *down):
            arr.flags.writeable = False
        self.n = n
        self.parent = parent
        self.depth = depth
        self.levels = levels
        self.level_parent = level_parent
        self.order = order
        self.position = position
        self.offsets = tuple(int(o) for o in offsets)
        self.solve_parent = new_parent
        self._edge = edge_order
        self._flip = flip_order
        self.unroll = bool(solve_levels <= UNROLL_MAX_LEVELS) if unroll is None else bool(unroll)
        self._up = tuple(up)
        self._down = tuple(down)
        if native not in (None, True, False):
            raise TypeError(f"native must be None, True or False, got {native!r}")
        self.native = native
        self._hash = hash((n, self.parent.tobytes(), self.unroll, self.native))

    @property
    def n_levels(self) -> int:
        """Levels of the tree as given (its height + 1 from the given roots)."""
        return int(self.levels.shape[0])

    @property
    def solve_levels(self) -> int:
        """Levels of the level-order solve: the height + 1 from the trees' centres."""
        return len(self.offsets) - 1

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return (isinstance(other, HinesStructure) and self.unroll == other.unroll and self.native == other.native
                and np.array_equal(self.parent, other.parent))

    def __repr__(self):
        return (f"HinesStructure(n={self.n}, levels={self.n_levels}, width={self.levels.shape[1]}, "
                f"solve levels={self.solve_levels}{', unrolled' if self.unroll else ''})")


def _solve_unrolled(s: HinesStructure, d, a, b, r):
    """Both sweeps level by level in level order, unrolled: each level is a contiguous slice of
    the permuted arrays, and its coupling to the next level a gather with constant indices (none
    where each node has one child, in order). `d` and `r` travel stacked as one `(2, w)` array per
    level, so that both are eliminated by the same kernels (XLA makes ~3 small kernels per level
    and sweep pair; ~10% faster and ~30% quicker to compile than separate `d` and `r`)."""
    o, L = s.offsets, s.solve_levels
    perm = s.order
    dr = jnp.stack([d[perm], r[perm]])
    # each node's couplings to its parent in the re-rooted tree (a and b swap on flipped edges)
    a_e, b_e = a[s._edge], b[s._edge]
    if s._flip.any():
        a, b = jnp.where(s._flip, b_e, a_e), jnp.where(s._flip, a_e, b_e)
    else:
        a, b = a_e, b_e
    lv = lambda z, lvl: z[..., o[lvl]:o[lvl + 1]]  # noqa: E731
    zero = jnp.zeros((2, 1), d.dtype)
    DR = [None] * L
    DR[L - 1] = lv(dr, L - 1)
    for lvl in range(L - 1, 0, -1):  # eliminate level lvl into its parents (level lvl - 1)
        cur = DR[lvl]
        f = (lv(b, lvl) / cur[0])[None, :]
        c = f * jnp.stack([lv(a, lvl), cur[1]])  # what each node takes off its parent's d and r
        kids = s._down[lvl - 1]
        if not (_is_identity(kids) and kids.shape[0] == c.shape[1]):  # else: one child each, in order
            c = jnp.sum(jnp.concatenate([c, zero], axis=1)[:, kids], axis=-1)
        DR[lvl - 1] = lv(dr, lvl - 1) - c
    xs = [DR[0][1] / DR[0][0]]
    for lvl in range(1, L):
        up = s._up[lvl]
        x_up = xs[-1][: up.size] if _is_identity(up) else xs[-1][up]
        xs.append((DR[lvl][1] - lv(a, lvl) * x_up) / DR[lvl][0])
    return jnp.concatenate(xs)[s.position]


def _is_identity(idx) -> bool:
    """`idx` (static, (w,) or (w, 1)) maps position j to j: a gather by it is a no-op."""
    w = idx.shape[0]
    return idx.shape[-1:] != (0,) and idx.size == w and np.array_equal(idx.ravel(), np.arange(w))


def _bfs_order(parent):
    """Nodes ordered so that every parent comes before its children."""
    children = [[] for _ in range(parent.size)]
    roots = []
    for i, p in enumerate(parent.tolist()):
        (roots if p < 0 else children[p]).append(i)
    order = list(roots)
    for i in order:
        order.extend(children[i])
    return order


def _reroot_at_centres(parent):
    """Parent pointers of the same forest with each tree rooted at its centre: the middle node
    of a longest path (found by two breadth-first searches), which minimises the height. Where
    the original root is as good, it is kept."""
    n = parent.size
    adj = [[] for _ in range(n)]
    for i, p in enumerate(parent.tolist()):
        if p >= 0:
            adj[i].append(p)
            adj[p].append(i)

    def bfs(start):
        dist = {start: 0}
        prev = {start: -1}
        queue = [start]
        for u in queue:
            for w in adj[u]:
                if w not in dist:
                    dist[w], prev[w] = dist[u] + 1, u
                    queue.append(w)
        return queue, dist, prev

    new_parent = parent.copy()
    for root in np.flatnonzero(parent < 0).tolist():
        nodes, dist, _ = bfs(root)
        height = max(dist.values())
        a = max(nodes, key=lambda u: dist[u])
        _, dist_a, _ = bfs(a)
        b = max(nodes, key=lambda u: dist_a[u])
        _, dist_b, prev_b = bfs(b)
        path = [a]
        while path[-1] != b:
            path.append(prev_b[path[-1]])
        centre = path[len(path) // 2]
        if max(dist_a[centre], dist_b[centre]) >= height:
            continue  # the root is already a centre
        _, _, prev_c = bfs(centre)
        for u in nodes:
            new_parent[u] = prev_c[u]
    return new_parent


def _pad(x, value):
    return jnp.concatenate([x, jnp.full(x.shape[:-1] + (1,), value, x.dtype)], axis=-1)


def _solve_scan(s: HinesStructure, d, a, b, rhs):
    """The same sweeps as a `lax.scan` over the levels (padded to the widest level with a dummy
    node, d = 1, a = b = r = 0), each a gather / scatter-add over the level's nodes in the
    original order. About 3x slower per solve than the unrolled form on CPU (measured on the CA1
    cell; a scan over the level-ordered slices was slower still), but its compile time does not
    grow with the tree's height."""
    nonroot = jnp.asarray(s.parent >= 0)
    zero = jnp.zeros((), d.dtype)
    a = _pad(jnp.where(nonroot, a, zero), 0.0)
    b = _pad(jnp.where(nonroot, b, zero), 0.0)
    d = _pad(d, 1.0)
    r = _pad(rhs, 0.0)
    levels = jnp.asarray(s.levels)
    lparent = jnp.asarray(s.level_parent)

    def eliminate(carry, lv):
        d, r = carry
        idx, p = lv
        f = b[idx] / d[idx]
        d = d.at[p].add(-f * a[idx])
        r = r.at[p].add(-f * r[idx])
        return (d, r), None

    # Level 0 holds only roots (their parent is the dummy, b = 0): nothing to eliminate.
    (d, r), _ = jax.lax.scan(eliminate, (d, r), (levels[1:], lparent[1:]), reverse=True)

    def substitute(x, lv):
        idx, p = lv
        x = x.at[idx].set((r[idx] - a[idx] * x[p]) / d[idx])
        return x, None

    x = jnp.zeros_like(r)
    x, _ = jax.lax.scan(substitute, x, (levels, lparent))
    return x[..., :-1]


def _solve_impl(s: HinesStructure, d, a, b, rhs):
    """Hines elimination (leaves to root) and back substitution for one system (all args (N,)).
    The entries `a`, `b` of roots are never read."""
    kernels = _native_kernels(s, d.dtype)
    if kernels is not None:
        return kernels.hines_solve(s.parent, d, a, b, rhs)
    return (_solve_unrolled if s.unroll else _solve_scan)(s, d, a, b, rhs)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _hines_solve(s: HinesStructure, d, a, b, rhs):
    return _solve_impl(s, d, a, b, rhs)


def _hines_fwd(s, d, a, b, rhs):
    x = _solve_impl(s, d, a, b, rhs)
    return x, (d, a, b, x)


def _hines_bwd(s, res, g):
    d, a, b, x = res
    # Adjoint: lam = M^-T g. M^T is the Hines matrix with a and b swapped (same sparsity).
    lam = _solve_impl(s, d, b, a, g)
    nonroot = jnp.asarray(s.parent >= 0)
    p = jnp.asarray(np.maximum(s.parent, 0))
    zero = jnp.zeros((), x.dtype)
    # dx = -M^-1 dM x  =>  dL/dM = -lam x^T, read at the sparsity pattern.
    g_d = -lam * x
    g_a = jnp.where(nonroot, -lam * x[p], zero)  # entry (i, parent i)
    g_b = jnp.where(nonroot, -lam[p] * x, zero)  # entry (parent i, i)
    return g_d, g_a, g_b, lam


_hines_solve.defvjp(_hines_fwd, _hines_bwd)


def _native_kernels(s: HinesStructure, dtype):
    """The compiled tree kernels (`brainfuse_kernels._native.CpuKernels`) if `s.native` allows them
    and they run here for `dtype`, else None (the XLA forms)."""
    if s.native is False:
        return None
    from brainfuse_kernels import _native
    if _native.available(dtype):
        return _native.cpu_kernels()
    if s.native:
        raise ValueError("native=True (backend=bf.NativeCPU()): the compiled tree kernels are not available here "
                         "(they need the CPU backend, float32/float64 and a C++ compiler, $CXX or g++; "
                         "BRAINFUSE_NATIVE=0 disables them)")
    return None


def _laplacian_impl(s: HinesStructure, g, v):
    g, v = jnp.broadcast_arrays(g, v)
    kernels = _native_kernels(s, v.dtype)
    if kernels is not None:
        return kernels.tree_laplacian(s.parent, g, v)
    nonroot = jnp.asarray(s.parent >= 0)
    p = np.maximum(s.parent, 0)
    flux = jnp.where(nonroot, g * (v - v[..., p]), jnp.zeros((), v.dtype))  # from each node to its parent
    return flux.at[..., p].add(-flux)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def tree_laplacian(s: HinesStructure, g: Float[Array, "*b N"], v: Float[Array, "*b N"]) -> Float[Array, "*b N"]:
    """The axial currents `L v` of a tree: `out[i]` = sum over node i's edges of `g_e (v_i - v_j)`,
    with `g[i]` the conductance (uS) between node i and its parent (roots' entries unused) and `v`
    in mV (nA out). The compiled kernel on CPU (`HinesStructure.native`), else a gather and a
    scatter-add; differentiable (L is symmetric: the VJP w.r.t. `v` is `L ct`)."""
    return _laplacian_impl(s, g, v)


def _laplacian_fwd(s, g, v):
    return _laplacian_impl(s, g, v), (g, v)


def _laplacian_bwd(s, res, ct):
    g, v = res
    p = np.maximum(s.parent, 0)
    g_g = jnp.where(jnp.asarray(s.parent >= 0), (v - v[..., p]) * (ct - ct[..., p]), jnp.zeros((), v.dtype))
    return _unbroadcast(g_g, jnp.shape(g)), _unbroadcast(_laplacian_impl(s, g, ct), jnp.shape(v))


tree_laplacian.defvjp(_laplacian_fwd, _laplacian_bwd)


def hines_solve(
    structure: HinesStructure | np.ndarray,
    d: Float[Array, "*b N"],
    a: Float[Array, "*b N"],
    b: Float[Array, "*b N"],
    rhs: Float[Array, "*b N"],
) -> Float[Array, "*b N"]:
    """Solve `M x = rhs` for a Hines matrix `M` in O(N).

    **Arguments:**
    - `structure`: a `HinesStructure` (or the parent array to build one from; int (N,),
      `parent[i] < i`, roots `-1`).
    - `d`: the diagonal `M[i, i]`, shape `(..., N)`.
    - `a`: `a[i] = M[i, parent[i]]` (ignored at roots), shape `(..., N)`.
    - `b`: `b[i] = M[parent[i], i]` (ignored at roots), shape `(..., N)`.
    - `rhs`: right-hand side, shape `(..., N)`.

    Leading batch dimensions are vmapped. Differentiable in reverse mode w.r.t. `d`, `a`, `b` and
    `rhs` by a custom VJP whose backward pass is one more Hines solve with the transposed matrix
    (`a` and `b` swapped): `lam = M^-T g`, `grad rhs = lam`, `grad M = -lam x^T` on the sparsity
    pattern. No pivoting: `M` must be safe for Gaussian elimination in this order (true for
    the diagonally dominant cable matrices).

    **Returns:** `x`, shape `(..., N)`.
    """
    s = structure if isinstance(structure, HinesStructure) else HinesStructure(structure)
    arrays = jnp.broadcast_arrays(*(jnp.asarray(z) for z in (d, a, b, rhs)))
    dtype = jnp.result_type(*arrays)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    d, a, b, rhs = (z.astype(dtype) for z in arrays)
    if d.shape[-1:] != (s.n,):
        raise ValueError(f"d, a, b and rhs must have last dimension N = {s.n} (the tree's nodes), "
                         f"got shape {d.shape}")
    return _batched_solve(s, d, a, b, rhs)


@partial(jax.jit, static_argnums=(0,))
def _batched_solve(s, d, a, b, rhs):
    fn = partial(_hines_solve, s)
    for _ in range(d.ndim - 1):
        fn = jax.vmap(fn)
    return fn(d, a, b, rhs)


def dense_hines_matrix(structure: HinesStructure | np.ndarray, d, a, b) -> Array:
    """The dense N x N matrix of `(d, a, b)` (for tests and small examples)."""
    s = structure if isinstance(structure, HinesStructure) else HinesStructure(structure)
    n = s.n
    m = jnp.zeros((n, n), jnp.result_type(d, a, b)).at[jnp.arange(n), jnp.arange(n)].set(d)
    i = np.flatnonzero(s.parent >= 0)
    p = s.parent[i]
    m = m.at[i, p].set(jnp.asarray(a)[i])
    return m.at[p, i].set(jnp.asarray(b)[i])
