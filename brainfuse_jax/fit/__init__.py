"""Fitting neuron models to recorded traces by gradient descent.

```python
import brainfuse_jax as bf
from brainfuse_jax.fit import Bounded

result = bf.fit.fit(bf.HH(), {"na.gbar": Bounded(20, 400, "log"), "k.gbar": Bounded(5, 150, "log")},
                    stimulus, target, dt=0.025, n_steps=300)
print(result.params, result.loss, result.wall_time)
```

- `fit`, `FitResult`, `default_optimizer`: the optimisation loop (optax, several starts by `vmap`,
  early stopping, progress bar).
- `Bounded`, `sample_starts`, `parameter_names`: which parameters, their bounds and transforms
  (`parameter_names` is `brainfuse_jax.params.names`: the one naming of parameters).
- Losses (`loss(pred, target, dt)`, `(B, T)` traces): `MSE`, `SMAPE`, `SpikeCount`, `VanRossum`,
  `Features`, and `soft_spikes`, `spike_features`.
- Traces: `Trace`, `as_trace` (numpy, NEURON `h.Vector`), `read_nwb` (pynwb extra),
  `current_density` (nA -> uA/cm2), `predict` (simulate on a target's time grid).

See docs/fitting.md for a worked example.
"""

from ._fit import FitResult as FitResult
from ._fit import default_optimizer as default_optimizer
from ._fit import fit as fit
from ._fit import predict as predict
from ._losses import MSE as MSE
from ._losses import SMAPE as SMAPE
from ._losses import Features as Features
from ._losses import Loss as Loss
from ._losses import SpikeCount as SpikeCount
from ._losses import Sum as Sum
from ._losses import VanRossum as VanRossum
from ._losses import soft_spikes as soft_spikes
from ._losses import spike_features as spike_features
from ..params import names as parameter_names
from ._traces import Trace as Trace
from ._traces import as_trace as as_trace
from ._traces import current_density as current_density
from ._traces import read_nwb as read_nwb
from ._transforms import Bounded as Bounded
from ._transforms import sample_starts as sample_starts
