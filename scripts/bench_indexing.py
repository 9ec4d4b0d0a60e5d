"""Seconds of spot finding and AUTOINDEX on the real test images and a simulated two-image case,
and (when DIALS is installed) dials.import + dials.find_spots + dials.index on the same images;
then AUTOINDEX on the development set (../shared/data/sim) beside DIALS 3.12's reference run.

Usage: python scripts/bench_indexing.py [path/to/shared/data/real] [--no-dials] [--dev-only]

Prints one line per case: our spot finding and AUTOINDEX seconds, the cell found, whether the
lattice is the known one and the largest error of the reduced cell edges against the known
answer (../shared/data/real/README.md), and the DIALS
seconds (import, find_spots, index, total) with the ratio DIALS / ours.  For each development
set (usage-contract command file ``AUTOINDEX DPS REFINE IMAGE 1 IMAGE n`` / GO, header geometry
only): the lattice suggested, the largest cell-edge error against the truth (scored with the
set's ``tools/score_matrix.py``) and the wall time, beside DIALS's recommended lattice, its
refined cell error and its find_spots + index + refine_bravais_settings time (from
``dials_ref/summary.json``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mosflm_py.actions.findspots import spots_for_images
from mosflm_py.session import Session

_DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/real"
SIM = Path(__file__).resolve().parents[2] / "shared/data/sim"
# development set: (image template, last image of the usage-contract AUTOINDEX line)
DEV_SETS = {
    "dev_hex_twotheta": ("hex2t_1_#####.cbf.gz", 40),
    "dev_c2221_fine_weak": ("c2221_1_#####.cbf.gz", 60),
    "dev_p21_highmosaic_ccd": ("p21ccd_1_###.img.gz", 30),
    "dev_p1_smallcell": ("p1small_1_#####.cbf.gz", 30),
}
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
DATA = Path(ARGS[0]) if ARGS else _DEFAULT
USE_DIALS = "--no-dials" not in sys.argv and shutil.which("dials.index") is not None

# name: (folder, template, images, file names for DIALS, extra dials.index options)
CASES = {
    "L-cysteine (15 x 0.1 deg)": (
        DATA / "l_cysteine_sweep04", "l-cyst_04_#####.cbf", list(range(1, 16)),
        [f"l-cyst_04_{i:05d}.cbf" for i in range(1, 16)], []),
    "L-cysteine (images 1, 7, 15)": (
        DATA / "l_cysteine_sweep04", "l-cyst_04_#####.cbf", [1, 7, 15], [], []),
    "example_009 (1 x 0.1 deg)": (
        DATA / "pilatus6m_p3_and_thaumatin", "example_###.cbf.gz", [9],
        ["example_009.cbf.gz"], []),
    "thaum_0500 (still)": (
        DATA / "pilatus6m_p3_and_thaumatin", "thaum_####.cbf.gz", [500],
        ["thaum_0500.cbf.gz"],
        # as in the data's readme_thaum_0500.txt (DIALS needs the still options and MAXCELL)
        ["stills.indexer=sequences", "max_cell=200", "space_group=P4"]),
}
# known answers (../shared/data/real/README.md): lattice and cell
KNOWN = {
    "L-cysteine": ("oP", (5.428, 8.141, 12.038, 90.0, 90.0, 90.0)),
    "example_009": ("hP", (91.34, 91.34, 45.91, 90.0, 90.0, 120.0)),
    "thaum_0500": ("tP", (57.99, 57.99, 149.83, 90.0, 90.0, 90.0)),
    "simulated P212121": ("oP", (47.3, 58.9, 71.6, 90.0, 90.0, 90.0)),
}


def cell_error(cell, truth) -> float:
    """Largest error (%) of the Niggli-reduced cell edges against the truth's."""
    from mosflm_py.indexing.niggli import basis_from_cell, niggli_reduce

    a = np.array(niggli_reduce(basis_from_cell(cell)).cell[:3])
    b = np.array(niggli_reduce(basis_from_cell(truth)).cell[:3])
    return float(np.max(np.abs(a - b) / b) * 100)


def simulated_case(tmp: Path) -> tuple:
    """Two 1-degree images 90 deg apart, P 21 21 21, 1024^2 Pilatus-like detector."""
    from mosflm_py.simulate.dataset import simulate_dataset
    from mosflm_py.simulate.params import default_params

    p = default_params(n_images=1, osc_width=1.0, seed=5)
    simulate_dataset(p, tmp, fmt="cbf")
    simulate_dataset(p.replace(first_image=91, phi_start=90.0), tmp, fmt="cbf")
    return (tmp, "sim_#####.cbf", [1, 91], [], [])  # DIALS cannot read this detector size


