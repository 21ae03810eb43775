"""The O(N) implicit solve on a tree (Hines elimination) and its adjoint (a custom VJP).

A Hines matrix `M` (N x N) has a diagonal `d`, and for every non-root node `i` with parent
`p = parent[i] < i` two off-diagonal entries: `M[i, p] = a[i]` and `M[p, i] = b[i]`. Gaussian
elimination from the leaves to the root creates no fill-in, and back substitution from the root to
the leaves finishes the solve; both cost O(N) (Hines 1984).

Nodes at the same depth of the tree are independent in both sweeps, so the sweeps run level by
level: a `lax.scan` over the tree's levels, each a vectorised gather/scatter over that level's
nodes (padded to the widest level with a dummy node). The sequential depth is the tree's height
(for a dendritic tree, tens to a few hundred levels for thousands of nodes).

Hines, M. (1984). Efficient computation of branched nerve equations. Int. J. Bio-Medical
Computing 15, 69-76.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class HinesStructure:
    """The static part of a Hines solve: the tree's levels as padded index arrays.

    Hashable and compared by the parent array, so it can be a static field (one compilation per
    topology). Built from `parent` (int (N,), `parent[i] < i` for non-roots, `-1` for roots; a
    forest of several roots is allowed).

    **Attributes:** `n` (nodes), `parent` (int (N,)), `depth` (int (N,)), `levels` (int
    (L, W): the nodes of each depth, padded with the dummy index `n`), `level_parent` (int (L, W):
    their parents, dummy `n` for roots and padding).
    """

    __slots__ = ("n", "parent", "depth", "levels", "level_parent", "_hash")

    def __init__(self, parent):
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
        for arr in (parent, depth, levels, level_parent):
            arr.flags.writeable = False
        self.n = n
        self.parent = parent.astype(np.int64)
        self.depth = depth
        self.levels = levels
        self.level_parent = level_parent
        self._hash = hash((n, self.parent.tobytes()))

    @property
    def n_levels(self) -> int:
        return int(self.levels.shape[0])

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, HinesStructure) and np.array_equal(self.parent, other.parent)

    def __repr__(self):
        return f"HinesStructure(n={self.n}, levels={self.levels.shape[0]}, width={self.levels.shape[1]})"


def _pad(x, value):
    return jnp.concatenate([x, jnp.full(x.shape[:-1] + (1,), value, x.dtype)], axis=-1)


def _solve_impl(s: HinesStructure, d, a, b, rhs):
    """Level-wise Hines elimination and back substitution for one system (all args (N,))."""
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
