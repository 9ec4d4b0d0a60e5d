"""Single-axis goniometer: rotation about +Z (or −Z with REVERSEPHI)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.geometry.rotation import rot_z


@dataclass(frozen=True)
class Goniometer:
    """Rotation axis along lab +Z; ``reverse_phi`` turns the sense of rotation."""

    reverse_phi: bool = False

    @property
    def axis(self) -> np.ndarray:
        """Unit rotation axis m (lab frame)."""
        return np.array([0.0, 0.0, -1.0 if self.reverse_phi else 1.0])

    def rotation(self, phi_deg: float) -> np.ndarray:
        """Rotation matrix R(φ) (right-handed about :attr:`axis`)."""
        return rot_z(-phi_deg if self.reverse_phi else phi_deg)

    def rotations(self, phi_deg: np.ndarray) -> np.ndarray:
        """Stack of rotation matrices, shape (N, 3, 3), for the angles ``phi_deg``."""
        t = np.radians(np.asarray(phi_deg, dtype=float)) * (-1.0 if self.reverse_phi else 1.0)
        c, s = np.cos(t), np.sin(t)
        out = np.zeros(t.shape + (3, 3))
        out[..., 0, 0], out[..., 0, 1] = c, -s
        out[..., 1, 0], out[..., 1, 1] = s, c
        out[..., 2, 2] = 1.0
        return out
