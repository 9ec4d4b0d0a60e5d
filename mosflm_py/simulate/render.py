"""Crystal model set-up and validating wrappers of the simulator kernels.

:func:`crystal_model` turns :class:`SimulationParams` into reflection arrays;
:func:`sweep` runs :func:`mosflm_py.kernels.simulate.sweep_records` over a range of images and
:func:`render` turns its records into expected-photon images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import BadData, BadParameter
from mosflm_py.kernels.simulate import render_records, sweep_records
from mosflm_py.simulate.crystal import (
    b_matrix,
    generate_hkl,
    misset_matrix,
    random_rotation,
    wilson_intensities,
)
from mosflm_py.simulate.detector import DetectorFrame, detector_frame
from mosflm_py.simulate.domains import effective_radius
from mosflm_py.simulate.params import SimulationParams, e_vector

STEPS_PER_WIDTH = 24
"""Minimum phi sub-steps per rocking width (|dt/dphi| <= r_perp bounds the true width)."""
MIN_STEPS_PER_IMAGE = 20
"""Minimum phi sub-steps per image (osc / 20)."""


@dataclass(frozen=True)
class CrystalModel:
    """Reflections of a simulated crystal.

    Attributes
    ----------
    hkl : (N, 3) int32.  intensity : (N,) I_true (photons, LP-corrected full intensity).
    r0 : (N, 3) 1/A, ``M U B h`` at phi = 0.  dstar : (N,) 1/A.  rho : (N,) ball radius, 1/A.
    B, U, M : 3x3.  A : ``lambda U B`` (MOSFLM A matrix, before missets).
    """

    hkl: np.ndarray
    intensity: np.ndarray
    r0: np.ndarray
    dstar: np.ndarray
    rho: np.ndarray
    B: np.ndarray
    U: np.ndarray
    M: np.ndarray
    A: np.ndarray


def max_resolution_dstar(p: SimulationParams) -> float:
    """d* (1/A) of the detector corner farthest from the beam (upper bound seen by the detector)."""
    det = detector_frame(p)
    corners = det.pixel_lab(np.array([0, 0, p.nslow, p.nslow]), np.array([0, p.nfast, 0, p.nfast]))
    cos2t = corners[:, 0] / np.linalg.norm(corners, axis=1)
    return float(np.max(np.sqrt(2.0 * (1.0 - cos2t)) / p.wavelength))


def crystal_model(p: SimulationParams) -> CrystalModel:
    """Reflections (absences removed), intensities, reciprocal vectors and mosaic-ball radii."""
    p.validate()
    B = b_matrix(p.cell)
    U = random_rotation(p.seed) if p.U is None else np.asarray(p.U, dtype=float)
    M = misset_matrix(p.missets)
    d_min = p.resolution if p.resolution is not None else 1.0 / max_resolution_dstar(p)
    d_min = max(d_min, 0.5 * p.wavelength * 1.0001)
    if p.intensities is not None:
        items = list(p.intensities.items())
        if not items:
            raise BadData("Simulation intensities mapping is empty.")
        hkl = np.array([k for k, _ in items], dtype=np.int32).reshape(-1, 3)
        inten = np.array([v for _, v in items], dtype=float)
        dstar = np.linalg.norm(hkl @ B.T, axis=1)
        keep = (dstar > 0) & (dstar <= 1.0 / d_min)
        hkl, inten = hkl[keep], inten[keep]
    else:
        hkl = generate_hkl(p.cell, p.space_group, d_min)
        inten = wilson_intensities(hkl, p.cell, p.space_group, p.mean_intensity, p.wilson_b,
                                   p.seed)
    r0 = (M @ U @ B @ hkl.T.astype(float)).T
    dstar = np.linalg.norm(r0, axis=1)
    sin_t = np.clip(0.5 * p.wavelength * dstar, 0.0, 0.999999)
    tan_t = sin_t / np.sqrt(1.0 - sin_t**2)
    delta = 0.5 * (p.divergence_h + p.divergence_v)
    if p.model == "domains":
        rho = effective_radius(p, dstar, M @ U @ B)
    else:
        rho = 0.5 * dstar * np.radians(p.mosaic + delta) + 0.5 * dstar * tan_t * p.dispersion
    return CrystalModel(
        hkl=np.ascontiguousarray(hkl, dtype=np.int32),
        intensity=np.ascontiguousarray(inten, dtype=float),
        r0=np.ascontiguousarray(r0),
        dstar=dstar,
        rho=np.ascontiguousarray(rho),
        B=B,
        U=U,
        M=M,
        A=p.wavelength * U @ B,
    )


@dataclass(frozen=True)
class Records:
    """Sub-step records of the sweep (see :mod:`mosflm_py.kernels.simulate`).

    ``refl`` index into the model, ``img`` index into the images swept (0-based, relative to the
    first image passed to :func:`sweep`), ``pos`` (slow, fast) continuous pixels, ``g`` Lorentz-
    weighted fraction (sums to 1/|zeta| over a crossing), ``pol`` polarisation factor.
    """

    refl: np.ndarray
    img: np.ndarray
    pos: np.ndarray
    g: np.ndarray
    pol: np.ndarray


def phi_edges_deg(p: SimulationParams, first: int, count: int) -> np.ndarray:
    """Image phi boundaries (deg) of ``count`` images starting at 0-based image ``first``."""
    k = np.arange(first, first + count + 1, dtype=float)
    return p.phi_start + k * p.osc_width


def sweep(
    model: CrystalModel,
    p: SimulationParams,
    first: int,
    count: int,
    det: DetectorFrame | None = None,
) -> Records:
    """Records of all reflections over ``count`` images starting at 0-based image ``first``."""
    if count < 1:
        raise BadParameter("Need at least one image to simulate.")
    det = detector_frame(p) if det is None else det
    edges = np.radians(phi_edges_deg(p, first, count))
    refl, img, pos, g, pol = sweep_records(
        model.r0, model.rho, 1.0 / p.wavelength, -1.0 if p.reverse_phi else 1.0, edges,
        STEPS_PER_WIDTH, MIN_STEPS_PER_IMAGE, det.packed(), e_vector(p), float(p.polarisation),
    )
    return Records(refl=refl, img=img, pos=pos, g=g, pol=pol)


def render(records: Records, counts: np.ndarray, p: SimulationParams, count: int,
           base: np.ndarray | None = None) -> np.ndarray:
    """Expected photons (float32 (count, nslow, nfast)) from records and per-record counts.

    ``base`` (nslow, nfast), e.g. the background, is added to every image (default zero).
    """
    order = np.argsort(records.img, kind="stable")
    img = records.img[order]
    starts = np.searchsorted(img, np.arange(count + 1)).astype(np.int64)
    sig_s = float(p.psf_sigma)
    sig_f = float(p.psf_sigma if p.psf_sigma_fast is None else p.psf_sigma_fast)
    half = int(np.ceil(5.0 * max(sig_s, sig_f))) + 1
    if base is None:
        out = np.zeros((count, p.nslow, p.nfast), dtype=np.float32)
    else:
        if base.shape != (p.nslow, p.nfast):
            raise BadData(f"Base image shape {base.shape} does not match the detector.")
        out = np.empty((count, p.nslow, p.nfast), dtype=np.float32)
        out[:] = base
    render_records(starts, np.ascontiguousarray(records.pos[order]),
                   np.ascontiguousarray(counts[order], dtype=np.float64), sig_s, sig_f, half, out)
    return out
