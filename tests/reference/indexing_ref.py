"""Plain-numpy references and synthetic data for the indexing tests."""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.crystal import b_matrix
from mosflm_py.geometry.rotation import orthonormalise


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random proper rotation."""
    return orthonormalise(np.linalg.qr(rng.standard_normal((3, 3)))[0])


def centring_allowed(hkl: np.ndarray, centring: str) -> np.ndarray:
    """Mask of reflections allowed by the lattice centring (conventional setting)."""
    h, k, l = hkl.T
    if centring == "C":
        return (h + k) % 2 == 0
    if centring == "I":
        return (h + k + l) % 2 == 0
    if centring == "F":
        return ((h + k) % 2 == 0) & ((h + l) % 2 == 0) & ((k + l) % 2 == 0)
    if centring == "R":  # obverse hexagonal setting
        return (-h + k + l) % 3 == 0
    return np.ones(len(hkl), bool)


def _diffraction_phis(r0: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.array([0.0, 0.0, 1.0])
    rpar = (r0 @ m)[:, None] * m
    rperp = r0 - rpar
    a = rperp @ s0
    b = np.cross(m[None, :], r0) @ s0
    c = -0.5 * np.einsum("ij,ij->i", r0, r0) - rpar @ s0
    rho = np.hypot(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosv = c / rho
    ok = np.abs(cosv) <= 1
    base = np.arctan2(b, a)
    d = np.arccos(np.clip(cosv, -1, 1))
    return np.where(ok, base + d, np.nan), np.where(ok, base - d, np.nan)


def synthetic_rlp(
    cell,
    bravais: str,
    *,
    seed: int = 0,
    d_min: float = 2.0,
    wedge: float = 1.0,
    wavelength: float = 1.0,
    max_two_theta: float = 60.0,
    noise_px: float = 0.05,
    pixel_mm: float = 0.172,
    distance_mm: float = 200.0,
    outlier_fraction: float = 0.1,
    max_spots: int = 1500,
) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal-lattice vectors as seen on two images (phi 0..wedge and 90..90+wedge).

    Returns (rlp (N, 3) 1/Angstrom at the datum, U.B (1/Angstrom)).  Positions carry Gaussian
    angular noise equivalent to ``noise_px`` pixels at ``distance_mm`` and a fraction of random
    outlier vectors drawn on the Ewald sphere.
    """
    rng = np.random.default_rng(seed)
    ub = random_rotation(rng) @ b_matrix(cell)
    real = np.linalg.inv(ub)  # rows are real-space a, b, c
    s0 = np.array([1.0 / wavelength, 0, 0])
    dmin = max(d_min, wavelength / (2 * np.sin(np.radians(max_two_theta / 2))))
    hmax = [int(np.linalg.norm(v) / dmin) + 1 for v in real]
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij")
    hkl = np.stack([g.ravel() for g in grids], 1)
    hkl = hkl[centring_allowed(hkl, bravais[1]) & np.any(hkl != 0, axis=1)]
    r0 = hkl @ ub.T
    inside = np.linalg.norm(r0, axis=1) <= 1 / dmin
    hkl, r0 = hkl[inside], r0[inside]
    p1, p2 = _diffraction_phis(r0, s0)
    sel = np.zeros(len(r0), bool)
    for p in (p1, p2):
        deg = np.mod(np.degrees(p), 360.0)
        sel |= (deg >= 0) & (deg <= wedge) | (deg >= 90) & (deg <= 90 + wedge)
    rlp = r0[sel]
    if len(rlp) > max_spots:
        rlp = rlp[rng.choice(len(rlp), max_spots, replace=False)]
    sigma = noise_px * pixel_mm / distance_mm / wavelength
    rlp = rlp + rng.normal(0, sigma, rlp.shape)
    n_out = int(round(outlier_fraction * len(rlp)))
    if n_out:
        # random diffracted directions within max_two_theta, random phi in the two wedges
        tth = np.radians(max_two_theta) * np.sqrt(rng.uniform(0, 1, n_out))
        az = rng.uniform(0, 2 * np.pi, n_out)
        s1 = np.stack([np.cos(tth), np.sin(tth) * np.cos(az), np.sin(tth) * np.sin(az)], 1)
        r = s1 / wavelength - s0
        phi = np.radians(rng.uniform(0, wedge, n_out) + 90.0 * rng.integers(0, 2, n_out))
        c, s = np.cos(-phi), np.sin(-phi)
        rx = c * r[:, 0] - s * r[:, 1]
        ry = s * r[:, 0] + c * r[:, 1]
        rlp = np.concatenate([rlp, np.stack([rx, ry, r[:, 2]], 1)])
    return rlp[rng.permutation(len(rlp))], ub


def project_histograms_ref(
    rlp: np.ndarray, dirs: np.ndarray, span: float, nbins: int
) -> np.ndarray:
    """Plain-numpy cloud-in-cell projection histograms (reference for the numba kernel)."""
    out = np.zeros((len(dirs), nbins))
    u = (dirs @ rlp.T) * (nbins / span) + nbins / 2.0
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    i0 = np.clip(i0, 0, nbins - 2)
    rows = np.repeat(np.arange(len(dirs)), rlp.shape[0])
    np.add.at(out, (rows, i0.ravel()), (1 - f).ravel())
    np.add.at(out, (rows, i0.ravel() + 1), f.ravel())
    return out
