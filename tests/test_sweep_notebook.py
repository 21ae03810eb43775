"""The sweep notebook: its .ipynb matches its percent-format source, and its code runs top to
bottom (as plain Python in a subprocess, so no Jupyter is needed; the notebook's own asserts check
the science: resonance between 20 and 150 Hz, decryption with the key, failure with perturbed keys)."""

import pytest

from ._notebooks import NOTEBOOKS, ipynb_cells, run_code, source_cells

NAME = "hh_frequency_selectivity"


def test_notebook_matches_its_source():
    cells = source_cells(NAME)
    assert cells == ipynb_cells(NAME), "rebuild with: python notebooks/build_notebooks.py"
    assert [k for k, _ in cells].count("code") >= 5


def test_notebook_code_runs_top_to_bottom(tmp_path):
    proc = run_code(NAME, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    assert "decrypted with the key: AAAA - Hodgkin & Huxley" in out
    assert "gives the ciphertext: True" in out
    assert (tmp_path / "last_figure.png").stat().st_size > 10_000


@pytest.mark.slow
def test_notebook_executes_in_jupyter(tmp_path):
    """The real thing (needs the notebooks extra): execute the .ipynb with a Jupyter kernel."""
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[notebooks]'")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[notebooks]'")
    pytest.importorskip("ipykernel", reason="pip install -e '.[notebooks]'")
    nb = nbformat.read(NOTEBOOKS / f"{NAME}.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "decrypted with the key" in text
