"""Spiking networks: populations of any neuron model, sparse projections with delays, drives,
recording, analysis and plots (docs/networks.md).

A `Network` is a model (`init_state` / `step`): `simulate`, the adjoints, `fit` and `sweep` run it
as they run a neuron.
"""

from ._analysis import cv_isi as cv_isi
from ._analysis import fano_factor as fano_factor
from ._analysis import firing_rates as firing_rates
from ._analysis import population_rate as population_rate
from ._analysis import population_summary as population_summary
from ._analysis import spike_counts as spike_counts
from ._analysis import spike_times as spike_times
from ._connect import AllToAll as AllToAll
from ._connect import connect as connect
from ._connect import Explicit as Explicit
from ._connect import FixedInDegree as FixedInDegree
from ._connect import FixedOutDegree as FixedOutDegree
from ._connect import FixedTotalNumber as FixedTotalNumber
from ._connect import OneToOne as OneToOne
from ._connect import PairwiseBernoulli as PairwiseBernoulli
from ._connect import Rule as Rule
from ._connect import Synapses as Synapses
from ._distributions import Constant as Constant
from ._distributions import Distribution as Distribution
from ._distributions import Lognormal as Lognormal
from ._distributions import Normal as Normal
from ._distributions import Uniform as Uniform
from ._drive import CurrentDrive as CurrentDrive
from ._drive import PoissonDrive as PoissonDrive
from ._models import brunel as brunel
from ._network import Network as Network
from ._network import Population as Population
from ._network import Projection as Projection
from ._plot import plot_activity as plot_activity
from ._plot import plot_population_rates as plot_population_rates
from ._plot import plot_rate_cv_histograms as plot_rate_cv_histograms
from ._plot import plot_raster as plot_raster
from ._propagate import Connectivity as Connectivity
