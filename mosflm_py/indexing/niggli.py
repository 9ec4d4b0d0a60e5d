"""Niggli reduction of a real-space lattice basis (Křivý & Gruber 1976, with tolerances).

The reduction works on the basis vectors themselves (rows of a 3x3 array, Angstrom) and keeps the
integer transformation ``T`` in step, so that ``reduced = T @ basis`` with ``det(T) = +1``.
Comparisons use the tolerance ``eps = rel_eps * V**(2/3)`` (V = cell volume) as recommended by
Grosse-Kunstleve, Sauter & Adams (2004) *Acta Cryst.* A60, 1-6.

G6 vector convention (Andrews & Bernstein): ``(A, B, C, xi, eta, zeta) = (a.a, b.b, c.c, 2 b.c,
2 a.c, 2 a.b)`` in Angstrom^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Step matrices acting on the rows (a, b, c) of a basis.
_T1 = np.array([[0, -1, 0], [-1, 0, 0], [0, 0, -1]])  # swap a, b
_T2 = np.array([[-1, 0, 0], [0, 0, -1], [0, -1, 0]])  # swap b, c
_T8 = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 1]])  # c <- a + b + c


def g6_from_basis(basis: np.ndarray) -> np.ndarray:
    """G6 vector ``(a.a, b.b, c.c, 2b.c, 2a.c, 2a.b)`` of a basis given as rows (Angstrom^2)."""
    v = np.asarray(basis, dtype=float)
    g = v @ v.T
    return np.array([g[0, 0], g[1, 1], g[2, 2], 2 * g[1, 2], 2 * g[0, 2], 2 * g[0, 1]])


def cell_from_basis(basis: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Cell ``(a, b, c, alpha, beta, gamma)`` (Angstrom, degrees) of a basis given as rows."""
    return cell_from_metric(metric_from_basis(basis))


def metric_from_basis(basis: np.ndarray) -> np.ndarray:
    """Metric tensor ``G = V V^T`` of a basis given as rows (Angstrom^2)."""
    v = np.asarray(basis, dtype=float)
    return v @ v.T


