"""`bf.fit.fit`: parameter paths, bounded transforms, bad input, gradients, jit, early stopping,
starts, and recovery of HH conductances from our own synthetic traces (fast; the NEURON-target
acceptance tests are in test_fit_neuron.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import brainfuse_jax as bf
from brainfuse_jax.fit import MSE, Bounded, VanRossum

DT = 0.025


def ou_current(n, seed=0, mu=5.0, sigma=5.0, tau=5.0, dt=DT):
    """Ornstein-Uhlenbeck current density (uA/cm2), the recipe of hh_noisy_fit_target.npz."""
    xi = np.random.default_rng(seed).standard_normal(n)
    a = np.exp(-dt / tau)
    x = np.empty(n)
    x[0] = mu
    for k in range(n - 1):
        x[k + 1] = mu + (x[k] - mu) * a + sigma * np.sqrt(1 - a * a) * xi[k]
    return x


@pytest.fixture(scope="module")
def synthetic():
    """100 ms of HH (gNa 100, gK 40, gL 0.35 mS/cm2) under OU current, float64, on fit's grid."""
    with jax.enable_x64(True):
        stim = ou_current(4001, seed=0)
        target = bf.fit.predict(bf.HH(g_na=100.0, g_k=40.0, g_l=0.35), stim, DT)
    assert ((target[:-1] < 0) & (target[1:] >= 0)).sum() >= 2  # spikes in the window
    return stim, target


HH_PARAMS = {"na.gbar": Bounded(20.0, 400.0, "log"), "k.gbar": Bounded(5.0, 150.0, "log"),
             "leak.gbar": Bounded(0.03, 3.0, "log")}
TRUTH = np.array([100.0, 40.0, 0.35])


# ---- parameter paths -------------------------------------------------------------------------
def test_parameter_names_of_hh():
    assert bf.fit.parameter_names(bf.HH()) == [
        "na.gbar", "na.e_rev", "k.gbar", "k.e_rev", "leak.gbar", "leak.e_rev", "c_m", "temperature",
        "spike_threshold"]


def test_parameter_names_of_lif():
    names = bf.fit.parameter_names(bf.LIF())
    assert "threshold" in names and all("." not in n for n in names)


def test_long_and_short_paths_name_the_same_leaf(synthetic):
    from brainfuse_jax.params import resolve

    model = bf.HH()
    assert resolve(model, "channels.na.gbar") == resolve(model, "na.gbar")
    stim, target = synthetic
    with pytest.raises(ValueError, match="names the same parameter"):
        bf.fit.fit(model, {"na.gbar": Bounded(50, 200), "channels.na.gbar": Bounded(50, 200)},
                   stim, target, dt=DT)


# ---- transforms ------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["linear", "log"])
def test_transforms_keep_parameters_inside_bounds(x64, scale):
    b = Bounded(0.03, 3.0, scale)
    u = jnp.concatenate([jnp.linspace(-60.0, 60.0, 2001), jnp.array([-1e4, 1e4, -jnp.inf, jnp.inf])])
    x = np.asarray(b.constrain(u))
    assert np.all((x >= 0.03) & (x <= 3.0))
    assert np.all(np.diff(x[:2001]) >= 0)  # monotone
    mid = jnp.linspace(-10.0, 10.0, 101)  # (beyond, sigmoid's round-off near 1 dominates)
    np.testing.assert_allclose(b.unconstrain(b.constrain(mid)), mid, rtol=1e-7, atol=1e-9)
    g = jax.vmap(jax.grad(b.constrain))(mid)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g) > 0)


def test_transforms_inside_bounds_float32():
    b = Bounded(20.0, 400.0, "log")
    x = np.asarray(b.constrain(jnp.linspace(-200.0, 200.0, 4001, dtype=jnp.float32)))
    assert x.dtype == np.float32
    assert np.all((x >= 20.0) & (x <= 400.0))


