"""The `brainfuse` command line: `quickstart` end to end, `--help`, option errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from brainfuse_jax.cli import main

from .conftest import ref_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _hh_spike_counts(current, duration_ms, dt=0.025):
    """Independent numpy HH (1952, NEURON's hh at 6.3 degC, el -54.387 mV, rest -65 mV) with
    NEURON's fixed-step scheme: implicit Euler for V with the old gates, then exponential Euler
    for m, h, n at the new V. Analytic rates (no rate tables). Returns upward 0 mV crossings."""
    i_ext = np.asarray(current, dtype=np.float64)

    def rates(v):
        def vtrap(x, y):
            return np.where(np.abs(x / y) < 1e-6, y * (1 - x / y / 2), x / np.expm1(x / y))

        am, bm = 0.1 * vtrap(-(v + 40), 10), 4 * np.exp(-(v + 65) / 18)
        ah, bh = 0.07 * np.exp(-(v + 65) / 20), 1 / (np.exp(-(v + 35) / 10) + 1)
        an, bn = 0.01 * vtrap(-(v + 55), 10), 0.125 * np.exp(-(v + 65) / 80)
        return [(a / (a + b), 1 / (a + b)) for a, b in ((am, bm), (ah, bh), (an, bn))]

    v = np.full_like(i_ext, -65.0)
    (m, _), (h, _), (n, _) = rates(v)
    count = np.zeros(i_ext.shape, np.int64)
    for _ in range(round(duration_ms / dt)):
        g_na, g_k, g_l = 120 * m**3 * h, 36 * n**4, 0.3
        v_new = (v / dt + g_na * 50 + g_k * -77 + g_l * -54.387 + i_ext) / (1 / dt + g_na + g_k + g_l)
        count += (v < 0) & (v_new >= 0)
        v = v_new
        (mi, mt), (hi, ht), (ni, nt) = rates(v)
        m = mi + (m - mi) * np.exp(-dt / mt)
        h = hi + (h - hi) * np.exp(-dt / ht)
        n = ni + (n - ni) * np.exp(-dt / nt)
    return count


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "data"


@pytest.mark.skipif(not (REFERENCE / "bench_counts_neuron.npz").exists(), reason="reference data ../shared/reference/data/bench_counts_neuron.npz not present (outside the project)")
def test_reference_model_matches_neuron():
    """The numpy HH above against NEURON's spike counts of the same workload (1 s,
    bench_counts_neuron.npz: 68 spikes at 9.99 uA/cm2)."""
    ref = np.load(REFERENCE / "bench_counts_neuron.npz")
    idx = np.array([325, 499, 749, 999])  # 6.5, 10, 15, 20 uA/cm2
    counts = _hh_spike_counts(ref["I_uA_per_cm2"][idx], float(ref["tstop_ms"]), float(ref["dt_ms"]))
    assert ref["spike_counts"][499] == 68
    np.testing.assert_allclose(counts, ref["spike_counts"][idx], atol=1)


def test_quickstart_end_to_end(tmp_path, capsys):
    n, duration = 50, 200.0
    assert main(["quickstart", "--out", tmp_path, "--neurons", str(n), "--duration", str(duration),
                 "--no-progress"]) == 0
    png = tmp_path / "quickstart.png"
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and b"IEND" in data[-16:]
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 600 and height > 300

    out = capsys.readouterr().out
    match = re.search(r"rate at 10 uA/cm2:\s+([0-9.]+) Hz", out)
    assert match, out
    rate = float(match.group(1))
    # The CLI interpolates the f-I curve at 10 uA/cm2 between its two nearest neurons.
    currents = np.linspace(0.0, 20.0, n)
    hi = int(np.searchsorted(currents, 10.0))
    pair = currents[[hi - 1, hi]]
    ref_rates = _hh_spike_counts(pair, duration) / (duration / 1e3)
    one_spike = 1e3 / duration  # Hz
    assert ref_rates.min() - one_spike <= rate <= ref_rates.max() + one_spike, (rate, ref_rates)
    assert 60.0 < rate < 80.0  # classic HH: ~68 Hz at 10 uA/cm2 (1 s); a little more over 200 ms
    for key in ("rheobase:", "max rate:", "wall time:", "neuron-steps/s"):
        assert key in out
    # panel (c): the default fit (200 ms of the NEURON target, or of our own HH without it)
    assert "fit (panel c):" in out
    assert height > 1000  # the figure grew a row
    for label, true in (("gNa", 100.0), ("gK", 40.0), ("gL", 0.35)):
        match = re.search(rf"^\s+{label}\s+(\S+)\s+(\S+)\s+(\S+)\s+([-+0-9.]+)%$", out, re.M)
        assert match, out
        start, fitted, truth = (float(match.group(k)) for k in (1, 2, 3))
        assert truth == pytest.approx(true)
        assert fitted == pytest.approx(true, rel=0.02), (label, fitted)
        assert abs(start / true - 1) > 0.05  # it started elsewhere


def test_quickstart_float64_restores_x64_flag(tmp_path, capsys):
    import jax

    before = jax.config.jax_enable_x64
    assert main(["quickstart", "--out", tmp_path, "--neurons", "3", "--duration", "5", "--float64",
                 "--no-progress", "--fit-target", "synthetic", "--fit-ms", "30", "--fit-steps", "3",
                 "--fit-starts", "2"]) == 0  # the fit as below: one compilation for both
    assert jax.config.jax_enable_x64 == before
    assert "float64" in capsys.readouterr().out
    assert (tmp_path / "quickstart.png").read_bytes()[:8] == PNG_SIGNATURE


def test_help_lists_quickstart(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "quickstart" in capsys.readouterr().out


@pytest.mark.parametrize("option, value", [("--dt", "0"), ("--dt", "-0.025"), ("--dt", "nan"),
                                           ("--neurons", "0"), ("--duration", "-5"), ("--fit-ms", "0"),
                                           ("--fit-steps", "0"), ("--fit-starts", "-1"),
                                           ("--fit-target", "no/such/file.npz")])
def test_bad_option_exits_2_naming_it(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--out", tmp_path, option, value])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert not (tmp_path / "quickstart.png").exists()


def test_quickstart_synthetic_fit_target(tmp_path, capsys):
    """Without NEURON's file (forced here), panel (c) fits a target made with our own HH."""
    assert main(["quickstart", "--out", tmp_path, "--neurons", "3", "--duration", "5", "--no-progress",
                 "--fit-target", "synthetic", "--fit-ms", "30", "--fit-steps", "3", "--fit-starts", "2"]) == 0
    out = capsys.readouterr().out
    assert "a target generated with our own HH" in out and "2 starts x 3 iterations" in out
    assert (tmp_path / "quickstart.png").read_bytes()[:8] == PNG_SIGNATURE


def test_fit_window_longer_than_the_target_exits_2(tmp_path, capsys):
    target = ref_file("hh_noisy_fit_target.npz")
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--out", tmp_path / "out", "--fit-target", target, "--fit-ms", "600"])
    assert exc.value.code == 2
    assert "--fit-ms (600 ms) is longer than the target (500 ms" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_quickstart_no_fit(tmp_path, capsys):
    assert main(["quickstart", "--out", tmp_path, "--neurons", "3", "--duration", "5", "--no-progress",
                 "--no-fit"]) == 0
    assert "fit (panel c)" not in capsys.readouterr().out
    data = (tmp_path / "quickstart.png").read_bytes()
    assert int.from_bytes(data[20:24], "big") < 800  # one row of panels


def test_duration_shorter_than_dt_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--out", tmp_path, "--duration", "0.01", "--dt", "0.025"])
    assert exc.value.code == 2
    assert "--duration" in capsys.readouterr().err


def test_no_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


@pytest.mark.skipif(shutil.which("brainfuse") is None, reason="console script not on PATH")
def test_console_script_help():
    proc = subprocess.run([shutil.which("brainfuse"), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "quickstart" in proc.stdout
