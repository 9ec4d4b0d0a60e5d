"""Absorption surface: a smooth correction on the beam directions in the crystal frame.

Model (Aimless's ``SECONDARY``/absorption surface, Evans 2006, Acta Cryst. D62, 72-82,
section 2.3; the absorption term of dials.scale's physical model, Beilsten-Edmands et al. 2020,
Acta Cryst. D76, 385-399): the scale of an observation gets a factor

    ln A = Σ_{l=1..lmax} Σ_{m=-l..l} c_lm (Y_lm(−ŝ0) + Y_lm(ŝ1)) / 2,

where ŝ0 and ŝ1 are the incident and diffracted beam directions in a frame fixed to the crystal
and Y_lm the real spherical harmonics. Absorption by a crystal of any shape is a smooth function
of these two directions; the l = 0 term is the overall scale (left to the rotation scales). The
coefficients are restrained towards zero (Aimless ``TIE SURFACE``, dials.scale's
``absorption_restraint``) so that a poorly sampled surface stays flat.

The directions come from the orientation in the MTZ batch headers (U, the goniostat axis E1, the
beam vector, the wavelength; MOSFLM's Cambridge frame, mosflm_outputs.md section 2), and are
checked against the Laue condition |s0 + R(φ) U B h| = 1/λ before use.

The spherical harmonics are scipy's (``scipy.special.sph_harm_y``); the combination into the
real basis and the restraint are written here.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from mosflm_py.geometry.crystal import b_matrix

try:  # scipy >= 1.15
    from scipy.special import sph_harm_y
except ImportError:  # older scipy (pyproject allows 1.11): sph_harm(m, n, azimuth, polar)
    from scipy.special import sph_harm as _sph_harm

    def sph_harm_y(n, m, theta, phi):  # noqa: D103 (same signature as scipy's)
        return _sph_harm(m, n, phi, theta)


__all__ = ["LAUE_TOLERANCE", "absorption_basis", "crystal_frame_directions", "n_coefficients"]

LAUE_TOLERANCE = 0.01
"""Largest accepted median relative violation of the Laue condition (|s1|λ − 1)."""


def n_coefficients(lmax: int) -> int:
    """Number of coefficients c_lm for l = 1..lmax."""
    return (lmax + 1) ** 2 - 1


def real_sph_harm(lmax: int, v: np.ndarray) -> np.ndarray:
    """Real spherical harmonics Y_lm (orthonormal on the sphere), l = 1..lmax, of unit
    vectors *v* (N, 3); columns ordered l = 1 (m = −1, 0, 1), l = 2 (m = −2..2), ..."""
    v = np.asarray(v, float)
    theta = np.arccos(np.clip(v[:, 2], -1.0, 1.0))  # polar angle
    phi = np.arctan2(v[:, 1], v[:, 0])
    cols = []
    for ll in range(1, lmax + 1):
        for m in range(-ll, ll + 1):
            y = sph_harm_y(ll, abs(m), theta, phi)
            if m < 0:
                cols.append(np.sqrt(2.0) * (-1) ** m * y.imag)
            elif m == 0:
                cols.append(y.real)
            else:
                cols.append(np.sqrt(2.0) * (-1) ** m * y.real)
    return np.stack(cols, axis=1) if cols else np.zeros((len(v), 0))


def absorption_basis(s0c: np.ndarray, s1c: np.ndarray, lmax: int) -> np.ndarray:
    """(N, n_coefficients) matrix: ∂ ln A / ∂ c_lm = (Y_lm(−ŝ0) + Y_lm(ŝ1)) / 2."""
    return 0.5 * (real_sph_harm(lmax, -s0c) + real_sph_harm(lmax, s1c))


def crystal_frame_directions(
    hkl: np.ndarray,
    phi: np.ndarray,
    umat: np.ndarray,
    cell: tuple[float, ...],
    axis: np.ndarray,
    beam: np.ndarray,
    wavelength: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit incident and diffracted beam directions in the crystal frame, and the median
    relative violation of the Laue condition.

    Parameters
    ----------
    hkl : (N, 3)
        Original Miller indices.
    phi : (N,)
        Rotation angle of each observation (deg).
    umat : (3, 3)
        U at φ = 0 (MOSFLM lab frame), as in the MTZ batch header.
    cell
        a, b, c (Å), α, β, γ (deg) of the batch header (B after Busing & Levy as MOSFLM).
    axis
        Rotation axis (E1) in the lab frame; x(φ) = R(axis, φ) U B h.
    beam
        Unit vector along the beam, from the source to the crystal (lab frame).
    wavelength
        (Å).

    Returns
    -------
    (s0c, s1c, laue_error)
        (N, 3) unit vectors and median | |s0 + x| λ − 1 |.
    """
    ub = np.asarray(umat, float) @ b_matrix(tuple(cell))
    ax = np.asarray(axis, float) / np.linalg.norm(axis)
    s0 = np.asarray(beam, float) / np.linalg.norm(beam) / wavelength
    rot = Rotation.from_rotvec(np.outer(np.radians(np.asarray(phi, float)), ax)).as_matrix()
    # crystal frame: the lab frame at φ = 0 rotated back by U (so that x = B h there)
    rt_s0 = np.einsum("nji,j->ni", rot, s0)  # R(φ)ᵀ s0
    s0c = rt_s0 @ np.asarray(umat, float)  # Uᵀ R(φ)ᵀ s0
    xc = np.asarray(hkl, float) @ b_matrix(tuple(cell)).T
    s1c = s0c + xc
    x_lab = np.einsum("nij,nj->ni", rot, np.asarray(hkl, float) @ ub.T)
    err = float(np.median(np.abs(np.linalg.norm(s0 + x_lab, axis=1) * wavelength - 1.0)))
    s0n = s0c / np.linalg.norm(s0c, axis=1, keepdims=True)
    s1n = s1c / np.maximum(np.linalg.norm(s1c, axis=1, keepdims=True), 1e-12)
    return s0n, s1n, err
