"""A small, optional training loop: optax, a tqdm progress bar, evaluation each epoch and
checkpoints with `equinox.tree_serialise_leaves`."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import PRNGKeyArray, PyTree

from ._checks import check_positive_int
from ._containers import with_execution
from ._metrics import _unhealthy, grad_norms, has_activity, SNNHealthWarning, snn_metrics
from ._probes import _check_fraction


def save_checkpoint(path: str | os.PathLike, tree: PyTree) -> None:
    """Write the array leaves of `tree` (a model, or `(model, opt_state, ...)`) to `path` with
    `eqx.tree_serialise_leaves`; the file is replaced atomically."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    eqx.tree_serialise_leaves(tmp, tree)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, like: PyTree) -> PyTree:
    """Read a checkpoint written by `save_checkpoint` into a pytree of the same structure as
    `like` (e.g. a freshly built model), with `eqx.tree_deserialise_leaves`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    return eqx.tree_deserialise_leaves(path, like)


def _check_health_data(data, x):
    arr = np.asarray(data) if not isinstance(data, (tuple, list, dict, str)) else None
    if arr is None or arr.ndim != x.ndim or arr.shape[1:] != x.shape[1:] or len(arr) == 0:
        want = ", ".join(map(str, x.shape[1:]))
        raise ValueError(f"health_data must be inputs shaped like the training data's x, (N, {want}), "
                         f"got {type(data).__name__ if arr is None else arr.shape}")
    return arr


def _check_data(data, name):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = data
    if np.ndim(x) < 2:
        raise ValueError(f"{name}[0] (x) must have shape (N, T, ...) = (samples, time, ...), got {np.shape(x)}")
    if np.shape(y)[:1] != np.shape(x)[:1]:
        raise ValueError(f"{name}: x has {np.shape(x)[0]} samples but y has shape {np.shape(y)}")
    return np.asarray(x), np.asarray(y)


def evaluate(model, metric_fn: Callable, data, batch_size: int = 256) -> dict[str, float]:
    """Average `metric_fn(model, x, y) -> dict of scalars` over `data = (x, y)` in batches
    (weighted by batch size)."""
    x, y = _check_data(data, "data")
    batch_size = check_positive_int(batch_size, "batch_size")
    fn = eqx.filter_jit(metric_fn)
    sums: dict[str, float] = {}
    for i in range(0, len(y), batch_size):
        out = fn(model, jnp.asarray(x[i:i + batch_size]), jnp.asarray(y[i:i + batch_size]))
        nb = len(y[i:i + batch_size])
        for k, v in out.items():
            sums[k] = sums.get(k, 0.0) + float(v) * nb
    return {k: v / len(y) for k, v in sums.items()}


def train(
    model: PyTree,
    loss_fn: Callable[[PyTree, Any, Any], Any],
    data: tuple[Any, Any],
    *,
    optimizer: optax.GradientTransformation,
    epochs: int,
    batch_size: int,
    key: PRNGKeyArray,
    eval_fn: Callable[[PyTree, Any, Any], dict] | None = None,
    eval_data: tuple[Any, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    filter_spec: Callable = eqx.is_inexact_array,
    adjoint: Any = None,
    backend: Any = None,
    health: bool | None = None,
    health_data: Any = None,
    health_threshold: float = 0.9,
) -> tuple[PyTree, list[dict]]:
    """Minibatch training with optax.

    **Arguments:**
    - `model`: an equinox model; its leaves selected by `filter_spec` (default: every float
      array) are trained.
    - `loss_fn(model, x, y) -> loss` (a scalar), or `-> (loss, aux)` with a dict `aux` of scalars
      that is averaged into the epoch's history.
    - `data`: `(x, y)` NumPy/JAX arrays with samples on axis 0. Each epoch visits a fresh
      permutation (drawn from `key`) in batches of `batch_size` (a last incomplete batch is
      dropped, so one compiled step serves every batch).
    - `optimizer`: an `optax.GradientTransformation`; `epochs`: number of epochs.
    - `eval_fn(model, x, y) -> dict of scalars` evaluated on `eval_data` after every epoch.
    - `checkpoint`: a file path: `(model, opt_state, epoch)` is saved there after every epoch
      (`save_checkpoint`); with `resume=True` training continues from it if it exists.
    - `progress`: show a tqdm progress bar over batches.
    - `adjoint`, `backend`: set on every spiking layer of `model` (`with_execution`) and so passed
      on to `simulate` in each training and evaluation step, e.g. `adjoint=bf.DirectAdjoint()`
      (faster backward pass for short sequences) or `bf.CheckpointAdjoint(every=K)`; None
      (default) keeps the layers' own (simulate's defaults unless set). The returned model keeps
      them. `ValueError` if given for a model without spiking layers.
    - `health`: log the network's health per epoch (`snn_metrics`) and warn
      (`SNNHealthWarning`, naming the layer) when a layer's `dead` or `saturated` fraction reaches
      `health_threshold`, once per layer and condition (checked before the first epoch, on the
      initialisation, and after every epoch). None (default): on where `snn_metrics`
      sees the layers' activity (a `Sequential`, a spiking layer, a model taking
      `return_details=True`), gradient norms only otherwise; True: as None but `ValueError`
      if the activity cannot be seen; False: off (nothing extra is computed).
    - `health_data`: inputs `(N, T, ...)` the activity is measured on after every epoch, in one
      batch (default: the first `batch_size` training samples, the same every epoch).
    - `health_threshold`: fraction of a layer's neurons in (0, 1] (default 0.9).

    **Returns:** `(model, history)`: one dict per epoch with `epoch`, `loss`, `time_s` (wall time
    of the epoch's training steps, s), aux means, `eval_*` metrics and, with `health`,
    `"health"`: `{layer name: {metric: float}}`, the activity of `snn_metrics` on `health_data`
    after the epoch (`rate`, `rate_hz`, `sparsity`, `dead`, `saturated`, `v_mean`, `v_var`,
    `v_std`, `v_min`, `v_max`) and `grad_norm`, the layer's gradient norm averaged over the
    epoch's training steps.
    """
    x, y = _check_data(data, "data")
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    if batch_size > len(y):
        raise ValueError(f"batch_size ({batch_size}) must be <= the number of samples ({len(y)})")
    if (eval_fn is None) != (eval_data is None):
        raise ValueError("pass eval_fn and eval_data together (or neither)")
    if health not in (None, True, False):
        raise TypeError(f"health must be None, True or False, got {health!r}")
    health_threshold = _check_fraction(health_threshold, "health_threshold")
    activity = health is not False and has_activity(model)
    if health is True and not activity:
        raise ValueError(f"health=True: snn_metrics cannot see the layers' activity of this {type(model).__name__} "
                         "(pass a Sequential, a spiking layer or a model taking return_details=True)")
    hx = health_fn = None
    if activity:
        hx = x[:batch_size] if health_data is None else _check_health_data(health_data, x)
        health_fn = eqx.filter_jit(snn_metrics)
    model = with_execution(model, adjoint=adjoint, backend=backend)
    params, static = eqx.partition(model, filter_spec)
    opt_state = optimizer.init(params)
    start = 0
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        model, opt_state, done = load_checkpoint(checkpoint, (model, opt_state, jnp.asarray(0)))
        start = int(done)

    @eqx.filter_jit
    def step(model, opt_state, xb, yb):
        params, static = eqx.partition(model, filter_spec)

        def f(p):
            out = loss_fn(eqx.combine(p, static), xb, yb)
            return out if isinstance(out, tuple) else (out, {})

        (loss, aux), grads = jax.value_and_grad(f, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        norms = grad_norms(grads) if health is not False else {}
        return eqx.combine(optax.apply_updates(params, updates), static), opt_state, loss, aux, norms

    history = []
    warned: set[tuple[str, str]] = set()
    n_batches = len(y) // batch_size
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    if activity:  # a network dead or saturated from its initialisation: say so before training
        _warn(_health(model, hx, health_fn, []), health_threshold, warned, f"before epoch {start + 1}")
    for epoch in range(start, epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, epoch), len(y)))
        batches = range(n_batches)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False) if (progress and tqdm) else batches
        t0 = time.perf_counter()
        losses, auxes, norms = [], [], []
        for b in bar:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            model, opt_state, loss, aux, gn = step(model, opt_state, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
            losses.append(loss)
            auxes.append(aux)
            norms.append(gn)
        losses = [float(v) for v in losses]  # syncs the device
        elapsed = time.perf_counter() - t0
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "time_s": elapsed}
        for k in (auxes[0] if auxes else {}):
            rec[k] = float(np.mean([float(a[k]) for a in auxes]))
        if eval_fn is not None:
            rec.update({f"eval_{k}": v for k, v in evaluate(model, eval_fn, eval_data).items()})
        if health is not False:
            rec["health"] = _health(model if activity else None, hx, health_fn, norms)
            _warn(rec["health"], health_threshold, warned, f"epoch {epoch + 1}")
        history.append(rec)
        if progress and tqdm:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()
                                if k != "health"))
        if checkpoint is not None:
            save_checkpoint(checkpoint, (model, opt_state, jnp.asarray(epoch + 1)))
    return model, history


def _health(model, hx, health_fn, norms: list[dict]) -> dict[str, dict[str, float]]:
    """The epoch's health record: activity on the monitored batch, gradient norms averaged over
    the epoch's steps."""
    out = {} if model is None else {name: {k: float(v) for k, v in m.items()}
                                    for name, m in health_fn(model, jnp.asarray(hx)).items()}
    for name in (norms[0] if norms else {}):
        out.setdefault(name, {})["grad_norm"] = float(np.mean([float(gn[name]) for gn in norms]))
    return out


def _warn(health: dict, threshold: float, warned: set, when: str) -> None:
    """`SNNHealthWarning` for every dead/saturated layer, once per layer and condition per run."""
    for name, cond, msg in _unhealthy(health, threshold):
        if (name, cond) not in warned:
            warned.add((name, cond))
            warnings.warn(f"train, {when}: {msg}", SNNHealthWarning, stacklevel=3)
