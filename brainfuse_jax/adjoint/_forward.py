"""`ForwardMode`: gradients by forward sensitivities, carried alongside the state."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from brainfuse_kernels._elementwise import coupling_primitives
from jax.custom_derivatives import SymbolicZero

from ..backends import _native_loop
from .._math import _unbroadcast
from ..unroll import float_inputs, scan_unroll
from ._base import _internal_names, _with_leaves, _zeros_ct, AbstractAdjoint


class ForwardMode(AbstractAdjoint):
    """Differentiate `simulate` w.r.t. the model's parameters by forward sensitivities: the
    backward pass runs the simulation once more, carrying the derivative of the state w.r.t. each
    differentiated parameter leaf alongside it (`jax.jvp` of the step, all leaves at once), and
    contracts it with the incoming cotangents step by step. No states are stored: memory is
    O(N x n_states x P) for P differentiated parameter leaves, whatever T is, and the cost grows
    with P, so it suits fitting a few conductances (`fit`), not training many weights.

    Per-neuron parameters (arrays over the batch) are seeded with one tangent for all neurons at
    once, which is exact because neurons do not interact (checked: the step must be elementwise
    over neurons). Gradients w.r.t. the inputs or the initial state are not available: a
    `ValueError` says so if they are requested (use `CheckpointAdjoint`).

    Where it runs is the backend's choice (`simulate(..., backend=)`): by default (and with
    `bf.NativeCPU()`) the sensitivities run on the CPU as one compiled loop generated from the
    model's step (C++ built with the machine's compiler at first use and cached, called through
    XLA's FFI; `brainfuse_jax.backends._native_loop`) when it can (a compiler, a concrete dt,
    states and records one number per neuron, parameters scalars or per neuron, inputs `(B, T)`,
    an elementwise step), else (and with `bf.XLA()`) as an XLA loop; `bf.NativeCPU()` raises a
    `ValueError` saying why where the native loop cannot run.
    """

    def configure(self, *, chunk_size, remat, backend):
        if remat or chunk_size is not None or backend.fused:
            raise ValueError("adjoint=ForwardMode() stores nothing and truncates nothing: it does not combine with "
                             "remat, chunk_size or backend='pallas'")
        return self

    def unroll(self, model, state0, inputs, dt, per_step, totals, n_steps, *, chunk_size, remat, native):
        return forward_mode_unroll(model, state0, float_inputs(inputs, state0), dt, per_step, totals, n_steps,
                                   native=native)


class _TangentPair:
    """A stand-in neuron for simulate's unroll whose state is (state, tangents) and whose output
    is (totals, their tangents)."""

    def __init__(self, step):
        self.step = step


def _pair_step(tangent_step, p, seeds, st, x, dt_):
    (new, _, tot), (dnew, _, dtot) = tangent_step(p, seeds, st[0], st[1], x, dt_)
    return (new, dnew), (tot, dtot)


def _zero_tangents(state, n: int):
    """Zero tangents of `state` for `n` directions, floating point also for integer leaves."""
    dtype = jnp.result_type(*[a for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.inexact)] or [float])
    return jax.tree.map(lambda a: jnp.zeros((n, *a.shape), a.dtype if jnp.issubdtype(a.dtype, jnp.inexact) else dtype),
                        state)


def forward_mode_unroll(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                        n_steps: int, *, native: bool | None = None):
    """As `checkpointed_unroll`, differentiated by forward sensitivities (`ForwardMode`); `native`:
    the native loop where it can run (None), always (True, else `ValueError`) or never (False)."""
    names, per_step, totals = _internal_names(per_step, totals)
    if any(eqx.is_array(leaf) and not eqx.is_inexact_array(leaf) for leaf in jax.tree.leaves(model)):
        raise ValueError("adjoint=ForwardMode() runs models whose arrays are all floating-point parameters; this "
                         f"{type(model).__name__} holds integer arrays (a Network's connectivity, whose spike "
                         "delivery is differentiated in reverse mode only): use adjoint=CheckpointAdjoint()")
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def step_records(p, s, x, dt_):
        new, out = eqx.combine(p, static).step(s, x, dt_)
        return new, {k: f(new, out) for k, f in per_step.items()}, {k: f(new, out) for k, f in totals.items()}

    def run(p, state0_, inputs_, dt_):
        return scan_unroll(eqx.combine(p, static), state0_, inputs_, dt_, per_step, totals, n_steps)

    @jax.custom_vjp
    def unroll(p, state0_, inputs_, dt_):
        return run(p, state0_, inputs_, dt_)

    def seeds_for(p, perturbed, state0_, inputs_, dt_):
        """The tangent directions for the differentiated leaves (`_Directions`): one per leaf,
        seeded with ones over the whole leaf, where the step is elementwise over neurons (or the
        leaf a scalar); one per element of each per-neuron leaf where it may couple neurons."""
        p_leaves = jax.tree.leaves(p)
        idx = [i for i, q in enumerate(perturbed) if q]
        coupled = False
        if any(jnp.ndim(p_leaves[i]) for i in idx):
            state_x = (state0_, jax.tree.map(lambda a: a[:, 0], inputs_))
            coupled = bool(coupling(lambda p_, s, x: step_records(p_, s, x, dt_), p, *state_x))
        return _Directions([p_leaves[i] for i in idx], tuple(idx), coupled)

    def tangent_step(p, seeds, s, ds, x, dt_):
        """The step and its derivative along every seeded direction (the primal computed once),
        differentiated w.r.t. the seeded leaves only: zero tangents of the others (say, the
        temperature, which feeds every rate) would still be propagated, as batched arrays.
        Integer leaves (a step counter, integer records) have no tangent: they are held out of
        the JVP and given zero (floating-point) tangents, so that every tangent tree has the
        structure of its primal."""
        seeds, idx = seeds.seeds, seeds.idx
        diff = [jax.tree.leaves(p)[i] for i in idx]
        s_float, s_int = eqx.partition(s, eqx.is_inexact_array)

        def f(d, s_f):
            out = step_records(_with_leaves(p, idx, d), eqx.combine(s_f, s_int), x, dt_)
            return eqx.partition(out, eqx.is_inexact_array)  # (differentiable outputs, the rest as aux)

        ds_float = eqx.filter(ds, jax.tree.map(eqx.is_inexact_array, s))
        jvp = jax.vmap(lambda dd, ds_: jax.jvp(f, (diff, s_float), (dd, ds_), has_aux=True),
                       in_axes=(0, 0), out_axes=(None, 0, None))
        try:
            out_float, tan, out_int = jvp(seeds, ds_float)
        except TypeError as err:
            if "custom_vjp" not in str(err):
                raise
            raise ValueError("adjoint=ForwardMode() needs forward-mode derivatives of the step, and this model's step "
                             "has a reverse-mode-only part (a custom VJP, e.g. a Cell's tree solve): use "
                             "adjoint=CheckpointAdjoint()") from None
        out = eqx.combine(out_float, out_int)
        n, dtype = seeds[0].shape[0], jnp.result_type(*jax.tree.leaves(s_float))
        zeros = jax.tree.map(lambda a: jnp.zeros((n, *jnp.shape(a)), dtype), out_int)
        return out, eqx.combine(tan, zeros)

    def contract(acc, ct, tan):
        """acc[k] += sum(ct * tan[k]) down to leaf k's shape (per neuron for per-neuron leaves)."""
        pairs = [(c, t) for c, t in zip(jax.tree.leaves(ct), jax.tree.leaves(tan)) if jnp.issubdtype(c.dtype, jnp.inexact)]
        return [a + sum(_unbroadcast(c * t[k], a.shape) for c, t in pairs) for k, a in enumerate(acc)]

    def whole_leaves(p, idx):
        """One direction per differentiated leaf (the native loop's seeding)."""
        return _Directions([jax.tree.leaves(p)[i] for i in idx], tuple(idx), False)

    def unroll_fwd(p, state0_, inputs_, dt_):
        if any(leaf.perturbed for leaf in jax.tree.leaves((state0_, inputs_, dt_))):
            raise ValueError("adjoint=ForwardMode() differentiates the model's parameters only; for gradients "
                             "w.r.t. the inputs, the initial state or dt use adjoint=CheckpointAdjoint()")
        values = jax.tree.map(lambda leaf: leaf.value, (p, state0_, inputs_, dt_))
        perturbed = [leaf.perturbed for leaf in jax.tree.leaves(p)]
        if per_step or not any(perturbed):
            return run(*values), (values, perturbed, None)
        # Only totals and the final state are returned: their cotangents are constant in time, so
        # the sensitivities are accumulated in this one pass (simulate's own unroll, run on the
        # (state, tangents) pair) and the backward pass only contracts.
        p, state0_, inputs_, dt_ = values
        idx = [i for i, q in enumerate(perturbed) if q]
        got = _native_loop.run(eqx.combine(p, static), state0_, inputs_, dt, {}, totals, n_steps, idx, native=native)
        if got is not None:
            final, tots, dfinal, dtots, _ = got
            return (final, tots), (values, perturbed, (dfinal, dtots, whole_leaves(p, idx)))
        seeds = seeds_for(p, perturbed, state0_, inputs_, dt_)
        pair = _TangentPair(lambda st, x, dt__: _pair_step(tangent_step, p, seeds, st, x, dt__))
        ds0 = _zero_tangents(state0_, seeds.n)
        (final, dfinal), acc = scan_unroll(pair, (state0_, ds0), inputs_, dt_, {}, {"pair": lambda st, out: out}, n_steps)
        tots, dtots = acc["pair"]
        return (final, tots), (values, perturbed, (dfinal, dtots, seeds))

    def unroll_bwd(res, cts):
        (p, state0_, inputs_, dt_), perturbed, tangents = res
        cts = jax.tree.map(lambda c: jnp.zeros(c.aval.shape, c.aval.dtype) if isinstance(c, SymbolicZero) else c,
                           cts, is_leaf=lambda c: isinstance(c, SymbolicZero))
        ct_final, ct_out = cts
        zeros = jax.tree.map(_zeros_ct, (state0_, inputs_, dt_))
        if not any(perturbed):
            return jax.tree.map(jnp.zeros_like, p), *zeros
        if tangents is not None:
            dfinal, dtots, seeds = tangents
            acc = contract(seeds.acc0(), (ct_final, {k: ct_out[k] for k in totals}), (dfinal, dtots))
            return seeds.gradients(p, acc), *zeros
        ct_tot = {k: ct_out[k] for k in totals}
        idx = [i for i, q in enumerate(perturbed) if q]
        got = _native_loop.run(eqx.combine(p, static), state0_, inputs_, dt, per_step, totals, n_steps, idx,
                               cts=jax.tree.leaves([ct_out[k] for k in per_step]), native=native)
        if got is not None:
            _, _, dfinal, dtots, acc = got
            acc = [_unbroadcast(a, jnp.shape(jax.tree.leaves(p)[i])) for a, i in zip(acc, idx)]
            return whole_leaves(p, idx).gradients(p, contract(acc, (ct_final, ct_tot), (dfinal, dtots))), *zeros
        seeds = seeds_for(p, perturbed, state0_, inputs_, dt_)
        ds0 = _zero_tangents(state0_, seeds.n)
        acc0 = seeds.acc0()

        def body(carry, inp):
            s, ds, acc = carry
            x, ct_t = inp
            (new, _, _), (dnew, drec, dtot) = tangent_step(p, seeds, s, ds, x, dt_)
            return (new, dnew, contract(acc, (ct_t, ct_tot), (drec, dtot))), None

        xs = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), inputs_)
        cts_t = {k: jnp.swapaxes(ct_out[k], 0, 1) for k in per_step}
        (_, dfinal, acc), _ = jax.lax.scan(body, (state0_, ds0, acc0), (xs, cts_t))
        return seeds.gradients(p, contract(acc, ct_final, dfinal)), *zeros

    unroll.defvjp(unroll_fwd, unroll_bwd, symbolic_zeros=True)
    final, rec = unroll(params, state0, inputs, jnp.asarray(dt, jnp.result_type(*jax.tree.leaves(inputs))))
    return final, {names[k]: v for k, v in rec.items()}


