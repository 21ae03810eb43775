"""`ForwardMode`'s native CPU loop: a neuron model's step and its forward sensitivities as one
compiled C++ loop (`brainfuse_kernels._loop_cpu`), generated from the model's own JAX code.

The step is traced for one neuron (scalars), together with the derivatives the sensitivities
need: for P differentiated parameters and S states, the Jacobian columns d(step)/d(state_j) and
the partials d(step)/d(theta_k) are computed once per step (each a JVP along a unit vector, most
of whose operations vanish: a gate enters a few terms, a conductance one current), and the P
tangents are advanced as `J d_k + d(step)/d(theta_k)`: S x S x P multiply-adds. Pushing each
tangent through the whole step instead costs P passes through the rate functions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def _unsupported():
    from brainfuse_kernels._jaxpr_c import Unsupported
    return Unsupported


def _usable(native: bool | None) -> bool:
    """Whether to try the native loop (the backend's `native`: None if it can run here, True, False)."""
    if native is False:
        return False
    from brainfuse_kernels import _loop_cpu
    if _loop_cpu.available():
        return True
    if native:
        raise ValueError("ForwardMode with backend=bf.NativeCPU() needs JAX's CPU backend and a C++ compiler ($CXX, "
                         "default g++); use backend=None to fall back to XLA")
    return False


def _per_neuron(model, state0, inputs, dt, per_step: dict[str, Callable], totals: dict[str, Callable],
                idx: tuple[int, ...]):
    """`(fn, params, states, inputs, n_records, n_totals, treedef of the totals)`: the per-neuron
    function of `native_loop` for `model` and the batch-shaped arrays it reads. Raises
    `Unsupported` for models, inputs or records it cannot take."""
    Unsupported = _unsupported()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    p_leaves, p_def = jax.tree.flatten(params)
    s_leaves, s_def = jax.tree.flatten(state0)
    x_leaves, x_def = jax.tree.flatten(inputs)
    if not isinstance(dt, float):
        raise Unsupported("a traced dt")
    batch = s_leaves[0].shape if s_leaves else None
    if not s_leaves or len(batch) != 1 or any(s.shape != batch for s in s_leaves):
        raise Unsupported("states that are not all of one batch shape (B,)")
    if any(np.shape(p) not in ((), batch) for p in p_leaves):
        raise Unsupported("parameters that are neither scalars nor per neuron")
    if any(x.ndim not in (2, 3) or x.shape[0] != batch[0] or x.shape[2:] not in ((), (0,)) for x in x_leaves):
        raise Unsupported("inputs that are not (B, T)")
    held = [x.shape[2:] == (0,) for x in x_leaves]  # simulate(n_steps=...)'s zero-size stand-in
    dtype = s_leaves[0].dtype

    def step(p, s, x):
        """The step and its records: (new state, [per-step records], {name: total})."""
        xs = iter(x)
        x = [jnp.zeros((0,), dtype) if h else next(xs) for h in held]
        new, out = eqx.combine(jax.tree.unflatten(p_def, p), static).step(
            jax.tree.unflatten(s_def, s), jax.tree.unflatten(x_def, x), dt)
        return new, [f(new, out) for f in per_step.values()], {k: f(new, out) for k, f in totals.items()}

    def records(p, s, x):
        """The step for one neuron: (new state, record leaves, total leaves), flat lists."""
        return tuple(jax.tree.leaves(a) for a in step(p, s, x))

    def fn(p, s, d, x):
        new, recs, tots = records(p, s, x)
        if not d:
            return new, recs, tots, [], [], []

        def unit(leaves, j, make):
            """The JVP of the step along the unit vector of `leaves[j]`, flat."""
            return jax.tree.leaves(jax.jvp(make, (leaves[j],), (jnp.ones_like(leaves[j]),))[1])

        cols = [unit(s, j, lambda v, j=j: records(p, [v if i == j else a for i, a in enumerate(s)], x))
                for j in range(len(s))]
        parts = [unit(p, i, lambda v, i=i: records([v if k == i else a for k, a in enumerate(p)], s, x))
                 for i in idx]
        tangents = [[part[o] + sum(col[o] * dk[j] for j, col in enumerate(cols)) for o in range(len(part))]
                    for part, dk in zip(parts, d)]
        n_s, n_r = len(new), len(recs)
        return (new, recs, tots, [t[:n_s] for t in tangents], [t[n_s:n_s + n_r] for t in tangents],
                [t[n_s + n_r:] for t in tangents])

    xs = [x for x, h in zip(x_leaves, held) if not h]
    from brainfuse_kernels._elementwise import coupling_primitives
    jaxpr, (_, rec_shapes, tot_shapes) = jax.make_jaxpr(step, return_shape=True)(p_leaves, s_leaves,
                                                                                 [x[:, 0] for x in xs])
    across = coupling_primitives(jaxpr, batch)
    if across:
        raise Unsupported(f"primitives that may mix neurons in the step ({', '.join(sorted(across))})")
    recs, tots = jax.tree.leaves(rec_shapes), jax.tree.leaves(tot_shapes)
    if any(a.shape != batch for a in recs + tots) or (idx and any(not jnp.issubdtype(a.dtype, jnp.inexact)
                                                                  for a in recs + tots)):
        raise Unsupported("records that are not one number per neuron (or not floating point)")
    return (fn, [jnp.broadcast_to(p, batch) for p in p_leaves], s_leaves, xs, len(recs), len(tots),
            jax.tree.structure(tot_shapes))


def run(model, state0, inputs, dt, per_step, totals, n_steps, idx, cts=(), *, native: bool | None = None):
    """The native loop for `forward_mode_unroll`, or None where `native` (the backend's) rules it
    out or the model cannot be translated (`ValueError` instead with `native=True`, i.e.
    `backend=bf.NativeCPU()`).

    **Returns:** `(final state, {name: total}, d_final (leaves with a leading P axis), {name: d_total
    (P, ...)}, acc)`; `acc` (with `cts`, one `(B, T)` cotangent per record leaf) is a list of P
    arrays `(B,)`: each direction's record tangents contracted with `cts` over time.
    """
    if not _usable(native):
        return None
    from brainfuse_kernels import _loop_cpu
    try:
        fn, params, states, xs, n_rec, n_tot, t_def = _per_neuron(model, state0, inputs, dt, per_step, totals, idx)
        final, _, tots, d_final, d_tots, acc = _loop_cpu.native_loop(
            fn, params, states, xs, n_steps, n_dirs=len(idx), cts=cts, n_records=n_rec, n_totals=n_tot)
    except _unsupported() as err:
        if native:
            raise ValueError(f"ForwardMode with backend=bf.NativeCPU() cannot run this simulation as a native loop: "
                             f"{err} (it needs "
                             "a concrete dt, states and records of one number per neuron of a batch (B,), parameters "
                             "that are scalars or per neuron, inputs (B, T), and a step of scalar operations per "
                             "neuron); use backend=None to fall back to XLA") from None
        return None
    except Exception as err:  # noqa: BLE001 - a model the translation did not foresee: XLA still runs it
        if native:
            raise
        warnings.warn(f"ForwardMode: the native loop failed to translate this model ({type(err).__name__}: {err}); "
                      "using XLA", RuntimeWarning, stacklevel=2)
        return None
    s_def = jax.tree.structure(state0)
    stack = lambda per_dir, treedef: jax.tree.unflatten(  # noqa: E731
        treedef, [jnp.stack([d[j] for d in per_dir]) for j in range(treedef.num_leaves)])
    return (jax.tree.unflatten(s_def, final), jax.tree.unflatten(t_def, tots), stack(d_final, s_def),
            stack(d_tots, t_def), acc)

