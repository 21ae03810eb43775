"""IAFPscDelta and IAFPscExp: against NEST 3.10 itself (V at every step to 1e-9 mV, spike times
exactly), refractory counts, jit/vmap/grad, simulate under every adjoint, and bad input.

NEST timing, measured and applied here (see `brainfuse_jax.neurons._iaf`): a spike emitted by a
`spike_generator` at time T through a connection of delay d steps is delivered in step
`round(T / dt) - 1 + d` (the step that ends at `T + d dt`); the current of a `dc_generator` (or
a `step_current_generator` level) that starts at `t_on`, connected with delay d steps, acts in
the steps `k` with `k dt >= t_on + d dt` (NEST receives it one step earlier and applies it one
step later). The multimeter's V at `(k + 1) dt` is the state after step `k`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.neurons import IAFPscDelta, IAFPscExp
from brainfuse_jax.neurons._iaf import psc_exp_propagator

DT = 0.1  # ms
T = 400  # steps (40 ms)
TOL = 1e-9  # mV


# ---- NEST ---------------------------------------------------------------------------------------
def run_nest(model: str, params: list[dict], *, dc=(), step_current=(), spikes=None, t_steps=T, dt=DT):
    """Simulate one NEST `model` neuron per entry of `params` for `t_steps` steps of `dt`.

    `dc`: (amplitude pA, start ms, stop ms) of `dc_generator`s, `step_current`: (times, values)
    of `step_current_generator`s, each into every neuron; `spikes[i]`: (times ms, weights) into
    neuron i through one `spike_generator` (static_synapse of weight 1, `spike_weights` the
    weights). Every connection has a delay of one step. Returns V (n, t_steps) at (k + 1) dt and,
    per neuron, the steps k whose end the spikes are stamped at ((k + 1) dt)."""
    nest = pytest.importorskip("nest", reason="NEST (pip install nest-simulator) is needed for the NEST comparison")
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution = dt
    nrns = nest.Create(model, len(params))
    for nrn, p in zip(nrns, params):
        nrn.set({**p, "V_m": p.get("E_L", -70.0)})  # start at rest, as our init_state (NEST keeps V_m = -70)
    for amp, start, stop in dc:
        gen = nest.Create("dc_generator", params={"amplitude": amp, "start": start, "stop": stop})
        nest.Connect(gen, nrns, syn_spec={"delay": dt})
    for times, values in step_current:
        gen = nest.Create("step_current_generator", params={"amplitude_times": list(times),
                                                           "amplitude_values": list(values)})
        nest.Connect(gen, nrns, syn_spec={"delay": dt})
    for nrn, (times, weights) in zip(nrns, spikes or []):
        gen = nest.Create("spike_generator", params={"spike_times": list(times), "spike_weights": list(weights)})
        nest.Connect(gen, nrn, syn_spec={"synapse_model": "static_synapse", "weight": 1.0, "delay": dt})
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": dt})
    nest.Connect(mm, nrns)
    rec = nest.Create("spike_recorder")
    nest.Connect(nrns, rec)
    nest.Simulate(t_steps * dt + 2.0)  # the multimeter's last min_delay of data arrives a slice late
    ev = mm.get("events")
    ids = list(nrns.tolist())
    k = np.rint(np.asarray(ev["times"]) / dt).astype(int) - 1
    v = np.full((len(params), t_steps), np.nan)
    keep = k < t_steps
    v[np.searchsorted(ids, np.asarray(ev["senders"])[keep]), k[keep]] = np.asarray(ev["V_m"])[keep]
    sp = rec.get("events")
    steps = np.rint(np.asarray(sp["times"]) / dt).astype(int) - 1
    out = [np.sort(steps[(np.asarray(sp["senders"]) == i) & (steps < t_steps)]) for i in ids]
    return v, out


def drive_arrays(n, *, dc=(), step_current=(), spikes=None, port_of=lambda w: "delta", t_steps=T, dt=DT):
    """The same input as `run_nest` as our (T, n) current x and (T, n) event arrays per port."""
    x = np.zeros((t_steps, n))
    k = np.arange(t_steps)
    for amp, start, stop in dc:
        x += np.where((k >= round(start / dt) + 1) & (k < round(stop / dt) + 1), amp, 0.0)[:, None]
    for times, values in step_current:
        level = np.zeros(t_steps)
        for t_on, val in zip(times, values):
            level[k >= round(t_on / dt) + 1] = val
        x += level[:, None]
    events = {}
    for i, (times, weights) in enumerate(spikes or []):
        for t, w in zip(times, weights):
            port = port_of(w)
            events.setdefault(port, np.zeros((t_steps, n)))[round(t / dt), i] += w  # delivered round(t/dt)-1+1
    return x, events


@eqx.filter_jit
def run_ours(model, x, events, dt=DT):
    """Scan `step_events` over (T, n) inputs for one batch row; returns V (n, T), spikes (n, T)."""
    state = model.init_state((1, x.shape[1]), x.dtype)

    def body(s, inp):
        xk, ek = inp
        s, out = model.step_events(s, xk[None], {p: e[None] for p, e in ek.items()}, dt)
        return s, (s["v"][0], out[0])

    _, (v, s) = jax.lax.scan(body, state, (x, events))
    return v.T, s.T


def compare(model, nest_model, nest_params, *, port_of=lambda w: "delta", min_spikes=1, **drive):
    v_ref, spikes_ref = run_nest(nest_model, nest_params, **drive)
    x, events = drive_arrays(len(nest_params), port_of=port_of, **drive)
    v, s = run_ours(model, jnp.asarray(x), {p: jnp.asarray(e) for p, e in events.items()})
    v, s = np.asarray(v), np.asarray(s)
    assert set(np.unique(s)) <= {0.0, 1.0}
    for i in range(len(nest_params)):
        np.testing.assert_array_equal(np.nonzero(s[i])[0], spikes_ref[i], err_msg=f"spike steps of neuron {i}")
    assert sum(len(r) for r in spikes_ref) >= min_spikes  # not vacuous
    assert np.isfinite(v_ref).all()
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=TOL)
    return v_ref, spikes_ref


def _per_neuron(cls, params: list[dict]) -> dict:
    """Per-neuron parameter arrays of `params` (dicts of NEST parameters), missing entries at the
    model's defaults (NEST's)."""
    default = cls()
    keys = sorted({k for p in params for k in p})
    return {k: np.array([p.get(k, float(getattr(default, k))) for p in params]) for k in keys}


DELTA_PARAMS = [
    {"I_e": 300.0},  # subthreshold alone, spikes with the dc
    {"I_e": 500.0, "t_ref": 2.05},  # t_ref not a multiple of dt: NEST rounds up to 21 steps
    {"I_e": 0.0, "tau_m": 5.0, "C_m": 100.0, "E_L": -65.0, "V_th": -50.0, "V_reset": -68.0, "t_ref": 0.0},
]


def test_iaf_psc_delta_currents_match_nest(x64):
    """I_e, a dc_generator and a step_current_generator (delay 1 step): V and spikes as NEST's."""
    drive = {"dc": [(250.0, 5.0, 25.0)], "step_current": [([2.0, 12.0, 30.0], [100.0, -150.0, 400.0])]}
    model = IAFPscDelta(**_per_neuron(IAFPscDelta, DELTA_PARAMS))
    v_ref, spikes_ref = compare(model, "iaf_psc_delta", DELTA_PARAMS, min_spikes=5, **drive)
    k = spikes_ref[1][0]  # t_ref = 2.05 ms: V held at V_reset in the spike's step and 21 more
    assert np.all(v_ref[1, k:k + 22] == -70.0) and v_ref[1, k + 22] > -70.0


