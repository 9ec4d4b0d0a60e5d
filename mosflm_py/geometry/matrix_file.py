"""MOSFLM orientation-matrix files (the MATRIX keyword reads them, NEWMAT writes them).

The format (MOSFLM; also written by DIALS ``format_mosflm_mat`` and read by xia2) is nine
fixed-format lines::

     A11 A12 A13          3F12.8   rows of A = lambda . U . B (dimensionless)
     A21 A22 A23
     A31 A32 A33
     PHIX PHIY PHIZ       3F12.3   missetting angles (deg)
     U11 U12 U13          3F12.8   rows of U
     U21 U22 U23
     U31 U32 U33
     a b c alpha beta gamma 6F12.4 cell (Angstrom, deg)
     PHIX PHIY PHIZ       3F12.3   missets again (some files omit this line)

Columns of A are a*, b*, c* times the wavelength, in the MOSFLM laboratory frame (X along the
beam, Z along the spindle), at phi = 0 before the missets; B is the Busing & Levy (1967) matrix
of ``help/topics/conventions.txt``.

Reading is token based and tolerant: numbers that run together (``0.01503544-0.00095474``) are
split at the sign, blank lines are skipped, the trailing missets line may be missing and any
trailing text lines (comments, symmetry) are ignored.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mosflm_py.atomic import atomic_write_text
from mosflm_py.errors import MosflmError

__all__ = [
    "MatrixFile",
    "MatrixFileError",
    "format_matrix_file",
    "parse_matrix_text",
    "read_matrix_file",
    "wavelength_from_matrix",
    "write_matrix_file",
]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?")
_ORTHO_TOL = 1e-3  # |U.U^T - I| allowed in a file (values carry 8 decimals; hand edits less)


class MatrixFileError(MosflmError):
    """A MATRIX file that is missing, unreadable or not in MOSFLM's format."""


