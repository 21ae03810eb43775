"""`Cell`: a multi-compartment neuron on a `CompartmentTree`, integrated implicitly as NEURON does."""

from __future__ import annotations

import copy

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import as_float_array, check_dt, check_finite, check_nonnegative, check_positive, is_concrete, param
from ..channels import Channel, GateKinetics
from ..integrate import AbstractImplicitScheme
from ..integrate._shorthands import CELL_SCHEMES, as_cell_scheme
from ..neurons._base import AbstractNeuron, State, normalize_batch_shape, resolve_dtype
from ..neurons._membrane import check_decay
from ..surrogate import Surrogate
from ..synapses import PointProcess
from ._cable import HinesStructure
from ._cell_step import cell_kinetics, init_one, step_one
from ._tree import _Static

CellScheme = Literal["neuron", "backward_euler", "crank_nicolson"] | AbstractImplicitScheme
_RESERVED = ("v", "step")
_SWC_TYPES = {"soma": 1, "axon": 2, "basal": 3, "dend": 3, "apical": 4, "apic": 4}

Where = Any  # None | int (SWC type) | str (type or section name) | bool (N,) | callable | sequence


class _Locator:
    """Static, concrete copy of what `CompartmentTree.locate` reads (compared by value)."""

    __slots__ = ("tree", "default_spike_node", "_key", "_cache")

    def __init__(self, tree):
        if not is_concrete((tree.area_um2, getattr(tree, "x", None))):
            raise ValueError("build a Cell outside jit/vmap (its tree's layout must be concrete); "
                             "vmap over parameters of a built cell instead")
        self.tree = tree
        area = np.asarray(tree.area_um2)
        swc = getattr(tree, "swc_type", None)
        soma = np.flatnonzero((np.asarray(swc) == 1) & (area > 0)) if swc is not None else np.zeros(0)
        self.default_spike_node = int(soma[0]) if soma.size else 0
        parts = [np.asarray(tree.parent).tobytes(), (area > 0).tobytes()]
        for name in ("section", "x", "swc_type"):
            if getattr(tree, name, None) is not None:
                parts.append(np.asarray(getattr(tree, name)).tobytes())
        parts.append(repr(tuple(getattr(tree, "section_names", ()))).encode())
        self._key = b"|".join(parts)
        self._cache = {}

    def locate(self, sec, x) -> int:
        key = (sec, x)
        if key not in self._cache:
            self._cache[key] = int(self.tree.locate(sec, x))
        return self._cache[key]

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Locator) and self._key == other._key


@dataclasses.dataclass(frozen=True)
class Probe:
    """A record entry `(state, output) -> array`: the state variable at `path` (a tuple of keys),
    read at `nodes` (None: all). Hashable, so `simulate` caches its compilation."""

    path: tuple[str, ...]
    nodes: tuple[int, ...] | None = None

    def __call__(self, state, _output=None):
        leaf = state
        for p in self.path:
            if not isinstance(leaf, dict) or p not in leaf:
                raise ValueError(f"probe: {'.'.join(self.path)!r} is not a state variable of this cell")
            leaf = leaf[p]
        return leaf if self.nodes is None else leaf[..., np.array(self.nodes, dtype=np.int32)]


