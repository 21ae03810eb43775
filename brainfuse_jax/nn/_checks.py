"""Eager input checks for the `nn` layers, losses and data (messages name the argument)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._validate import error_if, is_concrete


def check_sequence(x, name: str = "x", features: int | tuple[int, ...] | None = None):
    """`x` must be a numeric array `(B, T, *features)`; returns it as a JAX array.

    `features`: the expected trailing shape (an int for `(B, T, features)`), or None for any
    trailing shape of at least one axis.
    """
    if isinstance(x, (str, bytes)) or x is None or isinstance(x, (dict, list, tuple)):
        raise TypeError(f"{name} must be an array of shape (B, T, features), got {type(x).__name__}")
    shape = tuple(jnp.shape(x))
    dtype = jnp.result_type(x)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")
    want = None if features is None else ((features,) if isinstance(features, int) else tuple(features))
    n_rest = 1 if want is None else len(want)
    if len(shape) < 2 + n_rest:
        hint = (f"(B, T, {', '.join(map(str, want))})" if want is not None else "(B, T, features)")
        raise ValueError(f"{name} must have shape {hint} = (batch, time, features); got {shape}"
                         + (" (missing time axis? add one with x[:, None] for a single frame, or "
                            "x[..., None] for a scalar per step)" if len(shape) == 1 + n_rest else ""))
    if want is not None and shape[2:] != want:
        raise ValueError(f"{name} has {shape[2:]} features per step, expected {want} "
                         f"(shape (B, T, {', '.join(map(str, want))})); got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one time step; got shape {shape}")
    return jnp.asarray(x)


def check_labels(labels, name: str, n_classes: int, batch: int | None = None):
    """Integer class labels `(B,)` in [0, n_classes); eager `ValueError`/`TypeError` when concrete,
    a runtime check (`error_if`) under `jit`."""
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"{name} must be an integer array of shape (B,), got {type(labels).__name__}")
    arr = jnp.asarray(labels) if not isinstance(labels, np.ndarray) else labels
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{name} must have an integer dtype (class indices), got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (B,), got {tuple(arr.shape)}")
    if batch is not None and arr.shape[0] != batch:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the predictions have batch size {batch}")
    if is_concrete(arr):
        a = np.asarray(arr)
        bad = (a < 0) | (a >= n_classes)
        if bad.any():
            raise ValueError(f"{name} must be in [0, {n_classes}) (number of classes = {n_classes}); "
                             f"got {a[bad][0]} ({int(bad.sum())} of {a.size} out of range)")
        return jnp.asarray(a)
    return error_if(arr, (arr < 0) | (arr >= n_classes), f"{name} must be in [0, {n_classes})")


def check_positive_int(value, name: str, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{(' (' + what + ')') if what else ''}, got {value!r}")
    return int(value)
