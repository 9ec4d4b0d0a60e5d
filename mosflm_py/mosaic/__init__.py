"""Mosaic-spread estimation from one image (MOSFLM's MOSAIC ESTIMATE), pure functions.

Public API::

    estimate_mosaic(frame, experiment, phi_start, phi_end, params=MosaicParams())
        -> MosaicEstimate (table rows + estimate + warnings)
    box_summation(frame, x_px, y_px, half, peak_half, gain=1.0, nullpix=None) -> (I, var, ok)
"""

from __future__ import annotations

from mosflm_py.mosaic.estimate import (
    MosaicEstimate,
    MosaicParams,
    MosaicRow,
    estimate_mosaic,
    plateau_index,
)
from mosflm_py.mosaic.summation import box_summation

__all__ = ["MosaicEstimate", "MosaicParams", "MosaicRow", "box_summation", "estimate_mosaic",
           "plateau_index"]
