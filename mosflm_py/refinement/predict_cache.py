"""Prediction for image after image with a slowly changing crystal model (candidate cache).

:func:`mosflm_py.geometry.prediction.predict` solves the Ewald condition for every Miller index
within the resolution limit on each call, although only the few per cent whose diffraction angle
lies near the image can be on it.  :class:`PredictionCache` solves all of them once for a
*reference* model and keeps both diffraction angles φ₁, φ₂ of each index.  For a later model
M' = M + ΔM (refined missets or cell) every reciprocal-lattice vector moves by at most
ε|r|, ε = ‖ΔM·M⁻¹‖₂, so its diffraction angle moves by at most
Δφ ≤ ε |r| λ / |ζ| (radians; ζ = m·(ŝ1 × ŝ0), the Ewald-sphere crossing rate of
conventions.txt).  Only indices whose reference φ lies within that bound (plus ``window`` degrees)
of the image, and those that were near the blind region (no or nearly tangent solutions), are
passed to ``predict(hkl=...)``, which then computes them exactly — the result is the same as a
full prediction.  When ε exceeds ``max_change`` the reference is recomputed.

Indices are generated with a 1 % resolution margin and the predictions are cut to the exact
limits afterwards, so cell changes within ``max_change`` cannot lose reflections at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import (
    Predictions,
    ewald_terms,
    generate_hkl,
    phi_solutions,
    predict,
    rotate_about_axis,
)


@dataclass(frozen=True, eq=False)
class _Reference:
    ub: np.ndarray
    ub_inv: np.ndarray
    hkl: np.ndarray
    phi: tuple[np.ndarray, np.ndarray]     # reference diffraction angles (°), NaN = none
    sens: tuple[np.ndarray, np.ndarray]    # |r| λ / |ζ| (rad of φ per unit ε), inf near axis
    need: np.ndarray                       # relative change needed to reach the sphere (0: has one)


class PredictionCache:
    """Predictions over successive φ ranges reusing the Ewald solutions of a reference model.

    Parameters
    ----------
    max_change : largest relative change ε of the M·U·B matrix before the reference is
        recomputed (2e-3 ≈ 0.1° of rotation or 0.2 % of cell).
    window : extra φ (degrees) either side of the image for candidates (≥ predict's own 5° margin
        for wide rocking curves).
    max_entries : references kept (one per space group / resolution / beam / axis).
    """

    def __init__(self, max_change: float = 2e-3, window: float = 5.0, max_entries: int = 4):
        self.max_change = float(max_change)
        self.window = float(window)
        self.max_entries = int(max_entries)
        self._refs: dict[tuple, _Reference] = {}
        self.hits = 0
        self.misses = 0

    def _key(self, exp: Experiment, d_min: float, d_max: float | None) -> tuple:
        return (exp.crystal.space_group, round(float(d_min), 6),
                None if d_max is None else round(float(d_max), 6),
                tuple(np.round(exp.beam.s0, 10)), tuple(exp.goniometer.axis))

    def _reference(self, exp: Experiment, d_min: float, d_max: float | None) -> _Reference:
        cr = exp.crystal
        hkl = generate_hkl(cr, 0.99 * d_min, None if d_max is None else 1.01 * d_max)
        ub = cr.UB
        r0 = hkl.astype(float) @ ub.T
        s0, m = exp.beam.s0, exp.goniometer.axis
        a, b, c = ewald_terms(r0, s0, m)
        rho = np.hypot(a, b)
        solutions = phi_solutions(a, b, c)
        ok = np.isfinite(solutions[0])
        dstar = np.linalg.norm(r0, axis=1)
        s0n = s0 / np.linalg.norm(s0)
        phis, sens = [], []
        for p in solutions:
            phi = np.degrees(p)
            r = rotate_about_axis(r0, m, np.nan_to_num(phi))
            s1 = r + s0[None, :]
            s1n = s1 / np.linalg.norm(s1, axis=1)[:, None]
            zeta = np.abs(np.cross(s1n, s0n[None, :]) @ m)
            with np.errstate(divide="ignore"):
                sens.append(np.where(zeta > 1e-9, dstar * exp.beam.wavelength / zeta, np.inf))
            phis.append(phi)
        # no solution: |c| > ρ; a change ε moves ρ by ≤ |s0||r|ε and c by ≤ |r|²ε + |s0||r|ε
        with np.errstate(invalid="ignore", divide="ignore"):
            need = np.where(ok, 0.0, (np.abs(c) - rho)
                            / (2.0 * np.linalg.norm(s0) * dstar + dstar**2))
        return _Reference(ub=ub, ub_inv=np.linalg.inv(ub), hkl=hkl, phi=(phis[0], phis[1]),
                          sens=(sens[0], sens[1]), need=np.nan_to_num(need, nan=np.inf))

    def predict(self, experiment: Experiment, phi_start: float, phi_end: float,
                d_min: float | None = None, d_max: float | None = None) -> Predictions:
        """Same result as ``predict(experiment, phi_start, phi_end, d_min, d_max)``."""
        if d_min is None:
            d_min = experiment.detector.max_resolution(experiment.beam.wavelength)
        key = self._key(experiment, d_min, d_max)
        ref = self._refs.get(key)
        ub = experiment.crystal.UB
        eps = np.inf if ref is None else float(np.linalg.norm((ub - ref.ub) @ ref.ub_inv, 2))
        if eps > self.max_change:
            self.misses += 1
            ref = self._reference(experiment, d_min, d_max)
            self._refs.pop(key, None)
            if len(self._refs) >= self.max_entries:
                self._refs.pop(next(iter(self._refs)))
            self._refs[key] = ref
            eps = float(np.linalg.norm((ub - ref.ub) @ ref.ub_inv, 2))
        else:
            self.hits += 1
        bound = 2.0 * max(self.max_change, eps)
        mid, half = 0.5 * (phi_start + phi_end), 0.5 * (phi_end - phi_start)
        sel = (ref.need > 0) & (ref.need <= 2.0 * bound)
        for phi, sens in zip(ref.phi, ref.sens):
            reach = half + self.window + np.degrees(bound * sens)
            dist = np.abs(np.mod(phi - mid + 180.0, 360.0) - 180.0)
            sel |= dist <= reach  # NaN compares False
        pred = predict(experiment, phi_start, phi_end, d_min=d_min, d_max=d_max,
                       hkl=ref.hkl[sel])
        keep = pred.d >= d_min
        if d_max is not None:
            keep &= pred.d <= d_max
        return pred if keep.all() else pred.select(keep)


_CACHE = PredictionCache()


def predict_cached(experiment: Experiment, phi_start: float, phi_end: float,
                   d_min: float | None = None, d_max: float | None = None) -> Predictions:
    """:meth:`PredictionCache.predict` with a process-wide cache (see module notes)."""
    return _CACHE.predict(experiment, phi_start, phi_end, d_min, d_max)
