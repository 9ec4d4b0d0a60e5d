"""QUICKSYMM on mosflm-py's own integration (issue 13 item 3).

dev_c2221_fine_weak (../shared; skipped when absent): the whole sweep (60 images of 0.05°, 3°)
integrated with the true matrix in P1 (so that nothing of the symmetry is given), then
QUICKSYMM: the true Laue group mmm is chosen. Its first 30 images (1.5°) leave at least one
symmetry element without enough related pairs to score: the data cannot decide, and QuickSymm
says so instead of choosing (the tie would otherwise go to the lower symmetry, 2/m). The other
development sets, integrated by scripts/bench_devset.py with AUTOINDEX, are checked by
scripts/bench_quickscale_dials.py (README, QuickScale section).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_script

from mosflm_py.scaling.observations import read_unmerged
from mosflm_py.scaling.pipeline import quicksymm

REPO = Path(__file__).resolve().parents[1]
SET = REPO.parent / "shared" / "data" / "sim" / "dev_c2221_fine_weak"

pytestmark = [
    pytest.mark.skipif(not (SET / "truth.mat").exists(), reason="../shared absent"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def c2221_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qs_own")
    script = (
        f'TEMPLATE "c2221_1_#####.cbf.gz"\nDIRECTORY "{SET / "images"}"\n'
        f"MATRIX {SET / 'truth.mat'}\nSYMMETRY P1\nHKLOUT c.mtz\nPROCESS 1 60\nGO\n"
        "QUICKSYMM\nGO\nEXIT\n"
    )
    rc, log = run_script(script, tmp)
    return rc, log, tmp


def test_quicksymm_finds_mmm_on_own_integration(c2221_sweep):
    rc, log, tmp = c2221_sweep
    assert rc == 0, log[-3000:]
    assert "lattice symmetry mmm" in log
    assert "Best Laue group: mmm (P 2 2 2)" in log  # primitive: integrated in P1


def test_quicksymm_undecided_on_a_short_piece(c2221_sweep):
    rc, log, tmp = c2221_sweep
    obs = read_unmerged(str(tmp / "c.mtz"))
    res = quicksymm(obs.take(obs.batch <= 30), require=False)
    assert res.laue is not None and res.laue.undetermined
    # at least one element of mmm has no evidence (too few pairs): choosing 2/m or mmm would be
    # a guess (measured: 4, 9 and 0 pairs on the three 2-folds)
    assert res.laue.unscored
    assert res.space_group.hm == "P 1"  # left in the file's group
