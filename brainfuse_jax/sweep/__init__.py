"""Parameter sweeps: one model evaluated over a grid of parameter values with `vmap`, in
memory-bounded batches, sharded over every JAX device; f-I curves, rheobase and two-parameter
firing-rate maps built on it.

Parameter names are those of `brainfuse_jax.params` (the one naming of parameters, shared with
`fit`): `"c_m"`, `"temperature"` (fields of the neuron), `"na.gbar"`, `"k.e_rev"` (a channel's
field; `"channels.na.gbar"` is the same leaf). Names that start with `"stimulus."` are not model
parameters: they are passed to a callable `stimulus` that builds each point's input (e.g.
`"stimulus.amplitude"`).

Modules: `_grid` (names and the grid of points), `_run` (one point, one compiled batch, the loop
over batches), `_plan` (batch size from the memory budget and the device count), `_sweep` (the
`sweep` function), `_curves` (`fi_curve`, `rheobase`, `rate_map`), `_plot` (`plot_rate_map`).

(`brainfuse_jax.sweep` the attribute is the `sweep` function; this package is reached with
`from brainfuse_jax.sweep import ...`.)
"""

from ._curves import fi_curve as fi_curve
from ._curves import rate_map as rate_map
from ._curves import RateMap as RateMap
from ._curves import rheobase as rheobase
from ._grid import parameter_paths as parameter_paths
from ._grid import STIMULUS_PREFIX as STIMULUS_PREFIX
from ._plot import plot_rate_map as plot_rate_map
from ._run import Run as Run
from ._run import spike_rate as spike_rate
from ._sweep import sweep as sweep

__all__ = ["Run", "sweep", "spike_rate", "fi_curve", "rheobase", "RateMap", "rate_map", "plot_rate_map",
           "parameter_paths"]