@dataclass(frozen=True, eq=False, slots=True)
class MatrixFile:
    """Contents of a MOSFLM matrix file (arrays are read-only).

    Attributes
    ----------
    A : ndarray, shape (3, 3)
        lambda . U . B (dimensionless); columns are lambda.a*, lambda.b*, lambda.c* (lab frame).
    missets : ndarray, shape (3,)
        PHIX, PHIY, PHIZ (deg), the missets of line 4.
    U : ndarray, shape (3, 3)
        Orientation matrix (orthogonal, det +1).
    cell : tuple of 6 float
        a, b, c (Angstrom), alpha, beta, gamma (deg).
    missets_end : ndarray, shape (3,) or None
        The trailing missets line (normally equal to *missets*); None when absent.
    """

    A: np.ndarray
    missets: np.ndarray
    U: np.ndarray
    cell: tuple[float, float, float, float, float, float]
    missets_end: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("A", "missets", "U", "missets_end"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.array(value, dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "cell", tuple(float(v) for v in self.cell))

    @property
    def wavelength(self) -> float:
        """Wavelength implied by A and the cell (Angstrom), see :func:`wavelength_from_matrix`."""
        return wavelength_from_matrix(self.A, self.cell)


def _reciprocal_lengths(cell: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """|a*|, |b*|, |c*| (1/Angstrom) of a cell, from the inverse metric tensor."""
    a, b, c, al, be, ga = (float(v) for v in cell)
    ca, cb, cg = (math.cos(math.radians(x)) for x in (al, be, ga))
    g = np.array(
        [
            [a * a, a * b * cg, a * c * cb],
            [a * b * cg, b * b, b * c * ca],
            [a * c * cb, b * c * ca, c * c],
        ]
    )
    if min(a, b, c) <= 0 or np.linalg.det(g) <= 1e-10 * (a * b * c) ** 2:
        raise MatrixFileError(f"the cell {a} {b} {c} {al} {be} {ga} does not describe a real cell")
    return np.sqrt(np.diag(np.linalg.inv(g)))


def wavelength_from_matrix(A: np.ndarray, cell: tuple[float, ...] | np.ndarray) -> float:
    """Wavelength (Angstrom) implied by a MOSFLM A matrix and its cell.

    A = lambda . U . B, so column i of A has length lambda . |a*_i|; the estimate is the mean over
    the three axes of |A[:, i]| / |a*_i|. For orthogonal cells this is |A[:, i]| . a_i, as xia2
    computes it.

    Parameters
    ----------
    A : array_like, shape (3, 3)
        MOSFLM A matrix (dimensionless).
    cell : sequence of 6 float
        a, b, c (Angstrom), alpha, beta, gamma (deg).
    """
    A = np.asarray(A, dtype=np.float64)
    if A.shape != (3, 3):
        raise ValueError(f"A must be 3x3, got shape {A.shape}")
    return float(np.mean(np.linalg.norm(A, axis=0) / _reciprocal_lengths(cell)))


def _numbers(line: str) -> list[float] | None:
    """All numbers of *line*, or None if the line holds anything else."""
    found = _NUMBER.findall(line)
    rest = _NUMBER.sub(" ", line)
    if rest.strip(" \t,"):
        return None
    return [float(tok.replace("d", "e").replace("D", "e")) for tok in found]


def parse_matrix_text(text: str, source: str = "matrix file") -> MatrixFile:
    """Parse the text of a MOSFLM matrix file (see the module docstring for the format).

    Parameters
    ----------
    text
        File contents.
    source
        Name used in error messages.

    Raises
    ------
    MatrixFileError
        Fewer than 27 numbers before the first non-numeric line, an invalid cell, or a U that is
        not a rotation.
    """
    values: list[float] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        nums = _numbers(line)
        if nums is None:
            if len(values) >= 27:
                break  # trailing text (comments, symmetry) after a complete matrix
            raise MatrixFileError(
                f"{source}: line {lineno} is not a line of numbers: {line.strip()[:60]!r} "
                "(a MOSFLM matrix file has 3 lines of A, the missets, 3 lines of U and the cell)"
            )
        values.extend(nums)
    if len(values) < 27:
        raise MatrixFileError(
            f"{source}: found {len(values)} numbers, a MOSFLM matrix file needs at least 27 "
            "(A: 9, missets: 3, U: 9, cell: 6)"
        )
    v = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise MatrixFileError(f"{source}: contains non-finite numbers")
    A = v[0:9].reshape(3, 3)
    missets = v[9:12]
    U = v[12:21].reshape(3, 3)
    cell = tuple(v[21:27])
    missets_end = v[27:30] if len(v) >= 30 else None
    if not np.allclose(U @ U.T, np.eye(3), atol=_ORTHO_TOL) or np.linalg.det(U) <= 0:
        raise MatrixFileError(
            f"{source}: the U matrix (lines 5-7) is not a rotation matrix "
            f"(|U.Ut - I| = {np.abs(U @ U.T - np.eye(3)).max():.2g}, det = {np.linalg.det(U):.4f})"
        )
    if not (0 < min(cell[3:]) and max(cell[3:]) < 180):
        raise MatrixFileError(f"{source}: cell angles must lie between 0 and 180 degrees")
    _reciprocal_lengths(cell)  # validates the cell
    if np.linalg.norm(A) == 0:
        raise MatrixFileError(f"{source}: the A matrix (lines 1-3) is zero")
    return MatrixFile(A=A, missets=missets, U=U, cell=cell, missets_end=missets_end)  # type: ignore[arg-type]


def read_matrix_file(path: str | os.PathLike[str]) -> MatrixFile:
    """Read a MOSFLM MATRIX/NEWMAT file.

    Raises
    ------
    MatrixFileError
        If the file cannot be read or is not a MOSFLM matrix file.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise MatrixFileError(f"Matrix file {p} does not exist") from None
    except OSError as err:
        raise MatrixFileError(f"Cannot read matrix file {p}: {err.strerror or err}") from None
    return parse_matrix_text(text, source=f"Matrix file {p}")


def _fmt(values: np.ndarray | tuple[float, ...], spec: str) -> str:
    return "".join(format(float(x), spec) for x in values) + "\n"


def format_matrix_file(
    A: np.ndarray,
    missets: tuple[float, float, float] | np.ndarray,
    U: np.ndarray,
    cell: tuple[float, ...] | np.ndarray,
    symmetry: str | None = None,
) -> str:
    """Text of a MOSFLM matrix file (3F12.8 x3, 3F12.3, 3F12.8 x3, 6F12.4, 3F12.3).

    With *symmetry* (a space-group name such as ``P4`` or ``P212121``) MOSFLM's final
    ``SYMM <name>`` line is added; readers that take the first nine lines are unaffected.
    """
    A = np.asarray(A, dtype=np.float64)
    U = np.asarray(U, dtype=np.float64)
    m = np.asarray(missets, dtype=np.float64).reshape(3)
    c = np.asarray(cell, dtype=np.float64).reshape(6)
    if A.shape != (3, 3) or U.shape != (3, 3):
        raise ValueError("A and U must be 3x3")
    lines = [_fmt(row, "12.8f") for row in A]
    lines.append(_fmt(m, "12.3f"))
    lines += [_fmt(row, "12.8f") for row in U]
    lines.append(_fmt(c, "12.4f"))
    lines.append(_fmt(m, "12.3f"))
    if symmetry:
        lines.append(f"SYMM {symmetry}\n")
    return "".join(lines)


def write_matrix_file(
    path: str | os.PathLike[str],
    A: np.ndarray,
    missets: tuple[float, float, float] | np.ndarray,
    U: np.ndarray,
    cell: tuple[float, ...] | np.ndarray,
    symmetry: str | None = None,
) -> None:
    """Write a MOSFLM matrix file atomically (see :func:`format_matrix_file`).

    Parameters
    ----------
    path
        Output file (NEWMAT).
    A : ndarray, shape (3, 3)
        lambda . U . B (dimensionless), lab frame, phi = 0, before missets.
    missets : sequence of 3 float
        PHIX, PHIY, PHIZ (deg); written on line 4 and again on line 9.
    U : ndarray, shape (3, 3)
        Orientation matrix.
    cell : sequence of 6 float
        a, b, c (Angstrom), alpha, beta, gamma (deg).
    symmetry : str, optional
        Space-group name for the ``SYMM`` line (MOSFLM writes it after the missets).
    """
    atomic_write_text(path, format_matrix_file(A, missets, U, cell, symmetry))
