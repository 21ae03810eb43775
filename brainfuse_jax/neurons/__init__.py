"""Point neurons: conductance-based (HH), LIF family and adaptive spiking neurons."""

from ._base import AbstractNeuron as AbstractNeuron
from ._point import HH as HH
from ._point import PointNeuron as PointNeuron
from ._asn import ASN as ASN
from ._lif import ALIF as ALIF
from ._lif import LIF as LIF
from ._lif import RecurrentLIF as RecurrentLIF
from ._iaf import IAFPscDelta as IAFPscDelta
from ._iaf import IAFPscExp as IAFPscExp
