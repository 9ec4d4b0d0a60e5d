"""Parameters of a PROCESS run (plain, picklable values for worker processes)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mosflm_py.integration import IntegrationParams, Polarisation
from mosflm_py.refinement import PostrefParams, RefinementParams


@dataclass(frozen=True)
class ProcessParams:
    """Everything a block of images needs besides the images and the model.

    d_min, d_max : resolution limits (Å).  maxwidth : reflections whose full rocking width
    exceeds this angle (degrees) are not integrated (MAXWIDTH).  refine_detector / postref :
    per-image positional refinement and post-refinement on/off.  mossmooth, mosadd : smoothing
    window (images) and safety factor of the refined mosaic spread.  high_resolution : 21
    standard-profile regions (data beyond 2.5 Å) or 9.  min_isig_refine : I/σ of reflections
    used for positional refinement.  exclude_shells : resolution shells (Å, pairs) excluded
    (RESOLUTION EXCLUDE / EXCLUDE ICE).  mask : active-pixel mask [slow, fast] (BACKSTOP,
    LIMITS EXCLUDE / QUADRILATERAL), True = usable; masked pixels are treated like inactive
    (NULLPIX) pixels.
    """

    d_min: float
    d_max: float | None = None
    maxwidth: float = 5.0
    integration: IntegrationParams = field(default_factory=IntegrationParams)
    refinement: RefinementParams = field(default_factory=RefinementParams)
    postrefinement: PostrefParams = field(default_factory=PostrefParams)
    refine_detector: bool = True
    postref: bool = True
    mossmooth: int = 10
    mosadd: float = 0.05
    polarisation: Polarisation = field(default_factory=Polarisation)
    high_resolution: bool = True
    min_isig_refine: float = 5.0
    exclude_shells: tuple[tuple[float, float], ...] = ()
    mask: np.ndarray | None = None
