"""Indexing parameters, the 44-row solution table and MOSFLM's automatic choice.

Automatic choice (documented rule): a solution is *acceptable* when its penalty is at most
``IndexingParams.low_penalty`` (20, MOSFLM's "usually less than 20 for the correct solution")
and, once refined, its rms residual is no worse than ``1.5 x`` that of the refined triclinic
solution plus a small absolute allowance (positions 0.02 mm / rlp 2e-4 relative).  Among the
acceptable solutions the one of highest lattice symmetry (order of the holohedry) is chosen;
ties go to the lowest penalty.  ``SOLUTION k`` overrides the choice; ``SYMMETRY sg`` restricts
it to rows of the Bravais lattice of ``sg``.

Evidence for the threshold and the sd test: the real MOSFLM 7.0.0 autoindexing log
(../shared/data/real/mosflm_logs) suggests solution 3 (mC, penalty 2) although oI and mI with
penalty 24 refine as well (equal SDCELL, FRACN 0.93), so its limit lies between 2 and 23; the
MOSFLM course notes (seeds) reject a cubic solution of low penalty whose sd(x,y) is 0.34 mm
against 0.18 mm for the right orthorhombic one.  On weak data the right crystal system comes
from a well-determined triclinic cell (spots with phi centroids, outliers rejected, the
distance refined where the spots determine it: :mod:`mosflm_py.indexing.autoindex`), which
keeps the right lattice's penalty low, not from a higher threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import IndexingError

Cell = tuple[float, float, float, float, float, float]

HOLOHEDRY_ORDER = {
    "aP": 2, "mP": 4, "mC": 4, "oP": 8, "oC": 8, "oI": 8, "oF": 8, "hR": 12,
    "tP": 16, "tI": 16, "hP": 24, "cP": 48, "cI": 48, "cF": 48,
}  # fmt: skip


@dataclass(frozen=True)
class IndexingParams:
    """AUTOINDEX settings (MOSFLM defaults).

    Attributes
    ----------
    threshold : float
        Minimum I/sigma(I) of spots used (THRESHOLD, 20); lowered automatically (halved, down
        to 3) while fewer than ``min_spots`` spots pass.
    min_spots : int
        Spots wanted before the threshold is lowered.
    hkldev : float
        Maximum deviation from integral indices for an indexed spot (HKLDEV, 0.3).
    nvect : int
        Distinct candidate vectors kept (NVECT, 30).
    max_cell : float or None
        Maximum cell edge (MAXCELL, Angstrom); None = estimate from the spot separation.
    min_cell : float
        Shortest real-space vector searched (Angstrom).
    sdcutoff : float
        Spot rejection limit in refinement (SDCUTOFF, 2.5 sigma).
    solution : int or None
        Force table row k (SOLUTION k).
    symmetry : str or None
        Space group restricting the lattice choice (SYMMETRY).
    unfixdist : bool
        Also refine the crystal-to-detector distance (UNFIXDIST).
    beam_search : bool
        Grid-search the beam position (± ``beam_range`` mm in ``beam_step`` mm steps).
    refine_penalty : float
        Solutions below this penalty are refined (200).
    low_penalty : float
        Penalty limit of the acceptable group for the automatic choice (20).
    spacing : float
        Angular spacing (rad) of the DPS hemisphere of directions (0.029 ~ 7300 directions).
    second_lattice : bool
        Look for a second lattice among the spots the chosen solution leaves unindexed.
    """

    threshold: float = 20.0
    min_spots: int = 150
    hkldev: float = 0.3
    nvect: int = 30
    max_cell: float | None = None
    min_cell: float = 2.5
    sdcutoff: float = 2.5
    solution: int | None = None
    symmetry: str | None = None
    unfixdist: bool = False
    beam_search: bool = False
    beam_range: float = 1.0
    beam_step: float = 0.5
    refine_penalty: float = 200.0
    low_penalty: float = 20.0
    spacing: float = 0.029
    second_lattice: bool = True


@dataclass(frozen=True, eq=False)
class SolutionRow:
    """One row of the autoindexing table.

    Attributes
    ----------
    number : int
        Row number (1-based, rows sorted by penalty) - what SOLUTION k refers to.
    character : int
        Lattice character (1..44, Int. Tables A).
    lattice : str
        Bravais lattice (mI reported as mC).
    penalty : float
        Distortion penalty 0..999.
    cell : tuple
        Refined cell when ``refined``, else the regularized cell (Angstrom, degrees).
    regularized_cell, raw_cell : tuple
        Cell with symmetry constraints imposed / without (from the triclinic solution).
    transform : ndarray (3, 3) int
        Conventional basis rows in terms of the reduced triclinic basis.
    refined : bool
        Whether the solution was refined (penalty below ``refine_penalty``).
    sdcell : float
        Mean estimated standard deviation of the refined cell edges (Angstrom), or NaN.
    fracn : float
        Fraction of the spots indexed within HKLDEV, or NaN when unrefined.
    sigma_xy, sigma_phi : float
        Rms positional residual (mm) and rms phi residual (deg) (NaN when unknown).
    n_indexed : int
        Spots used in the final refinement cycle.
    ub : ndarray (3, 3) or None
        U.B of the solution (1/Angstrom) when refined.
    space_groups : tuple of str
        Possible (Sohncke) space groups of the lattice.
    """

    number: int
    character: int
    lattice: str
    penalty: float
    cell: Cell
    regularized_cell: Cell
    raw_cell: Cell
    transform: np.ndarray
    refined: bool = False
    sdcell: float = float("nan")
    fracn: float = float("nan")
    sigma_xy: float = float("nan")
    sigma_phi: float = float("nan")
    n_indexed: int = 0
    ub: np.ndarray | None = None
    rms_rel: float = float("nan")
    beam: tuple[float, float] | None = None
    distance: float | None = None
    space_groups: tuple[str, ...] = field(default_factory=tuple)


def lattice_of_space_group(symbol: str) -> str:
    """Bravais lattice (e.g. ``"mC"``) of a space group given by name or number."""
    import gemmi

    sym = str(symbol).strip()
    find = gemmi.find_spacegroup_by_number if sym.isdigit() else gemmi.find_spacegroup_by_name
    sg = find(int(sym) if sym.isdigit() else sym)
    if sg is None:
        raise IndexingError(f"unknown space group {symbol!r} given with SYMMETRY")
    system = sg.crystal_system_str()
    centring = sg.centring_type()
    letter = {"triclinic": "a", "monoclinic": "m", "orthorhombic": "o", "tetragonal": "t",
              "trigonal": "h", "hexagonal": "h", "cubic": "c"}[system]  # fmt: skip
    if centring in ("A", "B"):
        centring = "C"
    if letter == "m" and centring == "I":
        centring = "C"
    if letter == "h" and centring == "H":
        centring = "R"
    return letter + centring


def choose_solution(rows: list[SolutionRow], params: IndexingParams) -> int:
    """Index (0-based) into ``rows`` of the chosen solution (see module docstring for the rule)."""
    if params.solution is not None:
        k = int(params.solution)
        if not 1 <= k <= len(rows):
            raise IndexingError(f"SOLUTION {k} does not exist (the table has {len(rows)} rows)")
        return k - 1
    allowed = None
    if params.symmetry:
        allowed = lattice_of_space_group(params.symmetry)
    ap = [r for r in rows if r.lattice == "aP" and r.refined]
    ref_xy = min((r.sigma_xy for r in ap if np.isfinite(r.sigma_xy)), default=np.nan)
    ref_rel = min((r.rms_rel for r in ap if np.isfinite(r.rms_rel)), default=np.nan)

    def acceptable(r: SolutionRow) -> bool:
        if allowed is not None:
            return r.lattice == allowed and r.penalty < params.refine_penalty
        if r.penalty > params.low_penalty:
            return False
        if r.refined and np.isfinite(ref_xy) and np.isfinite(r.sigma_xy):
            if r.sigma_xy > 1.5 * ref_xy + 0.02:
                return False
        if r.refined and np.isfinite(ref_rel) and np.isfinite(r.rms_rel):
            if r.rms_rel > 1.5 * ref_rel + 2e-4:
                return False
        return True

    cands = [i for i, r in enumerate(rows) if acceptable(r)]
    if not cands:
        if allowed is not None:
            raise IndexingError(
                f"no solution with the lattice {allowed} of SYMMETRY {params.symmetry} has a "
                f"penalty below {params.refine_penalty:.0f}: check the space group, or index "
                "without SYMMETRY"
            )
        return 0
    return max(cands, key=lambda i: (HOLOHEDRY_ORDER[rows[i].lattice], -rows[i].penalty, -i))
