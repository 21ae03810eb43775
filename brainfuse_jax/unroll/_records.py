"""What `simulate` records: state paths, outputs, callables and `Total`s (summed over time)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from jaxtyping import PyTree

from ..neurons._base import State
from ..params import state_lookup


class Total(NamedTuple):
    """A record entry summed over time instead of stored per step: `record=bf.Total("output")`
    returns spike counts of shape `(B, ...)`; costs no per-step memory. `what` is a state path,
    `"output"` or a callable `(state, output) -> array`."""

    what: str | Callable[[State, Any], PyTree] = "output"


Entry = str | Total | Callable[[State, Any], PyTree]
RecordSpec = Entry | Sequence[str] | dict[str, Entry] | None


def _lookup(state: State, output, path: str):
    return state_lookup(state, path, "record", extra={"output": output})


def _entry_fn(entry) -> Callable[[State, Any], PyTree]:
    if isinstance(entry, Total):
        entry = entry.what
    if isinstance(entry, str):
        return lambda state, out: _lookup(state, out, entry)
    if callable(entry):
        return entry
    raise TypeError("record entries must be a state path, 'output', a callable (state, output) -> "
                    f"pytree, or Total(...); got {entry!r}")


def _normalize_record(record: RecordSpec):
    """A hashable form of `record`: `(single, ((name, entry), ...))`; `single` means one
    unnamed entry whose result is returned bare."""
    if record is None:
        return (False, ())
    if isinstance(record, (str, Total)) or callable(record):
        _entry_fn(record)
        return (True, ((None, record),))
    items = tuple(record.items()) if isinstance(record, dict) else tuple((n, n) for n in record)
    for name, entry in items:
        if not isinstance(name, str):
            raise TypeError(f"record names must be strings, got {name!r} in {record!r}")
        _entry_fn(entry)
    return (False, items)


def _select(final, recorded, single, items):
    if single:
        return final, recorded[None]
    return final, ({name: recorded[name] for name, _ in items} if items else None)
