"""Lowering (docs/lowering.md): a model's step or whole unroll exported to StableHLO
(`to_stablehlo`, `jax.export`) as one flat function of named arrays, a stateless equinox module
such as a trained `nn` classifier likewise (`export_module`), with the runtime-check mode
that makes it exportable (`checks`); StableHLO translated to dependency-free C99 (`emit_c`); and
fixed-point C for the LIF family (`emit_fixed_c`, `quantisation_report`).

```python
import brainfuse_jax as bf

lowered = bf.lower.to_stablehlo(bf.LIF(), state0, x, dt=1.0, what="step")
lowered.text          # StableHLO (MLIR)
lowered.serialized    # bytes; Lowered.from_serialized(lowered.serialized, lowered.meta) round-trips
lowered.call(*lowered.arguments(x))   # (*new_state, output)
program = bf.lower.emit_c(lowered)    # C99: program.write(dir), program.compile(dir), program.run(x)
```
"""

from .._validate import check_mode as check_mode
from .._validate import checks as checks
from ._emit_c import CField as CField
from ._emit_c import CProgram as CProgram
from ._emit_c import emit_c as emit_c
from ._emit_c import FLAGS as FLAGS
from ._emit_c import SUPPORTED_OPS as SUPPORTED_OPS
from ._export import export_module as export_module
from ._export import to_stablehlo as to_stablehlo
from ._fixed import emit_fixed_c as emit_fixed_c
from ._fixed import fixed_point_reference as fixed_point_reference
from ._fixed import QFormat as QFormat
from ._fixed import quantisation_report as quantisation_report
from ._lowered import Lowered as Lowered
from ._names import Spec as Spec
