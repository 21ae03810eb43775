"""What every benchmark script shares: one pinned core, child-process workers, machine facts,
and writing a marked section of docs/benchmarks.md.

Import it first (`import _harness`): pinning must happen before numpy / JAX / NEURON load.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time

# ---- one core, one thread: before numpy / JAX / NEURON are imported ---------------------------
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
try:
    os.sched_setaffinity(0, {0})
except (AttributeError, OSError):  # not Linux, or core 0 not available
    pass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "benchmarks.md")


def run_child(cmd: list[str], timeout: float, label: str) -> dict:
    """Run a worker process; return the dict from its last `RESULT {json}` line (or an error)."""
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return dict(label=label, ok=False, error=f"timeout after {timeout} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return dict(label=label, ok=False, error=f"worker exited with code {proc.returncode}: {tail}")
    res = json.loads(lines[-1][len("RESULT "):])
    res["process_s"] = time.perf_counter() - t
    return res


def machine_info(modules=("jax", "jaxlib", "equinox", "numpy", "neuron")) -> dict:
    """CPU model, versions of `modules` (each imported in a fresh interpreter), gcc, pinning."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for mod in modules:
        try:
            out = subprocess.run([sys.executable, "-c", f"import {mod}; print({mod}.__version__)"],
                                 capture_output=True, text=True, timeout=120)
            versions[mod] = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "not importable"
        except Exception:  # noqa: BLE001
            versions[mod] = "not importable"
    try:
        gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:  # noqa: BLE001
        gcc = "n/a"
    return dict(cpu=cpu, logical_cpus=os.cpu_count(), kernel=platform.release(),
                python=platform.python_version(), gcc=gcc, versions=versions,
                affinity=sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                xla_flags=os.environ["XLA_FLAGS"], omp_num_threads=os.environ["OMP_NUM_THREADS"])


def write_doc(name: str, section: str, doc: str = DOC):
    """Replace (or append) the `<!-- name:start -->` ... `<!-- name:end -->` block of `doc`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    os.makedirs(os.path.dirname(doc), exist_ok=True)
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    if os.path.exists(doc):
        with open(doc) as f:
            text = f.read()
        pat = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
        text = pat.sub(lambda _: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
    else:
        text = ("# Benchmarks\n\nEach section below is written by a script in `benchmarks/` "
                "between its own markers; rerun the script to refresh it.\n\n" + block)
    with open(doc, "w") as f:
        f.write(text)
