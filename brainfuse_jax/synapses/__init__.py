"""Synapse models and current clamps, shared by cells and (future) networks.

A `PointProcess` contributes a current linear in its node's membrane potential over each step,
`i = g V - g_e` (nA; uS and nA), which an implicit step treats exactly, and advances its own state
after the voltage update (NEURON's `nrn_state`). A `Synapse` is event-driven: its kinetics
(`receive` an event's weight in uS, `conductance`, exact `decay` over dt) do not depend on where
it sits, so a network's projections can drive the same models; on a `Cell` each process sits at
`loc` (a node index or `(section, x)`) and receives the events listed in `event_times` (ms).

| model | NEURON | state |
|---|---|---|
| `IClamp` | `IClamp` (also a train of pulses) | `i` |
| `ExpSyn` | `ExpSyn` | `g`, `i` |
| `Exp2Syn` | `Exp2Syn` | `A`, `B`, `i` |
| `AlphaSyn` | `AlphaSynapse` (event-driven) | `a`, `g`, `i` |
"""

from ._alpha import AlphaSyn as AlphaSyn
from ._base import PointProcess as PointProcess
from ._base import Synapse as Synapse
from ._exponential import Exp2Syn as Exp2Syn
from ._exponential import ExpSyn as ExpSyn
from ._iclamp import IClamp as IClamp
from ._network import CondExp as CondExp
from ._network import CurrAlpha as CurrAlpha
from ._network import CurrExp as CurrExp
from ._network import Delta as Delta
from ._network import NetworkSynapse as NetworkSynapse
from ._network import Port as Port
