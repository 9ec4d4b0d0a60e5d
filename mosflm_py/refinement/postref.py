"""Post-refinement of the crystal from partially recorded reflections (MOSFLM POSTREF).

Every reflection measured on two or more contiguous images gives, image by image, the observed
share of its intensity g_k = I_k / Σ I.  The model share is s·f_k, with f_k the fraction of the
rocking curve recorded on image k (FRACTIONCALC; the model of
:mod:`mosflm_py.geometry.rocking_curve`: the uniform-ball P(q) = 3q² − 2q³ of Rossmann 1979
convolved with the Gaussian of the mosaic-block size) and s the scale
that best matches the observed images (s = 1/Σf when the whole curve was recorded; larger when the
reflection runs past the first or last image).  The residual minimised is

    (g_k − s f_k) / σ(g_k),   σ²(g_k) = (σ(I_k)/ΣI)² + 0.02²

(the floor stands for the difference between the model curve and real, lumpy rocking curves of
discrete mosaic domains).  This uses reflections cut off by the ends of a segment as well as
complete ones, so short segments of fine-sliced images still post-refine, and every part counts
(also the empty ones next to the reflection, which fix the width).  The width W has angular terms
that grow with resolution (mosaic spread η, beam divergence, dispersion) and a reciprocal-space
term from the mosaic-block size that does not (``domain_width``); the spread of resolutions lets
post-refinement separate them.  MOSFLM's residual (RO − RC)/D* is the same information expressed
as a φ error; the rms residual reported in degrees is the φ shift of the reflection centre that
would account for each boundary part's misfit.

Refined: rotations about lab X, Y, Z at a reference φ (PHIX, PHIY, PHIZ; PHIX only when the data
span ≥ 20° — otherwise it is positional), the cell parameters free under the lattice symmetry,
η, the mosaic-block width (BLOCKSIZE) and optionally the beam divergence (fully correlated with η
in this model, so off by default).

References
----------
Rossmann, M. G. (1979). J. Appl. Cryst. 12, 225–238.
Rossmann, M. G., Leslie, A. G. W., Abdel-Meguid, S. S. & Tsukihara, T. (1979). J. Appl. Cryst. 12,
570–581.
Winkler, F. K., Schutt, C. E. & Harrison, S. C. (1979). Acta Cryst. A35, 901–911.
Greenhough, T. J. & Helliwell, J. R. (1982). J. Appl. Cryst. 15, 493–508 (reflecting range).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError, RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import nearest_phi
from mosflm_py.geometry.rocking_curve import (
    curve_density,
    extent,
    fraction_on_image,
    rocking_widths,
)
from mosflm_py.refinement.cell_params import CELL_NAMES, cell_constraint
from mosflm_py.refinement.lsq import jacobian, least_squares, robust_outliers
from mosflm_py.refinement.observations import PartialObservations, group_parts
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import PostrefParams

MODEL_FLOOR = 0.02
"""σ floor of an observed share g_k (fraction units): model error of the uniform-ball curve."""

DOMAIN_SCALE = 1.0e-3
"""Unit (1/Å) of the mosaic-block width parameter in the least squares."""


def inverse_fraction(f: np.ndarray) -> np.ndarray:
    """q with 3q² − 2q³ = f (f clipped to [0, 1])."""
    f = np.clip(np.asarray(f, dtype=float), 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * f) / 3.0)


@dataclass(frozen=True, eq=False)
class PostRefinement:
    """Result of :func:`postrefine`.

    experiment : with the refined crystal (and beam divergence if refined).
    values, esds : refined parameters in MOSFLM units (PHIX/PHIY/PHIZ = the datum missetting
        angles; their esds are those of rotations about lab X, Y, Z at ``phi_ref``), cell (Å, °),
        MOSAIC/DIVERGENCE (°) and BLOCKSIZE (the mosaic-block width, 1/Å).  Cell parameters tied
        by symmetry carry the esd of the one they follow; fixed ones 0.
    shifts : change of each value.
    free : names refined.  rms_resid : robust rms φ-equivalent residual (°).
    wrms : weighted residual.
    rms_fraction : rms of observed − calculated share of each part (fraction units).
    rms_fraction_complete, n_complete : rms of observed share − FRACTIONCALC over the parts of
        the ``n_complete`` reflections whose whole calculated rocking curve was measured.
    n_used : parts (observed fractions) used.  n_reflections : reflections they come from.
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
    rms_fraction: float = float("nan")
    rms_fraction_complete: float = float("nan")
    n_complete: int = 0


