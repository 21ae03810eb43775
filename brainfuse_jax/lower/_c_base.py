"""Shared pieces of the StableHLO -> C99 emitter: element types, locations, the C view of a
tensor (`Val`), index helpers, the supported op set and the refusal of everything else."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from jaxlib.mlir import ir

_MLIR_DTYPES = {"f32": np.float32, "f64": np.float64, "i1": np.bool_, "i8": np.int8, "i16": np.int16,
                "i32": np.int32, "i64": np.int64, "ui8": np.uint8, "ui16": np.uint16, "ui32": np.uint32,
                "ui64": np.uint64}

# StableHLO / CHLO elementwise ops -> the shared table's operation names
_ELEMENTWISE = {
    "add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "remainder": "rem", "power": "pow",
    "maximum": "max", "minimum": "min", "and": "and", "or": "or", "xor": "xor", "not": "not", "negate": "neg",
    "abs": "abs", "exponential": "exp", "exponential_minus_one": "expm1", "log": "log", "log_plus_one": "log1p",
    "sqrt": "sqrt", "rsqrt": "rsqrt", "cbrt": "cbrt", "tanh": "tanh", "sine": "sin", "cosine": "cos", "tan": "tan",
    "atan2": "atan2", "floor": "floor", "ceil": "ceil", "round_nearest_even": "round_nearest_even",
    "round_nearest_afz": "round", "is_finite": "is_finite", "sign": "sign", "logistic": "logistic",
    "shift_left": "shift_left", "shift_right_logical": "shift_right_logical",
    "shift_right_arithmetic": "shift_right_arithmetic", "select": "select", "clamp": "clamp",
    "erf": "erf", "erfc": "erfc", "lgamma": "lgamma", "asin": "asin", "acos": "acos", "atan": "atan",
    "sinh": "sinh", "cosh": "cosh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh", "next_after": "nextafter",
}
_COMPARE = {"LT": "lt", "LE": "le", "GT": "gt", "GE": "ge", "EQ": "eq", "NE": "ne"}
SUPPORTED = sorted({f"stablehlo.{k}" for k in _ELEMENTWISE if k not in ("erf", "erfc", "lgamma", "next_after")}
                   | {f"chlo.{k}" for k in ("erf", "erfc", "lgamma", "tan", "asin", "acos", "atan", "sinh", "cosh",
                                            "asinh", "acosh", "atanh", "next_after")}
                   | {f"stablehlo.{k}" for k in (
                       "constant", "compare", "convert", "broadcast_in_dim", "reshape", "transpose", "slice",
                       "concatenate", "iota", "reverse", "dynamic_slice", "dynamic_update_slice", "dot_general", "reduce",
                       "reduce_window", "gather", "scatter", "while", "case", "if", "optimization_barrier",
                       "composite", "return")} | {"func.call", "func.return"})


class _TypeProblem(ValueError):
    """A tensor type without a C translation."""


def dtype_of(mlir_type) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, numpy dtype) of a ranked tensor type; ValueError for anything else."""
    t = ir.RankedTensorType(mlir_type)
    name = str(t.element_type)
    if name not in _MLIR_DTYPES:
        raise _TypeProblem(f"emit_c: element type {name} has no C translation (supported: {sorted(_MLIR_DTYPES)})")
    return tuple(t.shape), np.dtype(_MLIR_DTYPES[name])


def location(op) -> str:
    """A short form of an op's MLIR location: its name (e.g. `jit(f)/fft`) and first source line."""
    text = str(op.location)
    name = re.search(r'loc\("([^"]*)"', text)
    where = re.search(r'"([^"]+\.py)":(\d+)', text)
    parts = [name.group(1) if name else None, f"{where.group(1)}:{where.group(2)}" if where else None]
    return " at ".join(p for p in parts if p) or text[:200]


@dataclass(frozen=True)
class Val:
    """A tensor in C: the array `name` (row-major) or, for a splat, the C expression `splat` of
    its every element: a literal (`literal`) or the one element of a size-1 array (a broadcast)."""

    name: str | None
    shape: tuple[int, ...]
    ctype: str
    splat: str | None = None
    literal: bool = True

    def like(self, shape, ctype) -> "Val":
        """The same splat with another shape (broadcasts, slices, reshapes of a splat)."""
        return Val(None, tuple(shape), ctype, self.splat, self.literal)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def at(self, index: str) -> str:
        if self.splat is not None:
            return self.splat
        return f"{self.name}[{index if self.shape else 0}]"


def _lin(shape, idx) -> str:
    """Row-major linear index of the C index expressions `idx` into `shape`."""
    expr = None
    for n, i in zip(shape, idx, strict=True):
        expr = i if expr is None else f"({expr}) * {n} + {i}"
    return expr or "0"


def _ints(attr) -> list[int]:
    if attr is None:
        return []
    try:
        return [int(v) for v in ir.DenseI64ArrayAttr(attr)]
    except (TypeError, ValueError):
        return [int(v) for v in np.array(ir.DenseIntElementsAttr(attr)).ravel()]


def _attr(op, name):
    return op.attributes[name] if name in op.attributes else None


class Unsupported(ValueError):
    """An op of the module the C emitter does not translate."""


def refuse(op, why: str = "", context: str = ""):
    name = op.operation.name
    what = f"cannot translate op {name} ({why})" if why else f"op {name} is not supported"
    raise Unsupported(f"emit_c: {what}, at {location(op)}{context} (MLIR location {str(op.location)[:300]})")


def _walk(op):
    for region in op.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield inner
                yield from _walk(inner)


def _callee(op) -> str | None:
    key = {"func.call": "callee", "stablehlo.composite": "decomposition"}.get(op.operation.name)
    return str(op.attributes[key]).lstrip("@") if key else None


def _splat_value(attr, dtype):
    try:
        return np.array(attr).ravel()[0]
    except (TypeError, ValueError, RuntimeError):
        text = str(attr)
        m = re.search(r"dense<([^>]*)>", text)
        raw = m.group(1).strip()
        if raw in ("true", "false"):
            return raw == "true"
        if raw.startswith("0x"):
            return np.frombuffer(bytes.fromhex(raw[2:])[::-1], dtype)[0]
        return dtype.type(float(raw)) if dtype.kind == "f" else int(raw)


def _dense_values(attr, dtype, n: int) -> np.ndarray:
    if dtype == np.bool_:
        text = str(attr)
        flat = re.findall(r"\btrue\b|\bfalse\b", text)
        if len(flat) == n:
            return np.array([s == "true" for s in flat])
    return np.asarray(np.array(attr), dtype).ravel()