def ours(folder: Path, template: str, images: list[int]) -> tuple[float, float, str, object]:
    """(spot finding s, AUTOINDEX s excluding spot finding, result text, IndexingResult)."""
    s = Session(out=io.StringIO())
    s.run_lines([f"DIRECTORY {folder}", f"TEMPLATE {template}"])
    from mosflm_py.actions.autoindex import pixel_array_defaults

    pixel_array_defaults(s, images[0])
    t0 = time.perf_counter()
    spots_for_images(s, images, report=False)  # cached: AUTOINDEX reuses these spots
    t1 = time.perf_counter()
    s.run_lines(["AUTOINDEX DPS REFINE " + " ".join(f"IMAGE {i}" for i in images), "GO"])
    t2 = time.perf_counter()
    r = s.results.indexing
    text = "FAILED" if r is None else (
        f"{r.solution.lattice} {' '.join(f'{v:.2f}' for v in r.crystal.cell)} "
        f"sd(x,y) {r.sigma_xy:.3f} mm, distance {r.distance:.2f} mm")
    return t1 - t0, t2 - t1, text, r


def dials(folder: Path, files: list[str], extra: list[str]) -> tuple[float, float, float] | None:
    """Seconds of dials.import, dials.find_spots, dials.index (None if a step failed)."""
    with tempfile.TemporaryDirectory() as work:
        steps = [
            ["dials.import", *[str(folder / f) for f in files]],
            ["dials.find_spots", "imported.expt", "nproc=2"],
            ["dials.index", "imported.expt", "strong.refl", *extra],
        ]
        times = []
        for cmd in steps:
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            if done.returncode != 0:
                return None
        return times[0], times[1], times[2]


def dev_set(name: str, template: str, last: int) -> str:
    """One line: our lattice / cell error / time on a development set beside DIALS's."""
    import json

    folder = SIM / name
    with tempfile.TemporaryDirectory() as work:
        mat = Path(work) / "index.mat"
        s = Session(out=io.StringIO())
        t0 = time.perf_counter()
        s.run_lines([f"TEMPLATE {template}", f"DIRECTORY {folder / 'images'}", f"NEWMAT {mat}",
                     f"AUTOINDEX DPS REFINE IMAGE 1 IMAGE {last}", "GO"])
        dt = time.perf_counter() - t0
        r = s.results.indexing
        if r is None or not mat.is_file():
            ours_text = f"FAILED ({dt:.1f} s)"
        else:
            done = subprocess.run([sys.executable, str(SIM / "tools" / "score_matrix.py"),
                                   str(mat), str(folder / "truth.json")],
                                  capture_output=True, text=True)
            err = json.loads(done.stdout)["static"]["cell_error_percent_abc"]
            ours_text = (f"{r.solution.lattice} cell error {max(abs(v) for v in err):.3f} %, "
                         f"{dt:.1f} s")
    ref = json.loads((folder / "dials_ref" / "summary.json").read_text())
    rec = ref["bravais_recommended_highest_symmetry"]["bravais"]
    derr = ref["matrix_score_refined"]["static"]["cell_error_percent_abc"]
    steps = ref["steps"]
    dt_d = sum(steps[k]["wall_s"] for k in ("find_spots", "index_nosg", "refine_bravais")
               if k in steps)
    return (f"{name} (truth {ref['truth_lattice']}): mosflm-py {ours_text}; DIALS 3.12 {rec} "
            f"cell error {max(abs(v) for v in derr):.3f} % (after refinement), {dt_d:.1f} s")


def main() -> None:
    if SIM.is_dir():
        for name, (template, last) in DEV_SETS.items():
            if (SIM / name / "truth.json").is_file():
                print(dev_set(name, template, last), flush=True)
    else:
        print(f"development set not found at {SIM}")
    if "--dev-only" in sys.argv:
        return
    with tempfile.TemporaryDirectory() as tmp:
        cases = dict(CASES)
        cases["simulated P212121 (2 x 1 deg, 90 deg apart)"] = simulated_case(Path(tmp))
        for name, (folder, template, images, files, extra) in cases.items():
            if not folder.is_dir():
                print(f"{name}: data not found at {folder}")
                continue
            t_find, t_index, text, r = ours(folder, template, images)
            line = (f"{name}: mosflm-py spot finding {t_find:.2f} s, AUTOINDEX {t_index:.2f} s, "
                    f"total {t_find + t_index:.2f} s -> {text}")
            known = next((v for k, v in KNOWN.items() if name.startswith(k)), None)
            if known is not None and r is not None:
                ok = "right" if r.solution.lattice == known[0] else f"WRONG (truth {known[0]})"
                line += (f"; lattice {ok}, cell error {cell_error(r.crystal.cell, known[1]):.2f} "
                         "% (largest reduced edge)")
            if USE_DIALS and files:
                d = dials(folder, files, extra)
                if d is None:
                    line += "; DIALS failed"
                else:
                    tot = float(np.sum(d))
                    line += (f"; DIALS import {d[0]:.1f} s, find_spots {d[1]:.1f} s, index "
                             f"{d[2]:.1f} s, total {tot:.1f} s (DIALS / mosflm-py = "
                             f"{tot / (t_find + t_index):.1f})")
            print(line, flush=True)
    if not USE_DIALS:
        print("dials.index not on PATH (or --no-dials): no DIALS timing")


if __name__ == "__main__":
    main()
