"""Parameters of a simulated rotation dataset (:class:`SimulationParams`) and the default set."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import BadParameter, GeometryError

MODELS = ("ball", "domains")


@dataclass(frozen=True)
class SimulationParams:
    """Everything that defines a simulated rotation sweep (conventions.txt frames and units).

    Geometry
        ``wavelength`` (Angstrom), ``distance`` (mm), ``beam_x``/``beam_y`` (mm, MOSFLM X = slow,
        Y = fast, origin at the outer corner of the first pixel), ``pixel_size`` (mm; fast pixel
        size ``pixel_size_fast`` if different), ``nslow``/``nfast`` (pixels), ``two_theta`` and
        ``detector_omega`` (deg), ``reverse_phi`` (rotation about -Z).
    Crystal
        ``cell`` (a, b, c in Angstrom, alpha, beta, gamma in deg), ``space_group`` (any symbol gemmi
        understands; systematic absences are removed), ``U`` (3x3 rows; ``None``: a random
        rotation drawn from ``seed``), ``missets`` (PHIX, PHIY, PHIZ, deg).
    Crystal model
        ``model``: ``"ball"`` (default: each reflection a uniformly filled ball, swept
        continuously) or ``"domains"`` (nanoBragg-like, :mod:`mosflm_py.simulate.domains`:
        ``mosaic_domains`` discrete domains rotated by up to ``mosaic`` deg (spherical cap),
        Gaussian domains of ``domain_size`` = (Na, Nb, Nc) cells, ``phi_steps`` discrete rotation
        sub-steps per image, pixels sampled at ``oversample^2`` points, the point-spread applied
        as a blur of the spots).
    Rocking curve (``"ball"`` model)
        ``mosaic`` (full width, deg; the maximum domain rotation in the ``"domains"`` model),
        ``divergence_h``/``divergence_v`` (deg), ``dispersion``
        (d lambda / lambda).  Ball radius ``rho = 0.5 d* (eta + (divh + divv)/2) +
        0.5 d* tan(theta) dispersion`` (conventions.txt).
    Sweep
        ``phi_start`` (deg, start of the first image), ``osc_width`` (deg), ``n_images``,
        ``first_image`` (number of the first file).
    Intensities
        ``resolution`` (d_min, Angstrom; ``None``: the detector corner); Wilson model with
        ``wilson_b`` (Angstrom^2) and ``mean_intensity`` (photons of a reflection at d* = 0);
        or ``intensities``, a mapping ``(h, k, l) -> I`` (unlisted reflections are not
        generated).  Equivalent reflections (and Friedel mates) get equal Wilson intensities.
    Detector response
        ``psf_sigma`` (Gaussian point-spread sigma, px; ``psf_sigma_fast`` for an anisotropic
        spot), ``background`` (photons/pixel/image, constant), ``background_radial`` (peak
        photons/pixel of a smooth radial term ``q exp(1 - q)``, ``q = d*/0.4``),
        ``water_ring`` (peak photons/pixel of a Gaussian ring at d = 3.7 Angstrom, sigma
        d* = 0.02 /Angstrom), ``poisson`` noise, ``gain`` (ADU/photon), ``adc_offset`` (ADU),
        ``overload`` (ADU; saturated pixels are clipped to it), ``read_noise`` (Gaussian, ADU rms,
        as a CCD's), ``module_gaps`` (Pilatus 487x195
        modules with 7/17 px gaps set to -1), ``backstop_radius`` (mm; shadowed pixels get 2 % of
        the background plus an arm towards +slow), ``n_dead_pixels`` (set to -1),
        ``polarisation`` (degree tau) with electric vector ``e_vector`` (lab, default +Z:
        horizontal, along a horizontal spindle),
        ``exposure_time`` (s, header only), ``seed``.
    """

    wavelength: float = 0.9795
    distance: float = 150.0
    beam_x: float = 90.3
    beam_y: float = 84.6
    pixel_size: float = 0.172
    pixel_size_fast: float | None = None
    nslow: int = 1024
    nfast: int = 1024
    two_theta: float = 0.0
    detector_omega: float = 0.0
    reverse_phi: bool = False
    cell: tuple[float, float, float, float, float, float] = (47.3, 58.9, 71.6, 90.0, 90.0, 90.0)
    space_group: str = "P 21 21 21"
    U: tuple[tuple[float, float, float], ...] | None = None
    missets: tuple[float, float, float] = (0.0, 0.0, 0.0)
    model: str = "ball"
    mosaic_domains: int = 20
    domain_size: tuple[int, int, int] = (10, 10, 10)
    phi_steps: int = 3
    oversample: int = 1
    mosaic: float = 0.3
    divergence_h: float = 0.0
    divergence_v: float = 0.0
    dispersion: float = 0.0
    phi_start: float = 0.0
    osc_width: float = 0.5
    n_images: int = 20
    first_image: int = 1
    resolution: float | None = 1.7
    wilson_b: float = 20.0
    mean_intensity: float = 4000.0
    intensities: Mapping[tuple[int, int, int], float] | None = field(default=None, repr=False)
    psf_sigma: float = 0.7
    psf_sigma_fast: float | None = None
    background: float = 5.0
    background_radial: float = 10.0
    water_ring: float = 0.0
    poisson: bool = True
    gain: float = 1.0
    adc_offset: float = 0.0
    overload: float = 1.0e6
    read_noise: float = 0.0
    module_gaps: bool = False
    backstop_radius: float = 0.0
    n_dead_pixels: int = 0
    polarisation: float = 0.95
    e_vector: tuple[float, float, float] = (0.0, 0.0, 1.0)
    exposure_time: float = 0.1
    seed: int = 1

    def replace(self, **changes) -> SimulationParams:
        """A copy with some fields changed (``dataclasses.replace``), validated."""
        out = dataclasses.replace(self, **changes)
        out.validate()
        return out

    @property
    def pixel_fast(self) -> float:
        """Fast pixel size (mm)."""
        return self.pixel_size if self.pixel_size_fast is None else self.pixel_size_fast

    def validate(self) -> None:
        """Raise a :class:`MosflmError` subclass for impossible values."""
        if self.wavelength <= 0:
            raise BadParameter(f"Simulation wavelength must be positive (got {self.wavelength}).")
        if self.distance <= 0:
            raise GeometryError(f"Simulation distance must be positive (got {self.distance} mm).")
        if self.pixel_size <= 0 or self.pixel_fast <= 0:
            raise GeometryError("Simulation pixel size must be positive.")
        if self.nslow < 1 or self.nfast < 1:
            raise GeometryError("Simulated detector must have at least one pixel each way.")
        if len(self.cell) != 6 or min(self.cell[:3]) <= 0:
            raise BadParameter(f"Simulation cell must be a b c alpha beta gamma (got {self.cell}).")
        if self.n_images < 1 or self.osc_width <= 0:
            raise BadParameter("Simulation needs n_images >= 1 and a positive oscillation width.")
        if self.model not in MODELS:
            raise BadParameter(f"Simulation model must be one of {', '.join(MODELS)} "
                               f"(got {self.model!r}).")
        if self.model == "domains":
            if self.mosaic < 0 or self.mosaic_domains < 1:
                raise BadParameter("Simulation needs mosaic >= 0 and at least one mosaic domain.")
            if len(self.domain_size) != 3 or min(self.domain_size) < 1:
                raise BadParameter("Simulation domain size must be three cell counts >= 1 "
                                   f"(got {self.domain_size}).")
            if self.phi_steps < 1 or not 1 <= self.oversample <= 16:
                raise BadParameter("Simulation needs phi_steps >= 1 and 1 <= oversample <= 16.")
            if self.divergence_h or self.divergence_v or self.dispersion:
                raise BadParameter("Beam divergence and dispersion are not implemented yet in the "
                                   "'domains' simulation model (use the 'ball' model).")
        elif self.mosaic + 0.5 * (self.divergence_h + self.divergence_v) <= 0:
            raise BadParameter("Simulation needs a positive mosaic spread or beam divergence.")
        if self.resolution is not None and self.resolution <= 0.5 * self.wavelength:
            raise BadParameter(
                f"Simulation resolution {self.resolution} A is beyond the Ewald-sphere limit "
                f"lambda/2 = {0.5 * self.wavelength:.3f} A."
            )
        if self.psf_sigma <= 0 or (self.psf_sigma_fast is not None and self.psf_sigma_fast <= 0):
            raise BadParameter("Simulation point-spread sigma must be positive.")
        if self.read_noise < 0:
            raise BadParameter("Simulation read noise must not be negative.")
        if not 0.0 <= self.polarisation <= 1.0:
            raise BadParameter("Degree of polarisation must lie in [0, 1].")
        if self.U is not None:
            u = np.asarray(self.U, dtype=float)
            if u.shape != (3, 3) or not np.allclose(u @ u.T, np.eye(3), atol=1e-5) \
                    or np.linalg.det(u) < 0:
                raise BadParameter("Simulation U must be a proper rotation matrix (3x3, det +1).")


def default_params(**changes) -> SimulationParams:
    """The project's standard small dataset, optionally with some fields changed.

    A 1024 x 1024 Pilatus-like detector (0.172 mm pixels) at 150 mm, beam (90.3, 84.6) mm off the
    centre, wavelength 0.9795 A; P 21 21 21 cell 47.3 58.9 71.6 A, random U from ``seed`` = 1;
    mosaic 0.3 deg; 20 images of 0.5 deg from phi 0; Wilson intensities (B 20 A^2) to 1.7 A;
    Poisson noise on a background of 5-15 photons/pixel.
    """
    p = SimulationParams(**changes)
    p.validate()
    return p


def nanobragg_like_params(**changes) -> SimulationParams:
    """:func:`default_params` with the nanoBragg-like ``"domains"`` model, as the development set.

    20 mosaic domains within a 0.3 deg cap, Gaussian domains of 10 x 10 x 10 cells, 3 rotation
    sub-steps per image, pixel-centre sampling (nanoBragg ``-oversample 1``), point-spread sigma
    0.6 px, polarisation 0.99; ``changes`` override any field.
    """
    base = {"model": "domains", "mosaic": 0.3, "mosaic_domains": 20,
            "domain_size": (10, 10, 10), "phi_steps": 3, "oversample": 1, "psf_sigma": 0.6,
            "polarisation": 0.99}
    base.update(changes)
    return default_params(**base)


def e_vector(p: SimulationParams) -> np.ndarray:
    """Unit electric vector of the beam, made perpendicular to the beam (+X)."""
    e = np.array(p.e_vector, dtype=float)
    e[0] = 0.0
    n = np.linalg.norm(e)
    if n == 0:
        raise BadParameter("Polarisation electric vector must not be along the beam.")
    return e / n
