"""The channel library by name, for configuration-driven model building."""

from __future__ import annotations

import difflib

from ._base import Channel
from ._hh import HHK, HHNa, Leak
from ._pospischil import PospischilCaL, PospischilCaT, PospischilKd, PospischilM, PospischilNa
from ._potassium import ConnorStevensKA, DestexheSK, MoczydlowskiLatorreBK
from ._thalamic import DestexheCaT, HuguenardMcCormickIh

LIBRARY: dict[str, type[Channel]] = {
    cls.__name__: cls
    for cls in (HHNa, HHK, Leak, PospischilNa, PospischilKd, PospischilM, PospischilCaL, PospischilCaT,
                ConnorStevensKA, HuguenardMcCormickIh, DestexheCaT, DestexheSK, MoczydlowskiLatorreBK)
}


def get(name: str) -> type[Channel]:
    """The library channel class called `name` (e.g. `"PospischilNa"`); `ValueError` naming the
    unknown name and the available ones otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"channel name must be a string, got {type(name).__name__}")
    if name not in LIBRARY:
        close = difflib.get_close_matches(name, LIBRARY, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"unknown channel name {name!r}{hint}; library channels: {sorted(LIBRARY)}")
    return LIBRARY[name]