def test_fit_never_leaves_the_bounds(x64, synthetic):
    """A huge learning rate slams the parameters against the bounds; they stay inside."""
    stim, target = (a[:801] for a in synthetic)  # 20 ms
    params = {"na.gbar": Bounded(90.0, 110.0), "k.gbar": Bounded(35.0, 45.0, "log")}
    r = bf.fit.fit(bf.HH(), params, stim, target, dt=DT, n_steps=15, optimizer=optax.sgd(1e4),
                   starts={"na.gbar": [95.0, 105.0], "k.gbar": [36.0, 44.0]}, progress=False)
    assert np.all((r.start_params["na.gbar"] >= 90) & (r.start_params["na.gbar"] <= 110))
    assert np.all((r.start_params["k.gbar"] >= 35) & (r.start_params["k.gbar"] <= 45))


def test_sample_starts_uniform_and_around(x64):
    params = {"na.gbar": Bounded(20.0, 400.0, "log"), "c_m": (0.5, 2.0)}
    s = bf.fit.sample_starts(params, 500, jax.random.key(1))
    assert s["na.gbar"].shape == (500,) and s["c_m"].shape == (500,)
    assert np.all((s["na.gbar"] > 20) & (s["na.gbar"] < 400)) and np.all((s["c_m"] > 0.5) & (s["c_m"] < 2))
    # log-uniform: median near the geometric mean of the bounds
    assert abs(np.log(np.median(s["na.gbar"])) - np.log(np.sqrt(20 * 400))) < 0.3
    p = bf.fit.sample_starts(params, 500, jax.random.key(2), around=bf.HH(g_na=100.0), spread=0.5)
    assert np.all((p["na.gbar"] >= 50) & (p["na.gbar"] <= 150))
    assert p["na.gbar"].min() < 60 and p["na.gbar"].max() > 140
    np.testing.assert_array_equal(p["c_m"] >= 0.5, True)


# ---- bad input (acceptance 3): ValueError naming the argument ---------------------------------
def _fit(stim, target, params=None, **kw):
    kw = {"dt": DT, "n_steps": 1, "progress": False, **kw}
    return bf.fit.fit(bf.HH(), params or {"na.gbar": Bounded(50, 200)}, stim, target, **kw)


def test_target_and_stimulus_of_different_lengths(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match=r"target has 4000 samples but stimulus has 4001"):
        _fit(stim, target[:-1])


@pytest.mark.parametrize("bounds", [Bounded.__new__, (200.0, 100.0), (100.0, 100.0)])
def test_bounds_low_not_below_high(synthetic, bounds):
    stim, target = synthetic
    if bounds is Bounded.__new__:
        with pytest.raises(ValueError, match="Bounded: low must be < high"):
            Bounded(3.0, 1.0)
        return
    with pytest.raises(ValueError, match=r"params\['na.gbar'\]: Bounded: low must be < high"):
        _fit(stim, target, {"na.gbar": bounds})


def test_log_bounds_need_positive_low():
    with pytest.raises(ValueError, match="scale='log' needs low > 0"):
        Bounded(0.0, 1.0, "log")


def test_unknown_parameter_lists_available(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match=r"params: unknown parameter 'na.gbr' of PointNeuron \(did you mean "
                                         r"'na.gbar'\?\); parameters, closest first: 'na.gbar', 'k.gbar'"):
        _fit(stim, target, {"na.gbr": Bounded(50, 200)})


def test_nan_in_target(synthetic):
    stim, target = synthetic
    bad = target.copy()
    bad[100] = np.nan
    with pytest.raises(ValueError, match=r"target must be finite \(no NaN or inf\); got nan at index 100"):
        _fit(stim, bad)


def test_nan_in_stimulus(synthetic):
    stim, target = synthetic
    bad = stim.copy()
    bad[5] = np.inf
    with pytest.raises(ValueError, match="stimulus must be finite"):
        _fit(bad, target)


def test_start_outside_bounds(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match=r"starts\['na.gbar'\]: start value 120.0 is not strictly inside"):
        _fit(stim, target, {"na.gbar": Bounded(50, 100)})  # HH() has gNa = 120