class Cell(AbstractNeuron):
    r"""A multi-compartment neuron: the cable equation on a `CompartmentTree`, with channels,
    point processes and NEURON's fixed-step integrator.

    For every node `i` (segment) with membrane area `A_i`, capacitance `C_i = cm_i A_i` and
    axial conductance `g_i = 1 / ri_i` to its parent `p(i)`:

    $$C_i \frac{dV_i}{dt} = -A_i \sum_c g_c(x_c)\,(V_i - E_c) - \sum_{j \sim i} g_{ij} (V_i - V_j)
      - \sum_{pp \in i} (g_{pp} V_i - g_{e,pp}) + I_{x,i}$$

    (currents in nA; conductances in uS: 1 mS/cm2 on 1 um2 is 1e-5 uS; see `docs/cable.md`).
    Each step solves `(k C/dt + G + L) dV = rhs` with the Hines solver (`hines_solve`, O(N),
    adjoint by custom VJP), with `L` the tree Laplacian; `V += k dV`.

    **Arguments:**
    - `tree`: the compartments (`Morphology.compartmentalize(...)` or a `CompartmentTree`).
    - `channels`: dict name -> `Channel`; `gbar` (mS/cm2) may be a scalar (everywhere) or one
      value per node `(N,)`, zero where the channel is absent. Use `insert` / `set_density`
      to place channels by region or as a function of distance: a channel placed with `insert`
      exists only in its region (`channel_mask`), as a NEURON mechanism exists only where
      inserted, and the step evaluates its gates and current there only (the cost of a channel
      is that of its region, not of the whole cell).
    - `cm`: specific capacitance, uF/cm2, scalar or `(N,)` (default: the tree's, else 1).
    - `temperature`: degC (channels scale their rates by q10).
    - `point_processes`: dict name -> `IClamp` / `ExpSyn` / `Exp2Syn` / `AlphaSyn`, each at its
      `loc` (node index or `(section, x)`); their states are `state[name]`.
    - `scheme`: a scheme of `brainfuse_jax.integrate` that solves the cable implicitly, or its
      shorthand: `"neuron"` / `NeuronTables()` (default; NEURON's fixed step, `secondorder = 0`:
      V by linearised backward Euler with the gates of the previous step, then gates by `cnexp`
      at the new V, inf/tau from the channels' rate tables as NMODL `TABLE`), `"backward_euler"`
      / `BackwardEuler()` (same, exact rate functions), `"crank_nicolson"` / `CrankNicolson()`
      (NEURON's `secondorder = 2`: half-step implicit solve and extrapolation, `V += 2 dV` with
      `C/dt` doubled; gates as `"neuron"`). `"exp_euler"` and `"rk4"` raise `ValueError`.
    - `decay`: how the gate update evaluates exp(-dt/tau): `"exp"` (default, exact) or `"pade"`
      (the L-stable [2/3] Pade approximant, no `exp`; as `PointNeuron(decay=...)`).
    - `input_locs`: where the external input `x` of `step` is injected (nA, positive =
      depolarising): `None` (default) = every node, `x` of shape `(*batch, N)`; or a tuple of
      locations, `x` of shape `(*batch, len(input_locs))` (`()` for no input).
    - `spike_loc`: location whose upward crossing of `spike_threshold` (mV) is the step's output
      (default: the first soma node, else node 0); `surrogate` gives its gradient.
    - `unroll`: how the tree solve runs (`HinesStructure`): True unrolls its levels (fastest on
      CPU; compile time grows with the tree's height), False a `lax.scan` over them, None
      (default) unrolls trees of up to `UNROLL_MAX_LEVELS` (128) levels from their centre.

    Where the tree solve runs is `simulate`'s `backend=`: by default (and with `bf.NativeCPU()`,
    which requires it) as a compiled C++ kernel (NEURON's loops, through XLA's FFI) on the CPU
    backend when a C++ compiler is available; with `bf.XLA()` as the XLA form above
    (`HinesStructure`). `cell.for_backend(backend)` is the cell as that backend runs it.

    State: `{"v": (*batch, N) mV, <channel>: {gate: (*batch, N)}, <point process>: {...},
    "step": int (*batch,)}` (a channel's gates outside its region keep their initial values).
    The step index gives time: step `n` runs from `n dt` to `(n+1) dt`.
    """

    tree: Any
    channels: dict[str, Channel]
    cm: Float[Array, " N"]
    temperature: Float[Array, ""] = param(6.3, "temperature", "degC")
    point_processes: dict[str, PointProcess] = eqx.field(default_factory=dict)
    spike_threshold: Float[Array, ""] = param(0.0, "spike_threshold", "mV")
    surrogate: Surrogate = Surrogate("atan", 0.5)
    scheme: AbstractImplicitScheme = eqx.field(default="neuron", static=True)
    decay: str = eqx.field(default="exp", static=True)
    input_locs: tuple | None = eqx.field(default=None, static=True)
    spike_loc: Any = eqx.field(default=None, static=True)
    structure: HinesStructure = eqx.field(default=None, static=True)
    # A concrete snapshot of the tree's layout, so locations resolve inside jit too (where the
    # tree's arrays are tracers).
    locator: _Locator = eqx.field(default=None, static=True)
    # Where each channel is inserted: ((name, _Static node indices, or None for every node), ...).
    # The step evaluates a channel only there (NEURON's mechanism exists only where inserted).
    channel_nodes: tuple = eqx.field(default=(), static=True)

    def __init__(self, tree, channels: Mapping[str, Channel] | None = None, *, cm=None,
                 temperature=6.3, point_processes: Mapping[str, PointProcess] | None = None,
                 scheme: CellScheme = "neuron", input_locs=None, spike_loc=None,
                 spike_threshold=0.0, surrogate: Surrogate = Surrogate("atan", 0.5),
                 unroll: bool | None = None, _native: bool | None = None, _channel_nodes=None,
                 decay: str = "exp"):
        for attr in ("parent", "area_um2", "ri_MOhm", "locate"):
            if not hasattr(tree, attr):
                raise TypeError(f"tree must be a CompartmentTree (missing {attr!r}), got {type(tree).__name__}")
        n = len(np.asarray(tree.parent))
        self.tree = tree
        self.structure = HinesStructure(np.asarray(tree.parent), unroll=unroll, native=_native)
        if cm is None:
            cm = getattr(tree, "cm_uF_cm2", None)
            cm = 1.0 if cm is None else cm
        cm = as_float_array(cm, "cm")
        if cm.shape not in ((), (n,)):
            raise ValueError(f"cm must be a scalar or have shape ({n},) (one per node), got {cm.shape}")
        self.cm = check_nonnegative(check_finite(jnp.broadcast_to(cm, (n,)), "cm"), "cm", "uF/cm2")
        channels = {} if channels is None else channels
        if not isinstance(channels, Mapping):
            raise TypeError(f"channels must be a dict name -> Channel, got {type(channels).__name__}")
        self.channels = {name: _per_node_channel(ch, n, name) for name, ch in channels.items()}
        given = dict(_channel_nodes or {})
        self.channel_nodes = tuple((name, _support(given.get(name), n)) for name in self.channels)
        self.temperature = temperature
        pps = {} if point_processes is None else point_processes
        if not isinstance(pps, Mapping):
            raise TypeError(f"point_processes must be a dict name -> PointProcess, got {type(pps).__name__}")
        self.point_processes = dict(pps)
        self.scheme = as_cell_scheme(scheme)
        self.decay = check_decay(decay)
        self.input_locs = None if input_locs is None else tuple(input_locs)
        self.spike_loc = spike_loc
        self.spike_threshold = spike_threshold
        self.surrogate = surrogate
        self.locator = _Locator(tree)

    def __check_init__(self):
        n = self.n_nodes
        area, ri = self.tree.area_um2, self.tree.ri_MOhm
        if jnp.shape(area) != (n,) or jnp.shape(ri) != (n,):
            raise ValueError(f"tree.area_um2 and tree.ri_MOhm must have shape ({n},)")
        if is_concrete(area):
            check_finite(area, "tree.area_um2")
            check_nonnegative(area, "tree.area_um2", "um2")
        if is_concrete(ri):
            nonroot = self.structure.parent >= 0
            check_finite(np.asarray(ri)[nonroot], "tree.ri_MOhm")
            check_positive(np.asarray(ri)[nonroot], "tree.ri_MOhm (non-root nodes)", "MOhm")
        if not isinstance(self.scheme, AbstractImplicitScheme):
            raise ValueError(f"scheme must be one of {CELL_SCHEMES} or their scheme objects, got {self.scheme!r}")
        check_decay(self.decay)
        names = set()
        for kind, group, cls in (("channels", self.channels, Channel),
                                 ("point_processes", self.point_processes, PointProcess)):
            for name, obj in group.items():
                if not isinstance(name, str) or name in _RESERVED:
                    raise ValueError(f"{kind} names must be strings other than {_RESERVED}, got {name!r}")
                if name in names:
                    raise ValueError(f"name {name!r} is used twice (channels and point processes share "
                                     "the state's namespace)")
                names.add(name)
                if not isinstance(obj, cls):
                    raise TypeError(f"{kind}[{name!r}] must be a {cls.__name__}, got {type(obj).__name__}")
                if "cai" in getattr(obj, "rate_args", ()):
                    raise ValueError(f"channels[{name!r}] ({type(obj).__name__}) depends on intracellular "
                                     "Ca; Cell has no calcium pools yet (PointNeuron does)")
        for name, pp in self.point_processes.items():
            self.node(pp.loc, f"point_processes[{name!r}].loc")
        for loc in self.input_locs or ():
            self.node(loc, "input_locs")
        self._spike_node()

    # ---- locations and regions -----------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """N, the number of nodes of the tree."""
        return self.structure.n

    def node(self, loc, name: str = "loc") -> int:
        """Node index of `loc`: a node index, or `(section, x)` as NEURON's `sec(x)` (works
        inside jit: locations resolve on a concrete copy of the tree's layout)."""
        if isinstance(loc, (bool, np.bool_)):
            raise TypeError(f"{name} must be a node index or (section, x), got {loc!r}")
        if isinstance(loc, (int, np.integer)):
            if not 0 <= int(loc) < self.n_nodes:
                raise ValueError(f"{name}: node index {int(loc)} out of range 0..{self.n_nodes - 1}")
            return int(loc)
        if isinstance(loc, tuple) and len(loc) == 2:
            sec, x = loc
            try:
                x = float(x)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{name}: x must be a number in [0, 1], got {x!r}") from err
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"{name}: x must be in [0, 1], got {x}")
            try:
                return self.locator.locate(sec, x)
            except (ValueError, TypeError) as err:
                raise type(err)(f"{name}: {err}") from None
        raise TypeError(f"{name} must be a node index (int) or a (section, x) tuple, got {loc!r}")

    def _spike_node(self) -> int:
        if self.spike_loc is None:
            return self.locator.default_spike_node
        return self.node(self.spike_loc, "spike_loc")

    def region(self, where: Where = None) -> np.ndarray:
        """Boolean mask `(N,)` of the nodes selected by `where`:
        `None` or `"all"` (every node); an SWC type code (int: 1 soma, 2 axon, 3 basal, 4 apical);
        `"soma"`, `"axon"`, `"basal"`/`"dend"`, `"apical"`/`"apic"`; a section name (`"dend[3]"`)
        or a section family (`"dend"` matches `"dend[0]"`, `"dend[1]"`, ...); a boolean array
        `(N,)`; a callable of the path distance from the soma `dist_um` (um, `(N,)` numpy array)
        returning a boolean array; or a list/tuple of these (their union).
        """
        n = self.n_nodes
        if where is None or (isinstance(where, str) and where == "all"):
            return np.ones(n, bool)
        if isinstance(where, (list, tuple)):
            mask = np.zeros(n, bool)
            for w in where:
                mask |= self.region(w)
            return mask
        if isinstance(where, (bool, np.bool_)):
            raise TypeError(f"where must be a region, not a bool ({where!r})")
        if isinstance(where, (int, np.integer)):
            return self._swc_type() == int(where)
        if isinstance(where, str):
            names = tuple(getattr(self.tree, "section_names", ()))
            sections = np.asarray(self.tree.section) if hasattr(self.tree, "section") else None
            if where in names and sections is not None:
                return sections == names.index(where)
            if where in _SWC_TYPES:
                return self._swc_type() == _SWC_TYPES[where]
            family = [i for i, s in enumerate(names) if s.split("[")[0] == where]
            if family and sections is not None:
                return np.isin(sections, family)
            raise ValueError(f"where: unknown region or section name {where!r}; known: "
                             f"{sorted(set(_SWC_TYPES))} and the sections "
                             f"{names[:5]}{'...' if len(names) > 5 else ''}")
        if callable(where):
            mask = np.asarray(where(np.asarray(self.tree.dist_um)))
            if mask.shape != (n,) or mask.dtype != bool:
                raise ValueError(f"where(dist_um) must return a boolean array of shape ({n},), got "
                                 f"{mask.dtype} {mask.shape}")
            return mask
        mask = np.asarray(where)
        if mask.shape == (n,) and mask.dtype == bool:
            return mask
        raise TypeError(f"where must be None, an SWC type, a region or section name, a boolean mask "
                        f"({n},), a callable of dist_um or a list of these; got {where!r}")

    def _swc_type(self) -> np.ndarray:
        swc = getattr(self.tree, "swc_type", None)
        if swc is None:
            raise ValueError("this tree has no swc_type; select regions by section or mask")
        return np.asarray(swc)

    # ---- building: channels and parameters per region ------------------------------------------
    def insert(self, name: str, channel: Channel, where: Where = None) -> Cell:
        """A new cell with `channel` in the region `where` (NEURON's `sec.insert`): its `gbar`
        (mS/cm2; scalar or `(N,)`) there, 0 elsewhere. If `name` exists, only the region is
        overwritten (every per-node field of the channel is merged, e.g. `e_rev`). For densities
        that vary with distance, follow with `set_density(name, f, where)`."""
        if not isinstance(channel, Channel):
            raise TypeError(f"channel must be a Channel, got {type(channel).__name__}")
        mask = self.region(where)
        n = self.n_nodes
        new = _per_node_channel(channel, n, name)
        if name in self.channels:
            old = self.channels[name]
            if type(old) is not type(new):
                raise ValueError(f"channel {name!r} is a {type(old).__name__}; cannot merge a "
                                 f"{type(new).__name__} into it")
            merged = jax.tree.map(lambda o, w: _merge(o, w, mask, n), old, new)
            mask = mask | self.channel_mask(name)
        else:
            zero = jnp.zeros((n,), new.gbar.dtype)
            merged = eqx.tree_at(lambda c: c.gbar, new, jnp.where(jnp.asarray(mask), new.gbar, zero))
        return self._replace_channels({**self.channels, name: merged}, {name: mask})

    def set_density(self, name: str, value, where: Where = None) -> Cell:
        """A new cell with channel `name`'s `gbar` (mS/cm2) set to `value` in `where`: a scalar,
        `(N,)` array, or a callable of `dist_um` (um, `(N,)`) giving `(N,)` values."""
        return self.set(f"{name}.gbar", value, where)

    def set(self, path: str, value, where: Where = None) -> Cell:
        """A new cell with a per-node parameter set in the region `where`: `path` is `"cm"`
        (uF/cm2) or a channel parameter `"<channel>.<field>"` (e.g. `"na.gbar"` in mS/cm2,
        `"leak.e_rev"` in mV; the names of `brainfuse_jax.params`); `value` a scalar, an `(N,)`
        array, or a callable of `dist_um` giving one. Checked against the parameter's declared
        bounds (`gbar >= 0`); an unknown path's error lists the valid ones, closest first."""
        from ..params import get, parameters, set_values, unknown_name_error

        per_node = {n: p for n, p in parameters(self).items() if p.steps[0][1] in ("cm", "channels")}
        if path not in per_node:
            name, _, field = str(path).partition(".")
            what = (f"channel {name!r} ({type(self.channels[name]).__name__}) has no field {field!r}"
                    if name in self.channels and field else
                    f"path must be 'cm' or '<channel>.<field>' with a channel of {sorted(self.channels)}, "
                    f"got {path!r}")
            raise unknown_name_error("set", what, path, per_node, kind="per-node parameters")
        p = per_node[path]
        mask = jnp.asarray(self.region(where))
        n = self.n_nodes
        value = _node_values(value, n, path, np.asarray(self.tree.dist_um))
        if path == "cm":
            check_nonnegative(value, "cm", "uF/cm2")
        else:
            p.check(value, path)
        old = jnp.broadcast_to(jnp.asarray(get(self, p)), (n,))
        new = set_values(self, [p], [jnp.where(mask, value.astype(old.dtype), old)])
        if path == "cm":
            return new
        name = p.steps[1][1]
        nodes = {}
        if p.steps[-1][1] == "gbar":  # a density set outside the channel's region inserts it there
            nodes[name] = self.channel_mask(name) | (np.asarray(mask) & (np.asarray(value) != 0))
        # (tree_at rebuilds dicts in sorted key order: keep the channels' order, a static of the step)
        return self._replace_channels({c: new.channels[c] for c in self.channels}, nodes)

    def channel_mask(self, name: str) -> np.ndarray:
        """Boolean mask `(N,)` of the nodes where channel `name` is inserted (`insert`'s regions;
        every node for a channel given to the constructor). The step evaluates the channel's gates
        and current only there, as NEURON, where a mechanism exists only where inserted: its gates
        elsewhere stay at their initial values and its `gbar` there has no effect (and gets no
        gradient)."""
        nodes = dict(self.channel_nodes).get(name, "missing")
        if isinstance(nodes, str):
            raise ValueError(f"no channel named {name!r} (channels: {sorted(self.channels)})")
        mask = np.zeros(self.n_nodes, bool)
        mask[slice(None) if nodes is None else nodes.array] = True
        return mask

    def _replace_channels(self, channels, nodes=None):
        """A new cell with these channels; `nodes`: name -> boolean mask of new regions (the
        other channels keep theirs)."""
        regions = {name: self.channel_mask(name) for name in channels if name in self.channels}
        regions.update(nodes or {})
        return self._rebuild(channels=channels, _channel_nodes=regions)

    def _rebuild(self, **changes) -> Cell:
        kw = dict(channels=self.channels, cm=self.cm, temperature=self.temperature,
                  point_processes=self.point_processes, scheme=self.scheme, decay=self.decay,
                  input_locs=self.input_locs,
                  spike_loc=self.spike_loc, spike_threshold=self.spike_threshold,
                  surrogate=self.surrogate, unroll=self.structure.unroll, _native=self.structure.native,
                  _channel_nodes={name: self.channel_mask(name) for name in self.channels})
        kw.update(changes)
        return Cell(self.tree, **kw)

    def for_backend(self, backend) -> Cell:
        """This cell with its tree solve where `backend` runs it (`backend.native`: compiled C++
        where available (None), required (True) or never (False))."""
        if backend.native == self.structure.native:
            return self
        new = copy.copy(self)
        s = self.structure
        object.__setattr__(new, "structure", HinesStructure(s.parent, unroll=s.unroll, native=backend.native))
        return new  # (a static field: eqx.tree_at cannot reach it; the parameters are shared)

    def with_point_processes(self, **processes: PointProcess) -> Cell:
        """A new cell with these point processes added (or replaced), by name."""
        for name, pp in processes.items():
            if not isinstance(pp, PointProcess):
                raise TypeError(f"{name} must be a PointProcess, got {type(pp).__name__}")
            self.node(pp.loc, f"{name}.loc")
        return self._rebuild(point_processes={**self.point_processes, **processes})

    # ---- recording -----------------------------------------------------------------------------
    def probe(self, path: str = "v", locs: Sequence | None = None) -> Probe:
        """A `simulate` record entry: the state variable `path` (`"v"`, `"na.m"`, `"syn.g"`, ...)
        at the nodes of `locs` (node indices or `(section, x)`), shape `(*batch, len(locs))` per
        step; `locs=None` returns the whole variable. Probes compare by value, so re-creating
        one does not recompile `simulate`. An unknown `path` raises a `ValueError` that lists the
        cell's state variables, closest first."""
        from ..params import state_lookup

        if not isinstance(path, str):
            raise TypeError(f"probe: path must be a state variable name such as 'v' or 'na.m', got {path!r}")
        state = jax.eval_shape(lambda: self.init_state(()))
        state_lookup(state, path, "probe")
        nodes = None if locs is None else tuple(self.node(loc, "probe locs") for loc in locs)
        return Probe(tuple(path.split(".")), nodes)

    # ---- state ---------------------------------------------------------------------------------
    def input_shape(self, state: State) -> tuple[int, ...]:
        n_in = self.n_nodes if self.input_locs is None else len(self.input_locs)
        return (*state["v"].shape[:-1], n_in)

    def init_state(self, batch_shape=(), dtype=None, v0: Float[ArrayLike, "*N"] = -65.0) -> State:
        """Every node at `v0` (mV, scalar or `(N,)`), gates at their steady state there (from the
        rate tables with the `"neuron"`/`"crank_nicolson"` schemes, as NEURON's `finitialize`),
        synapses closed, step 0. Batch dims lead: `v` has shape `(*batch_shape, N)`."""
        shape = normalize_batch_shape(batch_shape)
        dtype = resolve_dtype(dtype)
        n = self.n_nodes
        v0 = as_float_array(v0, "v0")
        if v0.shape not in ((), (n,)):
            raise ValueError(f"v0 must be a scalar or have shape ({n},), got {v0.shape}")
        check_finite(v0, "v0")
        one = init_one(self, jnp.broadcast_to(v0.astype(dtype), (n,)))
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (*shape, *a.shape)), one)

    # ---- dynamics (neurons/_membrane.py and _cell_step.py) ---------------------------------------
    def _kinetics(self, v) -> dict[str, dict[str, GateKinetics]]:
        """inf and tau of every gate of every channel at `v` (mV, all nodes)."""
        return cell_kinetics(self, v)

    def step(self, state: State, x, dt) -> tuple[State, Array]:
        """Advance every cell of the batch by `dt` (ms) under injected currents `x` (nA, shape
        `input_shape(state)`, or None for none); returns `(state, spike)`, spike `(*batch,)`."""
        v = state["v"]
        dtype = v.dtype
        expected = self.input_shape(state)
        if x is None:
            x = jnp.zeros(expected, dtype)
        x = jnp.asarray(x, dtype)
        if tuple(x.shape) != expected:
            raise ValueError(f"x must have shape {expected} (batch, injection sites) to match the state, "
                             f"got {tuple(x.shape)}")
        if isinstance(dt, (int, float, np.integer, np.floating)) and not isinstance(dt, bool):
            # a Python number (simulate passes one): checked here, not by a runtime check in the loop
            if not (np.isfinite(dt) and dt > 0):
                raise ValueError(f"dt must be a positive finite time step in ms, got {dt!r}")
            dt = jnp.asarray(dt, dtype)
        else:
            dt = check_dt(dt).astype(dtype)
        fn = self._step_one
        for _ in range(v.ndim - 1):
            fn = jax.vmap(fn, in_axes=(0, 0, None))
        return fn(state, x, dt)

    def _step_one(self, state, x, dt):
        return step_one(self, state, x, dt)


