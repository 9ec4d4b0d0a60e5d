"""nanoBragg-like crystal model: discrete mosaic domains with finite (Gaussian) domain size.

The ``"domains"`` model of :class:`~mosflm_py.simulate.params.SimulationParams` replaces the
uniform mosaic ball of the default ``"ball"`` model by the physics of James Holton's nanoBragg
(cctbx_project ``simtbx/nanoBragg``) as used to make the development set:

* ``mosaic_domains`` domains, each the crystal rotated about a random axis (uniform on the
  sphere) by ``mosaic * (1 - r^2)^(1/3)``, ``r`` uniform on [-1, 1] -- nanoBragg's "spherical cap"
  distribution (``mosaic_rotation_umat``); domain 0 is unrotated.  The rms rotation about any
  fixed axis is ``mosaic * sqrt(E[(1 - r^2)^(2/3)] / 3) = 0.497 mosaic``.
* Gaussian domains of ``Na x Nb x Nc`` cells (nanoBragg ``-gauss_xtal``): the lattice transform
  ``|F_latt|^2 ~ exp(-2 sum_i N_i^2 (dh_i)^2 / 0.63)`` with ``dh_i = a_i . dq`` the fractional
  Miller-index offset, i.e. a Gaussian blob in reciprocal space with precision matrix
  ``P0 = (4 / 0.63) sum_i N_i^2 a_i a_i^T`` (``a_i`` the real-space cell vectors at phi = 0).  Its
  size is fixed in reciprocal space, so its angular rocking width grows at low resolution
  (``sigma_phi = sqrt(n^T P0^-1 n) / (|s0| |zeta|)``, ``n`` the diffracted direction).
* The rotation of each image is sampled at ``phi_steps`` sub-step centres (nanoBragg
  ``-phi start+osc/(2 S) -osc -phisteps S``), and every pixel is sampled at ``oversample^2``
  points (nanoBragg ``-oversample``).
* The detector point-spread is a Gaussian blur of the rendered spots (as in the development set's
  recipe), applied by :func:`blur`.

The blob is normalised to unit integral in reciprocal space, so a whole crossing of the Ewald
sphere gives ``I P / |zeta|`` counts -- the same intensity definition as the ball model
(:mod:`mosflm_py.simulate.truth`) -- whatever the mosaic and domain size.  Nothing here is shared
with the processing code's rocking-curve or partiality model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.kernels.simulate import render_domains
from mosflm_py.simulate.params import SimulationParams, e_vector

GAUSS_XTAL_FUDGE = 0.63
"""nanoBragg's ``-gauss_xtal`` radius fudge: ``F_latt = Na Nb Nc exp(-hrad^2 / 0.63)``."""
N_SIGMA = 5.0
"""Blobs are evaluated out to this many standard deviations (exp(-12.5) = 4e-6 of the peak)."""
MAX_HALF_WINDOW = 200
"""Largest pixel half-window rendered around one blob."""


def mosaic_rotations(mosaic_deg: float, n_domains: int, seed: int) -> np.ndarray:
    """(n, 3, 3) rotations of the mosaic domains (nanoBragg's spherical-cap distribution).

    Domain 0 is the identity; the others turn by ``mosaic * (1 - r3^2)^(1/3)`` about the axis
    ``(sqrt(1 - r2^2) sin(pi r1), sqrt(1 - r2^2) cos(pi r1), r2)``, with ``r1, r2, r3`` uniform on
    [-1, 1] (deterministic from ``seed``).
    """
    n = max(1, int(n_domains))
    rng = np.random.default_rng([int(seed), 4241])
    r = rng.uniform(-1.0, 1.0, size=(n, 3))
    xy = np.sqrt(1.0 - r[:, 1] ** 2)
    axis = np.stack([xy * np.sin(np.pi * r[:, 0]), xy * np.cos(np.pi * r[:, 0]), r[:, 1]], axis=1)
    ang = np.radians(mosaic_deg) * np.cbrt(1.0 - r[:, 2] ** 2)
    ang[0] = 0.0
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = axis[:, 2], -axis[:, 1], axis[:, 0]
    s, c = np.sin(ang)[:, None, None], np.cos(ang)[:, None, None]
    return np.eye(3)[None] + s * k + (1.0 - c) * (k @ k)  # Rodrigues


def blob_precision(recip: np.ndarray, domain_size) -> np.ndarray:
    """Precision matrix P0 (A^2) of the Gaussian domain transform at phi = 0.

    ``recip`` has the reciprocal axes a*, b*, c* as columns (``r = recip @ h``), so the rows of
    ``inv(recip)`` are the real-space axes ``a_i`` and ``P0 = (4 / 0.63) sum N_i^2 a_i a_i^T``.
    """
    real = np.linalg.inv(np.asarray(recip, dtype=float))
    n2 = np.asarray(domain_size, dtype=float) ** 2
    return (4.0 / GAUSS_XTAL_FUDGE) * (real.T * n2) @ real


@dataclass(frozen=True)
class DomainModel:
    """Mosaic domains and blob of the ``"domains"`` model.

    rot : (D, 3, 3) domain rotations.  prec : (D, 3, 3) rotated precision matrices (A^2).
    norm : blob normalisation ``sqrt(det P0) / (2 pi)^1.5`` (A^3).  sigma_max : largest blob
    standard deviation (1/A).
    """

    rot: np.ndarray
    prec: np.ndarray
    norm: float
    sigma_max: float


