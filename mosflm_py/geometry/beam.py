"""Incident beam model (MOSFLM frame: the beam travels along +X)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import GeometryError


@dataclass(frozen=True)
class Beam:
    """Incident X-ray beam.

    Parameters
    ----------
    wavelength : Å.
    polarisation : degree of polarisation τ (MOSFLM SYNCHROTRON POLARISATION; 0 = unpolarised).
    divergence : (DIVH, DIVV) beam divergence, degrees (full width).
    dispersion : Δλ/λ.
    """

    wavelength: float
    polarisation: float = 0.95
    divergence: tuple[float, float] = (0.0, 0.0)
    dispersion: float = 0.0

    def __post_init__(self) -> None:
        if not self.wavelength > 0:
            raise GeometryError(f"wavelength must be positive, got {self.wavelength}")

    @property
    def s0(self) -> np.ndarray:
        """Incident wave vector (1/Å): (1/λ, 0, 0)."""
        return np.array([1.0 / self.wavelength, 0.0, 0.0])

    @property
    def mean_divergence(self) -> float:
        """Mean of DIVH and DIVV (degrees), the divergence term of the rocking width."""
        return 0.5 * (self.divergence[0] + self.divergence[1])