def _node_values(value, n, name, dist_um):
    if callable(value):
        value = value(dist_um)
    arr = as_float_array(value, name)
    if arr.shape not in ((), (n,)):
        raise ValueError(f"{name} must be a scalar, an array of shape ({n},) or a callable of dist_um, "
                         f"got shape {arr.shape}")
    return check_finite(jnp.broadcast_to(arr, (n,)), name)


def _per_node_channel(ch: Channel, n: int, name: str) -> Channel:
    """`ch` with `gbar` broadcast to one value per node."""
    if not isinstance(ch, Channel):
        raise TypeError(f"channels[{name!r}] must be a Channel, got {type(ch).__name__}")
    gbar = jnp.asarray(ch.gbar)
    if gbar.shape not in ((), (n,)):
        raise ValueError(f"channels[{name!r}].gbar must be a scalar or have shape ({n},) (one value "
                         f"per node, mS/cm2), got {gbar.shape}")
    return eqx.tree_at(lambda c: c.gbar, ch, jnp.broadcast_to(gbar, (n,)))


def _merge(old, new, mask, n):
    if not isinstance(old, jax.Array) or not isinstance(new, jax.Array):
        return new
    if old.shape not in ((), (n,)) or new.shape not in ((), (n,)):
        if old.shape != new.shape or not np.array_equal(np.asarray(old), np.asarray(new)):
            raise ValueError("insert: cannot merge a channel field that is not per node into a "
                             "differing existing value")
        return new
    if old.shape == new.shape and is_concrete((old, new)) and np.array_equal(np.asarray(old), np.asarray(new)):
        return new
    return jnp.where(jnp.asarray(mask), jnp.broadcast_to(new, (n,)), jnp.broadcast_to(old, (n,)).astype(new.dtype))


def _support(mask, n):
    """Static node indices of a region (boolean mask (N,)), None for every node."""
    if mask is None:
        return None
    mask = np.asarray(mask, bool)
    if mask.shape != (n,):
        raise ValueError(f"a channel region must be a boolean mask of shape ({n},), got {mask.shape}")
    return None if mask.all() else _Static(np.flatnonzero(mask), "channel nodes")
