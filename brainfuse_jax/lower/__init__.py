"""Lowering: a model's step or whole unroll exported to StableHLO (`to_stablehlo`, `jax.export`),
as one flat function of named arrays; the runtime-check mode that makes it exportable (`checks`).

```python
import brainfuse_jax as bf
import brainfuse_jax.lower

lowered = bf.lower.to_stablehlo(bf.LIF(), state0, x, dt=1.0, what="step")
lowered.text          # StableHLO (MLIR)
lowered.serialized    # bytes; Lowered.from_serialized(lowered.serialized, lowered.meta) round-trips
lowered.call(*lowered.arguments(x))   # (*new_state, output)
```
"""

from .._validate import check_mode as check_mode
from .._validate import checks as checks
from ._export import to_stablehlo as to_stablehlo
from ._lowered import Lowered as Lowered
from ._names import Spec as Spec

__all__ = ["to_stablehlo", "Lowered", "Spec", "checks", "check_mode"]
from ._fixed import emit_fixed_c as emit_fixed_c
from ._fixed import fixed_point_reference as fixed_point_reference
from ._fixed import QFormat as QFormat
from ._fixed import quantisation_report as quantisation_report
