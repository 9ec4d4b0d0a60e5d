"""Integration parameters (MOSFLM keywords RASTER, SEPARATION, BACKGROUND, REJECTION, PROFILE, ...).

All frozen dataclasses of plain values, so they pickle cheaply to worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mosflm_py.errors import IntegrationError
from mosflm_py.integration.box import Raster


@dataclass(frozen=True)
class BackgroundParams:
    """BACKGROUND BGFRAC / BGSIG / RECOVER RECLEVEL.

    bgfrac : fraction of lowest background pixels for the first plane (0.8).
    bgsig : rejection threshold in Poisson sigmas about the plane (3.0).
    recover : re-admit neighbour-masked background pixels (lowest first) when fewer than
        ``reclevel * nbgmin`` pixels survive (off by default).
    """

    bgfrac: float = 0.8
    bgsig: float = 3.0
    recover: bool = False
    reclevel: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 < self.bgfrac <= 1.0:
            raise IntegrationError(f"BACKGROUND BGFRAC {self.bgfrac} must be in (0, 1]")
        if self.bgsig <= 0.0:
            raise IntegrationError(f"BACKGROUND BGSIG {self.bgsig} must be positive")


@dataclass(frozen=True)
class RejectionParams:
    """REJECTION GRADMAX / MINBG / BGRATIO / PKRATIO [ACCEPT] and the 5-sigma negative test."""

    gradmax: float = 0.03
    nbgmin: int = 10
    bgratio: float = 3.0
    pkratio: float = 3.5
    pkratio_accept: bool = False
    negative_sigma: float = 5.0


@dataclass(frozen=True)
class SeparationParams:
    """SEPARATION [CLOSE|NOTCLOSE] TRIM n NOVERLAP n (overlap masking)."""

    close: bool = True
    trim: int = 0
    noverlap: int = 1

    def __post_init__(self) -> None:
        if self.trim < 0 or self.noverlap < 1:
            raise IntegrationError("SEPARATION TRIM must be >= 0 and NOVERLAP >= 1")


@dataclass(frozen=True)
class ProfileParams:
    """PROFILE subkeywords (defaults of MOSFLM 6.2.6).

    enabled : PROFILE OFF sets False (summation only).
    tolerance : (tmin, tmax) fraction of the profile allowed outside the peak (centre, edge).
    boundary : minimum background rim in optimisation; fixbox : keep box size.
    optimise : optimise the peak/background boundary per standard profile.
    isdr : a contributor needs I_sum > isdr * sigma(I_sum).
    nref : minimum contributors per standard profile (else averaged with neighbours).
    rmsbg : maximum background rms of a profile scaled to a 255 peak.
    partials : use partials too (None = automatically when fulls are too few).
    variable : per-reflection profile interpolated between regions.
    interpolate : sub-pixel centring of profiles.
    wdlim1, wdlim2 : per-pixel rejection (sigma) in the fit, normal / next to overlaps.
    efac : detector ("instrument") error factor: the expected residual of a peak pixel used for
        PKRATIO and the WDLIM rejection is sqrt(v + (efac m)^2), m the model counts (MOSFLM's
        "instrument error factor"); the fit weights and sigma(Ipr) use counting statistics only.
    vmin : floor of a pixel's variance in the fit (photons^2); small, so that near-zero
        (photon-counting) backgrounds keep their counting-statistics weights.
    subpixel : standard profiles are sampled on a grid of ``subpixel`` bins per pixel along each
        axis, so that a spot is re-centred once with sub-pixel resolution (no double
        interpolation between whole pixels).
    xlines, ylines : user region boundaries (pixels, slow / fast), None = automatic grid.
    grow_box : the measurement box was set automatically (from the median spot size) and may
        be enlarged when the standard profiles of a block do not fit in it
        (:func:`~mosflm_py.integration.profiles.accumulate_profiles`); False for a RASTER given
        by the user.
    """

    enabled: bool = True
    tolerance: tuple[float, float] = (0.02, 0.03)
    boundary: int = 6
    fixbox: bool = True
    optimise: bool = True
    isdr: float = 2.0
    nref: int = 10
    rmsbg: float = 20.0
    partials: bool | None = None
    variable: bool = True
    interpolate: bool = True
    wdlim1: float = 20.0
    wdlim2: float = 20.0
    efac: float = 0.07
    grow_box: bool = False
    vmin: float = 0.1
    subpixel: int = 4
    xlines: tuple[float, ...] | None = None
    ylines: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if int(self.subpixel) != self.subpixel or not 1 <= self.subpixel <= 8:
            raise IntegrationError(f"profile sub-pixel sampling {self.subpixel} must be 1-8")
        if not self.vmin > 0.0 or self.efac < 0.0:
            raise IntegrationError("PROFILE EFAC must be >= 0 and the variance floor positive")


@dataclass(frozen=True)
class IntegrationParams:
    """Everything integrate_image needs besides the frame, predictions and standard profiles.

    gain : ADU per photon (GAIN); adcoffset : ADC offset subtracted first (ADCOFFSET).
    nullpix : pixels <= nullpix are inactive (NULLPIX); negative pixels are always inactive.
    overload : pixel values >= overload are saturated (OVERLOAD CUTOFF).
    """

    raster: Raster = field(default_factory=lambda: Raster(17, 19, 13, 6, 6))
    background: BackgroundParams = field(default_factory=BackgroundParams)
    rejection: RejectionParams = field(default_factory=RejectionParams)
    profile: ProfileParams = field(default_factory=ProfileParams)
    separation: SeparationParams = field(default_factory=SeparationParams)
    gain: float = 1.0
    adcoffset: float = 0.0
    nullpix: float = -1.0
    overload: float = 65500.0

    def __post_init__(self) -> None:
        if not self.gain > 0.0:
            raise IntegrationError(f"GAIN {self.gain} must be positive")
