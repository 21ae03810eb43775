"""Network health: `snn_metrics` (activity and gradient norm of every layer of a model), the
per-layer gradient norms `grad_norms`, and `health_warnings`, which `train` turns into
`SNNHealthWarning`s when a layer is dead or saturated."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ._base import _stack, AbstractSpikingLayer
from ._probes import _check_fraction, layer_metrics


class SNNHealthWarning(UserWarning):
    """A layer of a spiking network is dead or saturated (see `snn_metrics`, `train(health=...)`);
    filter with `warnings.simplefilter("ignore", SNNHealthWarning)`."""


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _is_spiking(layer) -> bool:
    """A spiking layer for the metrics: an `AbstractSpikingLayer`, or any module whose call takes
    `return_state=True` and returns `(spikes, {"v": membrane, ...})` (e.g. a convolutional layer)."""
    return isinstance(layer, AbstractSpikingLayer) or (isinstance(layer, eqx.Module) and callable(layer)
                                                       and _accepts(layer.__call__, "return_state"))


def _children(tree) -> list[tuple[str, Any]]:
    """The layers of a model (or of its gradient pytree, which has the same structure), named as
    `Sequential(return_details=True)` names them: `"<index>.<ClassName>"` in a stack
    (`"<i>.<j>.<ClassName>"` in a nested one), the class name for a single layer, the field names
    of any other equinox module, `"model"` otherwise."""
    layers = _stack(tree)
    if layers is not None:
        out = []
        for i, layer in enumerate(layers):
            inner = _stack(layer)
            if inner is not None:
                out += [(f"{i}.{name}", sub) for name, sub in _children(layer)]
            else:
                out.append((f"{i}.{type(layer).__name__}", layer))
        return out
    if _is_spiking(tree):
        return [(type(tree).__name__, tree)]
    if isinstance(tree, eqx.Module):
        return [(f.name, getattr(tree, f.name)) for f in dataclasses.fields(tree)
                if not f.metadata.get("static", False)]
    return [("model", tree)]


def _norm(tree) -> Float[Array, ""] | None:
    leaves = [a for a in jax.tree.leaves(tree) if eqx.is_inexact_array(a)]
    if not leaves:
        return None
    return jnp.sqrt(sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in leaves))


def grad_norms(grads: PyTree) -> dict[str, Float[Array, ""]]:
    """The Euclidean norm of the gradient of every layer with parameters.

    **Arguments:**
    - `grads`: a gradient pytree with the model's structure (e.g. `eqx.filter_grad(loss)(model,
      x, y)`; None leaves, for what is not differentiated, are skipped).

    **Returns:** `{layer name: norm}` for the layers holding at least one float array, named as
    in `snn_metrics` (`"<index>.<ClassName>"` in a `Sequential`).
    """
    out = {}
    for name, sub in _children(grads):
        norm = _norm(sub)
        if norm is not None:
            out[name] = norm
    return out


def _walk(model, x, prefix: str, saturation: float, out: dict):
    """Apply a stack layer by layer, recording the activity of its spiking layers; returns its output."""
    for i, layer in enumerate(_stack(model)):
        name = f"{prefix}{i}.{type(layer).__name__}"
        if _stack(layer) is not None:
            x = _walk(layer, x, f"{prefix}{i}.", saturation, out)
        elif _is_spiking(layer):
            x = _spiking(layer, x, name, saturation, out)
        else:
            x = layer(x)
    return x


def _spiking(layer, x, name: str, saturation: float, out: dict):
    s, info = layer(x, return_state=True)
    out[name] = layer_metrics(s, info.get("v"), getattr(layer, "frame_ms", None), saturation)
    return s


def has_activity(model) -> bool:
    """Whether `snn_metrics` can see the activity of `model`'s layers: a spiking layer, a stack
    holding one, or a model whose call takes `return_details=True`."""
    if _is_spiking(model):
        return True
    layers = _stack(model)
    if layers is not None:
        return any(has_activity(layer) for layer in layers)
    return isinstance(model, eqx.Module) and callable(model) and _accepts(model.__call__, "return_details")


def snn_metrics(
    model: PyTree,
    x: Float[Array, "B T ..."],
    y: Any = None,
    *,
    loss_fn: Callable[[PyTree, Any, Any], Any] | None = None,
    grads: PyTree | None = None,
    saturation: float = 1.0,
) -> dict[str, dict[str, Float[Array, ""]]]:
    """Health of every layer of a spiking network on one batch: activity and gradient norm.

    Activity (see `layer_metrics`) is measured for every spiking layer from the spikes and the
    membrane it produces on `x`: `rate` (spikes per neuron per frame) and `rate_hz`, `sparsity`
    (fraction of entries without a spike), `dead` (fraction of neurons that never spike over the
    batch and time), `saturated` (fraction spiking in >= `saturation` of the frames; default every
    frame), `v_mean`, `v_var`, `v_std`, `v_min`, `v_max`. `grad_norm` (the gradient's Euclidean
    norm over the layer's float parameters) is added for every layer with parameters when
    `loss_fn` and `y` or `grads` are given. No gradient flows through the metrics; the function
    is pure and jit-compatible (`eqx.filter_jit(snn_metrics)`).

    The layers are found in a `Sequential` / `eqx.nn.Sequential` (nested ones too) or a single
    spiking layer; a spiking layer is an `AbstractSpikingLayer` or any module whose call takes
    `return_state=True` and returns `(spikes, {"v": ...})`. Any other model whose call takes
    `return_details=True` (returning `(output, {layer name: probes})`) contributes its own
    probes instead (then `saturation` is the model's).

    **Arguments:**
    - `model`: the network. `x`: a batch `(B, T, ...)` of its input.
    - `y`: labels for `loss_fn` (with `loss_fn`).
    - `loss_fn(model, x, y) -> loss` or `-> (loss, aux)` (as for `train`): the gradient norms
      are those of its gradient w.r.t. the model's float arrays.
    - `grads`: instead of `loss_fn`, a gradient pytree with the model's structure.
    - `saturation`: fraction of frames in (0, 1] from which a neuron counts as saturated.

    **Returns:** `{layer name: {metric: scalar}}`, layer names `"<index>.<ClassName>"` as in
    `Sequential(return_details=True)`; layers without spiking activity appear only with
    `grad_norm`.
    """
    saturation = _check_fraction(saturation, "saturation")
    if loss_fn is not None and grads is not None:
        raise ValueError("pass loss_fn (with y) or grads, not both")
    if loss_fn is not None and y is None:
        raise ValueError("loss_fn needs the labels y (snn_metrics(model, x, y, loss_fn=...))")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable (model, x, y) -> loss, got {type(loss_fn).__name__}")
    out: dict[str, dict] = {}
    if _stack(model) is not None:
        _walk(model, x, "", saturation, out)
    elif _is_spiking(model):
        _spiking(model, x, type(model).__name__, saturation, out)
    elif has_activity(model):
        _, details = model(x, return_details=True)
        for name, probes in details.items():
            out[name] = {k: jax.lax.stop_gradient(jnp.asarray(v)) for k, v in probes.items() if jnp.ndim(v) == 0}
    elif grads is None and loss_fn is None:
        raise TypeError(f"snn_metrics: no spiking layer found in {type(model).__name__} (pass a Sequential, "
                        "eqx.nn.Sequential, a spiking layer or a model taking return_details=True), and no "
                        "loss_fn/grads for gradient norms; for other models apply layer_metrics(spikes, v) to "
                        "the spikes of your forward pass")
    if loss_fn is not None:
        def scalar(m):
            res = loss_fn(m, x, y)
            return res[0] if isinstance(res, tuple) else res

        grads = eqx.filter_grad(scalar)(model)
    if grads is not None:
        for name, norm in grad_norms(grads).items():
            out.setdefault(name, {})["grad_norm"] = norm
    return out


def _unhealthy(metrics: dict[str, dict], threshold: float) -> list[tuple[str, str, str]]:
    """`(layer, condition, message)` for every layer whose dead/saturated fraction reaches `threshold`."""
    threshold = _check_fraction(threshold, "threshold")
    found = []
    for name, m in metrics.items():
        for key, what, hint in (
            ("dead", "never spike", "lower its threshold, scale up its input weights or check the input encoding"),
            ("saturated", "spike in every frame", "raise its threshold, scale down its input weights or add a "
                                                  "firing-rate regulariser (firing_rate_loss)"),
        ):
            if key in m and float(m[key]) >= threshold:
                found.append((name, key, f"layer {name!r} is {key}: {100 * float(m[key]):.0f}% of its neurons "
                                         f"{what} on the monitored batch (threshold {100 * threshold:.0f}%); {hint}"))
    return found


def health_warnings(metrics: dict[str, dict], threshold: float = 0.9) -> list[str]:
    """Messages for the layers whose `dead` or `saturated` fraction reaches `threshold` (what
    `train` issues as `SNNHealthWarning`s).

    **Arguments:**
    - `metrics`: `snn_metrics`'s result (scalars may be arrays or floats).
    - `threshold`: fraction of the layer's neurons in (0, 1].

    **Returns:** one message per (layer, condition), naming the layer; empty if healthy.
    """
    return [msg for _, _, msg in _unhealthy(metrics, threshold)]