def test_iaf_psc_delta_spikes_match_nest(x64):
    """spike_generator input, excitatory and inhibitory weights (mV), some arriving while the
    neuron is refractory (discarded, NEST's refractory_input=False), and V_min."""
    params = [{"I_e": 0.0}, {"I_e": 200.0, "V_min": -72.0}]
    spikes = [
        ([1.0, 3.0, 3.5, 8.0, 8.5, 8.7, 9.3, 15.0, 20.0], [6.0, 5.0, 5.0, 16.0, 3.0, 4.0, 2.0, -4.0, 15.5]),
        ([2.0, 4.0, 4.1, 6.0, 6.5, 20.0, 20.1], [-3.0, -5.0, -6.0, 30.0, 10.0, 14.0, 1.5]),
    ]
    model = IAFPscDelta(**_per_neuron(IAFPscDelta, params))
    v_ref, spikes_ref = compare(model, "iaf_psc_delta", params, spikes=spikes, min_spikes=3)
    assert v_ref[1].min() == pytest.approx(-72.0)  # V_min was hit
    # the spikes at 8.5 and 8.7 ms arrive while neuron 0 is refractory after its spike at 8.1 ms
    assert 80 in spikes_ref[0]


EXP_PARAMS = [
    {"I_e": 300.0},
    {"I_e": 450.0, "tau_syn_ex": 10.0, "tau_syn_in": 10.0 * (1 + 1e-9)},  # tau_m == tau_syn: NEST's limit
    {"I_e": 0.0, "tau_m": 8.0, "C_m": 150.0, "tau_syn_ex": 0.5, "tau_syn_in": 4.0, "E_L": -60.0,
     "V_th": -50.0, "V_reset": -65.0, "t_ref": 1.0},
]


