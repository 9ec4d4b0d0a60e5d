"""MOSFLM measurement box (RASTER NXS NYS NC NRX NRY): masks, automatic size, optimisation.

The box is NXS x NYS pixels (NXS along the detector slow direction X, NYS along fast Y; both
odd) centred on the pixel that contains the predicted spot position.  Offsets ``dx`` (slow) and
``dy`` (fast) are integers relative to that centre pixel, half-widths ``hx = (NXS-1)/2`` and
``hy = (NYS-1)/2``.

* box pixels:  ``|dx| <= hx``, ``|dy| <= hy``, ``|dx| + |dy| <= NC`` (octagon: NC cuts the corners);
* peak pixels: ``|dx| <= hx - NRX``, ``|dy| <= hy - NRY`` and the diagonal edge moved inward by
  the rim, ``|dx| + |dy| <= NC - sqrt(2) * (NRX + NRY) / 2`` (a perpendicular shift of the
  corner cut by the mean rim width);
* background = box minus peak.

This geometry is inferred (algorithms.md section 6): for RASTER 17 19 13 6 6 it gives a 5 x 7 peak
minus its four corner pixels = 31 peak pixels with rows of width 3,5,5,5,5,5,3, as MOSFLM prints.

Reference: Leslie, A. G. W. (1999). Acta Cryst. D55, 1696-1702.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError

OUTSIDE, PEAK, BACKGROUND = 0, 1, 2
"""Mask codes: pixel outside the octagonal box, in the peak region, in the background rim."""


@dataclass(frozen=True)
class Raster:
    """RASTER NXS NYS NC NRX NRY (pixels; NXS along slow X, NYS along fast Y)."""

    nxs: int
    nys: int
    nc: int
    nrx: int
    nry: int

    def __post_init__(self) -> None:
        for name in ("nxs", "nys", "nc", "nrx", "nry"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise IntegrationError(f"RASTER {name.upper()} must be a non-negative integer")
        if self.nxs % 2 == 0 or self.nys % 2 == 0 or self.nxs < 3 or self.nys < 3:
            raise IntegrationError(
                f"RASTER box {self.nxs} x {self.nys} must have odd sizes of at least 3 pixels"
            )
        if 2 * self.nrx > self.nxs - 1 or 2 * self.nry > self.nys - 1:
            raise IntegrationError(
                f"RASTER background rim {self.nrx} {self.nry} leaves no peak in a "
                f"{self.nxs} x {self.nys} box"
            )
        if np.count_nonzero(self.peak_mask()) == 0:
            raise IntegrationError(
                f"RASTER {self.as_tuple()}: corner cut-off NC={self.nc} leaves no peak pixels"
            )

    @property
    def hx(self) -> int:
        return (self.nxs - 1) // 2

    @property
    def hy(self) -> int:
        return (self.nys - 1) // 2

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.nxs, self.nys, self.nc, self.nrx, self.nry)

    def offsets(self) -> tuple[np.ndarray, np.ndarray]:
        """Integer offsets ``dx`` (slow, axis 0) and ``dy`` (fast, axis 1), shape (NXS, NYS)."""
        dx = np.arange(-self.hx, self.hx + 1)[:, None]
        dy = np.arange(-self.hy, self.hy + 1)[None, :]
        return np.broadcast_to(dx, (self.nxs, self.nys)), np.broadcast_to(dy, (self.nxs, self.nys))

    def box_mask(self) -> np.ndarray:
        """Boolean (NXS, NYS): pixel belongs to the octagonal measurement box."""
        dx, dy = self.offsets()
        return (np.abs(dx) + np.abs(dy)) <= self.nc

    def peak_mask(self, trim: int = 0) -> np.ndarray:
        """Boolean (NXS, NYS): peak region, shrunk by ``trim`` pixels (SEPARATION TRIM)."""
        dx, dy = np.abs(self.offsets()[0]), np.abs(self.offsets()[1])
        diag = self.nc - math.sqrt(2.0) * 0.5 * (self.nrx + self.nry) + 1e-9 - trim
        return (
            (dx <= self.hx - self.nrx - trim)
            & (dy <= self.hy - self.nry - trim)
            & ((dx + dy) <= diag)
        )

    def mask(self) -> np.ndarray:
        """int8 (NXS, NYS) with OUTSIDE / PEAK / BACKGROUND codes."""
        out = np.zeros((self.nxs, self.nys), np.int8)
        out[self.box_mask()] = BACKGROUND
        out[self.peak_mask() & self.box_mask()] = PEAK
        return out

    def n_peak(self) -> int:
        return int(np.count_nonzero(self.mask() == PEAK))

    def n_background(self) -> int:
        return int(np.count_nonzero(self.mask() == BACKGROUND))


def nc_for_peak(pc: int, nrx: int, nry: int) -> int:
    """Smallest integer NC whose peak diagonal admits ``|dx|+|dy| <= pc`` with rims NRX, NRY."""
    return int(math.ceil(pc + math.sqrt(2.0) * 0.5 * (nrx + nry) - 1e-6))


def _nc_for(px: int, py: int, nrx: int, nry: int, pc: int) -> int:
    """Smallest integer NC whose peak diagonal admits ``|dx|+|dy| <= pc``."""
    return nc_for_peak(pc, nrx, nry)


def auto_raster(median_spot_size_px: tuple[float, float] | float) -> Raster:
    """Measurement box from the median spot size (full widths in pixels, slow then fast).

    The one RASTER rule of the program (the spot finder's proposal,
    :func:`mosflm_py.spotfinding.filters.raster_from_spot_size`, calls this).  Per axis, with
    ``s = max(1, ceil(size))``: box ``N = 2 s + 7``, peak width ``p = s + 2`` rounded up to odd,
    background rim ``NR = (N - p) / 2``; corner cut-off ``NC = min(NXS, NYS) - 4`` but at least
    the value that keeps the diamond ``|dx| + |dy| <= min(px, py)`` in the peak (``px``, ``py``
    the peak half-widths).  Derived from MOSFLM's log "median spot size of 3 by 5 pixels ... box
    parameters have been set to 13 17 9 4 5", which it reproduces; RASTER 17 19 13 6 6 of
    another log is the same rule for 5 x 5 pixel spots with 6-pixel rims.  The peak region is
    only a starting point: PROFILE OPTIMISE re-draws it for every standard profile.

    Parameters
    ----------
    median_spot_size_px : (float, float) or float
        Median spot full width along slow (X) and fast (Y), pixels.
    """
    sx, sy = (
        (float(median_spot_size_px), float(median_spot_size_px))
        if np.ndim(median_spot_size_px) == 0
        else (float(median_spot_size_px[0]), float(median_spot_size_px[1]))
    )
    if not (np.isfinite(sx) and np.isfinite(sy)) or sx <= 0 or sy <= 0:
        raise IntegrationError(f"median spot size {sx} x {sy} pixels is not positive")

    def axis(size: float) -> tuple[int, int, int]:
        s = max(1, math.ceil(size - 1e-9))
        n = 2 * s + 7
        p = s + 2 if (s + 2) % 2 == 1 else s + 3
        return n, (n - p) // 2, (p - 1) // 2

    nxs, nrx, px = axis(sx)
    nys, nry, py = axis(sy)
    nc = max(min(nxs, nys) - 4, _nc_for(px, py, nrx, nry, min(px, py)))
    return Raster(nxs, nys, nc, nrx, nry)


def fraction_outside_peak(profile: np.ndarray, raster: Raster) -> float:
    """Fraction of the profile's integrated intensity (within the box) outside the peak."""
    box, peak = raster.box_mask(), raster.peak_mask() & raster.box_mask()
    p = np.where(box, np.clip(profile, 0.0, None), 0.0)
    total = float(p.sum())
    if total <= 0.0:
        return 1.0
    return float(p[box & ~peak].sum()) / total


