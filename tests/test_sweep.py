"""`sweep`, `fi_curve`, `rheobase`, `rate_map`: equal to a loop of single simulations, NEURON's
f-I counts and rheobase, sharded == single device, memory-bounded batches, bad input."""

import json
import math
import os
import pathlib
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.sweep import _curves, _grid, _plan
from .conftest import ref_file

DT = 0.025
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _loop_counts(gnas, gks, current, n_steps):
    """Reference: one HH per point, built with HH(...) and simulated alone (batch of 1)."""
    counts = np.zeros((len(gnas), len(gks)))
    v_final = np.zeros((len(gnas), len(gks)))
    for i, a in enumerate(gnas):
        for j, b in enumerate(gks):
            model = bf.HH(g_na=a, g_k=b)
            final, c = bf.simulate(model, model.init_state((1,)), jnp.full((1, n_steps), current), DT,
                                   record=bf.Total())
            counts[i, j], v_final[i, j] = float(c[0]), float(final["v"][0])
    return counts, v_final


def _count_and_v(run):
    return {"count": run.recorded, "v": run.final["v"]}


def test_product_grid_equals_loop():
    gnas, gks, n_steps = [80.0, 120.0, 160.0], [25.0, 36.0, 50.0], 4000
    out = bf.sweep(bf.HH(), {"na.gbar": gnas, "k.gbar": gks}, np.full(n_steps, 10.0), _count_and_v, dt=DT)
    assert out["count"].shape == (3, 3) and out["v"].shape == (3, 3)
    counts, v = _loop_counts(gnas, gks, 10.0, n_steps)
    np.testing.assert_array_equal(out["count"], counts)
    np.testing.assert_allclose(out["v"], v, atol=1e-4)
    assert counts.min() >= 1 and len(np.unique(counts)) > 2  # the grid is not trivial


def test_zip_tuple_keys_batches_and_stimulus_forms():
    gnas, gks, n_steps = np.array([90.0, 120.0, 150.0]), np.array([30.0, 36.0, 45.0]), 2000
    x = np.full(n_steps, 8.0)
    full = bf.sweep(bf.HH(), {"na.gbar": gnas, "k.gbar": gks}, x, _count_and_v, dt=DT)
    diag = {k: v[np.arange(3), np.arange(3)] for k, v in full.items()}
    zipped = bf.sweep(bf.HH(), {"na.gbar": gnas, "k.gbar": gks}, x, _count_and_v, dt=DT, mode="zip")
    tupled = bf.sweep(bf.HH(), {("na.gbar", "k.gbar"): (gnas, gks)}, x, _count_and_v, dt=DT)
    for res in (zipped, tupled):
        for k in diag:
            np.testing.assert_array_equal(res[k], diag[k])
    # mixed: zipped pair x product axis -> (3, 2)
    mixed = bf.sweep(bf.HH(), {("na.gbar", "k.gbar"): (gnas, gks), "c_m": [1.0, 1.5]}, x, None, dt=DT)
    assert mixed.shape == (3, 2)
    np.testing.assert_array_equal(mixed[:, 0], diag["count"])

    # batch sizes (padding of the last batch) and a tiny memory budget give the same numbers
    for kw in (dict(batch_size=2), dict(batch_size=4), dict(memory_budget=1)):
        res = bf.sweep(bf.HH(), {"na.gbar": gnas, "k.gbar": gks}, x, _count_and_v, dt=DT, progress=False, **kw)
        for k in full:
            np.testing.assert_array_equal(res[k], full[k])
    assert _plan._plan(9, 1, None, 1, 100).n_batches == 9
    assert _plan._plan(9, 1, 4, None, 1) == _plan._Plan(3, 3, 1, 9)
    assert _plan._plan(10, 4, 5, None, 1) == _plan._Plan(8, 2, 4, 16)

    # per-point stimulus array and callable stimulus == shared array
    per_point = np.broadcast_to(x, (3, 3, n_steps))
    res = bf.sweep(bf.HH(), {"na.gbar": gnas, "k.gbar": gks}, per_point, _count_and_v, dt=DT)
    np.testing.assert_array_equal(res["count"], full["count"])
    res = bf.sweep(bf.HH(), {"na.gbar": gnas, "stimulus.amp": [8.0, 0.0]},
                   lambda p: jnp.full((n_steps,), p["amp"]), None, dt=DT)
    np.testing.assert_array_equal(res[:, 0], full["count"][:, 1])
    assert (res[:, 1] == 0).all()


