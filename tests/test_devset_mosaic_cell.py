"""Mosaic spread and cell refinement on a nanoBragg development set (../shared; skipped if absent).

dev_hex_twotheta, usage-contract cell-refinement command file (POSTREF SEGMENT 2, PROCESS 1 3,
PROCESS 38 40) started from the true matrix perturbed by a 0.5 % larger cell and a 0.3° rotation
(written with the program's own matrix_file module) and MOSAIC ESTIMATE.  Tolerances:
- MOSAIC ESTIMATE within 25 % of the post-refined mosaic spread, and both between 0.7 and 3 × the
  nanoBragg mosaic value (0.3°; η is a full width, see mosflm_py.mosaic.rocking);
- refined cell edges within 0.05 % of the truth, orientation within 0.1°, |error| ≤ 3 esd;
- rms observed − calculated share of the parts ≤ 0.1.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mosflm_py.geometry.matrix_file import read_matrix_file, write_matrix_file
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.session import Session

SET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sim" / "dev_hex_twotheta"
pytestmark = pytest.mark.skipif(not (SET / "truth.mat").exists(), reason="../shared absent")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hexcell")
    truth = read_matrix_file(SET / "truth.mat")
    lam = json.loads((SET / "truth.json").read_text())["wavelength_A"]
    rot = rot_axis((1.0, -2.0, 0.5), 0.3)
    a = rot @ np.asarray(truth.A) / 1.005  # reciprocal axes 0.5 % shorter: cell 0.5 % larger
    cell = tuple(c * 1.005 for c in truth.cell[:3]) + tuple(truth.cell[3:])
    start = tmp / "start.mat"
    write_matrix_file(start, a, (0.0, 0.0, 0.0), rot @ np.asarray(truth.U), cell)
    out = tmp / "refined.mat"
    lines = ['TEMPLATE "hex2t_1_#####.cbf.gz"', f'DIRECTORY "{SET / "images"}"',
             f"MATRIX {start}", "SYMMETRY P6122", f"NEWMAT {out}", "MOSAIC ESTIMATE", "GO",
             "POSTREF SEGMENT 2", "PROCESS 1 3", "GO", "PROCESS 38 40", "GO"]
    import io

    buf = io.StringIO()
    ses = Session(out=buf)
    ses.run_lines(lines)
    return ses, buf.getvalue(), read_matrix_file(out), truth, lam, out


def test_mosaic_estimate_agrees_with_postrefinement(run):
    ses, log = run[0], run[1]
    est = float(re.search(r"estimated as --->\s*([\d.]+)", log).group(1))
    res = ses.results.refinement
    assert 0.7 * 0.3 < est < 3 * 0.3, log
    assert 0.7 * 0.3 < res.mosaic < 3 * 0.3
    assert abs(est - res.mosaic) < 0.25 * res.mosaic, (est, res.mosaic)
    assert res.postref.rms_fraction <= 0.1


def test_cell_back_from_perturbed_matrix(run):
    ses, mat, truth = run[0], run[2], run[3]
    err = np.array(mat.cell[:3]) - np.array(truth.cell[:3])
    assert np.all(np.abs(err) / np.array(truth.cell[:3]) < 5e-4), mat.cell
    esd = np.array(ses.results.refinement.cell_esds[:3])
    assert np.all(np.abs(err) <= 3 * esd), (err, esd)
    # orientation (and cell) scored by the development set's own scorer
    out = subprocess.run([sys.executable, str(SET.parent / "tools" / "score_matrix.py"),
                          str(run[5]), str(SET / "truth.json")], capture_output=True, text=True,
                         check=True).stdout
    ang = float(re.search(r'"orientation_error_deg"\s*:\s*([-\d.eE]+)', out).group(1))
    assert ang < 0.1, out