@dataclass(frozen=True, eq=False)
class _Data:
    hkl: np.ndarray       # (G, 3) per group
    phi_mid: np.ndarray   # (G,) middle of the group's φ range
    lo: np.ndarray
    hi: np.ndarray
    gid: np.ndarray       # (K,) group of each part
    a: np.ndarray         # (K,) φ start of the part's image
    b: np.ndarray         # (K,) φ end of the part's image
    g: np.ndarray         # (K,) observed share I_k / ΣI
    sc: np.ndarray        # (K,) counting σ of the share
    image: np.ndarray     # (K,) image of the part
    floor: float = MODEL_FLOOR

    @property
    def sg(self) -> np.ndarray:
        """σ of the share: counting σ and the model floor in quadrature."""
        return np.sqrt(self.sc**2 + self.floor**2)

    def subset(self, groups: np.ndarray) -> _Data:
        """The parts of the groups flagged in ``groups`` (bool, per group), renumbered."""
        keep = groups[self.gid]
        used, gid = np.unique(self.gid[keep], return_inverse=True)
        return _Data(self.hkl[used], self.phi_mid[used], self.lo[used], self.hi[used], gid,
                     self.a[keep], self.b[keep], self.g[keep], self.sc[keep], self.image[keep],
                     self.floor)

    @property
    def n_groups(self) -> int:
        return len(self.hkl)


def _build(obs: PartialObservations, params: PostrefParams) -> _Data:
    """Reflections with ≥ 2 contiguous parts (1 without MULTI) and ΣI > SDFAC·σ(ΣI)."""
    g = group_parts(obs)
    o = g.order
    inten, var = obs.intensity[o], obs.sigma[o] ** 2
    gid_row = np.repeat(np.arange(len(g)), g.count)
    tot = np.bincount(gid_row, inten, len(g)) if len(g) else np.zeros(0)
    totv = np.bincount(gid_row, var, len(g)) if len(g) else np.zeros(0)
    strong = (g.count >= (2 if params.multi else 1)) & (tot > params.sdfac * np.sqrt(totv))
    strong &= tot > 0
    rows = np.nonzero(strong[gid_row])[0]
    used, gid = np.unique(gid_row[rows], return_inverse=True)
    t = tot[gid_row[rows]]
    share = inten[rows] / t
    sshare = np.sqrt(var[rows]) / t
    first = o[g.start[used]]
    last = o[g.start[used] + g.count[used] - 1]
    lo, hi = obs.phi_start[first], obs.phi_end[last]
    orow = o[rows]
    return _Data(hkl=obs.hkl[first], phi_mid=0.5 * (lo + hi), lo=lo, hi=hi, gid=gid,
                 a=obs.phi_start[orow], b=obs.phi_end[orow], g=share, sc=sshare,
                 image=obs.image[orow])


def count_fractions(observations: PartialObservations, params: PostrefParams | None = None) -> int:
    """Number of observed fractions post-refinement could use (before the model check): parts of
    reflections measured on two or more contiguous images with ΣI > SDFAC·σ."""
    return int(len(_build(observations, params or PostrefParams()).g))


