"""Trace import: numpy, NEURON h.Vector (and duck-typed look-alikes), NWB files; unit helpers."""

import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.fit import Trace, as_trace, current_density, read_nwb

from .conftest import ref_file


class VectorLike:
    """Anything with `.to_python()` (and no array protocol) is read like a NEURON Vector."""

    def __init__(self, values):
        self._values = list(values)

    def to_python(self):
        return list(self._values)


def test_from_numpy_list_and_duck_typed_vector():
    a = as_trace(np.arange(5.0), dt=0.025, unit="mV")
    assert a.data.dtype == np.float64 and a.shape == (5,) and len(a) == 5
    np.testing.assert_allclose(a.t, np.arange(5) * 0.025)
    np.testing.assert_array_equal(np.asarray(a), np.arange(5.0))
    np.testing.assert_array_equal(as_trace([1, 2, 3]).data, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(as_trace(VectorLike([1.0, 2.0])).data, [1.0, 2.0])
    sweeps = as_trace([VectorLike([1.0, 2.0]), np.array([3.0, 4.0])])
    assert sweeps.shape == (2, 2)


def test_bad_traces():
    with pytest.raises(ValueError, match=r"trace must be finite \(no NaN or inf\); got nan at index 1"):
        as_trace([0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match=r"must have shape \(T,\) or \(B, T\)"):
        as_trace(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="must be an array"):
        as_trace("v.dat")
    with pytest.raises(ValueError, match="dt must be a positive time step"):
        as_trace([1.0, 2.0], dt=0.0)


def test_current_density_matches_the_reference_file():
    d = np.load(ref_file("hh_noisy_fit_target.npz"))
    np.testing.assert_allclose(current_density(d["I_stim_played_nA"], 100.0), d["I_stim_uA_per_cm2"], rtol=1e-12)
    t = current_density(as_trace(d["I_stim_played_nA"][:10], dt=0.025, unit="nA"), 100.0)
    assert isinstance(t, Trace) and t.unit == "uA/cm2" and t.dt == 0.025
    with pytest.raises(ValueError, match="area_um2"):
        current_density([1.0], 0.0)


def test_neuron_vectors_feed_fit_directly(x64):
    """Record with h.Vector in a live NEURON run (hh soma, non-default gK, a played current) and
    pass the Vectors themselves to fit: gK comes back."""
    pytest.importorskip("neuron", reason="NEURON is part of the test extra: pip install -e '.[test]'")
    import math

    from neuron import h

    h.load_file("stdrun.hoc")
    soma = h.Section(name="fit_soma")
    soma.L = soma.diam = math.sqrt(100.0 / math.pi)  # 100 um2
    soma.insert("hh")
    seg = soma(0.5)
    seg.hh.gkbar, seg.hh.el = 0.030, -54.387
    h.celsius, h.dt = 6.3, 0.025
    h.cvode_active(0)
    h.secondorder = 0
    n = 1201  # 30 ms
    k = np.arange(n)
    i_density = np.where(k >= 80, 10.0, 0.0) + 3.0 * np.sin(k * 0.01)  # uA/cm2
    stim = h.IClamp(seg)
    stim.delay, stim.dur = 0.0, 1e9
    played = h.Vector(i_density * 1e-3)  # nA for 100 um2
    played.play(stim._ref_amp, h.dt)
    v = h.Vector().record(seg._ref_v)
    h.finitialize(-65.0)
    h.continuerun((n - 1) * h.dt)
    assert len(v) == n and len(played) == n

    stimulus = bf.fit.current_density(as_trace(played, dt=h.dt, unit="nA"), 100.0)
    r = bf.fit.fit(bf.HH(), {"k.gbar": bf.fit.Bounded(10.0, 80.0, "log")}, stimulus, v, n_steps=60,
                   progress=False)
    assert abs(r.params["k.gbar"] / 30.0 - 1) < 1e-3
    np.testing.assert_allclose(bf.fit.predict(r.model, stimulus), np.asarray(v), atol=0.2)  # mV


def _write_nwb(path, v_mV, i_nA, dt_ms, *, timestamps=False):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    nwb = NWBFile(session_description="brainfuse test", identifier="bf-test",
                  session_start_time=datetime(2024, 6, 7, tzinfo=timezone.utc))
    device = nwb.create_device(name="amp")
    electrode = nwb.create_icephys_electrode(name="elec0", description="soma", device=device)
    timing = ({"timestamps": np.arange(len(v_mV)) * dt_ms * 1e-3} if timestamps
              else {"rate": 1e3 / dt_ms, "starting_time": 0.5})
    nwb.add_acquisition(CurrentClampSeries(
        name="Vm", data=np.asarray(v_mV) * 1e-3, unit="volts", electrode=electrode, gain=1.0, **timing))
    # stored in pA with conversion 1e-12 -> amperes, to exercise `conversion`
    nwb.add_stimulus(CurrentClampStimulusSeries(
        name="I", data=np.asarray(i_nA) * 1e3, conversion=1e-12, unit="amperes", electrode=electrode,
        gain=1.0, **timing))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_read_nwb_round_trip(tmp_path):
    pytest.importorskip("pynwb", reason="NWB import needs the nwb extra: pip install -e '.[nwb]'")
    v = -65.0 + np.sin(np.arange(400) * 0.1)
    i = 0.005 * np.cos(np.arange(400) * 0.1)
    _write_nwb(tmp_path / "cell.nwb", v, i, 0.025)
    tv = read_nwb(tmp_path / "cell.nwb", "Vm")
    assert tv.unit == "mV" and tv.dt == pytest.approx(0.025) and tv.t0 == pytest.approx(500.0)
    np.testing.assert_allclose(tv.data, v, rtol=1e-12)
    ti = read_nwb(tmp_path / "cell.nwb", "I")
    assert ti.unit == "nA"
    np.testing.assert_allclose(ti.data, i, rtol=1e-12)
    np.testing.assert_allclose(read_nwb(tmp_path / "cell.nwb").data, v)  # the only CurrentClampSeries
    with pytest.raises(ValueError, match=r"name: no time series 'Vmem' .* available: \['I', 'Vm'\]"):
        read_nwb(tmp_path / "cell.nwb", "Vmem")
    with pytest.raises(FileNotFoundError, match="no such NWB file"):
        read_nwb(tmp_path / "missing.nwb")
    _write_nwb(tmp_path / "ts.nwb", v, i, 0.025, timestamps=True)
    ts = read_nwb(tmp_path / "ts.nwb", "Vm")
    assert ts.dt == pytest.approx(0.025) and ts.t0 == 0.0


def test_nwb_of_the_neuron_target_fits(tmp_path, x64):
    """The NEURON reference target written to NWB (SI units) and read back is the same target:
    fit gets the same first loss from the Traces (dt from the file) as from the arrays (20 ms)."""
    pytest.importorskip("pynwb", reason="NWB import needs the nwb extra: pip install -e '.[nwb]'")
    d = np.load(ref_file("hh_noisy_fit_target.npz"))
    n = 801
    _write_nwb(tmp_path / "target.nwb", d["V_mV"][:n], d["I_stim_played_nA"][:n], 0.025)
    v = read_nwb(tmp_path / "target.nwb", "Vm")
    i = current_density(read_nwb(tmp_path / "target.nwb", "I"), 100.0)
    np.testing.assert_allclose(v.data, d["V_mV"][:n], rtol=1e-12)
    np.testing.assert_allclose(i.data, d["I_stim_uA_per_cm2"][:n], rtol=1e-12)
    params = {"na.gbar": bf.fit.Bounded(50.0, 200.0)}
    a = bf.fit.fit(bf.HH(), params, i, v, n_steps=1, progress=False)
    b = bf.fit.fit(bf.HH(), params, d["I_stim_uA_per_cm2"][:n], d["V_mV"][:n], dt=0.025, n_steps=1,
                   progress=False)  # same configuration: reuses the compilation
    assert a.history[0, 0] == pytest.approx(b.history[0, 0], rel=1e-9)
    assert b.compile_time < a.compile_time
