"""Global positional refinement: cell, orientation and detector against 3D spot centroids.

All reflections observed on the images of the cell-refinement segments are fitted together.
For each observed reflection (X, Y mm and φ centroid, :class:`SpotObservations`) the model gives
the diffraction angle φ_c nearest the observed φ (closed-form Ewald condition,
``geometry.prediction.nearest_phi``) and the detector position (X_c, Y_c) of the diffracted ray
at φ_c (at the observed φ for reflections cut by the ends of the images).
The residuals (X − X_c)/σ_X, (Y − Y_c)/σ_Y and, for reflections whose rocking curve lies
wholly within the images, (φ − φ_c)/σ_φ are minimised by weighted Gauss–Newton
(:func:`mosflm_py.refinement.lsq.least_squares`), with robust outlier rejection.

The positions of complete reflections do not depend on the crystal rotation about the spindle:
turned by δ about the axis, every reflection diffracts δ later at the same (X, Y).  Their φ
centroids measure it; the positions of cut reflections, predicted at their φ centroids, depend on
it only through those centroids, which the truncation of the rocking curve biases towards the
inside of the images.  With fewer than :data:`MIN_PHI_CENTROIDS` complete reflections the
rotation about the spindle is therefore held at its starting value (:func:`refine_global`; the
warning says so).  Left free on nanoBragg data refined from two 3-image segments with no complete
reflection it wandered by 0.03–0.05° from cycle to cycle (esd 0.04–0.08°) and took the orientation
error to 0.11°; held, the orientation stays that of autoindexing, whose 3D spot centroids come
from the images and their neighbours.

Refined (subject to ``fix``): the cell parameters free under the lattice symmetry, the crystal
orientation as small rotations about lab X, Y, Z at a reference φ, and the detector DISTANCE and
beam (XCEN, YCEN); optionally YSCALE, TILT, TWIST and CCOMEGA.  This is the refinement DIALS and
XDS use (Kabsch 2010; Waterman et al. 2016) and what MOSFLM's cell refinement falls back to in
effect when there are too few partials: it needs no partially recorded reflections, only spots.

Cell scale and distance are correlated in the spot positions alone (both scale X, Y ∝ D·tan 2θ);
they are separated by the non-linearity of tan 2θ against sin θ at high angles and, more strongly,
by the φ centroids, which depend on |d*|·λ but not on the distance.  The esds from the inverse
normal matrix (scaled by the weighted residual) include that correlation; ``correlation`` reports
the cell–distance correlation coefficient.

Distance free or fixed?  On the real L-cysteine sweep (15 × 0.1°, λ 0.6889 Å, 2θ to 50°) the
header distance is 160.00 mm.  With the distance free the fit gives 158.26 ± 0.1 mm, rms
residuals 0.066 mm and 0.006° and a cell within 0.2 % of the published one, the same from starts
1 % off in cell, 0.2° in orientation or at the DIALS distance 160.49 mm; with the distance fixed
at 160.00 mm the cell comes out 0.6–0.8 % too long and the rms residuals are 0.11 mm and 0.16°
— the φ centroids reject it.  Header distances are therefore not trusted to 0.3 %: DISTANCE is
refined by default (FIX it when it is known) — but only where the data separate it from the cell
scale: without φ centroids, or with the distance correlated by more than 0.99 with every cell
length (low angles, few spots), it is held at its starting value (:func:`refine_global`).

References
----------
Kabsch, W. (2010). Acta Cryst. D66, 125–132.
Waterman, D. G. et al. (2016). Acta Cryst. D72, 558–575.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import BadParameter, GeometryError, RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import nearest_phi, predict_positions
from mosflm_py.refinement.cell_params import CELL_NAMES, cell_constraint
from mosflm_py.refinement.lsq import least_squares, robust_outliers
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import canonical_names
from mosflm_py.refinement.spots3d import SpotObservations

#: Parameters known to the global refinement (cell names resolved under the symmetry).
GLOBAL_PARAMETERS = ("PHIX", "PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA", "GAMMA",
                     "DISTANCE", "XCEN", "YCEN", "YSCALE", "TILT", "TWIST", "CCOMEGA")
_DET_FIELD = {"XCEN": "beam_x", "YCEN": "beam_y", "DISTANCE": "distance", "YSCALE": "yscale",
              "TILT": "tilt", "TWIST": "twist", "CCOMEGA": "ccomega"}
_DET_STEPS = {"XCEN": 1e-3, "YCEN": 1e-3, "DISTANCE": 1e-2, "YSCALE": 1e-5, "TILT": 0.1,
              "TWIST": 0.1, "CCOMEGA": 1e-3}


@dataclass(frozen=True)
class GlobalRefinementParams:
    """Control of :func:`refine_global`.

    fix : fixed parameters (names of :data:`GLOBAL_PARAMETERS`; ``CELL`` and aliases such as
        XTOFRA/DIST accepted).  Default: YSCALE and CCOMEGA fixed (CCOMEGA is degenerate with the
        crystal rotation about the beam; YSCALE with the cell).  TILT and TWIST are refined as in
        MOSFLM's positional refinement: on L-cysteine they halve the rms positional residual
        (0.105 → 0.067 mm) and make the cell independent of the starting model.
    sigma_xy_floor : added in quadrature to the centroid σ (mm): the systematic error of a box
        centroid (default 0.03 mm, ≈ 0.2 Pilatus pixel).
    sigma_phi_floor : added in quadrature to the φ-centroid σ (°).
    sigma_phi_width : fraction of each spot's observed rocking width W (°, from the φ spread,
        W² = 20·(var_φ − Δφ²/12)) added in quadrature to its φ σ: the centroid of a wide spot
        (near the rotation axis) is less certain (truncated tails, background).  Default 0.
    error_model : after each fit scale the φ σ so that the weighted rms of the φ residuals
        equals that of the position residuals (the relative weight of the two kinds of data is
        set by the data, not by the floors); the esds come from the final weighted fit.  Off by
        default: on L-cysteine it made the cell depend more on the starting model.
    min_isig : reflections with summed I/σ(I) below this are not used.
    reject_sigma : outliers beyond this many robust σ (1.4826·MAD) of any residual are rejected.
    max_iter : Gauss–Newton iterations per rejection round.
    """

    fix: frozenset[str] = frozenset({"YSCALE", "CCOMEGA"})
    sigma_xy_floor: float = 0.03
    sigma_phi_floor: float = 0.005
    sigma_phi_width: float = 0.0
    error_model: bool = False
    min_isig: float = 5.0
    reject_sigma: float = 5.0
    max_iter: int = 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "fix", canonical_names(self.fix, GLOBAL_PARAMETERS))
        if self.sigma_xy_floor < 0 or self.sigma_phi_floor < 0:
            raise BadParameter("sigma floors of the global refinement must not be negative")
        if self.reject_sigma <= 0:
            raise BadParameter(f"rejection limit must be positive (got {self.reject_sigma})")

    def replace(self, **changes: object) -> GlobalRefinementParams:
        """Copy with fields replaced."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class GlobalRefinement:
    """Result of :func:`refine_global`.

    experiment : refined model (crystal cell and missets, detector).
    values, esds, shifts : per parameter (cell Å/°, DISTANCE/XCEN/YCEN mm, YSCALE, TILT/TWIST
        0.01°, CCOMEGA °, PHIX/PHIY/PHIZ = missetting angles with the esds of the rotations about
        lab X, Y, Z at ``phi_ref``).  Cell parameters tied by symmetry carry their master's esd.
    free : names refined.  rms_xy : rms positional residual (mm).  rms_phi : rms φ residual (°)
        of the complete reflections.  wrms : weighted residual.
    n_used : reflections used; n_phi : of which with a φ residual.  used : mask over the input.
    correlation : correlation coefficients of DISTANCE with each free cell length (empty if the
        distance is fixed).  phi_ref : reference φ of the rotations.  warnings : for the log.
    """

    experiment: Experiment
    values: dict[str, float]
    esds: dict[str, float]
    shifts: dict[str, float]
    free: tuple[str, ...]
    rms_xy: float
    rms_phi: float
    wrms: float
    n_used: int
    n_phi: int
    used: np.ndarray
    correlation: dict[str, float]
    phi_ref: float
    warnings: list[str] = field(default_factory=list)


