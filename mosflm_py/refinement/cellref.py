"""The cell-refinement procedure (POSTREF SEGMENT, as iMosflm runs it).

Each cycle: measure (integrate) every image of the segments with the current model, refine the
detector (and the crystal rotation about the beam, PSIX) per image by positional refinement, fold
the per-image PSIX into the crystal orientation, then post-refine missets, cell and mosaic over
all images together.  Repeat while any cell parameter shifts by more than SHIFTFAC σ (at most
``max_cycles``, 5).  Automatic segments: two blocks ~90° apart (three for monoclinic, four for
triclinic), each of 2·(mosaic/oscillation + 1) images (Powell, iMosflm tutorial §8.1).

When the segments hold too few complete partials for post-refinement (small cells, fine
slicing, short wedges: e.g. a small molecule on 15 × 0.1° images has ~13 reflections per image),
each cycle instead refines the cell, orientation, distance and beam together by global positional
refinement against the X, Y and φ centroids of all spots on the segment images
(:mod:`mosflm_py.refinement.global_positional`); the mosaic spread then comes from the φ widths
of the spots (:func:`mosflm_py.refinement.spots3d.mosaic_from_spots`).  The φ centroids depend on
|d*|·λ but not on the distance, which separates the cell scale from the distance.

Post-refinement takes the cell from the observed shares of partials and so rests on the
rocking-curve model as well as on the geometry.  Once it has converged its cell is checked
against the spot positions of the same images (:func:`_positions_reject_cell`, an F test of the
fit with the cell held against the fit with the cell free, the distance free in both): rejected,
the cell is refined by global positional refinement from the next cycle on (on nanoBragg data of
a small-molecule crystal whose small mosaic blocks give wide, tailed rocking curves the
post-refined cell was 0.2-0.4 % short, the positions give it within 0.02 %); accepted, the
orientation and detector of the result are those fitted to the spot positions with the
post-refined cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import MosflmError, RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.refinement.cell_params import CELL_NAMES, crystal_system
from mosflm_py.refinement.global_positional import (
    GlobalRefinement,
    GlobalRefinementParams,
    refine_global,
    spot_predictions,
)
from mosflm_py.refinement.measure import ImageMeasurements
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import PostrefParams, RefinementParams
from mosflm_py.refinement.positional import DetectorRefinement, refine_detector
from mosflm_py.refinement.postref import PostRefinement, count_fractions, postrefine
from mosflm_py.refinement.spots3d import mosaic_from_spots, spots_from_measurements
from mosflm_py.refinement.tables import detector_row, global_detector_row, postref_row

MeasureFn = Callable[[Experiment, Sequence[int]], list[ImageMeasurements]]

MIN_SPOTS_PER_IMAGE = 20
"""Median strong spots per image below which the per-image positional refinement of the detector
(7 parameters) is not determined and the cell is refined globally instead."""


@dataclass(frozen=True, eq=False)
class CellRefinementResult:
    """Outcome of :func:`refine_cell_segments`.

    experiment : final model (refined crystal; detector = mean of the last cycle's per-image
        detectors).  initial_cell, final_cell, cell_esds : (a, b, c, α, β, γ).
    mosaic, mosaic_esd : refined η (°, without safety factor).
    cycles : number of cycles run; converged : last cell shifts < SHIFTFAC σ.
    detector_rows, postref_rows : per image and cycle (dicts, see :mod:`tables`).
    cycle_rows : per cycle summary (cycle, rms, distance spread, yscale spread, max shift/σ).
    postref : the last :class:`PostRefinement` (with global positional refinement: its crystal
    part, cell/missets esds from the global fit, mosaic from the spot widths, in the same form).
    warnings : messages with advice.  method : ``"post-refinement"`` or
    ``"global positional refinement"``.  global_refinement : the last :class:`GlobalRefinement`
    (None when it was not used).  profile_stats : ``{(cycle, image): (cog_shift_mm,
    background_residual)}`` of the average spot profile measured on the image (MOSFLM's
    ``C. of G. SHIFTS`` line, see :func:`mosflm_py.refinement.measure.average_profile_stats`).
    """

    experiment: Experiment
    initial_cell: tuple[float, ...]
    final_cell: tuple[float, ...]
    cell_esds: tuple[float, ...]
    mosaic: float
    mosaic_esd: float
    cycles: int
    converged: bool
    detector_rows: list[dict]
    postref_rows: list[dict]
    cycle_rows: list[dict]
    postref: PostRefinement
    warnings: list[str] = field(default_factory=list)
    method: str = "post-refinement"
    global_refinement: GlobalRefinement | None = None
    profile_stats: dict = field(default_factory=dict)


def auto_segments(
    image_numbers: Sequence[int],
    phi_of_image: Callable[[int], tuple[float, float]],
    mosaic: float,
    space_group: str = "P 1",
) -> list[list[int]]:
    """Images for cell refinement: segments ~90° apart of 2·(η/Δφ + 1) images each.

    Two segments (three for monoclinic, four for triclinic, ~45° apart then), chosen within the
    available images; fewer when the sweep is too short.
    """
    imgs = sorted(int(i) for i in image_numbers)
    if not imgs:
        raise RefinementError("no images available for cell refinement")
    a0, b0 = phi_of_image(imgs[0])
    osc = abs(b0 - a0)
    if osc <= 0:
        raise RefinementError("images have zero oscillation range: cannot refine the cell")
    nper = max(2, int(round(2.0 * (mosaic / osc + 1.0))))
    system = crystal_system(space_group)
    nseg = {"triclinic": 4, "monoclinic": 3}.get(system, 2)
    step = 45.0 if nseg > 2 else 90.0
    phis = np.array([phi_of_image(i)[0] for i in imgs])
    segments: list[list[int]] = []
    for k in range(nseg):
        target = phis[0] + k * step
        j = int(np.argmin(np.abs(phis - target)))
        j = min(j, max(len(imgs) - nper, 0))
        seg = imgs[j:j + nper]
        if segments and seg[0] <= segments[-1][-1]:
            break
        segments.append(seg)
    return segments


def _obs_phi(m: ImageMeasurements) -> np.ndarray:
    return m.phi_obs


def _positional(exp: Experiment, m: ImageMeasurements, rp: RefinementParams,
                phi_ref: float) -> DetectorRefinement:
    v = m.valid
    isig = np.where(m.sigma > 0, m.intensity / np.maximum(m.sigma, 1e-9), 0.0)
    return refine_detector(
        exp, m.hkl[v], m.x_obs[v], m.y_obs[v], _obs_phi(m)[v],
        np.column_stack([m.sigma_x[v], m.sigma_y[v]]), rp, isig=isig[v],
        fraction=m.fraction[v], phi_ref=phi_ref,
    )


def _fold_psix(exp: Experiment, psix: dict[int, tuple[float, float]]) -> Experiment:
    """Turn per-image rotations about the beam (PSIX at φ_i) into one crystal rotation.

    Solves A·ω = ψ for the datum-frame rotation vector ω (minimum norm), A_i = R(φ_i)ᵀ·x̂.
    """
    if not psix:
        return exp
    gon: Goniometer = exp.goniometer
    rows = np.array([gon.rotation(phi).T @ np.array([1.0, 0.0, 0.0]) for phi, _ in psix.values()])
    vals = np.array([v for _, v in psix.values()])
    omega = np.linalg.lstsq(rows, vals, rcond=1e-6)[0]
    cr = rotate_crystal(exp.crystal, *omega, phi_ref=0.0, goniometer=gon)
    return exp.replace(crystal=cr)


def _mean_detector(dets: list) -> object:
    d0 = dets[0]
    fields = ("distance", "beam_x", "beam_y", "tilt", "twist", "ccomega", "yscale")
    return d0.replace(**{f: float(np.mean([getattr(d, f) for d in dets])) for f in fields})


def refine_cell_segments(
    segments: Sequence[Sequence[int]],
    experiment: Experiment,
    measure_fn: MeasureFn,
    refine_params: RefinementParams | None = None,
    postref_params: PostrefParams | None = None,
    max_cycles: int = 5,
    method: str = "auto",
    global_params: GlobalRefinementParams | None = None,
    min_fractions: int = 50,
    global_detector: bool = False,
    search_mosaic: float = 1.0,
) -> CellRefinementResult:
    """Cell refinement from segments of images (POSTREF SEGMENT procedure).

    Parameters
    ----------
    segments : image numbers of each segment (contiguous images within a segment).
    experiment : starting model (crystal from indexing, its mosaic as the starting η).
    measure_fn : ``measure_fn(experiment, [image]) -> [ImageMeasurements]``, e.g.
        :func:`mosflm_py.refinement.measure.make_measure_fn`.
    refine_params : REFINEMENT parameters for the per-image positional refinement (PSIX free,
        CCOMEGA fixed by default).
    postref_params : POSTREF parameters (cell free under the symmetry by default here).
    max_cycles : cycles of integration and refinement (5).
    method : ``"postref"`` (per-image positional refinement + post-refinement of the partials),
        ``"global"`` (global positional refinement of cell, orientation, distance and beam against
        the X, Y, φ centroids of all spots, :func:`refine_global`; mosaic from the spot widths) or
        ``"auto"`` (post-refinement unless the first cycle gives fewer than ``min_fractions``
        usable observed fractions, then global; the warnings say so).
    global_params : :class:`GlobalRefinementParams` (cell FIX from ``postref_params`` is added).
    min_fractions : the "auto" switch point (observed fractions of complete partials).
    global_detector : with post-refinement, also refine one detector (distance, beam) and the
        orientation globally against all spot centroids each cycle, the cell held at the
        post-refined values (instead of averaging the per-image detectors).
    search_mosaic : with global refinement, reflections are measured over the φ range of a
        mosaic spread of at least this (°), so spots are found when the start model is off.

    Returns
    -------
    CellRefinementResult

    Raises
    ------
    RefinementError
        When no image could be refined or the refinement fails in the first cycle.
    """
    if method not in ("auto", "postref", "global"):
        raise RefinementError(f"unknown cell refinement method {method!r} "
                              "(auto, postref or global)")
    rp = refine_params or RefinementParams(raise_on_residual=False)
    pp = postref_params or PostrefParams()
    gp = global_params or GlobalRefinementParams()
    cell_fix = frozenset(n for n in pp.fix if n in CELL_NAMES)
    gp = gp.replace(fix=gp.fix | cell_fix)
    if experiment.crystal is None:
        raise RefinementError("cell refinement needs a crystal orientation (index first)")
    segs = [list(s) for s in segments if len(s)]
    if not segs:
        raise RefinementError("no images given for cell refinement")
    images = [i for s in segs for i in s]
    seg_of = {i: k for k, s in enumerate(segs) for i in s}
    st = _State(experiment, {i: experiment.detector for i in images})
    mode = method
    last = "postref"
    limit = max_cycles
    cycle = 0
    while cycle < limit:
        cycle += 1
        st.cycle = cycle
        meas = {i: measure_fn(st.exp.replace(detector=st.dets[i]), [i])[0] for i in images}
        for m in meas.values():
            good = m.valid & (m.intensity > pp.sdfac * m.sigma)
            if good.any():
                st.d_best = min(st.d_best, float(np.min(m.d[good])))
        obs = PartialObservations.concatenate([meas[i].partials() for i in images])
        if mode == "auto":
            # post-refinement needs partials over several images; its per-image positional
            # refinement of the detector needs enough strong spots on each image
            nfrac = count_fractions(obs, pp)
            nstrong = [int(np.count_nonzero(m.valid & (m.intensity > rp.min_isig * m.sigma)))
                       for m in meas.values()]
            few_spots = float(np.median(nstrong)) < MIN_SPOTS_PER_IMAGE
            mode = "global" if (nfrac < min_fractions or few_spots) else "postref"
            if mode == "global":
                why = (f"only {nfrac} observed fractions of partials measured on more than one "
                       f"image (fewer than {min_fractions})" if nfrac < min_fractions else
                       f"only {int(np.median(nstrong))} strong spots per image (fewer than "
                       f"{MIN_SPOTS_PER_IMAGE}) for the per-image refinement of the detector")
                st.warnings.append(
                    f"{why[0].upper()}{why[1:]}: post-refinement is not possible, so the cell, "
                    "orientation, distance and beam are refined by global positional refinement "
                    "against the X, Y and phi centroids of all spots on the images instead"
                )
        if mode == "global":
            # measure over a wider φ range: spots are found even where the starting model
            # predicts them a few tenths of a degree off (the rocking width is not used here)
            cr = st.exp.crystal
            wide = st.exp.replace(crystal=cr.replace(mosaic=max(cr.mosaic, search_mosaic)))
            meas = {i: measure_fn(wide.replace(detector=st.dets[i]), [i])[0] for i in images}
            ok = _global_cycle(st, meas, images, gp, pp, cycle)
            last = "global"
        else:
            try:
                ok = _postref_cycle(st, meas, images, obs, rp, pp, gp, cycle, global_detector)
                last = "postref"
            except RefinementError as exc:
                if method != "auto":
                    raise
                st.warnings.append(f"Cycle {cycle}: {exc}; the cell is refined by global "
                                   "positional refinement of the spot positions in this cycle")
                ok = _global_cycle(st, meas, images, gp, pp, cycle)
                last = "global"
        for i in images:
            st.profile_stats[(cycle, i)] = (meas[i].cog_shift_mm, meas[i].background_residual)
        if not ok:
            break
        postref_done = st.max_sig <= pp.shiftfac and not st.more
        if method == "auto" and last == "postref" and (postref_done or cycle == limit):
            why = _positions_reject_cell(st, meas, images, gp)
            if why:
                # the spot positions are the model-free measurement of the geometry; the
                # post-refined cell rests on the rocking-curve model as well
                mode = "global"
                st.converged = False
                # the per-image detectors were refined against the rejected crystal model, and
                # the post-refined missets rest on the same rocking-curve model as its cell:
                # start again from the orientation the cell refinement started from (the spot
                # positions fix the rotations they determine, not the one about the spindle)
                st.dets = {i: st.det0 for i in images}
                cr0 = experiment.crystal
                st.exp = st.exp.replace(crystal=st.exp.crystal.replace(U=cr0.U,
                                                                       missets=cr0.missets))
                st.warnings.append(
                    f"Cycle {cycle}: {why}: the cell, orientation, distance and beam are refined "
                    "by global positional refinement against the X, Y and phi centroids of all "
                    "spots from the next cycle on")
                limit = max(limit, cycle + 3)  # global refinement needs two cycles at least
                continue
        if st.max_sig <= pp.shiftfac and last == mode and not st.more:
            st.converged = True
            break
    exp = st.exp
    if last == "postref" and st.held is not None and not global_detector:
        # the spot positions accept the post-refined cell: the orientation and the detector
        # come from them (with that cell), free of the rocking-curve model
        exp = st.held.experiment
        st.glob = st.held
    elif last == "postref" and not global_detector:
        exp = exp.replace(detector=_mean_detector([st.dets[i] for i in images]))
    else:
        exp = exp.replace(detector=st.dets[images[0]])
    pr = st.pr
    st.warnings.extend(_advice(segs, seg_of, st.dets, st.d_best, pr, exp, st.converged,
                               st.cycle, last, st.glob))
    return CellRefinementResult(
        experiment=exp, initial_cell=experiment.crystal.cell, final_cell=exp.crystal.cell,
        cell_esds=tuple(pr.esds[n] for n in CELL_NAMES), mosaic=exp.crystal.mosaic,
        mosaic_esd=pr.esds["MOSAIC"], cycles=st.cycle, converged=st.converged,
        detector_rows=st.det_rows, postref_rows=st.pr_rows, cycle_rows=st.cyc_rows, postref=pr,
        warnings=st.warnings,
        method="global positional refinement" if last == "global" else "post-refinement",
        global_refinement=st.glob, profile_stats=st.profile_stats,
    )


class _State:
    """Mutable bookkeeping of the cycles of :func:`refine_cell_segments`."""

    def __init__(self, exp: Experiment, dets: dict):
        self.exp = exp
        self.det0 = exp.detector
        self.dets = dets
        self.warnings: list[str] = []
        self.det_rows: list[dict] = []
        self.profile_stats: dict = {}
        self.pr_rows: list[dict] = []
        self.cyc_rows: list[dict] = []
        self.pr: PostRefinement | None = None
        self.glob: GlobalRefinement | None = None
        self.postref: PostRefinement | None = None  # the last genuine post-refinement
        self.held: GlobalRefinement | None = None  # positions fit with the post-refined cell
        self.converged = False
        self.cycle = 0
        self.d_best = np.inf
        self.max_sig = np.inf
        self.more = False


def _postref_cycle(st: _State, meas: dict, images: list[int], obs: PartialObservations,
                   rp: RefinementParams, pp: PostrefParams, gp: GlobalRefinementParams,
                   cycle: int, global_detector: bool) -> bool:
    """Per-image positional refinement and post-refinement; False to stop (keep last result)."""
    psix: dict[int, tuple[float, float]] = {}
    new_dets = {}
    rms_all = []
    for i in images:
        e_i = st.exp.replace(detector=st.dets[i])
        m = meas[i]
        phi_ref = 0.5 * (m.phi_start + m.phi_end)
        try:
            dr = _positional(e_i, m, rp, phi_ref)
        except MosflmError as exc:
            st.warnings.append(f"Cycle {cycle} image {i}: positional refinement failed: {exc}")
            new_dets[i] = st.dets[i]
        else:
            st.warnings.extend(f"Cycle {cycle} image {i}: {w}" for w in dr.warnings)
            if dr.wrms > rp.residual:
                # as MOSFLM: a refinement whose weighted residual exceeds RESIDUAL is not used
                st.warnings.append(f"Cycle {cycle} image {i}: refined detector parameters not "
                                   "used (weighted residual above RESIDUAL)")
                new_dets[i] = st.dets[i]
                continue
            new_dets[i] = dr.experiment.detector
            if "PSIX" in dr.values:
                psix[i] = (phi_ref, dr.values["PSIX"])
            rms_all.append(dr.rms)
            st.det_rows.append(detector_row(cycle, i, dr, st.det0))
    st.dets = new_dets
    exp = _fold_psix(st.exp, psix)
    try:
        pr = postrefine(exp, obs, pp)
    except RefinementError as exc:
        if st.pr is None:
            raise RefinementError(f"cell refinement failed in cycle {cycle}: {exc}") from exc
        st.warnings.append(f"Cycle {cycle}: post-refinement failed ({exc}); keeping cycle "
                           f"{cycle - 1} result")
        return False
    st.warnings.extend(pr.warnings)
    st.exp, st.pr, st.postref = pr.experiment, pr, pr
    for i in images:
        st.pr_rows.append(postref_row(cycle, i, pr))
    shifts = [abs(pr.shifts[n]) / pr.esds[n] for n in CELL_NAMES if pr.esds[n] > 0]
    st.max_sig = max(shifts) if shifts else 0.0
    # the reflections are measured over the predicted rocking widths: while the width still
    # changes by more than 5 %, re-measure with it before calling the refinement converged
    mos = pr.values["MOSAIC"]
    st.more = "MOSAIC" in pr.free and abs(pr.shifts["MOSAIC"]) > 0.05 * max(mos, 1e-3)
    if global_detector:
        spots = spots_from_measurements([meas[i] for i in images], gp.min_isig)
        e0 = st.exp.replace(detector=_mean_detector([st.dets[i] for i in images]))
        try:
            g = refine_global(e0, spots, gp.replace(fix=gp.fix | frozenset(CELL_NAMES)))
        except RefinementError as exc:
            st.warnings.append(f"Cycle {cycle}: global refinement of the detector failed "
                               f"({exc}); per-image detectors kept")
        else:
            st.warnings.extend(g.warnings)
            st.glob = g
            st.exp = g.experiment
            st.dets = {i: g.experiment.detector for i in images}
    dist = np.array([st.dets[i].distance for i in images])
    ysc = np.array([st.dets[i].yscale for i in images])
    st.cyc_rows.append({"cycle": cycle,
                        "rms_mm": float(np.mean(rms_all)) if rms_all else np.nan,
                        "dist_spread": float(np.ptp(dist)), "yscale_spread": float(np.ptp(ysc)),
                        "postref_rms_deg": pr.rms_resid, "max_shift_sds": st.max_sig})
    return True


POSITIONS_REJECT_P = 5.7e-7
"""Significance (two-sided 5σ) at which the spot positions reject a post-refined cell."""


def _chi2(g: GlobalRefinement) -> tuple[float, int]:
    """χ² and degrees of freedom of a global positional refinement."""
    dof = max(2 * g.n_used + g.n_phi - len(g.free), 1)
    return g.wrms**2 * dof, dof


def _positions_reject_cell(st: _State, meas: dict, images: list[int],
                           gp: GlobalRefinementParams) -> str:
    """Do the spot positions contradict the post-refined cell?  A reason, or "" if not.

    Post-refinement takes the cell from the observed shares of partials, so it rests on the
    rocking-curve model; where the real rocking curves differ from it (crystals whose small
    mosaic blocks give wide, tailed curves, segments shorter than the curves) the cell is biased
    although the spots are predicted in the right places.  The spot positions of the same images
    measure the cell with no rocking-curve model (Kabsch 2010).  Orientation and detector are
    fitted to them twice, with the cell held at the post-refined values and with it free (the
    same reflections, distance free in both, so a pure change of scale that the distance absorbs
    is not counted against the cell), and the F test of the χ² decrease, scaled by the
    weighted residual of the free fit, rejects the post-refined cell at the
    :data:`POSITIONS_REJECT_P` level.  A cell the positions accept is still replaced when
    the positions (distance free, so that its uncertainty is in the cell esds) give every cell
    edge with a smaller esd than post-refinement.
    """
    from scipy.stats import f as f_dist

    spots = spots_from_measurements([meas[i] for i in images], gp.min_isig)
    e0 = st.exp.replace(detector=_mean_detector([st.dets[i] for i in images]))
    try:
        g = refine_global(e0, spots, gp, hold_distance=False)
        sub = spots.select(g.used)
        keep = gp.replace(reject_sigma=1.0e6)
        free = refine_global(e0, sub, keep, hold_distance=False)
        held = refine_global(e0, sub, keep.replace(fix=keep.fix | frozenset(CELL_NAMES)),
                             hold_distance=False)
    except RefinementError:
        return ""
    c_free, dof = _chi2(free)
    c_held, _ = _chi2(held)
    k = len(free.free) - len(held.free)
    if k <= 0 or c_free <= 0:
        return ""
    fstat = max(c_held - c_free, 0.0) / k / (c_free / dof)
    p = float(f_dist.sf(fstat, k, dof))
    cell0 = np.array(st.exp.crystal.cell)
    rel = 100.0 * (np.array(free.experiment.crystal.cell[:3]) - cell0[:3]) / cell0[:3]
    if p >= POSITIONS_REJECT_P:
        # consistent, but is it as precise?  Few partials on short segments (a small-molecule
        # cell on 2 x 3 images: c esd 0.09 %) can determine the cell less well than the spot
        # positions.  Their precision is that of the fit with the distance free: a fit with the
        # distance held at the header value has cell esds that leave out the distance's own
        # uncertainty (on a 2theta detector with no phi centroids they were 10x smaller than
        # the cell's actual error)
        edges = CELL_NAMES[:3]
        e_pr = np.array([st.pr.esds.get(n, 0.0) for n in edges]) if st.pr else np.zeros(3)
        e_pos = np.array([free.esds.get(n, 0.0) for n in edges])
        if not (np.all(e_pr > 0) and np.all(e_pos > 0) and np.all(e_pos < e_pr)):
            st.held = held
            return ""
        return ("the spot positions reject the post-refined cell as less precise (cell edge "
                "esds " + " ".join(f"{v:.4f}" for v in e_pos) + " A from the positions, "
                + " ".join(f"{v:.4f}" for v in e_pr) + " A from the partials; fitted to the "
                "positions the edges differ by " + " ".join(f"{v:+.3f}" for v in rel) + " %)")
    return ("the spot positions reject the post-refined cell (F = "
            f"{fstat:.1f} for {k} cell parameters, p = {p:.1e}; fitted to the positions the "
            "cell edges differ by " + " ".join(f"{v:+.3f}" for v in rel) + " %)")


def _global_cycle(st: _State, meas: dict, images: list[int], gp: GlobalRefinementParams,
                  pp: PostrefParams, cycle: int) -> bool:
    """Global positional refinement of cell, orientation and detector; False to stop."""
    spots = spots_from_measurements([meas[i] for i in images], gp.min_isig)
    e0 = st.exp.replace(detector=_mean_detector([st.dets[i] for i in images]))
    try:
        g = refine_global(e0, spots, gp)
    except RefinementError as exc:
        if st.glob is None:
            raise RefinementError(f"cell refinement failed in cycle {cycle}: {exc}") from exc
        st.warnings.append(f"Cycle {cycle}: global positional refinement failed ({exc}); "
                           f"keeping cycle {cycle - 1} result")
        return False
    st.warnings.extend(g.warnings)
    exp = g.experiment
    fix_mosaic = "MOSAIC" in pp.fix
    mosaic, mosaic_esd = exp.crystal.mosaic, 0.0
    if not fix_mosaic:
        try:
            mosaic, mosaic_esd, _ = mosaic_from_spots(exp, spots)
        except RefinementError as exc:
            st.warnings.append(f"Cycle {cycle}: mosaic spread kept at {mosaic:.3f} deg ({exc})")
        else:
            exp = exp.replace(crystal=exp.crystal.replace(mosaic=mosaic))
    prev = st.glob
    st.exp, st.glob = exp, g
    st.dets = {i: exp.detector for i in images}
    st.pr = _as_postref(g, exp, mosaic_esd, spots, images, meas, st.postref)
    # never converged after one cycle: re-measure with the refined model first
    st.more = prev is None
    if prev is None:
        shifts = [abs(g.shifts[n]) / g.esds[n] for n in CELL_NAMES if g.esds[n] > 0]
    else:
        shifts = [abs(g.values[n] - prev.values[n]) / g.esds[n] for n in CELL_NAMES
                  if g.esds[n] > 0]
    st.max_sig = max(shifts) if shifts else 0.0
    for i in images:
        st.pr_rows.append(postref_row(cycle, i, st.pr))
        st.det_rows.append(global_detector_row(cycle, i, g, spots, meas[i].phi_start,
                                               meas[i].phi_end, st.det0))
    st.cyc_rows.append({"cycle": cycle, "rms_mm": g.rms_xy, "dist_spread": 0.0,
                        "yscale_spread": 0.0, "postref_rms_deg": g.rms_phi,
                        "max_shift_sds": st.max_sig})
    return True


def _as_postref(g: GlobalRefinement, exp: Experiment, mosaic_esd: float, spots, images,
                meas, postref: PostRefinement | None = None) -> PostRefinement:
    """The crystal part of a global refinement in the form of a :class:`PostRefinement`.

    ``postref``: an earlier post-refinement of the same images (whose cell the spot positions
    rejected); its rocking-width results (mosaic esd, block size, rms of the observed fractions)
    are carried over when the mosaic spread is still its value.
    """
    values = {k: g.values[k] for k in ("PHIX", "PHIY", "PHIZ", *CELL_NAMES)}
    esds = {k: g.esds[k] for k in values}
    shifts = {k: g.shifts[k] for k in values}
    values["MOSAIC"], esds["MOSAIC"] = exp.crystal.mosaic, mosaic_esd
    values["DIVERGENCE"], esds["DIVERGENCE"] = exp.beam.mean_divergence, 0.0
    values["BLOCKSIZE"], esds["BLOCKSIZE"] = exp.crystal.domain_width, 0.0
    extra = {}
    if postref is not None and abs(postref.experiment.crystal.mosaic - exp.crystal.mosaic) < 1e-9:
        for k in ("MOSAIC", "BLOCKSIZE", "DIVERGENCE"):
            esds[k] = postref.esds[k]
        extra = {"rms_fraction": postref.rms_fraction,
                 "rms_fraction_complete": postref.rms_fraction_complete,
                 "n_complete": postref.n_complete}
    shifts["MOSAIC"] = shifts["DIVERGENCE"] = shifts["BLOCKSIZE"] = 0.0
    per_image = {}
    _, _, phic = spot_predictions(exp, spots)
    for i in images:
        m = meas[i]
        on = g.used & spots.complete & (spots.phi >= m.phi_start) & (spots.phi < m.phi_end)
        if on.any():
            per_image[i] = (float(np.sqrt(np.mean((spots.phi - phic)[on] ** 2))), int(on.sum()))
    return PostRefinement(
        experiment=exp, values=values, esds=esds, shifts=shifts,
        free=tuple(n for n in g.free if n in values), rms_resid=g.rms_phi, wrms=g.wrms,
        n_used=g.n_used, n_reflections=g.n_used, per_image=per_image, reprocess=False,
        phi_ref=g.phi_ref, warnings=[], **extra,
    )


def _advice(segs, seg_of, dets, d_best, pr, exp, converged, cycle, mode, glob) -> list[str]:
    out = []
    if d_best > 3.5:
        out.append(
            f"The data used for cell refinement only extend to {d_best:.2f} A: cell refinement "
            "can be unstable if the data do not extend to at least 3.5 A; if the cell looks "
            "wrong, use the cell from autoindexing several images well spaced in phi instead"
        )
    if mode == "global" and glob is not None:
        if glob.n_used < 30:
            out.append(
                f"The cell was refined from only {glob.n_used} spots ({glob.n_phi} with complete "
                "rocking curves): check the esds; more images give a more reliable cell"
            )
        big = [n for n, c in glob.correlation.items() if abs(c) > 0.95]
        if big:
            out.append(
                "The cell is strongly correlated with the detector distance (correlation "
                + ", ".join(f"{n} {glob.correlation[n]:.2f}" for n in big)
                + "): fix the distance (REFINEMENT FIX DISTANCE) if it is known accurately"
            )
    elif pr is not None and pr.n_used < 50:
        out.append(
            f"Only {pr.n_used} partially recorded reflections were used in post-refinement: the "
            "data are weak; use more images per segment or more segments"
        )
    if not converged:
        out.append(f"Cell refinement did not converge in {cycle} cycles (cell shifts still larger "
                   "than SHIFTFAC sds)")
    if len(segs) > 1:
        dist = [np.mean([dets[i].distance for i in s]) for s in segs]
        ysc = [np.mean([dets[i].yscale for i in s]) for s in segs]
        if np.ptp(dist) > max(0.001 * np.mean(dist), 0.1):
            out.append(
                f"The refined detector distance differs between segments ({np.ptp(dist):.2f} mm):"
                " the cell may be wrong or the refinement unstable; check the cell and fix the "
                "distance (REFINEMENT FIX DISTANCE) if it is known"
            )
        if np.ptp(ysc) > 0.0004:
            out.append(
                f"YSCALE differs between segments by {np.ptp(ysc):.4f}: it compensates for a cell "
                "error; it should be within 0.0004 of 1 for all images"
            )
    return out
