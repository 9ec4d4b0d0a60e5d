"""Seconds per stage of AUTOINDEX on the real test images (and dials.index if on PATH).

Usage: python scripts/bench_indexing.py [path/to/shared/data/real]
"""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from mosflm_py.actions.autoindex import spots_to_detector_spots
from mosflm_py.actions.common import experiment_for_image
from mosflm_py.actions.findspots import spots_for_images
from mosflm_py.geometry.reciprocal import spots_to_rlp
from mosflm_py.indexing.autoindex import autoindex, estimate_max_cell, select_spots
from mosflm_py.indexing.dps import find_basis
from mosflm_py.indexing.solutions import IndexingParams
from mosflm_py.session import Session

_DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/real"
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else _DEFAULT
CASES = {
    "l-cysteine (15 images)": (
        "l_cysteine_sweep04", "l-cyst_04_#####.cbf", list(range(1, 16)), []),
    "example_009 (1 image)": (
        "pilatus6m_p3_and_thaumatin", "example_###.cbf.gz", [9], ["FINDSPOTS MINPIX 3"]),
}


def main() -> None:
    for name, (folder, template, images, extra) in CASES.items():
        s = Session(out=io.StringIO())
        s.run_lines([f"DIRECTORY {DATA / folder}", f"TEMPLATE {template}", *extra])
        t0 = time.perf_counter()
        lists = spots_for_images(s, images, report=False)
        t1 = time.perf_counter()
        widths = {n: abs(np.subtract(*s.images().phi_range(n))) for n in images}
        spots = spots_to_detector_spots(lists, widths)
        exp = experiment_for_image(s, images[0], crystal=None)
        params = IndexingParams()
        mask, _ = select_spots(spots, params.threshold, params.min_spots)
        use = spots.select(mask)
        rlp = spots_to_rlp(use.x_mm, use.y_mm, use.phi, exp)
        maxc = estimate_max_cell(rlp, use.image)
        t2 = time.perf_counter()
        find_basis(rlp, maxc)
        t3 = time.perf_counter()
        res = autoindex(spots, exp, params)
        t4 = time.perf_counter()
        print(f"{name}: spot finding {t1 - t0:.2f} s, DPS basis search {t3 - t2:.2f} s, "
              f"full autoindex (DPS + 44 characters + refinement) {t4 - t3:.2f} s -> "
              f"{res.solution.lattice} {np.round(res.crystal.cell, 2)}")
    if shutil.which("dials.index"):
        print("dials.index found on PATH: run it on the same spots for comparison")
    else:
        print("dials.index not on PATH: no DIALS timing")


if __name__ == "__main__":
    main()
