"""Post-refinement of the crystal from partially recorded reflections (MOSFLM POSTREF).

For every reflection whose parts were measured on contiguous images and whose whole rocking curve
lies inside those images (MULTI; judged from the data: the first and last parts hold less than
5 % of the total or are within 2σ of zero), the total intensity is the sum of the parts and the
running sum over the first k parts, divided by the total, is the observed cumulative fraction
F_k at the end φ_b of image k.  The uniform-ball model of conventions.txt gives F = P(q),
P(q) = 3q² − 2q³, q = (φ_b − φ_c)/W + ½ (Rossmann 1979), so each F_k is inverted to an
observed penetration q_obs = ½ − sin(asin(1 − 2F)/3) and hence an
observed centre φ_c,obs = φ_b − (q_obs − ½)·W.
The residual minimised is the φ error  ε = φ_c,obs − φ_c,calc  (degrees; MOSFLM's
(RO − RC)/D* in angular units), weighted by 1/σ²(ε) propagated from σ(I) of the parts:
σ(ε) = W σ(F) / P'(q).  Because W enters ε, boundaries at different penetrations determine the
mosaic spread η as well as the missets and the cell.

Refined: rotations about lab X, Y, Z at a reference φ (PHIX, PHIY, PHIZ; PHIX only when the data
span ≥ 20° — otherwise it is positional), the cell parameters free under the lattice symmetry,
η and optionally the beam divergence (fully correlated with η in this model, so off by default).

References
----------
Rossmann, M. G. (1979). J. Appl. Cryst. 12, 225–238.
Rossmann, M. G., Leslie, A. G. W., Abdel-Meguid, S. S. & Tsukihara, T. (1979). J. Appl. Cryst. 12,
570–581.
Winkler, F. K., Schutt, C. E. & Harrison, S. C. (1979). Acta Cryst. A35, 901–911.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError, RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import nearest_phi, rocking_width
from mosflm_py.refinement.cell_params import CELL_NAMES, cell_constraint
from mosflm_py.refinement.lsq import least_squares, robust_outliers
from mosflm_py.refinement.observations import PartialObservations, group_parts
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import PostrefParams


def inverse_fraction(f: np.ndarray) -> np.ndarray:
    """q with 3q² − 2q³ = f (f clipped to [0, 1])."""
    f = np.clip(np.asarray(f, dtype=float), 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * f) / 3.0)


@dataclass(frozen=True, eq=False)
class PostRefinement:
    """Result of :func:`postrefine`.

    experiment : with the refined crystal (and beam divergence if refined).
    values, esds : refined parameters in MOSFLM units (PHIX/PHIY/PHIZ = the datum missetting
        angles; their esds are those of rotations about lab X, Y, Z at ``phi_ref``), cell (Å, °)
        and MOSAIC/DIVERGENCE (°).  Cell parameters tied by symmetry carry the esd of the one
        they follow; fixed ones 0.
    shifts : change of each value.
    free : names refined.  rms_resid : rms φ residual (°).  wrms : weighted residual.
    n_used : boundaries (observed fractions) used.  n_reflections : reflections they come from.
    per_image : image → (rms resid °, number of fractions) for the "Post refinement" table.
    reprocess : a misset shifted by more than MAXSHIFT.
    phi_ref : reference φ of the rotation parameters.
    """

    experiment: Experiment
    values: dict[str, float]
    esds: dict[str, float]
    shifts: dict[str, float]
    free: tuple[str, ...]
    rms_resid: float
    wrms: float
    n_used: int
    n_reflections: int
    per_image: dict[int, tuple[float, int]]
    reprocess: bool
    phi_ref: float
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _Data:
    hkl: np.ndarray       # (G, 3) per group
    phi_mid: np.ndarray   # (G,) middle of the group's φ range
    lo: np.ndarray
    hi: np.ndarray
    gid: np.ndarray       # (K,) group of each boundary
    b: np.ndarray         # (K,) boundary φ
    f: np.ndarray         # (K,) observed cumulative fraction
    sf: np.ndarray        # (K,) σ(F)
    image: np.ndarray     # (K,) image ending at the boundary


def _build(obs: PartialObservations, params: PostrefParams) -> _Data:
    g = group_parts(obs)
    o = g.order
    inten, var = obs.intensity[o], obs.sigma[o] ** 2
    gid_row = np.repeat(np.arange(len(g)), g.count)
    cs, cv = np.cumsum(inten), np.cumsum(var)
    off_i = np.where(g.start > 0, cs[g.start - 1], 0.0)
    off_v = np.where(g.start > 0, cv[g.start - 1], 0.0)
    last = g.start + g.count - 1
    tot, totv = cs[last] - off_i, cv[last] - off_v
    strong = (g.count >= (2 if params.multi else 1)) & (tot > params.sdfac * np.sqrt(totv))
    strong &= tot > 0
    # complete: nothing much recorded on the first and last images of the group
    edge_tol = np.maximum(0.05 * tot, 2.0 * np.sqrt(np.maximum(var[g.start], var[last])))
    strong &= (inten[g.start] < edge_tol) & (inten[last] < edge_tol)
    rows = np.arange(len(o))
    is_last = np.zeros(len(o), bool)
    is_last[last] = True
    brow = rows[~is_last & strong[gid_row]]
    gid = gid_row[brow]
    a = cs[brow] - off_i[gid]
    va = cv[brow] - off_v[gid]
    t, tv = tot[gid], totv[gid]
    bb, vb = t - a, tv - va
    f = a / t
    sf = np.sqrt(bb**2 * va + a**2 * vb) / t**2
    keep = (f >= params.frmin) & (f <= params.frmax)
    brow, gid, f, sf = brow[keep], gid[keep], f[keep], sf[keep]
    # renumber the groups that keep at least one boundary
    used, gid = np.unique(gid, return_inverse=True)
    first = o[g.start[used]]
    lastr = o[last[used]]
    lo, hi = obs.phi_start[first], obs.phi_end[lastr]
    return _Data(hkl=obs.hkl[first], phi_mid=0.5 * (lo + hi), lo=lo, hi=hi, gid=gid,
                 b=obs.phi_end[o[brow]], f=f, sf=sf, image=obs.image[o[brow]])


def count_fractions(observations: PartialObservations, params: PostrefParams | None = None) -> int:
    """Number of observed cumulative fractions post-refinement could use (before the model
    check): boundaries of complete multi-image partials with I > SDFAC·σ in FRMIN..FRMAX."""
    return int(len(_build(observations, params or PostrefParams()).b))


def _centre_width(exp: Experiment, hkl: np.ndarray, phi_mid: np.ndarray):
    """φ_c (°) nearest ``phi_mid`` and the full rocking width W (°) for each reflection."""
    cr, beam, gon = exp.crystal, exp.beam, exp.goniometer
    phic, _, _ = nearest_phi(exp, hkl, phi_mid)
    r0 = hkl.astype(float) @ cr.UB.T
    r = np.einsum("nij,nj->ni", gon.rotations(np.nan_to_num(phic)), r0)
    s1 = r + beam.s0[None, :]
    s1n = s1 / np.linalg.norm(s1, axis=1)[:, None]
    zeta = np.cross(s1n, np.array([1.0, 0.0, 0.0])[None, :]) @ gon.axis
    w = rocking_width(np.linalg.norm(r0, axis=1), zeta, beam.wavelength, cr.mosaic,
                      beam.mean_divergence, beam.dispersion)
    return phic, w


class _Model:
    """Parameter vector ↔ experiment for post-refinement."""

    def __init__(self, exp: Experiment, params: PostrefParams, phi_ref: float, span: float):
        self.exp, self.phi_ref = exp, phi_ref
        cr = exp.crystal
        fix = set(params.fix)
        if span < 20.0:
            fix.add("PHIX")
        self.rot = tuple(n for n in ("PHIX", "PHIY", "PHIZ") if n not in fix)
        self.cons = cell_constraint(cr.space_group, cr.cell, frozenset(fix))
        self.other = tuple(n for n in ("MOSAIC", "DIVERGENCE") if n not in fix)
        self.names = self.rot + self.cons.free + self.other
        cell0 = self.cons.values(cr.cell)
        self.x0 = np.concatenate([np.zeros(len(self.rot)), cell0,
                                  [cr.mosaic if n == "MOSAIC" else exp.beam.mean_divergence
                                   for n in self.other]])
        self.steps = np.array([1e-3] * len(self.rot)
                              + [1e-5 * v if n in CELL_NAMES[:3] else 1e-3
                                 for n, v in zip(self.cons.free, cell0)]
                              + [1e-3] * len(self.other))

    def experiment(self, x: np.ndarray) -> Experiment:
        exp = self.exp
        nr, nc = len(self.rot), len(self.cons.free)
        ang = dict(zip(self.rot, x[:nr]))
        cr = exp.crystal
        cell = self.cons.cell(x[nr:nr + nc], cr.cell)
        changes: dict[str, object] = {"cell": cell}
        beam = exp.beam
        for n, v in zip(self.other, x[nr + nc:]):
            if n == "MOSAIC":
                changes["mosaic"] = float(v)
            else:
                beam = beam.__class__(beam.wavelength, beam.polarisation, (float(v), float(v)),
                                      beam.dispersion)
        cr = cr.replace(**changes)
        cr = rotate_crystal(cr, ang.get("PHIX", 0.0), ang.get("PHIY", 0.0), ang.get("PHIZ", 0.0),
                            self.phi_ref, exp.goniometer)
        return exp.replace(crystal=cr, beam=beam)


def _residuals(exp: Experiment, d: _Data) -> tuple[np.ndarray, np.ndarray]:
    """φ residuals ε (°) and their σ for every boundary."""
    phic, w = _centre_width(exp, d.hkl, d.phi_mid)
    q = inverse_fraction(d.f)
    wg = w[d.gid]
    eps = d.b - (q - 0.5) * wg - phic[d.gid]
    dp = np.maximum(6.0 * q * (1.0 - q), 0.3)
    sig = np.sqrt((wg * d.sf / dp) ** 2 + 1e-4**2)
    return eps, sig


def postrefine(
    experiment: Experiment,
    observations: PartialObservations,
    params: PostrefParams | None = None,
    phi_ref: float | None = None,
) -> PostRefinement:
    """Refine missets, cell (under the lattice symmetry) and mosaic spread from partials.

    Parameters
    ----------
    experiment : current model with a crystal (its mosaic is the starting η).
    observations : measured parts (every image's summation intensities of predicted reflections).
    params : POSTREF parameters.
    phi_ref : φ (°) about which the orientation increments are defined (default: mean of the data).

    Returns
    -------
    PostRefinement

    Raises
    ------
    RefinementError
        Fewer than NREF usable fractions, or rms residual above MAXRESIDUAL.
    """
    params = params or PostrefParams()
    cr0 = experiment.crystal
    if cr0 is None:
        raise RefinementError("post-refinement needs a crystal orientation (index first)")
    if cr0.mosaic <= 0 and "MOSAIC" not in params.fix:
        experiment = experiment.replace(crystal=cr0.replace(mosaic=0.05))
    data = _build(observations, params)
    warnings: list[str] = []
    if len(data.b) == 0:
        raise RefinementError(
            "no partially recorded reflections spread over consecutive images with "
            f"I > {params.sdfac:g} sigma: post-refinement is impossible (too weak data, or "
            "segments too short; use more images per segment)"
        )
    span = float(np.max(data.hi) - np.min(data.lo))
    if phi_ref is None:
        phi_ref = float(np.mean(data.b))
    model = _Model(experiment, params, phi_ref, span)
    phic, _ = _centre_width(experiment, data.hkl, data.phi_mid)
    active = np.isfinite(phic[data.gid])
    if active.sum() < max(params.nref, len(model.names) + 1):
        raise RefinementError(
            f"only {int(active.sum())} observed fractions of fully measured partials for "
            f"post-refinement (NREF {params.nref}): the data are too weak or the segments too "
            "short to contain complete reflections"
        )
    fit = None
    for _ in range(4):
        idx = np.nonzero(active)[0]
        sub = _Data(hkl=data.hkl, phi_mid=data.phi_mid, lo=data.lo, hi=data.hi,
                    gid=data.gid[idx], b=data.b[idx], f=data.f[idx], sf=data.sf[idx],
                    image=data.image[idx])

        def fun(x: np.ndarray, sub=sub) -> np.ndarray:
            try:
                eps, sig = _residuals(model.experiment(x), sub)
            except GeometryError:
                return np.full(len(sub.b), np.inf)
            r = eps / sig
            return np.where(np.isfinite(r), r, 1e6)

        x_start = model.x0 if fit is None else fit.x
        fit = least_squares(fun, x_start, model.steps, max_iter=params.max_cycles)
        bad = robust_outliers(fit.residuals, params.reject_sigma, 1.0)
        if not bad.any():
            break
        active[idx[bad]] = False
        if active.sum() < max(params.nref, len(model.names) + 1):
            raise RefinementError(
                f"only {int(active.sum())} fractions left after outlier rejection in "
                "post-refinement: the partials do not agree with the model"
            )
    idx = np.nonzero(active)[0]
    exp = model.experiment(fit.x)
    eps, _ = _residuals(exp, _Data(data.hkl, data.phi_mid, data.lo, data.hi, data.gid[idx],
                                   data.b[idx], data.f[idx], data.sf[idx], data.image[idx]))
    rms = float(np.sqrt(np.mean(eps**2)))
    cr = exp.crystal
    if cr.mosaic < 0:
        warnings.append(
            f"Refined mosaic spread is negative ({cr.mosaic:.3f}°): the lattice symmetry may be "
            "too high (try a lower-symmetry solution); mosaic reset to 0.01°"
        )
        exp = exp.replace(crystal=cr.replace(mosaic=0.01))
        cr = exp.crystal
    values: dict[str, float] = {}
    esds: dict[str, float] = {}
    esd_of = dict(zip(model.names, fit.esd))
    for i, n in enumerate(("PHIX", "PHIY", "PHIZ")):
        values[n] = cr.missets[i]
        esds[n] = float(esd_of.get(n, 0.0))
    for i, n in enumerate(CELL_NAMES):
        values[n] = cr.cell[i]
        esds[n] = float(esd_of.get(n, 0.0))
    # parameters tied by symmetry share the esd of their master
    sysname = model.cons.system
    if sysname in ("tetragonal", "trigonal", "hexagonal", "cubic", "rhombohedral"):
        esds["B"] = esds["A"]
    if sysname in ("cubic", "rhombohedral"):
        esds["C"] = esds["A"]
    if sysname == "rhombohedral":
        esds["BETA"] = esds["GAMMA"] = esds["ALPHA"]
    values["MOSAIC"] = cr.mosaic
    esds["MOSAIC"] = float(esd_of.get("MOSAIC", 0.0))
    values["DIVERGENCE"] = exp.beam.mean_divergence
    esds["DIVERGENCE"] = float(esd_of.get("DIVERGENCE", 0.0))
    old = {**dict(zip(("PHIX", "PHIY", "PHIZ"), cr0.missets)), **dict(zip(CELL_NAMES, cr0.cell)),
           "MOSAIC": cr0.mosaic, "DIVERGENCE": experiment.beam.mean_divergence}
    shifts = {k: values[k] - old[k] for k in values}
    rot_shift = np.abs(fit.x[: len(model.rot)]) if model.rot else np.zeros(0)
    reprocess = bool(np.any(rot_shift > params.maxshift))
    maxres = params.maxresidual
    if maxres is None:
        maxres = max(0.55 * (cr.mosaic + exp.beam.mean_divergence), 0.1)
    if rms > maxres:
        raise RefinementError(
            f"post-refinement rms residual {rms:.3f}° exceeds MAXRESIDUAL {maxres:.3f}°: the "
            "partials do not fit the model (wrong cell or orientation, or overlapping spots)"
        )
    per_image: dict[int, tuple[float, int]] = {}
    imgs = data.image[idx]
    for im in np.unique(imgs):
        e = eps[imgs == im]
        per_image[int(im)] = (float(np.sqrt(np.mean(e**2))), int(len(e)))
    return PostRefinement(
        experiment=exp, values=values, esds=esds, shifts=shifts, free=model.names,
        rms_resid=rms, wrms=fit.weighted_rms, n_used=len(idx),
        n_reflections=len(np.unique(data.gid[idx])), per_image=per_image, reprocess=reprocess,
        phi_ref=phi_ref, warnings=warnings,
    )


def smooth_mosaic(values: np.ndarray, window: int = 10, mosadd: float = 0.05) -> np.ndarray:
    """Running mean of per-image mosaic over the last ``window`` images, times (1 + MOSADD).

    This is the value used for prediction during integration ("Smoothed value ... (including
    safety factor)").
    """
    v = np.asarray(values, dtype=float)
    if window < 1:
        raise RefinementError(f"MOSSMOOTH must be at least 1 (got {window})")
    cs = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(i - window, 0)
    return (cs[i] - cs[lo]) / (i - lo) * (1.0 + mosadd)
