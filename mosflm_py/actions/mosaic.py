"""MOSAIC ESTIMATE [image [PHI a TO b]] (queued, run by GO): MOSFLM's mosaicity estimate.

The image defaults to the first image used for autoindexing (else the first image of the
series).  The algorithm is :func:`mosflm_py.mosaic.estimate_mosaic` (algorithms.md §4): the
table of trial spreads with the number of reflections gained, the total intensity and its SD is
printed, then::

    The mosaicity has been estimated as ---> 0.66 <--- for this image only;
    This value can be used cautiously as an initial estimate.

The estimate becomes the current crystal's mosaic spread in the experiment model
(``session.results.crystal``, found by MOSAIC ESTIMATE: a MOSAIC keyword typed afterwards
overrides it; the user's settings are not changed) and the table is kept in
``session.results.mosaic``.  For a still image, or when no estimate can be made, the
current value is kept and the reason is printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.common import (
    current_crystal,
    experiment_for_image,
    resolution_limits,
    set_crystal,
)
from mosflm_py.actions.findspots import spots_for_images
from mosflm_py.actions.integrate import postref_params
from mosflm_py.errors import GeometryError, KeywordError, MosflmError
from mosflm_py.mosaic import MosaicParams, estimate_mosaic, rocking_width_from_partials
from mosflm_py.output.mosflm_log import mosaicity_estimated
from mosflm_py.refinement import MeasureParams, PartialObservations, make_measure_fn

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session

DEFAULT_RASTER = (13, 13, 9, 4, 4)
"""Box used when neither RASTER nor found spots give one (half 6, peak half 2 pixels)."""


def default_image(session: Session) -> int:
    """First autoindexing image, else the first image with spots found, else the first image."""
    idx = session.results.indexing
    for attr in ("images", "image_numbers"):
        imgs = getattr(idx, attr, None)
        if imgs is not None and len(imgs):
            return int(list(imgs)[0])
    if session.results.spots:
        return int(next(iter(session.results.spots)))
    return int(session.images().numbers[0])


def _raster(session: Session, n: int) -> tuple[int, int, int, int, int]:
    """RASTER given or derived; else from the spots on the image; else the default."""
    r = session.effective.integration.raster
    if r is not None:
        return tuple(int(v) for v in r)
    try:
        spots_for_images(session, [n], report=False)
    except MosflmError:
        return DEFAULT_RASTER
    r = session.effective.integration.raster
    return tuple(int(v) for v in r) if r is not None else DEFAULT_RASTER


def mosaic_params(session: Session, n: int, d_min: float, d_max: float | None) -> MosaicParams:
    """Box (from RASTER: half = (NXS-1)/2, peak half = half - NRX) and resolution limits."""
    nxs, nys, _nc, nrx, nry = _raster(session, n)
    hx, hy = (nxs - 1) // 2, (nys - 1) // 2
    px, py = max(1, hx - max(nrx, 1)), max(1, hy - max(nry, 1))
    px, py = min(px, hx - 1), min(py, hy - 1)
    return MosaicParams(half=(hx, hy), peak_half=(px, py), d_min=d_min, d_max=d_max)


def estimate(session: Session, job: Job) -> None:
    """GO handler of MOSAIC ESTIMATE (see the module docstring)."""
    rec = job.records[-1]
    sub = rec.sub("ESTIMATE")
    n = sub.get("image") if sub is not None else None
    n = default_image(session) if n is None else int(n)
    g = session.geometry(n)
    phi = (g.phi_start, g.phi_end)
    psub = sub.sub("PHI") if sub is not None else None
    if psub is not None:
        a, b = float(psub.get("start")), psub.get("end")
        if b is None:
            raise KeywordError("MOSAIC ESTIMATE ... PHI needs both angles: PHI <start> TO <end>")
        phi = (a, float(b))
    out = session.report
    out.line()
    out.line(f" Estimating the mosaic spread from image {n} (phi {phi[0]:.2f} to {phi[1]:.2f})")
    crystal = current_crystal(session, g.beam.wavelength)
    if crystal is None:
        raise GeometryError("MOSAIC ESTIMATE needs the crystal orientation: run AUTOINDEX first "
                            "or give the MATRIX keyword")
    current = crystal.mosaic if crystal.mosaic > 0 else None
    keep = f"{current:.2f}" if current is not None else "not set"
    if phi[1] - phi[0] <= 0:
        out.warning(f"Image {n} is a still (no oscillation): the mosaic spread cannot be "
                    f"estimated from it this way. The current value ({keep}) is kept.",
                    "Give MOSAIC <eta> or estimate it from a rotation image.")
        return
    experiment = experiment_for_image(session, n, crystal=crystal)
    d_min, d_max = resolution_limits(session, experiment)
    params = mosaic_params(session, n, d_min, d_max)
    frame = session.images().frame(n)
    if g.adcoffset:
        frame = np.asarray(frame, np.float64) - g.adcoffset
    result = estimate_mosaic(frame, experiment, phi[0], phi[1], params,
                             gain=g.gain if g.gain > 0 else 1.0, nullpix=g.nullpix)
    session.results.mosaic = result
    if result.rows:
        out.line(f" Reflections predicted for trial mosaic spreads in steps of "
                 f"{result.step:.2f} degrees and measured by summation")
        out.line(f" (box {2 * params.half[0] + 1} x {2 * params.half[1] + 1} pixels, peak "
                 f"{2 * params.peak_half[0] + 1} x {2 * params.peak_half[1] + 1}; "
                 f"{result.n_measured} reflections measured)")
        out.line()
        out.table(["Mosaic", "No predicted", "No gained", "Total intensity", "SD of intensity"],
                  [(r.eta, r.n_predicted, r.n_gained, r.total, r.sd) for r in result.rows],
                  [".2f", "d", "d", ".0f", ".0f"])
        out.line()
    for w in result.warnings:
        out.warning(w[0].upper() + w[1:] + ".")
    if result.eta is None:
        out.line(f" The mosaic spread could not be estimated; the current value ({keep}) "
                 "is kept.")
        return
    eta = float(result.eta)

    width = None if psub is not None else _rocking_width(session, n, crystal, eta, phi[1] - phi[0],
                                                           d_min, d_max)
    if width is not None:
        out.line(f" Plateau of the total intensity at {eta:.2f} deg; fitted to the partials on "
                 f"images {width[1][0]} to {width[1][-1]} ({width[0].n_reflections} "
                 f"reflections, rms observed - calculated fraction {width[0].rms_fraction:.3f}):")
        w = width[0]
        out.line(f"   mosaic spread {w.mosaic:.3f} +- {w.mosaic_esd:.3f} deg (full width), mosaic "
                 f"block width {w.domain_width:.5f} /A"
                 + (f" (block size about {1.0 / w.domain_width:.0f} A)"
                    if w.domain_width > 0 else ""))
        eta = float(w.mosaic)
    out.lines(mosaicity_estimated(eta))
    stored = eta
    if eta < 0.5 * result.step:
        stored = 0.5 * result.step
        out.line(f" A mosaic spread of {stored:.3f} degrees (half the trial step) will be used.")
    changes: dict = {"mosaic": float(stored)}
    if width is not None:
        changes["domain_width"] = float(width[0].domain_width)
    set_crystal(session, crystal.replace(**changes), "MOSAIC ESTIMATE",
                ("mosaic", "blocksize") if changes.get("domain_width", 0.0) > 0 else ("mosaic",))


MIN_FIT_WEDGE = 2.0
"""Smallest rotation (deg) whose partials MOSAIC ESTIMATE fits (see :func:`_rocking_width`)."""
MAX_FIT_IMAGES = 40
"""Most images MOSAIC ESTIMATE measures for the fit."""


def _rocking_width(session: Session, n: int, crystal, eta: float, osc: float, d_min: float,
                   d_max: float | None):
    """η and block width fitted to the partials on image ``n`` and the next few; None when that
    is not possible.

    The images must hold whole rocking curves of the plateau width (2η/osc + 1 images) and span
    at least :data:`MIN_FIT_WEDGE` degrees: η and the block width are told apart by how the
    width changes with resolution, which needs many reflections whose whole curve was
    measured; on weak, finely sliced images (0.05°) the ten images of 0.5° held ~60 such
    reflections and left η undetermined (0.01 ± 0.13°), 2° held ~190 (0.15 ± 0.02°).  At most
    :data:`MAX_FIT_IMAGES` images are measured."""
    numbers = [int(i) for i in session.images().numbers]
    if n not in numbers or osc <= 0:
        return None
    k = int(np.clip(max(np.ceil(2.0 * eta / osc) + 1, np.ceil(MIN_FIT_WEDGE / osc - 1e-9)), 3,
                    MAX_FIT_IMAGES))
    i0 = numbers.index(n)
    imgs = numbers[i0:i0 + k]
    if len(imgs) < 3:
        imgs = numbers[max(0, i0 - k + 1):i0 + 1]
    if len(imgs) < 3:
        return None

    def phi_of(m: int) -> tuple[float, float]:
        g = session.geometry(m)
        return g.phi_start, g.phi_end

    exp = experiment_for_image(session, imgs[0], crystal=crystal.replace(mosaic=max(eta, 0.05)))
    measure = make_measure_fn(session.images().frame, phi_of,
                              MeasureParams(d_min=d_min, d_max=d_max))
    obs = PartialObservations.concatenate([m.partials() for m in measure(exp, imgs)])
    try:
        w = rocking_width_from_partials(exp, obs, postref_params(session))
    except MosflmError as exc:
        session.report.line(f" (the rocking width could not be fitted to the partials: {exc})")
        return None
    # the fitted curve must not be wider than the plateau says (the plateau includes the block
    # term) and must describe the observed shares; otherwise keep MOSFLM's plateau value
    if not (w.mosaic <= max(eta, 0.05) * 1.5 and w.rms_fraction <= 0.15):
        session.report.line(f" (the fit to the partials gave {w.mosaic:.2f} deg with rms fraction "
                            f"misfit {w.rms_fraction:.3f}, inconsistent with the plateau: the "
                            "plateau value is used)")
        return None
    return w, imgs


__all__ = ["default_image", "estimate", "mosaic_params"]
