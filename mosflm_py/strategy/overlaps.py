"""Spatial overlaps against oscillation angle (MOSFLM's TESTGEN), pure functions.

For an image starting at φ with oscillation Δφ, the reflections recorded on it are those whose
rocking curve (width from the mosaic spread, beam divergence and dispersion;
:func:`mosflm_py.geometry.prediction.predict`) reaches into [φ, φ + Δφ).  A reflection is
spatially overlapped when another reflection on the same image lies closer than SEPARATION in
detector X *and* Y (the test PROCESS uses, :func:`mosflm_py.spotfinding.filters.too_close`).
The number overlapped never falls as Δφ grows (the set of reflections on the image only grows),
so the largest Δφ with at most the allowed percentage overlapped is found by bisection on a grid
of ``osc_step`` between MINOSC and MAXOSC.  MOSFLM TESTGEN keyword (Leslie, MOSFLM user guide
§4.3): "the MAXIMUM oscillation angle which gives fewer than x overlaps (x a percentage of the
reflections generated) ... using oscillations between oscmin and oscmax".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import generate_hkl, predict
from mosflm_py.spotfinding.filters import too_close

__all__ = ["OscillationRow", "max_oscillation", "overlaps_at"]


@dataclass(frozen=True)
class OscillationRow:
    """One row of the TESTGEN table.

    phi : image start (deg).  oscillation : the largest allowed oscillation (deg), or None when
    even the smallest one overlaps too much (then the counts are for the smallest).
    n_reflections, n_overlapped : on the image of that oscillation.
    """

    phi: float
    oscillation: float | None
    n_reflections: int
    n_overlapped: int

    @property
    def percent(self) -> float:
        """Percentage of the reflections on the image that are overlapped."""
        return 100.0 * self.n_overlapped / self.n_reflections if self.n_reflections else 0.0


def _on_image(phi_c: np.ndarray, width: np.ndarray, lo: float, hi: float) -> np.ndarray:
    half = 0.5 * np.nan_to_num(width, posinf=360.0)
    return (phi_c - half < hi) & (phi_c + half > lo) | ((phi_c >= lo) & (phi_c < hi))


def _count(pred, sel: np.ndarray, separation: tuple[float, float]) -> tuple[int, int]:
    n = int(np.count_nonzero(sel))
    if n < 2:
        return n, 0
    close = too_close(pred.x_mm[sel], pred.y_mm[sel], float(separation[0]), float(separation[1]))
    return n, int(np.count_nonzero(close))


def overlaps_at(
    experiment: Experiment,
    phi: float,
    oscillations: Sequence[float],
    separation: tuple[float, float],
    d_min: float,
    d_max: float | None = None,
) -> list[tuple[int, int]]:
    """(reflections, overlapped) on an image starting at ``phi`` for each oscillation (deg)."""
    hkl = generate_hkl(experiment.crystal, d_min, d_max)
    top = max(float(o) for o in oscillations)
    pred = predict(experiment, phi, phi + top, d_min=d_min, d_max=d_max, hkl=hkl)
    return [
        _count(pred, _on_image(pred.phi, pred.width, phi, phi + float(o)), separation)
        for o in oscillations
    ]


def max_oscillation(
    experiment: Experiment,
    phi_starts: Sequence[float],
    separation: tuple[float, float],
    d_min: float,
    d_max: float | None = None,
    max_overlap_percent: float = 0.0,
    minosc: float = 0.2,
    maxosc: float = 5.0,
    osc_step: float = 0.05,
) -> list[OscillationRow]:
    """The largest oscillation (deg) with at most ``max_overlap_percent`` % overlapped, per start.

    Parameters
    ----------
    experiment : with the crystal (orientation, mosaic spread) and detector.
    phi_starts : image start angles to test (deg).
    separation : SEPARATION in X and Y (mm).
    d_min, d_max : resolution limits (Å).
    max_overlap_percent : OVERLAP x (percent, default 0).
    minosc, maxosc : range of oscillations considered (deg); ``osc_step`` their grid (deg).
    """
    hkl = generate_hkl(experiment.crystal, d_min, d_max)
    grid = np.round(np.arange(minosc, maxosc + 0.5 * osc_step, osc_step), 6)
    return [
        _largest(experiment, float(phi), grid, hkl, separation, d_min, d_max, max_overlap_percent)
        for phi in phi_starts
    ]


def _largest(
    experiment: Experiment,
    phi: float,
    grid: np.ndarray,
    hkl: np.ndarray,
    separation: tuple[float, float],
    d_min: float,
    d_max: float | None,
    max_overlap_percent: float,
) -> OscillationRow:
    """Bisection for the last oscillation on ``grid`` with few enough overlaps."""
    pred = predict(experiment, phi, phi + float(grid[-1]), d_min=d_min, d_max=d_max, hkl=hkl)

    def at(k: int) -> tuple[int, int]:
        return _count(pred, _on_image(pred.phi, pred.width, phi, phi + float(grid[k])), separation)

    def fine(k: int) -> bool:
        n, o = at(k)
        return o <= max_overlap_percent / 100.0 * n + 1e-9

    if not fine(0):
        n, o = at(0)
        return OscillationRow(phi, None, n, o)
    lo, hi = 0, len(grid)  # fine(lo) holds; find the last k that is fine
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fine(mid):
            lo = mid
        else:
            hi = mid
    n, o = at(lo)
    return OscillationRow(phi, float(grid[lo]), n, o)