def test_random_starts_need_a_key(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match="key"):
        _fit(stim, target, n_starts=3)


def test_other_bad_arguments(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match="dt must be given"):
        _fit(stim, target, dt=None)
    with pytest.raises(ValueError, match="dt must be > 0"):
        _fit(stim, target, dt=-1.0)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        _fit(stim, target, n_steps=0)
    with pytest.raises(ValueError, match="params must be a non-empty dict"):
        bf.fit.fit(bf.HH(), {}, stim, target, dt=DT)
    with pytest.raises(TypeError, match=r"params\['na.gbar'\] must be a Bounded"):
        _fit(stim, target, {"na.gbar": 100.0})
    with pytest.raises(ValueError, match=r"stimulus has 3 sweeps but target has 2"):
        _fit(np.stack([stim] * 3), np.stack([target] * 2))
    with pytest.raises(ValueError, match=r"starts: \['k.gbar'\] are not among"):
        _fit(stim, target, starts={"k.gbar": [30.0]})
    with pytest.raises(TypeError, match="model must be a neuron"):
        bf.fit.fit(object(), {"na.gbar": Bounded(50, 200)}, stim, target, dt=DT)


# ---- gradients and jit -----------------------------------------------------------------------
def _objective(u, stim, target, loss):
    """What fit differentiates: transform -> model -> simulate -> loss."""
    b_na, b_k = HH_PARAMS["na.gbar"], HH_PARAMS["k.gbar"]
    model = eqx.tree_at(lambda m: (m.channels["na"].gbar, m.channels["k"].gbar), bf.HH(),
                        (b_na.constrain(u[0]), b_k.constrain(u[1])))
    _, v = bf.simulate(model, model.init_state(1, jnp.float64), stim[None, :-1], DT, record="v")
    return loss(v, target[None, 1:], DT)


LOSSES = {"mse": MSE(), "smape": bf.fit.SMAPE(), "van_rossum": VanRossum(tau=2.0),
          "spike_count": bf.fit.SpikeCount(width=5.0),
          "features": bf.fit.Features(rate=1.0, isi_cv=0.1, spike_height=1.0, width=5.0, max_spikes=8)}


def test_gradient_through_transform_and_simulation_matches_finite_differences(x64, synthetic):
    """d loss / d u (unconstrained gNa, gK) for every loss, against central differences."""
    stim, target = synthetic
    stim, target = jnp.asarray(stim[:1401]), jnp.asarray(target[:1401])  # 35 ms, two spikes
    u = jnp.array([HH_PARAMS["na.gbar"].unconstrain(110.0), HH_PARAMS["k.gbar"].unconstrain(37.0)])

    def losses(u):
        return jnp.stack([_objective(u, stim, target, loss) for loss in LOSSES.values()])

    f = jax.jit(losses)
    jac = np.asarray(jax.jit(jax.jacrev(losses))(u))  # (loss, param)
    # Small h: the "neuron" scheme interpolates rate tables, so the loss is smooth only between
    # table knots (1 mV apart); h = 1e-5 already crosses some (FD then off by ~5e-4).
    h = 1e-6
    fd = np.stack([(f(u.at[i].add(h)) - f(u.at[i].add(-h))) / (2 * h) for i in range(2)], axis=1)
    assert np.all(np.isfinite(jac))
    for k, name in enumerate(LOSSES):
        assert np.any(jac[k] != 0), name
        np.testing.assert_allclose(jac[k], fd[k], rtol=1e-4, atol=1e-9 * np.abs(fd[k]).max(), err_msg=name)


