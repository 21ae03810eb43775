"""`Population`, `Projection` and `Network`: a spiking network that is itself a model.

A `Network` has `init_state` / `step` like every neuron model, so `simulate`, the adjoints, `fit`
and `sweep` run it unchanged. Per step `t` (advancing `t dt` -> `(t + 1) dt`):

1. the ring-buffer slot `t % depth` is read and cleared: the summed weights of the spikes that
   arrive in this step, one column per target neuron and receiving synapse;
2. Poisson drives add their events for this step, network-side synapses (`CurrExp`, `CurrAlpha`,
   `CondExp`) receive theirs and give their currents, which join the external input `x` and the
   current drives; port synapses (`Delta`, `Port`) are handed to the model
   (`model.step_events`);
3. every population advances one step and emits its spikes;
4. the spikes are delivered into the ring slots `(t + delay) % depth` (`network._propagate`): a
   spike of step `t` with a delay of `d` steps acts in step `t + d`, as in NEST.

Connectivity is generated at construction from `seed` (`network._connect`) and stored as one CSR
by source over all projections (bytes per synapse: `Network.bytes_per_synapse()`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from brainfuse_kernels._spikes import delivery_kernels

from .._validate import error_if, is_concrete
from ..neurons import AbstractNeuron
from ..neurons._base import State, normalize_batch_shape, resolve_dtype
from ..synapses import NetworkSynapse
from ._connect import connect
from ._drive import CurrentDrive, PoissonDrive
from ._random import uniforms
from ._propagate import Connectivity, build_connectivity, deliver


class Population(eqx.Module):
    """`n` neurons of one `model` (any neuron: `HH`/`PointNeuron`, IAF models, LIF family, ASN);
    per-neuron parameters are arrays of shape `(n,)`."""

    model: AbstractNeuron
    n: int = eqx.field(static=True)

    def __check_init__(self):
        if not isinstance(self.model, AbstractNeuron):
            raise TypeError(f"Population model must be a neuron model, got {type(self.model).__name__}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n <= 0:
            raise ValueError(f"Population n must be a positive int, got {self.n!r}")


class Projection(eqx.Module):
    """Synapses from population `pre` to population `post` (names in the network).

    **Arguments:** `pre`, `post` (population names), `rule` (a connection rule of
    `brainfuse_jax.network`, e.g. `FixedInDegree(400)`), `synapse` (`Delta()`, `Port(name)`,
    `CurrExp(tau)`, `CurrAlpha(tau)`, `CondExp(tau, e)`), `weight` (a number or a distribution,
    in the synapse's units), `delay` (ms, a number or a distribution; at least one step).
    """

    pre: str = eqx.field(static=True)
    post: str = eqx.field(static=True)
    rule: object = eqx.field(static=True)
    synapse: NetworkSynapse
    weight: object = eqx.field(static=True)
    delay: object = eqx.field(static=True)

    def __check_init__(self):
        for name in ("pre", "post"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Projection {name} must be a population name (str), got {getattr(self, name)!r}")
        if not isinstance(self.synapse, NetworkSynapse):
            raise TypeError(f"Projection synapse must be Delta, Port, CurrExp, CurrAlpha or CondExp, "
                            f"got {type(self.synapse).__name__}")


def _same(a: NetworkSynapse, b: NetworkSynapse) -> bool:
    return type(a) is type(b) and bool(eqx.tree_equal(a, b))


def _check_receiver(name: str, model: AbstractNeuron, synapse: NetworkSynapse):
    port = synapse.port
    receptors = getattr(model, "receptors", ())
    if port is not None and port not in receptors:
        raise ValueError(f"population {name!r} ({type(model).__name__}) cannot receive {type(synapse).__name__} "
                         f"synapses: its model's event inputs are {receptors}; give the projection a synapse "
                         "that adds a current (CurrExp, CurrAlpha, CondExp) or one of those ports")
    if synapse.needs_voltage and getattr(model, "voltage_unit", None) != "mV":
        raise ValueError(f"population {name!r} ({type(model).__name__}) cannot receive {type(synapse).__name__}: "
                         "a conductance synapse needs a membrane potential in mV (IAF models, PointNeuron/HH)")


class Network(AbstractNeuron):
    """A network of `Population`s connected by `Projection`s, driven by drives; a model.

    **Arguments:**
    - `populations`: dict name -> `Population`; neurons are numbered population by population
      in this order (`ranges`).
    - `projections`: `Projection`s between them.
    - `dt`: the time step (ms) the network runs at; delays are rounded to it (NEST's rule).
    - `drives`: `PoissonDrive`s and `CurrentDrive`s.
    - `seed`: connectivity, weights, delays and Poisson draws are generated from it.
    - `spike_capacity`: record spikes as (step, neuron id) in a buffer of this many entries per
      batch row in the state (`spikes(state)`); a run that emits more sets the overflow flag
      (`spikes` raises) instead of dropping them silently. None: no recording.
    - `propagation`: `"auto"` (default), `"event"` or `"dense"`: how spikes are delivered
      (`network._propagate.deliver`: small dense connectivity with one delay as a matrix product,
      everything else event-driven over the sources that fired).
    - `dtype`: of the weights (default JAX's default float).

    The input of a step is `(B, n)`: an external current into every neuron, in its model's input
    units (simulate's `inputs`; zeros with `n_steps=` for an autonomous network). The output is
    the spikes `(B, n)`.
    """

    populations: dict[str, Population]
    synapses: tuple[NetworkSynapse, ...]
    drives: tuple[PoissonDrive | CurrentDrive, ...]
    conn: Connectivity
    blocks: tuple[tuple[int, int, int], ...] = eqx.field(static=True)  # (population, synapse, column offset)
    names: tuple[str, ...] = eqx.field(static=True)
    projection_info: tuple[tuple[str, str, int], ...] = eqx.field(static=True)  # (pre, post, column offset)
    dt: float = eqx.field(static=True)
    seed: int = eqx.field(static=True)
    spike_capacity: int | None = eqx.field(static=True)
    native: bool = eqx.field(static=True)

    def __init__(self, populations: Mapping[str, Population], projections: Sequence[Projection] = (), *,
                 dt: float, drives: Sequence[PoissonDrive | CurrentDrive] = (), seed: int = 0,
                 spike_capacity: int | None = None, propagation: str = "auto", dtype=None):
        if not isinstance(populations, Mapping) or not populations:
            raise TypeError("populations must be a non-empty dict name -> Population")
        for name, pop in populations.items():
            if not isinstance(name, str) or not isinstance(pop, Population):
                raise TypeError(f"populations must map names (str) to Population, got {name!r}: {type(pop).__name__}")
        if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if spike_capacity is not None and (isinstance(spike_capacity, bool) or not isinstance(spike_capacity, int)
                                           or spike_capacity <= 0):
            raise ValueError(f"spike_capacity must be a positive int or None, got {spike_capacity!r}")
        dtype = resolve_dtype(dtype)
        self.populations = dict(populations)
        self.names = tuple(populations)
        self.dt, self.seed, self.spike_capacity = float(dt), int(seed), spike_capacity
        index = {name: i for i, name in enumerate(self.names)}
        sizes = [self.populations[name].n for name in self.names]
        offsets = np.concatenate([[0], np.cumsum(sizes)])

        # receiving blocks: one per (target population, synapse model)
        synapses: list[NetworkSynapse] = []
        blocks: list[tuple[int, int, int]] = []
        columns = 0

        def block_of(post: str, synapse: NetworkSynapse, what: str) -> int:
            nonlocal columns
            if post not in index:
                raise ValueError(f"{what} targets unknown population {post!r}; populations: {self.names}")
            _check_receiver(post, self.populations[post].model, synapse)
            p = index[post]
            for b, (bp, s, _) in enumerate(blocks):
                if bp == p and _same(synapses[s], synapse):
                    return b
            synapses.append(synapse)
            blocks.append((p, len(synapses) - 1, columns))
            columns += sizes[p]
            return len(blocks) - 1

        drives = tuple(drives)
        for d in drives:
            if not isinstance(d, (PoissonDrive, CurrentDrive)):
                raise TypeError(f"drives must be PoissonDrive or CurrentDrive, got {type(d).__name__}")
            if isinstance(d, PoissonDrive):
                block_of(d.target, d.synapse, "a PoissonDrive")
            elif d.target not in index:
                raise ValueError(f"a CurrentDrive targets unknown population {d.target!r}; populations: {self.names}")
            _check_drive_shape(d, self.populations[d.target].n)

        rng = np.random.default_rng(self.seed)
        pres, cols, weights, delays, proj, info = [], [], [], [], [], []
        for i, pr in enumerate(projections):
            if not isinstance(pr, Projection):
                raise TypeError(f"projections must be Projection, got {type(pr).__name__}")
            if pr.pre not in index:
                raise ValueError(f"projection {i} comes from unknown population {pr.pre!r}; populations: {self.names}")
            b = block_of(pr.post, pr.synapse, f"projection {i} ({pr.pre} -> {pr.post})")
            syn = connect(pr.rule, sizes[index[pr.pre]], sizes[index[pr.post]], weight=pr.weight, delay=pr.delay,
                          dt=self.dt, rng=rng, same_population=pr.pre == pr.post)
            if pr.synapse.nonnegative_weights and np.any(syn.weight < 0):
                raise ValueError(f"projection {i} ({pr.pre} -> {pr.post}): {type(pr.synapse).__name__} weights "
                                 f"must be >= 0 (conductances), got a minimum of {syn.weight.min()}")
            pres.append(syn.pre + offsets[index[pr.pre]])
            cols.append(syn.post + blocks[b][2])
            weights.append(syn.weight)
            delays.append(syn.delay_steps)
            proj.append(np.full(len(syn.pre), i, np.int16))
            info.append((pr.pre, pr.post, blocks[b][2]))
        cat = lambda xs, t: np.concatenate(xs).astype(t) if xs else np.zeros(0, t)  # noqa: E731
        delay_steps = cat(delays, np.int64)
        max_delay = int(delay_steps.max()) if len(delay_steps) else 1
        if max_delay > np.iinfo(np.int16).max:
            raise ValueError(f"delays must be below {np.iinfo(np.int16).max} steps, got {max_delay}")
        self.conn = build_connectivity(cat(pres, np.int64), cat(cols, np.int64), cat(weights, np.float64), delay_steps,
                                       cat(proj, np.int16), int(offsets[-1]), columns, max(max_delay, 1), dtype,
                                       propagation)
        self.synapses, self.blocks, self.drives = tuple(synapses), tuple(blocks), drives
        self.projection_info = tuple(info)
        self.native = delivery_kernels() is not None

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of neurons."""
        return sum(p.n for p in self.populations.values())

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Neuron id range `[start, stop)` of each population."""
        out, start = {}, 0
        for name in self.names:  # (not populations.items(): a pytree's dict comes back sorted by key)
            out[name] = (start, start + self.populations[name].n)
            start += self.populations[name].n
        return out

    @property
    def columns(self) -> int:
        """Columns of the ring buffer (target neurons summed over receiving synapse models)."""
        return sum(self.populations[self.names[p]].n for p, _, _ in self.blocks)

    def bytes_per_synapse(self) -> float:
        """Memory of the connectivity per synapse (bytes)."""
        return self.conn.bytes_per_synapse()

    def for_backend(self, backend) -> Network:
        """This network with its spike delivery where `backend` runs it (`backend.native`: the
        compiled CPU kernels where available (None), required (True) or never (False, `bf.XLA()`))."""
        available = delivery_kernels() is not None
        if backend.native and not available:
            raise ValueError("the native spike delivery kernels cannot be built here (no C++ compiler, a "
                             "non-CPU backend or BRAINFUSE_NATIVE=0); use backend=None or bf.XLA()")
        native = available if backend.native is None else bool(backend.native)
        if native == self.native:
            return self
        new = copy.copy(self)
        object.__setattr__(new, "native", native)  # a static field: eqx.tree_at cannot reach it
        return new

    # ---- state -------------------------------------------------------------------------------
    def init_state(self, batch_shape=1, dtype=None) -> State:
        """State for `B` independent runs of the network: `batch_shape` is `B` or `(B,)`.
        Populations start at their models' initial states."""
        shape = normalize_batch_shape(batch_shape)
        if len(shape) != 1:
            raise ValueError(f"a network's batch_shape is (B,) (independent runs), got {shape}")
        (b,) = shape
        dtype = resolve_dtype(dtype)
        state = {
            "populations": {name: p.model.init_state((b, p.n), dtype) for name, p in self.populations.items()},
            "synapses": tuple(self.synapses[s].init_state((b, self.populations[self.names[p]].n), dtype)
                              for p, s, _ in self.blocks),
            "ring": jnp.zeros((b, self.conn.depth * self.columns), dtype),
            "t": jnp.zeros((b,), jnp.int32),
            "overflow": jnp.zeros((b,), bool),
        }
        if self.spike_capacity is not None:
            cap = self.spike_capacity
            state["spikes"] = {"step": jnp.zeros((b, cap), jnp.int32), "id": jnp.zeros((b, cap), jnp.int32),
                               "count": jnp.zeros((b,), jnp.int32)}
        return state

    def input_shape(self, state: State) -> tuple[int, ...]:
        return (state["t"].shape[0], self.n)

    # ---- dynamics ----------------------------------------------------------------------------
    def step(self, state: State, x: Float[Array, "B n"], dt) -> tuple[State, Float[Array, "B n"]]:
        """One step of `dt` ms (must be the network's `dt`) under external currents `x` (B, n)."""
        t, ring = state["t"], state["ring"]
        message = f"dt must be the network's dt = {self.dt} ms (its delays are counted in steps of it)"
        if isinstance(dt, (int, float)) or is_concrete(dt):
            if not math.isclose(float(dt), self.dt, rel_tol=1e-6):
                raise ValueError(f"{message}, got {float(dt)}")
        else:  # traced: checked when it runs
            ring = error_if(ring, jnp.abs(dt - self.dt) > 1e-6 * self.dt, message)
        dt = self.dt
        b, n = t.shape[0], self.n
        dtype = ring.dtype
        x = jnp.asarray(x, dtype)
        if x.shape != (b, n):
            raise ValueError(f"x must have shape {(b, n)} (batch, neurons), got {x.shape}")
        depth, columns = self.conn.depth, self.columns
        start = (t % depth) * columns
        arrived = jax.vmap(lambda r, s: lax.dynamic_slice(r, (s,), (columns,)))(ring, start)  # (B, columns)
        ring = jax.vmap(lambda r, s: lax.dynamic_update_slice(r, jnp.zeros((columns,), dtype), (s,)))(ring, start)

        overflow = state["overflow"]
        sizes = {name: p.n for name, p in self.populations.items()}
        # the weights arriving in this step, per block; Poisson events join their block's
        arrived = [arrived[:, off:off + sizes[self.names[p]]] for p, _, off in self.blocks]
        for i, d in enumerate(self.drives):
            if isinstance(d, PoissonDrive):
                k = self._block(d.target, d.synapse)
                lo, hi = self.ranges[d.target]
                ids = jnp.arange(lo, hi, dtype=jnp.uint32)
                u = jax.vmap(lambda r, tt: uniforms(self.seed, i, r, tt, ids, dtype))(jnp.arange(b), t)
                ev, ovf = d.events(u, t[:, None], dt)
                arrived[k] = arrived[k] + ev
                overflow = overflow | ovf

        syn_states = list(state["synapses"])
        currents = {name: x[:, lo:hi] for name, (lo, hi) in self.ranges.items()}
        events: dict[str, dict[str, Array]] = {name: {} for name in self.names}
        for k, (p, s, _) in enumerate(self.blocks):
            name, syn, w = self.names[p], self.synapses[s], arrived[k]
            if syn.port is not None:
                events[name][syn.port] = events[name].get(syn.port, 0) + w
            else:
                syn_states[k] = syn.receive(syn_states[k], w)
                v = state["populations"][name]["v"]
                currents[name] = currents[name] + syn.current(syn_states[k], v).astype(dtype)
                syn_states[k] = syn.decay(syn_states[k], dt)
        for d in self.drives:
            if isinstance(d, CurrentDrive):
                currents[d.target] = currents[d.target] + d.current(t, dt, (b, sizes[d.target]), dtype)

        new_pops, spikes = {}, []
        for name in self.names:
            pop = self.populations[name]
            new_pops[name], out = pop.model.step_events(state["populations"][name], currents[name], events[name], dt)
            spikes.append(jnp.asarray(out, dtype))
        spikes = jnp.concatenate(spikes, axis=1)
        if self.conn.n_synapses:
            ring = deliver(self.conn, ring, spikes, t, self.native)
        new = {**state, "populations": new_pops, "synapses": tuple(syn_states), "ring": ring, "t": t + 1,
               "overflow": overflow}
        if self.spike_capacity is not None:
            new["spikes"] = _record(state["spikes"], lax.stop_gradient(spikes), t, self.spike_capacity, self.native)
        return new, spikes

    def _block(self, target: str, synapse: NetworkSynapse) -> int:
        p = self.names.index(target)
        return next(k for k, (bp, s, _) in enumerate(self.blocks) if bp == p and _same(self.synapses[s], synapse))

    # ---- reading the state -------------------------------------------------------------------
    def spikes(self, state: State, row: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The recorded spikes of batch row `row` as numpy `(steps, ids)`: step index of emission
        (time `(step + 1) dt` ms) and neuron id. Raises if the buffer or a drive overflowed."""
        if "spikes" not in state:
            raise ValueError("this network records no spikes: build it with spike_capacity=")
        rec = state["spikes"]
        count = int(rec["count"][row])
        if count > self.spike_capacity:
            raise ValueError(f"the spike buffer overflowed: {count} spikes for a capacity of {self.spike_capacity}; "
                             "rebuild the network with a larger spike_capacity")
        self.check(state)
        return np.asarray(rec["step"][row, :count]), np.asarray(rec["id"][row, :count])

    def check(self, state: State):
        """Raise if a Poisson drive's table overflowed in any batch row (see `PoissonDrive`)."""
        if bool(np.any(np.asarray(state["overflow"]))):
            raise ValueError("a Poisson drive drew beyond its count table (its rate exceeded max_rate): "
                             "build the drive with a larger max_rate")

    def population_counts(self, spikes: Float[Array, "B n"]) -> Float[Array, "B P"]:
        """Spikes per population in a step's output `(B, n)` -> `(B, populations)`; use as
        `simulate(..., record=lambda s, out: net.population_counts(out))` for population rates."""
        return jnp.stack([jnp.sum(spikes[:, lo:hi], axis=1) for lo, hi in self.ranges.values()], axis=1)

    def synapse_table(self, projection: int) -> dict[str, np.ndarray]:
        """Synapses of projection number `projection` (its index in `projections`) as numpy:
        `pre`, `post` (indices within their populations), `weight`, `delay` (steps)."""
        if not 0 <= projection < len(self.projection_info):
            raise ValueError(f"projection must be an index in [0, {len(self.projection_info)}), got {projection!r}")
        pre, _, offset = self.projection_info[projection]
        c = self.conn
        mask = np.asarray(c.projection) == projection
        sources = np.repeat(np.arange(self.n), np.diff(np.asarray(c.indptr)))[mask]
        delays = np.asarray(c.delays)[mask] if c.uniform_delay < 0 else np.full(int(mask.sum()), c.uniform_delay)
        return {"pre": sources - self.ranges[pre][0], "post": np.asarray(c.cols)[mask] - offset,
                "weight": np.asarray(c.weights)[mask], "delay": delays}


def _check_drive_shape(d, n: int):
    for name in ("rate", "weight") if isinstance(d, PoissonDrive) else ("amplitudes",):
        shape = tuple(getattr(d, name).shape)
        allowed = ((), (n,)) if name != "amplitudes" else ((len(d.times),), (len(d.times), n))
        if shape not in allowed:
            raise ValueError(f"{type(d).__name__} {name} must have shape {' or '.join(map(str, allowed))} for "
                             f"population {d.target!r} of {n} neurons, got {shape}")


def _record(rec, spikes, t, capacity, native):
    """Append this step's spikes (B, n) to the (step, id) buffers; `count` keeps counting past
    the capacity (the overflow flag) while nothing more is written."""
    if native:
        steps, ids, count = delivery_kernels().record(rec["step"], rec["id"], rec["count"], spikes, t)
        return {"step": steps, "id": ids, "count": count}
    fired = spikes != 0

    def row(rec, fired, t):
        pos = rec["count"] + jnp.cumsum(fired) - 1
        idx = jnp.where(fired & (pos < capacity), pos, capacity)
        ids = jnp.arange(fired.shape[0], dtype=jnp.int32)
        return {"step": rec["step"].at[idx].set(t, mode="drop"), "id": rec["id"].at[idx].set(ids, mode="drop"),
                "count": rec["count"] + jnp.sum(fired, dtype=jnp.int32)}

    return jax.vmap(row)(rec, fired, t)
