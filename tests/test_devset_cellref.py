"""Cell refinement on the small-cell nanoBragg development set (../shared; skipped if absent).

dev_p1_smallcell through the usage_contract.md cell-refinement command file (AUTOINDEX DPS REFINE
over all 30 images, MOSAIC ESTIMATE, POSTREF SEGMENT 2 with images 1-3 and 28-30), no tuning
keyword.  The crystal's small mosaic blocks give wide, tailed rocking curves spread over 3-4
images, unlike the uniform-ball model of post-refinement, and the post-refined cell came out
0.2-0.4 % short although the spots were predicted in the right places; the spot positions now
check the post-refined cell (and replace it where they reject it); with one rocking-curve model
(a Gaussian block term convolved with the ball) the post-refined cell is kept (measured -0.034
-0.024 -0.005 %).  Tolerances (issue 8 item 5): cell edges within
0.05 % of the truth (measured 0.00-0.02 %), orientation within 0.1° (measured 0.066°; the 16
nanoBragg mosaic domains of up to 0.35° (seeded: domain 0 unrotated, 15 random) have a mean
orientation 0.071° off the truth matrix (0.064° of it about the beam and the spindle, which a
fit with the spindle fixed sees), and DIALS gets 0.061° from all 30 images), |error| ≤ 3 esd
for every edge.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from devset import dev_set, run_job, score_matrix


@pytest.fixture(scope="module")
def p1_cellref(tmp_path_factory):
    ds = dev_set("dev_p1_smallcell")
    run = run_job(ds, "cellref", tmp_path_factory.mktemp("p1cell"), timeout=900)
    return ds, run


def _row(log: str, label: str) -> np.ndarray:
    m = re.search(rf"^ {label}\s+" + r"\s+".join([r"([-\d.]+)"] * 6), log, re.M)
    assert m, f"no '{label}' line in the log"
    return np.array([float(v) for v in m.groups()])


def test_p1_cell_refinement_reaches_the_truth(p1_cellref):
    ds, run = p1_cellref
    assert run.returncode == 0, run.log[-2000:]
    score = score_matrix(run.matrix, ds)
    assert "error" not in score, score
    assert score["max_abs_cell_error_percent_abc"] < 0.05, score
    assert score["orientation_error_deg"] < 0.1, score


def test_p1_cell_esds_cover_the_error(p1_cellref):
    ds, run = p1_cellref
    cell = _row(run.log, "Refined cell")
    esd = _row(run.log, "Error")
    err = cell[:3] - np.array(ds.cell[:3])
    assert np.all(esd[:3] > 0), esd
    assert np.all(np.abs(err) <= 3.0 * esd[:3]), (err, esd)


def test_p1_log_says_which_method_gave_the_cell(p1_cellref):
    """The spot positions check the post-refined cell (F test; precision with the distance
    free); the log names the method that gave the final cell, and the reason when the
    positions replaced the post-refined one."""
    _, run = p1_cellref
    m = re.search(r"^ Method: (post-refinement|global positional refinement)$", run.log, re.M)
    assert m, "no Method line"
    if m.group(1) == "global positional refinement":
        assert "the spot positions reject the post-refined cell" in run.log


@pytest.fixture(scope="module")
def p21_cellref(tmp_path_factory):
    ds = dev_set("dev_p21_highmosaic_ccd")
    run = run_job(ds, "cellref", tmp_path_factory.mktemp("p21cell"), timeout=900)
    return ds, run


def test_p21_cell_and_orientation_after_cell_refinement(p21_cellref):
    """dev_p21_highmosaic_ccd (0.7° mosaic, 1° images, CCD), same command file (segments 1-3 and
    28-30).  Rocking curves of 2-3 images leave only ~3 reflections recorded completely within
    the segments, so the spot positions cannot give the rotation about the spindle: it is held
    at the autoindexing value (before: left free it drifted to 0.107° in all; post-refinement's
    0.17°).  Cell edges within 0.05 % (measured 0.002-0.010 %; DIALS 0.09-0.12 %), orientation
    within 0.1° (measured 0.086°; the 20 seeded mosaic domains of up to 0.7° have a mean
    orientation 0.113° off the truth matrix, 0.059° of it about the beam and the spindle; DIALS
    0.067°), |error| ≤ 3 esd for every edge."""
    ds, run = p21_cellref
    assert run.returncode == 0, run.log[-2000:]
    score = score_matrix(run.matrix, ds)
    assert "error" not in score, score
    assert score["max_abs_cell_error_percent_abc"] < 0.05, score
    assert score["orientation_error_deg"] < 0.1, score
    cell = _row(run.log, "Refined cell")
    esd = _row(run.log, "Error")
    err = cell[:3] - np.array(ds.cell[:3])
    assert np.all(esd[:3] > 0) and np.all(np.abs(err) <= 3.0 * esd[:3]), (err, esd)
    assert "rotation about the spindle, so it is held" in " ".join(run.log.split())