def test_history_remat_chunks_and_continuing(x64, synthetic):
    """fit's first recorded loss (jit, vmap over starts) equals the loss computed eagerly; a fit
    continued from a result with `remat` and `chunk_size` (same forward pass) starts at the best
    losses of the first."""
    stim, target = (a[:801] for a in synthetic)  # 20 ms
    params = {n: HH_PARAMS[n] for n in ("na.gbar", "k.gbar")}
    starts = {"na.gbar": [90.0, 110.0], "k.gbar": [42.0, 38.0]}
    r = bf.fit.fit(bf.HH(), params, stim, target, dt=DT, n_steps=3, starts=starts, progress=False)
    for s in range(2):
        pred = bf.fit.predict(bf.HH(g_na=starts["na.gbar"][s], g_k=starts["k.gbar"][s]), stim, DT)
        np.testing.assert_allclose(r.history[0, s], np.mean((pred[1:] - target[1:]) ** 2), rtol=1e-10)
    assert r.history.shape == (3, 2) and r.n_iter == 3 and not r.stopped_early
    assert r.compile_time > 0 and r.wall_time >= r.compile_time
    again = bf.fit.fit(bf.HH(), params, stim, target, dt=DT, n_steps=1, starts=r, remat=True,
                       chunk_size=300, progress=False)
    np.testing.assert_allclose(again.starts["na.gbar"], r.start_params["na.gbar"])
    np.testing.assert_allclose(again.history[0], r.start_losses, rtol=1e-9)


def test_traces_carry_dt_and_progress_bar_runs(x64, synthetic):
    stim, target = (a[:801] for a in synthetic)
    params = {n: HH_PARAMS[n] for n in ("na.gbar", "k.gbar")}  # as above: reuses its compilation
    r = bf.fit.fit(bf.HH(), params, bf.fit.as_trace(stim, DT), bf.fit.as_trace(target, DT, unit="mV"),
                   n_steps=3, starts={"na.gbar": [95.0, 105.0]}, progress=True)
    assert r.n_iter == 3
    np.testing.assert_allclose(r.starts["k.gbar"], [36.0, 36.0])  # not given: the model's value
    with pytest.raises(ValueError, match="differs from the sampling interval"):
        bf.fit.fit(bf.HH(), params, bf.fit.as_trace(stim, DT), target, dt=0.05)


# ---- fitting our own traces ------------------------------------------------------------------
def test_recovers_hh_conductances_from_synthetic_trace(x64, synthetic):
    stim, target = synthetic
    starts = {"na.gbar": [70.0, 125.0], "k.gbar": [52.0, 33.0], "leak.gbar": [0.25, 0.42]}
    r = bf.fit.fit(bf.HH(), HH_PARAMS, stim, target, dt=DT, n_steps=150, starts=starts, progress=False)
    got = np.array([r.params[n] for n in HH_PARAMS])
    np.testing.assert_allclose(got, TRUTH, rtol=0.01)
    assert r.loss < 1e-2 and r.loss == r.start_losses.min()
    assert isinstance(r.model, bf.PointNeuron)
    np.testing.assert_allclose(float(r.model.channels["na"].gbar), r.params["na.gbar"])
    m1 = r.model_for(1 - r.best_start)
    np.testing.assert_allclose(float(m1.channels["k"].gbar), r.start_params["k.gbar"][1 - r.best_start])
    assert "FitResult(loss=" in str(r)


def test_several_sweeps_and_random_starts(x64):
    """Two current steps fitted jointly, c_m and gL, random starts drawn from the bounds."""
    k = np.arange(1001)
    stim = np.stack([2.0 * (k >= 200), -3.0 * (k >= 200)])  # subthreshold: gL and c_m set the shape
    target = bf.fit.predict(bf.HH(g_l=0.5, c_m=1.3), stim, DT)
    r = bf.fit.fit(bf.HH(), {"leak.gbar": Bounded(0.1, 2.0, "log"), "c_m": Bounded(0.5, 3.0)},
                   stim, target, dt=DT, n_steps=100, n_starts=3, key=jax.random.key(0), progress=False)
    assert r.starts["c_m"].shape == (3,)
    np.testing.assert_allclose([r.params["leak.gbar"], r.params["c_m"]], [0.5, 1.3], rtol=0.01)


