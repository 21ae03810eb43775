"""The import layering of pyproject.toml's [tool.importlinter] contracts (import-linter): the
kernels never import the library, and no package imports one of a layer above it (so no import
cycles between packages)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(monkeypatch):
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is a test dependency (pip install -e .[test])")
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "kernels"))
    monkeypatch.syspath_prepend(str(ROOT))
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0, "see the report above"


def test_contract_catches_a_violation(tmp_path, monkeypatch):
    """The check can fail: a contract that forbids what the code does is reported as broken."""
    cli = pytest.importorskip("importlinter.cli", reason="import-linter is a test dependency (pip install -e .[test])")
    config = tmp_path / "bad.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["brainfuse_jax"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "simulate must not import adjoint"\n'
                      'type = "forbidden"\nsource_modules = ["brainfuse_jax.simulate"]\n'
                      'forbidden_modules = ["brainfuse_jax.adjoint"]\n')
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "kernels"))
    monkeypatch.syspath_prepend(str(ROOT))
    assert cli.lint_imports(config_filename=str(config)) != 0
