"""`ASNLayer`: a layer of adaptive spiking neurons (`bf.ASN`, several spikes per step)."""

from __future__ import annotations

from typing import Any

import equinox as eqx
from jaxtyping import PRNGKeyArray

from ..neurons import ASN
from ._base import _common, _LAYER_ARGS, _per_neuron, AbstractSpikingLayer


class ASNLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of adaptive spiking neurons (`bf.ASN`): up to `max_spikes` spikes per
    step (integer-valued training, spike-driven inference give identical counts); output spike
    counts per frame. Switch with `layer.with_mode("infer")`.

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `tau_m`, `threshold`, `adapt`, `tau_adapt`: initial values (ms, units of v), learnable.
    - `max_spikes`: most spikes per step; `mode`: `"train"` or `"infer"`.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        tau_m: float = 20.0,
        threshold: float = 1.0,
        adapt: float = 0.1,
        tau_adapt: float = 100.0,
        max_spikes: int = 4,
        mode: str = "train",
        dt: float = 1.0,
        substeps: int = 1,
        recurrent: bool = False,
        rec_gain: float = 1.0,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
        adjoint: Any = None,
        backend: Any = None,
    ):
        _common(self, in_features, n, key, dt, substeps, recurrent, rec_gain, remat, state_dtype,
                chunk_size=chunk_size, adjoint=adjoint, backend=backend)
        n = self.n
        self.neuron = ASN(tau_m=_per_neuron(tau_m, n, "tau_m"), threshold=_per_neuron(threshold, n, "threshold"),
                          adapt=_per_neuron(adapt, n, "adapt"), tau_adapt=_per_neuron(tau_adapt, n, "tau_adapt"),
                          max_spikes=max_spikes, mode=mode)
        self.input_scale = None

    def with_mode(self, mode: str) -> ASNLayer:
        """The same layer with its neurons in `mode` (`"train"` or `"infer"`)."""
        return eqx.tree_at(lambda m: m.neuron, self, self.neuron.with_mode(mode))

