"""benchmarks/hh_speed.py: its C loop builds and counts the same spikes as the naive JAX
version it stands in for (a small population; skipped without gcc)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_c_loop_matches_naive_jax(tmp_path):
    code = f"""
import sys, json
sys.path.insert(0, {BENCH!r})
import hh_speed as hs
import numpy as np
import jax.numpy as jnp
import hh_population as hp
exe, _ = hs.build_c({str(tmp_path)!r})
c = hs.run_c(exe, {str(tmp_path)!r}, 50, 2000, 1, trace_steps=2000)
_, counts, _ = hp.naive_hh(jnp.asarray(hs.current_density(50), jnp.float32), hs.V0, 2000, hs.DT, jnp.float32)
st, k = hs.spike_times(c["trace"])
print("RESULT " + json.dumps(dict(c=c["counts"].tolist(), j=np.asarray(counts).tolist(), k=k.tolist(),
                                  finite=c["finite"])))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, out.stderr[-2000:]
    res = json.loads(line[-1][7:])
    assert res["finite"]
    assert sum(res["j"]) > 50  # most of the population fires in 50 ms
    assert res["c"] == res["j"]
    assert res["k"] == res["c"]  # spike times from the V trace find the same spikes