def coupling(step: Callable, params, state, x) -> set[str]:
    """The primitives of `step(params, state, x)` that may mix neurons (none: it is elementwise
    over neurons), proven from its jaxpr by `brainfuse_kernels._elementwise.coupling_primitives`.
    (The parameters are arguments, not closed-over constants, so that per-neuron ones are known.)"""
    batch = tuple(jnp.shape(jax.tree.leaves(state)[0]))
    return coupling_primitives(jax.make_jaxpr(step)(params, state, x), batch)


class _Directions(eqx.Module):
    """`ForwardMode`'s tangent directions for the differentiated leaves `leaves` (numbers `idx` of
    the parameter leaves). Uncoupled (or scalar) leaves get one direction seeded with ones over
    the whole leaf: exact when neurons do not interact, since each neuron's state then depends on
    its own parameter element only. With `coupled`, each element of a per-neuron leaf gets its
    own direction (a column of the full Jacobian: exact for any step, and P x N times the work)."""

    seeds: list
    idx: tuple[int, ...] = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)
    dtypes: tuple = eqx.field(static=True)
    dirs: tuple = eqx.field(static=True)  # (leaf j, element e or None for the whole leaf) per direction

    def __init__(self, leaves, idx: tuple[int, ...], coupled: bool):
        self.idx = tuple(idx)
        self.shapes = tuple(tuple(jnp.shape(a)) for a in leaves)
        self.dtypes = tuple(jnp.dtype(a.dtype) for a in leaves)
        self.dirs = tuple((j, e) for j, a in enumerate(leaves)
                          for e in ([None] if not coupled or jnp.ndim(a) == 0 else range(jnp.size(a))))
        self.seeds = [jnp.stack([self._seed(j, d) for d in self.dirs]) for j in range(len(leaves))]

    @property
    def n(self) -> int:
        return len(self.dirs)

    def _seed(self, j, direction):
        k, e = direction
        if k != j:
            return jnp.zeros(self.shapes[j], self.dtypes[j])
        if e is None:
            return jnp.ones(self.shapes[j], self.dtypes[j])
        return jnp.zeros(self.shapes[j], self.dtypes[j]).reshape(-1).at[e].set(1).reshape(self.shapes[j])

    def acc0(self) -> list:
        """Zero gradient accumulators, one per direction (leaf-shaped, or scalar per element)."""
        return [jnp.zeros(self.shapes[j] if e is None else (), self.dtypes[j]) for j, e in self.dirs]

    def gradients(self, p, acc):
        """`p`-shaped gradients from the accumulated directions."""
        leaves = []
        for j, shape in enumerate(self.shapes):
            mine = [(e, a) for (k, e), a in zip(self.dirs, acc) if k == j]
            whole = mine[0][0] is None  # one direction over the whole leaf, else one per element
            leaves.append(mine[0][1] if whole else jnp.stack([a for _, a in mine]).reshape(shape))
        return _with_leaves(jax.tree.map(jnp.zeros_like, p), self.idx, leaves)
