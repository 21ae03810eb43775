"""Spike-train analysis and plots of network recordings (brainfuse_jax.network._analysis, _plot).

Independent reference: NEST 3.10.0's own numbers in ../shared/reference/data/brunel_nest*.npz (the
spike times of neurons 0..49, their CV(ISI) and spike counts, computed by ref_brunel_nest.py), and
hand computations on small synthetic recordings.
"""

import math

import matplotlib
import numpy as np
import pytest

from brainfuse_jax.network._analysis import (cv_isi, fano_factor, firing_rates, population_rate,
                                             population_summary, spike_counts, spike_times)
from brainfuse_jax.network._plot import plot_activity, plot_population_rates, plot_raster, plot_rate_cv_histograms

from .conftest import ref_file

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DT = 0.1  # ms, the reference's step
BRUNEL = ["brunel_nest.npz", "brunel_nest_J0.25.npz", "brunel_nest_g6_eta4.npz"]


def nest_first50(name):
    """(steps, ids, data) of NEST's neurons 0..49: a spike at t ms was emitted in step t / dt - 1."""
    d = np.load(ref_file(name))
    t = d["first50_times_ms"]
    steps = np.rint(t / DT).astype(np.int64) - 1
    assert np.allclose((steps + 1) * DT, t, rtol=0, atol=1e-9)  # on the grid
    return steps, d["first50_senders"].astype(np.int64), d


