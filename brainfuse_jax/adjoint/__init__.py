"""How `simulate` is differentiated: the memory/compute policy of the backward pass, as a value
with one `unroll` method (one file per adjoint).

- `CheckpointAdjoint(every=K)` (the default): a derived backward pass, the discrete adjoint of the
  step, recomputing blocks of K steps from checkpoints (`_checkpoint.py`).
- `ForwardMode()`: forward sensitivities w.r.t. the model's parameters, no stored states
  (`_forward.py`).
- `DirectAdjoint()`: JAX autodiff through the `lax.scan` (`_direct.py`).

A new adjoint subclasses `AbstractAdjoint` (`_base.py`) and implements `unroll`.
"""

from ._base import AbstractAdjoint as AbstractAdjoint
from ._checkpoint import CheckpointAdjoint as CheckpointAdjoint
from ._direct import DirectAdjoint as DirectAdjoint
from ._forward import ForwardMode as ForwardMode

__all__ = ["AbstractAdjoint", "CheckpointAdjoint", "DirectAdjoint", "ForwardMode"]
