"""Point neurons: conductance-based (HH), LIF family and adaptive spiking neurons."""

from ._base import AbstractNeuron as AbstractNeuron
from ._point import HH as HH
from ._point import PointNeuron as PointNeuron
