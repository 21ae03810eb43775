"""The fitting losses on hand-made traces with known answers, and their jit/vmap behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from brainfuse_jax.fit import MSE, SMAPE, Features, SpikeCount, Sum, VanRossum, soft_spikes, spike_features

DT = 0.025


def spiky(times_ms, n=8000, rest=-65.0, peak=40.0, dt=DT):
    """A voltage trace (mV) at rest with triangular 1 ms spikes (0.5 ms up, 0.5 ms down) starting
    at `times_ms`; each crosses 0 mV upwards once."""
    v = np.full(n, rest)
    rise = np.linspace(rest, peak, 21)
    shape = np.concatenate([rise, rise[-2::-1]])
    for t in times_ms:
        k = round(t / dt)
        v[k:k + len(shape)] = shape[: n - k]
    return v


def b(*traces):
    return jnp.asarray(np.stack(traces))


def test_soft_spikes_count_spikes(x64):
    v = b(spiky([10, 50, 120]), spiky([]), spiky([5]))
    counts = np.asarray(soft_spikes(v).sum(axis=-1))
    np.testing.assert_allclose(counts, [3, 0, 1], atol=1e-9)


def test_mse_and_smape_values(x64):
    p, t = b([1.0, 2.0, 3.0]), b([1.0, 4.0, -3.0])
    assert float(MSE()(p, t, DT)) == pytest.approx((0 + 4 + 36) / 3)
    assert float(SMAPE()(p, t, DT)) == pytest.approx((0 + 2 * 2 / 6 + 2 * 6 / 6) / 3, rel=1e-6)


def test_weighted_sums(x64):
    p, t = b(spiky([10, 50])), b(spiky([12]))
    combo = MSE() + 2.0 * VanRossum(tau=5.0) + SpikeCount() * 0.5
    assert isinstance(combo, Sum) and len(combo.terms) == 3
    expected = MSE()(p, t, DT) + 2 * VanRossum(tau=5.0)(p, t, DT) + 0.5 * SpikeCount()(p, t, DT)
    assert float(combo(p, t, DT)) == pytest.approx(float(expected), rel=1e-12)
    assert float(jax.jit(combo, static_argnums=2)(p, t, DT)) == pytest.approx(float(expected), rel=1e-12)


def test_spike_count_loss(x64):
    p, t = b(spiky([10, 50, 90]), spiky([100])), b(spiky([20]), spiky([100, 150]))
    assert float(SpikeCount()(p, t, DT)) == pytest.approx((4 + 1) / 2, rel=1e-9)


def test_van_rossum_known_values(x64):
    tau = 5.0
    vr = VanRossum(tau=tau)
    same = b(spiky([20, 60]))
    assert float(vr(same, same, DT)) == pytest.approx(0.0, abs=1e-12)
    # one unmatched spike: 1/2 (discrete sum: (dt/tau) / (1 - exp(-2 dt/tau)) -> 1/2 + dt/(2 tau))
    one = float(vr(b(spiky([20])), b(spiky([])), DT))
    assert one == pytest.approx(0.5, rel=0.01)
    # two spikes delta apart: 1 - exp(-delta / tau)
    for delta in (0.5, 2.0, 10.0):
        d = float(vr(b(spiky([20])), b(spiky([20 + delta])), DT))
        assert d == pytest.approx(1 - np.exp(-delta / tau), rel=0.01, abs=2e-3)
    # symmetric and averaged over sweeps
    p, t = b(spiky([20]), spiky([30])), b(spiky([25]), spiky([30]))
    assert float(vr(p, t, DT)) == pytest.approx(float(vr(t, p, DT)), rel=1e-12)
    assert float(vr(p, t, DT)) == pytest.approx(0.5 * (1 - np.exp(-5 / tau)), rel=0.02)


def test_spike_features_known_values(x64):
    regular = spiky([10, 30, 50, 70, 90], n=8000)  # 200 ms, 5 spikes, all ISIs 20 ms
    irregular = spiky([10, 20, 50, 60, 90], n=8000)  # ISIs 10, 30, 10, 30: CV = 10/20 = 0.5
    silent = spiky([], n=8000)
    silent[4000] = -30.0  # a subthreshold bump
    f = spike_features(b(regular, irregular, silent), DT)
    np.testing.assert_allclose(f["count"], [5, 5, 0], atol=1e-9)
    np.testing.assert_allclose(f["rate"], [25.0, 25.0, 0.0], atol=1e-7)  # Hz over 200 ms
    np.testing.assert_allclose(f["isi_cv"], [0.0, 0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(f["spike_height"], [40.0, 40.0, -30.0])


def test_features_loss(x64):
    p, t = b(spiky([10, 30, 50, 70, 90])), b(spiky([10, 20, 50, 60, 90]))
    assert float(Features(rate=1.0, isi_cv=0.1, spike_height=1.0)(p, t, DT)) == pytest.approx(25.0, rel=1e-6)
    assert float(Features(rate=1.0, isi_cv=None, spike_height=None)(p, t, DT)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least one"):
        Features(rate=None, isi_cv=None, spike_height=None)
    with pytest.raises(ValueError, match="rate must be a positive scale"):
        Features(rate=-1.0)


def test_spike_time_gradients_point_the_right_way(x64):
    """Shifting a predicted spike towards the target spike lowers the van Rossum distance: the
    gradient with respect to a time shift (through soft spikes) has the right sign."""
    target = b(spiky([30]))
    t = np.arange(8000) * DT

    def shifted(shift):  # a smooth spike (Gaussian bump) at 25 + shift ms
        return (-65.0 + 105.0 * jnp.exp(-((t - 25.0 - shift) / 0.4) ** 2))[None]

    g = jax.grad(lambda s: VanRossum(tau=5.0)(shifted(s), target, DT))(0.0)
    assert float(g) < 0  # moving later (towards 30 ms) reduces the loss
    g_count = jax.grad(lambda a: SpikeCount()(b(spiky([])) + a, target, DT))(30.0)
    assert np.isfinite(float(g_count))


def test_losses_vmap_and_shape_errors(x64):
    p = jnp.asarray(np.stack([spiky([10]), spiky([20])]))
    per_sweep = jax.vmap(lambda a, c: VanRossum()(a[None], c[None], DT))(p, p[::-1])
    assert per_sweep.shape == (2,)
    with pytest.raises(ValueError, match="MSE: pred and target must have the same shape"):
        MSE()(p, p[:1], DT)
    with pytest.raises(ValueError, match=r"VanRossum: traces must have shape \(B, T\)"):
        VanRossum()(p[0], p[1], DT)
    with pytest.raises(ValueError, match="tau must be > 0"):
        VanRossum(tau=0.0)
