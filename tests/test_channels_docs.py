"""docs/channels.md: its code blocks run as written, in order, and print what the text says."""

import pathlib
import re

import numpy as np

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "channels.md"


def test_channels_doc_code_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 3
    namespace = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
    # The custom channel changes the firing as stated, and gradients reach it.
    np.testing.assert_array_equal(np.asarray(namespace["rec"]["spikes"]), [6.0, 26.0, 43.0])
    h = np.asarray(namespace["rec"]["h"][:, -1])
    assert np.all((h > 0) & (h < 0.8))
    assert np.isfinite(float(namespace["jax"].grad(namespace["mean_v"])(namespace["model"]).channels["nap"].gbar))
    # The Ca-dependent channel example: Ca entered and the pool is in the state.
    assert float(namespace["cai"].max()) > 5e-5
    out = capsys.readouterr().out
    assert "[ 6. 26. 43.]" in out
