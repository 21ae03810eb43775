"""`brainfuse_jax.nn`: spiking layers (HH, LIF, ALIF, recurrent LIF, ASN) as equinox modules for
gradient training, readouts, losses and regularisers, debug probes, a small training loop and
offline data sets. See docs/learning.md."""

from . import encode as encode
from ._asn_layer import ASNLayer as ASNLayer
from ._base import AbstractSpikingLayer as AbstractSpikingLayer
from ._base import call_with_state as call_with_state
from ._base import detach_state as detach_state
from ._base import reset_state as reset_state
from ._containers import cast_params as cast_params
from ._containers import Sequential as Sequential
from ._containers import TimeDistributed as TimeDistributed
from ._containers import with_execution as with_execution
from ._conv import ConvLIF as ConvLIF
from ._conv import ConvSNN as ConvSNN
from ._conv import Flatten as Flatten
from ._conv import SpikePool as SpikePool
from ._data import Dataset as Dataset
from ._encode import PopulationEncoder as PopulationEncoder
from ._data import delayed_spike_patterns as delayed_spike_patterns
from ._data import load_digits as load_digits
from ._data import load_mnist1d as load_mnist1d
from ._hh_layer import HHLayer as HHLayer
from ._lif_layers import ALIFLayer as ALIFLayer
from ._lif_layers import LIFLayer as LIFLayer
from ._lif_layers import RecurrentLIFLayer as RecurrentLIFLayer
from ._losses import accuracy as accuracy
from ._losses import cross_entropy as cross_entropy
from ._losses import firing_rate_loss as firing_rate_loss
from ._losses import membrane_cross_entropy as membrane_cross_entropy
from ._losses import rate_cross_entropy as rate_cross_entropy
from ._losses import variance_invariance_loss as variance_invariance_loss
from ._metrics import grad_norms as grad_norms
from ._metrics import health_warnings as health_warnings
from ._metrics import SNNHealthWarning as SNNHealthWarning
from ._metrics import snn_metrics as snn_metrics
from ._probes import layer_metrics as layer_metrics
from ._probes import PROBES as PROBES
from ._probes import probes as probes
from ._readouts import LeakyReadout as LeakyReadout
from ._readouts import reduce_time as reduce_time
from ._readouts import spike_count as spike_count
from ._readouts import SpikeCountReadout as SpikeCountReadout
from ._train import evaluate as evaluate
from ._train import load_checkpoint as load_checkpoint
from ._train import save_checkpoint as save_checkpoint
from ._train import train as train

__all__ = [
    "ConvLIF",
    "ConvSNN",
    "Flatten",
    "SpikePool",
    "Dataset",
    "encode",
    "PopulationEncoder",
    "delayed_spike_patterns",
    "load_digits",
    "load_mnist1d",
    "AbstractSpikingLayer",
    "call_with_state",
    "detach_state",
    "reset_state",
    "grad_norms",
    "health_warnings",
    "layer_metrics",
    "SNNHealthWarning",
    "snn_metrics",
    "ALIFLayer",
    "ASNLayer",
    "cast_params",
    "HHLayer",
    "LeakyReadout",
    "LIFLayer",
    "RecurrentLIFLayer",
    "reduce_time",
    "Sequential",
    "spike_count",
    "SpikeCountReadout",
    "TimeDistributed",
    "with_execution",
    "accuracy",
    "cross_entropy",
    "firing_rate_loss",
    "membrane_cross_entropy",
    "rate_cross_entropy",
    "variance_invariance_loss",
    "PROBES",
    "probes",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "train",
]
