"""Flat detector in the MOSFLM frame: BEAM, DISTANCE, TWOTHETA, OMEGA, TILT, TWIST, CCOMEGA, YSCALE.

Detector coordinates are MOSFLM's (mm): X along the slow pixel direction, Y along the fast one,
origin at the outer corner of the first pixel.  Default orientation (all angles zero): the plane is
normal to the beam at DISTANCE along +X, detector Y (fast) runs along lab +Z (the rotation axis),
detector X (slow) along lab −Y, so a point (X, Y) is at lab ``(D, −(X − Xb), Y − Yb)``.

The orientation is built as R = Rz(2θ) · R_tilt/twist · R_omega acting on the default axes:
``omega`` (+ ``ccomega``) turns the axes in the detector plane about the normal; ``tilt`` and
``twist`` (0.01°) turn the plane about its own X and Y axes through the BEAM point; ``two_theta``
swings everything about the rotation axis through the crystal.  With 2θ ≠ 0 the BEAM point is the
foot of the perpendicular from the crystal (the direct-beam position before the swing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.rotation import rot_axis, rot_x, rot_z

_NORMAL0 = np.array([1.0, 0.0, 0.0])
_SLOW0 = np.array([0.0, -1.0, 0.0])
_FAST0 = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Detector:
    """Flat-panel detector.

    Parameters
    ----------
    distance : crystal-to-detector distance (mm), along the detector normal.
    beam_x, beam_y : BEAM position (mm, MOSFLM X = slow, Y = fast).
    pixel_slow, pixel_fast : pixel sizes (mm).
    nslow, nfast : image size (pixels).
    two_theta : detector swing angle about the rotation axis (degrees).
    omega : in-plane rotation of the detector axes (degrees, DETECTOR OMEGA).
    tilt, twist : rotations about the detector X and Y axes (units of 0.01 degree).
    ccomega : rotation about the detector normal refined per image (degrees, CAMCON CCOM).
    yscale : ratio of true to nominal fast pixel size (DISTORTION YSCALE).
    """

    distance: float
    beam_x: float
    beam_y: float
    pixel_slow: float
    pixel_fast: float
    nslow: int
    nfast: int
    two_theta: float = 0.0
    omega: float = 0.0
    tilt: float = 0.0
    twist: float = 0.0
    ccomega: float = 0.0
    yscale: float = 1.0

    def __post_init__(self) -> None:
        if not self.distance > 0:
            raise GeometryError(
                f"crystal to detector distance must be positive, got {self.distance}"
            )
        if not (self.pixel_slow > 0 and self.pixel_fast > 0):
            raise GeometryError("pixel sizes must be positive")
        if not (self.nslow > 0 and self.nfast > 0):
            raise GeometryError("image size must be positive")

    def replace(self, **changes: float) -> Detector:
        """Copy with some parameters changed."""
        return replace(self, **changes)

    # -- frame ----------------------------------------------------------------------------------
    @cached_property
    def _frame(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r_om = rot_x(self.omega + self.ccomega)
        slow, fast = r_om @ _SLOW0, r_om @ _FAST0
        r_tt = rot_axis(fast, self.twist / 100.0) @ rot_axis(slow, self.tilt / 100.0)
        r2t = rot_z(self.two_theta)
        r = r2t @ r_tt
        normal = r @ _NORMAL0
        return r2t @ (self.distance * _NORMAL0), normal, r @ slow, r @ fast

    @property
    def origin(self) -> np.ndarray:
        """Lab position (mm) of the BEAM point (foot of the perpendicular at 2θ = 0)."""
        return self._frame[0]

    @property
    def normal(self) -> np.ndarray:
        """Unit detector normal (pointing away from the crystal)."""
        return self._frame[1]

    @property
    def slow_axis(self) -> np.ndarray:
        """Unit lab vector of increasing detector X (slow)."""
        return self._frame[2]

    @property
    def fast_axis(self) -> np.ndarray:
        """Unit lab vector of increasing detector Y (fast)."""
        return self._frame[3]

    @property
    def size_mm(self) -> tuple[float, float]:
        """Detector extent (mm) along X (slow) and Y (fast)."""
        return self.nslow * self.pixel_slow, self.nfast * self.pixel_fast

    # -- conversions ----------------------------------------------------------------------------
    def px_to_mm(self, slow: np.ndarray, fast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Continuous pixel coordinates (slow, fast) → MOSFLM (X, Y) mm."""
        return np.asarray(slow) * self.pixel_slow, np.asarray(fast) * self.pixel_fast

    def mm_to_px(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MOSFLM (X, Y) mm → continuous pixel coordinates (slow, fast)."""
        return np.asarray(x) / self.pixel_slow, np.asarray(y) / self.pixel_fast

    def mm_to_lab(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Lab positions (N, 3) in mm of detector points (X, Y) mm."""
        o, _, es, ef = self._frame
        dx = np.atleast_1d(np.asarray(x, dtype=float)) - self.beam_x
        dy = (np.atleast_1d(np.asarray(y, dtype=float)) - self.beam_y) * self.yscale
        return o[None, :] + dx[:, None] * es[None, :] + dy[:, None] * ef[None, :]

    def lab_to_mm(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where rays from the crystal along ``directions`` (N, 3) meet the detector plane.

        Returns
        -------
        x, y : MOSFLM coordinates (mm); NaN where the ray misses the plane.
        ok : bool array, True where the ray hits the plane (in front of the crystal).
        """
        o, n, es, ef = self._frame
        v = np.atleast_2d(np.asarray(directions, dtype=float))
        vn = v @ n
        ok = vn > 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(ok, (o @ n) / np.where(ok, vn, 1.0), np.nan)
        p = v * t[:, None] - o[None, :]
        x = self.beam_x + p @ es
        y = self.beam_y + (p @ ef) / self.yscale
        return x, y, ok

    def px_to_lab(self, slow: np.ndarray, fast: np.ndarray) -> np.ndarray:
        """Lab positions (N, 3) in mm of continuous pixel coordinates (slow, fast)."""
        return self.mm_to_lab(*self.px_to_mm(slow, fast))

    def s1_from_mm(self, x: np.ndarray, y: np.ndarray, wavelength: float) -> np.ndarray:
        """Diffracted wave vectors s1 (N, 3), |s1| = 1/λ, for detector points (X, Y) mm."""
        p = self.mm_to_lab(x, y)
        return p / (np.linalg.norm(p, axis=1)[:, None] * wavelength)

    def two_theta_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Scattering angle 2θ (degrees) at detector points (X, Y) mm."""
        p = self.mm_to_lab(x, y)
        c = p[:, 0] / np.linalg.norm(p, axis=1)
        return np.degrees(np.arccos(np.clip(c, -1, 1)))

    def resolution_of(self, x: np.ndarray, y: np.ndarray, wavelength: float) -> np.ndarray:
        """Resolution d (Å) at detector points (X, Y) mm (inf at the direct beam)."""
        theta = np.radians(self.two_theta_of(x, y)) / 2.0
        with np.errstate(divide="ignore"):
            return wavelength / (2.0 * np.sin(theta))

    def resolution_map(self, wavelength: float, step: int = 1) -> np.ndarray:
        """d-spacing (Å, float32) at the centre of every ``step``-th pixel, shape (nslow, nfast)."""
        s = (np.arange(0, self.nslow, step) + 0.5) * self.pixel_slow
        f = (np.arange(0, self.nfast, step) + 0.5) * self.pixel_fast
        xx, yy = np.meshgrid(s, f, indexing="ij")
        d = self.resolution_of(xx.ravel(), yy.ravel(), wavelength)
        return d.reshape(xx.shape).astype(np.float32)

    def search_radius(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Radius (mm) of detector points (X, Y) mm from the direct beam, as D·tan 2θ.

        On a detector normal to the beam this is the distance from the direct-beam position on
        the detector (MOSFLM's RMIN/RMAX, resolution rings); on a swung (two-theta) or tilted
        detector it is the same radius measured as a scattering angle, so a search window means
        the same on any detector (the direct beam may be off a swung detector).  Infinite at
        2θ >= 90°.
        """
        x = np.atleast_1d(np.asarray(x, float))
        if not len(x):
            return np.zeros(0)
        tt = np.radians(self.two_theta_of(x, np.atleast_1d(np.asarray(y, float))))
        with np.errstate(invalid="ignore", over="ignore"):
            return np.where(tt < np.pi / 2 - 1e-9, self.distance * np.tan(tt), np.inf)

    def radius_at_resolution(self, d: float, wavelength: float) -> float:
        """:meth:`search_radius` (mm) of resolution *d* (Å): D·tan 2θ, 2θ = 2 asin(λ / 2d)."""
        two_theta = 2.0 * np.arcsin(min(wavelength / (2.0 * d), 1.0))
        return float(self.distance * np.tan(two_theta))

    def inscribed_radius(self) -> float:
        """Radius (mm) of the largest circle about the direct beam that lies on the detector.

        About where the direct beam meets the (swung) detector plane; 0 when the beam misses the
        plane or a swung detector's beam position is off the panel (a search window is then the
        whole detector).  An unswung detector whose beam lies off the panel gets the distance to
        the far edges instead.
        """
        xmax, ymax = self.size_mm
        hit = self.beam_hit_mm()
        if hit is None:
            return 0.0
        bx, by = hit
        r = min(bx, xmax - bx, by, ymax - by)
        if r <= 0:
            if self.two_theta != 0.0:
                return 0.0
            r = max(min(abs(bx), abs(xmax - bx)), min(abs(by), abs(ymax - by)))
        return float(r)

    def beam_hit_mm(self) -> tuple[float, float] | None:
        """Where the direct beam meets the detector (MOSFLM mm), None if it misses."""
        x, y, ok = self.lab_to_mm(np.array([[1.0, 0.0, 0.0]]))
        return (float(x[0]), float(y[0])) if ok[0] else None

    def max_resolution(self, wavelength: float) -> float:
        """Highest resolution (smallest d, Å) recorded anywhere on the detector (corners)."""
        sx, sy = self.size_mm
        xs = np.array([0.0, sx, 0.0, sx, self.beam_x, self.beam_x, 0.0, sx])
        ys = np.array([0.0, 0.0, sy, sy, 0.0, sy, self.beam_y, self.beam_y])
        return float(np.min(self.resolution_of(xs, ys, wavelength)))