class _Model:
    """Parameter vector ↔ experiment."""

    def __init__(self, exp: Experiment, fix: frozenset[str], phi_ref: float):
        self.exp, self.phi_ref = exp, phi_ref
        cr = exp.crystal
        self.rot = tuple(n for n in ("PHIX", "PHIY", "PHIZ") if n not in fix)
        self.cons = cell_constraint(cr.space_group, cr.cell, fix)
        self.det = tuple(n for n in ("DISTANCE", "XCEN", "YCEN", "YSCALE", "TILT", "TWIST",
                                     "CCOMEGA") if n not in fix)
        self.names = self.rot + self.cons.free + self.det
        cell0 = self.cons.values(cr.cell)
        d = exp.detector
        self.x0 = np.concatenate([np.zeros(len(self.rot)), cell0,
                                  [float(getattr(d, _DET_FIELD[n])) for n in self.det]])
        self.steps = np.array([1e-3] * len(self.rot)
                              + [1e-5 * v if n in CELL_NAMES[:3] else 1e-3
                                 for n, v in zip(self.cons.free, cell0)]
                              + [_DET_STEPS[n] for n in self.det])

    def experiment(self, x: np.ndarray) -> Experiment:
        nr, nc = len(self.rot), len(self.cons.free)
        cr = self.exp.crystal
        cr = cr.replace(cell=self.cons.cell(x[nr:nr + nc], cr.cell))
        ang = dict(zip(self.rot, x[:nr]))
        cr = rotate_crystal(cr, ang.get("PHIX", 0.0), ang.get("PHIY", 0.0), ang.get("PHIZ", 0.0),
                            self.phi_ref, self.exp.goniometer)
        det = self.exp.detector
        if self.det:
            det = det.replace(**{_DET_FIELD[n]: float(v)
                                 for n, v in zip(self.det, x[nr + nc:])})
        return self.exp.replace(crystal=cr, detector=det)


