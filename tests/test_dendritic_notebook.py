"""The dendritic-integration notebook: its .ipynb matches its percent-format source, and its code
runs top to bottom as plain Python (the notebook's own asserts check the science: one input alone
is subthreshold, coincident inputs on two dendrites make the soma spike, widely separated ones do
not)."""

import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NAME = "dendritic_integration"


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ipynb_cells():
    nb = json.loads((NOTEBOOKS / f"{NAME}.ipynb").read_text())
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb["cells"]]


def test_notebook_matches_its_source():
    cells = _builder().parse_cells((NOTEBOOKS / f"{NAME}.py").read_text())
    assert cells == _ipynb_cells(), "rebuild with: python notebooks/build_notebooks.py"
    assert [k for k, _ in cells].count("code") >= 4


def test_notebook_code_runs_top_to_bottom(tmp_path):
    code = "\n\n".join(src for kind, src in _ipynb_cells() if kind == "code")
    script = tmp_path / f"{NAME}.py"
    script.write_text(code + "\nimport matplotlib.pyplot as plt\nplt.savefig('last_figure.png')\n")
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    m = re.search(r"the soma spikes for dt_AB in \[(\S+), (\S+)\] ms", proc.stdout)
    assert m, proc.stdout
    lo, hi = float(m.group(1)), float(m.group(2))
    assert -10.0 < lo < 0.0 < hi < 10.0  # a finite coincidence window around dt_AB = 0
    assert (tmp_path / "last_figure.png").stat().st_size > 10_000
