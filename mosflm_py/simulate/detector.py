"""Detector of the simulator: lab vectors, per-pixel resolution, background and masks.

Conventions (conventions.txt): with DETECTOR OMEGA 0 and two-theta 0 a pixel at detector
coordinates (Xd, Yd) mm is at lab ``P = (D, -(Xd - Xb), +(Yd - Yb))``.  Here the detector's slow
and fast unit vectors are first rotated about the beam (+X) by ``detector_omega`` (right-handed) and
then the whole detector (origin, axes, normal) about +Z by ``two_theta``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.simulate.crystal import rot_x, rot_z
from mosflm_py.simulate.params import SimulationParams


@dataclass(frozen=True)
class DetectorFrame:
    """Lab-frame description of the flat detector.

    Attributes
    ----------
    origin : (3,) mm, the BEAM point (foot of the normal through the crystal).
    e_slow, e_fast, normal : (3,) unit vectors.
    distance : mm.  beam : (Xb, Yb) mm.  pixel : (slow, fast) mm.
    """

    origin: np.ndarray
    e_slow: np.ndarray
    e_fast: np.ndarray
    normal: np.ndarray
    distance: float
    beam: tuple[float, float]
    pixel: tuple[float, float]

    def packed(self) -> np.ndarray:
        """The 17-vector the kernel takes: O, e_slow, e_fast, n, D, Xb, Yb, px_slow, px_fast."""
        return np.concatenate(
            [self.origin, self.e_slow, self.e_fast, self.normal,
             [self.distance, self.beam[0], self.beam[1], self.pixel[0], self.pixel[1]]]
        ).astype(np.float64)

    def project(self, s1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detector (X, Y) mm where rays along ``s1`` (N, 3) meet the plane (NaN if they miss)."""
        s1 = np.atleast_2d(s1)
        dn = s1 @ self.normal
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.where(dn > 1e-6, self.distance / dn, np.nan)
        q = mu[:, None] * s1 - self.origin
        return self.beam[0] + q @ self.e_slow, self.beam[1] + q @ self.e_fast

    def pixel_lab(self, slow: np.ndarray, fast: np.ndarray) -> np.ndarray:
        """Lab positions (mm) of continuous pixel coordinates (broadcast), shape (..., 3)."""
        xd = np.asarray(slow, dtype=float) * self.pixel[0] - self.beam[0]
        yd = np.asarray(fast, dtype=float) * self.pixel[1] - self.beam[1]
        return self.origin + xd[..., None] * self.e_slow + yd[..., None] * self.e_fast


def detector_frame(p: SimulationParams) -> DetectorFrame:
    """The :class:`DetectorFrame` of a parameter set."""
    rt = rot_z(p.two_theta)
    ro = rot_x(p.detector_omega)
    return DetectorFrame(
        origin=rt @ np.array([p.distance, 0.0, 0.0]),
        e_slow=rt @ ro @ np.array([0.0, -1.0, 0.0]),
        e_fast=rt @ ro @ np.array([0.0, 0.0, 1.0]),
        normal=rt @ np.array([1.0, 0.0, 0.0]),
        distance=float(p.distance),
        beam=(float(p.beam_x), float(p.beam_y)),
        pixel=(float(p.pixel_size), float(p.pixel_fast)),
    )


def pixel_dstar_and_obliquity(p: SimulationParams) -> tuple[np.ndarray, np.ndarray]:
    """d* (1/A) at every pixel centre and the relative solid angle ``(n.P / |P|)^3``."""
    det = detector_frame(p)
    xs = (np.arange(p.nslow) + 0.5) * det.pixel[0] - det.beam[0]
    yf = (np.arange(p.nfast) + 0.5) * det.pixel[1] - det.beam[1]
    px = det.origin[0] + xs[:, None] * det.e_slow[0] + yf[None, :] * det.e_fast[0]
    py = det.origin[1] + xs[:, None] * det.e_slow[1] + yf[None, :] * det.e_fast[1]
    pz = det.origin[2] + xs[:, None] * det.e_slow[2] + yf[None, :] * det.e_fast[2]
    norm = np.sqrt(px * px + py * py + pz * pz)
    cos2t = px / norm
    dstar = np.sqrt(np.maximum(0.0, 2.0 * (1.0 - cos2t))) / p.wavelength  # 2 sin(theta) / lambda
    obl = (det.distance / norm) ** 3
    return dstar, obl


def background_map(p: SimulationParams) -> np.ndarray:
    """Expected background photons per pixel per image (float64 (nslow, nfast)).

    ``(background + background_radial q exp(1 - q) + water_ring exp(-((d* - 0.27)/0.02)^2 / 2))``
    times the relative pixel solid angle, with ``q = d* / 0.4``.
    """
    dstar, obl = pixel_dstar_and_obliquity(p)
    q = dstar / 0.4
    bg = p.background + p.background_radial * q * np.exp(1.0 - q)
    if p.water_ring:
        bg = bg + p.water_ring * np.exp(-0.5 * ((dstar - 1.0 / 3.7) / 0.02) ** 2)
    return bg * obl


def module_gap_mask(nslow: int, nfast: int) -> np.ndarray:
    """True in the inter-module gaps of a Pilatus layout (487 x 195 px modules, gaps 7 / 17 px)."""
    fast_gap = (np.arange(nfast) % (487 + 7)) >= 487
    slow_gap = (np.arange(nslow) % (195 + 17)) >= 195
    return slow_gap[:, None] | fast_gap[None, :]


def backstop_mask(p: SimulationParams) -> np.ndarray:
    """True where the backstop shadows: disc of ``backstop_radius`` mm at the beam, arm to +slow."""
    out = np.zeros((p.nslow, p.nfast), dtype=bool)
    if p.backstop_radius <= 0:
        return out
    xs = (np.arange(p.nslow) + 0.5) * p.pixel_size - p.beam_x
    yf = (np.arange(p.nfast) + 0.5) * p.pixel_fast - p.beam_y
    disc = xs[:, None] ** 2 + yf[None, :] ** 2 <= p.backstop_radius**2
    arm = (xs[:, None] > 0) & (np.abs(yf[None, :]) <= 0.4 * p.backstop_radius)
    return disc | arm


def dead_pixel_mask(p: SimulationParams) -> np.ndarray:
    """``n_dead_pixels`` randomly placed dead pixels (deterministic from ``seed``)."""
    out = np.zeros((p.nslow, p.nfast), dtype=bool)
    if p.n_dead_pixels > 0:
        rng = np.random.default_rng([int(p.seed), 31337])
        idx = rng.choice(p.nslow * p.nfast, size=min(p.n_dead_pixels, p.nslow * p.nfast),
                         replace=False)
        out.ravel()[idx] = True
    return out