def spot_predictions(exp: Experiment,
                     s: SpotObservations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calculated (X mm, Y mm, φ °) of observed spots (NaN where the reflection is not seen).

    φ is the diffraction angle nearest the observed φ.  X, Y are the detector position at that
    angle for complete reflections; for reflections cut by the ends of the images (only part of
    the rocking curve recorded) they are the position at the observed φ centroid, as in per-image
    positional refinement of partials (``predict_positions``), because the recorded part of the
    spot is seen where the rotated lattice point projects at the φ it was recorded.
    """
    phic, xc, yc = nearest_phi(exp, s.hkl, s.phi)
    part = ~s.complete & np.isfinite(phic)
    if part.any():
        xp, yp, ok = predict_positions(exp, s.hkl[part], s.phi[part])
        xc[part] = np.where(ok, xp, np.nan)
        yc[part] = np.where(ok, yp, np.nan)
    return xc, yc, phic


#: Complete reflections (φ centroid usable) needed to refine the crystal rotation about the spindle,
#: which the spot positions do not determine (module notes); with fewer it is held.  Each φ
#: centroid weighs on that one rotation alone, so a handful determine it; below five a single
#: mis-measured spot would set it.
MIN_PHI_CENTROIDS = 5


def _count_phi_centroids(exp: Experiment, spots: SpotObservations,
                         params: GlobalRefinementParams) -> int:
    """Complete reflections that the fit would use (strong enough, predicted)."""
    use = spots.complete & (spots.intensity >= params.min_isig * np.maximum(spots.sigma, 1e-12))
    use &= np.isfinite(spots.x) & np.isfinite(spots.y) & np.isfinite(spots.phi)
    if not use.any():
        return 0
    return int(np.count_nonzero(np.isfinite(spot_predictions(exp, spots.select(use))[2])))


#: |correlation| of the distance with every free cell length above which the spot positions do
#: not determine the distance apart from the cell scale (variance inflation 1/(1 − r²) > 50).
DISTANCE_CELL_CORRELATION_LIMIT = 0.99


def refine_global(
    experiment: Experiment,
    spots: SpotObservations,
    params: GlobalRefinementParams | None = None,
    phi_ref: float | None = None,
    hold_distance: bool = True,
) -> GlobalRefinement:
    """Refine cell, orientation and detector against the 3D centroids of all spots.

    The distance is refined only where the data separate it from the cell scale: when no
    reflection has a usable φ centroid, or the fitted distance is correlated with every free
    cell length by more than :data:`DISTANCE_CELL_CORRELATION_LIMIT`, the least-squares
    solution slides along the distance–cell valley (on a weak 0.05° sweep refined from two
    3-image wedges: distance 89.16 ± 1.54 mm against a header 90.00 mm, the cell 1 % short
    with it).  The fit is then repeated with DISTANCE held at its starting value (the header,
    or the value from an earlier cycle) and the log says so.  This is what MOSFLM does in
    effect: its cell comes from post-refinement of the φ information, never from the spot
    positions with the distance free.  Likewise the crystal rotation about the spindle (PHIZ
    here) is held at its starting value when fewer than :data:`MIN_PHI_CENTROIDS` reflections
    have a usable φ centroid: the positions do not depend on it (module notes).

    Parameters
    ----------
    (as :func:`_refine_global_once`)
    hold_distance : False to keep the distance free (unless fixed) even where it is not
        separated from the cell scale: the cell-length esds then carry that correlation.

    Returns
    -------
    GlobalRefinement

    Raises
    ------
    RefinementError
        Too few reflections for the parameters, or the model does not fit (lost reflections).
    """
    params = params or GlobalRefinementParams()
    held_spindle = ""
    if "PHIZ" not in params.fix:
        n_phi = _count_phi_centroids(experiment, spots, params)
        if n_phi < MIN_PHI_CENTROIDS:
            params = params.replace(fix=params.fix | {"PHIZ"})
            held_spindle = (
                f"Only {n_phi} reflection(s) recorded completely within the images (fewer than "
                f"{MIN_PHI_CENTROIDS}): the spot positions do not determine the crystal rotation "
                "about the spindle, so it is held at its starting value"
            )
    g = _refine_global_once(experiment, spots, params, phi_ref)
    if held_spindle:
        g.warnings.append(held_spindle)
    if "DISTANCE" not in g.free or not hold_distance:
        return g
    corr = [abs(c) for c in g.correlation.values()]
    no_phi = g.n_phi == 0
    tied = bool(corr) and min(corr) > DISTANCE_CELL_CORRELATION_LIMIT
    if not (no_phi or tied):
        return g
    why = ("no reflection has a usable phi centroid" if no_phi else
           "the distance is correlated with the cell by more than "
           f"{DISTANCE_CELL_CORRELATION_LIMIT:.2f} (" +
           ", ".join(f"{n} {c:.3f}" for n, c in g.correlation.items()) + ")")
    fixed = _refine_global_once(experiment, spots,
                                params.replace(fix=params.fix | {"DISTANCE"}), phi_ref)
    if held_spindle:
        fixed.warnings.append(held_spindle)
    fixed.warnings.append(
        f"The detector distance cannot be refined together with the cell from these spots "
        f"({why}; free it gave {g.values['DISTANCE']:.2f} +- {g.esds['DISTANCE']:.2f} mm): "
        f"it is held at {experiment.detector.distance:.2f} mm"
    )
    return fixed


def _refine_global_once(
    experiment: Experiment,
    spots: SpotObservations,
    params: GlobalRefinementParams | None = None,
    phi_ref: float | None = None,
) -> GlobalRefinement:
    """One global positional refinement with the free parameters of ``params.fix``.

    Parameters
    ----------
    experiment : starting model with a crystal.
    spots : observed centroids (:func:`mosflm_py.refinement.spots3d.spots_from_measurements`).
    params : :class:`GlobalRefinementParams`.
    phi_ref : φ (°) about which the orientation increments are defined (default: mean φ).

    Returns
    -------
    GlobalRefinement

    Raises
    ------
    RefinementError
        Too few reflections for the parameters, or the model does not fit (lost reflections).
    """
    params = params or GlobalRefinementParams()
    cr0 = experiment.crystal
    if cr0 is None:
        raise RefinementError("global positional refinement needs a crystal orientation "
                              "(index first)")
    use = spots.intensity >= params.min_isig * np.maximum(spots.sigma, 1e-12)
    use &= np.isfinite(spots.x) & np.isfinite(spots.y) & np.isfinite(spots.phi)
    if phi_ref is None:
        phi_ref = float(np.mean(spots.phi[use])) if use.any() else 0.0
    model = _Model(experiment, params.fix, phi_ref)
    p = len(model.names)
    warnings: list[str] = []
    sx = np.hypot(spots.sigma_x, params.sigma_xy_floor)
    sy = np.hypot(spots.sigma_y, params.sigma_xy_floor)
    width = np.sqrt(20.0 * np.maximum(spots.var_phi - spots.osc**2 / 12.0, 0.0))
    sp = np.sqrt(spots.sigma_phi**2 + params.sigma_phi_floor**2
                 + (params.sigma_phi_width * width) ** 2)
    use &= np.isfinite(spot_predictions(experiment, spots)[2])
    fit = None
    x_start = model.x0
    kxy = kphi = 1.0
    for _ in range(6):
        idx = np.nonzero(use)[0]
        sub = spots.select(idx)
        ph = sub.complete
        nobs = 2 * len(idx) + int(ph.sum())
        if len(idx) < 3 or nobs < p + 3:
            raise RefinementError(
                f"only {len(idx)} reflections ({nobs} observations) for global positional "
                f"refinement of {p} parameters: too few spots on the images"
            )

        def fun(x: np.ndarray, sub=sub, ph=ph, idx=idx, kphi=kphi) -> np.ndarray:
            try:
                xc, yc, phic = spot_predictions(model.experiment(x), sub)
            except GeometryError:
                return np.full(2 * len(sub) + int(ph.sum()), np.inf)
            r = np.concatenate([(sub.x - xc) / (kxy * sx[idx]), (sub.y - yc) / (kxy * sy[idx]),
                                ((sub.phi - phic) / (kphi * sp[idx]))[ph]])
            return np.where(np.isfinite(r), r, 1e6)

        fit = least_squares(fun, x_start, model.steps, max_iter=params.max_iter)
        x_start = fit.x
        m = len(idx)
        res = fit.residuals
        rescaled = False
        if params.error_model and ph.sum() >= 3:
            # relative weight of positions and φ from the data: each type's weighted rms → 1
            fxy = float(np.sqrt(np.mean(res[:2 * m] ** 2)))
            fphi = float(np.sqrt(np.mean(res[2 * m:] ** 2)))
            ratio = (fphi / max(fxy, 1e-12)) if fxy > 0 else 1.0
            if abs(np.log(ratio)) > 0.1:
                kphi *= ratio
                rescaled = True
        bad = (robust_outliers(res[:m], params.reject_sigma, 1.0)
               | robust_outliers(res[m:2 * m], params.reject_sigma, 1.0))
        badphi = np.zeros(m, bool)
        badphi[np.nonzero(ph)[0]] = robust_outliers(res[2 * m:], params.reject_sigma, 1.0)
        bad |= badphi
        if not bad.any() and not rescaled:
            break
        use[idx[bad]] = False
    exp = model.experiment(fit.x)
    idx = np.nonzero(use)[0]
    sub = spots.select(idx)
    xc, yc, phic = spot_predictions(exp, sub)
    rms_xy = float(np.sqrt(np.mean((sub.x - xc) ** 2 + (sub.y - yc) ** 2)))
    ph = sub.complete
    rms_phi = float(np.sqrt(np.mean((sub.phi - phic)[ph] ** 2))) if ph.any() else float("nan")
    values, esds, shifts = _tables(experiment, exp, model, fit)
    corr: dict[str, float] = {}
    if "DISTANCE" in model.names:
        k = model.names.index("DISTANCE")
        sd = np.sqrt(np.maximum(np.diag(fit.cov), 1e-300))
        for n in model.cons.free:
            if n in CELL_NAMES[:3]:
                j = model.names.index(n)
                corr[n] = float(fit.cov[k, j] / (sd[k] * sd[j]))
    if not ph.any():
        warnings.append("No reflection was recorded completely within the images: the φ "
                        "centroids could not be used"
                        + (" and the cell is correlated with the distance"
                           if "DISTANCE" in model.names else ""))
    used = np.zeros(len(spots), bool)
    used[idx] = True
    return GlobalRefinement(
        experiment=exp, values=values, esds=esds, shifts=shifts, free=model.names, rms_xy=rms_xy,
        rms_phi=rms_phi, wrms=fit.weighted_rms, n_used=len(idx), n_phi=int(ph.sum()), used=used,
        correlation=corr, phi_ref=phi_ref, warnings=warnings,
    )


def _tables(exp0: Experiment, exp: Experiment, model: _Model, fit) -> tuple[dict, dict, dict]:
    esd_of = dict(zip(model.names, fit.esd))
    cr, cr0 = exp.crystal, exp0.crystal
    d, d0 = exp.detector, exp0.detector
    values: dict[str, float] = {}
    old: dict[str, float] = {}
    for i, n in enumerate(("PHIX", "PHIY", "PHIZ")):
        values[n], old[n] = cr.missets[i], cr0.missets[i]
    for i, n in enumerate(CELL_NAMES):
        values[n], old[n] = cr.cell[i], cr0.cell[i]
    for n, f in _DET_FIELD.items():
        values[n], old[n] = float(getattr(d, f)), float(getattr(d0, f))
    esds = {n: float(esd_of.get(n, 0.0)) for n in values}
    system = model.cons.system
    if system in ("tetragonal", "trigonal", "hexagonal", "cubic", "rhombohedral"):
        esds["B"] = esds["A"]
    if system in ("cubic", "rhombohedral"):
        esds["C"] = esds["A"]
    if system == "rhombohedral":
        esds["BETA"] = esds["GAMMA"] = esds["ALPHA"]
    shifts = {n: values[n] - old[n] for n in values}
    return values, esds, shifts
