"""Fixed-point C for the LIF family: compiled with gcc -Werror and run; bit-identical to the NumPy
reference of the same arithmetic; its error against float32 as reported."""

import shutil
import subprocess

import jax
import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.lower import QFormat, emit_fixed_c, fixed_point_reference, quantisation_report

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def _run_c(tmp_path, source, x):
    src, exe = tmp_path / "fixed.c", tmp_path / "fixed"
    src.write_text(source)
    subprocess.run(["gcc", *FLAGS, "-DBF_MAIN", str(src), "-o", str(exe), "-lm"], check=True, capture_output=True)
    (tmp_path / "x.bin").write_bytes(np.asarray(x, np.float32).tobytes())
    subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "out.bin")], check=True)
    raw = (tmp_path / "out.bin").read_bytes()
    t, n = x.shape
    return np.frombuffer(raw[: t * n], np.uint8).reshape(t, n), np.frombuffer(raw[t * n:], np.int32)


MODELS = {
    "LIF": lambda: bf.LIF(beta=np.linspace(0.8, 0.97, 16), threshold=1.0, refractory=2.0),
    "LIF-zero": lambda: bf.LIF(beta=0.9, threshold=0.8, reset="zero"),
    "ALIF": lambda: bf.ALIF(beta=0.92, threshold=1.0, adapt=0.3, tau_adapt=50.0),
    "RecurrentLIF": lambda: bf.RecurrentLIF(beta=0.9, n=16, key=jax.random.PRNGKey(3), gain=1.5),
}


@pytest.mark.parametrize("q", [QFormat(10, 16), QFormat(20, 32)], ids=["Q5.10-int16", "Q11.20-int32"])
@pytest.mark.parametrize("name", list(MODELS))
def test_c_equals_reference_bit_for_bit(tmp_path, name, q):
    model = MODELS[name]()
    x = np.random.default_rng(0).uniform(-0.1, 0.35, (10_000, 16))
    ref = fixed_point_reference(model, x, 1.0, q)
    spikes, v = _run_c(tmp_path, emit_fixed_c(model, 16, 1.0, q), x.astype(np.float32))
    assert 0.01 < ref["spikes"].mean() < 0.5
    np.testing.assert_array_equal(spikes, ref["spikes"])
    np.testing.assert_array_equal(v, ref["v"][-1])


def test_error_against_float32_shrinks_with_the_format():
    model = MODELS["LIF"]()
    x = np.random.default_rng(1).uniform(-0.1, 0.35, (2_000, 16)).astype(np.float32)
    coarse = quantisation_report(model, x, 1.0, QFormat(6, 16))
    fine = quantisation_report(model, x, 1.0, QFormat(24, 32))
    assert fine["max_membrane_error"] < coarse["max_membrane_error"]
    assert fine["spike_mismatch_fraction"] <= coarse["spike_mismatch_fraction"]
    assert fine["max_membrane_error"] < 1e-5
    # the reported error is that of the program: its first spike mismatch is where the report says
    ref = fixed_point_reference(model, x, 1.0, QFormat(6, 16))
    assert int(ref["spikes"].sum()) == int(coarse["spike_counts_fixed"].sum())


def test_bad_formats_and_models():
    with pytest.raises(ValueError, match="bits must be 16 or 32"):
        QFormat(10, 8)
    with pytest.raises(ValueError, match="frac_bits"):
        QFormat(15, 16)
    with pytest.raises(ValueError, match="LIF, ALIF and RecurrentLIF"):
        fixed_point_reference(bf.HH(), np.zeros((3, 2)), 0.025, QFormat())
    with pytest.raises(ValueError, match="shape \\(T, n\\)"):
        fixed_point_reference(bf.LIF(beta=0.9), np.zeros(3), 1.0, QFormat())
