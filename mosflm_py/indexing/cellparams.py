"""Symmetry-constrained cell parameters and small-rotation orientation parametrisation."""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.crystal import b_matrix
from mosflm_py.geometry.rotation import orthonormalise, rot_x, rot_y, rot_z

Cell = tuple[float, float, float, float, float, float]

# names of the free parameters per crystal family (first letter of the Bravais symbol)
FREE_PARAMS = {
    "a": ("a", "b", "c", "alpha", "beta", "gamma"),
    "m": ("a", "b", "c", "beta"),
    "o": ("a", "b", "c"),
    "t": ("a", "c"),
    "h": ("a", "c"),
    "c": ("a",),
}


def cell_to_params(cell: Cell, bravais: str) -> np.ndarray:
    """Free cell parameters (Angstrom, degrees) of a (regularized) conventional cell."""
    a, b, c, al, be, ga = cell
    fam = bravais[0]
    if fam == "a":
        return np.array([a, b, c, al, be, ga], dtype=float)
    if fam == "m":
        return np.array([a, b, c, be], dtype=float)
    if fam == "o":
        return np.array([a, b, c], dtype=float)
    if fam in "th":
        return np.array([(a + b) / 2, c], dtype=float)
    return np.array([(a + b + c) / 3], dtype=float)


def params_to_cell(p: np.ndarray, bravais: str) -> Cell:
    """Conventional cell (Angstrom, degrees) from free parameters."""
    fam = bravais[0]
    p = [float(x) for x in p]
    if fam == "a":
        return (p[0], p[1], p[2], p[3], p[4], p[5])
    if fam == "m":
        return (p[0], p[1], p[2], 90.0, p[3], 90.0)
    if fam == "o":
        return (p[0], p[1], p[2], 90.0, 90.0, 90.0)
    if fam == "t":
        return (p[0], p[0], p[1], 90.0, 90.0, 90.0)
    if fam == "h":
        return (p[0], p[0], p[1], 90.0, 90.0, 120.0)
    return (p[0], p[0], p[0], 90.0, 90.0, 90.0)


def small_rotation(angles_mrad: np.ndarray) -> np.ndarray:
    """Rotation Rz . Ry . Rx for three small angles (milliradians) about lab X, Y, Z."""
    deg = np.degrees(np.asarray(angles_mrad, dtype=float) * 1e-3)
    return rot_z(deg[2]) @ rot_y(deg[1]) @ rot_x(deg[0])


def u_from_ub(ub: np.ndarray, cell: Cell) -> np.ndarray:
    """Nearest rotation U with ``U . B(cell) ~ ub`` (polar decomposition)."""
    return orthonormalise(np.asarray(ub, dtype=float) @ np.linalg.inv(b_matrix(cell)))


def ub_from_params(u0: np.ndarray, rot_mrad: np.ndarray, cell_p: np.ndarray, bravais: str):
    """``UB = R(rot) . U0 . B(cell)`` (1/Angstrom) and the cell."""
    cell = params_to_cell(cell_p, bravais)
    return small_rotation(rot_mrad) @ u0 @ b_matrix(cell), cell
