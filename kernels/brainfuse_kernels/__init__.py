"""brainfuse_kernels: fused Pallas kernels for brainfuse_jax (`simulate(..., backend="pallas")`).

A separate importable package (in `kernels/` of the brainfuse_jax repository, installed with it)
so that a kernel backend can never shadow another project's `kernels` module.
"""

from ._unroll import pallas_unroll as pallas_unroll

__all__ = ["pallas_unroll"]