# -- against NEST ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BRUNEL)
def test_cv_and_counts_match_nest(name):
    steps, ids, d = nest_first50(name)
    ref_cv = d["cv_isi_per_neuron"][:50]
    cv = cv_isi(steps, ids, 50, DT, t_start=200.0)
    np.testing.assert_array_equal(np.isnan(cv), np.isnan(ref_cv))
    np.testing.assert_allclose(cv, ref_cv, rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(spike_counts(steps, ids, 50), d["spike_counts_all"][:50])
    np.testing.assert_allclose(firing_rates(steps, ids, 50, 0.0, 1000.0, DT), d["spike_counts_all"][:50] / 1.0)
    times = spike_times(steps, ids, DT, 50)
    for j in (0, 17, 49):
        np.testing.assert_allclose(times[j], np.sort(d["first50_times_ms"][ids == j]), rtol=0, atol=1e-9)


def test_cv_excludes_a_spike_at_exactly_t_start():
    """The J = 0.25 file holds a spike at exactly 200.0 ms: NEST's script (times > 200) leaves it
    out, so must the step-grid window (its neuron's CV above already matches to 1e-12)."""
    steps, ids, d = nest_first50("brunel_nest_J0.25.npz")
    at = np.flatnonzero(steps + 1 == 2000)
    assert at.size >= 1
    j = ids[at[0]]
    t = np.sort(d["first50_times_ms"][ids == j])
    isi = np.diff(t[t > 200.0])
    assert cv_isi(steps, ids, 50, DT, t_start=200.0)[j] == pytest.approx(isi.std() / isi.mean(), abs=1e-12)
    with_it = np.diff(t[t >= 200.0])
    assert with_it.std() / with_it.mean() != pytest.approx(isi.std() / isi.mean(), abs=1e-6)


def test_device_arrays_are_accepted():
    """Records straight from a JAX device buffer (int32) give the numpy (int64) results."""
    import jax.numpy as jnp

    steps, ids, _ = nest_first50("brunel_nest.npz")
    cv = cv_isi(jnp.asarray(steps, jnp.int32), jnp.asarray(ids, jnp.int32), 50, DT, t_start=200.0)
    np.testing.assert_array_equal(cv, cv_isi(steps, ids, 50, DT, t_start=200.0))


@pytest.mark.parametrize("name", BRUNEL[:2])
def test_summary_of_the_first_50_follows_the_reference_script(name):
    """population_summary over neurons 0..49 equals the reference script's formulas applied to
    NEST's own spike times of those neurons (np.histogram on the float times, nanmean of NEST's CVs)."""
    steps, ids, d = nest_first50(name)
    t = d["first50_times_ms"]
    out = population_summary(steps, ids, {"E50": (0, 50)}, DT, 1000.0)["E50"]
    hist = np.histogram(t, bins=np.arange(0.0, 1001.0, 1.0))[0]
    st = hist[200:]
    ref_cv = d["cv_isi_per_neuron"][:50]
    assert out["n_neurons"] == 50
    assert out["rate_Hz"] == pytest.approx(np.sum(t > 200.0) / 50 / 0.8, rel=1e-12)
    assert out["rate_all_Hz"] == pytest.approx(d["spike_counts_all"][:50].sum() / 50 / 1.0, rel=1e-12)
    assert out["cv_mean"] == pytest.approx(np.nanmean(ref_cv), abs=1e-12)
    assert out["cv_median"] == pytest.approx(np.nanmedian(ref_cv), abs=1e-12)
    assert out["cv_n_neurons"] == int(np.sum(~np.isnan(ref_cv)))
    assert out["frac_silent"] == np.mean(d["spike_counts_all"][:50] == 0)
    assert out["pop_rate_mean_Hz"] == pytest.approx((st / 50 / 1e-3).mean(), rel=1e-12)
    assert out["pop_rate_std_Hz"] == pytest.approx((st / 50 / 1e-3).std(), rel=1e-12)
    assert out["pop_rate_fano"] == pytest.approx(st.var() / st.mean(), rel=1e-12)
    np.testing.assert_allclose(population_rate(steps, ids, 50, DT, 1.0, 1000.0), hist / 50 / 1e-3, rtol=1e-12)


# -- synthetic, by hand ----------------------------------------------------------------------------

def test_population_rate_and_fano_by_hand():
    # 4 neurons, dt 0.5 ms, 2-ms bins over 6 ms. Spike times (step + 1) * dt:
    steps = np.array([0, 2, 3, 3, 7, 9, 11, 12])  # 0.5, 1.5, 2.0, 2.0, 4.0, 5.0, 6.0, 6.5 ms
    ids = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    # bins [0,2) [2,4) [4,6]: 0.5, 1.5 | 2.0, 2.0 | 4.0, 5.0, 6.0 (t_stop is closed); 6.5 dropped
    counts = np.array([2, 2, 3])
    rate = population_rate(steps, ids, 4, 0.5, 2.0, 6.0)
    np.testing.assert_allclose(rate, counts / 4 / 2e-3)
    assert fano_factor(counts) == pytest.approx(np.var([2, 2, 3]) / (7 / 3))
    assert fano_factor(np.zeros(5, int)) == 0.0  # mean floored at 1e-12, as the reference
    # window (t_start, t_stop] = (2, 6]: 4.0, 5.0, 6.0 ms -> neurons 0, 1, 2
    np.testing.assert_allclose(firing_rates(steps, ids, 4, 2.0, 6.0, 0.5), np.array([1, 1, 1, 0]) / 4e-3)
    np.testing.assert_array_equal(spike_counts(steps, ids, 4, 0.5, t_start=2.0), [1, 1, 1, 1])


def test_cv_by_hand_and_summary_of_two_populations():
    dt = 1.0
    # neuron 0: times 1, 3, 7, 8 -> ISIs 2, 4, 1; neuron 1: times 2, 4 (2 spikes, NaN); neuron 2 silent
    steps = np.array([0, 2, 6, 7, 1, 3])
    ids = np.array([0, 0, 0, 0, 1, 1])
    isi = np.array([2.0, 4.0, 1.0])
    cv = cv_isi(steps, ids, 3, dt)
    assert cv[0] == pytest.approx(isi.std() / isi.mean(), abs=1e-15)
    assert np.isnan(cv[1]) and np.isnan(cv[2])
    assert cv_isi(steps, ids, 3, dt, min_spikes=2)[1] == 0.0
    late = np.array([4.0, 1.0])  # spikes after 1 ms: 3, 7, 8 (the one at exactly 1 ms is out)
    assert cv_isi(steps, ids, 3, dt, t_start=1.0)[0] == pytest.approx(late.std() / late.mean(), abs=1e-15)
    assert np.isnan(cv_isi(steps, ids, 3, dt, t_start=3.0)[0])  # 7, 8: two spikes < min_spikes
    summ = population_summary(steps, ids, {"A": (0, 1), "B": (1, 3)}, dt, 10.0, t_start=0.0, bin_ms=5.0)
    assert summ["A"]["rate_Hz"] == pytest.approx(4 / 1 / 0.01)
    assert summ["B"]["rate_Hz"] == pytest.approx(2 / 2 / 0.01)
    assert summ["B"]["frac_silent"] == 0.5 and summ["A"]["frac_silent"] == 0.0
    assert summ["A"]["cv_mean"] == pytest.approx(cv[0]) and summ["A"]["cv_n_neurons"] == 1
    assert math.isnan(summ["B"]["cv_mean"]) and summ["B"]["cv_n_neurons"] == 0
    # A's 5-ms counts: [1,3,5) -> times 1, 3 | 7, 8 -> [2, 2]; B: [2, 0]
    assert summ["A"]["pop_rate_fano"] == 0.0
    assert summ["B"]["pop_rate_fano"] == pytest.approx(1.0 / 1.0)
    assert summ["B"]["pop_rate_mean_Hz"] == pytest.approx(np.mean([2, 0]) / 2 / 5e-3)


def test_edge_cases():
    empty = np.array([], dtype=np.int64)
    assert np.all(np.isnan(cv_isi(empty, empty, 3, DT)))
    np.testing.assert_array_equal(spike_counts([], [], 3), [0, 0, 0])
    np.testing.assert_array_equal(population_rate(empty, empty, 3, DT, 1.0, 5.0), np.zeros(5))
    assert [len(t) for t in spike_times(empty, empty, DT, 2)] == [0, 0]
    summ = population_summary(empty, empty, {"P": (0, 4)}, DT, 300.0)["P"]
    assert summ["frac_silent"] == 1.0 and summ["rate_Hz"] == 0.0 and math.isnan(summ["cv_mean"])
    assert summ["pop_rate_fano"] == 0.0
    one = population_summary([9, 19, 39], [0, 0, 0], {"only": (0, 1)}, 0.1, 5.0, t_start=0.0)["only"]
    assert one["cv_mean"] == pytest.approx(np.std([1.0, 2.0]) / 1.5) and one["rate_Hz"] == pytest.approx(600.0)


@pytest.mark.parametrize("call", [
    lambda: cv_isi([0, 1], [0, 3], 3, DT),
    lambda: spike_counts([0, 1], [0, -1], 3),
    lambda: firing_rates([0], [5], 5, 0.0, 1.0, DT),
    lambda: population_rate([0, 1], [0, 7], 2, DT, 1.0, 5.0),
    lambda: population_summary([0], [4], {"A": (0, 2), "B": (2, 4)}, DT, 10.0, t_start=0.0),
    lambda: spike_times([0, 1], [0, 2], DT, 2),
    lambda: plot_raster([0, 1], [0, 9], DT, n_neurons=5),
], ids=["cv_isi", "spike_counts", "firing_rates", "population_rate", "summary", "spike_times", "raster"])
def test_ids_out_of_range(call):
    with pytest.raises(ValueError, match="ids"):
        call()


def test_bad_arguments():
    with pytest.raises(TypeError, match="steps"):
        cv_isi([0.5], [0], 1, DT)
    with pytest.raises(ValueError, match="same length"):
        cv_isi([0, 1], [0], 1, DT)
    with pytest.raises(ValueError, match="steps"):
        spike_counts([-1], [0], 1)
    with pytest.raises(ValueError, match="dt"):
        cv_isi([0], [0], 1, 0.0)
    with pytest.raises(ValueError, match="bin_ms"):
        population_rate([0], [0], 1, DT, 0.25, 5.0)  # not a multiple of dt
    with pytest.raises(ValueError, match="t_stop"):
        population_rate([0], [0], 1, DT, 2.0, 5.0)  # not a multiple of bin_ms
    with pytest.raises(ValueError, match="t_stop"):
        firing_rates([0], [0], 1, 5.0, 5.0, DT)
    with pytest.raises(ValueError, match="min_spikes"):
        cv_isi([0], [0], 1, DT, min_spikes=1)
    with pytest.raises(ValueError, match="counts"):
        fano_factor([])
    with pytest.raises(ValueError, match="populations"):
        population_summary([0], [0], {"A": (3, 3)}, DT, 10.0)
    with pytest.raises(TypeError, match="populations"):
        population_summary([0], [0], {"A": 3}, DT, 10.0)
    with pytest.raises(ValueError, match="n_neurons"):
        plot_population_rates([0], [0], DT, 5.0)  # no populations, no n_neurons


# -- plots -----------------------------------------------------------------------------------------

POPS = {"E": (0, 40), "I": (40, 50)}


@pytest.fixture(scope="module")
def record():
    """50 neurons firing 40 spikes each at random steps of a 1000-ms run (dt 0.1 ms); synthetic, so
    the plot tests run without the reference folder."""
    rng = np.random.default_rng(7)
    steps = np.concatenate([rng.choice(10_000, 40, replace=False) for _ in range(50)])
    ids = np.repeat(np.arange(50), 40)
    order = np.argsort(steps, kind="stable")
    return steps[order], ids[order]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_plot_raster(record):
    steps, ids = record
    fig = plot_raster(steps, ids, DT, POPS, max_neurons=5, t_stop=1000.0)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["E", "I"]
    y_e, y_i = (np.asarray(line.get_ydata()) for line in ax.lines)
    assert set(y_e) <= set(range(5)) and set(y_i) <= set(range(5, 10))
    assert len(ax.lines[0].get_xdata()) == np.sum(ids < 5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["E", "I"]
    fig2 = plot_raster(steps, ids, DT)  # no populations: rows are the ids
    assert len(fig2.axes) == 1 and len(fig2.axes[0].lines) == 1
    assert len(fig2.axes[0].lines[0].get_xdata()) == len(steps)


def test_plot_population_rates(record):
    steps, ids = record
    fig = plot_population_rates(steps, ids, DT, 1000.0, POPS, bin_ms=5.0)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 and len(ax.lines[0].get_ydata()) == 200
    sel = ids >= 40
    np.testing.assert_allclose(ax.lines[1].get_ydata(), population_rate(steps[sel], ids[sel] - 40, 10, DT, 5.0, 1000.0))
    fig2 = plot_population_rates([], [], DT, 10.0, n_neurons=3)  # no spikes
    assert np.all(fig2.axes[0].lines[0].get_ydata() == 0)


def test_plot_rate_cv_histograms(record):
    steps, ids = record
    fig = plot_rate_cv_histograms(steps, ids, DT, 1000.0, POPS, bins=12)
    assert len(fig.axes) == 4
    assert all(len(ax.patches) == 12 for ax in fig.axes)
    heights = [sum(p.get_height() for p in ax.patches) for ax in fig.axes]
    assert heights == [40, 40, 10, 10]  # every neuron fires and has a CV
    fig2 = plot_rate_cv_histograms([], [], DT, 10.0, n_neurons=1, t_start=0.0)  # one silent neuron
    assert len(fig2.axes) == 2


def test_plot_activity(record):
    steps, ids = record
    fig = plot_activity(steps, ids, DT, 1000.0, POPS, max_neurons=20)
    raster, rates = fig.axes
    assert len(raster.lines) == 2 and len(rates.lines) == 2
    assert raster.get_shared_x_axes().joined(raster, rates)
    assert len(rates.lines[0].get_ydata()) == 1000
    assert rates.get_legend() is not None
