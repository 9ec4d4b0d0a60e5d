"""Integration: MOSFLM measurement boxes, background planes, summation and 2D profile fitting.

Public API: :func:`integrate_image`, :func:`accumulate_profiles`, :func:`auto_raster`,
:func:`optimise_raster`, :func:`lp_factors` and the parameter / result dataclasses.
"""

from __future__ import annotations

from mosflm_py.integration.box import Raster, auto_raster, optimise_raster
from mosflm_py.integration.flags import Flag, Reject, pack_bgpkratios, unpack_bgpkratios
from mosflm_py.integration.integrate import ImageIntegration, integrate_image
from mosflm_py.integration.lp import Polarisation, lp_factors
from mosflm_py.integration.params import (
    BackgroundParams,
    IntegrationParams,
    ProfileParams,
    RejectionParams,
    SeparationParams,
)
from mosflm_py.integration.predictions import Targets, part_centroid_phi
from mosflm_py.integration.profiles import StandardProfiles, accumulate_profiles, region_grid

__all__ = [
    "BackgroundParams", "Flag", "ImageIntegration", "IntegrationParams", "Polarisation",
    "ProfileParams", "Raster", "Reject", "RejectionParams", "SeparationParams",
    "StandardProfiles", "Targets", "accumulate_profiles", "auto_raster", "integrate_image",
    "lp_factors", "optimise_raster", "pack_bgpkratios", "part_centroid_phi", "region_grid",
    "unpack_bgpkratios",
]
