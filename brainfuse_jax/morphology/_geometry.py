r"""Segment areas and axial resistances from 3D points, and the d_lambda rule, as NEURON.

Ports of NEURON's `diam_from_list` (src/nrnoc/treeset.cpp) and of `lambda_f` (lib/hoc/stdlib.hoc).
Along a section the diameter is piecewise linear in arc length between 3D points. A segment of
length `ds = L / nseg` is split into two halves; over each piece `[x1, x2]` of a half (bounded by 3D
points and the half's ends, with diameters `d1`, `d2` interpolated there):

$$A = \frac{\pi}{2} \sum (d_1 + d_2)\sqrt{\Delta^2 + \left(\tfrac{d_2 - d_1}{2}\right)^2}, \qquad
  r_\text{half} = \frac{4 R_a}{\pi} \cdot 10^{-2} \sum \frac{\Delta}{d_1 d_2}$$

(`A` in um2: the lateral area of the frusta; `r` in MOhm with `Ra` in ohm cm and lengths in um;
`\int dx / d(x)^2` of a linear taper is exactly `\Delta / (d_1 d_2)`). The axial resistance of node k
(NEURON's `seg.ri()`) is `r_right[k-1] + r_left[k]`, with `r_right[-1] = 0` (a child's first node
connects straight to its parent node), and the zero-area end node at x = 1 has `r_right[nseg-1]`.
"""

from __future__ import annotations

import math

import numpy as np


def neuron_arc(xyz32: np.ndarray) -> np.ndarray:
    """Cumulative arc length (um) of 3D points as NEURON's `nrn_pt3dmodified`: coordinate
    differences in single precision (`Pt3d` holds floats), lengths summed in double."""
    p = np.asarray(xyz32, dtype=np.float32)
    if p.shape[0] < 2:
        return np.zeros(p.shape[0])
    step = (p[1:] - p[:-1]).astype(np.float64)
    seg = np.sqrt(step[:, 0] * step[:, 0] + step[:, 1] * step[:, 1] + step[:, 2] * step[:, 2])
    out = np.empty(p.shape[0])
    out[0] = 0.0
    # sequential sum, the order NEURON adds in
    acc = 0.0
    for i, s in enumerate(seg.tolist(), start=1):
        acc += s
        out[i] = acc
    return out


def segment_geometry(arc, diam, nseg: int, Ra: float):
    """Per segment of one section: `area` (um2), `r_left`, `r_right` (MOhm: the half-segment
    resistances on either side of the node), exactly as NEURON's `diam_from_list`.

    `arc`, `diam`: arc length (um, increasing, `arc[0] == 0`) and diameter (um) of the section's
    3D points (at least 2); `Ra`: ohm cm.
    """
    arc = [float(a) for a in arc]
    dia = [abs(float(v)) for v in diam]
    npt = len(arc)
    if npt < 2:
        raise ValueError("a section needs at least two 3D points")
    area = np.empty(nseg)
    r_left = np.empty(nseg)
    r_right = np.empty(nseg)
    fac = Ra / math.pi * (4.0 * 0.01)
    j = 0
    x1 = arc[0]
    y1 = dia[0]
    ds = arc[npt - 1] / nseg
    for inode in range(nseg):
        si = inode * ds
        a = 0.0
        for ihalf in range(2):
            ri = 0.0
            sip = si + ds / 2.0
            while True:
                jp = j + 1
                xj = arc[j]
                xjp = arc[jp]
                if xjp > sip or jp == npt - 1:
                    frac = 1.0 if abs(xjp - xj) < 1e-10 else (sip - xj) / (xjp - xj)
                    x2 = sip
                    y2 = (1.0 - frac) * dia[j] + frac * dia[jp]
                    jnext = j
                else:
                    x2 = xjp
                    y2 = dia[jp]
                    jnext = jp
                delta = x2 - x1
                if delta < 1e-15:
                    delta = 1e-15
                temp = y2 * y1 / delta
                if temp == 0:
                    temp = 1e-15
                ri += 1.0 / temp
                temp = 0.5 * (y2 - y1)
                temp = math.sqrt(delta * delta + temp * temp)
                a += (y2 + y1) * temp
                x1 = x2
                y1 = y2
                if j == jnext:
                    break
                j = jnext
            if ihalf == 0:
                r_left[inode] = ri * fac
            else:
                r_right[inode] = ri * fac
            si = sip
        area[inode] = a * 0.5 * math.pi
    return area, r_left, r_right


def lambda_f(arc, diam, freq: float, Ra: float, cm: float) -> float:
    """NEURON's `lambda_f(freq)` (stdlib.hoc): the AC length constant (um) at `freq` (Hz) of a
    section with 3D points, `L / \\sum_i \\Delta_i / \\lambda_i` with the pieces' own
    `lambda = 1e5 sqrt(d / (4 pi f Ra cm))`, d the mean of the end diameters (um)."""
    if cm == 0:
        return 1e10
    L = float(arc[-1])
    lam = 0.0
    x1, d1 = float(arc[0]), abs(float(diam[0]))
    for i in range(1, len(arc)):
        if d1 == 0:
            raise ValueError(f"0 diameter at 3D point {i - 1}")
        x2, d2 = float(arc[i]), abs(float(diam[i]))
        lam += (x2 - x1) / math.sqrt(d1 + d2)
        x1, d1 = x2, d2
    lam *= math.sqrt(2.0) * 1e-5 * math.sqrt(4.0 * math.pi * freq * Ra * cm)
    return L / lam if lam > 0 else math.inf


def d_lambda_nseg(arc, diam, *, d_lambda: float, freq: float, Ra: float, cm: float) -> int:
    """The d_lambda rule (Hines & Carnevale, The NEURON Book, ch. 5; fixnseg.hoc):
    `nseg = int((L / (d_lambda * lambda_f(freq)) + 0.9) / 2) * 2 + 1`, an odd number of segments
    each at most `d_lambda` AC length constants long."""
    L = float(arc[-1])
    lf = lambda_f(arc, diam, freq, Ra, cm)
    return int((L / (d_lambda * lf) + 0.9) / 2) * 2 + 1
