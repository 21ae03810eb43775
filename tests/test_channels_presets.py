"""The Pospischil et al. (2008) presets show their class's firing pattern, measured.

Each cell starts at its resting potential, a current step (uA/cm2) starts at 100 ms; dt =
0.025 ms, "neuron" scheme, float64. The measured values are printed (-s) and recorded in
docs/channels.md.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import brainfuse_jax as bf

from ._nmodl import crossings, pulse_inputs

DT = 0.025
REST = {"RS": -71.9, "FS": -71.4, "IB": -85.3, "LTS": -54.0}


def spike_times(model, pulses, rest, tstop=1100.0):
    n = int(round(tstop / DT))
    x = jnp.asarray(pulse_inputs(pulses, n, DT))[None]
    state0 = model.init_state(1, dtype=jnp.float64, v0=rest)
    _, v = bf.simulate(model, state0, x, DT, record="v")
    v = np.concatenate([[rest], np.asarray(v[0])])
    return crossings(v, DT), v


@pytest.mark.parametrize("cls", ["RS", "FS", "IB", "LTS"])
def test_resting_potential(x64, cls):
    """Documented resting potentials (the presets' init point): 2 s without input moves < 0.1 mV."""
    _, v = spike_times(bf.Pospischil(cls), [], REST[cls], tstop=2000.0)
    assert np.abs(v - REST[cls]).max() < 0.1


def test_rs_adapts(x64):
    """RS: spike-frequency adaptation. 1.2 uA/cm2 for 1 s: the ISI lengthens > 1.5x."""
    t, _ = spike_times(bf.PospischilRS(), [(100.0, 1000.0, 1.2)], REST["RS"])
    isi = np.diff(t)
    ratio = isi[-1] / isi[0]
    print(f"\nRS 1.2 uA/cm2: {len(t)} spikes, first ISI {isi[0]:.1f} ms, last {isi[-1]:.1f} ms, ratio {ratio:.2f}")
    assert len(t) >= 8 and ratio > 1.5
    assert np.all(np.diff(isi) > -0.5)  # monotone lengthening


def test_fs_fast_spiking_little_adaptation(x64):
    """FS: sustained fast spiking (> 150 Hz at 10 uA/cm2) with ISIs within 20% of the first."""
    t, _ = spike_times(bf.PospischilFS(), [(100.0, 1000.0, 10.0)], REST["FS"])
    isi = np.diff(t)
    rate = 1000.0 / isi[-10:].mean()
    ratio = isi[-1] / isi[0]
    print(f"\nFS 10 uA/cm2: {len(t)} spikes, steady rate {rate:.0f} Hz, ISI ratio last/first {ratio:.2f}")
    assert rate > 150.0 and ratio < 1.2


def test_ib_initial_burst_then_regular(x64):
    """IB: at 0.6 uA/cm2 an initial burst (>= 3 spikes, ISIs < 20 ms), then regular spiking at
    ISIs > 5x the burst's (CV < 0.3)."""
    t, _ = spike_times(bf.PospischilIB(), [(100.0, 1000.0, 0.6)], REST["IB"])
    isi = np.diff(t)
    burst = np.argmax(isi > 20.0)  # ISIs inside the initial burst
    late = isi[burst:]
    print(f"\nIB 0.6 uA/cm2: burst of {burst + 1} spikes (ISIs {np.round(isi[:burst], 1)} ms), "
          f"then {len(late)} ISIs of {late.mean():.0f} ms (CV {late.std() / late.mean():.2f})")
    assert burst + 1 >= 3
    assert len(late) >= 3 and late.min() > 5 * isi[:burst].max()
    assert late[1:].std() / late[1:].mean() < 0.3
    # The burst needs ICaL: without it the same step gives no burst.
    t0, _ = spike_times(bf.PospischilIB(g_cal=0.0), [(100.0, 1000.0, 0.6)], REST["IB"])
    assert len(t0) < 2 or np.diff(t0)[0] > 20.0


def test_lts_rebound_burst(x64):
    """LTS: after a 500 ms hyperpolarising step (-1 uA/cm2) a rebound burst of >= 3 spikes
    (ISIs < 25 ms); none during the step, none without ICaT."""
    pulses = [(100.0, 500.0, -1.0)]
    t, _ = spike_times(bf.PospischilLTS(), pulses, REST["LTS"], tstop=900.0)
    isi = np.diff(t)
    print(f"\nLTS -1 uA/cm2 for 500 ms: {len(t)} rebound spikes at {np.round(t, 1)} ms, ISIs {np.round(isi, 1)} ms")
    assert len(t) >= 3 and np.all(t > 600.0) and t[0] < 700.0
    assert np.all(isi[:2] < 25.0)
    t0, _ = spike_times(bf.PospischilLTS(g_cat=0.0), pulses, REST["LTS"], tstop=900.0)
    assert len(t0) == 0
