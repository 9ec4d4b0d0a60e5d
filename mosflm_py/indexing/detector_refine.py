"""Refinement of an indexing solution against spot positions on the detector (x, y and phi).

Parameters: three small orientation angles, the symmetry-constrained cell, the beam position
(and the distance with UNFIXDIST).  Each indexed spot is predicted with the geometry functions
(:func:`mosflm_py.geometry.prediction.nearest_phi` for rotation images,
:func:`predict_still` for stills: x, y and the angle to the Ewald sphere) and the weighted residuals
are minimised with ``scipy.optimize.least_squares``; spots beyond SDCUTOFF sigma are rejected
iteratively (MOSFLM: "Using N indexed reflections ... {delta(XY) <= 2.5 sigma}").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import nearest_phi, rotate_about_axis
from mosflm_py.geometry.reciprocal import spots_to_rlp
from mosflm_py.indexing.cellparams import (
    Cell,
    cell_to_params,
    params_to_cell,
    small_rotation,
    u_from_ub,
)
from mosflm_py.indexing.lattice_refine import index_fraction

SIGMA_XY = 0.1  # mm, nominal weight of positions
SIGMA_PHI_MIN = 0.05  # deg
SIGMA_PSI_MIN = 0.005  # deg: floor of the stills' angle-to-the-Ewald-sphere weight


@dataclass(frozen=True)
class DetectorSpots:
    """Spots for indexing (struct of arrays).

    Attributes
    ----------
    x_mm, y_mm : ndarray
        MOSFLM detector coordinates (mm).
    phi : ndarray
        Rotation angle of the spot (deg): centroid, or the middle of its image.
    phi_width : ndarray
        Oscillation width of the spot's image (deg); 0 for stills.
    intensity, sigma : ndarray
        Intensity and its standard deviation.
    image : ndarray of int
        Image number of each spot.
    xy_sigma : ndarray or None
        Uncertainty (mm) of each spot position; None: :data:`SIGMA_XY` for all.  Larger for
        a spot cut by the start or end of the images searched, whose centroid is that of part
        of its rocking curve only.
    phi_min, phi_max : ndarray or None
        Interval (deg) known to hold the spot's φ centroid; None: the centroid is ``phi``.
        For a spot cut by the first image searched the observed centroid is only an upper
        bound (the unseen part of the rocking curve lies before it), for one cut by the last
        image a lower bound; the φ residual is then the distance outside the interval.
    """

    x_mm: np.ndarray
    y_mm: np.ndarray
    phi: np.ndarray
    phi_width: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    image: np.ndarray
    xy_sigma: np.ndarray | None = None
    phi_min: np.ndarray | None = None
    phi_max: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x_mm)

    def select(self, mask: np.ndarray) -> DetectorSpots:
        """Subset of the spots."""
        fields = self.__dataclass_fields__
        return DetectorSpots(
            *(
                None if getattr(self, f) is None else np.asarray(getattr(self, f))[mask]
                for f in fields
            )
        )


def _bounds(x: np.ndarray, n_cell: int, bravais: str, n_par: int):
    """Loose bounds keeping the cell physical: edges 0.7..1.4 x start, angles +-20 deg."""
    lo = np.full(len(x), -np.inf)
    hi = np.full(len(x), np.inf)
    fam = bravais[0]
    n_edges = {"a": 3, "m": 3, "o": 3, "t": 2, "h": 2, "c": 1}[fam]
    for i in range(n_cell):
        v = x[3 + i]
        if i < n_edges:
            lo[3 + i], hi[3 + i] = 0.7 * v, 1.4 * v
        else:
            lo[3 + i], hi[3 + i] = max(v - 20.0, 20.0), min(v + 20.0, 160.0)
    return lo[:n_par], hi[:n_par]


@dataclass(frozen=True, eq=False)
class SolutionRefinement:
    """An indexing solution refined in detector space (:func:`refine_solution`).

    Not the detector refinement of a processed image: that is
    :func:`mosflm_py.refinement.positional.refine_detector` (MOSFLM's per-image positional
    refinement of BEAM, DISTANCE, TILT, TWIST, ... against measured reflections); this one
    refines the crystal (orientation and constrained cell) with the beam and distance against
    the unmerged spots found for AUTOINDEX, re-assigning their indices.
    """

    experiment: Experiment  # with the refined crystal, beam and distance
    ub: np.ndarray
    cell: Cell
    sigma_xy: float  # rms positional residual (mm)
    sigma_phi: float  # rms phi residual (deg), NaN for stills
    n_used: int
    fraction: float
    cell_esd: np.ndarray  # esds of the free cell parameters
    distance_esd: float = float("nan")  # mm, when the distance was refined
    distance_corr: float = float("nan")  # multiple correlation of the distance with the cell
    chi2: np.ndarray | None = None  # per spot: sum of squared weighted residuals (NaN: not
    # indexed)
    used: np.ndarray | None = None  # per spot: used in the final cycle (not rejected)
    n_obs: np.ndarray | None = None  # per spot: observations (3 rotation, 2 still)
    n_params: int = 0  # parameters refined


def refine_solution(
    spots: DetectorSpots,
    experiment: Experiment,
    ub0: np.ndarray,
    cell0: Cell,
    bravais: str,
    *,
    hkldev: float = 0.3,
    sdcutoff: float = 2.5,
    refine_beam: bool = True,
    refine_distance: bool = False,
    refine_tilt: bool = False,
    cycles: int = 4,
) -> SolutionRefinement:
    """Refine orientation, constrained cell, beam (and distance) against spot positions.

    Parameters
    ----------
    spots : DetectorSpots
    experiment : Experiment
        Beam, detector and goniometer (the crystal is ignored).
    ub0 : array (3, 3)
        Starting U.B (1/Angstrom) in the conventional setting of ``bravais``.
    cell0 : tuple
        Starting conventional cell (Angstrom, degrees).
    bravais : str
        Bravais lattice symbol; sets the free cell parameters.
    hkldev, sdcutoff : float
        Index tolerance; rejection limit in multiples of the rms weighted residual.
    """
    det0 = experiment.detector
    u0 = u_from_ub(ub0, cell0)
    p0 = cell_to_params(cell0, bravais)
    rot_mask = spots.phi_width > 0
    sig_xy = (
        np.full(len(spots), SIGMA_XY)
        if spots.xy_sigma is None
        else np.maximum(np.asarray(spots.xy_sigma, float), 1e-3)
    )
    sig_phi = np.maximum(0.5 * spots.phi_width, SIGMA_PHI_MIN)
    phi_lo = spots.phi if spots.phi_min is None else np.minimum(spots.phi_min, spots.phi)
    phi_hi = spots.phi if spots.phi_max is None else np.maximum(spots.phi_max, spots.phi)

    def phi_miss(pc: np.ndarray, sel) -> np.ndarray:
        """Observed minus calculated φ, or the distance outside the centroid's interval."""
        lo, hi = phi_lo[sel], phi_hi[sel]
        return np.where(pc > hi, hi - pc, np.where(pc < lo, lo - pc, 0.0))

    n_geo = 2 + (1 if refine_distance else 0) + (2 if refine_tilt else 0)
    x = np.concatenate([np.zeros(3), p0, np.zeros(n_geo)])
    scale = np.concatenate([np.ones(3), np.maximum(np.abs(p0) * 1e-3, 1e-3), np.full(n_geo, 0.1)])
    if refine_tilt:
        scale[-2:] = 10.0  # 0.01 deg units
    if not refine_beam:
        n_geo = 0

    def build(xx: np.ndarray) -> Experiment:
        cell = params_to_cell(xx[3 : 3 + len(p0)], bravais)
        g = xx[3 + len(p0) :]
        det = det0
        if len(g):
            changes = {"beam_x": det0.beam_x + g[0], "beam_y": det0.beam_y + g[1]}
            if refine_distance:
                changes["distance"] = det0.distance + g[2]
            if refine_tilt:
                changes["tilt"] = det0.tilt + g[-2]
                changes["twist"] = det0.twist + g[-1]
            det = det0.replace(**changes)
        crystal = Crystal(cell=cell, U=small_rotation(xx[:3]) @ u0)
        return experiment.replace(detector=det, crystal=crystal)

    def predict(exp: Experiment, hkl: np.ndarray, sel: np.ndarray):
        xc = np.full(sel.sum(), np.nan)
        yc = np.full(sel.sum(), np.nan)
        pc = np.full(sel.sum(), np.nan)
        rot = rot_mask[sel]
        if rot.any():
            p, xr, yr = nearest_phi(exp, hkl[rot], spots.phi[sel][rot])
            xc[rot], yc[rot], pc[rot] = xr, yr, p
        if (~rot).any():
            # stills: pc is the angle (deg) that turns the rlp onto the Ewald sphere
            xs, ys, psi, ok = predict_still(exp, hkl[~rot], spots.phi[sel][~rot])
            xs[~ok], ys[~ok] = np.nan, np.nan
            xc[~rot], yc[~rot], pc[~rot] = xs, ys, psi
        return xc, yc, pc

    # stills: the spread of the rlps about the Ewald sphere (rocking width) is not known before
    # refinement; it is the robust rms of the angles to the sphere, re-estimated every cycle
    sig_psi = [float("inf")]

    def residuals(exp: Experiment, hkl: np.ndarray, sel: np.ndarray) -> np.ndarray:
        xc, yc, pc = predict(exp, hkl, sel)
        rx = (spots.x_mm[sel] - xc) / sig_xy[sel]
        ry = (spots.y_mm[sel] - yc) / sig_xy[sel]
        rp = np.where(rot_mask[sel], phi_miss(pc, sel) / sig_phi[sel], -pc / sig_psi[0])
        out = np.stack([rx, ry, rp], 1)
        return np.nan_to_num(out, nan=50.0, posinf=50.0, neginf=50.0)

    def index_all(exp: Experiment) -> tuple[np.ndarray, np.ndarray]:
        rlp = spots_to_rlp(spots.x_mm, spots.y_mm, spots.phi, exp)
        return index_fraction(rlp, exp.crystal.UB, hkldev)

    exp = build(x)
    # index with the observed matrix (not the regularized one) first
    rlp0 = spots_to_rlp(spots.x_mm, spots.y_mm, spots.phi, experiment)
    hkl, ok = index_fraction(rlp0, ub0, hkldev)

    def update_sig_psi(exp: Experiment, hkl: np.ndarray, sel: np.ndarray) -> None:
        still = sel & ~rot_mask
        if still.sum() >= 3:
            psi = predict(exp, hkl[still], still)[2]
            psi = psi[np.isfinite(psi)]
            if len(psi):
                # 1.4826 x median |psi|: the rms of a normal spread, robust to outliers
                sig_psi[0] = max(1.4826 * float(np.median(np.abs(psi))), SIGMA_PSI_MIN)

    update_sig_psi(exp, hkl, ok)
    use = ok.copy()
    if ok.sum() >= 6:
        # gross outliers out before the first fit (spots indexed within HKLDEV whose predicted
        # position is far away, or missing): a robust rms from the median weighted residual
        # (the norm of three unit normal components has rms = 1.13 x median)
        d0 = np.sqrt(np.sum(residuals(exp, hkl, np.ones(len(spots), bool)) ** 2, axis=1))
        rms0 = 1.13 * float(np.median(d0[ok]))
        use = ok & (d0 <= sdcutoff * max(rms0, 1e-6))
        if use.sum() < 6:
            use = ok.copy()
    n_par = len(x) if refine_beam else 3 + len(p0)
    sol = None
    for _ in range(cycles):
        if use.sum() < max(n_par + 2, 6):
            break
        h_use = hkl[use]

        def fun(xx: np.ndarray, h_use=h_use, use=use) -> np.ndarray:
            try:
                e = build(np.concatenate([xx, x[n_par:]]) if n_par < len(x) else xx)
            except GeometryError:
                return np.full(3 * len(h_use), 50.0)
            return residuals(e, h_use, use).ravel()

        lo, hi = _bounds(x, len(p0), bravais, n_par)
        x0 = np.clip(x[:n_par], lo + 1e-9, hi - 1e-9)
        # Levenberg-Marquardt (MINPACK, no threaded BLAS: fast for these small problems);
        # the bounded trust-region solver only when LM leaves the physical region
        # tolerances: a relative change of 1e-6 in the cost or parameters is far below what
        # matters for choosing a lattice (and the outer cycles re-fit after rejection)
        opts = dict(x_scale=scale[:n_par], ftol=1e-6, xtol=1e-6, max_nfev=30 * (n_par + 1))
        sol = least_squares(fun, x0, method="lm", **opts)
        if not (np.all(sol.x > lo) and np.all(sol.x < hi)):
            sol = least_squares(fun, x0, bounds=(lo, hi), method="trf", **opts)
        x[:n_par] = sol.x
        exp = build(x)
        hkl, ok = index_all(exp)
        res = residuals(exp, hkl, np.ones(len(spots), bool))
        dist = np.sqrt(np.sum(res**2, axis=1))
        # robust rms, 1.13 x the median weighted residual norm of all indexed spots (with few
        # spots one bad spot inflates the plain rms enough to survive its own SDCUTOFF test;
        # the median over all indexed spots, not only those kept, does not shrink from cycle
        # to cycle)
        rms = 1.13 * float(np.median(dist[ok])) if ok.any() else np.inf
        new_use = ok & (dist <= sdcutoff * rms)
        update_sig_psi(exp, hkl, new_use)
        if np.array_equal(new_use, use):
            break
        use = new_use
    exp = build(x)
    hkl, ok = index_all(exp)
    used = ok & use
    xc, yc, pc = predict(exp, hkl, np.ones(len(spots), bool))
    dxy = np.hypot(spots.x_mm - xc, spots.y_mm - yc)
    good = used & np.isfinite(dxy)
    sigma_xy = float(np.sqrt(np.mean(dxy[good] ** 2))) if good.any() else float("nan")
    rp = good & rot_mask
    sigma_phi = float(np.sqrt(np.mean(phi_miss(pc[rp], rp) ** 2))) if rp.any() else float("nan")
    # per-spot weighted squared residuals, for comparing solutions on common spots (F test)
    chi2 = np.sum(residuals(exp, hkl, np.ones(len(spots), bool)) ** 2, axis=1)
    chi2 = np.where(ok & np.isfinite(dxy), chi2, np.nan)
    n_obs = np.full(len(spots), 3)
    esd = np.full(len(p0), np.nan)
    d_esd = d_corr = float("nan")
    if sol is not None and sol.jac is not None and len(sol.fun) > len(sol.x):
        jac = np.asarray(sol.jac)
        dof = max(len(sol.fun) - len(sol.x), 1)
        s2 = 2 * sol.cost / dof
        try:
            cov = np.linalg.inv(jac.T @ jac) * s2
            esd = np.sqrt(np.abs(np.diag(cov)))[3 : 3 + len(p0)]
            if refine_distance and n_par == len(x):
                d_esd, d_corr = _distance_determination(cov, len(p0), 3 + len(p0) + 2)
        except np.linalg.LinAlgError:
            pass
    return SolutionRefinement(
        experiment=exp,
        ub=exp.crystal.UB,
        cell=exp.crystal.cell,
        sigma_xy=sigma_xy,
        sigma_phi=sigma_phi,
        n_used=int(good.sum()),
        fraction=float(ok.mean()),
        cell_esd=esd,
        distance_esd=d_esd,
        distance_corr=d_corr,
        chi2=chi2,
        used=good,
        n_obs=n_obs,
        n_params=n_par,
    )


