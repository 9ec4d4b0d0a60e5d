"""Unit cell, Busing–Levy B matrix, orientation U, missets and MOSFLM's A = λ·U·B.

References
----------
Busing, W. R. & Levy, H. A. (1967). Acta Cryst. 22, 457–464.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.rotation import misset_matrix, orthonormalise

Cell = tuple[float, float, float, float, float, float]


def _check_cell(cell: Cell) -> tuple[float, ...]:
    c = tuple(float(v) for v in cell)
    if len(c) != 6:
        raise GeometryError(f"a cell needs 6 parameters (a b c alpha beta gamma), got {len(c)}")
    a, b, cc, al, be, ga = c
    if min(a, b, cc) <= 0:
        raise GeometryError(f"cell edges must be positive, got {a} {b} {cc}")
    cal, cbe, cga = np.cos(np.radians([al, be, ga]))
    vol2 = 1 - cal**2 - cbe**2 - cga**2 + 2 * cal * cbe * cga
    if vol2 <= 1e-12:
        raise GeometryError(f"cell angles {al} {be} {ga} do not describe a real cell")
    return c


def cell_volume(cell: Cell) -> float:
    """Unit-cell volume (Å³)."""
    a, b, c, al, be, ga = _check_cell(cell)
    cal, cbe, cga = np.cos(np.radians([al, be, ga]))
    return float(a * b * c * np.sqrt(1 - cal**2 - cbe**2 - cga**2 + 2 * cal * cbe * cga))


def reciprocal_cell(cell: Cell) -> Cell:
    """Reciprocal cell (a*, b*, c* in 1/Å; α*, β*, γ* in degrees)."""
    a, b, c, al, be, ga = _check_cell(cell)
    sal, sbe, sga = np.sin(np.radians([al, be, ga]))
    cal, cbe, cga = np.cos(np.radians([al, be, ga]))
    v = cell_volume(cell)
    ast, bst, cst = b * c * sal / v, a * c * sbe / v, a * b * sga / v
    calst = (cbe * cga - cal) / (sbe * sga)
    cbest = (cal * cga - cbe) / (sal * sga)
    cgast = (cal * cbe - cga) / (sal * sbe)
    angs = np.degrees(np.arccos(np.clip([calst, cbest, cgast], -1, 1)))
    return (float(ast), float(bst), float(cst), float(angs[0]), float(angs[1]), float(angs[2]))


def b_matrix(cell: Cell) -> np.ndarray:
    """Busing–Levy B (1/Å): columns are a*, b*, c* in the crystal Cartesian frame.

    B = [[a*, b* cos γ*, c* cos β*], [0, b* sin γ*, −c* sin β* cos α], [0, 0, 1/c]].
    """
    a, b, c, al, be, ga = _check_cell(cell)
    ast, bst, cst, alst, best, gast = reciprocal_cell(cell)
    cal = np.cos(np.radians(al))
    return np.array(
        [
            [ast, bst * np.cos(np.radians(gast)), cst * np.cos(np.radians(best))],
            [0.0, bst * np.sin(np.radians(gast)), -cst * np.sin(np.radians(best)) * cal],
            [0.0, 0.0, 1.0 / c],
        ]
    )


def cell_from_metric(g: np.ndarray) -> Cell:
    """Cell (Å, degrees) from a real-space metric tensor G (3x3, Å²)."""
    g = np.asarray(g, dtype=float)
    a, b, c = np.sqrt(np.diag(g))
    al = np.degrees(np.arccos(np.clip(g[1, 2] / (b * c), -1, 1)))
    be = np.degrees(np.arccos(np.clip(g[0, 2] / (a * c), -1, 1)))
    ga = np.degrees(np.arccos(np.clip(g[0, 1] / (a * b), -1, 1)))
    return (float(a), float(b), float(c), float(al), float(be), float(ga))


def cell_from_b(bmat: np.ndarray) -> Cell:
    """Cell of any matrix whose columns are a*, b*, c* (e.g. B, U·B or A/λ)."""
    gstar = np.asarray(bmat, dtype=float).T @ np.asarray(bmat, dtype=float)
    return cell_from_metric(np.linalg.inv(gstar))


def d_spacing(cell: Cell, hkl: np.ndarray) -> np.ndarray:
    """Resolution d (Å) of Miller indices ``hkl`` (N,3)."""
    r = np.asarray(hkl, dtype=float) @ b_matrix(cell).T
    return 1.0 / np.linalg.norm(r, axis=1)


def u_b_from_ub(ub: np.ndarray) -> tuple[np.ndarray, Cell]:
    """Split a U·B matrix (1/Å) into the rotation U and the cell (B recomputed from the cell)."""
    cell = cell_from_b(ub)
    u = orthonormalise(np.asarray(ub, dtype=float) @ np.linalg.inv(b_matrix(cell)))
    return u, cell


@dataclass(frozen=True, eq=False)
class Crystal:
    """Crystal model in the MOSFLM frame.

    Parameters
    ----------
    cell : (a, b, c, α, β, γ) in Å and degrees.
    U : 3x3 rotation (crystal Cartesian → lab at φ = 0, before missets).
    missets : (PHIX, PHIY, PHIZ) missetting angles (degrees), M = Rz·Ry·Rx.
    space_group : space-group symbol (Hermann–Mauguin, e.g. ``"P 21 21 21"``).
    mosaic : mosaic spread (degrees, full width of the rocking curve in the uniform-ball model of
        :func:`mosflm_py.geometry.prediction.rocking_width`, as MOSFLM's mosaicity).
    domain_width : reciprocal-space broadening from the finite mosaic-block size (1/Å, about
        1/block size; 0 = large blocks).  Refined by post-refinement with the mosaic spread.
    """

    cell: Cell
    U: np.ndarray = field(default_factory=lambda: np.eye(3))
    missets: tuple[float, float, float] = (0.0, 0.0, 0.0)
    space_group: str = "P 1"
    mosaic: float = 0.0
    domain_width: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cell", tuple(float(v) for v in _check_cell(self.cell)))
        u = np.array(self.U, dtype=float).reshape(3, 3)
        if not np.allclose(u @ u.T, np.eye(3), atol=1e-5) or np.linalg.det(u) < 0:
            raise GeometryError("U must be a proper rotation matrix")
        u.setflags(write=False)
        object.__setattr__(self, "U", u)
        object.__setattr__(self, "missets", tuple(float(v) for v in self.missets))

    @property
    def B(self) -> np.ndarray:  # noqa: N802 - crystallographic name
        """Busing–Levy B matrix (1/Å)."""
        return b_matrix(self.cell)

    @property
    def M(self) -> np.ndarray:  # noqa: N802
        """Missetting rotation Rz(PHIZ)·Ry(PHIY)·Rx(PHIX)."""
        return misset_matrix(*self.missets)

    @property
    def UB(self) -> np.ndarray:  # noqa: N802
        """M·U·B (1/Å): r(φ=0) = UB·h."""
        return self.M @ self.U @ self.B

    def a_matrix(self, wavelength: float) -> np.ndarray:
        """MOSFLM A matrix λ·U·B (dimensionless, without missets)."""
        return wavelength * (self.U @ self.B)

    @classmethod
    def from_a_matrix(
        cls,
        a: np.ndarray,
        wavelength: float,
        missets: tuple[float, float, float] = (0.0, 0.0, 0.0),
        space_group: str = "P 1",
        mosaic: float = 0.0,
    ) -> Crystal:
        """Crystal from a MOSFLM A matrix (λ·U·B) and the wavelength (Å)."""
        u, cell = u_b_from_ub(np.asarray(a, dtype=float) / wavelength)
        return cls(cell=cell, U=u, missets=missets, space_group=space_group, mosaic=mosaic)

    @classmethod
    def from_ub(cls, ub: np.ndarray, space_group: str = "P 1", mosaic: float = 0.0) -> Crystal:
        """Crystal from a U·B matrix (1/Å) with zero missets."""
        u, cell = u_b_from_ub(ub)
        return cls(cell=cell, U=u, space_group=space_group, mosaic=mosaic)

    def replace(self, **changes: object) -> Crystal:
        """Copy with fields replaced (as :func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)