def test_transient_record_and_spike_rate():
    n_steps, transient = 4000, 50.0
    kw = dict(dt=DT, progress=False)
    per_step = bf.sweep(bf.HH(), {"stimulus.i": [0.0, 7.0, 15.0]}, lambda p: jnp.full((n_steps,), p["i"]), None,
                        record="output", **kw)
    assert per_step.shape == (3, n_steps)
    late = per_step[:, int(transient / DT):].sum(axis=1)
    rates = bf.sweep(bf.HH(), {"stimulus.i": [0.0, 7.0, 15.0]}, lambda p: jnp.full((n_steps,), p["i"]),
                     bf.spike_rate, transient=transient, **kw)
    np.testing.assert_allclose(rates, late / ((n_steps * DT - transient) / 1000.0), rtol=1e-6)
    fi = bf.fi_curve(bf.HH(), [0.0, 7.0, 15.0], n_steps * DT, DT, transient=transient)
    np.testing.assert_allclose(fi, rates, rtol=1e-6)


def test_other_neurons_and_parameter_paths():
    assert {"na.gbar", "k.gbar", "leak.e_rev", "c_m", "temperature"} <= set(_grid.parameter_paths(bf.HH()))
    # the long form names the same leaf
    a = bf.sweep(bf.HH(), {"channels.na.gbar": [100.0, 130.0]}, np.full(2000, 10.0), None, dt=DT)
    b = bf.sweep(bf.HH(), {"na.gbar": [100.0, 130.0]}, np.full(2000, 10.0), None, dt=DT)
    np.testing.assert_array_equal(a, b)
    # a LIF (custom __init__, v0 default of its own): higher threshold -> fewer spikes
    counts = bf.sweep(bf.LIF(beta=0.9), {"threshold": [0.5, 1.0, 2.0]}, np.full(200, 0.3), None, dt=1.0)
    assert counts[0] > counts[1] > counts[2] >= 0