def _centre_width(exp: Experiment, hkl: np.ndarray, phi_mid: np.ndarray):
    """φ_c (°) nearest ``phi_mid``, the full extent W (°) of each reflection's rocking curve and
    its uniform-ball part (°) (:mod:`mosflm_py.geometry.rocking_curve`)."""
    cr, beam, gon = exp.crystal, exp.beam, exp.goniometer
    phic, _, _ = nearest_phi(exp, hkl, phi_mid)
    r0 = hkl.astype(float) @ cr.UB.T
    r = np.einsum("nij,nj->ni", gon.rotations(np.nan_to_num(phic)), r0)
    s1 = r + beam.s0[None, :]
    s1n = s1 / np.linalg.norm(s1, axis=1)[:, None]
    zeta = np.cross(s1n, np.array([1.0, 0.0, 0.0])[None, :]) @ gon.axis
    ball, block = rocking_widths(np.linalg.norm(r0, axis=1), zeta, beam.wavelength, cr.mosaic,
                                 beam.mean_divergence, beam.dispersion, cr.domain_width)
    return phic, extent(ball, block), ball


class _Model:
    """Parameter vector ↔ experiment for post-refinement."""

    def __init__(self, exp: Experiment, params: PostrefParams, phi_ref: float, span: float):
        self.exp, self.phi_ref = exp, phi_ref
        cr = exp.crystal
        fix = set(params.fix)
        if "MOSAIC" in fix:  # a fixed mosaic spread fixes the whole rocking width
            fix.add("BLOCKSIZE")
        if span < 20.0:
            fix.add("PHIX")
        self.rot = tuple(n for n in ("PHIX", "PHIY", "PHIZ") if n not in fix)
        self.cons = cell_constraint(cr.space_group, cr.cell, frozenset(fix))
        self.other = tuple(n for n in ("MOSAIC", "BLOCKSIZE", "DIVERGENCE") if n not in fix)
        self.names = self.rot + self.cons.free + self.other
        cell0 = self.cons.values(cr.cell)
        # |x| enters the model: a width starting at exactly 0 would have no gradient
        start = {"MOSAIC": max(cr.mosaic, 0.01),
                 "BLOCKSIZE": max(cr.domain_width / DOMAIN_SCALE, 0.1),
                 "DIVERGENCE": exp.beam.mean_divergence}
        self.x0 = np.concatenate([np.zeros(len(self.rot)), cell0,
                                  [start[n] for n in self.other]])
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
        # widths enter as |x|: the model is even in each, and the sign cannot flip mid-fit
        for n, v in zip(self.other, x[nr + nc:]):
            if n == "MOSAIC":
                changes["mosaic"] = abs(float(v))
            elif n == "BLOCKSIZE":
                changes["domain_width"] = abs(float(v)) * DOMAIN_SCALE
            else:
                beam = beam.__class__(beam.wavelength, beam.polarisation,
                                      (abs(float(v)), abs(float(v))), beam.dispersion)
        cr = cr.replace(**changes)
        cr = rotate_crystal(cr, ang.get("PHIX", 0.0), ang.get("PHIY", 0.0), ang.get("PHIZ", 0.0),
                            self.phi_ref, exp.goniometer)
        return exp.replace(crystal=cr, beam=beam)


def _model_shares(exp: Experiment, d: _Data):
    """Calculated fractions f, scale s per group, and the centres, extents and ball widths."""
    phic, w, ball = _centre_width(exp, d.hkl, d.phi_mid)
    pc, wg, bg = phic[d.gid], w[d.gid], ball[d.gid]
    f = fraction_on_image(np.nan_to_num(pc, nan=1e9), np.nan_to_num(wg, nan=1e-9), d.a, d.b,
                          np.nan_to_num(bg, nan=1e-9))
    ng = d.n_groups
    sfg = np.bincount(d.gid, f * d.g, ng)
    sff = np.bincount(d.gid, f * f, ng)
    s = np.where(sff > 1e-12, sfg / np.where(sff > 1e-12, sff, 1.0), 0.0)
    return f, s, pc, wg, bg


def _trim(exp: Experiment, d: _Data) -> _Data:
    """Drop the parts that carry no information at the current model: nothing calculated
    (s·f < 0.2 %) and nothing significant observed (g < 2σ).  They would only dilute the
    residual and make the esds too small."""
    f, s, *_ = _model_shares(exp, d)
    keep = (s[d.gid] * f > 0.002) | (d.g > 2.0 * d.sc)
    return _Data(d.hkl, d.phi_mid, d.lo, d.hi, d.gid[keep], d.a[keep], d.b[keep], d.g[keep],
                 d.sc[keep], d.image[keep], d.floor)


