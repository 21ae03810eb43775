"""`brainfuse export`: StableHLO artefacts and C that builds with its Makefile and runs."""

import shutil
import subprocess

import numpy as np
import pytest

import brainfuse_jax as bf
from brainfuse_jax.cli import main

MODEL = """
import brainfuse_jax as bf
model = bf.LIF(beta=0.9, threshold=0.5)
state0 = model.init_state((1, 6))
dt = 1.0
"""


def test_export_stablehlo_round_trips(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    assert main(["export", str(tmp_path / "m.py"), "--to", "stablehlo", "--out", str(tmp_path / "out")]) == 0
    lowered = bf.lower.Lowered.read(tmp_path / "out")
    x = np.full((1, 6), 0.3, np.float32)
    new = lowered.call(*lowered.arguments(x, model=bf.LIF(beta=0.9, threshold=0.5),
                                          state=bf.LIF(beta=0.9).init_state((1, 6))))
    assert new[-1].shape == (1, 6)


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="gcc and make needed")
def test_export_c_builds_and_runs(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    out = tmp_path / "c"
    assert main(["export", str(tmp_path / "m.py"), "--to", "c", "--out", str(out), "--prefix", "lif"]) == 0
    assert {"lif.c", "lif.h", "Makefile", "README.md"} <= {p.name for p in out.iterdir()}
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    assert (out / "lif_main").exists()


def test_export_refuses_a_file_without_a_model(tmp_path, capsys):
    (tmp_path / "m.py").write_text("x = 1\n")
    with pytest.raises(SystemExit) as err:
        main(["export", str(tmp_path / "m.py"), "--to", "c", "--out", str(tmp_path / "o")])
    assert err.value.code == 2
    assert "must define `model`" in capsys.readouterr().err
