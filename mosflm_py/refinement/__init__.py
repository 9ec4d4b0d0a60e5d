"""Refinement: per-image positional refinement of the detector, post-refinement of the crystal
and the segment cell-refinement procedure (MOSFLM REFINEMENT / POSTREF).

Public API
----------
- :func:`refine_detector` → :class:`DetectorRefinement` (positional refinement of one image);
- :func:`postrefine` → :class:`PostRefinement` (missets, cell, mosaic from partials);
- :func:`refine_cell_segments` → :class:`CellRefinementResult` (POSTREF SEGMENT procedure);
- :func:`refine_global` → :class:`GlobalRefinement` (cell, orientation, distance and beam
  against the X, Y, φ centroids of all spots; used by the cell refinement when there are too few
  partials) with :func:`spots_from_measurements` and :func:`mosaic_from_spots`;
- :func:`auto_segments` (images for cell refinement);
- :func:`summation_measure` / :func:`make_measure_fn` (simple summation measurement);
- :class:`RefinementParams`, :class:`PostrefParams`, :class:`PartialObservations`.
"""

from __future__ import annotations

from mosflm_py.refinement.cellref import CellRefinementResult, auto_segments, refine_cell_segments
from mosflm_py.refinement.global_positional import (
    GlobalRefinement,
    GlobalRefinementParams,
    refine_global,
)
from mosflm_py.refinement.measure import (
    ImageMeasurements,
    MeasureParams,
    box_for_raster,
    make_measure_fn,
    summation_measure,
)
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.params import PostrefParams, RefinementParams
from mosflm_py.refinement.positional import DetectorRefinement, refine_detector
from mosflm_py.refinement.postref import PostRefinement, postrefine, smooth_mosaic
from mosflm_py.refinement.spots3d import (
    SpotObservations,
    mosaic_from_spots,
    spots_from_measurements,
)

__all__ = [
    "CellRefinementResult",
    "GlobalRefinement",
    "GlobalRefinementParams",
    "SpotObservations",
    "mosaic_from_spots",
    "refine_global",
    "spots_from_measurements",
    "ImageMeasurements",
    "box_for_raster",
    "MeasureParams",
    "auto_segments",
    "make_measure_fn",
    "refine_cell_segments",
    "summation_measure",
    "DetectorRefinement",
    "PartialObservations",
    "PostRefinement",
    "PostrefParams",
    "RefinementParams",
    "postrefine",
    "refine_detector",
    "smooth_mosaic",
]
