"""Plain data for spot finding: parameters, spot list, report.

The detector geometry is :class:`mosflm_py.geometry.detector.Detector`, the model prediction and
refinement use; the wavelength comes with it from the beam.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

# Spot flags (bit values of ``SpotList.flags``)
FLAG_OVERLOADED = 1
"""At least one pixel of the spot is at or above the OVERLOAD cutoff (spot kept)."""
FLAG_NEAR_INACTIVE = 2
"""The spot touches an inactive pixel (NULLPIX, gap, backstop, excluded area) or the image edge."""
FLAG_SPLIT = 4
"""The spot was split off a connected region with several significant maxima."""

ICE_RINGS_A: tuple[float, ...] = (3.90, 3.67, 3.44, 2.67, 2.25, 2.07, 1.95, 1.92, 1.88, 1.72)
"""Standard hexagonal-ice ring d-spacings (Angstrom) excluded by ICE."""


@dataclass(frozen=True)
class SpotFindParams:
    """All FINDSPOTS options with MOSFLM's defaults (mosflm_keywords.md §2.4, §2.2).

    Attributes
    ----------
    threshold : float or "auto"
        Pixel threshold in σ above background. ``"auto"``: 5, raised to 10 or 20 on strong
        images (rule in :func:`mosflm_py.spotfinding.find.choose_auto_threshold`).
    background : {"local", "radial"}
        Local box background (LOCAL, default) or radial profile about the beam.
    box : (int, int)
        Local background box (slow, fast) in pixels (BOX; default 16 16). Each pixel's background
        is the mean over the box centred on it of active pixels not within one pixel of a
        3σ-bright pixel (two passes).
    minpix : int
        Minimum number of above-threshold pixels in a spot (MINPIX, 6).
    min_size_x, max_size_x, min_size_y, max_size_y : float
        Spot size limits relative to the median spot size in X (slow) and Y (fast)
        (MINX MAXX MINY MAXY: 0.5 10 0.5 10).
    rmsfactor : float
        Minimum r.m.s. significance (σ units) of a spot's above-threshold pixels (RMSFACTOR 3).
    anisomax : float
        Maximum ratio of the major to minor r.m.s. axis of the spot (ANISOMAX 5).
    maxpeak : int
        Maximum number of unresolved peaks in one connected region (MAXPEAK 30); regions with
        more are rejected.
    split : bool
        Split regions with several significant maxima into separate spots (SPLIT).
    split_sep : (float, float)
        Peaks closer than this (pixels, slow and fast) are not split (SPLIT sx sy; 0 0).
    split_dip : float
        A maximum is significant if it rises this many σ above the saddle to its neighbour.
    separation : (float, float) or None
        Minimum centroid separation (mm) in X, Y; both spots of a closer pair are rejected.
        None: no separation test (MOSFLM sets SEPARATION from the spots found).
    rmin, rmax : float or None
        Search radii (mm from the beam). None: 5 % and 95 % of the radius of the largest
        circle about the beam inscribed in the detector (iMosflm defaults).
    d_min, d_max : float or None
        Resolution limits (Angstrom) for spots.
    ice : bool
        Reject spots on the standard ice rings (ICE).
    ice_width : float
        Half-width of an ice ring in d* (1/Angstrom).
    autoresln : bool
        On weak images reduce the resolution limit to where spots still occur (AUTORESLN).
    nullpix : float or None
        Pixels <= nullpix are inactive (NULLPIX). Negative pixels (Pilatus gaps) are always
        inactive; None means only those.
    overload : float
        Saturation cutoff (counts, OVERLOAD CUTOFF; MOSFLM default 65500, set it from the
        image header, e.g. Pilatus Count_cutoff); spots with a pixel >= this are flagged.
    backstop : (x, y, r) or None
        Backstop circle centre (mm) and radius (mm).
    excludes : tuple of (x1, x2, y1, y2)
        Rectangles (mm) excluded (LIMITS EXCLUDE).
    quadrilaterals : tuple of 4 (x, y) corners
        Quadrilaterals (mm) excluded (LIMITS QUADRILATERAL).
    reject_inactive : bool
        Reject spots touching an inactive pixel or the image edge (else only flag them).
    min_spots : int
        Minimum number of spots MOSFLM asks for (a warning is given below it; 10).
    gain : float
        Counts (ADU) per photon (GAIN, or the image header).
    read_noise : float
        Read noise per pixel (counts, r.m.s.); 0 for photon-counting detectors.
    """

    threshold: float | str = "auto"
    background: str = "local"
    box: tuple[int, int] = (16, 16)
    minpix: int = 6
    min_size_x: float = 0.5
    max_size_x: float = 10.0
    min_size_y: float = 0.5
    max_size_y: float = 10.0
    rmsfactor: float = 3.0
    anisomax: float = 5.0
    maxpeak: int = 30
    split: bool = True
    split_sep: tuple[float, float] = (0.0, 0.0)
    split_dip: float = 3.0
    separation: tuple[float, float] | None = None
    rmin: float | None = None
    rmax: float | None = None
    d_min: float | None = None
    d_max: float | None = None
    ice: bool = False
    ice_width: float = 0.004
    autoresln: bool = True
    nullpix: float | None = None
    overload: float = 65500.0
    backstop: tuple[float, float, float] | None = None
    excludes: tuple[tuple[float, float, float, float], ...] = ()
    quadrilaterals: tuple[tuple[tuple[float, float], ...], ...] = ()
    reject_inactive: bool = True
    min_spots: int = 10
    gain: float = 1.0
    read_noise: float = 0.0


_SPOT_FIELDS = ("x_mm", "y_mm", "x_px", "y_px", "intensity", "sigma", "size_x", "size_y",
                "n_pixels", "peak", "background", "d_spacing", "flags", "image", "phi")


@dataclass(frozen=True)
class SpotList:
    """Spots as a struct of arrays (all length N).

    Attributes
    ----------
    x_mm, y_mm : ndarray
        MOSFLM detector coordinates (mm), X along slow, Y along fast.
    x_px, y_px : ndarray
        Continuous pixel coordinates (slow, fast); pixel centres at i + 0.5.
    intensity, sigma : ndarray
        Background-subtracted summed counts and its σ (counts; photons = counts / gain).
    size_x, size_y : ndarray
        Extent (pixels) of the above-threshold pixels in slow and fast.
    n_pixels : ndarray
        Number of above-threshold pixels.
    peak : ndarray
        Highest pixel value (counts).
    background : ndarray
        Mean background per pixel under the spot (counts).
    d_spacing : ndarray
        Resolution at the centroid (Angstrom; inf at the beam).
    flags : ndarray
        Bitwise OR of FLAG_OVERLOADED, FLAG_NEAR_INACTIVE, FLAG_SPLIT.
    image : ndarray
        Image number.
    phi : ndarray
        Spindle angle (deg) of the spot (image centre, or the φ centroid after merging).
    """

    x_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intensity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma: np.ndarray = field(default_factory=lambda: np.zeros(0))
    size_x: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    size_y: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    n_pixels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    peak: np.ndarray = field(default_factory=lambda: np.zeros(0))
    background: np.ndarray = field(default_factory=lambda: np.zeros(0))
    d_spacing: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    image: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    phi: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return int(self.x_mm.shape[0])

    def select(self, which: np.ndarray) -> SpotList:
        """Subset by boolean mask or index array."""
        return SpotList(**{k: getattr(self, k)[which] for k in _SPOT_FIELDS})

    def replace(self, **changes: np.ndarray) -> SpotList:
        """Copy with some arrays replaced."""
        return dataclasses.replace(self, **changes)

    @staticmethod
    def concatenate(lists: list[SpotList]) -> SpotList:
        """Join several spot lists (e.g. from several images)."""
        if not lists:
            return SpotList()
        return SpotList(**{k: np.concatenate([getattr(s, k) for s in lists]) for k in _SPOT_FIELDS})

    @property
    def i_over_sigma(self) -> np.ndarray:
        """I/σ(I)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.sigma > 0, self.intensity / self.sigma, 0.0)


