r"""Convolutional spiking layers over image sequences `(B, T, C, H, W)`: `ConvLIF` (a 2-D
convolution followed by a LIF-family neuron per channel), `SpikePool` (max or average pooling of
spikes over space, per frame), `Flatten` (the non-batch, non-time axes) and `ConvSNN` (a stack of
them ending in a readout).

**Time-distributed convolution, all frames at once.** The convolution of `ConvLIF` acts on the
layer's input, which does not depend on the layer's own state, so it is computed for every frame
in one call, with the time axis folded into the batch (`(B*T, C, H, W)`): one large convolution
instead of `T` small ones inside the time loop. Only the neuron runs in the `lax.scan` of
`brainfuse_jax.simulate`. The result equals a per-frame loop (tested).

**State.** The neuron state is explicit and batch-first, `(B, C', H', W')` per variable (as
`(B, n)` for the dense layers); `init_state(B)` gives the neurons at rest and
`layer(x, state0=..., return_state=True)` returns the final state, to carry across windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence as SequenceABC
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._validate import check_dt
from ..neurons import ALIF, LIF
from ..neurons._base import AbstractNeuron, State, resolve_dtype
from ..surrogate import Surrogate
from ._base import _check_static, AbstractSpikingLayer
from ._checks import check_positive_int, check_sequence
from ._containers import Sequential
from ._lif_layers import LIFLayer
from ._readouts import LeakyReadout, SpikeCountReadout

Pair = int | tuple[int, int]


def _pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each >= `minimum`, as a pair."""
    vals = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(vals) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in vals):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair of them (height, width), got {value!r}")
    return vals