def optimise_raster(
    profile: np.ndarray,
    raster: Raster,
    tolerance: float = 0.02,
    boundary: int = 6,
    fixbox: bool = True,
    total: float | None = None,
) -> tuple[Raster, float]:
    """Smallest peak region holding all but ``tolerance`` of a standard profile (PROFILE OPTIMISE).

    The search runs over peak half-widths (``px``, ``py``) and diagonal cut ``pc``; the rims
    ``NRX = hx - px`` and ``NRY = hy - py`` may not fall below ``min(boundary, raster.nrx)``
    (resp. NRY) with FIXBOX.  With NOFIXBOX the box grows so that both rims are at least
    ``boundary`` pixels around the chosen peak (the profile beyond the current box is unknown and
    counted as zero).  Ties are broken by the smaller outside fraction.

    Parameters
    ----------
    profile : ndarray (NXS, NYS)
        Background-subtracted standard profile on the current box grid (any scale).
    raster : Raster
        Current box.
    tolerance : float
        Allowed fraction of the profile outside the peak (PROFILE TOLERANCE, 0.02 centre,
        0.03 edge).
    boundary : int
        Minimum background rim (PROFILE BOUNDARY), pixels.
    fixbox : bool
        Keep NXS, NYS fixed (FIXBOX).
    total : float, optional
        The spot's whole integrated intensity when it is known (a model spot), else the sum
        over the box; the part beyond the box then counts as outside the peak.

    Returns
    -------
    (Raster, float)
        The optimised raster and the fraction of the profile outside its peak.
    """
    profile = np.asarray(profile, dtype=np.float64)
    if profile.shape != (raster.nxs, raster.nys):
        raise IntegrationError(
            f"profile shape {profile.shape} does not match RASTER {raster.nxs} x {raster.nys}"
        )
    box = raster.box_mask()
    p = np.where(box, np.clip(profile, 0.0, None), 0.0)
    total = float(p.sum()) if total is None else float(total)
    if total <= 0.0:
        return raster, 1.0
    adx, ady = np.abs(raster.offsets()[0]), np.abs(raster.offsets()[1])
    min_rx = min(boundary, raster.nrx) if fixbox else 1
    min_ry = min(boundary, raster.nry) if fixbox else 1
    best: tuple[int, float, int, int, int] | None = None
    for px in range(0, raster.hx - min_rx + 1):
        for py in range(0, raster.hy - min_ry + 1):
            for pc in range(max(px, py), px + py + 1):
                peak = (adx <= px) & (ady <= py) & ((adx + ady) <= pc) & box
                outside = 1.0 - float(p[peak].sum()) / total
                if outside > tolerance:
                    continue
                key = (int(peak.sum()), outside, px, py, pc)
                if best is None or key[:2] < best[:2]:
                    best = key
    if best is None:
        peak = raster.peak_mask() & box
        return raster, 1.0 - float(p[peak].sum()) / total
    _, outside, px, py, pc = best
    if fixbox:
        nrx, nry = raster.hx - px, raster.hy - py
        new = Raster(raster.nxs, raster.nys, _nc_for(px, py, nrx, nry, pc), nrx, nry)
    else:
        nrx, nry = max(boundary, 1), max(boundary, 1)
        nc = _nc_for(px, py, nrx, nry, pc)
        new = Raster(2 * (px + nrx) + 1, 2 * (py + nry) + 1, nc, nrx, nry)
    return new, outside


