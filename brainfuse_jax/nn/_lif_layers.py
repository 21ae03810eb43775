"""The LIF family as layers: `LIFLayer`, `ALIFLayer` (adaptive threshold) and `RecurrentLIFLayer`
(lateral weights inside the neuron)."""

from __future__ import annotations

from typing import Any, Literal

from jaxtyping import PRNGKeyArray

from ..neurons import ALIF, LIF, RecurrentLIF
from ..surrogate import Surrogate
from ._base import _common, _LAYER_ARGS, _per_neuron, AbstractSpikingLayer


class LIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of leaky integrate-and-fire neurons (`bf.LIF`, one beta and threshold
    per neuron). Input in units of the threshold per step; output spikes per frame (0/1 with
    `substeps=1`).

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `beta`: initial membrane decay per step in [0, 1) (per-step factor, `exp(-dt/tau)`).
    - `threshold`: initial threshold (learnable).
    - `learn_beta`: make beta learnable (default True).
    - `reset`, `surrogate`, `detach_reset`: as `bf.LIF`.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
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
        self.neuron = LIF(beta=_per_neuron(beta, self.n, "beta"), threshold=_per_neuron(threshold, self.n, "threshold"),
                          learn_beta=learn_beta, reset=reset, surrogate=surrogate, detach_reset=detach_reset)
        self.input_scale = None


class ALIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A layer of adaptive LIF neurons (`bf.ALIF`: the threshold rises by `adapt` per
    spike and relaxes with `tau_adapt` ms; Bellec et al. 2018).

    **Arguments:**
    """ + _LAYER_ARGS + """
    - `beta`, `threshold`, `learn_beta`, `reset`, `surrogate`: as `LIFLayer`.
    - `adapt`: threshold increase per spike (units of the input), learnable.
    - `tau_adapt`: adaptation time constant, ms, learnable.
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        adapt: float = 0.1,
        tau_adapt: float = 50.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
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
        self.neuron = ALIF(beta=_per_neuron(beta, n, "beta"), threshold=_per_neuron(threshold, n, "threshold"),
                           adapt=_per_neuron(adapt, n, "adapt"), tau_adapt=_per_neuron(tau_adapt, n, "tau_adapt"),
                           learn_beta=learn_beta, reset=reset, surrogate=surrogate)
        self.input_scale = None


class RecurrentLIFLayer(AbstractSpikingLayer):
    __doc__ = r"""A recurrently connected LIF layer (`bf.RecurrentLIF`: lateral weights `W`
    `(n, n)` on the previous step's spikes, inside the neuron; snnTorch's `RLeaky`).

    **Arguments:**
    """ + _LAYER_ARGS.replace("    - `recurrent`: add learnable recurrent weights `W_rec ~ Normal(0, rec_gain^2 / n)` fed by the\n"
                              "      previous frame's spikes.\n", "") + """
    - `beta`, `threshold`, `learn_beta`, `reset`, `surrogate`: as `LIFLayer`.
    (`rec_gain` scales the neuron's own `W ~ Normal(0, rec_gain^2 / n)`.)
    """

    def __init__(
        self,
        in_features: int | None,
        n: int,
        *,
        key: PRNGKeyArray,
        beta: float = 0.9,
        threshold: float = 1.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        rec_gain: float = 0.5,
        dt: float = 1.0,
        substeps: int = 1,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
        adjoint: Any = None,
        backend: Any = None,
    ):
        k = _common(self, in_features, n, key, dt, substeps, False, rec_gain, remat, state_dtype,
                    chunk_size=chunk_size, adjoint=adjoint, backend=backend)
        n = self.n
        self.neuron = RecurrentLIF(n, key=k, gain=rec_gain, beta=_per_neuron(beta, n, "beta"),
                                   threshold=_per_neuron(threshold, n, "threshold"), learn_beta=learn_beta,
                                   reset=reset, surrogate=surrogate)
        self.input_scale = None

