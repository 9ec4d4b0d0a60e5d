"""What PROCESS jobs share: the image plan, the starting model, excluded shells, progress.

Used by the sweep integration (:mod:`mosflm_py.actions.integrate`) and the segment cell
refinement (:mod:`mosflm_py.actions.cellref`); the GO handler of PROCESS, which chooses between
them, is :mod:`mosflm_py.actions.process_run`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mosflm_py.actions.common import experiment_for_image
from mosflm_py.errors import IntegrationError
from mosflm_py.imageio.series import ImageSeries
from mosflm_py.processing.plan import ImagePlan, plan_images

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session

DEFAULT_MOSAIC = 0.2
ICE_SHELLS = ((3.93, 3.87), (3.70, 3.64), (3.47, 3.41), (2.69, 2.65), (2.27, 2.23),
              (2.09, 2.05), (1.97, 1.93), (1.93, 1.91), (1.89, 1.87), (1.73, 1.71))


@dataclass(frozen=True)
class SeriesSource:
    """Picklable frame reader for worker processes (re-opens the series in each worker)."""

    template: str
    directory: str
    hdf5: bool = False

    def __call__(self):
        if self.hdf5:
            series = ImageSeries.from_filename(self.template)
        else:
            series = ImageSeries.from_template(self.template, [self.directory])
        return series.frame


def series_source(series) -> SeriesSource:
    """The picklable frame reader of *series* for the worker processes."""
    if getattr(series, "hdf5_master", False):  # the master file itself, not the flag
        return SeriesSource(os.path.join(str(series.directory), series.template), "", True)
    return SeriesSource(series.template, str(series.directory))


def process_range(session: Session, job: Job) -> tuple[int, int, float | None, float | None,
                                                      int, int]:
    """(first, last, START, ANGLE, BLOCK, ADD) of a PROCESS record."""
    rec = job.record
    first = int(rec.get("first"))
    last = rec.get("last")
    last = first if last is None else int(last)
    start = rec.sub("START").get("phi") if rec.has("START") else None
    angle = rec.sub("ANGLE").get("dphi") if rec.has("ANGLE") else None
    block = int(rec.sub("BLOCK").get("n")) if rec.has("BLOCK") else session.state.integration.block
    add = int(rec.sub("ADD").get("offset")) if rec.has("ADD") else 0
    return first, last, start, angle, block, add


def image_plan(session: Session, first: int, last: int, start: float | None,
               angle: float | None, add: int) -> list[ImagePlan]:
    """The images of a PROCESS range with their φ (header or START/ANGLE)."""
    series = session.images()

    def phi_of(n: int) -> tuple[float, float]:
        g = session.geometry(n)
        return g.phi_start, g.phi_end

    plan = plan_images(first, last, series.numbers, phi_of, start, angle, add)
    if any(im.width <= 0 for im in plan):
        raise IntegrationError(
            f"PROCESS {first} {last}: the images have no oscillation (stills); integrate rotation "
            "images, or give the oscillation with PROCESS ... START phi ANGLE dphi"
        )
    return plan


def starting_experiment(session: Session, first: int):
    """The model to integrate with: crystal, mosaic (default with a warning), geometry."""
    exp = experiment_for_image(session, first)
    cr = exp.crystal
    if cr is None:
        raise IntegrationError(
            "No orientation matrix: index first (AUTOINDEX ... then GO) or give a MATRIX file."
        )
    if cr.mosaic <= 0:
        session.warn_once(("nomosaic",),
                          f"The mosaic spread has not been given or estimated; {DEFAULT_MOSAIC} "
                          "degrees will be used and refined.",
                          "Give MOSAIC or run MOSAIC ESTIMATE before PROCESS.")
        exp = exp.replace(crystal=cr.replace(mosaic=DEFAULT_MOSAIC))
    return exp


def exclude_shells(session: Session) -> tuple[tuple[float, float], ...]:
    """Resolution shells excluded by RESOLUTION EXCLUDE (and ICE)."""
    res = session.state.resolution
    shells = tuple(tuple(map(float, s)) for s in res.exclude)
    if res.exclude_ice:
        shells += ICE_SHELLS
    return shells  # type: ignore[return-value]


def progress(session: Session, done: float, total: int, t0: float) -> None:
    """Advance the progress bar (stderr, only on a terminal; see ``Report.progress``)."""
    session.report.progress(done, total, time.perf_counter() - t0)


_source = series_source  # the old private name

__all__ = ["SeriesSource", "exclude_shells", "image_plan", "process_range", "progress",
           "series_source", "starting_experiment"]
