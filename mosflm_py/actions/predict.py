"""PREDICT_SPOTS [image] [IMAGE n] [PLOT [file.png]] (queued, run by GO).

Predicts the reflections on one image with the current crystal, mosaic, beam and detector and
classes them as iMosflm colours them (Battye et al. 2011, Acta Cryst. D67, 271-281):

* **too wide** - rocking width larger than MAXWIDTH degrees (green);
* **overlapped** - another prediction closer than SEPARATION in X *and* Y (red);
* **partial** - rocking curve not wholly inside the image's φ range (yellow);
* **full** - the rest (blue).

Each reflection gets one class, in that order of precedence.  With PLOT a PNG of the image is
written (default ``predict_<n>.png``) with the predictions, the spots found on the image, the
direct beam and resolution rings (:mod:`mosflm_py.output.picture`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.common import current_crystal, experiment_for_image, resolution_limits
from mosflm_py.actions.findspots import spots_for_images
from mosflm_py.errors import GeometryError, MosflmError
from mosflm_py.geometry.prediction import Predictions, fraction_on_image, predict
from mosflm_py.geometry.rocking_curve import equivalent_width
from mosflm_py.output.picture import PredictionClass, render_picture, write_picture
from mosflm_py.spotfinding.filters import separation_from_spot_size, too_close

if TYPE_CHECKING:
    from mosflm_py.geometry.detector import Detector
    from mosflm_py.session import Job, Session

DEFAULT_SPOT_SIZE_PX = 5.0
"""Spot size assumed for the default SEPARATION when no spots were found and none was given."""


@dataclass(frozen=True)
class ImagePrediction:
    """Predictions on one image with their class (:class:`PredictionClass`) and fraction."""

    image: int
    phi_start: float
    phi_end: float
    predictions: Predictions
    classes: np.ndarray
    fraction: np.ndarray
    separation: tuple[float, float]

    def count(self, cls: PredictionClass) -> int:
        """Number of predictions in class *cls*."""
        return int(np.count_nonzero(self.classes == int(cls)))


def classify_predictions(
    phi: np.ndarray, width: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray,
    phi_start: float, phi_end: float, separation: tuple[float, float], maxwidth_deg: float,
    ball: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Class and recorded fraction of predicted reflections on one image.

    Parameters
    ----------
    phi, width : ndarray
        Centre and full rocking width of each reflection (deg).
    x_mm, y_mm : ndarray
        Detector position (mm).
    phi_start, phi_end : float
        The image's rotation range (deg).
    separation : (float, float)
        SEPARATION in X and Y (mm): a pair closer in both is overlapped.
    maxwidth_deg : float
        Rocking widths above this (deg) are too wide.
    ball : ndarray, optional
        Uniform-ball part of each width (deg; the rest is the mosaic-block term).

    Returns
    -------
    (classes, fraction) : int ndarray of :class:`PredictionClass` codes and the fraction recorded
    on the image (``P(q) = 3q² − 2q³``, conventions.txt).
    """
    phi = np.asarray(phi, float)
    width = np.asarray(width, float)
    fraction = fraction_on_image(phi, width, phi_start, phi_end, ball)
    full = (phi - 0.5 * width >= phi_start - 1e-9) & (phi + 0.5 * width <= phi_end + 1e-9)
    cls = np.where(full, int(PredictionClass.FULL), int(PredictionClass.PARTIAL))
    close = too_close(np.asarray(x_mm, float), np.asarray(y_mm, float),
                      float(separation[0]), float(separation[1]))
    cls[close] = int(PredictionClass.OVERLAP)
    cls[equivalent_width(width, ball) > maxwidth_deg] = int(PredictionClass.TOO_WIDE)
    return cls.astype(np.int64), fraction


def _separation(session: Session, n: int, det: Detector) -> tuple[float, float]:
    sep = session.effective.integration.separation
    if sep is not None:
        return float(sep[0]), float(sep[1])
    spots = session.results.spots.get(n)
    if spots is not None and len(spots):
        return separation_from_spot_size(float(np.median(spots.size_x)),
                                         float(np.median(spots.size_y)), det.pixel_slow,
                                         det.pixel_fast)
    return separation_from_spot_size(DEFAULT_SPOT_SIZE_PX, DEFAULT_SPOT_SIZE_PX, det.pixel_slow,
                                     det.pixel_fast)


def predict_image(session: Session, n: int) -> ImagePrediction:
    """Predict and classify the reflections on image *n* (current crystal and settings)."""
    g = session.geometry(n)
    crystal = current_crystal(session, g.beam.wavelength)
    if crystal is None:
        raise GeometryError("PREDICT_SPOTS needs the crystal orientation: run AUTOINDEX first "
                            "or give the MATRIX keyword")
    experiment = experiment_for_image(session, n, crystal=crystal)
    d_min, d_max = resolution_limits(session, experiment)
    lo, hi = g.phi_start, g.phi_end
    if hi <= lo:  # a still: predict reflections within their rocking width of phi
        lo, hi = lo - 1e-4, lo + 1e-4
    pred = predict(experiment, lo, hi, d_min=d_min, d_max=d_max)
    sep = _separation(session, n, experiment.detector)
    cls, frac = classify_predictions(pred.phi, pred.width, pred.x_mm, pred.y_mm, lo, hi, sep,
                                     session.state.integration.maxwidth, pred.ball)
    return ImagePrediction(n, g.phi_start, g.phi_end, pred, cls, frac, sep)


