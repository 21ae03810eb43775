"""Spike propagation: one CSR of synapses by source neuron, delivered into target-side ring buffers.

A spike of source `s` in step `t` adds `w[k]` to column `cols[k]` of ring slot
`(t + delay[k]) % depth` for each synapse `k` of row `s`; step `t + delay[k]` reads (and clears)
that slot. The work is proportional to the synapses of the sources that fired. On the CPU the
delivery and its transpose are native kernels (`brainfuse_kernels._spikes`; XLA's scatter costs
~15 ns per synapse in a while loop over sources, the kernel ~1 ns); elsewhere, or with
`bf.XLA()`, an XLA form runs the same arithmetic (a loop over the firing sources, each a
fixed-width masked scatter of one CSR row).

The delivery is linear in the spikes and in the weights, and its reverse-mode rule is exact:
`d spike[s] = sum_k w[k] ct[slot_k, cols[k]]` for every source (a spike's surrogate cotangent
exists whether it fired or not) and `d w[k] = sum_b spike[b, s] ct[b, slot_k, cols[k]]`.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

from brainfuse_kernels._spikes import delivery_kernels


class Connectivity(eqx.Module):
    """Synapses of a network as one CSR by global source neuron.

    - `indptr` `(N + 1,)` int32: row `s` is `indptr[s]:indptr[s + 1]`.
    - `cols` `(S,)` int32: ring-buffer column of the target (the target neuron's position in the
      block of its population and receptor).
    - `weights` `(S,)` float: the weights, in the units of the receiving synapse (a leaf: gradients
      flow to it).
    - `delays` `(S,)` int16 steps (>= 1), or `(0,)` when every synapse has `uniform_delay`.
    - `projection` `(S,)` int16: index of the projection each synapse belongs to.
    """

    indptr: Int[Array, " Np1"]
    cols: Int[Array, " S"]
    weights: Float[Array, " S"]
    delays: Int[Array, " Sd"]
    projection: Int[Array, " S"]
    depth: int = eqx.field(static=True)
    uniform_delay: int = eqx.field(static=True)  # -1: per-synapse delays
    max_degree: int = eqx.field(static=True)
    dense: bool = eqx.field(static=True)

    @property
    def n_synapses(self) -> int:
        """Number of synapses S."""
        return int(self.cols.shape[0])

    def bytes_per_synapse(self) -> float:
        """Memory of the connectivity per synapse (bytes), the row pointers included."""
        arrays = (self.indptr, self.cols, self.weights, self.delays, self.projection)
        total = sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in arrays)
        return total / max(self.n_synapses, 1)


def build_connectivity(pre: np.ndarray, cols: np.ndarray, weights: np.ndarray, delays: np.ndarray,
                       projection: np.ndarray, n_sources: int, columns: int, depth: int, dtype,
                       propagation: str = "auto") -> Connectivity:
    """Sort synapses (global source `pre`, ring column `cols`, weight, delay in steps, projection
    index) into a `Connectivity` (stable sort by source: a row keeps the synapses' order).
    `propagation`: "event", "dense" or "auto" (see `deliver`)."""
    if len(cols) >= 2**31 - 1:
        raise ValueError(f"at most 2**31 - 2 synapses per network, got {len(cols)}")
    order = np.argsort(pre, kind="stable")
    counts = np.bincount(pre, minlength=n_sources)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    delays = np.asarray(delays)[order]
    uniform = len(delays) == 0 or bool(np.all(delays == delays[0]))
    return Connectivity(
        indptr=jnp.asarray(indptr),
        cols=jnp.asarray(np.asarray(cols)[order], jnp.int32),
        weights=jnp.asarray(np.asarray(weights)[order], dtype),
        delays=jnp.zeros((0,), jnp.int16) if uniform else jnp.asarray(delays, jnp.int16),
        projection=jnp.asarray(np.asarray(projection)[order], jnp.int16),
        depth=int(depth),
        uniform_delay=int(delays[0]) if uniform and len(delays) else -1,
        max_degree=int(counts.max()) if len(counts) else 0,
        dense=_choose_dense(propagation, uniform, n_sources, columns, len(cols)),
    )


#: the dense path's bounds: a (sources x columns) matrix of at most this many entries ...
DENSE_MAX_ENTRIES = 2**20
#: ... of which at least this fraction are synapses
DENSE_MIN_DENSITY = 1 / 16


def _choose_dense(propagation: str, uniform: bool, n_sources: int, columns: int, n_synapses: int) -> bool:
    if propagation not in ("auto", "event", "dense"):
        raise ValueError(f"propagation must be 'auto', 'event' or 'dense', got {propagation!r}")
    fits = uniform and n_sources * columns <= DENSE_MAX_ENTRIES
    if propagation == "dense" and not fits:
        raise ValueError(f"propagation='dense' needs one delay for all synapses and at most {DENSE_MAX_ENTRIES} "
                         f"(sources x columns) entries; this network has {n_sources} x {columns}")
    if propagation == "auto":
        return fits and n_synapses >= DENSE_MIN_DENSITY * n_sources * columns
    return propagation == "dense"


def deliver(conn: Connectivity, ring: Float[Array, "B W"], spikes: Float[Array, "B N"],
            t: Int[Array, " B"], native: bool) -> Float[Array, "B W"]:
    """`ring` (B, depth * columns) plus the deliveries of this step's `spikes` (B, N), emitted in
    step `t` (B,). `native`: use the CPU kernels (they must be available).

    Two paths, chosen when the network is built (`propagation="auto"`): small dense connectivity
    (one delay for all synapses, at most 2^20 source x column entries, at least 1/16 of them
    synapses) is delivered as `spikes @ W` with `W` scattered from the weights, a matrix product
    that costs the same whatever the activity and wins when many sources fire per step; all other
    connectivity event-driven, in proportion to the synapses of the sources that fired.
    """
    if conn.dense:
        return _deliver_dense(conn, ring, spikes, t)
    return _deliver(conn.depth, conn.uniform_delay, conn.max_degree, native, ring, spikes, t, conn.indptr,
                    conn.cols, conn.weights, conn.delays)


def _deliver_dense(conn, ring, spikes, t):
    n = spikes.shape[-1]
    columns = ring.shape[-1] // conn.depth
    rows = jnp.repeat(jnp.arange(n), jnp.diff(conn.indptr), total_repeat_length=conn.n_synapses)
    w = jnp.zeros((n, columns), ring.dtype).at[rows, conn.cols].add(conn.weights.astype(ring.dtype))
    add = spikes.astype(ring.dtype) @ w  # (B, columns)
    start = ((t + conn.uniform_delay) % conn.depth) * columns
    put = lambda r, a, s: lax.dynamic_update_slice(r, lax.dynamic_slice(r, (s,), (columns,)) + a, (s,))  # noqa: E731
    return jax.vmap(put)(ring, add, start)


def _slots(t, delays, uniform_delay, depth):
    d = uniform_delay if uniform_delay >= 0 else delays.astype(jnp.int32)
    return (t + d) % depth


def _deliver_xla(depth, uniform_delay, max_degree, ring, spikes, t, indptr, cols, w, delays):
    n = spikes.shape[-1]
    columns = ring.shape[-1] // depth
    k = jnp.arange(max_degree)
    pad = lambda a: jnp.concatenate([a, jnp.zeros((max_degree,), a.dtype)])  # noqa: E731
    cols_p, w_p = pad(cols), pad(w)
    d_p = pad(delays) if uniform_delay < 0 else None

    def one(ring, spikes, t):  # one batch row: a loop over the sources that fired
        fired = spikes != 0
        src = jnp.nonzero(fired, size=n, fill_value=0)[0]

        def body(carry):
            i, ring = carry
            s = src[i]
            lo = indptr[s]
            valid = k < indptr[s + 1] - lo
            c = lax.dynamic_slice(cols_p, (lo,), (max_degree,))
            slot = _slots(t, None if d_p is None else lax.dynamic_slice(d_p, (lo,), (max_degree,)), uniform_delay, depth)
            flat = jnp.where(valid, slot * columns + c, ring.shape[0])
            return i + 1, ring.at[flat].add(spikes[s] * lax.dynamic_slice(w_p, (lo,), (max_degree,)), mode="drop")

        return lax.while_loop(lambda c: c[0] < fired.sum(), body, (0, ring))[1]

    return jax.vmap(one)(ring, spikes, t)


def _deliver_vjp_xla(depth, uniform_delay, ct_ring, spikes, t, indptr, cols, w, delays):
    n = spikes.shape[-1]
    columns = ct_ring.shape[-1] // depth
    rows = jnp.repeat(jnp.arange(n), jnp.diff(indptr), total_repeat_length=w.shape[0])
    slot = _slots(t[:, None], delays[None, :] if uniform_delay < 0 else None, uniform_delay, depth)
    g = jnp.take_along_axis(ct_ring, slot * columns + cols[None, :], axis=1)  # (B, S)
    ct_spikes = jax.ops.segment_sum((g * w[None, :]).T, rows, n, indices_are_sorted=True).T
    return ct_spikes, jnp.sum(g * spikes[:, rows], axis=0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _deliver(depth, uniform_delay, max_degree, native, ring, spikes, t, indptr, cols, w, delays):
    if native:
        return delivery_kernels().deliver(ring, spikes.astype(ring.dtype), t, indptr, cols, w.astype(ring.dtype),
                                          delays, depth=depth, uniform_delay=uniform_delay)
    return _deliver_xla(depth, uniform_delay, max_degree, ring, spikes.astype(ring.dtype), t, indptr, cols,
                        w.astype(ring.dtype), delays)


def _fwd(depth, uniform_delay, max_degree, native, ring, spikes, t, indptr, cols, w, delays):
    out = _deliver(depth, uniform_delay, max_degree, native, ring, spikes, t, indptr, cols, w, delays)
    return out, (spikes, t, indptr, cols, w, delays)


def _bwd(depth, uniform_delay, max_degree, native, res, ct_ring):
    spikes, t, indptr, cols, w, delays = res
    dtype = ct_ring.dtype
    if native:
        ct_spikes, ct_w = delivery_kernels().deliver_vjp(ct_ring, spikes.astype(dtype), t, indptr, cols, w.astype(dtype),
                                                         delays, depth=depth, uniform_delay=uniform_delay)
    else:
        ct_spikes, ct_w = _deliver_vjp_xla(depth, uniform_delay, ct_ring, spikes.astype(dtype), t, indptr, cols,
                                           w.astype(dtype), delays)
    return (ct_ring, ct_spikes.astype(spikes.dtype), None, None, None, ct_w.astype(w.dtype), None)


_deliver.defvjp(_fwd, _bwd)
