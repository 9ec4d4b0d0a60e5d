"""Mosaic-spread estimation from one image (MOSFLM's MOSAIC ESTIMATE), pure functions.

Public API::

    estimate_mosaic(frame, experiment, phi_start, phi_end, params=MosaicParams())
        -> MosaicEstimate (table rows + estimate + warnings)
    rocking_width_from_partials(experiment, observations, params=None)
        -> RockingWidth (η and mosaic-block width fitted to the partials on a few images)
    box_summation(frame, x_px, y_px, half, peak_half, gain=1.0, nullpix=None) -> (I, var, ok)
    fraction_misfit(hkl, batch, I, sigI, FRACTIONCALC, partial, n_parts=None)
        -> FractionMisfit (observed share of each part against FRACTIONCALC)
"""

from __future__ import annotations

from mosflm_py.mosaic.estimate import (
    MosaicEstimate,
    MosaicParams,
    MosaicRow,
    estimate_mosaic,
    plateau_index,
)
from mosflm_py.mosaic.fractions import FractionMisfit, fraction_misfit
from mosflm_py.mosaic.rocking import RockingWidth, rocking_width_from_partials
from mosflm_py.mosaic.summation import box_summation

__all__ = ["FractionMisfit", "MosaicEstimate", "MosaicParams", "MosaicRow", "RockingWidth",
           "box_summation", "estimate_mosaic", "fraction_misfit", "plateau_index",
           "rocking_width_from_partials"]
