"""The reflections to integrate on one image, as plain arrays (input of the integration functions).

Prediction itself returns :class:`mosflm_py.geometry.prediction.Predictions` (the one prediction
result type); the caller picks the reflections to integrate from it and hands their pixel
positions, indices, recorded fractions and flags over as :class:`Targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError
from mosflm_py.geometry.rocking_curve import curve_density


@dataclass(frozen=True)
class Targets:
    """Reflections to integrate on one image (picked from the predictions).

    x_px, y_px : (N,) float64 continuous pixel coordinates, slow then fast (pixel centres i+0.5).
    hkl : (N, 3) int32.  fraction : (N,) fraction recorded on this image (1 = full).
    flags : (N,) int32 extra FLAG bits from the caller, OR-ed into the output flags.
    """

    x_px: np.ndarray
    y_px: np.ndarray
    hkl: np.ndarray
    fraction: np.ndarray
    flags: np.ndarray

    @classmethod
    def from_arrays(cls, x_px, y_px, hkl=None, fraction=None, flags=None) -> Targets:
        x = np.ascontiguousarray(x_px, np.float64).reshape(-1)
        y = np.ascontiguousarray(y_px, np.float64).reshape(-1)
        n = x.size
        if y.size != n:
            raise IntegrationError("x_px and y_px must have the same length")
        h = (np.zeros((n, 3), np.int32) if hkl is None
             else np.ascontiguousarray(hkl, np.int32).reshape(n, 3))
        f = np.ones(n) if fraction is None else np.ascontiguousarray(fraction, np.float64)
        g = np.zeros(n, np.int32) if flags is None else np.ascontiguousarray(flags, np.int32)
        if f.shape != (n,) or g.shape != (n,):
            raise IntegrationError("fraction and flags need one value per reflection")
        return cls(x, y, h, f, g)

    def __len__(self) -> int:
        return int(self.x_px.size)


def part_centroid_phi(phi_c: np.ndarray, width: np.ndarray, phi1: float, phi2: float,
                      n: int = 33, ball: np.ndarray | None = None) -> np.ndarray:
    """Rotation angle (degrees) at the centroid of the part of each rocking curve in [phi1, phi2].

    The recorded intensity density is that of the rocking-curve model
    (:func:`mosflm_py.geometry.rocking_curve.curve_density`: dP/dq = 6 q (1 - q),
    q = (phi - phi_c) / W + 1/2, for the swept ball of conventions.txt); a part recorded on
    one image is centred where its share of that density is, not at phi_c, and on the
    detector its spot lies where the reflection is at that angle.  Predicting partial parts
    there, instead of at phi_c, keeps the profile on the spot.
    Reflections with zero width, or with no overlap, get phi_c.

    Parameters
    ----------
    phi_c, width : (N,) rocking-curve centres and full extents (degrees).
    phi1, phi2 : the image's rotation range (degrees).
    n : quadrature points (Gauss-Legendre) over the overlap.
    ball : (N,) uniform-ball part of each width (degrees); None: all of it.
    """
    phi_c = np.asarray(phi_c, np.float64)
    w = np.asarray(width, np.float64)
    lo = np.maximum(phi1, phi_c - 0.5 * w)
    hi = np.minimum(phi2, phi_c + 0.5 * w)
    ok = (w > 1e-9) & (hi > lo)
    t, wt = np.polynomial.legendre.leggauss(n)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    ph = mid[:, None] + half[:, None] * t[None, :]
    ww = np.where(ok, w, 1.0)[:, None] * np.ones_like(ph)
    bb = None if ball is None else np.asarray(ball, np.float64)[:, None] * np.ones_like(ph)
    dens = curve_density(ph - phi_c[:, None], ww, bb) * wt[None, :]
    tot = dens.sum(axis=1)
    cen = np.where(tot > 0, (dens * ph).sum(axis=1) / np.where(tot > 0, tot, 1.0), phi_c)
    return np.where(ok, cen, phi_c)
