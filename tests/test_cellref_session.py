"""Cell refinement through the session: POSTREF AUTO chooses segments ~90° apart (iMosflm)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import run_script

from mosflm_py.geometry.matrix_file import read_matrix_file

TRUE_CELL = (52.1, 52.1, 71.3, 90.0, 90.0, 90.0)


@pytest.mark.slow
def test_postref_auto_segments_refine_cell(tmp_path):
    from mosflm_py.simulate import default_params, simulate_dataset

    params = default_params(nslow=384, nfast=384, beam_x=33.1, beam_y=31.7, distance=90.0,
                            cell=TRUE_CELL, space_group="P 4 21 2", n_images=100,
                            osc_width=1.0, mosaic=0.4, resolution=2.2, seed=11)
    simulate_dataset(params, tmp_path, fmt="cbf", name="sim")
    script = f"""TEMPLATE "sim_#####.cbf"
DIRECTORY "{tmp_path}"
MATRIX truth.mat
SYMMETRY P4212
MOSAIC 0.4
CELL 52.40 52.40 71.00 90 90 90
NEWMAT refined.mat
POSTREF AUTO
PROCESS 1 100
GO
EXIT
"""
    rc, log = run_script(script, tmp_path)
    assert rc == 0, log[-3000:]
    segs = re.search(r"Automatic choice of segments.*", log).group(0)
    starts = [int(m) for m in re.findall(r"images (\d+) to", segs)]
    assert len(starts) == 2 and 80 <= starts[1] - starts[0] <= 100, segs
    assert "Cell refinement is complete" in log
    mat = read_matrix_file(tmp_path / "refined.mat")
    # cell refined from a 0.6 % error to within 0.2 % of the truth
    np.testing.assert_allclose(mat.cell[:3], TRUE_CELL[:3], rtol=2e-3)
