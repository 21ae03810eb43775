"""The README's example runs as written."""

import pathlib
import re

import numpy as np


def test_readme_example_runs(capsys):
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Example\n\n```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    counts = np.asarray(namespace["rec"]["output"].sum(axis=1))
    np.testing.assert_array_equal(counts, [0, 6, 7])  # 100 ms at 0, 6.5, 10 uA/cm2
    assert np.isfinite(float(namespace["grads"].c_m))
