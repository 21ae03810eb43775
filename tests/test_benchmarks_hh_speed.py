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


def test_per_step_record_rows():
    """The 'V recorded every step' rows: naive JAX's V (as (N, T) and time-major) and ours, each with
    its spike counts, the same spikes as the rows without the record, V traces of (N, T + 1)."""
    code = f"""
import sys, json
sys.path.insert(0, {BENCH!r})
import hh_speed as hs
import numpy as np
out = {{}}
for name in ("naive", "naive_rec", "naive_rec_tm", "ours_xla", "ours_xla_rec"):
    info = hs.worker_fwd_jax(name, 40, 1500, 1, 1500)
    out[name] = dict(counts=np.asarray(info["counts"]).tolist(), shape=list(info["trace"].shape),
                     trace=np.asarray(info["trace"], np.float64)[:, ::50].tolist())
print("RESULT " + json.dumps(out))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, out.stderr[-2000:]
    res = json.loads(line[-1][7:])
    assert all(r["shape"] == [40, 1501] for r in res.values())
    assert sum(res["naive"]["counts"]) > 40
    assert res["naive_rec"]["counts"] == res["naive_rec_tm"]["counts"] == res["naive"]["counts"]
    assert res["naive_rec"]["trace"] == res["naive_rec_tm"]["trace"]
    assert res["ours_xla_rec"]["counts"] == res["ours_xla"]["counts"]
    assert res["ours_xla_rec"]["trace"] == res["ours_xla"]["trace"]
