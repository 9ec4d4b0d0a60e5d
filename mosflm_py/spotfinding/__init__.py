"""Spot finding (MOSFLM FINDSPOTS): background, threshold, labelling, centroids, spot files.

Public API::

    find_spots(frame, det, wavelength, params, image, phi, d_map=None, mask=None)
        -> (SpotList, FindSpotsReport)
    find_spots_many(frames, det, wavelength, params, phis, images, ...)
        -> (SpotList, [FindSpotsReport])

``det`` is :class:`mosflm_py.geometry.detector.Detector`, the one detector model of the program
(prediction, refinement and pictures use it too).
    merge_across_images(spots, max_shift_px=2.0) -> SpotList
    build_mask(shape, pixel_slow, pixel_fast, nullpix, frame, backstop=, excludes=, quadrilaterals=)
    write_spot_file(path, spots, ...), read_spot_file(path) -> SpotList
"""

from __future__ import annotations

from mosflm_py.spotfinding.background import local_background, radial_background
from mosflm_py.spotfinding.filters import raster_from_spot_size, separation_from_spot_size
from mosflm_py.spotfinding.find import find_spots, find_spots_many
from mosflm_py.spotfinding.mask import build_mask, resolution_at
from mosflm_py.spotfinding.merge import merge_across_images
from mosflm_py.spotfinding.spotfile import read_spot_file, read_spot_file_header, write_spot_file
from mosflm_py.spotfinding.types import (
    FLAG_NEAR_INACTIVE,
    FLAG_OVERLOADED,
    FLAG_SPLIT,
    ICE_RINGS_A,
    FindSpotsReport,
    SpotFindParams,
    SpotList,
)

__all__ = [
    "FLAG_NEAR_INACTIVE", "FLAG_OVERLOADED", "FLAG_SPLIT", "ICE_RINGS_A",
    "FindSpotsReport", "SpotFindParams", "SpotList", "build_mask", "find_spots",
    "find_spots_many", "local_background", "merge_across_images", "radial_background",
    "raster_from_spot_size", "read_spot_file", "read_spot_file_header", "resolution_at",
    "separation_from_spot_size", "write_spot_file",
]
