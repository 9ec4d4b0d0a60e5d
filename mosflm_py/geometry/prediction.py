"""Closed-form prediction of rotation-method reflections, rocking widths and partiality.

For r0 = M·U·B·h at φ = 0 and rotation axis m, r(φ) = r∥ + r⊥ cos φ + (m × r0) sin φ.  The
Ewald condition |s0 + r| = |s0| becomes a cos φ + b sin φ = c with a = s0·r⊥, b = s0·(m × r0),
c = −|r0|²/2 − s0·r∥, solved by φ = atan2(b, a) ± arccos(c / √(a² + b²)).

The reciprocal-lattice point is a uniform ball of radius ρ = ½ d* (η + δ) + ½ d* tan θ Δλ/λ that
crosses the sphere at |s0| |ζ| per radian (ζ = m·(ŝ1 × ŝ0)), so the full rocking width is
W = 2ρ / (|s0| |ζ|) and the recorded fraction is P(q) = 3q² − 2q³ (Rossmann 1979, J. Appl. Cryst.
12, 225–238; Greenhough & Helliwell 1982, J. Appl. Cryst. 15, 338–351), convolved with the
Gaussian of the mosaic-block size: :mod:`mosflm_py.geometry.rocking_curve` owns that model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.crystal import Crystal, b_matrix
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.rocking_curve import (  # noqa: F401 - the first three re-exported
    cumulative_fraction,
    extent,
    fraction_on_image,
    rocking_width,
    rocking_widths,
)


def generate_hkl(crystal: Crystal, d_min: float, d_max: float | None = None) -> np.ndarray:
    """All Miller indices (N, 3) int32 with d_min ≤ d (≤ d_max), excluding 0 0 0.

    Systematic absences are removed when the space group is known to gemmi.  Results are cached
    (keyed by cell rounded to 1e-4, space group and limits): the array returned is read-only.
    """
    if not d_min > 0:
        raise GeometryError(f"resolution limit must be positive, got {d_min}")
    key = (tuple(round(c, 4) for c in crystal.cell), crystal.space_group, round(d_min, 4),
           None if d_max is None else round(d_max, 4))
    hit = _HKL_CACHE.get(key)
    if hit is None:
        hit = _generate_hkl(crystal, d_min, d_max)
        hit.setflags(write=False)
        if len(_HKL_CACHE) >= 8:
            _HKL_CACHE.pop(next(iter(_HKL_CACHE)))
        _HKL_CACHE[key] = hit
    return hit


_HKL_CACHE: dict[tuple, np.ndarray] = {}


def _generate_hkl(crystal: Crystal, d_min: float, d_max: float | None) -> np.ndarray:
    """Uncached :func:`generate_hkl`."""
    # |h| <= a_perp/d_min bounds: use the real-cell lengths divided by d_min (safe upper bound).

    bm = b_matrix(crystal.cell)
    real = np.linalg.inv(bm).T  # rows: real-space a, b, c (Å) in the crystal frame
    hmax, kmax, lmax = (int(np.floor(np.linalg.norm(v) / d_min)) + 1 for v in real)
    ks, ls = np.meshgrid(np.arange(-kmax, kmax + 1), np.arange(-lmax, lmax + 1), indexing="ij")
    ks, ls = ks.ravel(), ls.ravel()
    dstar_max2 = 1.0 / d_min**2
    dstar_min2 = 0.0 if d_max is None else 1.0 / d_max**2
    chunks = []
    for h in range(-hmax, hmax + 1):
        hkl = np.column_stack([np.full(ks.shape, h), ks, ls])
        r = hkl @ bm.T
        s2 = np.einsum("ij,ij->i", r, r)
        keep = (s2 <= dstar_max2) & (s2 > max(dstar_min2, 0.0))
        if d_max is not None:
            keep &= s2 >= dstar_min2
        chunks.append(hkl[keep])
    out = np.concatenate(chunks).astype(np.int32) if chunks else np.zeros((0, 3), np.int32)
    return remove_absences(out, crystal.space_group)


def remove_absences(hkl: np.ndarray, space_group: str) -> np.ndarray:
    """Drop systematically absent reflections of ``space_group`` (gemmi)."""
    import gemmi

    try:
        sg = gemmi.SpaceGroup(space_group)
    except (ValueError, RuntimeError):
        return hkl
    if sg.number == 1 or len(hkl) == 0:
        return hkl
    absent = sg.operations().systematic_absences(np.ascontiguousarray(hkl, dtype=np.int32))
    return hkl[~np.asarray(absent, dtype=bool)]


@dataclass(frozen=True, eq=False)
class Predictions:
    """Predicted reflections (struct of arrays, one row per reflection passage).

    hkl (N,3) int32; phi: centre of the passage (degrees); x_mm, y_mm: MOSFLM detector position;
    x_px, y_px: continuous pixel coordinates (slow, fast); d: resolution (Å); zeta; width: full
    φ extent of the rocking curve (degrees); s1 (N,3) (1/Å); on_detector: bool; ball: the
    uniform-ball part of the width (degrees; the rest is the mosaic-block term,
    :mod:`mosflm_py.geometry.rocking_curve`).
    """

    hkl: np.ndarray
    phi: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    d: np.ndarray
    zeta: np.ndarray
    width: np.ndarray
    s1: np.ndarray
    on_detector: np.ndarray
    ball: np.ndarray

    def __len__(self) -> int:
        return len(self.hkl)

    def select(self, mask: np.ndarray) -> Predictions:
        """Rows where ``mask`` (bool or index array) selects."""
        return Predictions(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})


def _m_cross(m: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """m × r0 for a unit axis m and vectors r0 (N, 3)."""
    out = np.empty_like(r0)
    out[:, 0] = m[1] * r0[:, 2] - m[2] * r0[:, 1]
    out[:, 1] = m[2] * r0[:, 0] - m[0] * r0[:, 2]
    out[:, 2] = m[0] * r0[:, 1] - m[1] * r0[:, 0]
    return out


def rotate_about_axis(r0: np.ndarray, m: np.ndarray, phi_deg: np.ndarray) -> np.ndarray:
    """Rotate vectors r0 (N, 3) right-handedly about the unit axis m by φ (degrees, (N,))."""
    t = np.radians(np.asarray(phi_deg, dtype=float))
    c, s = np.cos(t)[:, None], np.sin(t)[:, None]
    par = (r0 @ m)[:, None] * m[None, :]
    return par + (r0 - par) * c + _m_cross(m, r0) * s


def ewald_terms(r0: np.ndarray, s0: np.ndarray, m: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, c) of the diffraction condition a cos φ + b sin φ = c (see module docstring)."""
    rpar = (r0 @ m)[:, None] * m[None, :]
    a = (r0 - rpar) @ s0
    b = _m_cross(m, r0) @ s0
    c = -0.5 * np.einsum("ij,ij->i", r0, r0) - rpar @ s0
    return a, b, c