def cell_from_metric(g: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Cell ``(a, b, c, alpha, beta, gamma)`` (Angstrom, degrees) from a 3x3 metric tensor."""
    g = np.asarray(g, dtype=float)
    a, b, c = np.sqrt(np.diag(g))
    cos_al = np.clip(g[1, 2] / (b * c), -1, 1)
    cos_be = np.clip(g[0, 2] / (a * c), -1, 1)
    cos_ga = np.clip(g[0, 1] / (a * b), -1, 1)
    al, be, ga = np.degrees(np.arccos([cos_al, cos_be, cos_ga]))
    return (float(a), float(b), float(c), float(al), float(be), float(ga))


def metric_from_cell(cell) -> np.ndarray:
    """Metric tensor (Angstrom^2) of a cell ``(a, b, c, alpha, beta, gamma)`` (Angstrom, deg)."""
    a, b, c, al, be, ga = (float(x) for x in cell)
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )


def basis_from_cell(cell) -> np.ndarray:
    """A real-space basis (rows, Angstrom) with the given cell: a along x, b in the xy plane."""
    g = metric_from_cell(cell)
    lower = np.linalg.cholesky(g)  # rows of L satisfy L L^T = G
    return lower


@dataclass(frozen=True)
class NiggliResult:
    """Outcome of :func:`niggli_reduce`.

    Attributes
    ----------
    basis : ndarray (3, 3)
        Reduced basis, rows a, b, c (Angstrom), right-handed if the input was.
    transform : ndarray (3, 3) int
        ``basis = transform @ input_basis``; ``det(transform) = +1``.
    g6 : ndarray (6,)
        G6 vector of the reduced basis (Angstrom^2).
    steps : tuple of int
        Křivý–Gruber steps (1..8) applied, in order (for diagnostics and tests).
    """

    basis: np.ndarray
    transform: np.ndarray
    g6: np.ndarray
    steps: tuple[int, ...]

    @property
    def cell(self) -> tuple[float, float, float, float, float, float]:
        """Reduced cell ``(a, b, c, alpha, beta, gamma)`` (Angstrom, degrees)."""
        return cell_from_basis(self.basis)


def _sign(x: float, eps: float) -> int:
    return 1 if x > eps else (-1 if x < -eps else 0)


def niggli_reduce(basis: np.ndarray, rel_eps: float = 1e-5, max_iter: int = 1000) -> NiggliResult:
    """Niggli-reduce a lattice basis by the Křivý–Gruber algorithm.

    Parameters
    ----------
    basis : array (3, 3)
        Real-space basis vectors as rows (Angstrom). Any non-singular basis.
    rel_eps : float
        Relative tolerance; comparisons use ``eps = rel_eps * V**(2/3)`` (Angstrom^2).
    max_iter : int
        Safety limit on the number of passes.

    Returns
    -------
    NiggliResult
        Reduced basis, integer transformation (det +1), G6 and the steps applied.

    References
    ----------
    Křivý & Gruber (1976) *Acta Cryst.* A32, 297-298; Grosse-Kunstleve, Sauter & Adams (2004)
    *Acta Cryst.* A60, 1-6.
    """
    v0 = np.asarray(basis, dtype=float)
    if v0.shape != (3, 3):
        raise ValueError("basis must be 3x3 (rows a, b, c)")
    vol = abs(np.linalg.det(v0))
    if not np.isfinite(vol) or vol < 1e-9:
        raise ValueError("basis is singular")
    eps = rel_eps * vol ** (2.0 / 3.0)
    t = np.eye(3, dtype=np.int64)
    steps: list[int] = []

    def g6() -> np.ndarray:
        return g6_from_basis(t @ v0)

    for _ in range(max_iter):
        A, B, C, xi, eta, zeta = g6()
        # A1
        if A > B + eps or (abs(A - B) <= eps and abs(xi) > abs(eta) + eps):
            t = _T1 @ t
            steps.append(1)
            A, B, C, xi, eta, zeta = g6()
        # A2
        if B > C + eps or (abs(B - C) <= eps and abs(eta) > abs(zeta) + eps):
            t = _T2 @ t
            steps.append(2)
            continue
        # A3 / A4
        sx, se, sz = _sign(xi, eps), _sign(eta, eps), _sign(zeta, eps)
        if sx * se * sz > 0:
            flip = np.diag([1, sz, se])  # i=1, j=sgn(zeta), k=sgn(eta): all three positive
            if not np.array_equal(flip, np.eye(3, dtype=int)):
                t = flip @ t
                steps.append(3)
        else:
            flip = _all_nonpositive_flip(xi, eta, zeta, eps)
            if flip is not None:
                t = flip @ t
                steps.append(4)
        A, B, C, xi, eta, zeta = g6()
        # A5
        if (
            abs(xi) > B + eps
            or (abs(xi - B) <= eps and 2 * eta < zeta - eps)
            or (abs(xi + B) <= eps and zeta < -eps)
        ):
            s = int(np.sign(xi))
            t = np.array([[1, 0, 0], [0, 1, 0], [0, -s, 1]]) @ t
            steps.append(5)
            continue
        # A6
        if (
            abs(eta) > A + eps
            or (abs(eta - A) <= eps and 2 * xi < zeta - eps)
            or (abs(eta + A) <= eps and zeta < -eps)
        ):
            s = int(np.sign(eta))
            t = np.array([[1, 0, 0], [0, 1, 0], [-s, 0, 1]]) @ t
            steps.append(6)
            continue
        # A7
        if (
            abs(zeta) > A + eps
            or (abs(zeta - A) <= eps and 2 * xi < eta - eps)
            or (abs(zeta + A) <= eps and eta < -eps)
        ):
            s = int(np.sign(zeta))
            t = np.array([[1, 0, 0], [-s, 1, 0], [0, 0, 1]]) @ t
            steps.append(7)
            continue
        # A8
        total = xi + eta + zeta + A + B
        if total < -eps or (abs(total) <= eps and 2 * (A + eta) + zeta > eps):
            t = _T8 @ t
            steps.append(8)
            continue
        break
    else:  # pragma: no cover - pathological input
        raise RuntimeError("Niggli reduction did not converge")

    if round(np.linalg.det(t)) < 0:
        t = -t
    reduced = t @ v0
    return NiggliResult(basis=reduced, transform=t, g6=g6_from_basis(reduced), steps=tuple(steps))


def _all_nonpositive_flip(xi: float, eta: float, zeta: float, eps: float) -> np.ndarray | None:
    """Sign flip diag(i, j, k) making xi, eta, zeta all <= 0 (None if already so)."""
    if xi <= eps and eta <= eps and zeta <= eps:
        return None
    for i, j, k in ((1, 1, -1), (1, -1, 1), (-1, 1, 1), (1, 1, 1)):
        if j * k * xi <= eps and i * k * eta <= eps and i * j * zeta <= eps:
            return np.diag([i, j, k])
    return None  # pragma: no cover - cannot happen when xi*eta*zeta <= 0


def is_niggli_reduced(g6: np.ndarray, rel_tol: float = 1e-5) -> bool:
    """Check the Niggli conditions (main and special) of a G6 vector within a relative tolerance."""
    A, B, C, xi, eta, zeta = (float(x) for x in g6)
    eps = rel_tol * max(A, B, C)
    if A > B + eps or B > C + eps:
        return False
    if abs(xi) > B + eps or abs(eta) > A + eps or abs(zeta) > A + eps:
        return False
    s = [_sign(x, eps) for x in (xi, eta, zeta)]
    positive = all(x > 0 for x in s)
    nonpositive = all(x <= 0 for x in s)
    if not (positive or nonpositive):
        return False
    if xi + eta + zeta + A + B < -eps:
        return False
    return True
