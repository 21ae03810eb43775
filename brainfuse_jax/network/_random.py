"""Counter-based random numbers keyed by (seed, stream, batch row, step, neuron id): Philox-4x32-10
(Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3", SC'11; the generator of
Random123, curand and NumPy's `Philox`).

A network draws one uniform number per neuron per step for each Poisson drive. JAX's `threefry`
costs ~7 ns per number on this CPU (XLA runs it poorly vectorised); Philox written with 32-bit
integer operations that XLA fuses costs ~0.1-0.3 ns. Because every number is a function of its
neuron's global id and the step, a network split over devices draws exactly what the whole network
draws.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, UInt

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK16 = np.uint32(0xFFFF)


def _mulhilo(a: UInt[Array, "*n"], b: int):
    """High and low 32-bit words of the 64-bit product `a * b` (uint32 arithmetic only: JAX has
    no uint64 without x64)."""
    b = np.uint32(b)
    bl, bh = b & _MASK16, b >> np.uint32(16)
    al, ah = a & _MASK16, a >> np.uint32(16)
    ll, hl, lh, hh = al * bl, ah * bl, al * bh, ah * bh
    cross = (ll >> np.uint32(16)) + (hl & _MASK16) + lh
    return hh + (hl >> np.uint32(16)) + (cross >> np.uint32(16)), a * b


def philox4x32(counter, key) -> tuple[UInt[Array, "*n"], ...]:
    """Philox-4x32-10 of a counter (4 uint32 arrays, broadcast together) under a key (2 uint32)."""
    c0, c1, c2, c3 = (jnp.asarray(c, jnp.uint32) for c in counter)
    c0, c1, c2, c3 = jnp.broadcast_arrays(c0, c1, c2, c3)
    k0, k1 = (jnp.asarray(k, jnp.uint32) for k in key)
    for r in range(10):
        if r:
            k0, k1 = k0 + np.uint32(_W0), k1 + np.uint32(_W1)
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def uniforms(seed: int, stream: int, row, step, ids: UInt[Array, " n"], dtype) -> Float[Array, " n"]:
    """One uniform number in [0, 1) per neuron id of `ids` for batch row `row` and step `step`
    (scalars, may be traced): 24 random bits in float32, 53 in float64."""
    key = (np.uint32(seed & 0xFFFFFFFF), np.uint32(((seed >> 32) ^ (stream * 0x9E3779B9)) & 0xFFFFFFFF))
    ids = jnp.asarray(ids, jnp.uint32)
    w = philox4x32((ids, jnp.asarray(step).astype(jnp.uint32), jnp.asarray(row).astype(jnp.uint32),
                    np.uint32(stream)), key)
    if jnp.dtype(dtype) == jnp.float64:
        hi = (w[0] >> np.uint32(5)).astype(dtype)  # 27 bits
        lo = (w[1] >> np.uint32(6)).astype(dtype)  # 26 bits
        return (hi * 67108864.0 + lo) * (1.0 / 9007199254740992.0)
    return (w[0] >> np.uint32(8)).astype(dtype) * np.float32(1.0 / 16777216.0)
