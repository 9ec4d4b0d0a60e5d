"""The 44 lattice characters of International Tables A (§9.2.5) and their distortion penalties.

Each character is defined on the Niggli-reduced cell through the scalar products
``g = (A, B, C, D, E, F) = (a.a, b.b, c.c, b.c, a.c, a.b)`` (Angstrom^2), a sign type (I: D, E,
F > 0; II: D, E, F <= 0) and linear equalities; ``M`` (rows) turns the reduced basis into the
conventional (centred) basis. The table follows the reduced-cell table of Int. Tables A with
Kabsch's (1993) correction, as tabulated in cctbx's ``lattice_text`` (N. K. Sauter).

Penalty (after Kabsch 1993, *J. Appl. Cryst.* 26, 795-800): the distance of the observed metric
from the nearest metric satisfying the character's conditions, in relative units (squared edges
relative to themselves, scalar products relative to the product of the two edges), times 1000
and capped at 999.  So a 1 degree deviation of a 90 degree angle costs ~17, and a 1 % mismatch
between two edges that should be equal ~14.  Because the reduced cell is discontinuous under
small errors, every nearly-reduced basis (short vectors within a few percent of the reduced
edges) and every sign choice of near-zero scalar products is tried and the minimum is taken.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np

from mosflm_py.indexing.niggli import cell_from_metric, metric_from_basis

PENALTY_SCALE = 1000.0
PENALTY_CAP = 999.0

# (number, bravais, type, conditions, M rows)
_TABLE = [
    (1, "cF", "I", "A-B B-C D-E E-F 2D-A", "1,-1,1, 1,1,-1, -1,1,1"),
    (2, "hR", "I", "A-B B-C D-E E-F", "1,-1,0, -1,0,1, -1,-1,-1"),
    (3, "cP", "II", "A-B B-C D E F", "1,0,0, 0,1,0, 0,0,1"),
    (4, "hR", "II", "A-B B-C D-E E-F", "1,-1,0, -1,0,1, -1,-1,-1"),
    (5, "cI", "II", "A-B B-C D-E E-F 3D+A", "1,0,1, 1,1,0, 0,1,1"),
    (6, "tI", "II", "A-B B-C A+B+2D+2E+2F E-D", "0,1,1, 1,0,1, 1,1,0"),
    (7, "tI", "II", "A-B B-C A+B+2D+2E+2F F-E", "1,0,1, 1,1,0, 0,1,1"),
    (8, "oI", "II", "A-B B-C A+B+2D+2E+2F", "-1,-1,0, -1,0,-1, 0,-1,-1"),
    (9, "hR", "I", "A-B D-E E-F 2D-A", "1,0,0, -1,1,0, -1,-1,3"),
    (10, "mC", "I", "A-B E-D", "1,1,0, 1,-1,0, 0,0,-1"),
    (11, "tP", "II", "A-B D E F", "1,0,0, 0,1,0, 0,0,1"),
    (12, "hP", "II", "A-B D E 2F+A", "1,0,0, 0,1,0, 0,0,1"),
    (13, "oC", "II", "A-B D E", "1,1,0, -1,1,0, 0,0,1"),
    (14, "mC", "II", "A-B E-D", "1,1,0, -1,1,0, 0,0,1"),
    (15, "tI", "II", "A-B 2D+A 2E+A F", "1,0,0, 0,1,0, 1,1,2"),
    (16, "oF", "II", "A-B A+B+2D+2E+2F E-D", "-1,-1,0, 1,-1,0, 1,1,2"),
    (17, "mC", "II", "A-B A+B+2D+2E+2F", "1,-1,0, -1,-1,0, -1,0,-1"),
    (18, "tI", "I", "B-C 4D-A 2E-A 2F-A", "0,-1,1, 1,-1,-1, 1,0,0"),
    (19, "oI", "I", "B-C 2E-A 2F-A", "-1,0,0, 0,-1,1, -1,1,1"),
    (20, "mC", "I", "B-C F-E", "0,1,1, 0,1,-1, -1,0,0"),
    (21, "tP", "II", "B-C D E F", "0,1,0, 0,0,1, 1,0,0"),
    (22, "hP", "II", "B-C 2D+B E F", "0,1,0, 0,0,1, 1,0,0"),
    (23, "oC", "II", "B-C E F", "0,1,1, 0,-1,1, 1,0,0"),
    (24, "hR", "II", "B-C A+B+2D+2E+2F 3E+A 3F+A", "1,2,1, 0,-1,1, 1,0,0"),
    (25, "mC", "II", "B-C F-E", "0,1,1, 0,-1,1, 1,0,0"),
    (26, "oF", "I", "4D-A 2E-A 2F-A", "1,0,0, -1,2,0, -1,0,2"),
    (27, "mC", "I", "2E-A 2F-A", "-1,2,0, -1,0,0, 0,-1,1"),
    (28, "mC", "I", "2E-A F-2D", "-1,0,0, -1,0,2, 0,1,0"),
    (29, "mC", "I", "E-2D 2F-A", "1,0,0, 1,-2,0, 0,0,-1"),
    (30, "mC", "I", "2D-B F-2E", "0,1,0, 0,1,-2, -1,0,0"),
    (31, "aP", "I", "", "1,0,0, 0,1,0, 0,0,1"),
    (32, "oP", "II", "D E F", "1,0,0, 0,1,0, 0,0,1"),
    (33, "mP", "II", "D F", "1,0,0, 0,1,0, 0,0,1"),
    (34, "mP", "II", "D E", "-1,0,0, 0,0,-1, 0,-1,0"),
    (35, "mP", "II", "E F", "0,-1,0, -1,0,0, 0,0,-1"),
    (36, "oC", "II", "D 2E+A F", "1,0,0, -1,0,-2, 0,1,0"),
    (37, "mC", "II", "2E+A F", "1,0,2, 1,0,0, 0,1,0"),
    (38, "oC", "II", "D E 2F+A", "-1,0,0, 1,2,0, 0,0,-1"),
    (39, "mC", "II", "E 2F+A", "-1,-2,0, -1,0,0, 0,0,-1"),
    (40, "oC", "II", "2D+B E F", "0,-1,0, 0,1,2, -1,0,0"),
    (41, "mC", "II", "2D+B F", "0,-1,-2, 0,-1,0, -1,0,0"),
    (42, "oI", "II", "2D+B 2E+A F", "-1,0,0, 0,-1,0, 1,1,2"),
    (43, "mI", "II", "A+B+2D+2E+2F 2D+F+B", "-1,0,0, -1,-1,-2, 0,-1,0"),
    (44, "aP", "II", "", "1,0,0, 0,1,0, 0,0,1"),
]

# Bravais types in order of increasing symmetry (used for the automatic choice).
BRAVAIS_ORDER = ("aP", "mP", "mC", "oP", "oC", "oI", "oF", "tP", "tI", "hR", "hP", "cP", "cI", "cF")
_SYSTEM = {"a": "triclinic", "m": "monoclinic", "o": "orthorhombic", "t": "tetragonal",
           "h": "hexagonal", "c": "cubic"}
CENTRING_MULTIPLICITY = {"P": 1, "C": 2, "I": 2, "F": 4, "R": 3}


def _parse_condition(text: str) -> np.ndarray:
    """'A+B+2D' -> coefficient row over (A, B, C, D, E, F)."""
    row = np.zeros(6)
    for sign, coef, var in re.findall(r"([+-]?)(\d*)([ABCDEF])", text):
        value = float(coef) if coef else 1.0
        row["ABCDEF".index(var)] += -value if sign == "-" else value
    return row


@dataclass(frozen=True)
class LatticeCharacter:
    """One of the 44 reduced-cell lattice characters (Int. Tables A §9.2.5)."""

    number: int
    bravais: str  # e.g. "mC" (mI is reported in its C-centred setting)
    type: str  # "I" or "II"
    constraints: np.ndarray  # (k, 6) rows r with r . (A, B, C, D, E, F) = 0
    M: np.ndarray  # (3, 3) int, rows: conventional a, b, c in terms of reduced a, b, c

    @property
    def system(self) -> str:
        return _SYSTEM[self.bravais[0]]


@lru_cache(maxsize=1)
def lattice_characters() -> tuple[LatticeCharacter, ...]:
    """The 44 characters, in Int. Tables order."""
    out = []
    for number, bravais, typ, cond, m in _TABLE:
        rows = [_parse_condition(c) for c in cond.split()]
        cons = np.array(rows) if rows else np.zeros((0, 6))
        mat = np.array([int(x) for x in m.replace(" ", "").split(",")]).reshape(3, 3)
        out.append(LatticeCharacter(number, bravais, typ, cons, mat))
    return tuple(out)


@dataclass(frozen=True)
class CharacterFit:
    """A lattice character fitted to an observed (reduced) basis.

    Attributes
    ----------
    character : LatticeCharacter
    penalty : float
        0 (perfect) .. 999 (cap); see module docstring.
    bravais : str
        Bravais lattice as reported (mI is given as mC, its C-centred setting).
    transform : ndarray (3, 3) int
        Rows of the conventional basis in terms of the *input* reduced basis.
    cell : tuple
        Conventional cell computed from the observed metric (no constraints), Angstrom/degrees.
    regularized_cell : tuple
        Conventional cell with the symmetry constraints imposed.
    """

    character: LatticeCharacter
    penalty: float
    bravais: str
    transform: np.ndarray
    cell: tuple[float, ...]
    regularized_cell: tuple[float, ...]


def _g_from_metric(g: np.ndarray) -> np.ndarray:
    return np.array([g[0, 0], g[1, 1], g[2, 2], g[1, 2], g[0, 2], g[0, 1]])


def _metric_from_g(v: np.ndarray) -> np.ndarray:
    A, B, C, D, E, F = v
    return np.array([[A, F, E], [F, B, D], [E, D, C]])


_SIGN_FLIPS = np.array([[1, 1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1]])


def nearly_reduced_bases(basis: np.ndarray, rel_tol: float = 0.06) -> list[np.ndarray]:
    """Integer matrices T (rows) giving bases ``T @ basis`` that are reduced within ``rel_tol``.

    Candidates are built from the 13 lattice vectors ``n1 a + n2 b + n3 c`` with ``n_i`` in
    {-1, 0, 1} of a Niggli-reduced ``basis``; a triple qualifies if it is unimodular and its three
    squared lengths are within ``(1 + rel_tol)`` of the reduced ``A <= B <= C`` respectively.
    Each is returned with the four sign choices of its rows (det +1 enforced by global sign).
    """
    v = np.asarray(basis, dtype=float)
    ns = [np.array(n) for n in itertools.product((-1, 0, 1), repeat=3) if any(n)]
    ns = [n for n in ns if tuple(n) > tuple(-n)]  # one of each +/- pair
    lens = np.array([np.dot(n @ v, n @ v) for n in ns])
    red = np.sort(np.sum(v * v, axis=1))
    limits = red * (1 + rel_tol)
    pick = [[i for i in range(len(ns)) if lens[i] <= limits[k]] for k in range(3)]
    out: list[np.ndarray] = [np.eye(3, dtype=int)]
    seen = {tuple(np.eye(3, dtype=int).ravel())}
    for i in pick[0]:
        for j in pick[1]:
            if j == i:
                continue
            for k in pick[2]:
                if k in (i, j):
                    continue
                t = np.array([ns[i], ns[j], ns[k]])
                d = round(np.linalg.det(t))
                if abs(d) != 1:
                    continue
                for f in _SIGN_FLIPS:
                    tt = f[:, None] * t
                    if round(np.linalg.det(tt)) < 0:
                        tt = -tt
                    key = tuple(tt.ravel())
                    if key not in seen:
                        seen.add(key)
                        out.append(tt)
    return out


def _regularize(g_conv: np.ndarray, bravais: str) -> tuple[float, ...]:
    """Impose the Bravais-lattice constraints exactly on a conventional metric (cell, Å/deg)."""
    a, b, c, al, be, ga = cell_from_metric(g_conv)
    s = bravais[0]
    if s == "c":
        m = (a + b + c) / 3
        return (m, m, m, 90.0, 90.0, 90.0)
    if s == "t":
        m = (a + b) / 2
        return (m, m, c, 90.0, 90.0, 90.0)
    if s == "h":
        m = (a + b) / 2
        return (m, m, c, 90.0, 90.0, 120.0)
    if s == "o":
        return (a, b, c, 90.0, 90.0, 90.0)
    if s == "m":
        return (a, b, c, 90.0, be, 90.0)
    return (a, b, c, al, be, ga)


# I2 -> C2 settings (rows, b unique); the one with beta closest to 90 is used.
_I_TO_C = (
    np.array([[1, 0, 1], [0, 1, 0], [-1, 0, 0]]),
    np.array([[1, 0, 1], [0, 1, 0], [0, 0, 1]]),
    np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]]),
    np.array([[0, 0, 1], [0, 1, 0], [-1, 0, -1]]),
)


def _monoclinic_setting(t: np.ndarray, g_red: np.ndarray, centred_i: bool) -> np.ndarray:
    """Choose the monoclinic setting: C-centred for mI, beta >= 90 (rows of transform)."""
    if centred_i:
        best = None
        for q in _I_TO_C:
            tt = q @ t
            g = tt @ g_red @ tt.T
            cb = abs(g[0, 2] / np.sqrt(g[0, 0] * g[2, 2]))
            if best is None or cb < best[0] - 1e-9:
                best = (cb, tt)
        t = best[1]
    g = t @ g_red @ t.T
    if g[0, 2] > 0:  # beta < 90: (-a, b, -c)
        t = np.diag([-1, 1, -1]) @ t
    return t


def fit_characters(reduced_basis: np.ndarray, rel_tol: float = 0.06) -> list[CharacterFit]:
    """Penalties, conventional cells and transforms of all 44 characters for a reduced basis.

    Parameters
    ----------
    reduced_basis : array (3, 3)
        Niggli-reduced real-space basis (rows, Angstrom).
    rel_tol : float
        Relative tolerance on squared edges for the nearly-reduced alternative bases.

    Returns
    -------
    list of CharacterFit
        One entry per character, in Int. Tables order (1..44).
    """
    v = np.asarray(reduced_basis, dtype=float)
    g_red = metric_from_basis(v)
    ts = nearly_reduced_bases(v, rel_tol)
    if not ts:
        ts = [np.eye(3, dtype=int)]
    ts_arr = np.array(ts)  # (n, 3, 3)
    gm = np.einsum("nij,jk,nlk->nil", ts_arr, g_red, ts_arr)  # metrics of the variants
    gv = np.stack([gm[:, 0, 0], gm[:, 1, 1], gm[:, 2, 2], gm[:, 1, 2], gm[:, 0, 2], gm[:, 0, 1]], 1)
    A, B, C = gv[:, 0], gv[:, 1], gv[:, 2]
    w = 1.0 / np.stack([A * A, B * B, C * C, B * C, A * C, A * B], 1)  # relative weights
    winv = 1.0 / w
    results = []
    for ch in lattice_characters():
        # sign conditions: wrong-signed D, E, F are moved to zero (their cost counts)
        off = gv[:, 3:]
        if ch.type == "I":
            clipped = np.maximum(off, 0.0)
        else:
            clipped = np.minimum(off, 0.0)
        gc = np.concatenate([gv[:, :3], clipped], 1)
        k = ch.constraints
        if len(k):
            kgc = gc @ k.T  # (n, k)
            mm = np.einsum("ai,ni,bi->nab", k, winv, k)
            lam = np.linalg.solve(mm, kgc[..., None])[..., 0]
            p = gc - winv * (lam @ k)
        else:
            p = gc
        d2 = np.sum(w * (gv - p) ** 2, axis=1)
        # the projected metric must keep the sign type
        if ch.type == "I":
            bad = np.any(p[:, 3:] < -1e-9 * p[:, :3].max(axis=1, keepdims=True), axis=1)
        else:
            bad = np.any(p[:, 3:] > 1e-9 * p[:, :3].max(axis=1, keepdims=True), axis=1)
        d2 = np.where(bad, d2 + 1.0, d2)
        # first (identity-first) variant among the numerically tied best ones
        best = int(np.flatnonzero(d2 <= d2.min() * (1 + 1e-9) + 1e-18)[0])
        penalty = PENALTY_SCALE * float(np.sqrt(d2[best]))
        # a degenerate metric (NaN distance) is as far from the character as can be
        penalty = min(penalty, PENALTY_CAP) if np.isfinite(penalty) else PENALTY_CAP
        t = ch.M @ ts_arr[best]
        g_proj = _metric_from_g(p[best])
        t_var_inv = np.linalg.inv(ts_arr[best])
        g_proj_red = t_var_inv @ g_proj @ t_var_inv.T  # projected metric in the input basis
        bravais = "mC" if ch.bravais == "mI" else ch.bravais
        if bravais[0] == "m":
            t = _monoclinic_setting(t, g_red, ch.bravais == "mI")
        cell = cell_from_metric(t @ g_red @ t.T)
        reg = _regularize(t @ g_proj_red @ t.T, bravais)
        results.append(CharacterFit(ch, penalty, bravais, t.astype(int), cell, reg))
    return results


@cache
def space_groups_for_lattice(bravais: str) -> tuple[str, ...]:
    """Sohncke (chiral) space groups of a Bravais lattice, lowest number first (gemmi short names).

    Rhombohedral groups are given in the hexagonal setting (e.g. ``"H3"`` is R3:H).
    """
    import gemmi

    system = _SYSTEM[bravais[0]]
    centring = bravais[1]
    out = []
    for n in range(1, 231):
        sg = gemmi.find_spacegroup_by_number(n)
        if not sg.is_sohncke():
            continue
        cs = sg.crystal_system_str()
        ct = sg.centring_type()
        if system == "hexagonal":
            if cs not in ("trigonal", "hexagonal"):
                continue
            want = "R" if centring == "R" else "P"
            if ct != want:
                continue
        elif cs != system or ct != centring:
            continue
        out.append(sg.short_name())
    return tuple(out)
