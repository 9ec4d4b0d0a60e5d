"""Detector positions ↔ scattering vectors ↔ reciprocal-lattice vectors at the datum."""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.experiment import Experiment


def spots_to_s1(x_mm: np.ndarray, y_mm: np.ndarray, experiment: Experiment) -> np.ndarray:
    """Diffracted wave vectors s1 (N, 3) (1/Å) for spots at MOSFLM (X, Y) mm."""
    return experiment.detector.s1_from_mm(x_mm, y_mm, experiment.beam.wavelength)


def spots_to_rlp(
    x_mm: np.ndarray, y_mm: np.ndarray, phi_deg: np.ndarray, experiment: Experiment
) -> np.ndarray:
    """Reciprocal-lattice vectors (N, 3) (1/Å) of spots, rotated back to φ = 0.

    r = s1 − s0 at the spot's rotation angle φ, then r0 = R(φ)ᵀ r, so that r0 = M·U·B·h for an
    indexed spot (see conventions).
    """
    s1 = spots_to_s1(x_mm, y_mm, experiment)
    r = s1 - experiment.beam.s0[None, :]
    rots = experiment.goniometer.rotations(np.broadcast_to(phi_deg, (len(r),)))
    return np.einsum("nji,nj->ni", rots, r)


def rlp_to_hkl(rlp: np.ndarray, ub: np.ndarray) -> np.ndarray:
    """Fractional Miller indices (N, 3) of reciprocal-lattice vectors for a U·B matrix."""
    return np.asarray(rlp) @ np.linalg.inv(ub).T
