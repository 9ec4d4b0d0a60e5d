"""Per-image positional refinement of the detector (MOSFLM "REFINEMENT").

Observed spot centroids (X, Y mm) are compared with the positions calculated for the current
experiment at each reflection's observed φ (``geometry.prediction.predict_positions``).
Refined (subject to FIX): XCEN, YCEN (BEAM), DISTANCE (XTOFRA·XTOFD), YSCALE, TILT, TWIST (0.01°),
CCOMEGA (°) and PSIX, the crystal rotation about the beam at the image (°).  Two passes as
MOSFLM: the NREF strongest reflections inside LIMIT mm of the beam, then every usable reflection
with robust outlier rejection.  Weighted least squares with weights 1/σ²(centroid); the weighted
residual is ≈ 1 when the σ are right.  Camera constants CCX, CCY are the refined beam shifts.

References
----------
Leslie, A. G. W. (2006). Acta Cryst. D62, 48–57 (MOSFLM refinement strategy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError, RefinementError, TooFewReflections
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import predict_positions
from mosflm_py.refinement.lsq import least_squares, robust_outliers
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import RefinementParams

_STEPS = {"XCEN": 1e-3, "YCEN": 1e-3, "DISTANCE": 1e-2, "YSCALE": 1e-5, "TILT": 0.1,
          "TWIST": 0.1, "CCOMEGA": 1e-3, "PSIX": 1e-3}
_DET_FIELD = {"XCEN": "beam_x", "YCEN": "beam_y", "DISTANCE": "distance", "YSCALE": "yscale",
              "TILT": "tilt", "TWIST": "twist", "CCOMEGA": "ccomega"}


@dataclass(frozen=True, eq=False)
class DetectorRefinement:
    """Result of :func:`refine_detector`.

    experiment : refined experiment (detector and, if PSIX was free, crystal missets).
    rms : rms positional residual (mm) of the reflections used.
    wrms : weighted residual sqrt(Σ(Δ/σ)²/(n_obs − p)).
    rms_central : rms (mm) of the first-pass central reflections (NaN if that pass was skipped).
    n_used : reflections used in the final pass.  used : bool mask over the input reflections.
    values, esds, shifts : per refined parameter (MOSFLM units: mm, 0.01° for TILT/TWIST, °).
    ccx, ccy, ccom : camera constants (beam shifts in mm, rotation about the beam in °).
    warnings : messages for the log.
    """

    experiment: Experiment
    rms: float
    wrms: float
    rms_central: float
    n_used: int
    used: np.ndarray
    values: dict[str, float]
    esds: dict[str, float]
    shifts: dict[str, float]
    ccx: float
    ccy: float
    ccom: float
    warnings: list[str] = field(default_factory=list)


def _apply(experiment: Experiment, names: tuple[str, ...], x: np.ndarray,
           phi_ref: float) -> Experiment:
    det_changes = {}
    psix = 0.0
    for n, v in zip(names, x):
        if n == "PSIX":
            psix = float(v)
        else:
            det_changes[_DET_FIELD[n]] = float(v)
    det = experiment.detector.replace(**det_changes) if det_changes else experiment.detector
    cr = experiment.crystal
    if psix != 0.0:
        cr = rotate_crystal(cr, psix, 0.0, 0.0, phi_ref, experiment.goniometer)
    return experiment.replace(detector=det, crystal=cr)


def _psix(x: np.ndarray, names: tuple[str, ...]) -> float:
    return float(x[names.index("PSIX")]) if "PSIX" in names else 0.0


def _start_values(experiment: Experiment, names: tuple[str, ...]) -> np.ndarray:
    det = experiment.detector
    return np.array([0.0 if n == "PSIX" else float(getattr(det, _DET_FIELD[n])) for n in names])


def _fit(experiment, names, hkl, x_obs, y_obs, phi, sx, sy, phi_ref, max_iter):
    def fun(x: np.ndarray) -> np.ndarray:
        try:
            exp = _apply(experiment, names, x, phi_ref)
        except GeometryError:
            return np.full(2 * len(hkl), np.inf)
        xc, yc, ok = predict_positions(exp, hkl, phi)
        r = np.concatenate([(x_obs - xc) / sx, (y_obs - yc) / sy])
        return np.where(np.isfinite(r), r, 1e6)

    return least_squares(fun, _start_values(experiment, names),
                         np.array([_STEPS[n] for n in names]), max_iter=max_iter)


def refine_detector(
    experiment: Experiment,
    hkl: np.ndarray,
    x_obs: np.ndarray,
    y_obs: np.ndarray,
    phi: np.ndarray,
    sigma_xy: np.ndarray,
    params: RefinementParams | None = None,
    isig: np.ndarray | None = None,
    fraction: np.ndarray | None = None,
    phi_ref: float | None = None,
) -> DetectorRefinement:
    """Refine the detector (and PSIX) of one image against observed spot centroids.

    Parameters
    ----------
    experiment : current model (with a crystal).
    hkl : (N, 3) Miller indices.  x_obs, y_obs : observed centroids (mm).
    phi : φ (°) at which each reflection is calculated: its observed φ centre, or the image
        centre for fully recorded reflections.
    sigma_xy : centroid σ (mm), shape (N,) or (N, 2) for separate X and Y.
    params : REFINEMENT parameters (defaults if None).
    isig : I/σ(I) of each reflection (strongest are used first; ``min_isig`` threshold).
    fraction : calculated fraction recorded on the image (1 for fulls); partials are used only
        with ``params.include_partials`` (or automatically when < FULLFRAC are full).
    phi_ref : φ (°) about which PSIX is defined (default: median of ``phi``).

    Returns
    -------
    DetectorRefinement

    Raises
    ------
    RefinementError
        Too few reflections, or weighted residual above RESIDUAL (``raise_on_residual``).
    """
    params = params or RefinementParams()
    if experiment.crystal is None:
        raise RefinementError("positional refinement needs a crystal orientation (index first)")
    hkl = np.asarray(hkl, dtype=np.int32).reshape(-1, 3)
    n = len(hkl)
    x_obs, y_obs, phi = (np.asarray(v, dtype=float).reshape(n) for v in (x_obs, y_obs, phi))
    s = np.asarray(sigma_xy, dtype=float)
    sx, sy = (s[:, 0], s[:, 1]) if s.ndim == 2 else (np.broadcast_to(s, (n,)),) * 2
    sx, sy = np.maximum(sx, 1e-4), np.maximum(sy, 1e-4)
    if not params.weight:
        sx = sy = np.ones(n)
    isig = np.full(n, np.inf) if isig is None else np.asarray(isig, dtype=float)
    warnings: list[str] = []
    usable = np.isfinite(x_obs) & np.isfinite(y_obs) & np.isfinite(phi) & (isig >= params.min_isig)
    if fraction is not None:
        fr = np.asarray(fraction, dtype=float)
        full = fr >= 0.999
        minfrac = params.include_partials
        if minfrac is None and usable.any() and full[usable].mean() < params.fullfrac:
            minfrac = 0.5
            warnings.append(
                f"Partials (fraction > {minfrac:.2f}) included in positional refinement: only "
                f"{100 * full[usable].mean():.0f}% of the reflections are fully recorded"
            )
        base_usable = usable
        usable = base_usable & (full if minfrac is None else (full | (fr >= minfrac)))
        # fine slicing (rocking widths several images wide): no part holds half a reflection;
        # the recorded part of a partial is still predicted where it is (at the φ of its
        # middle), so use the parts holding at least 15 %
        if usable.sum() < len(params.free) + 3 and minfrac is not None and minfrac > 0.15:
            usable = base_usable & (full | (fr >= 0.15))
            warnings.append("Partials with fraction > 0.15 included in positional refinement: "
                            "the reflections are spread over several images")
    names = params.free
    if phi_ref is None:
        phi_ref = float(np.median(phi[usable])) if usable.any() else 0.0
    need = len(names) + 3
    if usable.sum() < need:
        raise TooFewReflections(
            f"only {int(usable.sum())} usable reflections for positional refinement of "
            f"{len(names)} parameters: the image is too weak or the prediction is wrong"
        )
    det0 = experiment.detector
    exp = experiment
    # pass 1: the NREF strongest central reflections
    rms_central = float("nan")
    psix_total = 0.0  # rotations about the same axis add exactly
    bx, by = det0.beam_x, det0.beam_y
    central = usable & (np.hypot(x_obs - bx, y_obs - by) <= params.limit)
    idx = np.nonzero(central)[0]
    if len(idx) >= need:
        idx = idx[np.argsort(-isig[idx], kind="stable")[: max(params.nref, need)]]
        fit = _fit(exp, names, hkl[idx], x_obs[idx], y_obs[idx], phi[idx], sx[idx], sy[idx],
                   phi_ref, 4 * params.cycles)
        exp = _apply(exp, names, fit.x, phi_ref)
        psix_total += _psix(fit.x, names)
        m = len(idx)
        rms_central = float(np.sqrt(np.mean((fit.residuals[:m] * sx[idx]) ** 2
                                            + (fit.residuals[m:] * sy[idx]) ** 2)))
    # pass 2: whole image, with outlier rejection
    used = usable.copy()
    fit = None
    for _ in range(3):
        idx = np.nonzero(used)[0]
        if len(idx) < need:
            raise RefinementError(
                f"only {len(idx)} reflections left after outlier rejection in positional "
                "refinement: prediction does not match the image"
            )
        base = exp
        fit = _fit(base, names, hkl[idx], x_obs[idx], y_obs[idx], phi[idx], sx[idx], sy[idx],
                   phi_ref, 4 * params.cycles)
        m = len(idx)
        fit_idx = idx
        bad = robust_outliers(fit.residuals[:m], params.reject_sigma, 0.5) | robust_outliers(
            fit.residuals[m:], params.reject_sigma, 0.5)
        exp = _apply(base, names, fit.x, phi_ref)
        psix_total += _psix(fit.x, names)
        if not bad.any():
            break
        used[idx[bad]] = False
    idx = fit_idx  # reflections of the last fit (a final rejection is not refitted)
    used = np.zeros(n, bool)
    used[idx] = True
    m = len(idx)
    dxm, dym = fit.residuals[:m] * sx[idx], fit.residuals[m:] * sy[idx]
    rms = float(np.sqrt(np.mean(dxm**2 + dym**2)))
    wrms = fit.weighted_rms
    det = exp.detector
    values = {nm: (psix_total if nm == "PSIX" else float(getattr(det, _DET_FIELD[nm])))
              for nm in names}
    shifts = {nm: values[nm] - (0.0 if nm == "PSIX" else float(getattr(det0, _DET_FIELD[nm])))
              for nm in names}
    esds = {nm: float(e) for nm, e in zip(names, fit.esd)}
    if wrms > params.residual:
        msg = (f"Weighted residual {wrms:.2f} exceeds the RESIDUAL limit {params.residual:.2f} in "
               f"positional refinement (rms {rms:.3f} mm): the prediction is probably wrong; "
               "check the beam position, distance and crystal orientation")
        if params.raise_on_residual:
            raise RefinementError(msg)
        warnings.append(msg)
    return DetectorRefinement(
        experiment=exp, rms=rms, wrms=wrms, rms_central=rms_central, n_used=m, used=used,
        values=values, esds=esds, shifts=shifts, ccx=det.beam_x - det0.beam_x,
        ccy=det.beam_y - det0.beam_y, ccom=det.ccomega - det0.ccomega, warnings=warnings,
    )

