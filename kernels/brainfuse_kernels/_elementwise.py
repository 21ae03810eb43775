"""Which steps are elementwise over neurons: an allow-list of primitives.

A fast path that treats neurons as independent lanes (the native loop, the Pallas kernels,
`ForwardMode`'s one-tangent-per-leaf seeding of per-neuron parameters) is exact only if the step
never mixes values of different neurons. That is proven here from the step's jaxpr: every
primitive must be on the allow-list below (elementwise arithmetic, comparisons, selects, dtype
converts), broadcasts must follow NumPy's trailing alignment (a scalar or a per-neuron parameter
broadcast against the state, never an outer product), and reshapes may only add or drop axes of
size one. Anything else, including every primitive this list does not know (gather, scatter,
slices, dot products, reductions, control flow), counts as coupling: callers refuse or fall back,
they never guess.
"""

from __future__ import annotations

from jax.extend import core as jcore

#: Primitives that act on each element on its own (the same position in every operand).
ELEMENTWISE = frozenset({
    "abs", "acos", "acosh", "add", "add_any", "and", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil",
    "clamp", "convert_element_type", "copy", "copy_p", "cos", "cosh", "digamma", "div", "eq", "erf", "erf_inv",
    "erfc", "exp", "exp2", "expm1", "floor", "ge", "gt", "integer_pow", "is_finite", "le", "lgamma", "log",
    "log1p", "logistic", "lt", "max", "min", "mul", "ne", "neg", "nextafter", "not", "or",
    "pow", "reduce_precision", "rem", "round", "rsqrt", "select_n", "sign", "sin", "sinh", "sqrt", "square",
    "stop_gradient", "sub", "tan", "tanh", "xor",
})

#: Primitives whose nested jaxpr (the parameter named) is checked in their place.
NESTED = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
          "remat": "jaxpr", "checkpoint": "jaxpr"}


_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
                         "argmax", "argmin"})
Labels = tuple  # per axis of an array: which batch (neuron) axis it runs along, or None


class _Coupled(Exception):
    pass


def _is_error_if(eqn) -> bool:
    return eqn.primitive.name in ("jit", "pjit") and eqn.params.get("name") == "branched_error_if_impl"


def _merge(labels: list[Labels], rank: int) -> Labels:
    """The labels of an elementwise result of operands with `labels` (scalars broadcast)."""
    out = [None] * rank
    for lab in labels:
        if len(lab) == 0:
            continue
        if len(lab) != rank:
            raise _Coupled
        for i, l in enumerate(lab):
            if l is not None:
                if out[i] not in (None, l):
                    raise _Coupled  # two different neuron axes meet
                out[i] = l
    return _checked(tuple(out))


def _checked(labels: Labels) -> Labels:
    named = [l for l in labels if l is not None]
    if len(named) != len(set(named)):
        raise _Coupled  # one neuron axis along two array axes: an outer product of neurons
    return labels


def _rule(eqn, ins: list[Labels], run) -> list[Labels]:
    """Output labels of one equation, or `_Coupled` if it may mix neurons."""
    name, params = eqn.primitive.name, eqn.params
    outs = [v.aval for v in eqn.outvars]
    if _is_error_if(eqn):  # eqx.error_if: values pass through, the condition is a check, not data
        values = [lab for v, lab in zip(eqn.invars, ins) if str(v.aval.dtype) != "bool"]
        return [(None,) * len(outs[0].shape), *values]
    if name in NESTED and params.get(NESTED[name]) is not None:
        return run(params[NESTED[name]], ins)
    if all(l is None for lab in ins for l in lab):
        return [(None,) * len(getattr(a, "shape", ())) for a in outs]  # no neuron data: shared values
    if name == "optimization_barrier":  # each operand passes through as it is
        return list(ins)
    if name == "scan":
        return _scan(eqn, ins, run)
    if name == "cond":  # a shared branch index: every branch must keep neurons apart
        if any(l is not None for l in ins[0]):
            raise _Coupled
        branches = [run(b, ins[1:]) for b in params["branches"]]
        return [_merge(list(labs), len(a.shape)) for labs, a in zip(zip(*branches), outs)]
    rank = len(outs[0].shape)
    if name in ELEMENTWISE:
        return [_merge(ins, rank)] * len(outs)
    shape_in = eqn.invars[0].aval.shape
    lab = ins[0]
    if name == "broadcast_in_dim":
        out = [None] * rank
        for a, d in enumerate(params["broadcast_dimensions"]):
            if lab[a] is not None and shape_in[a] == outs[0].shape[d]:
                out[d] = lab[a]
        return [_checked(tuple(out))]
    if name in ("reshape", "squeeze"):
        keep = [(l, n) for l, n in zip(lab, shape_in) if n != 1]
        out_shape = outs[0].shape
        if [n for _, n in keep] != [n for n in out_shape if n != 1]:
            raise _Coupled  # merges or splits an axis
        it = iter(l for l, _ in keep)
        return [tuple(next(it) if n != 1 else None for n in out_shape)]
    if name == "transpose":
        return [tuple(lab[p] for p in params["permutation"])]
    if name == "slice":
        strides = params["strides"] or (1,) * rank
        for a, l in enumerate(lab):
            if l is not None and (params["start_indices"][a] != 0 or params["limit_indices"][a] != shape_in[a]
                                  or strides[a] != 1):
                raise _Coupled
        return [lab]
    if name == "concatenate":
        if any(l[params["dimension"]] is not None for l in ins if l):
            raise _Coupled
        return [_merge(ins, rank)]
    if name in _REDUCTIONS:
        axes = params["axes"]
        if any(lab[a] is not None for a in axes):
            raise _Coupled
        return [tuple(l for a, l in enumerate(lab) if a not in axes)] * len(outs)
    if name == "gather":
        dn = params["dimension_numbers"]
        if any(l is not None for l in ins[0]) or dn.operand_batching_dims:
            raise _Coupled  # reads across neurons, or a per-neuron table
        batch_labels = iter(ins[1][:-1])  # the indices' last axis holds the index vector
        return [_checked(tuple(None if a in dn.offset_dims else next(batch_labels) for a in range(rank)))]
    if name == "dot_general":
        (lc, rc), (lb, rb) = params["dimension_numbers"]
        lhs, rhs = ins
        if any(lhs[a] is not None for a in lc) or any(rhs[a] is not None for a in rc):
            raise _Coupled  # a contraction over neurons
        batch = [_merge([(lhs[a],), (rhs[b],)], 1)[0] for a, b in zip(lb, rb)]
        free = [l for a, l in enumerate(lhs) if a not in lc and a not in lb] + \
               [l for a, l in enumerate(rhs) if a not in rc and a not in rb]
        return [_checked(tuple(batch + free))]
    raise _Coupled


