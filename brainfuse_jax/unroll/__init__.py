"""The one loop core: every adjoint and backend unrolls time through these pieces.

- `_scan.py`: the forward loop in blocks of K steps with a tail, truncation and records
  (`scan_unroll`), and the block helpers shared with `CheckpointAdjoint`'s backward pass.
- `_records.py`: what is recorded (`Total`, state paths, callables).
- `_inputs.py`: input shape checks and inputs held constant (`n_steps=`).
"""

from ._inputs import _HeldInput as _HeldInput
from ._inputs import _held_inputs as _held_inputs
from ._inputs import _check_inputs as _check_inputs
from ._inputs import float_inputs as float_inputs
from ._records import _entry_fn as _entry_fn
from ._records import _normalize_record as _normalize_record
from ._records import _select as _select
from ._records import RecordSpec as RecordSpec
from ._records import Total as Total
from ._scan import _slice_time as _slice_time
from ._scan import _swap as _swap
from ._scan import block_size as block_size
from ._scan import scan_unroll as scan_unroll
