"""Every execution path of `simulate` against the reference: model family x adjoint x backend.

The reference is `adjoint=DirectAdjoint(), backend=bf.XLA()` (autodiff through XLA's
`lax.scan`). Each cell runs float64, B = 4 neurons (or cells), T = 79 steps (a prime: every
`CheckpointAdjoint(every=8)` run has 9 blocks and a tail of 7), and checks
- forward values: the final state, a per-step record ("v") and `Total` records,
- gradients of a loss of the per-step record, the totals and the final state. Reverse-mode
  adjoints: w.r.t. every parameter leaf of the model, the initial state and the inputs.
  `ForwardMode` (parameters only; its cost grows with their number): w.r.t. a few parameters,
  scalars and one per neuron (`Family.params`; the other leaves get no tangent, as in `fit`), and
  also of a loss of totals and the final state only (its tangents then run in the forward pass,
  another code path); and that its native loop runs exactly where the table says,
or, where the combination must not run, that a `ValueError` says why.

Adjoints: D = `DirectAdjoint()`, C = `CheckpointAdjoint(every=8)`, F = `ForwardMode()`.
Backends: `XLA()`, `None` (the default, `NativeCPU(fallback=True)`), `NativeCPU()` (strict),
`Pallas()` (interpret mode on the CPU).

| family         | XLA()  | None                          | NativeCPU()                        | Pallas()                    |
|----------------|--------|-------------------------------|------------------------------------|-----------------------------|
| hh_exp_euler   | D C F  | D C F (F: native loop)        | D C F (F: native loop)             | C; D F refuse (1)           |
| hh_neuron      | D C F  | D C F (F: XLA, rate tables)   | D C; F refuses (3)                 | all refuse: D F (1), C (2)  |
| hh_pade        | D C F  | D C F (F: native loop)        | D C F (F: native loop)             | C; D F refuse (1)           |
| pospischil_ib  | D C F  | D C F (F: native loop)        | D C F (F: native loop)             | C; D F refuse (1)           |
| lif, alif, asn | D C F  | D C F (F: native loop)        | D C F (F: native loop)             | C; D F refuse (1)           |
| recurrent_lif  | D C F  | D C F (F: XLA, couples)       | D C; F refuses (4)                 | all refuse: D F (1), C (4)  |
| cell           | D C; F | D C (tree solve native);      | D C (tree solve native);           | all refuse: D F (1), C (5)  |
|                | ref.(6)|  F refuses (6)                |  F refuses (5)                     |                             |

D and C have no native kernel of their own: under `None`/`NativeCPU()` a point neuron runs the
same XLA program as under `XLA()`. Those cells compare the traced program (jaxpr) with the
`XLA()` cell's: an identical program gives identical values, and is not compiled again (if the
programs differ, the cell runs and compares values like any other).

Why the refusals:
1. `Pallas()` runs its own fused forward and backward kernels, which are `CheckpointAdjoint`'s
   blocks: `DirectAdjoint` (autodiff through a scan) and `ForwardMode` (tangents) have none.
2. `scheme="neuron"` reads NEURON's rate tables (a gather), which Pallas GPU kernels cannot lower.
3. `ForwardMode`'s native loop is a step of scalar operations per neuron: a table lookup is an
   array inside the step. (With `None` it falls back to XLA instead.)
4. RecurrentLIF couples its neurons (`s @ W`): neither the fused kernels nor the native loop can
   run it neuron by neuron. Both refuse it on the `(n, n)` weights, a parameter that is neither a
   scalar nor per neuron, before they look at the step's primitives (a coupled step with only
   per-neuron parameters is refused naming the primitive: tests/test_coupling.py). `ForwardMode`
   on XLA seeds each element of a parameter on its own there, which is exact.
5. A `Cell`'s tree solve couples its nodes: its state leaves are `(B, N)`, not one value per
   neuron of the batch, which the fused kernels and the native loop refuse.
6. A `Cell`'s tree solve has a custom VJP (the adjoint solve) and no forward-mode derivative:
   `ForwardMode` refuses it with a `ValueError` pointing to `CheckpointAdjoint`.

Tolerance: every value and gradient within `RTOL` = 1e-10 relative of the reference's, the
losses within `RTOL_LOSS` = 1e-12, and `ATOL` = 1e-12 absolute (for entries that cancel to ~0).
Measured: at most ~3e-12 relative (HH gradients, under CheckpointAdjoint and the native loop's
own exp), losses within ~5e-16, the LIF family within ~1e-14.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.morphology import Cell, CompartmentTree

B, T, EVERY = 4, 79, 8
RTOL = 1e-10
RTOL_LOSS = 1e-12  # the losses: sums over every value, where rounding differences average out
ATOL = 1e-12  # absolute, for entries that cancel to ~0


# ---- model families -------------------------------------------------------------------------------

def _cell_tree(n=5):
    """A soma (node 0) and a chain of 4 dendritic compartments: 20 um x 20 um soma, 2 um thick
    dendrite in 50 um segments (areas in um2, axial resistances in MOhm at Ra = 100 ohm cm)."""
    area = np.array([np.pi * 20.0 * 20.0] + [np.pi * 2.0 * 50.0] * (n - 1))
    ri = np.array([0.0] + [100.0 * 50e-4 / (np.pi * (1e-4) ** 2) * 1e-6] * (n - 1))  # ohm cm * cm / cm2 -> MOhm
    return CompartmentTree(parent=np.arange(-1, n - 1), area_um2=area, ri_MOhm=ri, section=np.array([0] + [1] * (n - 1)),
                           x=np.array([0.5] + [(k + 0.5) / (n - 1) for k in range(n - 1)]),
                           swc_type=np.array([1] + [3] * (n - 1)),
                           dist_um=np.array([0.0] + [50.0 * (k + 0.5) for k in range(n - 1)]),
                           section_names=("soma", "dend"))


def _cell():
    cell = Cell(_cell_tree(), temperature=6.3, input_locs=(("soma", 0.5),))
    cell = cell.insert("na", bf.HHNa(120.0, 50.0), "soma")
    cell = cell.insert("k", bf.HHK(36.0, -77.0), "soma")
    cell = cell.insert("leak", bf.Leak(0.3, -54.387), "soma")
    return cell.insert("pas", bf.Leak(0.1, -65.0), "dend")


@dataclass(frozen=True)
class Family:
    make: Callable[[], Any]
    dt: float  # ms
    amp: float  # input amplitude (the model's units)
    params: Callable  # model -> (scalar leaves..., a per-neuron leaf): ForwardMode's parameters
    elementwise: bool = True  # the step acts on each neuron on its own
    tables: bool = False  # NEURON's rate tables (a gather) in the step
    cell: bool = False


def _gbar(*names):
    return lambda m: tuple(m.channels[n].gbar for n in names)


_LINSPACE = np.linspace(0.0, 1.0, B)

FAMILIES = {
    "hh_exp_euler": Family(lambda: bf.HH(scheme="exp_euler", g_na=100.0 + 30.0 * _LINSPACE), 0.025, 20.0,
                           _gbar("k", "leak", "na")),
    "hh_neuron": Family(lambda: bf.HH(g_na=100.0 + 30.0 * _LINSPACE), 0.025, 20.0, _gbar("k", "leak", "na"),
                        tables=True),
    "hh_pade": Family(lambda: bf.HH(scheme="exp_euler", decay="pade", g_na=100.0 + 30.0 * _LINSPACE), 0.025, 20.0,
                      _gbar("k", "leak", "na")),
    "pospischil_ib": Family(lambda: bf.PospischilIB(scheme="exp_euler", g_na=45.0 + 10.0 * _LINSPACE), 0.025, 20.0,
                            _gbar("kd", "km", "na")),
    "lif": Family(lambda: bf.LIF(threshold=0.9 + 0.2 * _LINSPACE, learn_beta=True), 1.0, 1.5,
                  lambda m: (m.beta_raw, m.threshold)),
    "alif": Family(lambda: bf.ALIF(tau_adapt=150.0 + 100.0 * _LINSPACE), 1.0, 1.5, lambda m: (m.threshold, m.tau_adapt)),
    "asn": Family(lambda: bf.ASN(tau_m=15.0 + 10.0 * _LINSPACE), 1.0, 1.5, lambda m: (m.threshold, m.tau_m)),
    "recurrent_lif": Family(lambda: bf.RecurrentLIF(B, key=jax.random.key(0), gain=0.5, threshold=0.9 + 0.2 * _LINSPACE,
                                                    learn_beta=True), 1.0, 1.5,
                            lambda m: (m.beta_raw, m.weight, m.threshold), elementwise=False),
    # per node, not per neuron: a cell's parameters are the same for the B cells of a batch
    "cell": Family(_cell, 0.025, 0.3, lambda m: (m.temperature, m.cm), elementwise=False, tables=True, cell=True),
}

ADJOINTS = {"direct": bf.DirectAdjoint(), "checkpoint": bf.CheckpointAdjoint(every=EVERY), "forward": bf.ForwardMode()}
BACKENDS = {"xla": bf.XLA(), "default": None, "native": bf.NativeCPU(), "pallas": bf.Pallas()}


def refusal(family: str, adjoint: str, backend: str) -> str | None:
    """The `ValueError` message (a regex) of a combination that must not run, else None."""
    fam = FAMILIES[family]
    if backend == "pallas":
        if adjoint == "direct":
            return "backend='pallas' is differentiated by its own backward kernel.*CheckpointAdjoint"
        if adjoint == "forward":
            return "ForwardMode.*does not combine with.*pallas"
        if fam.cell:
            return r"backend='pallas' needs a model whose state leaves all have the batch shape.*\(4, 5\)"
        if not fam.elementwise:  # refused on the weights' shape before the step's primitives are looked at
            return r"backend='pallas' needs a step that is elementwise over neurons.*\(4, 4\).*recurrent weights"
        if fam.tables:
            return "backend='pallas'.*gather.*rate tables"
    if adjoint == "forward" and fam.cell and backend != "native":
        return "ForwardMode.*forward-mode derivatives.*custom VJP.*Cell's tree solve.*CheckpointAdjoint"
    if backend == "native" and adjoint == "forward":
        if fam.cell:
            return "NativeCPU.*cannot run.*states that are not all of one batch shape"
        if not fam.elementwise:  # as for Pallas: the (n, n) weights are refused first
            return "NativeCPU.*cannot run.*parameters that are neither scalars nor per neuron"
        if fam.tables:
            return "NativeCPU.*cannot run.*arrays inside the step.*rate tables"
    return None


# ---- one cell ---------------------------------------------------------------------------------------

def _problem(family: str):
    fam = FAMILIES[family]
    model = fam.make()
    state0 = model.init_state(B)
    drive = fam.amp * (1.0 + jnp.sin(jnp.arange(T)[None, :] / 9.0 + jnp.arange(B)[:, None]))
    x = drive[..., None] if fam.cell else drive
    return model, state0, x


def _trace_loss(model, state0, x, dt, adjoint, backend):
    """A loss of a per-step record, a total and the final state; aux: all of them."""
    final, rec = bf.simulate(model, state0, x, dt, record={"v": "v", "spikes": bf.Total("output")},
                             adjoint=adjoint, backend=backend)
    loss = jnp.mean(jnp.sin(rec["v"])) + jnp.sum(rec["spikes"]) + 1e-3 * jnp.sum(final["v"] ** 2)
    return loss, (final, rec)


def _totals_loss(model, state0, x, dt, adjoint, backend):
    """A loss of totals and the final state only (ForwardMode's tangents run in its forward pass)."""
    final, rec = bf.simulate(model, state0, x, dt, record={"sin_v": bf.Total(lambda s, out: jnp.sin(s["v"])),
                                                          "spikes": bf.Total("output")},
                             adjoint=adjoint, backend=backend)
    loss = jnp.mean(rec["sin_v"]) / T + jnp.sum(rec["spikes"]) + 1e-3 * jnp.sum(final["v"] ** 2)
    return loss, (final, rec)


def _cell_fn(family: str, adjoint: str, backend: str, reference: bool = False):
    """What a matrix cell runs, traced: `(jaxpr, compile and run -> {name: pytree})` of
    values and gradients:

    - reverse-mode adjoints: `values`, `loss` and `grad` (w.r.t. every parameter leaf of the
      model, the initial state and the inputs) of the trace loss;
    - ForwardMode: `values`, `loss`, `grad_params` of the trace loss and `values_totals`,
      `loss_totals`, `grad_params_totals` of the totals loss, w.r.t. `family.params` only;
    - the reference: all of them."""
    fam = FAMILIES[family]
    adj, be = ADJOINTS[adjoint], BACKENDS[backend]

    def run(model, state0, x):
        def with_params(theta):
            return eqx.tree_at(fam.params, model, theta)

        out = {}
        if adjoint != "forward":
            (out["loss"], out["values"]), out["grad"] = eqx.filter_value_and_grad(
                lambda a: _trace_loss(*a, fam.dt, adj, be), has_aux=True)((model, state0, x))
        else:
            (out["loss"], out["values"]), out["grad_params"] = jax.value_and_grad(
                lambda th: _trace_loss(with_params(th), state0, x, fam.dt, adj, be), has_aux=True)(fam.params(model))
        if adjoint == "forward" or reference:
            (out["loss_totals"], out["values_totals"]), out["grad_params_totals"] = jax.value_and_grad(
                lambda th: _totals_loss(with_params(th), state0, x, fam.dt, adj, be), has_aux=True)(fam.params(model))
        return out

    arrays, static = eqx.partition(_problem(family), eqx.is_array)
    traced = jax.jit(lambda a: run(*eqx.combine(a, static))).trace(arrays)
    return traced.jaxpr, lambda: jax.device_get(traced.lower().compile()(arrays))


_REFERENCE: dict[str, dict] = {}


def _reference(family: str) -> dict:
    """XLA + DirectAdjoint: values and gradients of both losses (computed once per family)."""
    if family not in _REFERENCE:
        ref = _cell_fn(family, "direct", "xla", reference=True)[1]()
        ref["grad_params"] = FAMILIES[family].params(ref["grad"][0])
        _REFERENCE[family] = ref
    return _REFERENCE[family]


def _compare(got, want, what, rtol=RTOL):
    got_leaves, want_leaves = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for k, (a, b) in enumerate(zip(got_leaves, want_leaves)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=ATOL, err_msg=f"{what} leaf {k}")


CELLS = [pytest.param(f, a, b, id=f"{f}-{a}-{b}")
         for f in FAMILIES for a in ADJOINTS for b in BACKENDS]


@pytest.mark.parametrize("family, adjoint, backend", CELLS)
def test_execution_matrix(x64, family, adjoint, backend):
    message = refusal(family, adjoint, backend)
    if message is not None:
        with pytest.raises(ValueError, match=message):
            _cell_fn(family, adjoint, backend)[1]()
        return
    ref = _reference(family)
    if (adjoint, backend) == ("direct", "xla"):
        return  # the reference itself
    jaxpr, run = _cell_fn(family, adjoint, backend)
    if adjoint == "forward":  # the native loop runs exactly where the table says
        fam = FAMILIES[family]
        assert ("bf_loop_" in str(jaxpr)) == (backend != "xla" and fam.elementwise and not fam.tables)
    elif backend in ("default", "native") and str(jaxpr) == str(_cell_fn(family, adjoint, "xla")[0]):
        return  # the same program as the XLA() cell's, which is checked there
    got = run()
    for what in got:
        _compare(got[what], ref[what], f"{family} {adjoint} {backend}: {what}",
                 RTOL_LOSS if what.startswith("loss") else RTOL)


@pytest.mark.parametrize("backend", [
    "xla", "default", "native"])
def test_cell_tree_solve_follows_backend(x64, backend):
    """A `Cell` runs its tree solve as the compiled kernel (`bf_hines`, an FFI call) under the
    default backend and `NativeCPU()`, and as XLA operations under `XLA()`: the matrix's cell rows
    then compare the two."""
    from brainfuse_kernels import _native
    if not _native.available(jnp.float64):
        pytest.skip("the compiled tree kernels need a C++ compiler and JAX's CPU backend")
    model, state0, x = _problem("cell")
    dt = FAMILIES["cell"].dt
    for run in (lambda m: bf.simulate(m, state0, x, dt, record="v", backend=BACKENDS[backend]),
                # a held input wraps the model: the cell must still see the backend
                lambda m: bf.simulate(m, state0, x[:, 0], dt, n_steps=x.shape[1], record="v",
                                      backend=BACKENDS[backend])):
        jaxpr = str(eqx.filter_make_jaxpr(run)(model)[0])
        assert ("bf_hines" in jaxpr) == (backend != "xla"), backend