def predict_still(
    experiment: Experiment, hkl: np.ndarray, phi_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Position (mm) of each reflection on a still, and its angle to the Ewald sphere (deg).

    On a still a reflection is recorded while its rlp is near, not on, the Ewald sphere (within
    the rocking width: mosaic spread, divergence, bandwidth).  The mosaic block that diffracts
    it has its rlp turned onto the sphere, length kept, so the spot lies at the Bragg angle of
    |r| exactly, where the rlp rotated onto the sphere about s0 x r meets the detector; the
    angle of that rotation (Delta psi) is a third residual that pins the orientation, which
    the positions alone hardly determine (Sauter et al. 2014; DIALS's stills prediction and
    refinement with X, Y and Delta psi).  Projecting the off-sphere rlp along s0 + r instead
    puts the spot at a Bragg angle off by the excitation error.

    Returns
    -------
    (x, y, delta_psi, ok)
        Delta psi > 0 when the rlp must turn away from the beam to reach the sphere.

    References
    ----------
    Sauter, N. K., Hattne, J., Brewster, A. S. et al. (2014). Acta Cryst. D70, 3299-3309.
    """
    cr = experiment.crystal
    r0 = np.asarray(hkl, dtype=float) @ cr.UB.T
    phi = np.broadcast_to(np.asarray(phi_deg, dtype=float), (len(r0),))
    r = rotate_about_axis(r0, experiment.goniometer.axis, phi)
    s0 = experiment.beam.s0
    k = float(np.linalg.norm(s0))
    e0 = s0 / k
    rlen = np.linalg.norm(r, axis=1)
    along = r @ e0
    perp = r - np.outer(along, e0)
    plen = np.linalg.norm(perp, axis=1)
    cos_on = -rlen / (2.0 * k)
    good = (plen > 1e-12) & (np.abs(cos_on) < 1.0)
    sin_on = np.sqrt(np.clip(1.0 - cos_on**2, 0.0, 1.0))
    e1 = perp / np.where(plen > 1e-12, plen, 1.0)[:, None]
    r_on = rlen[:, None] * (cos_on[:, None] * e0[None, :] + sin_on[:, None] * e1)
    x, y, ok = experiment.detector.lab_to_mm(s0[None, :] + r_on)
    psi = np.degrees(np.arctan2(sin_on, cos_on) - np.arctan2(plen, along))
    return x, y, np.where(good, psi, np.nan), ok & good


def _distance_determination(cov: np.ndarray, n_cell: int, k: int) -> tuple[float, float]:
    """Esd (mm) of the refined distance and its multiple correlation with the cell parameters.

    ``cov`` is the covariance of (3 orientation angles, ``n_cell`` cell parameters, beam X,
    beam Y, distance, ...); ``k`` is the index of the distance.  The multiple correlation R of
    the distance with the cell parameters is
    ``sqrt(1 - 1 / (C_DD (C_sub^-1)_DD))`` over the sub-block of the cell parameters and the
    distance: R -> 1 when a change of distance can be absorbed by a change of cell (low-angle
    data, where the spot radius scales as distance / cell edge).
    """
    esd = float(np.sqrt(abs(cov[k, k])))
    idx = [*range(3, 3 + n_cell), k]
    sub = cov[np.ix_(idx, idx)]
    try:
        inv = np.linalg.inv(sub)
    except np.linalg.LinAlgError:
        return esd, 1.0
    r2 = 1.0 - 1.0 / max(float(cov[k, k] * inv[-1, -1]), 1.0)
    return esd, float(np.sqrt(max(r2, 0.0)))
