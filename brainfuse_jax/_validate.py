"""Input validation shared by every public function.

Checks run eagerly (a Python `ValueError`/`TypeError` naming the argument) whenever the value is
concrete, and as runtime checks (`error_if`) when it is a tracer inside `jit`. Every runtime
check of the library goes through `error_if`, whose behaviour is the *check mode* (`checks`):
`"raise"` (default, `eqx.error_if`: an error when the compiled code runs) or `"nan"` (the
checked values become NaN where the check fails: no host callback, so `jax.export` can
serialise the code).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

CHECK_MODES = ("raise", "nan")
# The check mode is part of jit's cache key (a user context): code traced in one mode is never
# reused in the other. (A JAX without `jax.make_user_context`: the caches are cleared on a change.)
_make_context = getattr(jax, "make_user_context", None)
_MODE = _make_context("raise") if _make_context is not None else None
_FALLBACK_MODE = ["raise"]


def check_mode() -> str:
    """The current check mode, `"raise"` (default) or `"nan"` (see `checks`)."""
    return _MODE.value if _MODE is not None else _FALLBACK_MODE[-1]


@contextlib.contextmanager
def checks(mode: str) -> Iterator[None]:
    """Context manager: the library's runtime checks (NaN/inf inputs, parameters out of their
    domain, ...) in `mode` inside the `with` block (this thread).

    - `"raise"` (default): `eqx.error_if`, an error raised when the compiled code runs.
    - `"nan"`: no error and no host callback; the checked values become NaN where the check
      fails, so the run's state turns NaN instead of producing a plausible result. The mode
      `jax.export` needs (`brainfuse_jax.lower.to_stablehlo` uses it).

    Functions traced (jit) in one mode are retraced in the other. Checks of integer-only values
    (class labels, a network's step counter) have no NaN: traced in `"nan"` mode they raise a
    `ValueError` at trace time.
    """
    if mode not in CHECK_MODES:
        raise ValueError(f"mode must be one of {CHECK_MODES}, got {mode!r}")
    if _MODE is not None:
        with _MODE(mode):
            yield
        return
    changed = mode != _FALLBACK_MODE[-1]
    _FALLBACK_MODE.append(mode)
    if changed:
        jax.clear_caches()
    try:
        yield
    finally:
        _FALLBACK_MODE.pop()
        if changed:
            jax.clear_caches()


def error_if(x, pred, msg: str):
    """`x` (a pytree of arrays) guarded by the runtime check "`pred` is never true", in the
    current check mode (`checks`): `eqx.error_if(x, pred, msg)` in `"raise"` mode; in `"nan"`
    mode every floating-point leaf of `x` is NaN where `pred` (broadcast to the leaf's shape;
    where it does not broadcast, anywhere) is true, integer and boolean leaves pass unchanged.
    The one entry point for the library's runtime checks."""
    mode = check_mode()
    if mode == "raise":
        return eqx.error_if(x, pred, msg)
    leaves = jax.tree.leaves(x)
    if not any(jnp.issubdtype(jnp.result_type(a), jnp.inexact) for a in leaves):
        raise ValueError(f"check mode {mode!r} cannot mark a failed check on integer values with NaN "
                         f"(the check: {msg}); pass concrete values, or trace in mode 'raise'")
    pred = jnp.asarray(pred)

    def poison(a):
        a = jnp.asarray(a)
        if not jnp.issubdtype(a.dtype, jnp.inexact):
            return a
        try:
            fits = np.broadcast_shapes(pred.shape, a.shape) == a.shape
        except ValueError:
            fits = False
        bad = jnp.broadcast_to(pred, a.shape) if fits else jnp.broadcast_to(jnp.any(pred), a.shape)
        return jnp.where(bad, jnp.asarray(jnp.nan, a.dtype), a)
    return jax.tree.map(poison, x)


def is_concrete(x) -> bool:
    """True if `x` holds a value now (not a tracer under jit/vmap/grad)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(x))


def as_float_array(x, name: str):
    """`x` as a floating-point JAX array; `TypeError` naming `name` otherwise."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {type(x).__name__}")
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"{name} must be a number or an array of numbers, got {type(x).__name__}") from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_positive(x, name: str, unit: str = ""):
    """Raise `ValueError` unless every element of `x` is > 0 (eager) / add a runtime check (jit)."""
    return _check(x, lambda a: a > 0, name, f"> 0{(' ' + unit) if unit else ''}")