def _block_negligible(exp: Experiment, d: _Data, tol: float = 0.01) -> bool:
    """True when the mosaic-block term widens no reflection of ``d`` by ``tol`` or more."""
    _, w, _ = _centre_width(exp, d.hkl, d.phi_mid)
    bare = exp.replace(crystal=exp.crystal.replace(domain_width=0.0))
    _, w0, _ = _centre_width(bare, d.hkl, d.phi_mid)
    ok = np.isfinite(w) & np.isfinite(w0) & (w0 > 0)
    return bool(np.all(w[ok] < (1.0 + tol) * w0[ok]))


def _residuals(exp: Experiment, d: _Data) -> np.ndarray:
    """Normalised share residuals (g − s f)/σ(g) of every part."""
    f, s, *_ = _model_shares(exp, d)
    return (d.g - s[d.gid] * f) / d.sg


def _phi_residuals(exp: Experiment, d: _Data) -> tuple[np.ndarray, np.ndarray]:
    """φ-equivalent residuals (°) of the parts that hold a boundary of the rocking curve, and the
    mask of those parts: misfit of the share divided by its rate of change with φ_c."""
    f, s, pc, wg, bg = _model_shares(exp, d)
    sw = np.where(wg > 1e-9, wg, 1e-9)
    bw = np.nan_to_num(bg, nan=0.0)
    # rate of change of the share with φ_c: the curve's density at both ends of the image
    rate = np.abs(curve_density(d.b - pc, sw, bw) - curve_density(d.a - pc, sw, bw)) * s[d.gid]
    edge = (rate > 0.25 / sw) & np.isfinite(rate)
    eps = np.where(edge, (d.g - s[d.gid] * f) / np.where(edge, rate, 1.0), 0.0)
    return eps, edge


def _cluster_esds(fun, fit, steps: np.ndarray, sub: _Data) -> np.ndarray:
    """Parameter esds robust to errors shared by the parts of one reflection.

    The parts of a reflection share its eliminated scale and its real rocking-curve shape, so
    their residuals are correlated and the textbook (JᵀJ)⁻¹ understates the errors.  The
    cluster-robust ("sandwich") covariance (JᵀJ)⁻¹ [Σ_refl (J_rᵀ r_r)(J_rᵀ r_r)ᵀ] (JᵀJ)⁻¹ with
    the reflections as clusters (Liang & Zeger 1986, Biometrika 73, 13-22) is used when larger.
    """
    jac = jacobian(fun, fit.x, steps)
    r = fit.residuals
    try:
        bread = np.linalg.pinv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return np.asarray(fit.esd)
    u = np.zeros((sub.n_groups, jac.shape[1]))
    np.add.at(u, sub.gid, jac * r[:, None])
    g = max(int(np.count_nonzero(np.any(u != 0, axis=1))), 2)
    npar = jac.shape[1]
    meat = u.T @ u * g / max(g - npar, 1)
    cov = bread @ meat @ bread
    robust = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return np.maximum(robust, np.asarray(fit.esd))


