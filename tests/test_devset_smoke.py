"""The development-set harness on real nanoBragg data: one AUTOINDEX run on dev_p1_smallcell.

Sanity bounds only (lattice, a matrix the scorer can read, cell within 2 %, orientation within
1 deg); the accuracy targets of issue 8 belong to the tests of the features that reach them.
"""

from __future__ import annotations

from devset import dev_set, run_job, score_matrix


def test_autoindex_on_the_small_cell_development_set(tmp_path):
    ds = dev_set("dev_p1_smallcell")
    run = run_job(ds, "index", tmp_path, timeout=600)
    assert run.returncode == 0, run.log[-2000:]
    assert run.lattice == ds.lattice == "aP"
    assert run.mosaic_estimate is not None and run.mosaic_estimate > 0
    score = score_matrix(run.matrix, ds)
    assert "error" not in score, score
    assert score["max_abs_cell_error_percent_abc"] < 2.0
    assert score["max_abs_angle_error_deg"] < 1.0
    assert score["orientation_error_deg"] < 1.0
