"""Fixed-point C for the LIF family (`LIF`, `ALIF`, `RecurrentLIF`): integer membranes in a
configurable Q format, saturating, and a report of the quantisation error against float32.

A value `y` is stored as the integer `round(y * 2^frac_bits)` in `bits` (16 or 32) bits, clamped
to the storage range (saturation, never wrap-around). One step, per neuron, in integers:

    u = held ? v : sat(mul(beta, v) + x [+ sum of W over the neurons that spiked, RecurrentLIF])
    theta = sat(threshold + mul(adapt, a))                       (ALIF; else threshold)
    s = !held && u >= theta
    v = sat(u - s * theta)  (reset "subtract")  or  s ? 0 : u  (reset "zero")
    a = sat(mul(rho, a) + s * 2^frac_bits)                      (ALIF)
    r = s ? round(refractory / dt) : max(r - 1, 0)

with `mul(p, q) = (p * q + 2^(frac_bits - 1)) >> frac_bits` (64-bit product, rounded half up)
and inputs quantised as `sat(round(x * 2^frac_bits))`. `fixed_point_reference` runs exactly this
arithmetic in NumPy (int64), the C program (`emit_fixed_c`) bit for bit the same, and
`quantisation_report` compares it with the float32 model under `simulate` on a given input.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ..neurons import ALIF, LIF, RecurrentLIF
from ..neurons._lif import decay


@dataclasses.dataclass(frozen=True)
class QFormat:
    """Signed fixed point with `frac_bits` fractional bits in `bits` (16 or 32) bits of storage:
    resolution `2^-frac_bits`, range `[-2^(bits-1), 2^(bits-1) - 1] * 2^-frac_bits`."""

    frac_bits: int = 10
    bits: int = 16

    def __post_init__(self):
        if self.bits not in (16, 32):
            raise ValueError(f"bits must be 16 or 32, got {self.bits!r}")
        if not isinstance(self.frac_bits, int) or not 1 <= self.frac_bits < self.bits - 1:
            raise ValueError(f"frac_bits must be an int in [1, {self.bits - 2}] for {self.bits}-bit storage, "
                             f"got {self.frac_bits!r}")

    @property
    def lo(self) -> int:
        return -(2 ** (self.bits - 1))

    @property
    def hi(self) -> int:
        return 2 ** (self.bits - 1) - 1

    @property
    def ctype(self) -> str:
        return f"int{self.bits}_t"

    def quantise(self, x) -> np.ndarray:
        """`sat(round(x * 2^frac_bits))` as int64 (round half away from zero, as C's `llround`)."""
        y = np.asarray(x, np.float64) * 2.0 ** self.frac_bits
        return np.clip(np.sign(y) * np.floor(np.abs(y) + 0.5), self.lo, self.hi).astype(np.int64)


def _params(model, dt: float, q: QFormat) -> dict:
    """The model's parameters as per-neuron int64 arrays (and W for RecurrentLIF)."""
    if type(model) not in (LIF, ALIF, RecurrentLIF):
        raise ValueError(f"fixed point is available for LIF, ALIF and RecurrentLIF, got {type(model).__name__}")
    if model.reset not in ("subtract", "zero"):
        raise ValueError(f"unknown reset {model.reset!r}")
    p = {"beta": q.quantise(np.asarray(model.beta, np.float64)),
         "threshold": q.quantise(np.asarray(model.threshold, np.float64)),
         "n_ref": np.asarray(np.round(np.asarray(model.refractory, np.float64) / dt), np.int64)}
    if isinstance(model, ALIF):
        p["adapt"] = q.quantise(np.asarray(model.adapt, np.float64))
        p["rho"] = q.quantise(np.asarray(decay(dt, jnp.asarray(model.tau_adapt, jnp.float32)), np.float64))
    if isinstance(model, RecurrentLIF):
        p["weight"] = q.quantise(np.asarray(model.weight, np.float64))
    return p


def fixed_point_reference(model, x, dt: float, q: QFormat) -> dict[str, np.ndarray]:
    """Run the fixed-point arithmetic in NumPy on inputs `x` `(T, n)` (units of threshold).
    Returns `spikes` `(T, n)` (0/1) and `v` `(T, n)` (the integer membranes after each step).
    The inputs are float32, as the C program reads them."""
    x = np.asarray(x, np.float32).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (T, n), got {x.shape}")
    p = _params(model, dt, q)
    n = x.shape[1]
    bshape = lambda a: np.broadcast_to(a, (n,)).astype(np.int64)  # noqa: E731
    beta, theta0, n_ref = bshape(p["beta"]), bshape(p["threshold"]), bshape(p["n_ref"])
    half, f = 1 << (q.frac_bits - 1), q.frac_bits
    sat = lambda a: np.clip(a, q.lo, q.hi)  # noqa: E731
    mul = lambda a, b: (a * b + half) >> f  # noqa: E731
    v = np.zeros(n, np.int64)
    a = np.zeros(n, np.int64)
    r = np.zeros(n, np.int64)
    s_prev = np.zeros(n, np.int64)
    xs = q.quantise(x)
    spikes, vs = np.zeros(x.shape, np.uint8), np.zeros(x.shape, np.int64)
    for t in range(x.shape[0]):
        drive = xs[t]
        if "weight" in p:
            drive = drive + (s_prev @ p["weight"])
        held = r > 0
        u = np.where(held, v, sat(mul(beta, v) + drive))
        theta = sat(theta0 + mul(bshape(p["adapt"]), a)) if "adapt" in p else theta0
        s = ((~held) & (u >= theta)).astype(np.int64)
        v = sat(u - s * theta) if model.reset == "subtract" else np.where(s == 1, 0, u)
        if "adapt" in p:
            a = sat(mul(bshape(p["rho"]), a) + s * (1 << f))
        r = np.where(s == 1, n_ref, np.maximum(r - 1, 0))
        s_prev = s
        spikes[t], vs[t] = s, v
    return {"spikes": spikes, "v": vs}


def emit_fixed_c(model, n: int, dt: float, q: QFormat, prefix: str = "bf") -> str:
    """C99 of the fixed-point step and unroll for `n` neurons of `model` (parameters baked in as
    integer constants), with a test `main` under `#ifdef BF_MAIN`: reads `T n` float32 inputs from
    argv[1], writes the spikes (uint8) then the final membranes (int32) to argv[2]."""
    p = _params(model, dt, q)
    arr = lambda name, a: (f"static const int64_t {prefix}_{name}[{a.size}] = {{"  # noqa: E731
                           + ", ".join(str(int(v)) for v in np.ravel(a)) + "};")
    per = {k: np.broadcast_to(p[k], (n,)) for k in ("beta", "threshold", "n_ref", "adapt", "rho") if k in p}
    consts = "\n".join(arr(k, v) for k, v in per.items())
    if "weight" in p:
        consts += "\n" + arr("weight", p["weight"])
    t, f = q.ctype, q.frac_bits
    alif, rec = "adapt" in p, "weight" in p
    reset = "u - s * theta" if model.reset == "subtract" else "s ? 0 : u"
    return f"""/* Fixed-point {type(model).__name__}: {n} neurons, Q{q.bits - 1 - f}.{f} in {t}, saturating.
   Generated by brainfuse_jax.lower (emit_fixed_c); the arithmetic of fixed_point_reference. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>

#define {prefix.upper()}_N {n}
{consts}

static int64_t {prefix}_sat(int64_t x) {{ return x < {q.lo}LL ? {q.lo}LL : (x > {q.hi}LL ? {q.hi}LL : x); }}
static int64_t {prefix}_mul(int64_t a, int64_t b) {{ return (a * b + {1 << (f - 1)}LL) >> {f}; }}
static int64_t {prefix}_quantise(float x) {{ return {prefix}_sat(llround((double)x * {float(2 ** f)!r})); }}

typedef struct {{ {t} v[{n}]; {t} a[{n}]; int32_t r[{n}]; uint8_t s[{n}]; }} {prefix}_state;

void {prefix}_step({prefix}_state* st, const float* x, uint8_t* spikes) {{
  int i;
{"  uint8_t s_prev[" + str(n) + "]; for (i = 0; i < " + str(n) + "; ++i) s_prev[i] = st->s[i];" if rec else ""}
  for (i = 0; i < {n}; ++i) {{
    int64_t drive = {prefix}_quantise(x[i]);
{"    int j; for (j = 0; j < " + str(n) + "; ++j) if (s_prev[j]) drive += " + prefix + "_weight[j * " + str(n) + " + i];" if rec else ""}
    const int held = st->r[i] > 0;
    const int64_t v = st->v[i];
    const int64_t u = held ? v : {prefix}_sat({prefix}_mul({prefix}_beta[i], v) + drive);
    const int64_t theta = {f"{prefix}_sat({prefix}_threshold[i] + {prefix}_mul({prefix}_adapt[i], st->a[i]))" if alif else f"{prefix}_threshold[i]"};
    const int64_t s = (!held && u >= theta) ? 1 : 0;
    st->v[i] = ({t}){prefix}_sat({reset});
{f"    st->a[i] = ({t}){prefix}_sat({prefix}_mul({prefix}_rho[i], st->a[i]) + s * {1 << f}LL);" if alif else ""}
    st->r[i] = s ? (int32_t){prefix}_n_ref[i] : (st->r[i] > 0 ? st->r[i] - 1 : 0);
    st->s[i] = (uint8_t)s;
    spikes[i] = (uint8_t)s;
  }}
}}

void {prefix}_unroll({prefix}_state* st, const float* x, uint8_t* spikes, int n_steps) {{
  int t;
  for (t = 0; t < n_steps; ++t) {prefix}_step(st, x + (long)t * {n}, spikes + (long)t * {n});
}}

#ifdef BF_MAIN
int main(int argc, char** argv) {{
  FILE* in; FILE* out; long size; int n_steps, i; float* x; uint8_t* spikes; int32_t v[{n}];
  {prefix}_state st = {{{{0}}, {{0}}, {{0}}, {{0}}}};
  if (argc != 3) return 2;
  in = fopen(argv[1], "rb"); if (!in) return 3;
  fseek(in, 0, SEEK_END); size = ftell(in); fseek(in, 0, SEEK_SET);
  n_steps = (int)(size / (long)(sizeof(float) * {n}));
  x = (float*)malloc((size_t)size); spikes = (uint8_t*)malloc((size_t)n_steps * {n});
  if (!x || !spikes || fread(x, sizeof(float), (size_t)n_steps * {n}, in) != (size_t)n_steps * {n}) return 4;
  fclose(in);
  {prefix}_unroll(&st, x, spikes, n_steps);
  for (i = 0; i < {n}; ++i) v[i] = (int32_t)st.v[i];
  out = fopen(argv[2], "wb"); if (!out) return 5;
  fwrite(spikes, 1, (size_t)n_steps * {n}, out); fwrite(v, sizeof(int32_t), {n}, out); fclose(out);
  free(x); free(spikes);
  return 0;
}}
#endif
"""


def quantisation_report(model, x, dt: float, q: QFormat) -> dict:
    """Fixed point against float32 on inputs `x` `(T, n)`: the fraction of (step, neuron) spike
    entries that differ, spike counts per neuron (both), and the largest membrane difference over
    the run (threshold units) while the spike trains still agree (after a first spike mismatch
    the trajectories are no longer comparable)."""
    from ..simulate import simulate

    x = np.asarray(x, np.float32)
    ref = fixed_point_reference(model, x, dt, q)
    state0 = model.init_state((1, x.shape[1]), jnp.float32)
    _, rec = simulate(model, state0, jnp.asarray(x)[None], dt, record=("output", "v"))
    s32, v32 = np.asarray(rec["output"][0]), np.asarray(rec["v"][0], np.float64)
    differ = ref["spikes"] != (s32 > 0)
    first = int(np.argmax(differ.any(axis=1))) if differ.any() else x.shape[0]
    dv = np.abs(ref["v"][:first] * 2.0 ** -q.frac_bits - v32[:first])
    return {"q": f"Q{q.bits - 1 - q.frac_bits}.{q.frac_bits} (int{q.bits})", "steps": int(x.shape[0]),
            "spike_mismatch_fraction": float(differ.mean()), "first_mismatch_step": first if differ.any() else None,
            "spike_counts_fixed": ref["spikes"].sum(axis=0), "spike_counts_float32": (s32 > 0).sum(axis=0),
            "max_membrane_error": float(dv.max()) if dv.size else 0.0,
            "resolution": 2.0 ** -q.frac_bits, "range": (q.lo * 2.0 ** -q.frac_bits, q.hi * 2.0 ** -q.frac_bits),
            "saturated": bool(np.any((ref["v"] <= q.lo) | (ref["v"] >= q.hi)))}


__all__ = ["QFormat", "emit_fixed_c", "fixed_point_reference", "quantisation_report"]