@dataclass(frozen=True)
class FindSpotsReport:
    """What FINDSPOTS tells the user about one image.

    Attributes
    ----------
    image : int
        Image number.
    n_found : int
        Spots accepted.
    n_regions : int
        Connected above-threshold regions before splitting and filtering.
    rejected : dict[str, int]
        Rejections by reason: too_few_pixels, too_small_x, too_large_x, too_small_y,
        too_large_y, anisotropic, too_weak_rms, too_many_peaks, too_close, ice, outside_radius,
        resolution, autoresln, inactive_pixels. ``overloaded`` counts accepted-but-flagged spots.
    n_split : int
        Spots that came from splitting regions.
    n_overloaded : int
        Accepted spots with an overloaded pixel.
    median_size_x, median_size_y : float
        Median spot extent (pixels) in X (slow) and Y (fast).
    threshold : float
        Threshold (σ) actually used.
    rmin, rmax : float
        Search radii used (mm).
    d_min_spots : float
        Highest resolution (smallest d, Angstrom) among accepted spots (inf if none).
    d_limit : float or None
        Resolution limit applied by AUTORESLN (Angstrom), or None.
    separation : (float, float)
        SEPARATION (mm) implied by the median spot size: (size + 2) * pixel.
    raster : (int, int, int, int, int)
        RASTER NXS NYS NC NRX NRY implied by the median spot size (see
        :func:`mosflm_py.spotfinding.filters.raster_from_spot_size`).
    background_mean : float
        Mean background (counts) over active pixels.
    warnings : list[str]
        Messages for the user (e.g. fewer spots than ``min_spots``).
    """

    image: int = 1
    n_found: int = 0
    n_regions: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    n_split: int = 0
    n_overloaded: int = 0
    median_size_x: float = 0.0
    median_size_y: float = 0.0
    threshold: float = 5.0
    rmin: float = 0.0
    rmax: float = 0.0
    d_min_spots: float = float("inf")
    d_limit: float | None = None
    separation: tuple[float, float] = (0.0, 0.0)
    raster: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    background_mean: float = 0.0
    warnings: list[str] = field(default_factory=list)