def _sign_port(w):
    return "ex" if w > 0 else "in"  # NEST's routing by the sign of the weight


def test_iaf_psc_exp_currents_match_nest(x64):
    drive = {"dc": [(250.0, 5.0, 25.0)], "step_current": [([2.0, 12.0, 30.0], [100.0, -150.0, 400.0])]}
    model = IAFPscExp(**_per_neuron(IAFPscExp, EXP_PARAMS))
    compare(model, "iaf_psc_exp", EXP_PARAMS, port_of=_sign_port, min_spikes=5, **drive)


def test_iaf_psc_exp_spikes_match_nest(x64):
    """Excitatory and inhibitory spikes (pA) into ex/in, also while refractory (they still charge
    the synaptic current), including the tau_m == tau_syn propagator."""
    spikes = [
        ([1.0, 1.5, 6.0, 6.1, 6.2, 6.3, 7.0, 15.0, 15.5], [800.0, 900.0, 2000.0, 2000.0, 2000.0, 1500.0, 3000.0, -900.0, 2500.0]),
        ([2.0, 4.0, 4.1, 10.0, 10.2, 11.0], [-500.0, 1200.0, 1500.0, 3000.0, 4000.0, -2000.0]),
        ([3.0, 3.1, 3.2, 3.4, 9.0], [3000.0, 3000.0, 3000.0, 2000.0, -1000.0]),
    ]
    model = IAFPscExp(**_per_neuron(IAFPscExp, EXP_PARAMS))
    compare(model, "iaf_psc_exp", EXP_PARAMS, spikes=spikes, port_of=_sign_port, min_spikes=4)


# ---- propagator and refractory counts ----------------------------------------------------------
def test_psc_exp_propagator_limit(x64):
    """At tau_m == tau_syn the regular formula is 0 * inf: NEST's limit h/C exp(-h/tau) is used,
    and the regular formula next to it agrees with it; gradients are finite in both branches."""
    tau_m = jnp.asarray([10.0, 10.0 + 1e-6, 12.0])
    p, g = jax.jit(jax.vmap(jax.value_and_grad(lambda t: psc_exp_propagator(10.0, t, 250.0, 0.1))))(tau_m)
    assert float(p[0]) == pytest.approx(0.1 / 250.0 * np.exp(-0.01), rel=1e-15)
    assert float(p[1]) == pytest.approx(float(p[0]), rel=1e-7)
    assert np.isfinite(np.asarray(g)).all()


@pytest.mark.parametrize("t_ref, dt, counts", [(2.0, 0.1, 20), (2.05, 0.1, 21), (0.0, 0.1, 0), (1.0, 0.25, 4),
                                               (1.1, 0.25, 5), (0.3, 0.1, 3), (0.7, 0.1, 7)])
def test_refractory_counts_as_nest(t_ref, dt, counts):
    assert float(IAFPscDelta(t_ref=t_ref).refractory_counts(dt)) == counts


