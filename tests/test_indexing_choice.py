"""MOSFLM's automatic choice of solution (issue 9.4), on solution tables given as numbers.

The rule (``mosflm_py.indexing.solutions``): the highest-symmetry solution whose penalty is at
most 20 is suggested unless its refined sd(x,y) is clearly worse than the triclinic one's.
The cases are MOSFLM's own: the real 7.0.0 autoindexing log in ../shared/data/real/mosflm_logs
(solution 3, mC penalty 2, chosen while oI and mI with penalty 24 refine as well) and the
pseudo-symmetry example of the MOSFLM course notes (seeds: cubic by penalty, but sd(x,y)
0.34 mm against 0.18 mm for the right orthorhombic solution).
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import IndexingError
from mosflm_py.indexing.solutions import IndexingParams, SolutionRow, choose_solution


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
    # ... but not once its penalty is above MOSFLM's threshold (20)
    rows[2] = _row(3, "oP", 23, 0.128)
    assert rows[choose_solution(rows, IndexingParams())].lattice == "mP"


def test_solution_and_symmetry_override_the_choice():
    rows = [_row(1, "aP", 0, 0.1), _row(2, "mP", 3, 0.1), _row(3, "oP", 30, 0.1)]
    assert choose_solution(rows, IndexingParams(solution=3)) == 2
    assert choose_solution(rows, IndexingParams(symmetry="P212121")) == 2
    with pytest.raises(IndexingError, match="SOLUTION 9"):
        choose_solution(rows, IndexingParams(solution=9))
