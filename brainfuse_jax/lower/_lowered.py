"""`Lowered`: an exported step or unroll (`jax.export`), its StableHLO text, its serialised bytes
and the names, shapes and dtypes of its flat arguments and results; round-trips through bytes."""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..params import get
from ._names import model_leaves, Spec, tree_specs

FORMAT = "brainfuse_jax.lower/1"


def _encode(a: np.ndarray) -> dict:
    a = np.asarray(a)
    return {"dtype": a.dtype.name, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _decode(item: dict) -> np.ndarray:
    data = base64.b64decode(item["data"])
    return np.frombuffer(data, dtype=np.dtype(item["dtype"])).reshape(tuple(item["shape"])).copy()


@dataclasses.dataclass(frozen=True, eq=False)
class Lowered:
    """A model's step or unroll (`to_stablehlo`), or a stateless module's call
    (`export_module`), exported as one flat function.

    The function takes `(*params, *state, *inputs)` and returns `(*state, *outputs)`: the new
    state (`what="step"`) or the final state (`what="unroll"`), in the order and with the
    names, shapes and dtypes of the specs below, then the step's output or the recorded
    entries; for `what="module"` there is no state: `(*params, x) -> (*outputs)`. No pytree
    crosses the boundary.

    **Fields:**
    - `exported`: the `jax.export.Exported`.
    - `what`: `"step"`, `"unroll"` or `"module"`; `dt`: the time step in ms (fixed in the
      module; None for `"module"`, whose layers hold their own);
      `n_steps`: time steps of the unroll (1 for a step or a module); `held`: whether the unroll's input is
      one step's input held constant (`(B, ...)`) rather than `(B, T, ...)`.
    - `params`: `Spec(name, shape, dtype)` of each model leaf, named as `bf.params` names them
      (`"na.gbar"`, `"populations.E.model.tau_m"`, `"layers.0.linear.weight"`, also integer
      leaves such as `"conn.cols"`).
    - `state`: specs of the state leaves by state path (`"v"`, `"na.m"`, `"populations.E.v"`),
      in the order of `jax.tree.leaves(state)`.
    - `inputs`: specs of the input leaves (`"x"` for one array); `outputs`: of the outputs
      (`"output"` for a step or a module returning one array; the record's names for an unroll).
    - `param_values`, `state_values`: the model's leaves and the initial state it was exported
      with (NumPy arrays): the defaults of `arguments`.
    - `model`: the model's (or module's) class name.

    `serialized` (bytes; needs the `flatbuffers` package) and `text` (the StableHLO module) are
    computed on first use; `meta` is the rest as JSON, and `Lowered.from_serialized(serialized,
    meta)` rebuilds an equal `Lowered`.
    """

    exported: Any = dataclasses.field(repr=False)
    what: str
    dt: float | None
    n_steps: int
    held: bool
    params: tuple[Spec, ...] = dataclasses.field(repr=False)
    state: tuple[Spec, ...] = dataclasses.field(repr=False)
    inputs: tuple[Spec, ...]
    outputs: tuple[Spec, ...]
    param_values: tuple[np.ndarray, ...] = dataclasses.field(repr=False)
    state_values: tuple[np.ndarray, ...] = dataclasses.field(repr=False)
    model: str = ""

    # ---- artefacts ------------------------------------------------------------------------------
    @functools.cached_property
    def serialized(self) -> bytes:
        """The exported function as bytes (`Exported.serialize()`, needs `flatbuffers`)."""
        try:
            return bytes(self.exported.serialize())
        except ModuleNotFoundError as err:
            raise ImportError("serialising an exported function needs the flatbuffers package "
                              "(pip install flatbuffers)") from err

    @functools.cached_property
    def text(self) -> str:
        """The StableHLO module (MLIR text) of the exported function."""
        return self.exported.mlir_module()

    @functools.cached_property
    def _deserialized(self):
        return jax.export.deserialize(bytearray(self.serialized))

    @property
    def meta(self) -> str:
        """Everything but the exported function, as JSON: what, dt (null for a module), the
        specs, the values."""
        return json.dumps({
            "format": FORMAT, "model": self.model, "what": self.what, "dt": self.dt, "n_steps": self.n_steps,
            "held": self.held,
            "params": [s.to_json() for s in self.params], "state": [s.to_json() for s in self.state],
            "inputs": [s.to_json() for s in self.inputs], "outputs": [s.to_json() for s in self.outputs],
            "param_values": [_encode(a) for a in self.param_values],
            "state_values": [_encode(a) for a in self.state_values],
        })

    @classmethod
    def from_serialized(cls, serialized: bytes, meta: str | bytes | dict) -> Lowered:
        """The `Lowered` of `serialized` (`Lowered.serialized`) and `meta` (`Lowered.meta`, JSON
        text or the parsed dict). `ValueError` if `meta` is not such metadata."""
        if not isinstance(serialized, (bytes, bytearray)):
            raise TypeError(f"serialized must be bytes (Lowered.serialized), got {type(serialized).__name__}")
        if not isinstance(meta, dict):
            try:
                meta = json.loads(meta)
            except (TypeError, ValueError) as err:
                raise ValueError(f"meta must be the JSON text of Lowered.meta: {err}") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"meta must be Lowered.meta (format {FORMAT!r}), got format "
                             f"{meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}")
        exported = jax.export.deserialize(bytearray(serialized))
        specs = {k: tuple(Spec.from_json(s) for s in meta[k]) for k in ("params", "state", "inputs", "outputs")}
        dt = None if meta["dt"] is None else float(meta["dt"])
        out = cls(exported=exported, what=meta["what"], dt=dt, n_steps=int(meta["n_steps"]),
                  held=bool(meta["held"]), **specs,
                  param_values=tuple(_decode(a) for a in meta["param_values"]),
                  state_values=tuple(_decode(a) for a in meta["state_values"]), model=meta.get("model", ""))
        out.__dict__["serialized"] = bytes(serialized)  # the cached property: the bytes it came from
        n_in = len(out.params) + len(out.state) + len(out.inputs)
        if len(exported.in_avals) != n_in or len(exported.out_avals) != len(out.state) + len(out.outputs):
            raise ValueError(f"meta does not describe serialized: {len(exported.in_avals)} arguments and "
                             f"{len(exported.out_avals)} results, meta lists {n_in} and "
                             f"{len(out.state) + len(out.outputs)}")
        return out

    def write(self, directory: str | pathlib.Path, stem: str = "model") -> list[pathlib.Path]:
        """Write `{stem}.stablehlo` (`serialized`), `{stem}.mlir` (`text`) and `{stem}.json`
        (`meta`) into `directory` (created if missing); returns the paths."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"{stem}.stablehlo", directory / f"{stem}.mlir", directory / f"{stem}.json"]
        paths[0].write_bytes(self.serialized)
        paths[1].write_text(self.text)
        paths[2].write_text(self.meta)
        return paths

    @classmethod
    def read(cls, directory: str | pathlib.Path, stem: str = "model") -> Lowered:
        """The `Lowered` written by `write(directory, stem)`."""
        directory = pathlib.Path(directory)
        return cls.from_serialized((directory / f"{stem}.stablehlo").read_bytes(),
                                   (directory / f"{stem}.json").read_text())

    # ---- calling ------------------------------------------------------------------------------------
    @property
    def argument_specs(self) -> tuple[Spec, ...]:
        """Specs of the flat arguments: `params + state + inputs`."""
        return self.params + self.state + self.inputs

    @property
    def result_specs(self) -> tuple[Spec, ...]:
        """Specs of the flat results: `state + outputs`."""
        return self.state + self.outputs

    def arguments(self, inputs=None, *, model=None, state=None) -> list:
        """The flat argument list for `call`: the leaves of `model` (default: the exported
        model's values), of `state` (default: the initial state it was exported with) and of
        `inputs` (default: zeros), each checked against its spec."""
        if model is None:
            params = list(self.param_values)
        else:
            leaves = model_leaves(model)
            names = [p.name for p in leaves]
            if names != [s.name for s in self.params]:
                raise ValueError(f"model: its leaves {names} are not the exported ones "
                                 f"{[s.name for s in self.params]}")
            params = [get(model, p) for p in leaves]
        if state is None:
            state_leaves = list(self.state_values)
        else:
            state_leaves, specs, _ = tree_specs(state, None, "state")
            if [s.name for s in specs] != [s.name for s in self.state]:
                raise ValueError(f"state: its leaves {[s.name for s in specs]} are not the exported ones "
                                 f"{[s.name for s in self.state]}")
        if inputs is None:
            x = [np.zeros(s.shape, s.dtype) for s in self.inputs]
        else:
            x = jax.tree.leaves(inputs)
        return self._check_args([*params, *state_leaves, *x])

    def _check_args(self, arrays: Sequence) -> list:
        specs = self.argument_specs
        if len(arrays) != len(specs):
            raise ValueError(f"the exported {self.what} takes {len(specs)} arrays (params, state, inputs: "
                             f"{[s.name for s in specs]}), got {len(arrays)}")
        out = []
        for spec, a in zip(specs, arrays, strict=True):
            a = jnp.asarray(a)
            if tuple(a.shape) != spec.shape:
                raise ValueError(f"{spec.name} must have shape {spec.shape}, got {tuple(a.shape)}")
            if a.dtype != spec.dtype:
                if not np.can_cast(a.dtype, spec.dtype, "same_kind"):
                    raise TypeError(f"{spec.name} must have dtype {spec.dtype}, got {a.dtype}")
                a = a.astype(spec.dtype)
            out.append(a)
        return out

    def call(self, *arrays) -> tuple:
        """Run the function deserialised from `serialized` on the flat `arrays` (`params +
        state + inputs`, see `arguments`); returns the flat results `(*state, *outputs)`."""
        return tuple(self._deserialized.call(*self._check_args(arrays)))

    def split(self, results: Sequence) -> tuple[dict[str, Any], dict[str, Any]]:
        """`(state, outputs)`: the flat `results` of `call` as two dicts name -> array."""
        n = len(self.state)
        if len(results) != n + len(self.outputs):
            raise ValueError(f"results must hold {n + len(self.outputs)} arrays, got {len(results)}")
        return ({s.name: r for s, r in zip(self.state, results[:n], strict=True)},
                {s.name: r for s, r in zip(self.outputs, results[n:], strict=True)})