def check_nonnegative(x, name: str, unit: str = ""):
    """Raise `ValueError` unless every element of `x` is >= 0."""
    return _check(x, lambda a: a >= 0, name, f">= 0{(' ' + unit) if unit else ''}")


def check_finite(x, name: str):
    """Raise `ValueError` if `x` holds NaN or inf."""
    return _check(x, lambda a: (np if isinstance(a, np.ndarray) else jnp).isfinite(a), name,
                  "finite (no NaN or inf)")


def check_finite_block(tree, name: str = "inputs"):
    """`tree` (arrays), with a runtime error (`error_if`) if any holds NaN or inf. For the
    block of inputs a time loop is about to read: checked there, in cache, a whole-array check
    would be one more pass over the inputs and would make XLA materialise inputs built by
    broadcasting inside `jit` (together ~25% of an HH run)."""
    def check(a):
        if not jnp.issubdtype(a.dtype, jnp.inexact):
            return a
        # x * 0 is 0 for finite x and NaN for NaN / inf: one fused sum tests the whole block
        return error_if(a, jnp.sum(a * 0) != 0, f"{name} must be finite (no NaN or inf)")
    return jax.tree.map(check, tree)


def check_in_range(x, name: str, low: float, high: float, *, high_open: bool = True):
    """Raise `ValueError` unless low <= x < high (or <= high)."""
    bracket = ")" if high_open else "]"
    if high_open:
        ok = lambda a: (a >= low) & (a < high)  # noqa: E731
    else:
        ok = lambda a: (a >= low) & (a <= high)  # noqa: E731
    return _check(x, ok, name, f"in [{low}, {high}{bracket}")


def _check(x, ok, name, expected):
    if x is None:
        return x
    if is_concrete(x):
        arr = np.asarray(x)
        good = np.asarray(ok(arr))
        if not good.all():
            bad = arr[~good] if arr.ndim else arr
            example = np.ravel(bad)[0].item()
            raise ValueError(f"{name} must be {expected}; got {example!r}"
                             + (f" ({int((~good).sum())} of {arr.size} elements)" if arr.size > 1 else ""))
        return x
    return error_if(x, ~ok(x), f"{name} must be {expected}")


def check_dt(dt):
    """Validate a time step in ms: a positive finite scalar. A Python number is checked now, also
    when called under jit (where `jnp.asarray` would turn it into a tracer checked at every step)."""
    if isinstance(dt, (int, float, np.floating, np.integer)) and not isinstance(dt, (bool, np.bool_)):
        check_positive(check_finite(np.asarray(float(dt)), "dt"), "dt", "ms")
        return jnp.asarray(float(dt))
    arr = as_float_array(dt, "dt")
    if arr.ndim != 0:
        raise ValueError(f"dt must be a scalar time step in ms, got shape {arr.shape}")
    arr = check_finite(arr, "dt")
    return check_positive(arr, "dt", "ms")


def param(default, name: str, unit: str = "", *, low: str | None = None):
    """An `eqx.field` for a floating-point parameter, validated by its converter.

    The converter runs when the module is built, so a bad value raises `ValueError` at once, and a
    module built under `jit`/`vmap` carries an `eqx.error_if` check instead (a check in
    `__check_init__` could not: its result would be discarded). `low` is `"positive"`,
    `"nonnegative"` or None; values must always be finite.
    """

    def convert(x):
        arr = as_float_array(x, name)
        arr = check_finite(arr, name)
        if low == "positive":
            arr = check_positive(arr, name, unit)
        elif low == "nonnegative":
            arr = check_nonnegative(arr, name, unit)
        return arr

    return eqx.field(default=default, converter=convert, metadata={"unit": unit, "low": low, "name": name})
