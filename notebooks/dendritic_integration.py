# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dendritic integration: the soma's response depends on the interval between inputs
#
# A soma with Hodgkin-Huxley channels and three passive dendrites of different lengths and
# diameters (built with `Morphology.from_sections`, like `h.Section` + `connect`). Two excitatory
# synapses (`ExpSyn`, tau 2 ms, e 0 mV) sit near the tips of dendrites A and B; one input alone
# is subthreshold. We sweep the interval `dt_AB = t_B - t_A` from -10 to +10 ms and plot the
# soma's peak depolarisation: only inputs close in time sum to a spike, and the window is
# asymmetric because the two dendrites filter their inputs differently.
#
# Units: ms, mV, um, nA, uS. Runtime: well under a minute on one CPU core.
# Source of truth: `notebooks/dendritic_integration.py`; the `.ipynb` is built from it by
# `python notebooks/build_notebooks.py`.

# %%
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small

import brainfuse_jax as bf  # noqa: E402
from brainfuse_jax.morphology import Cell, ExpSyn, Morphology  # noqa: E402

T0 = time.perf_counter()
DT = 0.025  # ms
T_STOP = 60.0  # ms
T_A = 20.0  # ms: the event on dendrite A
W = 0.01  # uS per synapse

# 3D points: rows x, y, z, diam (um). Dendrites start at the soma centre (connected at soma(0.5)).
morph = Morphology.from_sections([
    dict(name="soma", points=[[-10, 0, 0, 20], [10, 0, 0, 20]]),
    dict(name="dend_a", swc_type=3, parent="soma", parent_x=0.5,  # long, tapering 2 -> 1 um
         points=[[0, 0, 0, 2.0], [150, 200, 0, 1.5], [200, 400, 0, 1.0]]),
    dict(name="dend_b", swc_type=3, parent="soma", parent_x=0.5,  # shorter, thin 1.5 -> 0.8 um
         points=[[0, 0, 0, 1.5], [-150, 150, 0, 1.0], [-250, 200, 0, 0.8]]),
    dict(name="dend_c", swc_type=3, parent="soma", parent_x=0.5,  # thick, no synapse: a load
         points=[[0, 0, 0, 3.0], [20, -150, 0, 2.5], [0, -300, 0, 2.0]]),
])
tree = morph.compartmentalize(d_lambda=0.1, freq=100.0, Ra=100.0, cm=1.0)
print(morph)
print("nseg per section (d_lambda rule):", tree.nseg, "->", tree.n_nodes, "nodes")
for s in morph.sections:
    print(f"  {s.name}: L = {s.L:.0f} um, diam {s.diam[0]:.1f} -> {s.diam[-1]:.1f} um")


def make_cell(delta):
    """The cell with events at T_A on dend_a(0.9) and T_A + delta on dend_b(0.9)."""
    pps = {"syn_a": ExpSyn(("dend_a", 0.9), tau=2.0, e=0.0, event_times=[T_A], weights=W),
           "syn_b": ExpSyn(("dend_b", 0.9), tau=2.0, e=0.0, event_times=[T_A + delta], weights=W)}
    cell = Cell(tree, temperature=6.3, input_locs=(), point_processes=pps)
    cell = cell.insert("pas", bf.Leak(0.1, -65.0), "dend")          # mS/cm2, mV: passive dendrites
    cell = cell.insert("na", bf.HHNa(120.0, 50.0), "soma")          # HH soma
    cell = cell.insert("k", bf.HHK(36.0, -77.0), "soma")
    return cell.insert("leak", bf.Leak(0.3, -54.387), "soma")


cell0 = make_cell(0.0)
SOMA = cell0.node(("soma", 0.5))
N_STEPS = int(round(T_STOP / DT))
state0 = cell0.init_state(1, jnp.float64)
t = np.arange(1, N_STEPS + 1) * DT  # sample times (after each step), ms


@eqx.filter_jit
def run(cell):
    """V at every node, (T, nodes) in mV."""
    return bf.simulate(cell, state0, jnp.zeros((1, N_STEPS, 0)), DT, record="v")[1][0]


def with_delta(delta):
    """The same cell with another interval (only an array changes: no recompilation)."""
    return eqx.tree_at(lambda c: c.point_processes["syn_b"].event_times, cell0,
                       jnp.array([T_A + delta]))


# %% [markdown]
# ## One input alone, and both together

# %%
far = jnp.array([1e6])  # an event after the end of the run: the synapse stays silent
only_a = eqx.tree_at(lambda c: c.point_processes["syn_b"].event_times, cell0, far)
only_b = eqx.tree_at(lambda c: c.point_processes["syn_a"].event_times, cell0, far)
traces = {"A alone": run(only_a), "B alone": run(only_b), "A and B together (dt_AB = 0)": run(cell0),
          "A, then B 8 ms later": run(with_delta(8.0))}
loc_a, loc_b = cell0.node(("dend_a", 0.9)), cell0.node(("dend_b", 0.9))

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for label, v in traces.items():
    axes[0].plot(t, v[:, SOMA], label=label)
