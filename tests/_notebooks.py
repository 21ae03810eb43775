"""Shared helpers of the notebook tests: notebooks are built from percent-format .py sources by
notebooks/build_notebooks.py; the tests check the .ipynb matches its source and run its code."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def ipynb_cells(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb["cells"]]


def source_cells(name):
    spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.parse_cells((NOTEBOOKS / f"{name}.py").read_text())


def run_code(name, tmp_path):
    """Run the notebook's code cells as one script in `tmp_path` (Agg backend); returns the process.
    The last figure is saved to `tmp_path / "last_figure.png"`."""
    code = "\n\n".join(src for kind, src in ipynb_cells(name) if kind == "code")
    script = tmp_path / f"{name}.py"
    script.write_text(code + "\nimport matplotlib.pyplot as plt\nplt.savefig('last_figure.png')\n")
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