def ring_resolutions(det: Detector, wavelength: float,
                     n_rings: int = 3) -> list[tuple[float, float]]:
    """(d in Å, radius in slow pixels) of resolution rings evenly spread to the detector edge.

    From the detector model (:meth:`Detector.resolution_of` along X from the beam, radius
    :meth:`Detector.radius_at_resolution`).  Returns [] with a two-theta swing (rings are not
    circles about the beam then).
    """
    if det.two_theta != 0.0:
        return []
    (xmax, ymax), bx, by = det.size_mm, det.beam_x, det.beam_y
    rmax = max(np.hypot(max(bx, xmax - bx), max(by, ymax - by)), 1e-3)
    rin = min(bx, xmax - bx, by, ymax - by)
    top = rin if rin > 0.2 * rmax else rmax
    out = []
    for k in range(1, n_rings + 1):
        r = top * k / n_rings * 0.95
        d = float(det.resolution_of(bx + r, by, wavelength)[0])
        d = round(d, 1) if d < 10 else round(d)
        out.append((float(d), det.radius_at_resolution(d, wavelength) / det.pixel_slow))
    return out


def plot_prediction(session: Session, ip: ImagePrediction, path: str) -> tuple[int, int]:
    """Write the PNG of image ``ip.image`` with predictions, spots, beam and rings."""
    n = ip.image
    g = session.geometry(n)
    frame = session.images().frame(n)
    spots = session.results.spots.get(n)
    if spots is None:
        try:
            spots = spots_for_images(session, [n], report=False)[n]
        except MosflmError:
            spots = None
    rings = ring_resolutions(g.detector, g.beam.wavelength)
    beam = g.detector.beam_hit_mm()
    p = ip.predictions
    image = render_picture(
        frame,
        spots_px=np.column_stack([spots.x_px, spots.y_px]) if spots is not None and len(spots)
        else None,
        predictions_px=np.column_stack([p.x_px, p.y_px]),
        prediction_class=ip.classes,
        beam_px=g.detector.mm_to_px(*beam) if beam is not None else None,
        ring_radii_px=[r for _, r in rings],
        ring_labels=[f"{d:.1f} Å" if d < 10 else f"{d:.0f} Å" for d, _ in rings],
        title=f"image {n}  phi {g.phi_start:.2f}-{g.phi_end:.2f}  {len(p)} predicted",
    )
    return write_picture(path, image)


def _image_number(session: Session, job: Job) -> int:
    n = None
    for rec in job.records:
        if rec.get("image") is not None:
            n = int(rec.get("image"))
        sub = rec.sub("IMAGE")
        if sub is not None:
            n = int(sub.get("n"))
    if n is None:
        n = session.state.images.image
    if n is None:
        n = int(session.images().numbers[0])
    return int(n)


def run(session: Session, job: Job) -> None:
    """GO handler of PREDICT_SPOTS (see the module docstring)."""
    n = _image_number(session, job)
    ip = predict_image(session, n)
    session.results.predictions = ip
    out = session.report
    g = session.geometry(n)
    cr = current_crystal(session, g.beam.wavelength)
    out.line()
    out.line(f" Predictions for image {n} (phi {ip.phi_start:.2f} to {ip.phi_end:.2f} degrees), "
             f"mosaic spread {cr.mosaic:.2f} degrees")
    out.line(f" {len(ip.predictions)} reflections predicted:")
    out.line(f" {ip.count(PredictionClass.FULL):8d} fully recorded")
    out.line(f" {ip.count(PredictionClass.PARTIAL):8d} partials")
    out.line(f" {ip.count(PredictionClass.OVERLAP):8d} spatially overlapped")
    out.line(f" {ip.count(PredictionClass.TOO_WIDE):8d} too wide in phi")
    out.line(f" (overlap: closer than SEPARATION {ip.separation[0]:.2f} {ip.separation[1]:.2f} mm;"
             f" too wide: rocking width more than MAXWIDTH "
             f"{session.state.integration.maxwidth:g} degrees)")
    plot = None
    for rec in job.records:
        sub = rec.sub("PLOT")
        if sub is not None:
            plot = sub.get("file") or f"predict_{n}.png"
    if plot is not None:
        w, h = plot_prediction(session, ip, plot)
        out.line(f" Picture of image {n} with the predictions written to {plot} ({w} x {h} "
                 "pixels)")
        out.line(" Colours: blue full, yellow partial, red overlapped, green too wide,")
        out.line("          magenta crosses found spots, orange the direct beam")


__all__ = ["ImagePrediction", "classify_predictions", "plot_prediction", "predict_image",
           "ring_resolutions", "run"]
