"""AUTOINDEX on the nanoBragg development set through the usage-contract command file
(``AUTOINDEX DPS REFINE IMAGE 1 IMAGE n`` / GO, header geometry only), scored against the truth
with the set's own scorer (``tools/score_matrix.py``).  Skipped when ../shared is absent.

Tolerance (issue 9.6): the right crystal system and every cell edge within 0.5 % of the truth
before cell refinement.  Each set is one run shared by its asserts.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mosflm_py.session import Session

SIM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sim"

SETS = {
    # set: (template, last image, lattice of the truth)
    "dev_p1_smallcell": ("p1small_1_#####.cbf.gz", 30, "aP"),
    "dev_c2221_fine_weak": ("c2221_1_#####.cbf.gz", 60, "oC"),
    "dev_p21_highmosaic_ccd": ("p21ccd_1_###.img.gz", 30, "mP"),  # needs the header pedestal
    "dev_hex_twotheta": ("hex2t_1_#####.cbf.gz", 40, "hP"),  # swung detector, 2theta = 15
}


@pytest.fixture(scope="module", params=sorted(SETS))
def indexed(request, tmp_path_factory):
    name = request.param
    folder = SIM / name
    if not (folder / "truth.json").is_file():
        pytest.skip(f"development set not found at {folder}")
    template, last, lattice = SETS[name]
    mat = tmp_path_factory.mktemp(name) / "index.mat"
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [
            f"TEMPLATE {template}",
            f"DIRECTORY {folder / 'images'}",
            f"NEWMAT {mat}",
            f"AUTOINDEX DPS REFINE IMAGE 1 IMAGE {last}",
            "GO",
        ]
    )
    score = None
    if mat.is_file():
        p = subprocess.run(
            [
                sys.executable,
                str(SIM / "tools" / "score_matrix.py"),
                str(mat),
                str(folder / "truth.json"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        score = json.loads(p.stdout)
    return name, lattice, s.results.indexing, out.getvalue(), score


def test_devset_autoindex_lattice_and_cell(indexed):
    name, lattice, res, log, score = indexed
    assert res is not None, log[-3000:]
    assert res.solution.lattice == lattice, name
    assert score is not None
    err = max(abs(v) for v in score["static"]["cell_error_percent_abc"])
    assert err <= 0.5, f"{name}: cell edges {err:.3f} % off the truth"
    assert "nan" not in log.split("DPS Indexing using")[1].split("Suggested Solution")[0]


def test_devset_autoindex_uses_phi_centroids(indexed):
    _, _, _, log, _ = indexed
    assert "with phi centroids" in log and "also searched" in log
