"""brainfuse_jax: differentiable biophysical and spiking neuron simulation in JAX.

Every model is an `equinox.Module` (a pytree of parameters) with pure `init_state` / `step`
methods; `simulate` unrolls any of them over time with `lax.scan`.
"""

from . import adjoint as adjoint
from . import backends as backends
from . import channels as channels
from . import fit as fit
from . import integrate as integrate
from . import lower as lower
from . import morphology as morphology
from . import network as network
from . import nn as nn
from . import params as params
from . import surrogate as surrogate
from . import synapses as synapses

from .sweep import fi_curve as fi_curve
from .sweep import plot_rate_map as plot_rate_map
from .sweep import rate_map as rate_map
from .sweep import RateMap as RateMap
from .sweep import rheobase as rheobase
from .sweep import Run as Run
from .sweep import spike_rate as spike_rate
from .sweep import sweep as sweep  # the function (it shadows the package name; see sweep/__init__)
from .adjoint import AbstractAdjoint as AbstractAdjoint
from .adjoint import CheckpointAdjoint as CheckpointAdjoint
from .adjoint import DirectAdjoint as DirectAdjoint
from .adjoint import ForwardMode as ForwardMode
from .backends import AbstractBackend as AbstractBackend
from .backends import NativeCPU as NativeCPU
from .backends import Pallas as Pallas
from .backends import XLA as XLA
from .channels import AlphaBeta as AlphaBeta
from .channels import CalciumPool as CalciumPool
from .channels import Channel as Channel
from .channels import HHK as HHK
from .channels import HHNa as HHNa
from .channels import InfTau as InfTau
from .channels import Instantaneous as Instantaneous
from .channels import Leak as Leak
from .morphology import Cell as Cell
from .morphology import CompartmentTree as CompartmentTree
from .morphology import hines_solve as hines_solve
from .morphology import Morphology as Morphology
from .morphology import read_swc as read_swc
from .neurons import AbstractNeuron as AbstractNeuron
from .neurons import ALIF as ALIF
from .neurons import ASN as ASN
from .neurons import HH as HH
from .neurons import IAFPscDelta as IAFPscDelta
from .neurons import IAFPscExp as IAFPscExp
from .neurons import LIF as LIF
from .neurons import PointNeuron as PointNeuron
from .neurons import RecurrentLIF as RecurrentLIF
from .neurons._point import Pospischil as Pospischil
from .neurons._point import PospischilFS as PospischilFS
from .neurons._point import PospischilIB as PospischilIB
from .neurons._point import PospischilLTS as PospischilLTS
from .neurons._point import PospischilRS as PospischilRS
from .simulate import simulate as simulate
from .simulate import Total as Total
from .surrogate import Surrogate as Surrogate
from .synapses import AlphaSyn as AlphaSyn
from .synapses import CondExp as CondExp
from .synapses import CurrAlpha as CurrAlpha
from .synapses import CurrExp as CurrExp
from .synapses import Delta as Delta
from .synapses import Exp2Syn as Exp2Syn
from .synapses import ExpSyn as ExpSyn
from .synapses import IClamp as IClamp
from .synapses import Port as Port
from .network import Network as Network
from .network import Population as Population
from .network import Projection as Projection

__version__ = "0.1.0"
