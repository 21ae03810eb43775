"""Ion channels: the `Channel` abstraction and the channel library."""

from ._base import AlphaBeta as AlphaBeta
from ._base import Channel as Channel
from ._base import GateKinetics as GateKinetics
from ._base import InfTau as InfTau
from ._hh import HHK as HHK
from ._hh import HHNa as HHNa
from ._hh import Leak as Leak
from ._base import Instantaneous as Instantaneous
from ._calcium import FARADAY as FARADAY
from ._calcium import GAS_CONSTANT as GAS_CONSTANT
from ._calcium import CalciumPool as CalciumPool
from ._calcium import nernst as nernst
from ._pospischil import PospischilCaL as PospischilCaL
from ._pospischil import PospischilCaT as PospischilCaT
from ._pospischil import PospischilKd as PospischilKd
from ._pospischil import PospischilM as PospischilM
from ._pospischil import PospischilNa as PospischilNa
from ._potassium import ConnorStevensKA as ConnorStevensKA
from ._potassium import DestexheSK as DestexheSK
from ._potassium import MoczydlowskiLatorreBK as MoczydlowskiLatorreBK
from ._registry import LIBRARY as LIBRARY
from ._registry import get as get
from ._thalamic import DestexheCaT as DestexheCaT
from ._thalamic import HuguenardMcCormickIh as HuguenardMcCormickIh
from .._validate import param as param
