"""Lowering: a model's step to StableHLO (`jax.export`) and from StableHLO to C99 (`emit_c`)."""

from ._emit_c import FLAGS as FLAGS
from ._emit_c import SUPPORTED_OPS as SUPPORTED_OPS
from ._emit_c import CField as CField
from ._emit_c import CProgram as CProgram
from ._emit_c import emit_c as emit_c