def test_early_stopping(x64, synthetic):
    stim, target = (a[:1601] for a in synthetic)  # 40 ms
    r = bf.fit.fit(bf.HH(), {"na.gbar": HH_PARAMS["na.gbar"]}, stim, target, dt=DT, n_steps=500,
                   patience=5, tol=0.5, starts={"na.gbar": [104.0]}, progress=False)
    assert r.stopped_early and 5 <= r.n_iter < 500
    assert r.loss < r.history[0, 0]


def test_spike_loss_fit_recovers_gk(x64, synthetic):
    """A pure spike-timing loss (van Rossum on soft spikes) is a usable fitting objective: gK
    from +10%, everything else at its true value (4 spikes in 100 ms)."""
    stim, target = synthetic
    r = bf.fit.fit(bf.HH(g_na=100.0, g_l=0.35), {"k.gbar": HH_PARAMS["k.gbar"]}, stim, target, dt=DT,
                   n_steps=60, loss=VanRossum(tau=5.0, width=2.0), starts={"k.gbar": [44.0]},
                   progress=False)
    assert r.history[0, 0] > 0.1  # spikes shifted by ~0.1-0.4 ms
    assert r.loss < 0.01 * r.history[0, 0]
    assert abs(r.params["k.gbar"] / 40.0 - 1) < 0.01


def test_lif_threshold_fit():
    """fit is not HH-specific: any neuron, any parameter path (LIF threshold, float32)."""
    lif = bf.LIF()
    stim = np.full(400, 0.3)
    target = bf.fit.predict(bf.LIF(threshold=0.8), stim, 1.0, v0=0.0)
    name = "threshold"
    r = bf.fit.fit(lif, {name: Bounded(0.3, 2.0)}, stim, target, dt=1.0, n_steps=80,
                   starts={name: [1.2]}, loss=MSE(), progress=False)
    assert r.loss <= r.history[0, 0]


# ---- adjoint= and backend= are simulate's ---------------------------------------------------
def test_fit_reaches_forward_mode(x64, synthetic, monkeypatch):
    """`fit(..., adjoint=bf.ForwardMode())` hands the adjoint to `simulate` and fits the same
    values as the default (reverse-mode) adjoint: the gradients agree to rounding."""
    from brainfuse_jax.fit import _fit as fit_module

    seen = []
    real = fit_module.simulate

    def spy(*args, **kwargs):
        seen.append((kwargs.get("adjoint"), kwargs.get("backend", "not passed")))
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "simulate", spy)
    stim, target = (a[:801] for a in synthetic)  # 20 ms
    params = {n: HH_PARAMS[n] for n in ("na.gbar", "k.gbar")}
    kw = dict(dt=DT, n_steps=15, starts={"na.gbar": [90.0, 112.0], "k.gbar": [44.0, 33.0]}, progress=False,
              tol=1e-9)  # tol: a cache key of its own, so both fits trace (and the spy sees them)
    ref = bf.fit.fit(bf.HH(), params, stim, target, **kw)
    fwd = bf.fit.fit(bf.HH(), params, stim, target, adjoint=bf.ForwardMode(), **kw)
    assert (None, "not passed") in seen and (bf.ForwardMode(), "not passed") in seen
    np.testing.assert_allclose(fwd.history, ref.history, rtol=1e-8)
    for n in params:
        np.testing.assert_allclose(fwd.start_params[n], ref.start_params[n], rtol=1e-8)
    assert fwd.loss < fwd.history[0].min()  # it did fit


def test_fit_passes_backend_unchanged(synthetic):
    """`backend=` reaches `simulate` as given (here a value it rejects, naming it)."""
    stim, target = synthetic
    with pytest.raises(ValueError, match="backend"):
        _fit(stim[:41], target[:41], backend="no-such-backend")


def test_bounds_outside_the_parameter_domain(synthetic):
    stim, target = synthetic
    with pytest.raises(ValueError, match=r"params\['na.gbar'\]: Bounded\(-10.0, 200.0\) extends below the "
                                         r"parameter's lower bound 0 mS/cm2"):
        _fit(stim, target, {"na.gbar": Bounded(-10.0, 200.0)})