# ---- JAX transformations -------------------------------------------------------------------------
@eqx.filter_jit
def _v_at(model, x, dt=DT):
    """V (mV) of one neuron after the steps of input `x` (T, 1, 1) (pA)."""
    def body(s, xk):
        return model.step(s, xk, dt)[0], None

    return jax.lax.scan(body, model.init_state((1, 1), x.dtype), x)[0]["v"][0, 0]


@pytest.mark.parametrize("cls", [IAFPscDelta, IAFPscExp])
def test_gradient_matches_finite_differences(cls, x64):
    """d V(t) / d I_e and d V(t) / d tau_m before the first spike, against central differences."""
    x = jnp.zeros((50, 1, 1))  # 5 ms; with I_e = 350 pA, V stays below threshold
    base = {"I_e": 350.0, "tau_m": 10.0}
    if cls is IAFPscExp:
        base["tau_syn_ex"] = 3.0

    def v_of(ie, tau):
        return _v_at(cls(**{**base, "I_e": ie, "tau_m": tau}), x)

    assert float(v_of(base["I_e"], base["tau_m"])) < -55.0
    g = jax.grad(v_of, argnums=(0, 1))(jnp.asarray(350.0), jnp.asarray(10.0))
    for i, eps in ((0, 1e-3), (1, 1e-5)):
        args = [350.0, 10.0]
        up, down = list(args), list(args)
        up[i] += eps
        down[i] -= eps
        fd = (float(v_of(*up)) - float(v_of(*down))) / (2 * eps)
        assert float(g[i]) == pytest.approx(fd, rel=1e-6)
        assert abs(fd) > 1e-3


def test_jit_and_vmap(x64):
    """A jitted step equals the eager one; vmap over I_e equals a loop over models."""
    model = IAFPscDelta(I_e=400.0, V_th=-69.5)
    state = model.init_state((2, 3), jnp.float64)
    x = jnp.full((2, 3), 100.0)
    ev = {"delta": jnp.asarray([[0.0, 0.1, 0.5]] * 2)}
    eager = model.step_events(state, x, ev, DT)
    jitted = eqx.filter_jit(lambda m, s, x_, e: m.step_events(s, x_, e, DT))(model, state, x, ev)
    jax.tree.map(np.testing.assert_array_equal, eager, jitted)
    np.testing.assert_array_equal(eager[1], [[0.0, 0.0, 1.0]] * 2)

    ies = jnp.asarray([300.0, 400.0, 600.0])
    x0 = jnp.zeros((200, 1, 1))
    batched = jax.vmap(lambda ie: _v_at(IAFPscDelta(I_e=ie), x0))(ies)
    looped = [float(_v_at(IAFPscDelta(I_e=float(ie)), x0)) for ie in ies]
    np.testing.assert_array_equal(np.asarray(batched), looped)


def test_simulate_every_adjoint(x64):
    """simulate(IAFPscDelta(), ...) runs under DirectAdjoint, CheckpointAdjoint and ForwardMode with
    identical forward values and equal parameter gradients."""
    model = IAFPscDelta(I_e=np.array([300.0, 420.0, 600.0]))
    state0 = model.init_state((2, 3), jnp.float64)
    x = jnp.asarray(np.random.default_rng(0).uniform(0.0, 200.0, (2, 150, 3)))

    def loss(m, adjoint):
        _, rec = bf.simulate(m, state0, x, DT, record={"v": "v", "s": "output"}, adjoint=adjoint)
        return jnp.sum(rec["v"][:, :40]) + jnp.sum(rec["s"]), rec

    results = {}
    for adjoint in (bf.DirectAdjoint(), bf.CheckpointAdjoint(every=7), bf.ForwardMode()):
        (val, rec), grads = eqx.filter_value_and_grad(loss, has_aux=True)(model, adjoint)
        results[repr(adjoint)] = (val, rec, grads)
    ref_val, ref_rec, ref_grads = results.pop(repr(bf.DirectAdjoint()))
    assert float(jnp.sum(ref_rec["s"])) > 0
    for name, (val, rec, grads) in results.items():
        jax.tree.map(np.testing.assert_array_equal, rec, ref_rec)
        for p in ("I_e", "tau_m", "C_m"):
            np.testing.assert_allclose(getattr(grads, p), getattr(ref_grads, p), rtol=1e-9, err_msg=f"{name} {p}")
    assert np.all(np.asarray(ref_grads.I_e) != 0)


