"""One block of images: per-image refinement, standard profiles, integration, records.

For each image of the block in turn (MOSFLM's order): measure the predicted reflections by
summation, refine the detector against the strong spots (positional refinement), post-refine the
missets and mosaic spread from the partials of the images seen so far in the block; then form the
standard profiles from the whole block and integrate every image with them (Leslie 1999, Acta
Cryst. D55, 1696–1702; Leslie 2006, Acta Cryst. D62, 48–57).

Every block starts from the same initial model, so results do not depend on how blocks are
distributed over worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import IntegrationError, MosflmError, TooFewReflections
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import predict, predict_positions
from mosflm_py.geometry.rocking_curve import equivalent_width
from mosflm_py.integration import (
    Reject,
    Targets,
    accumulate_profiles,
    integrate_image,
    lp_factors,
    part_centroid_phi,
)
from mosflm_py.output.mtz import MtzRecords
from mosflm_py.processing.fractions import ImageParts
from mosflm_py.processing.params import ProcessParams
from mosflm_py.processing.parts import spread_over_images
from mosflm_py.processing.plan import ImagePlan
from mosflm_py.processing.profile_stats import centre_of_gravity_mm
from mosflm_py.processing.records import ImageStats, image_records
from mosflm_py.refinement import (
    ImageMeasurements,
    MeasureParams,
    PartialObservations,
    postrefine,
    refine_detector,
    summation_measure,
)

FrameSource = Callable[[int], np.ndarray]
# Called once per image and stage, ``(image_number, stage)`` with stage "refined" (measured and
# positionally refined) or "integrated"; nothing here prints, the caller shows the progress.
ImageProgress = Callable[[int, str], None]


@dataclass(frozen=True)
class BlockJob:
    """A block to process: its images, the φ grid of the whole run, the starting model."""

    index: int
    images: tuple[ImagePlan, ...]
    starts: np.ndarray
    ends: np.ndarray
    first_index: int  # position of images[0] in starts/ends
    experiment: Experiment
    params: ProcessParams


@dataclass
class ImageRefinement:
    """Refined model and diagnostics of one image (for the log and the SUMMARY)."""

    number: int
    experiment: Experiment
    rms: float = float("nan")
    wrms: float = float("nan")
    n_refine: int = 0
    ccx: float = 0.0
    ccy: float = 0.0
    ccom: float = 0.0
    postref_resid: float = float("nan")
    postref_n: int = 0
    # False when positional refinement was tried and failed (not when there were too few
    # strong reflections to try: the detector parameters are then kept, with a warning)
    refined: bool = True
    pooled: tuple[int, int] | None = None  # images whose reflections were pooled (first, last)
    warnings: list[str] = field(default_factory=list)


@dataclass
class BlockResult:
    """What a block returns to the runner (small: records and statistics, no pixels)."""

    index: int
    records: list[MtzRecords]
    stats: list[ImageStats]
    refinement: list[ImageRefinement]
    profiles_report: list[dict]
    warnings: list[str]
    parts: list[ImageParts] = field(default_factory=list)


def _refine_images(job: BlockJob, frames: dict[int, np.ndarray],
                   on_image: ImageProgress | None = None) -> list[ImageRefinement]:
    """Per-image positional refinement, then post-refinement over the whole block.

    Each image is measured by summation with the current model and its detector refined against
    the strong spots (starting from the previous image's detector).  When one image has too few
    strong reflections (weak or finely sliced data), the measurements of its neighbours in the
    block are pooled, the parts of each reflection added into one observation, until there are
    enough (:func:`_positional`).  The partials of all images of the block are then post-refined
    together (missets and mosaic spread; the cell only if asked), so that every image of the
    block is predicted with the same crystal — the fractions of a reflection's parts then add up
    to one.
    """
    p = job.params
    exp = job.experiment
    out: list[ImageRefinement] = []
    obs: list[PartialObservations] = []
    mparams = MeasureParams(d_min=p.d_min, d_max=p.d_max)
    cache: dict[int, ImageMeasurements | None] = {}
    errors: dict[int, str] = {}

    def measure(k: int, model: Experiment) -> ImageMeasurements | None:
        if k not in cache:
            im = job.images[k]
            try:
                cache[k] = summation_measure(frames[im.number], im.number, im.phi_start,
                                             im.phi_end, model, mparams)
            except MosflmError as err:
                cache[k], errors[k] = None, str(err)
        return cache[k]

    for k, im in enumerate(job.images):
        ref = ImageRefinement(im.number, exp)
        if p.refine_detector or p.postref:
            meas = measure(k, exp)
            if meas is None:
                ref.warnings.append(f"image {im.number}: measurement for refinement failed: "
                                    f"{errors.get(k, '')}")
                ref.refined = not p.refine_detector
            if meas is not None and p.refine_detector:
                exp = _positional(exp, k, len(job.images), lambda j, e=exp: measure(j, e), p,
                                  ref)
                if ref.pooled is not None:
                    ref.pooled = (job.images[ref.pooled[0]].number,
                                  job.images[ref.pooled[1]].number)
            if meas is not None and p.postref:
                obs.append(meas.partials())
        ref.experiment = exp
        out.append(ref)
        if on_image is not None:
            on_image(im.number, "refined")
    if p.postref and len(obs) >= 2:
        mid = 0.5 * (job.images[0].phi_start + job.images[-1].phi_end)
        try:
            pr = postrefine(exp, PartialObservations.concatenate(obs), p.postrefinement,
                            phi_ref=mid)
        except MosflmError as err:
            out[-1].warnings.append(
                f"images {job.images[0].number}-{job.images[-1].number}: post-refinement "
                f"skipped ({err}); the missets and mosaic spread are kept")
        else:
            crystal = pr.experiment.crystal
            for ref in out:
                ref.experiment = ref.experiment.replace(crystal=crystal)
                rms, nr = pr.per_image.get(ref.number, (pr.rms_resid, 0))
                ref.postref_resid, ref.postref_n = rms, nr
            out[-1].warnings.extend(pr.warnings)
    return out


def pool_measurements(measurements: list[ImageMeasurements]) -> dict[str, np.ndarray]:
    """Add the parts of each reflection measured on consecutive images into one observation.

    Intensities and variances add; the position (mm) and φ (°) are the intensity-weighted means
    of the parts' (only parts with positive intensity weigh; a reflection with none takes the
    plain mean), their σ the weighted combination; the fraction is the sum of the parts'
    calculated fractions.  This is what MOSFLM does for finely sliced images when it adds
    partials over several images for refinement ("Reflections from up to N images will be
    used"), and the 3D centroid of DIALS and XDS.

    Returns
    -------
    dict of arrays: hkl, x, y, phi, sigma_x, sigma_y, intensity, sigma, fraction.
    """
    ms = [m for m in measurements if m is not None]
    if not ms:
        z = np.zeros(0)
        return {"hkl": np.zeros((0, 3), np.int32), "x": z, "y": z, "phi": z, "sigma_x": z,
                "sigma_y": z, "intensity": z, "sigma": z, "fraction": z}

    def cat(name: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(m, name))[m.valid] for m in ms])

    hkl = cat("hkl")
    phi = np.concatenate([m.phi_obs[m.valid] for m in ms])
    inten, sig, frac = cat("intensity"), cat("sigma"), cat("fraction")
    x, y, sx, sy = cat("x_obs"), cat("y_obs"), cat("sigma_x"), cat("sigma_y")
    if len(hkl) == 0:
        return pool_measurements([])
    keys, inv = np.unique(hkl, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    ng = len(keys)
    w = np.maximum(inten, 0.0)
    wsum = np.bincount(inv, w, ng)
    flat = wsum <= 0
    w = np.where(flat[inv], 1.0, w)
    wsum = np.bincount(inv, w, ng)

    def wmean(v: np.ndarray) -> np.ndarray:
        return np.bincount(inv, w * v, ng) / wsum

    return {
        "hkl": keys.astype(np.int32), "x": wmean(x), "y": wmean(y), "phi": wmean(phi),
        "sigma_x": np.sqrt(np.bincount(inv, (w * sx) ** 2, ng)) / wsum,
        "sigma_y": np.sqrt(np.bincount(inv, (w * sy) ** 2, ng)) / wsum,
        "intensity": np.bincount(inv, inten, ng),
        "sigma": np.sqrt(np.bincount(inv, sig**2, ng)),
        "fraction": np.bincount(inv, frac, ng),
    }


def _positional(exp: Experiment, k: int, n_images: int,
                measure: Callable[[int], ImageMeasurements | None], p: ProcessParams,
                ref: ImageRefinement) -> Experiment:
    """Positional refinement of image ``k`` of the block against its strong measured spots.

    When the image alone has too few strong reflections, or the refinement fails on them, the
    measurements of the images around it in the block are pooled (window growing one image on
    each side at a time, parts of a reflection added, :func:`pool_measurements`) until the
    refinement succeeds or the whole block has been used.
    """
    need = max(6, p.refinement.nref // 2)
    image = ref.number
    last_err = None
    n_strong = 0
    r = 0
    while True:
        lo, hi = max(0, k - r), min(n_images - 1, k + r)
        obs = pool_measurements([measure(j) for j in range(lo, hi + 1)])
        good = obs["intensity"] > p.min_isig_refine * obs["sigma"]
        n_strong = int(good.sum())
        if n_strong >= need:
            try:
                dr = refine_detector(
                    exp, obs["hkl"][good], obs["x"][good], obs["y"][good], obs["phi"][good],
                    np.column_stack([obs["sigma_x"][good], obs["sigma_y"][good]]), p.refinement,
                    isig=obs["intensity"][good] / obs["sigma"][good],
                    fraction=np.minimum(obs["fraction"][good], 1.0),
                )
            except TooFewReflections:
                pass  # not a failure: pool more images, else keep the detector with a warning
            except MosflmError as err:
                last_err = err
            else:
                ref.rms, ref.wrms, ref.n_refine = dr.rms, dr.wrms, dr.n_used
                ref.ccx, ref.ccy, ref.ccom = dr.ccx, dr.ccy, dr.ccom
                ref.warnings.extend(w for w in dr.warnings
                                    if "included in positional refinement" not in w)
                if hi > lo:
                    ref.pooled = (lo, hi)
                return dr.experiment
        if lo == 0 and hi == n_images - 1:
            break
        r += 1
    if last_err is not None:
        # refinement was tried and rejected: the prediction does not match the spots
        ref.refined = False
        ref.warnings.append(f"image {image}: positional refinement failed ({last_err}), also "
                            "with the reflections of the neighbouring images of the block; the "
                            "previous detector parameters are kept")
    else:
        ref.warnings.append(
            f"image {image}: only {n_strong} strong reflections even with the images of its "
            "block pooled, too few for positional refinement; detector parameters kept")
    return exp


def _predict_block(job: BlockJob, refinements: list[ImageRefinement]) -> list[tuple]:
    """Predictions on every image of the block (one closed-form solve for the whole block).

    Rotation angles, widths and fractions come from the crystal of the middle image (the block's
    post-refined crystal); detector positions from each image's own refined experiment.
    """
    p = job.params
    exp0 = refinements[len(refinements) // 2].experiment
    cr = exp0.crystal
    exp_pred = exp0.replace(crystal=cr.replace(mosaic=cr.mosaic * (1.0 + p.mosadd)))
    allp = predict(exp_pred, job.images[0].phi_start, job.images[-1].phi_end, d_min=p.d_min,
                   d_max=p.d_max)
    half = 0.5 * np.nan_to_num(allp.width, posinf=360.0)
    out = []
    for k, ref in enumerate(refinements):
        im = job.images[k]
        on = (allp.phi - half <= im.phi_end) & (allp.phi + half >= im.phi_start)
        out.append(_predict_image(job, k, ref.experiment, allp.select(on)))
    return out


def _predict_image(job: BlockJob, k: int, exp: Experiment, pred) -> tuple[Targets, dict]:
    """Predictions on image k of the block with fraction, parts and geometry for records."""
    p = job.params
    im = job.images[k]
    frac, npart, ipart = spread_over_images(pred.phi, pred.width, job.starts, job.ends,
                                            job.first_index + k, pred.ball)
    keep = frac >= 1e-3
    for lo, hi in p.exclude_shells:
        keep &= ~((pred.d >= min(lo, hi)) & (pred.d <= max(lo, hi)))
    # MAXWIDTH: degrees, against the rms-equivalent width (not the extent with its tails)
    too_wide = np.nan_to_num(equivalent_width(pred.width, pred.ball), posinf=360.0) > p.maxwidth
    keep &= ~too_wide
    sel = np.nonzero(keep)[0]
    # each part is predicted where the reflection is at the centroid of its recorded portion
    phi_part = part_centroid_phi(pred.phi[sel], pred.width[sel], im.phi_start, im.phi_end,
                                 ball=pred.ball[sel])
    x_mm, y_mm, ok = predict_positions(exp, pred.hkl[sel], phi_part)
    sx, sy = exp.detector.size_mm
    inside = ok & (x_mm >= 0) & (x_mm < sx) & (y_mm >= 0) & (y_mm < sy)
    # parts off the detector are not measured, but they are parts of their reflections: the
    # bookkeeping of FRACTIONCALC (FractionNormaliser) counts them as unwritten parts
    off = sel[~inside]
    off_image = {"hkl": pred.hkl[off], "fraction": frac[off], "phi": pred.phi[off],
                 "width": pred.width[off]}
    sel, x_mm, y_mm, phi_part = sel[inside], x_mm[inside], y_mm[inside], phi_part[inside]
    x_px, y_px = exp.detector.mm_to_px(x_mm, y_mm)
    ip = Targets.from_arrays(x_px, y_px, pred.hkl[sel], frac[sel])
    extra = {
        "phi": pred.phi[sel], "width": pred.width[sel], "s1": pred.s1[sel], "d": pred.d[sel],
        "npart": npart[sel], "ipart": ipart[sel], "n_too_wide": int(too_wide.sum()),
        "off_image": off_image,
    }
    return ip, extra


def _masked(frame: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Frame with pixels outside ``mask`` set to -1 (inactive), as NULLPIX pixels."""
    if mask is None:
        return frame
    if mask.shape != frame.shape:
        raise IntegrationError(f"mask shape {mask.shape} does not match the image {frame.shape}")
    out = frame.astype(np.int32 if frame.dtype.kind in "ui" else np.float32, copy=True)
    out[~mask] = -1
    return out


def _add_centres_of_gravity(report: list[dict], profiles, detector) -> None:
    """Add ``cog_mm`` (centre-of-gravity shift of each profile, mm) to the profile report."""
    for row in report:
        r = row["region"] - 1
        row["cog_mm"] = centre_of_gravity_mm(profiles.profiles[r], profiles.masks[r],
                                             profiles.rasters[r].offsets(), detector.pixel_slow,
                                             detector.pixel_fast)


def process_block(job: BlockJob, frame_source: FrameSource,
                  on_image: ImageProgress | None = None) -> BlockResult:
    """Refine, form profiles and integrate the images of one block (see module docstring).

    ``on_image(number, stage)`` is called after each image is refined (stage ``"refined"``) and
    after it is integrated (``"integrated"``), so a caller can show per-image progress.
    """
    p = job.params
    frames = {im.number: _masked(np.asarray(frame_source(im.number)), p.mask)
              for im in job.images}
    refinements = _refine_images(job, frames, on_image)
    preds = _predict_block(job, refinements)
    warnings: list[str] = []
    profiles = None
    report: list[dict] = []
    if p.integration.profile.enabled:
        try:
            profiles = accumulate_profiles(
                [(frames[im.number], ip) for im, (ip, _) in zip(job.images, preds)],
                p.integration, high_resolution=p.high_resolution,
            )
            report = profiles.report()
            _add_centres_of_gravity(report, profiles, job.experiment.detector)
            warnings.extend(getattr(profiles, "warnings", ()))
        except MosflmError as err:
            warnings.append(f"standard profiles for images {job.images[0].number}-"
                            f"{job.images[-1].number} could not be formed ({err}); "
                            "summation integration only")
    records, stats, parts = [], [], []
    for im, ref, (ip, extra) in zip(job.images, refinements, preds):
        res = integrate_image(frames[im.number], ip, p.integration, profiles)
        exp = ref.experiment
        _, _, lpm = lp_factors(extra["s1"], exp.beam.s0, exp.goniometer.axis, p.polarisation)
        rec, st = image_records(im, res, extra, lpm, p)
        records.append(rec)
        stats.append(st)
        off = extra["off_image"]
        parts.append(ImageParts(
            hkl=np.concatenate([res.hkl, off["hkl"]]).astype(res.hkl.dtype),
            fraction=np.concatenate([np.asarray(res.fraction, float), off["fraction"]]),
            phi=np.concatenate([extra["phi"], off["phi"]]),
            width=np.concatenate([extra["width"], off["width"]]),
            accepted=np.concatenate([res.accepted, np.zeros(len(off["hkl"]), bool)]),
            unmeasurable=np.concatenate([
                (res.reject & (Reject.NO_PEAK | Reject.NO_PROFILE)) != 0,
                np.ones(len(off["hkl"]), bool)])))
        if on_image is not None:
            on_image(im.number, "integrated")
    return BlockResult(job.index, records, stats, refinements, report, warnings, parts)
