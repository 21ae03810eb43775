"""Shared test configuration: reference data location, float64 fixture, NEURON availability."""

import os
import pathlib

import jax
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# As equinox's own suite: implicit rank promotion is an error, so shape bugs cannot hide behind
# broadcasting. (Strict dtype promotion is checked for the package code separately:
# JAX_NUMPY_DTYPE_PROMOTION=strict python -m pytest.)
jax.config.update("jax_numpy_rank_promotion", "raise")

# Reference outputs of NEURON/NEST/Brian2 live outside the project (../shared/reference, see its
# README); tests read them in place and skip only where the folder is absent (a user's clone).
REF_DIR = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "reference"
REF_DATA = REF_DIR / "data"


def ref_file(name: str, folder: str = "data") -> pathlib.Path:
    """`../shared/reference/<folder>/<name>`, or skip naming the missing file (a user's clone)."""
    path = REF_DIR / folder / name
    if not path.exists():
        pytest.skip(f"reference file {path} not present (it lives in ../shared/reference, outside the project)")
    return path


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (restored afterwards)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module. The whole suite compiles a few
    thousand programs in one process; kept alive, they held 6.6 GB and XLA's compiler crashed
    (SIGSEGV, the cause not pinned down) at 92 % of the run, in a test that passes alone and after
    any subset of the suite tried; dropped per module, the run peaks at 2.4 GB and passes."""
    yield
    jax.clear_caches()