def primitive_names(jaxpr) -> set[str]:
    """Names of all primitives in a (closed) jaxpr, those of nested jaxprs (jit, custom_jvp_call,
    ...) included along with the primitive that calls them."""
    names = set()
    for eqn in getattr(jaxpr, "jaxpr", jaxpr).eqns:
        name = eqn.primitive.name
        sub = eqn.params.get(NESTED[name]) if name in NESTED and not _is_error_if(eqn) else None
        names |= {name} | (primitive_names(sub) if sub is not None else set())
    return names


def _scan(eqn, ins, run):
    """`lax.scan`: the body is followed with the carry's labels until they are stable (a carry
    that runs along one neuron axis on entry and another on exit mixes neurons); scanning over a
    neuron axis mixes them too."""
    n_c, n_carry = eqn.params["num_consts"], eqn.params["num_carry"]
    consts, carry, xs = ins[:n_c], list(ins[n_c:n_c + n_carry]), ins[n_c + n_carry:]
    if any(lab and lab[0] is not None for lab in xs):
        raise _Coupled
    xs = [lab[1:] for lab in xs]
    for _ in range(3):
        outs = run(eqn.params["jaxpr"], [*consts, *carry, *xs])
        new = [_merge([a, b], len(a)) for a, b in zip(carry, outs[:n_carry])]
        if new == carry:
            return [*carry, *[(None, *lab) for lab in outs[n_carry:]]]
        carry = new
    raise _Coupled


def input_labels(shape, batch_shape) -> Labels:
    """Labels of an input array of `shape` against the neurons' `batch_shape`, aligned as NumPy
    broadcasts (trailing axes): an axis of the batch's size runs along that neuron axis, an axis
    of size one along none, any other axis along a private label that matches nothing."""
    nb, r = len(batch_shape), len(shape)
    out = []
    for i, n in enumerate(shape):
        k = i - (r - nb)
        if 0 <= k < nb and n == batch_shape[k]:
            out.append(k)
        elif n == 1:
            out.append(None)
        else:
            out.append(("private", id(out), i))
    return tuple(out)


def coupling_primitives(jaxpr, batch_shape: tuple[int, ...], *, ignore_outputs: int = 0) -> set[str]:
    """The primitives of `jaxpr` (a step traced on batch-shaped arrays) that may mix neurons;
    empty if the step acts on each neuron independently, proven by following along which neuron
    axis each array axis runs ("labels") through every equation.

    Inputs are labelled by `input_labels` (per-neuron parameters broadcast against the state
    like NumPy). Shared values (no neuron axis: parameters, rate tables) may be computed by any
    primitive; a value with a neuron axis only by the allow-list: `ELEMENTWISE` primitives,
    broadcasts, reshapes that add or drop unit axes, transposes, slices and concatenations along
    other axes, reductions and contractions over other axes, and gathers from shared tables.
    Every output must run along its own neuron axes (no transposed neurons)."""
    bad: set[str] = set()

    def run(jx, ins):
        jx = getattr(jx, "jaxpr", jx)
        env = {}
        for v in getattr(jx, "constvars", ()):
            env[v] = (None,) * len(v.aval.shape)
        for v, lab in zip(jx.invars, ins, strict=True):
            env[v] = lab

        def read(a):
            if isinstance(a, jcore.Literal) or a not in env:
                return (None,) * len(getattr(a.aval, "shape", ()))
            return env[a]

        for eqn in jx.eqns:
            ins_e = [read(a) for a in eqn.invars]
            try:
                outs = _rule(eqn, ins_e, run)
            except _Coupled:
                bad.add(eqn.primitive.name)
                outs = [(None,) * len(getattr(v.aval, "shape", ())) for v in eqn.outvars]
            for v, lab in zip(eqn.outvars, outs):
                env[v] = lab
        return [read(v) for v in jx.outvars]

    jx = getattr(jaxpr, "jaxpr", jaxpr)
    outs = run(jaxpr, [input_labels(v.aval.shape, batch_shape) for v in jx.invars])
    for v, lab in list(zip(jx.outvars, outs))[ignore_outputs:]:
        want = input_labels(v.aval.shape, batch_shape)
        if any(isinstance(l, int) and l != w for l, w in zip(lab, want)):
            bad.add("transpose")
    return bad


def elementwise_error(bad: set[str], what: str) -> str:
    """The message of the `ValueError` for a step with coupling primitives `bad`."""
    return (f"{what} needs a step that is elementwise over neurons (neurons that do not interact); this one uses "
            f"{', '.join(sorted(bad))}, which may mix neurons (recurrent weights, gathers, slices, reductions). "
            "Only elementwise primitives are allowed (brainfuse_kernels._elementwise.ELEMENTWISE)")
