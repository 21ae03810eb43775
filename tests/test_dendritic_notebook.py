"""The dendritic-integration notebook: its .ipynb matches its percent-format source, and its code
runs top to bottom as plain Python (the notebook's own asserts check the science: one input alone
is subthreshold, coincident inputs on two dendrites make the soma spike, widely separated ones do
not)."""

import re

from ._notebooks import ipynb_cells, run_code, source_cells

NAME = "dendritic_integration"


def test_notebook_matches_its_source():
    cells = source_cells(NAME)
    assert cells == ipynb_cells(NAME), "rebuild with: python notebooks/build_notebooks.py"
    assert [k for k, _ in cells].count("code") >= 4


def test_notebook_code_runs_top_to_bottom(tmp_path):
    proc = run_code(NAME, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    m = re.search(r"the soma spikes for dt_AB in \[(\S+), (\S+)\] ms", proc.stdout)
    assert m, proc.stdout
    lo, hi = float(m.group(1)), float(m.group(2))
    assert -10.0 < lo < 0.0 < hi < 10.0  # a finite coincidence window around dt_AB = 0
    assert (tmp_path / "last_figure.png").stat().st_size > 10_000
