"""One step of a `Cell`: channel groups by region, membrane conductances, point processes, the
implicit cable solve (NEURON's fixed step), the gate update and the spike output.

The gate update, rate tables and spike output are the ones `PointNeuron` uses
(`neurons._membrane`); the scheme object (`brainfuse_jax.integrate`) gives the cable factor `k`
(1: backward Euler, 2: Crank-Nicolson) and whether rate tables are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..channels import Channel, GateKinetics
from ..neurons._base import State
from ..neurons._membrane import advance_gates, channel_kinetics, spike_output
from ._cable import hines_solve, tree_laplacian

if TYPE_CHECKING:
    from ._cell import Cell

# 1 mS/cm2 on 1 um2 = 1e-8 mS = 1e-5 uS; 1 uA/cm2 on 1 um2 = 1e-5 nA; 1 uF/cm2 on 1 um2 = 1e-5 nF.
DENSITY_TO_ABS = 1e-5


def cell_kinetics(cell: Cell, v) -> dict[str, dict[str, GateKinetics]]:
    """inf and tau of every gate of every channel at `v` (mV, all nodes)."""
    return group_kinetics(cell, v, [(None, cell.channels)])[0]


def channel_groups(cell: Cell):
    """Channels with gates, grouped by the nodes they live on: [(nodes or None, {name: ch})],
    each channel cut to its nodes."""
    n = cell.n_nodes
    groups = {}
    for name, nodes in cell.channel_nodes:
        ch = cell.channels[name]
        if not ch.gates:
            continue
        key = None if nodes is None else nodes
        sub = ch if nodes is None else restrict(ch, nodes.array, n)
        groups.setdefault(key, {})[name] = sub
    return [(None if k is None else k.array, chs) for k, chs in groups.items()]


def group_kinetics(cell: Cell, v, groups):
    """Per group `(nodes, channels)`: inf and tau of every gate at `v[nodes]`, from the rate
    tables where the scheme uses them (`channel_kinetics`: channels with the same table share
    one packed gather)."""
    celsius = cell.temperature.astype(v.dtype)
    return [channel_kinetics(chs, v if nodes is None else take(v, nodes), celsius, tables=cell.scheme.tables)
            for nodes, chs in groups]


def membrane(cell: Cell, state, area, dtype):
    """Membrane conductance G (uS) and G*E (nA) at every node, from the gates of `state`:
    each channel evaluated on its own nodes only."""
    n = cell.n_nodes
    G = jnp.zeros((n,), dtype)
    GE = jnp.zeros((n,), dtype)
    partial = {}
    for name, nodes in cell.channel_nodes:
        ch = cell.channels[name]
        if nodes is None:
            g = ch.conductance(state[name]).astype(dtype)
            G, GE = G + g, GE + g * jnp.asarray(ch.e_rev).astype(dtype)
            continue
        sub = restrict(ch, nodes.array, n)
        g = sub.conductance({k: take(s, nodes.array) for k, s in state[name].items()}).astype(dtype)
        g = jnp.broadcast_to(g, nodes.array.shape)
        gs, ges = partial.get(nodes, (0.0, 0.0))
        partial[nodes] = (gs + g, ges + g * jnp.asarray(sub.e_rev).astype(dtype))
    for nodes, (gs, ges) in partial.items():  # G and GE stacked: one scatter, not two
        G, GE = add_at(jnp.stack([G, GE]), nodes.array, jnp.stack([gs, ges]))
    return G * area, GE * area


def point_process_groups(cell: Cell):
    """Point processes batched by class and array shapes: [(names, nodes)] (static), so
    that each group's `begin_step` / `end_step` run once, vmapped over its members."""
    groups = {}
    for name, pp in cell.point_processes.items():
        leaves, _ = jax.tree.flatten(pp)
        key = (type(pp), tuple(jnp.shape(a) for a in leaves))
        groups.setdefault(key, []).append(name)
    return [(tuple(names), np.array([cell.node(cell.point_processes[m].loc) for m in names]))
            for names in groups.values()]


def stacked(cell: Cell, names):
    """The point processes `names` (same class and shapes) as one module with stacked leaves."""
    pps = [cell.point_processes[m] for m in names]
    treedef = jax.tree.structure(pps[0])
    leaves = [jnp.stack(ls) for ls in zip(*(jax.tree.leaves(pp) for pp in pps))]
    return jax.tree.unflatten(treedef, leaves)


