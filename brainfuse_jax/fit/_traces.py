"""Trace import: numpy arrays, NEURON `h.Vector`s (or anything array-like) and NWB files."""

from __future__ import annotations

import dataclasses
import os
import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """A uniformly sampled recording.

    **Fields:**
    - `data`: float64 array `(T,)` or `(B, T)` (B sweeps), in `unit`.
    - `dt`: sampling interval, ms (None if unknown).
    - `t0`: time of the first sample, ms.
    - `unit`: e.g. `"mV"` for voltages, `"nA"` for currents (`read_nwb` converts NWB's SI units).
    - `name`: where it came from (NWB series name), informational.

    A `Trace` is array-like (`np.asarray(trace)` is its data), so it can be passed wherever an
    array is expected; `fit` also takes its `dt` from it.
    """

    data: np.ndarray
    dt: float | None = None
    t0: float = 0.0
    unit: str = ""
    name: str = ""

    @property
    def t(self) -> np.ndarray:
        """Sample times `t0 + k dt`, ms."""
        if self.dt is None:
            raise ValueError(f"trace {self.name!r} has no dt")
        return self.t0 + np.arange(self.data.shape[-1]) * self.dt

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.data, dtype=dtype)

    def __len__(self) -> int:
        return self.data.shape[-1]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape


def _to_numpy(x, name: str) -> np.ndarray:
    if isinstance(x, Trace):
        return np.asarray(x.data, np.float64)
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array, a NEURON Vector or a Trace, got {type(x).__name__}")
    array_protocol = any(hasattr(x, a) for a in ("__array__", "__array_interface__", "__array_struct__"))
    if hasattr(x, "to_python") and not array_protocol:
        x = x.to_python()  # a Vector-like object without the array protocol (duck-typed)
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
        return np.stack([_to_numpy(e, f"{name}[{k}]") for k, e in enumerate(x)])
    try:
        arr = np.array(x, dtype=np.float64)  # copies: h.Vector/as_numpy share NEURON's memory
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric array-like (numpy array, NEURON Vector, Trace), "
                        f"got {type(x).__name__}") from err
    return arr


def as_array(x, name: str) -> np.ndarray:
    """`x` as a float64 numpy array `(T,)` or `(B, T)`: numpy arrays, JAX arrays, lists, NEURON
    `h.Vector`s (anything with the array protocol or `.to_python()`), lists of those (one per
    sweep) and `Trace`s. Raises `ValueError` naming `name` for other ranks or NaN/inf."""
    arr = _to_numpy(x, name)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (T,) or (B, T) = (sweeps, samples), got {arr.shape}")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        k = np.argwhere(bad)[0]
        raise ValueError(f"{name} must be finite (no NaN or inf); got {arr[tuple(k)].item()!r} at index "
                         f"{tuple(int(i) for i in k) if arr.ndim > 1 else int(k[0])} "
                         f"({int(bad.sum())} of {arr.size} samples)")
    return arr


def as_trace(x, dt: float | None = None, *, t0: float = 0.0, unit: str = "", name: str = "") -> Trace:
    """A `Trace` from an array, a NEURON `h.Vector` (or a list of them, one per sweep) or a
    `Trace` (whose fields the keyword arguments override). `dt` and `t0` in ms.

    ```python
    v = h.Vector().record(soma(0.5)._ref_v)   # after the run:
    target = bf.fit.as_trace(v, dt=h.dt, unit="mV")
    ```
    """
    if isinstance(x, Trace):
        dt = x.dt if dt is None else dt
        t0, unit, name = (t0 or x.t0), (unit or x.unit), (name or x.name)
    data = as_array(x, name or "trace")
    if dt is not None and not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive time step in ms, got {dt!r}")
    return Trace(data, None if dt is None else float(dt), float(t0), unit, name)


def current_density(current_nA, area_um2: float):
    """Convert a current in nA (NEURON's IClamp unit) to a current density in uA/cm2 (the unit of
    `PointNeuron` inputs): `J = I * 1e5 / area_um2`. A `Trace` stays a `Trace`."""
    if not (np.isfinite(area_um2) and area_um2 > 0):
        raise ValueError(f"area_um2 must be a positive area in um2, got {area_um2!r}")
    if isinstance(current_nA, Trace):
        return dataclasses.replace(current_nA, data=current_nA.data * (1e5 / area_um2), unit="uA/cm2")
    return as_array(current_nA, "current_nA") * (1e5 / area_um2)


# NWB stores SI units; we convert to the library's (mV, nA).
_UNITS = {
    "volts": (1e3, "mV"), "volt": (1e3, "mV"), "v": (1e3, "mV"),
    "millivolts": (1.0, "mV"), "mv": (1.0, "mV"),
    "amperes": (1e9, "nA"), "ampere": (1e9, "nA"), "a": (1e9, "nA"),
    "nanoamperes": (1.0, "nA"), "na": (1.0, "nA"), "picoamperes": (1e-3, "nA"), "pa": (1e-3, "nA"),
}


def read_nwb(path: str | os.PathLike, name: str | None = None) -> Trace:
    """Read one time series from an NWB file as a `Trace` (needs `pynwb`: `pip install
    brainfuse_jax[nwb]`).

    `name` is the series' name in the file's `acquisition` or `stimulus` groups (e.g. a
    `CurrentClampSeries` of membrane potential or its `CurrentClampStimulusSeries`). Without
    `name`, the file must hold exactly one `CurrentClampSeries`. Data are scaled by the series'
    `conversion` (and `offset`) to SI and then to the library's units: volts -> mV, amperes -> nA
    (other units are kept as stored). `dt` comes from the series' `rate` (Hz) or from uniformly
    spaced `timestamps` (s); `t0` from its `starting_time`.
    """
    try:
        from pynwb import NWBHDF5IO
    except ImportError as err:
        raise ImportError("read_nwb needs pynwb: pip install 'brainfuse_jax[nwb]' (or pip install pynwb)") from err

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such NWB file: {path!r}")
    with NWBHDF5IO(path, "r") as io:
        nwb = io.read()
        series = {**dict(nwb.stimulus), **dict(nwb.acquisition)}
        series = {k: s for k, s in series.items() if hasattr(s, "data") and hasattr(s, "unit")}
        if name is None:
            cc = [k for k, s in series.items() if type(s).__name__ == "CurrentClampSeries"]
            if len(cc) != 1:
                raise ValueError(f"name: {path!r} holds {len(cc)} CurrentClampSeries ({cc}); pass "
                                 f"name= one of {sorted(series)}")
            name = cc[0]
        if name not in series:
            raise ValueError(f"name: no time series {name!r} in {path!r}; available: {sorted(series)}")
        s = series[name]
        data = np.asarray(s.data[:], np.float64) * float(s.conversion) + float(getattr(s, "offset", 0.0) or 0.0)
        factor, unit = _UNITS.get(str(s.unit).strip().lower(), (1.0, str(s.unit)))
        data = data * factor
        if s.rate is not None:
            dt, t0 = 1e3 / float(s.rate), 1e3 * float(s.starting_time or 0.0)
        else:
            ts = np.asarray(s.timestamps[:], np.float64) * 1e3
            steps = np.diff(ts)
            if len(steps) and not np.allclose(steps, steps.mean(), rtol=1e-6, atol=0.0):
                raise ValueError(f"name: series {name!r} is not uniformly sampled (timestamps "
                                 f"steps from {steps.min():g} to {steps.max():g} ms)")
            dt, t0 = (float(steps.mean()) if len(steps) else None), float(ts[0])
    return as_trace(data, dt, t0=t0, unit=unit, name=name)
