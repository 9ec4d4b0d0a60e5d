"""Rotation matrices (right-handed, angles in degrees) and MOSFLM missetting angles."""

from __future__ import annotations

import numpy as np


def rot_x(deg: float) -> np.ndarray:
    """Right-handed rotation by ``deg`` degrees about the lab X axis (3x3)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Right-handed rotation by ``deg`` degrees about the lab Y axis (3x3)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    """Right-handed rotation by ``deg`` degrees about the lab Z axis (3x3)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_axis(axis: np.ndarray, deg: float) -> np.ndarray:
    """Right-handed rotation by ``deg`` degrees about the unit vector ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    t = np.radians(deg)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(t) * kx + (1.0 - np.cos(t)) * (kx @ kx)


def misset_matrix(phix: float, phiy: float, phiz: float) -> np.ndarray:
    """MOSFLM missetting rotation M = Rz(PHIZ)·Ry(PHIY)·Rx(PHIX) (angles in degrees)."""
    return rot_z(phiz) @ rot_y(phiy) @ rot_x(phix)


def missets_from_matrix(m: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`misset_matrix`: (PHIX, PHIY, PHIZ) in degrees of a rotation matrix."""
    m = np.asarray(m, dtype=float)
    phiy = np.degrees(np.arcsin(np.clip(-m[2, 0], -1.0, 1.0)))
    phix = np.degrees(np.arctan2(m[2, 1], m[2, 2]))
    phiz = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
    return float(phix), float(phiy), float(phiz)


def orthonormalise(m: np.ndarray) -> np.ndarray:
    """Nearest proper rotation matrix to ``m`` (polar decomposition by SVD)."""
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=float))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r