def postrefine(
    experiment: Experiment,
    observations: PartialObservations,
    params: PostrefParams | None = None,
    phi_ref: float | None = None,
) -> PostRefinement:
    """Refine missets, cell (under the lattice symmetry), mosaic spread and block width.

    Parameters
    ----------
    experiment : current model with a crystal (its mosaic and domain width are the start).
    observations : measured parts (every image's summation intensities of predicted reflections).
    params : POSTREF parameters.
    phi_ref : φ (°) about which the orientation increments are defined (default: mean of the data).

    Returns
    -------
    PostRefinement

    Raises
    ------
    RefinementError
        Fewer than NREF usable reflections, or rms residual above MAXRESIDUAL.
    """
    params = params or PostrefParams()
    cr0 = experiment.crystal
    if cr0 is None:
        raise RefinementError("post-refinement needs a crystal orientation (index first)")
    if cr0.mosaic <= 0 and "MOSAIC" not in params.fix:
        experiment = experiment.replace(crystal=cr0.replace(mosaic=0.05))
    data = _build(observations, params)
    warnings: list[str] = []
    if len(data.g) == 0:
        raise RefinementError(
            "no partially recorded reflections spread over consecutive images with "
            f"I > {params.sdfac:g} sigma: post-refinement is impossible (too weak data, or "
            "segments too short; use more images per segment)"
        )
    span = float(np.max(data.hi) - np.min(data.lo))
    if phi_ref is None:
        phi_ref = float(np.mean(0.5 * (data.a + data.b)))
    model = _Model(experiment, params, phi_ref, span)
    phic, _, _ = _centre_width(experiment, data.hkl, data.phi_mid)
    active = np.isfinite(phic)
    need = max(params.nref, len(model.names) + 1)
    if active.sum() < need:
        raise RefinementError(
            f"only {int(active.sum())} reflections measured on more than one image for "
            f"post-refinement (NREF {params.nref}): the data are too weak or the segments too "
            "short"
        )
    fit = None
    sub = data.subset(active)
    for _ in range(4):
        x_start = model.x0 if fit is None else fit.x
        sub = _trim(model.experiment(x_start), data.subset(active))

        def fun(x: np.ndarray, sub=sub) -> np.ndarray:
            try:
                r = _residuals(model.experiment(x), sub)
            except GeometryError:
                return np.full(len(sub.g), 1e6)
            return np.where(np.isfinite(r), r, 1e6)

        fit = least_squares(fun, x_start, model.steps, max_iter=params.max_cycles)
        # reject whole reflections whose worst part is an outlier
        worst = np.zeros(sub.n_groups)
        np.maximum.at(worst, sub.gid, np.abs(fit.residuals))
        bad = robust_outliers(worst, params.reject_sigma, 1.0)
        if not bad.any():
            break
        idx = np.nonzero(active)[0]
        active[idx[bad]] = False
        if active.sum() < need:
            raise RefinementError(
                f"only {int(active.sum())} reflections left after outlier rejection in "
                "post-refinement: the partials do not agree with the model"
            )
    rot_first = np.zeros(0)
    if "BLOCKSIZE" in model.other and _block_negligible(model.experiment(fit.x), sub):
        # the block term went to a width that changes no rocking width by 1 %: in the quadrature
        # sum its derivative is then of second order and the parameter only wanders (cell
        # 3 esd off on data without blocks); it is fixed at 0 for the final fit
        exp_f = model.experiment(fit.x)
        rot_first = np.asarray(fit.x[: len(model.rot)])
        exp_f = exp_f.replace(crystal=exp_f.crystal.replace(domain_width=0.0))
        p_fix = dataclasses.replace(params, fix=frozenset(params.fix) | {"BLOCKSIZE"})
        model = _Model(exp_f, p_fix, phi_ref, span)
        fit = dataclasses.replace(fit, x=model.x0)
    # the model error of the rocking curve, estimated from the misfit beyond counting noise,
    # replaces the starting floor; one more fit with the calibrated weights
    sub = _trim(model.experiment(fit.x), data.subset(active))
    f, sc, *_ = _model_shares(model.experiment(fit.x), sub)
    excess = np.mean((sub.g - sc[sub.gid] * f) ** 2 - sub.sc**2)
    floor = float(np.clip(np.sqrt(max(excess, 0.0)), 0.01 * MODEL_FLOOR, 5.0 * MODEL_FLOOR))
    data = _Data(data.hkl, data.phi_mid, data.lo, data.hi, data.gid, data.a, data.b, data.g,
                 data.sc, data.image, floor)
    sub = _trim(model.experiment(fit.x), data.subset(active))

    def fun2(x: np.ndarray, sub=sub) -> np.ndarray:
        try:
            r = _residuals(model.experiment(x), sub)
        except GeometryError:
            return np.full(len(sub.g), 1e6)
        return np.where(np.isfinite(r), r, 1e6)

    fit = least_squares(fun2, fit.x, model.steps, max_iter=params.max_cycles)
    exp = model.experiment(fit.x)
    f, sc, *_ = _model_shares(exp, sub)
    rms_frac = float(np.sqrt(np.mean((sub.g - sc[sub.gid] * f) ** 2)))
    # the issue-8 criterion: reflections whose whole rocking curve lies on the measured images,
    # observed share of each part against its FRACTIONCALC (no scale)
    fall = _model_shares(exp, data.subset(active))
    dd = data.subset(active)
    covered = np.bincount(dd.gid, fall[0], dd.n_groups) >= 0.98
    on = covered[dd.gid] & ((fall[0] > 0.002) | (dd.g > 2.0 * dd.sc))
    rms_complete = float(np.sqrt(np.mean((dd.g - fall[0])[on] ** 2))) if on.any() else np.nan
    eps, edge = _phi_residuals(exp, sub)
    # robust rms (1.4826·median |ε|): the φ equivalent of a share misfit is unbounded where the
    # share hardly changes with φ_c, so a plain rms is dominated by a few such parts
    rms = float(1.4826 * np.median(np.abs(eps[edge]))) if edge.any() else 0.0
    cr = exp.crystal
    # a fixed cell must come back unchanged (a constraint that rewrote a fixed monoclinic β to
    # 90° once let post-refinement fit missets and mosaic to a wrong cell)
    if not model.cons.free and not np.allclose(cr.cell, cr0.cell, rtol=0.0, atol=1e-3):
        raise RefinementError(
            f"post-refinement changed the fixed cell {tuple(round(c, 3) for c in cr0.cell)} to "
            f"{tuple(round(c, 3) for c in cr.cell)} (a cell-constraint error): result not used"
        )
    if not (cr.mosaic < 20.0 and cr.domain_width < 0.2 and rms_frac < 0.3):
        raise RefinementError(
            f"post-refinement diverged (mosaic spread {cr.mosaic:.3g} deg, block width "
            f"{cr.domain_width:.3g} /A, rms fraction misfit {rms_frac:.2f}): the orientation or "
            "cell is too far off for the partials to constrain the rocking width"
        )
    values: dict[str, float] = {}
    esds: dict[str, float] = {}
    esd_of = dict(zip(model.names, _cluster_esds(fun2, fit, model.steps, sub)))
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
    values["BLOCKSIZE"] = cr.domain_width
    esds["BLOCKSIZE"] = float(esd_of.get("BLOCKSIZE", 0.0)) * DOMAIN_SCALE
    values["DIVERGENCE"] = exp.beam.mean_divergence
    esds["DIVERGENCE"] = float(esd_of.get("DIVERGENCE", 0.0))
    old = {**dict(zip(("PHIX", "PHIY", "PHIZ"), cr0.missets)), **dict(zip(CELL_NAMES, cr0.cell)),
           "MOSAIC": cr0.mosaic, "BLOCKSIZE": cr0.domain_width,
           "DIVERGENCE": experiment.beam.mean_divergence}
    shifts = {k: values[k] - old[k] for k in values}
    rot_x = np.asarray(fit.x[: len(model.rot)])
    if len(rot_first) == len(rot_x):
        rot_x = rot_x + rot_first
    rot_shift = np.abs(rot_x) if model.rot else np.zeros(0)
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
    for im in np.unique(sub.image):
        on = (sub.image == im) & edge
        e = eps[on]
        per_image[int(im)] = (float(1.4826 * np.median(np.abs(e))) if len(e) else 0.0,
                              int(np.count_nonzero(sub.image == im)))
    return PostRefinement(
        experiment=exp, values=values, esds=esds, shifts=shifts, free=model.names,
        rms_resid=rms, wrms=fit.weighted_rms, n_used=len(sub.g),
        n_reflections=sub.n_groups, per_image=per_image, reprocess=reprocess,
        phi_ref=phi_ref, warnings=warnings, rms_fraction=rms_frac,
        rms_fraction_complete=rms_complete, n_complete=int(np.count_nonzero(covered)),
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