def test_bad_input():
    hh, x = bf.HH(), np.full(100, 5.0)
    with pytest.raises(ValueError, match=r"grid: unknown parameter 'na\.gbr'.*did you mean 'na\.gbar'"):
        bf.sweep(hh, {"na.gbr": [1.0]}, x, dt=DT)
    with pytest.raises(ValueError, match="unknown parameter 'na'"):
        bf.sweep(hh, {"na": [1.0]}, x, dt=DT)  # a channel, not a leaf
    with pytest.raises(ValueError, match="grid is empty"):
        bf.sweep(hh, {}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['c_m'\] is empty"):
        bf.sweep(hh, {"c_m": []}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['c_m'\] must be 1-D"):
        bf.sweep(hh, {"c_m": np.ones((2, 2))}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['c_m'\] must be finite"):
        bf.sweep(hh, {"c_m": [1.0, np.nan]}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['na.gbar'\].*HHNa.gbar must be >= 0"):
        bf.sweep(hh, {"na.gbar": [-1.0, 120.0]}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['c_m'\].*c_m must be > 0"):
        bf.sweep(hh, {"c_m": [0.0, 1.0]}, x, dt=DT)
    with pytest.raises(ValueError, match=r"grid\['scheme'\].*static"):
        bf.sweep(hh, {"scheme": [1.0]}, x, dt=DT)
    with pytest.raises(ValueError, match="zipped axes must have equal lengths"):
        bf.sweep(hh, {("na.gbar", "k.gbar"): ([1.0, 2.0], [3.0])}, x, dt=DT)
    with pytest.raises(ValueError, match="mode='zip' needs axes of equal length"):
        bf.sweep(hh, {"na.gbar": [1.0, 2.0], "k.gbar": [3.0]}, x, dt=DT, mode="zip")
    with pytest.raises(ValueError, match="more than once"):
        bf.sweep(hh, {"na.gbar": [1.0], ("na.gbar", "k.gbar"): ([1.0], [2.0])}, x, dt=DT)
    with pytest.raises(ValueError, match=r"stimulus must have shape \('T',\).*got \(3, 100\)"):
        bf.sweep(hh, {"na.gbar": [1.0, 2.0]}, np.ones((3, 100)), dt=DT)
    with pytest.raises(ValueError, match="stimulus must have shape"):
        bf.sweep(hh, {"na.gbar": [1.0, 2.0]}, np.ones((2, 100, 3)), dt=DT)
    with pytest.raises(ValueError, match="stimulus must have at least one time step"):
        bf.sweep(hh, {"na.gbar": [1.0]}, np.ones((0,)), dt=DT)
    with pytest.raises(ValueError, match="stimulus must be finite"):
        bf.sweep(hh, {"na.gbar": [1.0]}, np.array([1.0, np.inf]), dt=DT)
    with pytest.raises(ValueError, match="stimulus must be a callable"):
        bf.sweep(hh, {"stimulus.amp": [1.0]}, x, dt=DT)
    with pytest.raises(ValueError, match=r"stimulus asked for params\['amp'\]"):
        bf.sweep(hh, {"na.gbar": [1.0]}, lambda p: jnp.full((10,), p["amp"]), dt=DT)
    with pytest.raises(ValueError, match=r"stimulus\(params\) must return an array of shape"):
        bf.sweep(hh, {"stimulus.amp": [1.0]}, lambda p: p["amp"], dt=DT)
    with pytest.raises(ValueError, match="transient must be"):
        bf.sweep(hh, {"na.gbar": [1.0]}, x, dt=DT, transient=100 * DT)
    with pytest.raises(ValueError, match="transient must be"):
        bf.sweep(hh, {"na.gbar": [1.0]}, x, dt=DT, transient=0.01)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        bf.sweep(hh, {"na.gbar": [1.0]}, x, dt=DT, batch_size=0)
    with pytest.raises(ValueError, match="mode must be"):
        bf.sweep(hh, {"na.gbar": [1.0]}, x, dt=DT, mode="outer")
    with pytest.raises(ValueError, match="dt must be > 0"):
        bf.sweep(hh, {"na.gbar": [1.0]}, x, dt=0.0)
    with pytest.raises(TypeError, match="model must be a neuron"):
        bf.sweep(object(), {"na.gbar": [1.0]}, x, dt=DT)
    with pytest.raises(ValueError, match="duration"):
        bf.fi_curve(hh, [1.0], 10.01, DT)
    with pytest.raises(ValueError, match="currents must be a 1-D"):
        bf.fi_curve(hh, np.ones((2, 2)), 10.0, DT)
    with pytest.raises(ValueError, match="does not bracket the rheobase: high does not fire"):
        bf.rheobase(hh, DT, duration=100.0, window=50.0, bracket=(0.0, 3.0))
    with pytest.raises(ValueError, match="bracket must be"):
        bf.rheobase(hh, DT, bracket=(5.0, 1.0))
    with pytest.raises(ValueError, match="needs a callable stimulus"):
        bf.rate_map(hh, "na.gbar", [1.0], "stimulus.frequency", [1.0], dt=DT, duration=10.0)


def test_fi_curve_matches_neuron_reference():
    """Classic HH, I = linspace(0, 20, 1000) uA/cm2, 1 s, dt 0.025 ms: NEURON's spike counts.

    NEURON's NetCon reports a crossing during the final step only one step later (see
    docs/benchmarks.md), so a neuron whose last spike falls on step T counts one more for us:
    compared after removing those final-step crossings, every count must agree."""
    ref = np.load(ref_file("bench_counts_neuron.npz"))
    currents, n_steps = ref["I_uA_per_cm2"], int(round(float(ref["tstop_ms"]) / float(ref["dt_ms"])))
    assert n_steps == 40000 and float(ref["EL_mV"]) == pytest.approx(-54.387)
    model = bf.HH(e_l=float(ref["EL_mV"]), temperature=float(ref["celsius"]))
    rates = bf.fi_curve(model, currents, n_steps * DT, DT, progress=False)
    counts = np.rint(rates * n_steps * DT / 1000.0).astype(int)
    before_last = bf.sweep(model, {"stimulus.current": currents}, _curves._Constant(n_steps - 1), None, dt=DT,
                           progress=False)
    last = counts - before_last.astype(int)
    assert set(np.unique(last)) <= {0, 1} and last.sum() <= 5
    np.testing.assert_array_equal(counts - last, ref["spike_counts"])


def _neuron_rheobase(duration, window, min_spikes, tol):
    """Independent bisection with NEURON's own `hh` (same definition of repetitive firing)."""
    from neuron import h

    h.load_file("stdrun.hoc")
    soma = h.Section(name="rheobase_soma")
    soma.L = soma.diam = math.sqrt(100.0 / math.pi)  # 100 um2
    soma.insert("hh")
    seg = soma(0.5)
    seg.hh.el = -54.387
    seg.ena, seg.ek = 50.0, -77.0
    h.celsius, h.dt, h.steps_per_ms, h.secondorder = 6.3, DT, 1.0 / DT, 0
    h.cvode_active(0)
    stim = h.IClamp(seg)
    stim.delay, stim.dur = 0.0, 1e9
    nc = h.NetCon(seg._ref_v, None, sec=soma)
    nc.threshold = 0.0
    times = h.Vector()
    nc.record(times)

    def fires(i):
        stim.amp = i * seg.area() * 1e-5  # uA/cm2 * um2 -> nA
        h.finitialize(-65.0)
        h.continuerun(duration)
        return (np.asarray(times) >= duration - window).sum() >= min_spikes

    lo, hi = 0.0, 50.0
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if fires(mid) else (mid, hi)
    return 0.5 * (lo + hi)


def test_rheobase_hh_against_neuron_bisection():
    pytest.importorskip("neuron", reason="NEURON (pip install neuron) is the independent reference")
    ours = bf.rheobase(bf.HH(), DT, duration=1000.0, window=500.0, min_spikes=2, tol=1e-3)
    assert 6.2 <= ours <= 6.3
    theirs = _neuron_rheobase(1000.0, 500.0, 2, 1e-3)
    assert abs(ours - theirs) < 2e-3, (ours, theirs)


def test_rheobase_grid():
    kw = dict(duration=300.0, window=150.0, tol=0.01, bracket=(0.0, 40.0))
    both = bf.rheobase(bf.HH(), DT, grid={"na.gbar": [100.0, 140.0]}, **kw)
    assert both.shape == (2,)
    one = bf.rheobase(bf.HH(g_na=140.0), DT, **kw)
    assert abs(both[1] - one) <= 0.01
    assert both[0] != both[1]


def test_rate_map_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rm = bf.rate_map(bf.HH(), "na.gbar", [90.0, 120.0, 150.0], "stimulus.current", [0.0, 10.0, 20.0],
                     dt=DT, duration=200.0)
    assert rm.rates.shape == (3, 3) and (rm.rates[:, 0] == 0).all() and (rm.rates[:, 2] > 0).all()
    ax = bf.plot_rate_map(rm)
    assert ax.get_xlabel() == "na.gbar (mS/cm2)" and ax.get_ylabel() == "stimulus.current (uA/cm2)"
    assert ax.figure.axes[-1].get_ylabel() == "firing rate (Hz)"
    plt.close(ax.figure)


_SHARD_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import brainfuse_jax as bf
    from brainfuse_jax.sweep import _run

    seen = []
    run_batch = _run._run_batch
    def spy(model, values, stim, static):
        out = run_batch(model, values, stim, static)
        seen.append(len(jax.tree.leaves(out)[0].sharding.device_set))
        return out
    _run._run_batch = spy
    n = 2000
    grid = {"na.gbar": np.linspace(80.0, 160.0, 5), "stimulus.current": np.linspace(0.0, 20.0, 3)}
    out = bf.sweep(bf.HH(), grid, lambda p: jnp.full((n,), p["current"]),
                   lambda r: {"count": r.recorded, "v": r.final["v"]}, dt=0.025, batch_size=6, progress=False)
    fi = bf.fi_curve(bf.HH(), np.linspace(0.0, 20.0, 7), 50.0, 0.025, progress=False)
    print("RESULT " + json.dumps(dict(devices=jax.device_count(), seen=seen,
                                      count=out["count"].tolist(), v=out["v"].tolist(), fi=fi.tolist())))
""")


def _run_shard_script(n_devices):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", _SHARD_SCRIPT], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_sharded_over_four_devices_equals_one_device():
    """XLA_FLAGS must be set before JAX starts, hence subprocesses (4 fake CPU devices vs 1)."""
    four, one = _run_shard_script(4), _run_shard_script(1)
    assert four["devices"] == 4 and one["devices"] == 1
    # sweep: 15 points, batch_size 6 -> 2 batches of 8 (a multiple of 4 devices, 1 padded point) on
    # four devices, 3 batches of 5 on one; then fi_curve: one batch
    assert four["seen"] == [4, 4, 4] and one["seen"] == [1, 1, 1, 1]
    for key in ("count", "v", "fi"):
        np.testing.assert_array_equal(np.asarray(four[key]), np.asarray(one[key]), err_msg=key)
    assert np.asarray(four["count"]).shape == (5, 3)


def test_parameter_names_agree_with_fit():
    """sweep and fit name parameters the same way (each has its own small resolver)."""
    from brainfuse_jax.fit import parameter_names

    for model in (bf.HH(), bf.LIF(), bf.ASN()):
        assert sorted(parameter_names(model)) == sorted(_grid.parameter_paths(model))


def test_docs_sweep_examples_run():
    """The code blocks of docs/sweep.md run as written (in order, sharing one namespace)."""
    import re

    import matplotlib

    matplotlib.use("Agg")
    text = (ROOT / "docs" / "sweep.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    ns = {}
    for block in blocks:
        exec(compile(block, "docs/sweep.md", "exec"), ns)  # noqa: S102
    assert ns["rates"].shape == (60, 40) and ns["out"]["v_max"].shape == (3,)


def test_backend_reaches_simulate(monkeypatch):
    """`backend=` of sweep (and of fi_curve/rheobase/rate_map through it) is passed to `simulate`
    unchanged, and not at all when None."""
    from brainfuse_jax.sweep import _run

    seen = []
    real = _run.simulate

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend", "not passed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_run, "simulate", spy)
    x = np.full(400, 10.0)
    a = bf.sweep(bf.HH(), {"na.gbar": [100.0, 120.0]}, x, dt=DT, progress=False)
    b = bf.sweep(bf.HH(), {"na.gbar": [100.0, 120.0]}, x, dt=DT, progress=False, backend="xla")
    np.testing.assert_array_equal(a, b)
    assert "not passed" in seen and "xla" in seen and set(seen) == {"not passed", "xla"}
    seen.clear()
    bf.fi_curve(bf.HH(), [0.0, 10.0], 10.0, DT, progress=False, backend="xla")
    assert seen and set(seen) == {"xla"}
    with pytest.raises(ValueError, match="backend"):
        bf.sweep(bf.HH(), {"na.gbar": [100.0]}, x, dt=DT, backend="no-such-backend")


def test_rate_map_units_come_from_the_model():
    rm = bf.rate_map(bf.HH(), "k.e_rev", [-80.0, -70.0], "c_m", [1.0, 1.5], dt=DT, duration=5.0, current=10.0,
                     progress=False)
    assert (rm.unit_a, rm.unit_b) == ("mV", "uF/cm2")
    rm = bf.rate_map(bf.LIF(), "threshold", [0.5, 1.0], "stimulus.current", [0.1, 0.2], dt=1.0, duration=20.0,
                     progress=False)
    assert (rm.unit_a, rm.unit_b) == (None, None)  # LIF declares none; its input is in threshold units
