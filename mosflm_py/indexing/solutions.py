"""Indexing parameters, the 44-row solution table and MOSFLM's automatic choice.

Automatic choice (documented rule).  A solution is *acceptable* when

1. its penalty is at most ``IndexingParams.low_penalty`` (20, MOSFLM's "usually less than 20
   for the correct solution") and, once refined, its rms residual is no worse than ``1.5 x``
   that of the refined triclinic solution plus a small absolute allowance (positions 0.02 mm /
   rlp 2e-4 relative); or
2. its penalty is at most ``IndexingParams.wide_penalty`` (50) and its constrained refinement
   fits the spots the triclinic refinement uses not significantly worse than the triclinic one:
   an F test of the extra sum of squares, F = ((S_c - S_aP) / (p_aP - p_c)) / (S_aP / (n - p_aP))
   with S the weighted sums of squared residuals (x, y, phi) over the same spots, n the
   observations and p the parameters refined, accepted at the ``ftest_alpha`` (1 %) level
   (:func:`constraint_f_test`).

Among the acceptable solutions the one of highest lattice symmetry (order of the holohedry) is
chosen; ties go to the lowest penalty.  ``SOLUTION k`` overrides the choice; ``SYMMETRY sg``
restricts it to rows of the Bravais lattice of ``sg``.

Why two tests: the penalty measures the distortion of the refined triclinic cell from the
lattice's metric, but not against the cell's uncertainty.  With many strong spots the
triclinic cell is precise and MOSFLM's fixed threshold works; with few or weak spots (sparse
small-molecule images, two thin images of weak data) the noisier triclinic cell inflates the
right lattice's penalty above 20 (oP penalty 23 on a weak P212121 series) while its
constrained refinement fits as well as the triclinic one.  The F test asks the question the
penalty stands in for - do the data need the lower symmetry? - with the data's own precision,
so it accepts that solution and still rejects a genuine lower symmetry whose spots a
constrained cell cannot fit (many spots, significant misfit).  Rule 2 never removes a
solution rule 1 accepts, so on strong data MOSFLM's choice is unchanged.

Evidence for the threshold and the sd test: the real MOSFLM 7.0.0 autoindexing log
(../shared/data/real/mosflm_logs) suggests solution 3 (mC, penalty 2) although oI and mI with
penalty 24 refine as well (equal SDCELL, FRACN 0.93), so its limit lies between 2 and 23; the
MOSFLM course notes (seeds) reject a cubic solution of low penalty whose sd(x,y) is 0.34 mm
against 0.18 mm for the right orthorhombic one.

References
----------
Draper, N. R. & Smith, H. (1998). Applied Regression Analysis, 3rd ed., section 6.1 (extra sum
of squares F test).  Hamilton, W. C. (1965). Acta Cryst. 18, 502-510 (significance tests on
the crystallographic R factor: the same test for linear hypotheses on refined parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

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
    wide_penalty : float
        Penalty limit for solutions accepted by the F test instead (50).
    ftest_alpha : float
        Significance level of that F test (0.01).
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
    wide_penalty: float = 50.0
    refine_tilt: bool = False
    ftest_alpha: float = 0.01
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
    chi2, used, n_obs : ndarray or None
        Per spot (all spots given to the refinement): sum of squared weighted residuals of the
        refined solution (NaN for spots it does not index), whether the final refinement cycle
        used it (not rejected), and its number of observations (3 for a rotation spot x, y,
        phi; 2 for a still); None when unrefined.
    n_params : int
        Parameters refined (orientation, free cell parameters, beam, distance, tilt, twist).
    beam, distance, tilt, twist
        Refined detector geometry (mm, mm, 0.01 deg) of the solution.
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
    tilt: float = 0.0
    twist: float = 0.0
    space_groups: tuple[str, ...] = field(default_factory=tuple)
    chi2: np.ndarray | None = None
    used: np.ndarray | None = None
    n_obs: np.ndarray | None = None
    n_params: int = 0


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


MIN_COMMON_FRACTION = 0.9
"""The F test needs the constrained solution to index this fraction of the triclinic one's
spots (spots it cannot index at all are evidence against it that the sums do not show)."""


def constraint_f_test(row: SolutionRow, ref: SolutionRow) -> float:
    """P value of the F test of ``row``'s constraints against the less constrained ``ref``.

    Both refined against the same spots; the sums of squared weighted residuals are taken over
    the spots both final refinements use (each has rejected its own outliers).  Returns NaN
    when the test cannot be made (no per-spot residuals, no constraint, too few observations)
    and 0 when ``row`` uses fewer than :data:`MIN_COMMON_FRACTION` of the spots ``ref`` uses
    (a constrained cell that has to reject the spots it cannot fit is worse, whatever the
    sums of the rest say).
    """
    if row.chi2 is None or ref.chi2 is None or ref.used is None or row.used is None:
        return float("nan")
    if len(row.chi2) != len(ref.chi2) or ref.n_obs is None:
        return float("nan")
    base = ref.used & np.isfinite(ref.chi2)
    common = base & row.used & np.isfinite(row.chi2)
    if not base.any():
        return float("nan")
    if common.sum() < MIN_COMMON_FRACTION * base.sum():
        return 0.0
    dp = ref.n_params - row.n_params
    n = float(np.sum(ref.n_obs[common]))
    dfd = n - ref.n_params
    if dp <= 0 or dfd <= 0:
        return float("nan")
    s_ref = float(np.sum(ref.chi2[common]))
    s_row = float(np.sum(row.chi2[common]))
    if s_ref <= 0:
        return float("nan")
    f = max(s_row - s_ref, 0.0) / dp / (s_ref / dfd)
    return float(stats.f.sf(f, dp, dfd))


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

    ref_row = next((r for r in ap if r.chi2 is not None), None)

    def acceptable(r: SolutionRow) -> bool:
        if allowed is not None:
            return r.lattice == allowed and r.penalty < params.refine_penalty
        return by_threshold(r) or by_f_test(r)

    def by_f_test(r: SolutionRow) -> bool:
        if ref_row is None or not r.refined or r.penalty > params.wide_penalty:
            return False
        if r.lattice == "aP":
            return False
        p = constraint_f_test(r, ref_row)
        return bool(np.isfinite(p) and p >= params.ftest_alpha)

    def by_threshold(r: SolutionRow) -> bool:
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
