"""Ion channels: the `Channel` abstraction and the channel library."""

from ._base import AlphaBeta as AlphaBeta
from ._base import Channel as Channel
from ._base import GateKinetics as GateKinetics
from ._base import InfTau as InfTau
from ._hh import HHK as HHK
from ._hh import HHNa as HHNa
from ._hh import Leak as Leak