def test_params_lists_parameters():
    names = bf.params.names(IAFPscExp())
    assert names == ["tau_m", "C_m", "E_L", "V_th", "V_reset", "t_ref", "I_e", "tau_syn_ex", "tau_syn_in"]
    p = bf.params.parameters(IAFPscDelta())
    assert p["V_min"].unit == "mV" and p["tau_m"].unit == "ms" and p["C_m"].unit == "pF" and p["I_e"].unit == "pA"
    assert IAFPscDelta.receptors == ("delta",) and IAFPscExp.receptors == ("ex", "in")
    assert IAFPscDelta.voltage_unit == IAFPscExp.voltage_unit == "mV"


def test_defaults_are_nests():
    m = IAFPscExp()
    got = {k: float(getattr(m, k)) for k in ("tau_m", "C_m", "E_L", "V_th", "V_reset", "t_ref", "I_e",
                                              "tau_syn_ex", "tau_syn_in")}
    assert got == {"tau_m": 10.0, "C_m": 250.0, "E_L": -70.0, "V_th": -55.0, "V_reset": -70.0, "t_ref": 2.0,
                   "I_e": 0.0, "tau_syn_ex": 2.0, "tau_syn_in": 2.0}
    assert float(IAFPscDelta().V_min) == -np.inf
    assert float(IAFPscDelta().init_state((2,))["v"][0]) == -70.0


# ---- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, match", [
    (IAFPscDelta, {"tau_m": 0.0}, "tau_m must be > 0"),
    (IAFPscExp, {"tau_syn_ex": -1.0}, "tau_syn_ex must be > 0"),
    (IAFPscExp, {"tau_syn_in": 0.0}, "tau_syn_in must be > 0"),
])
def test_bad_time_constant(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_bad_capacitance():
    with pytest.raises(ValueError, match="C_m must be > 0"):
        IAFPscExp(C_m=-250.0)


def test_bad_refractory_period():
    with pytest.raises(ValueError, match="t_ref must be >= 0"):
        IAFPscDelta(t_ref=-0.1)


def test_bad_reset_above_threshold():
    with pytest.raises(ValueError, match="V_reset must be < V_th"):
        IAFPscDelta(V_reset=-50.0)
    with pytest.raises(ValueError, match="V_reset must be < V_th"):
        IAFPscExp(V_th=np.array([-55.0, -70.0]))


def test_bad_nan_parameter():
    with pytest.raises(ValueError, match="E_L must be finite"):
        IAFPscDelta(E_L=np.nan)
    with pytest.raises(ValueError, match="V_min must be"):
        IAFPscDelta(V_min=np.nan)


def test_bad_input_shape():
    model = IAFPscDelta()
    state = model.init_state((2, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(2, 3\)"):
        model.step(state, jnp.zeros((3,)), DT)
    with pytest.raises(ValueError, match=r"events\['delta'\] must have shape \(2, 3\)"):
        model.step_events(state, jnp.zeros((2, 3)), {"delta": jnp.zeros((3, 2))}, DT)


def test_bad_event_port():
    model = IAFPscExp()
    state = model.init_state((2,))
    with pytest.raises(ValueError, match=r"unknown event port 'delta' for IAFPscExp: its receptors are \('ex', 'in'\)"):
        model.step_events(state, jnp.zeros((2,)), {"delta": jnp.ones((2,))}, DT)


def test_bad_dt():
    model = IAFPscExp()
    state = model.init_state((2,))
    for dt in (0.0, -0.1):
        with pytest.raises(ValueError, match="dt must be > 0"):
            model.step(state, jnp.zeros((2,)), dt)


def test_bad_per_neuron_shape():
    with pytest.raises(ValueError, match="does not broadcast"):
        IAFPscDelta(I_e=np.zeros(4)).init_state((2, 3))
