"""Refinement: per-image positional refinement of the detector, post-refinement of the crystal
and the segment cell-refinement procedure (MOSFLM REFINEMENT / POSTREF).

Public API
----------
- :func:`refine_detector` → :class:`DetectorRefinement` (positional refinement of one image);
- :func:`postrefine` → :class:`PostRefinement` (missets, cell, mosaic from partials);
- :func:`refine_cell_segments` → :class:`CellRefinementResult` (POSTREF SEGMENT procedure);
- :func:`auto_segments` (images for cell refinement);
- :func:`summation_measure` / :func:`make_measure_fn` (simple summation measurement);
- :class:`RefinementParams`, :class:`PostrefParams`, :class:`PartialObservations`.
"""

from __future__ import annotations

from mosflm_py.refinement.cellref import CellRefinementResult, auto_segments, refine_cell_segments
from mosflm_py.refinement.measure import (
    ImageMeasurements,
    MeasureParams,
    make_measure_fn,
    summation_measure,
)
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.params import PostrefParams, RefinementParams
from mosflm_py.refinement.positional import DetectorRefinement, refine_detector
from mosflm_py.refinement.postref import PostRefinement, postrefine, smooth_mosaic

__all__ = [
    "CellRefinementResult",
    "ImageMeasurements",
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
