"""MOSFLM's automatic choice of solution (issue 9.4), on solution tables given as numbers.

The rule (``mosflm_py.indexing.solutions``): the highest-symmetry solution whose penalty is at
most 20 is suggested unless its refined sd(x,y) is clearly worse than the triclinic one's; a
solution with penalty up to 50 is also acceptable when an F test on the positional residuals
says its constraints do not fit the spots significantly worse than the triclinic cell.
The cases are MOSFLM's own: the real 7.0.0 autoindexing log in ../shared/data/real/mosflm_logs
(solution 3, mC penalty 2, chosen while oI and mI with penalty 24 refine as well) and the
pseudo-symmetry example of the MOSFLM course notes (seeds: cubic by penalty, but sd(x,y)
0.34 mm against 0.18 mm for the right orthorhombic solution).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mosflm_py.errors import IndexingError
from mosflm_py.indexing.solutions import (
    IndexingParams,
    SolutionRow,
    choose_solution,
    constraint_f_test,
)


def _row(number: int, lattice: str, penalty: float, sd: float | None = None) -> SolutionRow:
    cell = (50.0, 60.0, 70.0, 90.0, 90.0, 90.0)
    refined = sd is not None
    return SolutionRow(
        number=number,
        character=1,
        lattice=lattice,
        penalty=penalty,
        cell=cell,
        regularized_cell=cell,
        raw_cell=cell,
        transform=np.eye(3, dtype=int),
        refined=refined,
        sigma_xy=sd if refined else float("nan"),
    )


def test_mosflm_700_log_suggests_mc_penalty_2_not_oi_penalty_24():
    """The low-penalty rows of the real log (penalty: lattice), all refining alike: MOSFLM
    suggested solution 3 (mC, penalty 2); oI and mI at 24 are above its threshold."""
    rows = [
        _row(1, "aP", 0, 0.077),
        _row(2, "aP", 0, 0.077),
        _row(3, "mC", 2, 0.078),
        _row(4, "mC", 23, 0.148),
        _row(5, "oI", 24, 0.077),
        _row(6, "mC", 24, 0.078),
        _row(7, "mP", 47, 0.20),
        _row(8, "oC", 49, 0.16),
        _row(9, "mC", 71),
    ]
    assert choose_solution(rows, IndexingParams()) == 2


def test_pseudo_symmetry_higher_lattice_with_clearly_worse_sd_is_not_chosen():
    """Course-notes example: cubic has a low penalty, but sd(x,y) 0.34 mm against 0.18 mm."""
    rows = [
        _row(1, "aP", 0, 0.18),
        _row(2, "mP", 1, 0.18),
        _row(3, "oP", 2, 0.18),
        _row(4, "tP", 5, 0.30),
        _row(5, "cP", 6, 0.34),
    ]
    assert rows[choose_solution(rows, IndexingParams())].lattice == "oP"


def test_highest_symmetry_below_the_threshold_when_it_refines_as_well():
    """Weak data: the triclinic cell is a little distorted, so oP (penalty 13) is above mP
    (penalty 4), but both are below the threshold and refine as well: oP is suggested."""
    rows = [_row(1, "aP", 0, 0.128), _row(2, "mP", 4, 0.133), _row(3, "oP", 13, 0.130)]
    assert rows[choose_solution(rows, IndexingParams())].lattice == "oP"
    # ... but not once its penalty is above MOSFLM's threshold (20), when the table carries no
    # per-spot residuals for the F test (next test)
    rows[2] = _row(3, "oP", 23, 0.128)
    assert rows[choose_solution(rows, IndexingParams())].lattice == "mP"


def _fit_row(number, lattice, penalty, sd, n_params, chi2, used=None):
    """A refined row carrying per-spot residuals (weighted squares, 3 observations a spot)."""
    row = _row(number, lattice, penalty, sd)
    chi2 = np.asarray(chi2, float)
    used = np.ones(len(chi2), bool) if used is None else np.asarray(used, bool)
    return replace(row, chi2=chi2, used=used, n_obs=np.full(len(chi2), 3), n_params=n_params)


def test_f_test_accepts_a_higher_lattice_above_the_threshold_when_it_fits_as_well():
    """Weak data (issue 9.4): oP penalty 23 (the noisy triclinic cell inflates it), mP penalty
    13; oP fits the 40 spots not significantly worse than aP (F test, 3 constraints more than
    mP, 4 params fewer than aP): oP.  With residuals that are clearly worse it is not."""
    rng = np.random.default_rng(1)
    base = rng.chisquare(3, 40) * 0.5  # aP: rms weighted residual ~0.7
    ap = _fit_row(1, "aP", 0, 0.128, 11, base)
    mp = _fit_row(2, "mP", 13, 0.133, 9, base * 1.02)
    op = _fit_row(3, "oP", 23, 0.128, 8, base * 1.05)
    rows = [ap, mp, op]
    assert constraint_f_test(op, ap) > 0.05  # F = 0.05 x 109 / 3 = 1.8: p = 0.15
    assert rows[choose_solution(rows, IndexingParams())].lattice == "oP"
    # the same table with oP's residuals twice the triclinic ones: F ~ 20, rejected
    rows[2] = _fit_row(3, "oP", 23, 0.18, 8, base * 2.0)
    assert constraint_f_test(rows[2], ap) < 1e-6
    assert rows[choose_solution(rows, IndexingParams())].lattice == "mP"
    # ... and one that fits by rejecting a fifth of the spots is not accepted either
    drop = np.arange(40) % 5 == 0
    rows[2] = _fit_row(3, "oP", 23, 0.128, 8, base, used=~drop)
    assert constraint_f_test(rows[2], ap) == 0.0
    assert rows[choose_solution(rows, IndexingParams())].lattice == "mP"
    # beyond the wider penalty limit (50) the F test does not rescue it
    rows[2] = _fit_row(3, "oP", 60, 0.128, 8, base)
    assert rows[choose_solution(rows, IndexingParams())].lattice == "mP"


def test_solution_and_symmetry_override_the_choice():
    rows = [_row(1, "aP", 0, 0.1), _row(2, "mP", 3, 0.1), _row(3, "oP", 30, 0.1)]
    assert choose_solution(rows, IndexingParams(solution=3)) == 2
    assert choose_solution(rows, IndexingParams(symmetry="P212121")) == 2
    with pytest.raises(IndexingError, match="SOLUTION 9"):
        choose_solution(rows, IndexingParams(solution=9))