MOMENT_ITERATIONS = 30
"""Iterations of the adaptive (Gaussian-weighted) second-moment measurement."""


def spot_covariance(profile: np.ndarray, raster: Raster) -> np.ndarray | None:
    """Covariance (2 x 2, pixels²; slow, fast) of a centred spot from its standard profile.

    Adaptive second moments (Bernstein & Jarvis 2002, AJ 123, 583): moments weighted by an
    elliptical Gaussian that is iterated to match the spot; for a Gaussian spot of covariance
    C the weighted moments are C/2, so C = 2 M.  The weight makes the result insensitive to
    the noise and any small pedestal (background bias, neighbours' tails) in the rim, where
    plain moments (weighted by r²) are dominated by it.  Returns None when the profile has no
    measurable peak.

    Parameters
    ----------
    profile : ndarray (NXS, NYS)
        Background-subtracted profile of a spot centred on the box centre (any scale).
    raster : Raster
        The box the profile is sampled on.
    """
    p = np.where(raster.box_mask(), np.asarray(profile, np.float64), 0.0)
    dx, dy = (o.astype(np.float64) for o in raster.offsets())
    cov = np.eye(2)
    for _ in range(MOMENT_ITERATIONS):
        inv = np.linalg.inv(cov)
        q = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
        w = p * np.exp(-0.5 * q)
        s = w.sum()
        if not s > 0:
            return None
        mx, my = (w * dx).sum() / s, (w * dy).sum() / s
        m = (
            np.array(
                [
                    [(w * (dx - mx) ** 2).sum(), (w * (dx - mx) * (dy - my)).sum()],
                    [0.0, (w * (dy - my) ** 2).sum()],
                ]
            )
            / s
        )
        m[1, 0] = m[0, 1]
        new = 2.0 * m
        if not (np.all(np.isfinite(new)) and np.linalg.det(new) > 1e-6 and new[0, 0] > 0):
            return None
        # a spot whose rms width reaches half the box is not measured by it (noise, or a box
        # far too small): no estimate
        if max(new[0, 0], new[1, 1]) > 0.25 * float(min(raster.hx, raster.hy)) ** 2:
            return None
        if np.allclose(new, cov, rtol=1e-4, atol=1e-6):
            return new
        cov = new
    return cov


def gaussian_spot(cov: np.ndarray, raster: Raster) -> np.ndarray:
    """A centred 2-D Gaussian spot of covariance ``cov`` (pixels²) on the box grid, each pixel
    the Gaussian's integral over it (3 x 3 sub-samples); the spot's total is 1."""
    inv = np.linalg.inv(cov)
    dx, dy = (o.astype(np.float64) for o in raster.offsets())
    out = np.zeros(dx.shape)
    for sx in (-1 / 3, 0.0, 1 / 3):
        for sy in (-1 / 3, 0.0, 1 / 3):
            x, y = dx + sx, dy + sy
            out += np.exp(-0.5 * (inv[0, 0] * x * x + 2 * inv[0, 1] * x * y + inv[1, 1] * y * y))
    return out / (9.0 * 2.0 * np.pi * np.sqrt(np.linalg.det(cov)))