def _shape3(value, name: str) -> tuple[int, int, int]:
    """`(C, H, W)`, three positive ints."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise ValueError(f"{name} must be (channels, height, width), three positive ints; got {value!r}")
    for v in value:
        check_positive_int(v, name, "channels, height, width")
    return tuple(int(v) for v in value)


def _out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _check_images(x, name: str, shape: tuple[int, int, int] | None):
    """`x` `(B, T, C, H, W)` (with `(C, H, W) == shape` if given), as a JAX array."""
    if shape is None:
        x = check_sequence(x, name)
        if x.ndim != 5:
            raise ValueError(f"{name} must have shape (B, T, C, H, W) = (batch, time, channels, height, width); "
                             f"got {tuple(x.shape)}")
        return x
    return check_sequence(x, name, shape)


def _fold_time(fn, x: Array) -> Array:
    """Apply the per-image `fn` to every frame of `(B, T, ...)`, with T folded into the batch."""
    B, T = x.shape[:2]
    y = jax.vmap(fn)(jnp.reshape(x, (B * T, *x.shape[2:])))
    return jnp.reshape(y, (B, T, *y.shape[1:]))


def _per_channel(value, c: int, name: str) -> Array:
    """A scalar or `(c,)` value as a `(c, 1, 1)` array (one per output channel, shared over space)."""
    arr = jnp.asarray(value, dtype=jnp.result_type(float))
    if arr.ndim == 0:
        arr = jnp.full((c,), arr, arr.dtype)
    if arr.shape != (c,):
        raise ValueError(f"{name} must be a scalar or have shape ({c},) (one value per output channel), "
                         f"got shape {arr.shape}")
    return jnp.reshape(arr, (c, 1, 1))


class ConvLIF(AbstractSpikingLayer):
    r"""A convolutional spiking layer: an `equinox.nn.Conv2d` followed by a LIF-family neuron at
    every output position, with one set of neuron parameters per output channel (shared over
    space, like the kernel). `(B, T, C, H, W)` in, spikes `(B, T, C', H', W')` out:

    $$I_t = W \star x_t + b, \qquad u_t = \beta\,v_{t-1} + I_t, \qquad s_t = \Theta(u_t - \vartheta)$$

    (`bf.LIF`'s update, or `bf.ALIF`'s with an adaptive threshold). The convolution is computed for
    all `T` frames at once (time folded into the batch); the neuron runs in one `simulate` scan.
    Everything else is as for `LIFLayer`: frames of `substeps` steps of `dt` ms, `state0=` /
    `return_state=` / `return_details=` (probes over all `C' H' W'` neurons), `adjoint=` /
    `backend=` / `with_execution`, truncated BPTT with `chunk_size`, `state_dtype`. No recurrent
    weights (a lateral convolution would have to run inside the time loop).

    **Arguments:**
    - `in_shape`: `(C, H, W)` of one input frame (channels, height, width in pixels).
    - `out_channels`: output channels `C'`.
    - `kernel_size`, `stride`, `padding`, `dilation`: as `equinox.nn.Conv2d` (int or pair;
      `padding` an int, a pair, `"SAME"` (output `ceil(H / stride)`) or `"VALID"`).
    - `key`: PRNG key for the kernel and bias.
    - `neuron`: `"lif"` (default) or `"alif"`, built with one value per channel from the
      arguments below; or a `bf.LIF` / `bf.ALIF` instance whose parameters are scalars or broadcast
      against `(C', 1, 1)` (then `beta`, `threshold`, ... are ignored).
    - `beta`: membrane decay per step in [0, 1); `threshold`: threshold (units of the input);
      `learn_beta`; `reset` (`"subtract"` / `"zero"`); `surrogate`; `detach_reset`: as `bf.LIF`.
      `adapt`, `tau_adapt` (ms): as `bf.ALIF` (used with `neuron="alif"`).
    - `input_gain`: factor on the initial kernel (equinox's uniform init times this), so that the
      first layers fire at initialisation.
    - `dt` (ms), `substeps`, `remat`, `chunk_size`, `state_dtype`, `adjoint`, `backend`: as
      `LIFLayer`.

    **Raises:** `ValueError` for a kernel larger than the padded input, non-positive sizes, or an
    input whose frames are not `in_shape`.
    """

    conv: eqx.nn.Conv2d
    in_shape: tuple[int, int, int] = eqx.field(static=True)
    out_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        out_channels: int,
        kernel_size: Pair,
        *,
        key: PRNGKeyArray,
        stride: Pair = 1,
        padding: Pair | str = 0,
        dilation: Pair = 1,
        neuron: Literal["lif", "alif"] | AbstractNeuron = "lif",
        beta: float = 0.9,
        threshold: float = 1.0,
        learn_beta: bool = True,
        reset: Literal["subtract", "zero"] = "subtract",
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
        adapt: float = 0.1,
        tau_adapt: float = 50.0,
        input_gain: float = 1.0,
        dt: float = 1.0,
        substeps: int = 1,
        remat: bool = False,
        chunk_size: int | None = None,
        state_dtype=None,
        adjoint: Any = None,
        backend: Any = None,
    ):
        if key is None:
            raise TypeError("key (a jax.random PRNG key) is required to initialise the kernel")
        c, h, w = _shape3(in_shape, "in_shape")
        c_out = check_positive_int(out_channels, "out_channels", "output channels")
        kh, kw = _pair(kernel_size, "kernel_size")
        sh, sw = _pair(stride, "stride")
        dh, dw = _pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding.upper() not in ("SAME", "VALID"):
                raise ValueError(f"padding must be an int, a pair of ints, 'SAME' or 'VALID', got {padding!r}")
            padding = padding.upper()
            oh, ow = ((-(-h // sh), -(-w // sw)) if padding == "SAME"
                      else (_out_size(h, kh, sh, 0, dh), _out_size(w, kw, sw, 0, dw)))
        else:
            ph, pw = _pair(padding, "padding", minimum=0)
            oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
        if oh < 1 or ow < 1:
            raise ValueError(f"kernel_size {(kh, kw)} (dilation {(dh, dw)}) does not fit the input {(h, w)} "
                             f"with padding {padding!r}: the output would be {(oh, ow)}")
        self.conv = eqx.nn.Conv2d(c, c_out, (kh, kw), (sh, sw), padding, (dh, dw), key=key)
        if float(input_gain) != 1.0:
            self.conv = eqx.tree_at(lambda m: m.weight, self.conv, self.conv.weight * float(input_gain))
        self.in_shape = (c, h, w)
        self.out_shape = (c_out, int(oh), int(ow))
        self.in_features = None
        self.n = c_out * int(oh) * int(ow)
        self.linear = None
        self.input_scale = None
        self.w_rec = None
        self.dt = float(check_dt(dt))
        self.substeps = check_positive_int(substeps, "substeps", "integration steps per input frame")
        self.remat = bool(remat)
        self.chunk_size = (None if chunk_size is None
                           else check_positive_int(chunk_size, "chunk_size", "frames per truncated-BPTT chunk"))
        self.adjoint = _check_static(adjoint, "adjoint", "an adjoint object such as bf.DirectAdjoint()")
        self.backend = _check_static(backend, "backend", "a backend for simulate's backend=")
        self.state_dtype = None if state_dtype is None else jnp.dtype(state_dtype)
        self.v0 = None
        if isinstance(neuron, AbstractNeuron):
            if not isinstance(neuron, (LIF, ALIF)):
                raise TypeError(f"neuron must be 'lif', 'alif' or a bf.LIF / bf.ALIF instance, got "
                                f"{type(neuron).__name__} (RecurrentLIF's lateral weights are per neuron, not "
                                "per channel; conductance-based neurons are not LIF-family)")
            self.neuron = neuron
        elif neuron == "lif":
            self.neuron = LIF(beta=_per_channel(beta, c_out, "beta"),
                              threshold=_per_channel(threshold, c_out, "threshold"), learn_beta=learn_beta,
                              reset=reset, surrogate=surrogate, detach_reset=detach_reset)
        elif neuron == "alif":
            self.neuron = ALIF(beta=_per_channel(beta, c_out, "beta"),
                               threshold=_per_channel(threshold, c_out, "threshold"),
                               adapt=_per_channel(adapt, c_out, "adapt"),
                               tau_adapt=_per_channel(tau_adapt, c_out, "tau_adapt"),
                               learn_beta=learn_beta, reset=reset, surrogate=surrogate)
        else:
            raise ValueError(f"neuron must be 'lif', 'alif' or a bf.LIF / bf.ALIF instance, got {neuron!r}")
        # fail now, not at the first call, if the neuron's parameters do not fit the feature map
        self.neuron.init_state((1, *self.out_shape))

    def project(self, x: Float[Array, "B T C H W"]) -> Float[Array, "B T Co Ho Wo"]:
        """The convolution of every frame, all `T` at once (time folded into the batch), in the
        kernel's dtype."""
        return _fold_time(self.conv, x.astype(self.conv.weight.dtype))

    def init_state(self, batch: int) -> State:
        """The initial state for `batch` sequences: every variable `(batch, C', H', W')` (in
        `state_dtype`), the neurons at rest."""
        batch = check_positive_int(batch, "batch", "number of sequences")
        dtype = resolve_dtype(self.state_dtype)
        return self._framed(dtype, batch).init_state((batch, *self.out_shape), dtype)

    def __call__(
        self,
        x: Float[Array, "B T C H W"],
        *,
        state0: State | None = None,
        return_state: bool = False,
        return_details: bool = False,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "B T Co Ho Wo"] | tuple[Float[Array, "B T Co Ho Wo"], dict]:
        """Run the layer on a batch of image sequences.

        **Arguments:**
        - `x`: `(B, T, C, H, W)`, `(C, H, W) == in_shape` (units of the threshold per unit kernel
          weight; e.g. 0/1 spikes from an encoder or a previous layer).
        - `state0`: initial state (default `init_state(B)`), variables `(B, C', H', W')`.
        - `return_state`: also return the membrane at the end of each frame (`"v"`,
          `(B, T, C', H', W')`) and the final state (`"state"`).
        - `return_details`: also return the debug probes (`brainfuse_jax.nn.probes`) over the
          `C' H' W'` neurons.
        - `key`: unused (for `eqx.nn.Sequential` compatibility).

        **Returns:** spikes per frame `(B, T, C', H', W')` (in `state_dtype`), or `(spikes, info)`.
        """
        x = _check_images(x, "x", self.in_shape)
        dtype = resolve_dtype(self.state_dtype)
        B = x.shape[0]
        h = self.project(x).astype(dtype)
        framed = self._framed(dtype, B)
        return self._unroll(framed, h, state0, (B, *self.out_shape), return_state, return_details)


class SpikePool(eqx.Module):
    """Spatial pooling of spike maps, per frame: `(B, T, C, H, W) -> (B, T, C, H', W')`.

    `"max"`: 1 where any input in the window spiked (for 0/1 spikes; the gradient flows to the
    window's maximum, the first one on ties); `"avg"`: the fraction of the window that spiked
    (a graded value, not a spike). All frames are pooled at once (time folded into the batch).
    No parameters.

    **Arguments:**
    - `kind`: `"max"` or `"avg"`.
    - `kernel_size`: window (int or pair); `stride`: default = `kernel_size`; `padding`: int or
      pair (zeros; for `"max"`, padded entries are -inf).
    """

    pool: eqx.Module
    kind: str = eqx.field(static=True)

    def __init__(self, kind: Literal["max", "avg"] = "max", kernel_size: Pair = 2, stride: Pair | None = None,
                 padding: Pair = 0):
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
        k = _pair(kernel_size, "kernel_size")
        s = k if stride is None else _pair(stride, "stride")
        p = _pair(padding, "padding", minimum=0)
        cls = eqx.nn.MaxPool2d if kind == "max" else eqx.nn.AvgPool2d
        self.pool = cls(k, s, p)
        self.kind = kind

    def out_shape(self, in_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The pooled `(C, H', W')` of a frame of shape `in_shape` `(C, H, W)`."""
        c, h, w = _shape3(in_shape, "in_shape")
        (kh, kw), (sh, sw) = self.pool.kernel_size, self.pool.stride
        (ph, _), (pw, _) = self.pool.padding
        oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ValueError(f"the pooling window {(kh, kw)} does not fit a {(h, w)} input")
        return (c, oh, ow)

    def __call__(self, x: Float[Array, "B T C H W"], *, key: PRNGKeyArray | None = None):
        """Pool every frame of `x` `(B, T, C, H, W)`."""
        x = _check_images(x, "x", None)
        self.out_shape(tuple(x.shape[2:]))  # a clear error for a window larger than the map
        return _fold_time(self.pool, x)


class Flatten(eqx.Module):
    """`(B, T, ...) -> (B, T, prod(...))`: the feature axes of every frame flattened (row-major,
    channel first for `(C, H, W)`), e.g. between convolutional and dense layers."""

    def __call__(self, x: Float[Array, "B T ..."], *, key: PRNGKeyArray | None = None) -> Float[Array, "B T f"]:
        x = check_sequence(x, "x")
        return jnp.reshape(x, (x.shape[0], x.shape[1], -1))


class ConvSNN(Sequential):
    """A convolutional spiking network: `[ConvLIF -> SpikePool] * len(channels) -> Flatten ->
    [LIFLayer(hidden)] -> readout`, as a `Sequential` (so `return_details=True` gives the probes
    of every spiking layer, and `train` / `with_execution` apply unchanged).

    **Arguments:**
    - `in_shape`: `(C, H, W)` of one input frame; `n_classes`: outputs; `key`: PRNG key.
    - `channels`: output channels of each convolutional block (default `(16, 32)`).
    - `kernel_size`: of every convolution (odd; `"SAME"` padding keeps the map size).
    - `pool`: pooling window and stride after each block (1 or None: no pooling); `pool_kind`:
      `"max"` or `"avg"`.
    - `hidden`: width of a dense `LIFLayer` after the flatten, or None (default) for none.
    - `readout`: `"leaky"` (`LeakyReadout`: the mean membrane of leaky integrators are the
      logits) or `"count"` (`SpikeCountReadout`: spike counts of the previous layer in `bins`
      windows, then a linear map).
    - `bins`: windows of the `"count"` readout; `readout_beta`: decay of the `"leaky"` readout.
    - `input_gain`: factor on the initial kernels of the convolutions.
    - further keyword arguments (`beta`, `threshold`, `neuron`, `surrogate`, `dt`, `adjoint`, ...)
      go to every `ConvLIF`, and those a `LIFLayer` takes also to the dense layer.
    """

    in_shape: tuple[int, int, int] = eqx.field(static=True)

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_classes: int,
        *,
        key: PRNGKeyArray,
        channels: SequenceABC[int] = (16, 32),
        kernel_size: int = 3,
        pool: int | None = 2,
        pool_kind: Literal["max", "avg"] = "max",
        hidden: int | None = None,
        readout: Literal["leaky", "count"] = "leaky",
        bins: int = 1,
        readout_beta: float = 0.9,
        input_gain: float = 1.0,
        **layer_kwargs,
    ):
        if key is None:
            raise TypeError("key (a jax.random PRNG key) is required to initialise the weights")
        shape = _shape3(in_shape, "in_shape")
        n_classes = check_positive_int(n_classes, "n_classes", "number of classes")
        if isinstance(channels, (str, bytes)) or not isinstance(channels, SequenceABC) or not channels:
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels!r}")
        if readout not in ("leaky", "count"):
            raise ValueError(f"readout must be 'leaky' or 'count', got {readout!r}")
        keys = jax.random.split(key, len(channels) + 2)
        layers: list = []
        for i, c in enumerate(channels):
            conv = ConvLIF(shape, check_positive_int(c, f"channels[{i}]"), kernel_size, key=keys[i],
                           padding="SAME", input_gain=input_gain, **layer_kwargs)
            layers.append(conv)
            shape = conv.out_shape
            if pool not in (None, 1):
                p = SpikePool(pool_kind, pool)
                shape = p.out_shape(shape)
                layers.append(p)
        layers.append(Flatten())
        features = math.prod(shape)
        if hidden is not None:
            dense_kwargs = {k: v for k, v in layer_kwargs.items()
                            if k not in ("neuron", "adapt", "tau_adapt", "stride", "dilation")}
            layers.append(LIFLayer(features, check_positive_int(hidden, "hidden", "dense LIF neurons"),
                                   key=keys[-2], **dense_kwargs))
            features = hidden
        if readout == "leaky":
            layers.append(LeakyReadout(features, n_classes, key=keys[-1], beta=readout_beta,
                                       state_dtype=layer_kwargs.get("state_dtype")))
        else:
            layers.append(SpikeCountReadout(features, n_classes, key=keys[-1], bins=bins,
                                            state_dtype=layer_kwargs.get("state_dtype")))
        super().__init__(layers)
        self.in_shape = _shape3(in_shape, "in_shape")