axes[0].set(xlabel="time (ms)", ylabel="V at soma(0.5) (mV)", title="soma")
axes[0].legend(fontsize=8)
v = traces["A and B together (dt_AB = 0)"]
axes[1].plot(t, v[:, loc_a], label="dend_a(0.9) (synapse A)")
axes[1].plot(t, v[:, loc_b], label="dend_b(0.9) (synapse B)")
axes[1].plot(t, v[:, cell0.node(("dend_c", 0.9))], label="dend_c(0.9) (no synapse)")
axes[1].plot(t, v[:, SOMA], "k", lw=1, label="soma(0.5)")
axes[1].set(xlabel="time (ms)", ylabel="V (mV)", title="dt_AB = 0: dendrites and soma")
axes[1].tick_params(labelleft=True)
axes[1].legend(fontsize=8)
for ax in axes:
    ax.set_xlim(10, 50)
fig.tight_layout()

peak_alone = {k: float(traces[k][:, SOMA].max()) for k in ("A alone", "B alone")}
print({k: f"{p:.1f} mV" for k, p in peak_alone.items()}, "| together:",
      f"{float(traces['A and B together (dt_AB = 0)'][:, SOMA].max()):.1f} mV")
assert max(peak_alone.values()) < -40.0  # one input alone is subthreshold
assert float(traces["A and B together (dt_AB = 0)"][:, SOMA].max()) > 0.0  # together: a spike

# %% [markdown]
# ## Sweep the interval between the inputs
#
# `dt_AB < 0`: B arrives first. Every run reuses the compiled simulation.

# %%
deltas = np.arange(-10.0, 10.01, 0.5)  # ms
t1 = time.perf_counter()
runs = [np.asarray(run(with_delta(float(d)))) for d in deltas]
peaks = np.array([v[:, SOMA].max() for v in runs])
spikes = peaks > 0.0
print(f"{len(deltas)} intervals in {time.perf_counter() - t1:.1f} s; the soma spikes for dt_AB in "
      f"[{deltas[spikes].min():g}, {deltas[spikes].max():g}] ms")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(deltas, peaks, "k-", lw=1)
ax.scatter(deltas[spikes], peaks[spikes], c="tab:red", zorder=3, label="soma spikes (peak > 0 mV)")
ax.scatter(deltas[~spikes], peaks[~spikes], c="tab:blue", zorder=3, label="no spike")
for k, p in peak_alone.items():
    ax.axhline(p, ls=":", lw=1, color="gray")
    ax.text(deltas[0], p + 1, k, fontsize=8, color="gray")
ax.set(xlabel="interval dt_AB = t_B - t_A (ms)", ylabel="peak V at soma (mV)",
       title="Coincidence detection across dendrites")
ax.legend(fontsize=8, loc="center right")
fig.tight_layout()
assert spikes[np.argmin(np.abs(deltas))] and not spikes[0] and not spikes[-1]

# %% [markdown]
# ## The morphology, coloured by voltage at the soma's peak
#
# Each segment (NEURON's `sec(x)`) is drawn as the piece of its section's 3D polyline between
# `k / nseg` and `(k + 1) / nseg` of the arc length (x-y projection), coloured by its V at the
# time of the soma's peak; line widths follow the diameters.

# %%
from matplotlib.collections import LineCollection  # noqa: E402


def segment_polylines(morph, tree):
    """[(node index, (n, 2) xy points, mean diam)] for every segment of every section."""
    out = []
    nseg = tree.nseg
    for s in morph.sections:
        arc, xyz = np.asarray(s.arc, float), np.asarray(s.xyz, float)
        n = nseg[s.name]
        for k in range(n):
            a0, a1 = arc[-1] * k / n, arc[-1] * (k + 1) / n
            inner = arc[(arc > a0) & (arc < a1)]
            a = np.concatenate([[a0], inner, [a1]])
            pts = np.stack([np.interp(a, arc, xyz[:, j]) for j in range(2)], axis=1)
            out.append((tree.locate(s.name, (k + 0.5) / n), pts, float(np.interp((a0 + a1) / 2, arc, s.diam))))
    return out


def plot_morphology(ax, v_nodes, title, vmin=-70.0, vmax=20.0):
    segs = segment_polylines(morph, tree)
    lc = LineCollection([p for _, p, _ in segs], array=np.array([v_nodes[i] for i, _, _ in segs]),
                        linewidths=[max(1.5, 2.0 * d) for _, _, d in segs], cmap="viridis",
                        norm=plt.Normalize(vmin, vmax), capstyle="round")
    ax.add_collection(lc)
    for name, col in (("dend_a", "tab:red"), ("dend_b", "tab:orange")):
        s = morph[name]
        xy = [np.interp(0.9 * s.arc[-1], s.arc, s.xyz[:, j]) for j in range(2)]
        ax.plot(*xy, "o", mfc="none", mec=col, ms=10, mew=2, label=f"synapse {name[-1].upper()}")
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set(xlabel="x (um)", ylabel="y (um)")
    ax.set_title(title, fontsize=10)
    return lc


fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, d in zip(axes, (0.0, 8.0)):
    v = runs[int(np.argmin(np.abs(deltas - d)))]
    k = int(np.argmax(v[:, SOMA]))
    lc = plot_morphology(ax, v[k], f"dt_AB = {d:g} ms: V at t = {t[k]:.2f} ms\n(soma peak {v[k, SOMA]:.0f} mV)")
axes[0].legend(fontsize=8, loc="lower left")
fig.colorbar(lc, ax=axes, label="membrane potential (mV)", shrink=0.85)
print(f"total runtime {time.perf_counter() - T0:.1f} s")
