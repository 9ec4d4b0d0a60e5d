"""DPS basis search and rlp-level autoindexing on synthetic reciprocal lattices (all 14 Bravais)."""

from __future__ import annotations

import numpy as np
import pytest
from reference.indexing_ref import project_histograms_ref, synthetic_rlp

from mosflm_py.errors import IndexingError
from mosflm_py.indexing.dps import find_basis, hemisphere_directions, projection_histograms
from mosflm_py.indexing.niggli import basis_from_cell, niggli_reduce
from mosflm_py.indexing.rlp_index import index_rlp
from mosflm_py.indexing.solutions import IndexingParams

CASES = [
    ("aP", (5.3, 6.1, 7.4, 78.0, 85.0, 95.0), 0.8, 5.0),
    ("mP", (40.0, 60.0, 50.0, 90.0, 105.0, 90.0), 2.0, 1.0),
    ("mC", (120.0, 45.0, 70.0, 90.0, 110.0, 90.0), 2.0, 1.0),
    ("oP", (5.43, 8.14, 12.04, 90.0, 90.0, 90.0), 0.8, 3.0),
    ("oC", (70.0, 130.0, 180.0, 90.0, 90.0, 90.0), 2.5, 1.0),
    ("oI", (60.0, 80.0, 100.0, 90.0, 90.0, 90.0), 2.0, 1.0),
    ("oF", (80.0, 120.0, 150.0, 90.0, 90.0, 90.0), 2.5, 1.0),
    ("tP", (57.99, 57.99, 149.8, 90.0, 90.0, 90.0), 2.5, 1.0),
    ("tI", (100.0, 100.0, 60.0, 90.0, 90.0, 90.0), 2.5, 1.0),
    ("hP", (91.3, 91.3, 45.9, 90.0, 90.0, 120.0), 2.5, 1.0),
    ("hR", (80.0, 80.0, 300.0, 90.0, 90.0, 120.0), 3.0, 1.0),
    ("cP", (60.0, 60.0, 60.0, 90.0, 90.0, 90.0), 2.0, 1.0),
    ("cI", (78.0, 78.0, 78.0, 90.0, 90.0, 90.0), 2.0, 1.0),
    ("cF", (180.0, 180.0, 180.0, 90.0, 90.0, 90.0), 3.0, 1.0),
]


def test_hemisphere_directions_count_and_spacing():
    d = hemisphere_directions(0.029)
    assert 7000 < len(d) < 7700
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-12)
    assert d[:, 2].min() >= 0


def test_projection_histogram_kernel_matches_reference():
    rng = np.random.default_rng(5)
    rlp = rng.normal(0, 0.3, (200, 3))
    dirs = hemisphere_directions(0.3)
    span = 2.2 * np.abs(rlp).max() * np.sqrt(3)
    got = projection_histograms(rlp, dirs, span, 256)
    ref = project_histograms_ref(rlp, dirs, span, 256)
    np.testing.assert_allclose(got, ref, atol=1e-10)
    np.testing.assert_allclose(got.sum(axis=1), len(rlp), rtol=1e-12)


def test_serial_projection_histogram_kernel_matches_reference():
    from mosflm_py.kernels.fft_index import project_histograms_serial

    rng = np.random.default_rng(6)
    rlp = rng.normal(0, 0.3, (50, 3))
    dirs = hemisphere_directions(0.5)
    span = 2.2 * np.abs(rlp).max() * np.sqrt(3)
    got = np.zeros((len(dirs), 128))
    project_histograms_serial(rlp, dirs, span, got)
    np.testing.assert_allclose(got, project_histograms_ref(rlp, dirs, span, 128), atol=1e-10)


@pytest.mark.parametrize(("lattice", "cell", "d_min", "wedge"), CASES, ids=[c[0] for c in CASES])
def test_index_rlp_all_bravais_lattices(lattice, cell, d_min, wedge):
    """Right lattice chosen and refined cell within 0.2 % (edges) / 0.2 deg (angles)."""
    rlp, _ = synthetic_rlp(cell, lattice, seed=11, d_min=d_min, wedge=wedge, max_spots=800)
    res = index_rlp(rlp, max_cell=1.3 * max(cell[:3]))
    sol = res.solution
    assert sol.lattice == lattice
    # same lattice: Niggli-reduced cells of truth and result agree (setting independent)
    red_true = niggli_reduce(basis_from_cell(cell)).cell
    red_got = niggli_reduce(np.linalg.inv(sol.ub)).cell
    np.testing.assert_allclose(red_got[:3], red_true[:3], rtol=2e-3)
    np.testing.assert_allclose(red_got[3:], red_true[3:], atol=0.2)
    if lattice[0] in "othc":  # conventional cell is unique up to the order of the edges
        np.testing.assert_allclose(sorted(sol.cell[:3]), sorted(cell[:3]), rtol=2e-3)
        np.testing.assert_allclose(sol.cell[3:], cell[3:], atol=1e-9)
    assert sol.fracn > 0.8  # 10 % outliers were added
    assert len(res.rows) == 44
    assert [r.number for r in res.rows] == list(range(1, 45))
    assert all(a.penalty <= b.penalty + 1e-6 for a, b in zip(res.rows, res.rows[1:]))


def test_solution_and_symmetry_override():
    cell = (57.99, 57.99, 149.8, 90.0, 90.0, 90.0)
    rlp, _ = synthetic_rlp(cell, "tP", seed=3, d_min=2.5, max_spots=600)
    res = index_rlp(rlp, 200.0, IndexingParams(symmetry="P212121"))
    assert res.solution.lattice == "oP"
    res = index_rlp(rlp, 200.0, IndexingParams(solution=1))
    assert res.chosen == 0
    with pytest.raises(IndexingError, match="SOLUTION 50"):
        index_rlp(rlp, 200.0, IndexingParams(solution=50))


def test_too_few_or_random_vectors_fail_with_advice():
    rng = np.random.default_rng(0)
    with pytest.raises(IndexingError, match="THRESHOLD"):
        find_basis(rng.normal(0, 0.2, (5, 3)), 100.0)
