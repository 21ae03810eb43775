"""`bf.lower.to_stablehlo`: every model family's step and unroll exported with `jax.export`,
serialised, deserialised and called give exactly (bitwise, CPU) what `step` / `simulate` give;
names of parameters and state leaves; the check mode "nan" (NaN instead of a host callback,
the default still raises); what cannot be exported is refused."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
import brainfuse_jax.lower  # noqa: F401  (bf.lower)
from brainfuse_jax._validate import error_if
from brainfuse_jax.lower import Lowered, to_stablehlo

DT = 0.1  # ms
T = 100  # steps
B = 2


def _model(name):
    """(model, state0, inputs (B, T, ...)) with drive strong enough to spike."""
    key = jax.random.key(3)
    models = {
        "LIF": (bf.LIF(), 1.5), "ALIF": (bf.ALIF(), 1.5),
        "RecurrentLIF": (bf.RecurrentLIF(4, key=jax.random.key(0)), 1.5),
        "HH": (bf.HH(), 20.0), "PospischilRS": (bf.PospischilRS(), 20.0),
        "IAFPscDelta": (bf.IAFPscDelta(), 1500.0),  # pA
        "network": (bf.network.brunel(NE=80, NI=20, spike_capacity=None), 1500.0),
    }
    model, scale = models[name]
    state0 = model.init_state(B) if name == "network" else model.init_state((B, 4))
    inputs = jax.random.uniform(key, (B, T, *model.input_shape(state0)[1:])) * scale
    return model, state0, inputs


def _round_trip(lowered: Lowered) -> Lowered:
    again = Lowered.from_serialized(lowered.serialized, lowered.meta)
    assert again.argument_specs == lowered.argument_specs and again.result_specs == lowered.result_specs
    assert again.text == lowered.text
    return again


def _no_host_callback(text: str):
    assert "callback" not in text
    assert "custom_call" not in text  # nothing but StableHLO ops: no FFI kernel, no Python


def _assert_same(results, state, outputs):
    leaves = jax.tree.leaves(state)
    assert len(results) == len(leaves) + len(outputs)
    for got, want in zip(results, [*leaves, *outputs], strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


MODELS = ["LIF", "ALIF", "RecurrentLIF", "HH", "PospischilRS", "IAFPscDelta", "network"]


@pytest.mark.parametrize("name", MODELS)
def test_step_and_unroll_exported_round_trip_identical(name):
    model, state0, inputs = _model(name)
    x0 = inputs[:, 0]
    # one step against the model's own step (run as XLA runs it, parameters as jit arguments)
    step = to_stablehlo(model, state0, x0, DT, what="step")
    _no_host_callback(step.text)
    assert isinstance(step.serialized, bytes) and len(step.serialized) > 0
    again = _round_trip(step)
    ref_state, ref_out = eqx.filter_jit(lambda m, s, x: m.step(s, x, DT))(bf.XLA().prepare(model), state0, x0)
    _assert_same(again.call(*again.arguments(x0)), ref_state, [ref_out])
    # the whole unroll against simulate
    unroll = to_stablehlo(model, state0, inputs, DT, what="unroll")
    _no_host_callback(unroll.text)
    again = _round_trip(unroll)
    final, out = bf.simulate(model, state0, inputs, DT, backend=bf.XLA(), adjoint=bf.DirectAdjoint())
    results = again.call(*again.arguments(inputs))
    _assert_same(results, final, [out])
    assert float(jnp.sum(out)) > 0, "the comparison should include spikes"
    assert (unroll.what, unroll.n_steps, unroll.dt, unroll.held) == ("unroll", T, DT, False)
    assert [s.name for s in unroll.outputs] == ["output"] and unroll.outputs[0].shape == out.shape
    # names: the floating-point parameters are exactly bf.params' names; state leaves by path
    floats = [s.name for s in unroll.params if jnp.issubdtype(s.dtype, jnp.floating)]
    assert floats == bf.params.names(bf.XLA().prepare(model))
    if name != "network":
        assert sorted(s.name for s in unroll.state) == sorted(bf.params.state_names(state0))


def _cell():
    from brainfuse_jax.morphology import CompartmentTree
    tree = CompartmentTree(parent=[-1, 0, 1], area_um2=[2000.0, 500.0, 500.0], ri_MOhm=[0.0, 10.0, 10.0],
                           section=[0, 1, 1], x=[0.5, 0.25, 0.75], swc_type=[1, 3, 3], dist_um=[0.0, 10.0, 20.0],
                           section_names=("soma", "dend"))
    return bf.Cell(tree, {"na": bf.HHNa(), "k": bf.HHK(), "leak": bf.Leak()}, temperature=6.3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_more_models_and_float64(dtype):
    """A Cell (integer tree leaves among its arguments), ASN, IAFPscExp; LIF and HH in float64."""
    with jax.enable_x64(dtype == "float64"):
        if dtype == "float32":
            models = [(_cell(), 0.05), (bf.ASN(), 2.0), (bf.IAFPscExp(), 1500.0)]
        else:
            models = [(bf.LIF(), 1.5), (bf.HH(), 20.0)]
        for model, scale in models:
            state0 = model.init_state(B, dtype) if isinstance(model, bf.Cell) else model.init_state((B, 3), dtype)
            inputs = jax.random.uniform(jax.random.key(1), (B, 60, *model.input_shape(state0)[1:]), dtype) * scale
            low = to_stablehlo(model, state0, inputs, DT, what="unroll")
            _no_host_callback(low.text)
            assert low.inputs[0].dtype == np.dtype(dtype)
            final, out = bf.simulate(model, state0, inputs, DT, backend=bf.XLA(), adjoint=bf.DirectAdjoint())
            _assert_same(_round_trip(low).call(*low.arguments(inputs)), final, [out])


def test_names():
    lif = to_stablehlo(bf.LIF(), bf.LIF().init_state((B, 3)), None, DT)
    assert [s.name for s in lif.params] == ["beta_raw", "threshold", "refractory"]
    assert [s.name for s in lif.state] == ["refractory", "v"]
    assert [s.name for s in lif.inputs] == ["x"] and lif.inputs[0].shape == (B, 3)
    hh = to_stablehlo(bf.HH(), bf.HH().init_state((B, 3)), None, DT)
    assert [s.name for s in hh.params][:2] == ["na.gbar", "na.e_rev"]
    assert [s.name for s in hh.state] == ["k.n", "na.h", "na.m", "v"]
    assert hh.params[0].symbol == "na_gbar"
    net = bf.network.brunel(NE=80, NI=20, spike_capacity=None)
    low = to_stablehlo(net, net.init_state(B))  # dt: the network's own
    assert low.dt == net.dt
    params = {s.name: s for s in low.params}
    assert params["conn.cols"].dtype == np.int32 and params["conn.indptr"].shape == (101,)
    assert params["populations.E.model.tau_m"].dtype == np.float32 and "drives.0.rate" in params
    assert [s.name for s in low.state] == ["overflow", "populations.E.refractory", "populations.E.v",
                                           "populations.I.refractory", "populations.I.v", "ring", "t"]
    values = dict(zip([s.name for s in low.params], low.param_values, strict=True))
    np.testing.assert_array_equal(values["conn.cols"], net.conn.cols)


def test_held_unroll_records_and_files(tmp_path):
    model = bf.LIF()
    state0 = model.init_state((B, 3))
    x = jnp.full((B, 3), 0.3)
    low = to_stablehlo(model, state0, x, 1.0, what="unroll", n_steps=20, record=["v", "output"])
    assert low.held and low.n_steps == 20 and low.inputs[0].shape == (B, 3)
    assert [s.name for s in low.outputs] == ["output", "v"]
    low.write(tmp_path, "lif")
    back = Lowered.read(tmp_path, "lif")
    assert (tmp_path / "lif.mlir").read_text() == low.text
    final, rec = bf.simulate(model, state0, x, 1.0, n_steps=20, record=["v", "output"], backend=bf.XLA(),
                             adjoint=bf.DirectAdjoint())
    state, outputs = back.split(back.call(*back.arguments(x)))
    np.testing.assert_array_equal(outputs["v"], rec["v"])
    np.testing.assert_array_equal(outputs["output"], rec["output"])
    np.testing.assert_array_equal(state["v"], final["v"])
    assert float(jnp.sum(rec["output"])) > 0
    # other parameter values and states go in as arguments, by name
    other = eqx.tree_at(lambda m: m.threshold, model, jnp.asarray(0.5, jnp.float32))
    _, rec2 = bf.simulate(other, state0, x, 1.0, n_steps=20, record=["v", "output"], backend=bf.XLA(),
                          adjoint=bf.DirectAdjoint())
    _, outputs2 = back.split(back.call(*back.arguments(x, model=other)))
    np.testing.assert_array_equal(outputs2["output"], rec2["output"])


# ---- check mode --------------------------------------------------------------------------------------
def test_nan_input_gives_nan_output_in_the_exported_function():
    """A NaN or inf input fails simulate's input check (over the whole block, as in mode
    "raise" it stops the whole run): every result is NaN. A NaN state poisons its own batch
    element, a NaN parameter everything; an infinite parameter (NEST's V_min) is fine."""
    model, state0, inputs = _model("HH")
    low = to_stablehlo(model, state0, inputs[:, :20], DT, what="unroll")
    bad_inputs = inputs[:, :20].at[0, 5, 1].set(jnp.nan)
    results = low.call(*low.arguments(bad_inputs))  # no error
    assert all(np.isnan(np.asarray(r)).all() for r in results)
    step = to_stablehlo(bf.LIF(), bf.LIF().init_state((B, 3)), None, DT)
    results = step.call(*step.arguments(jnp.ones((B, 3)).at[1, 0].set(jnp.inf)))
    assert all(np.isnan(np.asarray(r)).all() for r in results)
    state = bf.LIF().init_state((B, 3))
    good = step.call(*step.arguments(jnp.ones((B, 3)), state=state))
    state["v"] = state["v"].at[0, 2].set(jnp.nan)
    results = step.call(*step.arguments(jnp.ones((B, 3)), state=state))
    for got, want in zip(results, good, strict=True):
        assert np.isnan(np.asarray(got[0])).all()
        np.testing.assert_array_equal(got[1], want[1])  # the other batch element is untouched
    args = step.arguments(jnp.ones((B, 3)))
    args[1] = jnp.asarray(jnp.nan, jnp.float32)  # a NaN threshold: everything NaN
    assert np.isnan(np.asarray(step.call(*args)[-1])).all()
    iaf = bf.IAFPscDelta()
    low = to_stablehlo(iaf, iaf.init_state((B, 3)), None, DT)
    assert np.isneginf(np.asarray(bf.params.get(iaf, "V_min")))
    assert not any(np.isnan(np.asarray(r)).any() for r in low.call(*low.arguments()))


def test_check_mode_nan_and_default_raise():
    model = bf.LIF()
    state0 = model.init_state((B, 3))
    x = jnp.ones((B, 5, 3)).at[0, 2, 1].set(jnp.nan)
    run = jax.jit(lambda x: bf.simulate(model, state0, x, 1.0, record="v", backend=bf.XLA())[1])
    assert bf.lower.check_mode() == "raise"
    with bf.lower.checks("nan"):
        assert bf.lower.check_mode() == "nan"
        v = run(x)  # traced in mode "nan": no error, NaN
    assert np.isnan(np.asarray(v)).any()
    assert bf.lower.check_mode() == "raise"
    with pytest.raises(Exception, match="must be finite"):  # same function, same shapes: retraced
        jax.block_until_ready(run(x))
    with bf.lower.checks("nan"):
        assert np.isnan(np.asarray(run(x))).any()
    with pytest.raises(Exception, match="must be finite"):  # and back
        jax.block_until_ready(run(x))


def test_error_if_wrapper():
    f = jax.jit(lambda a: error_if(a, a > 1, "a must be <= 1"))
    with bf.lower.checks("nan"):
        np.testing.assert_array_equal(f(jnp.array([0.5, 2.0])), [0.5, np.nan])
        with pytest.raises(ValueError, match="integer"):
            jax.jit(lambda a: error_if(a, a > 1, "a must be <= 1"))(jnp.array([0, 2]))
    with pytest.raises(Exception, match="a must be <= 1"):
        jax.block_until_ready(f(jnp.array([0.5, 2.0])))
    with pytest.raises(ValueError, match="mode"), bf.lower.checks("ignore"):
        pass


# ---- refusals ----------------------------------------------------------------------------------------
class _Printing(bf.AbstractNeuron):
    tau: jax.Array = eqx.field(converter=jnp.asarray, default=10.0)

    def init_state(self, batch_shape, dtype=None):
        return {"v": jnp.zeros(batch_shape, jnp.float32)}

    def step(self, state, x, dt):
        jax.debug.print("v = {}", state["v"])
        v = state["v"] + dt * (x - state["v"]) / self.tau
        return {"v": v}, v


def test_refusals():
    model = bf.LIF()
    s = model.init_state((B, 3))
    x = jnp.zeros((B, 3))
    with pytest.raises(ValueError, match="what"):
        to_stablehlo(model, s, x, DT, what="jaxpr")
    with pytest.raises(ValueError, match="record"):
        to_stablehlo(model, s, x, DT, record="v")
    with pytest.raises(ValueError, match="n_steps"):
        to_stablehlo(model, s, x, DT, n_steps=3)
    with pytest.raises(ValueError, match="n_steps"):
        to_stablehlo(model, s, None, DT, what="unroll")
    with pytest.raises(ValueError, match="dt"):
        to_stablehlo(model, s, x)
    with pytest.raises(ValueError, match="dt"):
        to_stablehlo(model, s, x, -1.0)
    with pytest.raises(ValueError, match="dt"):
        to_stablehlo(model, s, x, jnp.ones(2))
    with pytest.raises(ValueError, match="shape"):
        to_stablehlo(model, s, jnp.zeros((B, 4)), DT)
    with pytest.raises(TypeError, match="model"):
        to_stablehlo("LIF", s, x, DT)
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda m: to_stablehlo(m, s, x, DT).n_steps)(model)
    with pytest.raises(ValueError, match="calls back into Python"):
        p = _Printing()
        to_stablehlo(p, p.init_state((B, 3)), x, DT)
    low = to_stablehlo(model, s, x, DT)
    with pytest.raises(ValueError, match="takes 6 arrays"):
        low.call(x)
    with pytest.raises(ValueError, match="x must have shape"):
        low.call(*low.arguments()[:-1], jnp.zeros((B, 4)))
    with pytest.raises(ValueError, match="meta"):
        Lowered.from_serialized(low.serialized, "{}")
