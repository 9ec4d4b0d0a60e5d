"""Active-pixel mask (NULLPIX, gaps, BACKSTOP, LIMITS EXCLUDE/QUADRILATERAL) and resolution
of detector positions (from :class:`mosflm_py.geometry.detector.Detector`, the model prediction
uses; spot finding keeps no detector geometry of its own)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mosflm_py.errors import BadData, BadParameter, GeometryError
from mosflm_py.geometry.detector import Detector
from mosflm_py.spotfinding.types import ICE_RINGS_A


def build_mask(
    shape: tuple[int, int],
    pixel_slow: float,
    pixel_fast: float,
    nullpix: float | None,
    frame: np.ndarray | None = None,
    backstop: tuple[float, float, float] | None = None,
    excludes: Sequence[tuple[float, float, float, float]] = (),
    quadrilaterals: Sequence[Sequence[tuple[float, float]]] = (),
) -> np.ndarray:
    """Boolean active-pixel mask ``[slow, fast]`` (True = usable).

    Parameters
    ----------
    shape : (int, int)
        Image shape (slow, fast).
    pixel_slow, pixel_fast : float
        Pixel sizes (mm).
    nullpix : float or None
        Pixels with value <= nullpix are inactive (NULLPIX). Negative and non-finite pixels
        (Pilatus gaps are -1, bad pixels -2) are always inactive.
    frame : ndarray, optional
        Image data; needed for the NULLPIX / gap test.
    backstop : (x, y, r), optional
        Backstop shadow: centre (mm, MOSFLM X slow, Y fast) and radius (mm).
    excludes : sequence of (x1, x2, y1, y2)
        Rectangles in mm (LIMITS EXCLUDE); X range along slow, Y range along fast.
    quadrilaterals : sequence of 4 (x, y) corners (mm)
        Polygons (LIMITS QUADRILATERAL), corners in order around the edge.

    Returns
    -------
    ndarray of bool
        A pixel is masked by a shape when its centre ((i + 0.5) * pixel mm) lies inside it.
    """
    ns, nf = int(shape[0]), int(shape[1])
    if pixel_slow <= 0 or pixel_fast <= 0:
        raise GeometryError(f"pixel size must be positive (got {pixel_slow}, {pixel_fast} mm)")
    if frame is not None:
        if frame.shape != (ns, nf):
            raise BadData(f"image shape {frame.shape} does not match SIZE {ns} {nf}")
        if np.issubdtype(frame.dtype, np.floating):
            mask = np.isfinite(frame) & (frame >= 0)
        else:
            mask = frame >= 0
        if nullpix is not None:
            mask &= frame > nullpix
    else:
        mask = np.ones((ns, nf), bool)
    if backstop is not None:
        bx, by, br = (float(v) for v in backstop)
        if br < 0:
            raise BadParameter(f"BACKSTOP radius must not be negative (got {br} mm)")
        i0, i1 = _index_range(bx - br, bx + br, pixel_slow, ns)
        j0, j1 = _index_range(by - br, by + br, pixel_fast, nf)
        if i1 > i0 and j1 > j0:
            xs = (np.arange(i0, i1) + 0.5) * pixel_slow - bx
            ys = (np.arange(j0, j1) + 0.5) * pixel_fast - by
            inside = xs[:, None] ** 2 + ys[None, :] ** 2 <= br * br
            mask[i0:i1, j0:j1] &= ~inside
    for rect in excludes:
        x1, x2, y1, y2 = (float(v) for v in rect)
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
        i0, i1 = _index_range(x1, x2, pixel_slow, ns)
        j0, j1 = _index_range(y1, y2, pixel_fast, nf)
        mask[i0:i1, j0:j1] = False
    for quad in quadrilaterals:
        pts = np.asarray(quad, float)
        if pts.shape != (4, 2):
            raise BadParameter("LIMITS QUADRILATERAL needs 4 corners x1 y1 x2 y2 x3 y3 x4 y4 (mm)")
        i0, i1 = _index_range(pts[:, 0].min(), pts[:, 0].max(), pixel_slow, ns)
        j0, j1 = _index_range(pts[:, 1].min(), pts[:, 1].max(), pixel_fast, nf)
        if i1 > i0 and j1 > j0:
            xs = (np.arange(i0, i1) + 0.5) * pixel_slow
            ys = (np.arange(j0, j1) + 0.5) * pixel_fast
            inside = _inside_polygon(xs[:, None], ys[None, :], pts)
            mask[i0:i1, j0:j1] &= ~inside
    return mask


def _index_range(lo_mm: float, hi_mm: float, pixel: float, n: int) -> tuple[int, int]:
    """Pixel index range [i0, i1) whose centres can lie within [lo_mm, hi_mm]."""
    i0 = int(np.clip(np.floor(lo_mm / pixel - 0.5), 0, n))
    i1 = int(np.clip(np.ceil(hi_mm / pixel + 0.5), 0, n))
    return i0, i1


def _inside_polygon(x: np.ndarray, y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd (crossing-number) point-in-polygon test, broadcasting x against y."""
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape), bool)
    n = len(pts)
    for k in range(n):
        xa, ya = pts[k]
        xb, yb = pts[(k + 1) % n]
        if ya == yb:
            continue
        crosses = (ya > y) != (yb > y)
        xint = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < xint)
    return inside


def resolution_at(
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    det: Detector,
    wavelength: float,
    d_map: np.ndarray | None = None,
) -> np.ndarray:
    """Resolution d (Angstrom) at detector positions (mm, X slow, Y fast).

    From the detector model prediction uses (:meth:`Detector.resolution_of`: two-theta swing,
    DETECTOR OMEGA, TILT/TWIST), d = λ / (2 sin θ).  A per-pixel ``d_map`` ([slow, fast],
    Angstrom), if given, is sampled instead.
    """
    x_mm = np.asarray(x_mm, float)
    y_mm = np.asarray(y_mm, float)
    if d_map is not None:
        i = np.clip((x_mm / det.pixel_slow).astype(np.int64), 0, d_map.shape[0] - 1)
        j = np.clip((y_mm / det.pixel_fast).astype(np.int64), 0, d_map.shape[1] - 1)
        return np.asarray(d_map[i, j], float)
    if not len(x_mm):
        return np.zeros(0)
    return det.resolution_of(x_mm, y_mm, wavelength)


def on_ice_ring(d: np.ndarray, half_width_dstar: float,
                rings: Sequence[float] | None = None) -> np.ndarray:
    """True where ``|1/d - 1/d_ice| < half_width_dstar`` for any standard ice ring."""
    rings = ICE_RINGS_A if rings is None else rings
    with np.errstate(divide="ignore"):
        dstar = 1.0 / np.asarray(d, float)
    ice = 1.0 / np.asarray(rings, float)
    return np.any(np.abs(dstar[:, None] - ice[None, :]) < half_width_dstar, axis=1)
