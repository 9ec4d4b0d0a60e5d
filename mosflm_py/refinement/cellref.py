"""The cell-refinement procedure (POSTREF SEGMENT, as iMosflm runs it).

Each cycle: measure (integrate) every image of the segments with the current model, refine the
detector (and the crystal rotation about the beam, PSIX) per image by positional refinement, fold
the per-image PSIX into the crystal orientation, then post-refine missets, cell and mosaic over
all images together.  Repeat while any cell parameter shifts by more than SHIFTFAC σ (at most
``max_cycles``, 5).  Automatic segments: two blocks ~90° apart (three for monoclinic, four for
triclinic), each of 2·(mosaic/oscillation + 1) images (Powell, iMosflm tutorial §8.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import MosflmError, RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.refinement.cell_params import CELL_NAMES, crystal_system
from mosflm_py.refinement.measure import ImageMeasurements
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.params import PostrefParams, RefinementParams
from mosflm_py.refinement.positional import DetectorRefinement, refine_detector
from mosflm_py.refinement.postref import PostRefinement, postrefine
from mosflm_py.refinement.tables import detector_row, postref_row

MeasureFn = Callable[[Experiment, Sequence[int]], list[ImageMeasurements]]


@dataclass(frozen=True, eq=False)
class CellRefinementResult:
    """Outcome of :func:`refine_cell_segments`.

    experiment : final model (refined crystal; detector = mean of the last cycle's per-image
        detectors).  initial_cell, final_cell, cell_esds : (a, b, c, α, β, γ).
    mosaic, mosaic_esd : refined η (°, without safety factor).
    cycles : number of cycles run; converged : last cell shifts < SHIFTFAC σ.
    detector_rows, postref_rows : per image and cycle (dicts, see :mod:`tables`).
    cycle_rows : per cycle summary (cycle, rms, distance spread, yscale spread, max shift/σ).
    postref : the last :class:`PostRefinement`.  warnings : messages with advice.
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

    Returns
    -------
    CellRefinementResult

    Raises
    ------
    RefinementError
        When no image could be refined or post-refinement fails in the first cycle.
    """
    rp = refine_params or RefinementParams(raise_on_residual=False)
    pp = postref_params or PostrefParams()
    if experiment.crystal is None:
        raise RefinementError("cell refinement needs a crystal orientation (index first)")
    segs = [list(s) for s in segments if len(s)]
    if not segs:
        raise RefinementError("no images given for cell refinement")
    images = [i for s in segs for i in s]
    seg_of = {i: k for k, s in enumerate(segs) for i in s}
    warnings: list[str] = []
    exp = experiment
    dets = {i: experiment.detector for i in images}
    initial_cell = experiment.crystal.cell
    det_rows: list[dict] = []
    pr_rows: list[dict] = []
    cyc_rows: list[dict] = []
    pr: PostRefinement | None = None
    converged = False
    cycle = 0
    d_best = np.inf
    for cycle in range(1, max_cycles + 1):
        parts = []
        psix: dict[int, tuple[float, float]] = {}
        new_dets = {}
        rms_all = []
        for i in images:
            e_i = exp.replace(detector=dets[i])
            m = measure_fn(e_i, [i])[0]
            good = m.valid & (m.intensity > pp.sdfac * m.sigma)
            if good.any():
                d_best = min(d_best, float(np.min(m.d[good])))
            phi_ref = 0.5 * (m.phi_start + m.phi_end)
            try:
                dr = _positional(e_i, m, rp, phi_ref)
            except MosflmError as exc:
                warnings.append(f"Cycle {cycle} image {i}: positional refinement failed: {exc}")
                new_dets[i] = dets[i]
            else:
                warnings.extend(f"Cycle {cycle} image {i}: {w}" for w in dr.warnings)
                new_dets[i] = dr.experiment.detector
                if "PSIX" in dr.values:
                    psix[i] = (phi_ref, dr.values["PSIX"])
                rms_all.append(dr.rms)
                det_rows.append(detector_row(cycle, i, dr, experiment.detector))
            parts.append(m.partials())
        dets = new_dets
        exp = _fold_psix(exp, psix)
        obs = PartialObservations.concatenate(parts)
        try:
            pr = postrefine(exp, obs, pp)
        except RefinementError as exc:
            if pr is None:
                raise RefinementError(f"cell refinement failed in cycle {cycle}: {exc}") from exc
            warnings.append(f"Cycle {cycle}: post-refinement failed ({exc}); keeping cycle "
                            f"{cycle - 1} result")
            break
        warnings.extend(pr.warnings)
        exp = pr.experiment
        for i in images:
            pr_rows.append(postref_row(cycle, i, pr))
        shifts = [abs(pr.shifts[n]) / pr.esds[n] for n in CELL_NAMES if pr.esds[n] > 0]
        max_sig = max(shifts) if shifts else 0.0
        dist = np.array([dets[i].distance for i in images])
        ysc = np.array([dets[i].yscale for i in images])
        cyc_rows.append({"cycle": cycle, "rms_mm": float(np.mean(rms_all)) if rms_all else np.nan,
                         "dist_spread": float(np.ptp(dist)), "yscale_spread": float(np.ptp(ysc)),
                         "postref_rms_deg": pr.rms_resid, "max_shift_sds": max_sig})
        if max_sig <= pp.shiftfac:
            converged = True
            break
    exp = exp.replace(detector=_mean_detector([dets[i] for i in images]))
    warnings.extend(_advice(segs, seg_of, dets, d_best, pr, exp, converged, cycle))
    return CellRefinementResult(
        experiment=exp, initial_cell=initial_cell, final_cell=exp.crystal.cell,
        cell_esds=tuple(pr.esds[n] for n in CELL_NAMES), mosaic=exp.crystal.mosaic,
        mosaic_esd=pr.esds["MOSAIC"], cycles=cycle, converged=converged, detector_rows=det_rows,
        postref_rows=pr_rows, cycle_rows=cyc_rows, postref=pr, warnings=warnings,
    )


def _advice(segs, seg_of, dets, d_best, pr, exp, converged, cycle) -> list[str]:
    out = []
    if d_best > 3.5:
        out.append(
            f"The data used for cell refinement only extend to {d_best:.2f} A: cell refinement "
            "can be unstable if the data do not extend to at least 3.5 A; if the cell looks "
            "wrong, use the cell from autoindexing several images well spaced in phi instead"
        )
    if pr is not None and pr.n_used < 50:
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