def domain_model(p: SimulationParams, recip: np.ndarray) -> DomainModel:
    """The :class:`DomainModel` of ``p`` for a crystal with reciprocal axes ``recip``."""
    rot = mosaic_rotations(p.mosaic, p.mosaic_domains, p.seed)
    p0 = blob_precision(recip, p.domain_size)
    prec = np.einsum("dij,jk,dlk->dil", rot, p0, rot)
    sigma_max = float(np.sqrt(np.max(np.linalg.eigvalsh(np.linalg.inv(p0)))))
    norm = float(np.sqrt(np.linalg.det(p0)) / (2.0 * np.pi) ** 1.5)
    return DomainModel(
        rot=np.ascontiguousarray(rot),
        prec=np.ascontiguousarray(prec),
        norm=norm,
        sigma_max=sigma_max,
    )


def effective_radius(p: SimulationParams, dstar: np.ndarray, recip: np.ndarray) -> np.ndarray:
    """Radius (1/A) of a ball holding every domain's blob (``N_SIGMA`` sd): ``d* sin(mosaic) +
    N_SIGMA sigma_max`` -- used only for the truth's bookkeeping (rocking width, fully
    recorded flag), never for rendering."""
    p0 = blob_precision(recip, p.domain_size)
    sigma_max = float(np.sqrt(np.max(np.linalg.eigvalsh(np.linalg.inv(p0)))))
    return dstar * np.sin(np.radians(p.mosaic)) + N_SIGMA * sigma_max


def phi_substeps(p: SimulationParams, first: int, count: int) -> np.ndarray:
    """(count, phi_steps) sub-step centres (radians) of 0-based images ``first...``."""
    k = np.arange(first, first + count, dtype=float)[:, None]
    j = np.arange(p.phi_steps, dtype=float)[None, :]
    return np.radians(p.phi_start + (k + (j + 0.5) / p.phi_steps) * p.osc_width)


def render_domains_batch(
    model, p: SimulationParams, first: int, count: int, det, dom: DomainModel | None = None
):
    """Spots (no background, no point-spread) of ``count`` images from 0-based image ``first``.

    Returns ``(spots, acc_g, acc_c)``: float32 (count, nslow, nfast) expected photons and, per
    reflection and image, the Lorentz-weighted fraction and the counts (float64 (N, count)).
    """
    recip = model.M @ model.U @ model.B
    dom = domain_model(p, recip) if dom is None else dom
    spots = np.zeros((count, p.nslow, p.nfast), dtype=np.float32)
    n = model.hkl.shape[0]
    reach = N_SIGMA * dom.sigma_max
    sign = -1.0 if p.reverse_phi else 1.0
    s0 = 1.0 / p.wavelength
    # Only reflections that can come within ``reach`` of the sphere during these images: over
    # half the batch's rotation span the distance t changes by at most r_perp * span / 2, and a
    # domain rotation moves r by at most d* * mosaic.
    half = 0.5 * np.radians(count * p.osc_width)
    mid = sign * np.radians(p.phi_start + (first + 0.5 * count) * p.osc_width)
    c, s = np.cos(mid), np.sin(mid)
    r0 = model.r0
    x = c * r0[:, 0] - s * r0[:, 1] + s0
    y = s * r0[:, 0] + c * r0[:, 1]
    t = np.sqrt(x * x + y * y + r0[:, 2] ** 2) - s0
    rperp = np.hypot(r0[:, 0], r0[:, 1])
    slack = reach + rperp * half + model.dstar * np.radians(p.mosaic) + 1e-12
    idx = np.nonzero(np.abs(t) <= slack)[0]
    acc_g = np.zeros((n, count))
    acc_c = np.zeros((n, count))
    sub_g = np.zeros((idx.size, count))
    sub_c = np.zeros((idx.size, count))
    render_domains(
        np.ascontiguousarray(r0[idx]),
        np.ascontiguousarray(model.intensity[idx], dtype=np.float64),
        dom.rot,
        dom.prec,
        dom.norm,
        N_SIGMA**2,
        reach,
        1.1 * reach,
        s0,
        sign,
        phi_substeps(p, first, count),
        float(np.radians(p.osc_width / p.phi_steps)),
        det.packed(),
        int(p.oversample),
        MAX_HALF_WINDOW,
        e_vector(p),
        float(p.polarisation),
        spots,
        sub_g,
        sub_c,
    )
    acc_g[idx] = sub_g
    acc_c[idx] = sub_c
    return spots, acc_g, acc_c


def blur(spots: np.ndarray, p: SimulationParams) -> np.ndarray:
    """Gaussian detector point-spread (sigma ``psf_sigma`` slow, ``psf_sigma_fast`` fast, px)
    applied to each image of ``spots`` (counts leaving the array edge are lost)."""
    from scipy.ndimage import gaussian_filter

    sig_f = p.psf_sigma if p.psf_sigma_fast is None else p.psf_sigma_fast
    out = np.empty_like(spots)
    for k in range(spots.shape[0]):
        gaussian_filter(
            spots[k], sigma=(p.psf_sigma, sig_f), output=out[k], mode="constant", truncate=5.0
        )
    return out