def step_one(cell: Cell, state, x, dt):
    """One step of `dt` (ms) of one cell (no batch dims): `(state, spike)`."""
    v = state["v"]
    dtype = v.dtype
    s = cell.structure
    area = jnp.asarray(cell.tree.area_um2).astype(dtype) * DENSITY_TO_ABS
    ri = jnp.asarray(cell.tree.ri_MOhm).astype(dtype)
    nonroot = np.asarray(s.parent >= 0)
    parent = np.maximum(s.parent, 0)
    zero = jnp.zeros((), dtype)

    # Membrane conductance G (uS) and G*E (nA) at each node, from the gates of the last step.
    G, GE = membrane(cell, state, area, dtype)
    # Point processes: events first (NEURON delivers them before the step), then currents;
    # one vmapped call per group of processes of the same kind, one add per group.
    step = state["step"]
    pp_groups = point_process_groups(cell)
    pp_out = []
    for names, nodes in pp_groups:
        pps = stacked(cell, names)
        st0 = {k: jnp.stack([state[m][k] for m in names]) for k in state[names[0]]}
        st, g, ge = jax.vmap(lambda pp, st: pp.begin_step(st, step, dt))(pps, st0)
        pp_out.append((pps, st, g, ge))
        uniq, inv = np.unique(nodes, return_inverse=True)
        if uniq.size == 1:  # all on one node (e.g. a train of IClamp pulses)
            g, ge = jnp.sum(g, keepdims=True), jnp.sum(ge, keepdims=True)
        elif uniq.size < nodes.size:  # several processes on one node: sum them first
            g = jax.ops.segment_sum(g, inv, uniq.size)
            ge = jax.ops.segment_sum(ge, inv, uniq.size)
        G, GE = add_at(jnp.stack([G, GE]), uniq, jnp.stack([g, ge]))
    if cell.input_locs is None:
        GE = GE + x
    elif cell.input_locs:
        GE = GE.at[np.array([cell.node(loc) for loc in cell.input_locs])].add(x)

    # Axial coupling: g_ax (uS) between each node and its parent.
    gax = jnp.where(nonroot, 1.0 / jnp.where(nonroot, ri, 1.0), zero)
    k = cell.scheme.cable_factor
    cap = cell.cm.astype(dtype) * area / dt
    # (k C/dt + G + L) dv = G E - G v - L v, with L the axial Laplacian (NEURON's system for the
    # increment); v_new = v + k dv (backward Euler k = 1, Crank-Nicolson k = 2). The Laplacian's
    # diagonal (sum of a node's axial conductances) is loop-invariant: kept apart from G so that
    # XLA hoists its scatter out of the time loop.
    diag = k * cap + G + gax.at[parent].add(jnp.where(nonroot, gax, zero))
    if dtype == jnp.float64:
        # the same system for y = v + dv: (k C/dt + G + L) y = k C/dt v + G E, without L v (25%
        # of a CA1 step); in float32 the increment is kept, as NEURON does, for accuracy (solving
        # for y there loses ~0.1 mV over a 100 ms ball-and-stick run)
        y = hines_solve(s, diag, -gax, -gax, k * cap * v + GE)
        v_new = y if k == 1.0 else v + k * (y - v)
    else:
        dv = hines_solve(s, diag, -gax, -gax, GE - G * v - tree_laplacian(s, gax, v))
        v_new = v + k * dv

    # Gates by cnexp at the new V (instantaneous gates at inf(V)), each channel on its nodes.
    new = {"v": v_new, "step": step + 1}
    for c in cell.channels:
        new[c] = dict(state[c])
    groups = channel_groups(cell)
    for (nodes, _), kin in zip(groups, group_kinetics(cell, v_new, groups)):
        old = {c: {g: (state[c][g] if nodes is None else take(state[c][g], nodes)) for g in gk}
               for c, gk in kin.items()}
        for c, gk in advance_gates(old, kin, dt, cell.decay).items():
            for g, val in gk.items():
                new[c][g] = val if nodes is None else set_at(state[c][g], nodes, val)
    for (names, nodes), (pps, st, g, ge) in zip(pp_groups, pp_out):
        end = jax.vmap(lambda pp, st, vo, vn, g, ge: pp.end_step(st, vo, vn, g, ge, dt))
        st = end(pps, st, v[nodes], v_new[nodes], g, ge)
        for j, m in enumerate(names):
            new[m] = {key: val[j] for key, val in st.items()}
    sn = cell._spike_node()
    return new, spike_output(cell.surrogate, v[sn], v_new[sn], cell.spike_threshold.astype(dtype))


@eqx.filter_jit
def init_one(cell: Cell, v) -> State:
    """The resting state of one cell at `v` (mV, `(N,)`): gates at inf, point processes at rest,
    step 0 (one compiled call instead of many eager ops)."""
    kin = cell_kinetics(cell, v)
    state = {"v": v, "step": jnp.zeros((), jnp.int32)}
    for c in cell.channels:
        state[c] = {g: k.inf for g, k in kin.get(c, {}).items()}
    for name, pp in cell.point_processes.items():
        state[name] = pp.init_state(v.dtype)
    return state


# ---- static node-index helpers ------------------------------------------------------------------
def span(nodes):
    """(lo, hi) if the sorted `nodes` are the contiguous range lo..hi-1, else None."""
    if nodes.size and nodes[-1] - nodes[0] + 1 == nodes.size:
        return int(nodes[0]), int(nodes[-1]) + 1
    return None


def take(x, nodes):
    """`x[..., nodes]`: a slice where the nodes are contiguous (fuses), else a gather."""
    sp = span(nodes)
    return x[..., sp[0]:sp[1]] if sp else x[..., nodes]


def add_at(x, nodes, values):
    """`x.at[..., nodes].add(values)` for static sorted unique `nodes` (a padded add where they
    are contiguous)."""
    sp = span(nodes)
    if sp:
        pad = [(0, 0)] * (x.ndim - 1) + [(sp[0], x.shape[-1] - sp[1])]
        return x + jnp.pad(values, pad)
    return x.at[..., nodes].add(values, indices_are_sorted=True, unique_indices=True)


def set_at(x, nodes, values):
    """`x.at[..., nodes].set(values)` for static sorted unique `nodes`."""
    sp = span(nodes)
    if sp:
        return jnp.concatenate([x[..., :sp[0]], values, x[..., sp[1]:]], axis=-1)
    return x.at[..., nodes].set(values, indices_are_sorted=True, unique_indices=True)


def restrict(ch: Channel, nodes, n: int) -> Channel:
    """`ch` with every per-node field `(N,)` cut to `nodes`."""
    return jax.tree.map(lambda a: take(a, nodes) if isinstance(a, jax.Array) and a.shape == (n,) else a, ch)
