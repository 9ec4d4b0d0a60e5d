"""Spot-level rules: automatic threshold, shape tests, separation, AUTORESLN, and the
SEPARATION / RASTER values implied by the median spot size."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mosflm_py.integration.box import auto_raster

AUTO_THRESHOLDS = (5.0, 10.0, 20.0)
"""Thresholds (σ) the automatic choice picks from (MOSFLM: "threshold auto-set")."""
AUTO_MEDIAN_PEAK_FOR = {10.0: 40.0, 20.0: 100.0}
"""Median peak significance (σ) of the 5σ spots above which a threshold is used."""
AUTO_MIN_SPOTS = 50
"""A raised threshold is only kept if it still gives at least this many spots."""
AUTO_MANY_SPOTS = 1000
"""The threshold is only raised on images with at least this many spots at 5σ."""


def choose_auto_threshold(peak_significance: np.ndarray) -> float:
    """Threshold for ``THRESHOLD auto`` from the spots found at 5σ.

    Rule (ours; MOSFLM only documents "auto-set, default 5"): if at least
    :data:`AUTO_MANY_SPOTS` spots were found at 5σ, with m the median of their peak significance
    ((peak - background) / σ), use 20 if m >= 100, 10 if m >= 40, else 5.
    A strong image then keeps its well-measured spots without the merging of neighbours and
    the diffuse-scatter spots a 5σ threshold admits; the caller falls back to 5 when the higher
    threshold leaves fewer than :data:`AUTO_MIN_SPOTS` spots.
    """
    z = np.asarray(peak_significance, float)
    if z.size < AUTO_MANY_SPOTS:
        return AUTO_THRESHOLDS[0]
    m = float(np.median(z))
    for t in sorted(AUTO_MEDIAN_PEAK_FOR, reverse=True):
        if m >= AUTO_MEDIAN_PEAK_FOR[t]:
            return t
    return AUTO_THRESHOLDS[0]


def anisotropy(mss: np.ndarray, mff: np.ndarray, msf: np.ndarray) -> np.ndarray:
    """Ratio of major to minor r.m.s. axis from second central moments (pixels²).

    1/12 px² (a uniformly filled pixel) is added to both principal variances so one-pixel-wide
    spots give a finite ratio.
    """
    tr = mss + mff
    det = mss * mff - msf * msf
    disc = np.sqrt(np.maximum(tr * tr / 4.0 - det, 0.0))
    lmax = tr / 2.0 + disc + 1.0 / 12.0
    lmin = np.maximum(tr / 2.0 - disc, 0.0) + 1.0 / 12.0
    return np.sqrt(lmax / lmin)


def too_close(x_mm: np.ndarray, y_mm: np.ndarray, sep_x: float, sep_y: float) -> np.ndarray:
    """True for spots with another spot closer than ``sep_x`` in X **and** ``sep_y`` in Y (mm)."""
    n = len(x_mm)
    out = np.zeros(n, bool)
    if n < 2 or sep_x <= 0 or sep_y <= 0:
        return out
    pts = np.column_stack([np.asarray(x_mm) / sep_x, np.asarray(y_mm) / sep_y])
    pairs = cKDTree(pts).query_pairs(r=1.0, p=np.inf, output_type="ndarray")
    if len(pairs):
        d = np.abs(pts[pairs[:, 0]] - pts[pairs[:, 1]])
        close = (d[:, 0] < 1.0) & (d[:, 1] < 1.0)
        out[pairs[close, 0]] = True
        out[pairs[close, 1]] = True
    return out


AUTORESLN_MAX_SPOTS = 300
"""AUTORESLN only acts on weak images: fewer accepted spots than this."""
AUTORESLN_SHELLS = 8
AUTORESLN_FRACTION = 0.1


def autoresln_limit(d: np.ndarray) -> float | None:
    """Resolution limit (Angstrom) for a weak image, or None to keep all spots.

    Rule (ours): on images with fewer than :data:`AUTORESLN_MAX_SPOTS` spots, histogram the
    spots in 8 shells of equal reciprocal volume (equal steps of d*³) up to the outermost spot;
    the outermost shells holding less than 10 % of the fullest shell's count (where only noise
    and zingers remain on a weak image) are cut off.
    """
    d = np.asarray(d, float)
    d = d[np.isfinite(d) & (d > 0)]
    if d.size < 20 or d.size >= AUTORESLN_MAX_SPOTS:
        return None
    s3 = (1.0 / d) ** 3
    edges = np.linspace(0.0, s3.max() * (1 + 1e-9), AUTORESLN_SHELLS + 1)
    counts, _ = np.histogram(s3, edges)
    kpk = int(np.argmax(counts))
    low = counts < AUTORESLN_FRACTION * counts[kpk]
    k = AUTORESLN_SHELLS
    while k - 1 > kpk and low[k - 1]:
        k -= 1
    if k == AUTORESLN_SHELLS:
        return None
    return float(edges[k] ** (-1.0 / 3.0))


def separation_from_spot_size(size_x: float, size_y: float, pixel_slow: float,
                              pixel_fast: float) -> tuple[float, float]:
    """SEPARATION (mm) implied by the median spot size (pixels): ``(size + 2) * pixel``,
    truncated to 0.01 mm.

    Reproduces MOSFLM's example: median 3 x 5 px on 0.1024 mm pixels -> 0.51 0.71 mm.
    """
    sx = np.floor((np.ceil(size_x) + 2) * pixel_slow * 100 + 1e-6) / 100
    sy = np.floor((np.ceil(size_y) + 2) * pixel_fast * 100 + 1e-6) / 100
    return float(sx), float(sy)


def raster_from_spot_size(size_x: float, size_y: float) -> tuple[int, int, int, int, int]:
    """RASTER NXS NYS NC NRX NRY implied by the median spot size (pixels).

    The program's one box rule, :func:`mosflm_py.integration.auto_raster` (13 17 9 4 5 for
    MOSFLM's "median spot size of 3 by 5 pixels").
    """
    return auto_raster((size_x, size_y)).as_tuple()