def _solve_phi(r0: np.ndarray, s0: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both diffraction angles (radians, about axis m) for r0 (N,3); NaN when never in contact."""
    return phi_solutions(*ewald_terms(r0, s0, m))


def phi_solutions(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """φ = atan2(b, a) ± arccos(c / √(a² + b²)) (radians); NaN where |c| > √(a² + b²)."""
    rho = np.hypot(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosv = c / rho
    ok = np.abs(cosv) <= 1.0
    base = np.arctan2(b, a)
    delta = np.arccos(np.clip(cosv, -1, 1))
    p1 = np.where(ok, base + delta, np.nan)
    p2 = np.where(ok, base - delta, np.nan)
    return p1, p2


def predict(
    experiment: Experiment,
    phi_start: float,
    phi_end: float,
    d_min: float | None = None,
    d_max: float | None = None,
    hkl: np.ndarray | None = None,
    margin: float | None = None,
) -> Predictions:
    """Predict every reflection whose rocking curve overlaps φ_start..φ_end (degrees).

    Parameters
    ----------
    experiment : with a crystal.
    phi_start, phi_end : rotation range (degrees), phi_end > phi_start (< 360° span).
    d_min, d_max : resolution limits (Å); d_min defaults to the detector corner resolution.
    hkl : optional pre-generated Miller indices (skips generation; absences not re-checked).
    margin : extra range (degrees) either side for reflections whose centre lies outside the range
        but whose rocking curve reaches into it; default half the largest width.

    Returns
    -------
    Predictions sorted by φ; reflections on the detector only.
    """
    cr = experiment.crystal
    if cr is None:
        raise GeometryError("no crystal orientation: index first (AUTOINDEX) or give MATRIX")
    if not phi_end > phi_start:
        raise GeometryError(f"rotation range {phi_start} to {phi_end} is empty")
    wl = experiment.beam.wavelength
    det = experiment.detector
    if d_min is None:
        d_min = det.max_resolution(wl)
    if hkl is None:
        hkl = generate_hkl(cr, d_min, d_max)
    hkl = np.asarray(hkl, dtype=np.int32)
    s0 = experiment.beam.s0
    m = experiment.goniometer.axis
    r0 = hkl.astype(float) @ cr.UB.T
    p1, p2 = _solve_phi(r0, s0, m)
    dstar = np.linalg.norm(r0, axis=1)
    # Candidates first (centre within a generous margin of the range), then the geometry.
    pre = 5.0 if margin is None else margin
    lo0 = phi_start - pre
    s0n = s0 / np.linalg.norm(s0)
    cands = []
    for p in (p1, p2):
        phi_all = lo0 + np.mod(np.degrees(p) - lo0, 360.0)  # NaN stays NaN
        idx = np.nonzero(phi_all <= phi_end + pre)[0]
        if len(idx) == 0:
            continue
        phi_deg = phi_all[idx]
        r = rotate_about_axis(r0[idx], m, phi_deg)
        s1 = r + s0[None, :]
        s1n = s1 / np.linalg.norm(s1, axis=1)[:, None]
        zeta = _m_cross(s0n, s1n) @ m * -1.0  # m . (s1^ x s0^) = -m . (s0^ x s1^)
        ball, block = rocking_widths(
            dstar[idx], zeta, wl, cr.mosaic, experiment.beam.mean_divergence,
            experiment.beam.dispersion, cr.domain_width,
        )
        cands.append((idx, phi_deg, s1, zeta, extent(ball, block), ball))
    if margin is None:
        finite = [w[np.isfinite(w)] for *_, w, _ in cands]
        wmax = max((float(f.max()) for f in finite if len(f)), default=0.0)
        margin = min(0.5 * wmax, pre)
    hi = phi_end + margin
    rows = []
    for idx, phi_w, s1, zeta, width, ball in cands:
        half = np.minimum(0.5 * np.nan_to_num(width, posinf=360.0), 180.0)
        keep = (phi_w - half <= phi_end) & (phi_w + half >= phi_start) & (phi_w <= hi)
        if not keep.any():
            continue
        k = np.nonzero(keep)[0]
        rows.append((idx[k], phi_w[k], s1[k], zeta[k], width[k], ball[k]))
    if not rows:
        empty = np.zeros(0)
        return Predictions(np.zeros((0, 3), np.int32), empty, empty, empty, empty, empty, empty,
                           empty, empty, np.zeros((0, 3)), np.zeros(0, bool), empty)
    idx = np.concatenate([r[0] for r in rows])
    phi = np.concatenate([r[1] for r in rows])
    s1 = np.concatenate([r[2] for r in rows])
    zeta = np.concatenate([r[3] for r in rows])
    width = np.concatenate([r[4] for r in rows])
    ball = np.concatenate([r[5] for r in rows])
    x, y, ok = det.lab_to_mm(s1)
    sx, sy = det.size_mm
    on = ok & (x >= 0) & (x < sx) & (y >= 0) & (y < sy)
    order = np.argsort(phi, kind="stable")
    sel = order[on[order]]
    xp, yp = det.mm_to_px(x[sel], y[sel])
    return Predictions(
        hkl=hkl[idx[sel]],
        phi=phi[sel],
        x_mm=x[sel],
        y_mm=y[sel],
        x_px=xp,
        y_px=yp,
        d=1.0 / dstar[idx[sel]],
        zeta=zeta[sel],
        width=width[sel],
        s1=s1[sel],
        on_detector=np.ones(len(sel), bool),
        ball=ball[sel],
    )


def predict_positions(
    experiment: Experiment, hkl: np.ndarray, phi_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector position (mm) where each reflection would be seen at the given φ (degrees).

    The reciprocal-lattice vector is rotated to φ and projected along s0 + r (the point of the
    Ewald sphere it would reach); used by positional refinement.  Returns (x, y, ok).
    """
    cr = experiment.crystal
    if cr is None:
        raise GeometryError("no crystal orientation")
    r0 = np.asarray(hkl, dtype=float) @ cr.UB.T
    phi = np.broadcast_to(np.asarray(phi_deg, dtype=float), (len(r0),))
    r = rotate_about_axis(r0, experiment.goniometer.axis, phi)
    s1 = r + experiment.beam.s0[None, :]
    return experiment.detector.lab_to_mm(s1)


def nearest_phi(
    experiment: Experiment, hkl: np.ndarray, phi_obs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Diffraction angle (degrees) nearest to ``phi_obs`` for each reflection, with its position.

    Returns (phi_calc, x_mm, y_mm); NaN where the reflection never reaches the Ewald sphere.
    """
    cr = experiment.crystal
    if cr is None:
        raise GeometryError("no crystal orientation")
    r0 = np.asarray(hkl, dtype=float) @ cr.UB.T
    p1, p2 = _solve_phi(r0, experiment.beam.s0, experiment.goniometer.axis)
    phi_obs = np.asarray(phi_obs, dtype=float)
    best = np.full(len(r0), np.nan)
    bestd = np.full(len(r0), np.inf)
    for p in (p1, p2):
        ph = np.degrees(p)
        ph = phi_obs + (np.mod(ph - phi_obs + 180.0, 360.0) - 180.0)
        dd = np.abs(ph - phi_obs)
        better = np.isfinite(ph) & (dd < bestd)
        best[better], bestd[better] = ph[better], dd[better]
    x, y, ok = predict_positions(experiment, hkl, np.nan_to_num(best))
    bad = ~np.isfinite(best) | ~ok
    x[bad], y[bad] = np.nan, np.nan
    return best, x, y
