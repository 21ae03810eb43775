"""brainfuse_jax: differentiable biophysical and spiking neuron simulation in JAX.

Every model is an `equinox.Module` (a pytree of parameters) with pure `init_state` / `step`
methods; `simulate` unrolls any of them over time with `lax.scan`.
"""

from . import channels as channels
from . import surrogate as surrogate
from .channels import AlphaBeta as AlphaBeta
from .channels import Channel as Channel
from .channels import HHK as HHK
from .channels import HHNa as HHNa
from .channels import InfTau as InfTau
from .channels import Leak as Leak
from .neurons import HH as HH
from .neurons import AbstractNeuron as AbstractNeuron
from .neurons import PointNeuron as PointNeuron
from .simulate import Total as Total
from .simulate import simulate as simulate
from .surrogate import Surrogate as Surrogate

__version__ = "0.1.0"
from .neurons import ALIF as ALIF
from .neurons import ASN as ASN
from .neurons import LIF as LIF
from .neurons import RecurrentLIF as RecurrentLIF
