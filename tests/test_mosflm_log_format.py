"""The log as MOSFLM writes it, read the way pipelines read it (issue 10).

1. The readers in :mod:`mosflm_log_parsers` (token positions of xia2's MOSFLM wrappers) are
   checked on the real MOSFLM 6.2.6 / 7.0.0 logs, with the values printed there.
2. The same readers run on mosflm-py's log of a small simulated sweep driven the way xia2
   drives ipmosflm (keywords on stdin, stdin closed without EXIT): AUTOINDEX + MOSAIC
   ESTIMATE, a two-segment cell refinement, and PROCESS.  What they read is compared with the
   simulation's truth.
3. Golden transcripts: the same three logs, normalised (numbers, paths and timings masked,
   warning paragraphs dropped, repeated lines collapsed), compared line by line with
   ``tests/golden/*.log``.  After an intended change of wording, regenerate them with
   ``MOSFLM_PY_UPDATE_GOLDEN=1 pytest tests/test_mosflm_log_format.py``.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from pathlib import Path

import gemmi
import numpy as np
import pytest
from conftest import REAL_DATA
from mosflm_log_parsers import parse_cellref, parse_index, parse_integrate, parse_summary

from mosflm_py.output import mosflm_log as ml

GOLDEN = Path(__file__).parent / "golden"
REAL_LOGS = REAL_DATA / "mosflm_logs"
TRUE_CELL = (52.1, 52.1, 71.3, 90.0, 90.0, 90.0)
N_IMAGES = 8


def _real(name: str) -> list[str]:
    path = REAL_LOGS / name
    if not path.is_file():
        pytest.skip(f"real MOSFLM log {path} not found")
    return path.read_text(errors="replace").splitlines()


# -------------------------------------------------------------------------------------------
# 1. the readers on the real logs
# -------------------------------------------------------------------------------------------


def test_readers_on_real_autoindex_log():
    r = parse_index(_real("mosflm-autoindex.lp"))
    assert len(r["solutions"]) == 44
    assert r["chosen"] == 3 and r["lattice"] == "mC" and r["space_group_number"] == 5
    assert r["refined"][3]["cell"] == (226.99, 52.17, 43.88, 90.0, 99.0, 89.9)
    assert r["cell"] == (226.9847, 52.2528, 43.6293, 90.0, 100.998, 90.0)
    assert r["beam"] == (108.67, 102.06)
    assert r["mosaic"] == [0.66] and r["distance"] == 180.01
    assert r["raster"] == [13, 17, 9, 4, 5] and r["separation"] == [0.51, 0.71]
    assert r["resolution_estimate"] == 2.75


def test_readers_on_real_cell_refinement_log():
    c = parse_cellref(_real("mosflm-cellrefinement.log"))
    assert c["ok"] and "aborted" not in c
    assert c["cell"] == c["refined_cell_2"] == (51.616, 51.616, 157.605, 90.0, 90.0, 90.0)
    assert c["cell_errors"] == (0.008, 0.008, 0.015, 0.0, 0.0, 0.0)
    assert c["rms_images"] == [1, 2, 3, 4] and sorted(c["rms_table"]) == [1, 2, 3, 4]
    assert c["rms_table"][4] == [0.038, 0.044, 0.042, 0.043]
    assert c["distance"] == pytest.approx(169.625) and c["mosaic"] == 0.49
    assert c["raster"].split() == ["17", "19", "13", "6", "6"]
    assert c["separation"] == (0.51, 0.71)
    assert all(len(v) == 4 for v in c["rms_per_cycle"].values())


def test_readers_on_real_integration_log():
    g = parse_integrate(_real("mosflm-integration.log"))
    assert g["hklout"] == "12287_1_E1_001.mtz" and g["nref"] == 239869
    assert (g["first"], g["last"]) == (1, 60)
    one = g["per_image"][1]
    assert one["strong"] == 3967 and one["overloads"] == 2 and one["rejected"] == 3
    assert one["resolution_bins"][0] == 3.88 and len(one["i_sigma"]) == 8


def test_reader_on_real_summary_file():
    path = REAL_LOGS / "SUMMARY"
    if not path.is_file():
        pytest.skip("real SUMMARY not found")
    s = parse_summary(path.read_text(errors="replace"))
    assert len(s["detector_columns"]) == 22 and len(s["postref_columns"]) == 15
    assert sorted(s["detector"]) == list(range(1, 61))
    assert s["detector"][1]["rsym"] == 0.104 and s["detector"][1]["nsym"] == 64
    assert 1 not in s["postref"] and s["postref"][2]["nr"] == 613


# -------------------------------------------------------------------------------------------
# 2. our log, driven as a pipeline drives ipmosflm
# -------------------------------------------------------------------------------------------


def _run(folder: Path, script: str, argv: list[str]) -> tuple[int, str]:
    from mosflm_py.cli import main as mosflm_main

    out = io.StringIO()
    old = os.getcwd()
    os.chdir(folder)
    try:
        rc = mosflm_main(["--nolog", *argv], stdin=io.StringIO(script), stdout=out)
    finally:
        os.chdir(old)
    return rc, out.getvalue()


def _head(folder: Path) -> str:
    return f'template "sim_#####.cbf"\ndirectory "{folder}"\nbeam 33.1 31.7\n'


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One simulated sweep (8 x 1 deg, P4212) and the three runs a pipeline makes on it."""
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("mosflm_log")
    params = default_params(nslow=384, nfast=384, beam_x=33.1, beam_y=31.7, distance=90.0,
                            cell=TRUE_CELL, space_group="P 4 21 2", n_images=N_IMAGES,
                            osc_width=1.0, mosaic=0.4, resolution=2.2, seed=11)
    simulate_dataset(params, folder, fmt="cbf", name="sim")
    index = _head(folder) + (
        "newmat xiaindex.mat\n"
        f"autoindex dps refine image 1 thresh 20\nautoindex dps refine image {N_IMAGES} "
        "thresh 20\nmosaic estimate 1\ngo\n")
    cell = _head(folder) + (
        "matrix xiaindex.mat\nnewmat xiarefine.mat\nsymmetry 90\nmosaic 0.4\n"
        "separation close\nrefinement residual 15.0\nrefinement include partials\n"
        "postref multi segments 2 repeat 10\npostref maxresidual 5.0\n"
        f"process 1 2\ngo\nprocess {N_IMAGES - 1} {N_IMAGES}\ngo\n")
    integrate = _head(folder) + (
        "harvest on\npname TS\nxname XT\ndname DS\nucwd\nmatrix xiarefine.mat\ndistance 90.0\n"
        "mosaic 0.4\nrefinement include partials\nsymmetry 90\npostref fix all\n"
        f"postref maxresidual 5.0\ngenfile {folder}/scratch/1_mosflm.gen\nseparation close\n"
        f"process 1 {N_IMAGES}\ngo\n")
    out = {"folder": folder}
    for name, script, argv in (("index", index, []), ("cell", cell, []),
                               ("integrate", integrate,
                                ["HKLOUT", "sim.mtz", "SUMMARY", "summary_90.log"])):
        rc, log = _run(folder, script, argv)
        assert rc == 0, log[-3000:]
        out[name] = log
    return out


def test_autoindex_log_read_by_pipeline(runs):
    log = runs["index"].splitlines()
    r = parse_index(log)
    assert len(r["solutions"]) == 44
    # every row of the table: a plain integer first, no '*' marker, no nan
    rows = [t for t in r["solutions"].values()]
    assert all(not t.lstrip().startswith("*") and "nan" not in t.lower() for t in rows)
    chosen = r["refined"][r["chosen"]]
    assert chosen["lattice"] == "tP" == r["lattice"]
    assert r["space_group_number"] == 75  # the lowest symmetry group of tP, as MOSFLM
    np.testing.assert_allclose(r["cell"], TRUE_CELL, rtol=5e-3)
    np.testing.assert_allclose(chosen["cell"], TRUE_CELL, rtol=5e-3)
    np.testing.assert_allclose(r["beam"], (33.1, 31.7), atol=0.1)
    assert r["distance"] == 90.0
    assert len(r["mosaic"]) == 1 and 0.0 < r["mosaic"][0] < 2.0
    assert len(r["raster"]) == 5 and r["raster"][0] % 2 == 1
    assert len(r["separation"]) == 2 and min(r["separation"]) > 0
    # resolution of the spots: the sweep extends to 2.2 A at the corners
    assert 2.0 < r["resolution_estimate"] < 5.0


def test_cell_refinement_log_read_by_pipeline(runs):
    c = parse_cellref(runs["cell"].splitlines())
    assert c["ok"] and "aborted" not in c
    np.testing.assert_allclose(c["cell"], TRUE_CELL, rtol=3e-3)
    assert c["refined_cell_2"] == c["cell"]
    assert len(c["cell_errors"]) == 6 and all(e >= 0 for e in c["cell_errors"])
    assert c["rms_images"] == [1, 2, N_IMAGES - 1, N_IMAGES]
    cycles = sorted(c["rms_table"])
    assert cycles == list(range(1, len(cycles) + 1)) and len(cycles) >= 1
    assert all(len(v) == 4 and all(0 <= x < 0.2 for x in v) for v in c["rms_table"].values())
    # xia2 replaces the table by the per-cycle "Final rms residual" values: same cycles
    assert sorted(c["rms_per_cycle"]) == cycles
    assert c["distance"] == pytest.approx(90.0, abs=0.5)
    assert c["yscale"] == pytest.approx(1.0, abs=0.01)
    assert c["mosaic"] >= 0.0
    np.testing.assert_allclose(c["beam"], (33.1, 31.7), atol=0.1)
    # what xia2 passes on to integration (RASTER and SEPARATION keywords)
    assert len(c["raster"].split()) == 5 and int(c["raster"].split()[0]) % 2 == 1
    assert len(c["separation"]) == 2 and min(c["separation"]) > 0


def test_integration_log_read_by_pipeline(runs):
    g = parse_integrate(runs["integrate"].splitlines())
    folder = runs["folder"]
    assert g["hklout"] == "sim.mtz" and "terminated" not in g
    mtz = gemmi.read_mtz_file(str(folder / g["hklout"]))
    assert g["nref"] == mtz.nreflections > 1000
    assert (g["first"], g["last"]) == (1, N_IMAGES)
    assert len(g["mosaics"]) == N_IMAGES and all(0 < m < 2 for m in g["mosaics"])
    for n in range(1, N_IMAGES + 1):
        s = g["per_image"][n]
        assert 0 < s["rmsd_pixel"] < 1.0, s
        np.testing.assert_allclose(s["beam"], (33.1, 31.7), atol=0.1)
        assert s["distance"] == pytest.approx(90.0, abs=0.5)
        np.testing.assert_allclose(s["cell"], TRUE_CELL, rtol=3e-3)
        assert s["strong"] > 100 and s["overloads"] >= 0 and s["rejected"] >= 0
        # I/sigma falls with resolution; the shells end near the 2.2 A limit of the sweep
        assert s["i_sigma"][0] > s["i_sigma"][-1]
        assert 2.0 < s["resolution_bins"][-1] < 2.6


# taken from the real integration log (" C. of G. SHIFTS = -0.006 -0.037mm  Background
# residual=  0.5 (peak scaled to 255)"), as a driver would match it
COG_RE = re.compile(r"^ C\. of G\. SHIFTS = *(-?\d+\.\d{3}) *(-?\d+\.\d{3})mm  Background "
                    r"residual= *(\d+\.\d) \(peak scaled to 255\)$")


def test_centre_of_gravity_line_as_real_log(runs):
    """Issue 10 item 3: the average-profile line with the C. of G. shifts and the background
    residual, once per block after the optimised raster, read by the real log's pattern."""
    real = [m for m in map(COG_RE.match, _real("mosflm-integration.log")) if m]
    assert len(real) == 60  # the real log: one per image processed
    ours = runs["integrate"].splitlines()
    found = [(i, COG_RE.match(t)) for i, t in enumerate(ours) if "C. of G. SHIFTS" in t]
    assert found and all(m for _, m in found), [ours[i] for i, _ in found]
    for i, m in found:
        assert "Final optimised raster parameters:" in "".join(ours[i - 3:i])
        dx, dy, resid = map(float, m.groups())
        # simulated spots are centred on the prediction: shifts well under a pixel (0.172 mm)
        assert abs(dx) < 0.1 and abs(dy) < 0.1, m.group(0)
        assert 0.0 <= resid < 20.0  # below PROFILE RMSBG, as for a usable profile
        # xia2's MosflmRefineCell reader: token 8 once "residual=" is removed
        assert float(ours[i].replace("residual=", "").split()[8]) == resid


def test_background_residual_per_image_in_cell_refinement_as_real_log(runs):
    """Issue 10: the cell-refinement log carries, per image and cycle after the positional
    refinement (and the raster on the first image), the C. of G. / Background residual line of
    the real 6.2.6 log, which xia2's cell-refinement reader collects per image."""
    real = _real("mosflm-cellrefinement.log")
    real_blocks = _image_blocks(real)
    assert len(real_blocks) == 16 and all(
        sum(bool(COG_RE.match(t)) for t in b) == 1 for b in real_blocks)
    assert len(parse_cellref(real)["background_residual"]) == 16
    ours = runs["cell"].splitlines()
    blocks = _image_blocks(ours)
    assert blocks
    for b in blocks:
        hits = [m for m in map(COG_RE.match, b) if m]
        assert len(hits) == 1, b
        i = next(k for k, t in enumerate(b) if COG_RE.match(t))
        # after the positional refinement of the image, before its post-refinement result
        assert any("CCX:" in t for t in b[:i]) and any("Real cell parameters" in t for t in b[i:])
        dx, dy, resid = map(float, hits[0].groups())
        # simulated spots sit on the prediction: shifts well under a pixel (0.172 mm); the
        # average profile of strong spots has a flat background, a few per cent of the peak
        assert abs(dx) < 0.1 and abs(dy) < 0.1, hits[0].group(0)
        assert 0.0 <= resid < 20.0
    got = parse_cellref(ours)["background_residual"]
    assert len(got) == len(blocks) and all(0.0 <= r < 20.0 for r in got)


def _image_blocks(lines: list[str]) -> list[list[str]]:
    """The lines of each "Processing Image" block (to the next banner or the cycle tables)."""
    starts = [i for i, t in enumerate(lines) if "Processing Image" in t]
    ends = starts[1:] + [len(lines)]
    out = []
    for a, e in zip(starts, ends):
        block = lines[a:e]
        stop = next((k for k, t in enumerate(block) if "as a function of cycle" in t
                     or "Cell refinement is complete" in t), len(block))
        out.append(block[:stop])
    return out


def test_summary_file_read_by_pipeline(runs):
    """Exactly MOSFLM's two tables with its columns, numbers everywhere (no ******)."""
    text = (runs["folder"] / "summary_90.log").read_text()
    assert "******" not in text
    s = parse_summary(text)
    real = REAL_LOGS / "SUMMARY"
    if real.is_file():
        want = parse_summary(real.read_text(errors="replace"))
        assert s["detector_columns"] == want["detector_columns"]
        assert s["postref_columns"] == want["postref_columns"]
    assert sorted(s["detector"]) == list(range(1, N_IMAGES + 1))
    for row in s["detector"].values():
        assert row["dist"] == pytest.approx(90.0, abs=0.5)
        assert row["full"] + row["part"] > 100 and row["i/sigi"] > 1
        assert 0 <= row["rsym"] < 0.5 and row["nsym"] >= 0 and row["sdrat"] >= 0
    # images post-refined during integration (none with POSTREF FIX ALL) have numbers
    for row in s["postref"].values():
        np.testing.assert_allclose([row["a"], row["b"], row["c"]], TRUE_CELL[:3], rtol=3e-3)


def test_newmat_files_carry_the_symm_line(runs):
    """MOSFLM's matrix file: nine lines of numbers, then ``SYMM <space group>``."""
    from mosflm_py.geometry.matrix_file import read_matrix_file

    for name, sg in (("xiaindex.mat", "P4"), ("xiarefine.mat", "P4212")):
        lines = (runs["folder"] / name).read_text().splitlines()
        assert len(lines) == 10 and lines[-1] == f"SYMM {sg}"
        # read as CrystFEL does: the first nine numbers are A row by row
        a = np.array([float(v) for v in " ".join(lines[:3]).split()]).reshape(3, 3)
        m = read_matrix_file(runs["folder"] / name)
        np.testing.assert_allclose(a, m.A, atol=1e-8)
        np.testing.assert_allclose(m.cell, TRUE_CELL, rtol=5e-3)


def test_harvest_file_as_mosflm_writes_it(runs):
    """HARVEST ON + UCWD: <DNAME>.mosflm_run_a_b in the current folder, MOSFLM's items."""
    path = runs["folder"] / f"DS.mosflm_run_1_{N_IMAGES}"
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "data_TS[DS]"

    def items(t: str) -> list[str]:
        return [ln.split()[0] for ln in t.splitlines() if ln.startswith("_")]

    real = REAL_LOGS / "INFL.mosflm_run_1_60"
    if real.is_file():
        want = [k for k in items(real.read_text()) if not k.startswith("_software.contact")]
        assert items(text) == want
    values = dict(t for t in (ln.split(None, 1) for ln in lines if ln.startswith("_"))
                  if len(t) == 2)
    assert values["_Symmetry.Int_Tables_number"].strip() == "90"
    assert values["_Symmetry.space_group_name_H-M"].strip() == "'P4212     '"
    np.testing.assert_allclose([float(values[f"_cell.length_{x}"]) for x in "abc"],
                               TRUE_CELL[:3], rtol=3e-3)
    assert float(values["_diffrn_measurement.ebi_d_res_high"]) == pytest.approx(2.2, abs=0.2)
    loop = lines[lines.index("loop_") + 9:]
    assert [int(t.split()[0]) for t in loop] == list(range(1, N_IMAGES + 1))
    assert all(len(t.split()) == 8 for t in loop)
    summary = parse_summary((runs["folder"] / "summary_90.log").read_text())
    for t in loop:  # the same per-image numbers as SUMMARY Table 1
        v = t.split()
        row = summary["detector"][int(v[0])]
        assert float(v[5]) == pytest.approx(row["rsym"], abs=1e-3) and int(v[6]) == row["nsym"]


def test_generate_file_written(runs):
    path = runs["folder"] / "scratch" / "1_mosflm.gen"
    lines = path.read_text().splitlines()
    assert lines[1].split()[1:] == "H K L BATCH M XDET YDET ROT WIDTH FRACTIONCALC".split()
    rows = np.array([[float(v) for v in t.split()] for t in lines[2:]])
    mtz = gemmi.read_mtz_file(str(runs["folder"] / "sim.mtz"))
    assert rows.shape == (mtz.nreflections, 10)
    assert set(rows[:, 3].astype(int)) == set(range(1, N_IMAGES + 1))
    np.testing.assert_allclose(np.sort(rows[:, 7]), np.sort(mtz.column_with_label("ROT")),
                               atol=1e-3)


def test_coords_gives_a_clear_error(runs):
    folder = runs["folder"]
    script = _head(folder) + ("matrix xiarefine.mat\nsymmetry 90\nmosaic 0.4\n"
                              "coords spots.coords\nprocess 1 1\ngo\n")
    rc, log = _run(folder, script, ["HKLOUT", "coords.mtz"])
    assert rc != 0 and "COORDS spots.coords" in log and "not implemented yet" in log
    assert "Traceback" not in log and not (folder / "coords.mtz").exists()


def test_failed_cell_refinement_says_processing_aborted(runs):
    """A driver recognises a failure by MOSFLM's words before the *** message."""
    folder = runs["folder"]
    script = _head(folder) + "matrix nonexistent.mat\npostref multi segments 2\nprocess 1 2\ngo\n"
    rc, log = _run(folder, script, [])
    assert rc != 0
    bad = "symmetry 90\nmosaic 0.4\npostref multi segments 1\nprocess 1 1\ngo\n"
    rc, log = _run(folder, _head(folder) + bad, [])  # no matrix: the run fails
    assert rc != 0 and parse_cellref(log.splitlines()).get("aborted")
    assert log.index("Processing will be aborted") < log.index(" *** ")


# -------------------------------------------------------------------------------------------
# 3. golden transcripts
# -------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def normalise(log: str, folder: Path) -> list[str]:
    """Mask what changes from run to run; keep the wording and the order of the lines."""
    lines = log.replace(str(folder), "<DIR>").splitlines()
    start = next((i for i, t in enumerate(lines) if t.startswith(" ===> ")), 0)
    out: list[str] = []
    in_warning = in_table = False
    for t in lines[start:]:
        if t.strip() == "***** WARNING *****":
            in_warning = True
            continue
        if in_warning:
            in_warning = bool(t.strip())
            continue
        if t.strip().startswith("Warning:"):
            continue
        if "No PENALTY SDCELL" in t:
            in_table = not in_table
        elif in_table and t.strip():
            t = "<solution row>"
        t = " ".join(_NUMBER.sub("#", t).split())
        if re.match(r"# [a-z]", t):  # counts of spots rejected per reason: data dependent
            continue
        if out and out[-1] == t:  # tables of varying length
            continue
        out.append(t)
    return out


@pytest.mark.parametrize("name", ["index", "cell", "integrate"])
def test_golden_transcript(runs, name):
    got = normalise(runs[name], runs["folder"])
    path = GOLDEN / f"{name}.log"
    if os.environ.get("MOSFLM_PY_UPDATE_GOLDEN") or not path.is_file():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text("\n".join(got) + "\n")
        if not os.environ.get("MOSFLM_PY_UPDATE_GOLDEN"):
            pytest.fail(f"golden transcript {path} was missing and has been written")
    want = path.read_text().splitlines()
    diff = list(difflib.unified_diff(want, got, "golden", "now", lineterm="", n=2))
    assert not diff, "\n".join(diff[:80])


# -------------------------------------------------------------------------------------------
# formatting functions on their own
# -------------------------------------------------------------------------------------------


class _Row:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_solution_rows_match_mosflm_layout():
    """Column positions of MOSFLM 7.0.0's table (refined, unrefined and hR rows)."""
    real = _real("mosflm-autoindex.lp")
    row = _Row(number=23, penalty=185.0, refined=True, sdcell=0.169, fracn=0.99, lattice="mC",
               cell=(43.88, 230.24, 52.17, 77.0, 90.0, 87.9), space_groups=("C 1 2 1",))
    assert ml.solution_row_lines(row)[0] in real
    row = _Row(number=44, penalty=999.0, refined=False, sdcell=float("nan"),
               fracn=float("nan"), lattice="tI", cell=(116.51, 139.05, 43.88, 79.1, 81.3, 128.3),
               space_groups=("I 4", "I 41", "I 4 2 2", "I 41 2 2"))
    assert ml.solution_row_lines(row)[0] in real
    hr = _Row(number=37, penalty=642.0, refined=False, sdcell=0.0, fracn=0.0, lattice="hR",
              cell=(90.74, 90.74, 49.01, 90.0, 90.0, 120.0), space_groups=("R 3:H", "R 3 2:H"))
    first, second = ml.solution_row_lines(hr)
    assert first.endswith("H3,H32 (hexagonal settings of R3 and R32)")
    assert second.endswith("R3,R32 (primitive rhombohedral cell)")
    assert int(first.split()[0]) == 37
    with pytest.raises(ValueError):
        int(second.split()[0])  # the continuation line is not read as a solution
    # the rhombohedral cell has the same volume / 3 as the hexagonal one
    a, b, c, al, be, ga = (float(v) for v in second.split()[:6])
    rh = gemmi.UnitCell(a, b, c, al, be, ga)
    assert rh.volume == pytest.approx(gemmi.UnitCell(*hr.cell).volume / 3, rel=5e-3)  # 0.1 deg


def test_per_cycle_table_columns():
    """xia2 slices the cycle rows at columns 11, 17, 23, ... (fields of width 6)."""
    rows = [{"cycle": c, "IMAGE": n, "RESID": 0.01 * c + 0.001 * n, "YSCALE": 1.0,
             "DIST": 100.0} for c in (1, 2) for n in (1, 2, 30)]
    lines = ml.cell_refinement_complete((50,) * 3 + (90,) * 3, (50,) * 3 + (90,) * 3,
                                        (0.01,) * 6, rows, 0.3, (0, 0, 0), (0, 0, 0), 1, 30)
    c = parse_cellref(lines)
    assert c["rms_images"] == [1, 2, 30]
    assert c["rms_table"][2] == [0.021, 0.022, 0.05]
    assert c["mosaic"] == 0.3


def test_real_log_lines_reproduced():
    """Lines whose exact text the real logs show are reproduced character for character."""
    integ = _real("mosflm-integration.log")
    cellref = _real("mosflm-cellrefinement.log")
    assert ml.image_banner("Processing", 1, 290.0, 291.0)[1:] == integ[336:339]
    pos = ml.positional_refinement(0.023, 0.6, 108.95, 105.22, 169.60, 0.9995, -30, -22)
    assert pos[:2] == integ[379:381]
    # same columns; XTOFRA is printed as 1.0000 (the distance itself is refined)
    assert pos[2].replace("1.0000", "0.9997") == integ[381]
    assert ml.raster_optimised((17, 19, 13, 6, 6))[0] in cellref
    assert ml.centre_of_gravity((-0.006, -0.037), 0.5)[0] == integ[403]
    # the header-disagreement warning (tests/test_session.py checks ours with this pattern)
    assert re.match(r"^ Input crystal to detector distance \(\s*([\d.]+)mm\) does NOT agree "
                    r"with value in the image header \(\s*([\d.]+)mm\)$", integ[66])
    assert integ[67] == " The input distance will be used."
    counts = ml.integrated_image(3967, 566, 2, 59, 3, 3967, 1)
    assert [counts[0], counts[1], counts[3], counts[4]] == [integ[k] for k in (2600, 2601, 2679,
                                                                              2681)]
    assert int(counts[0][:6]) == 3967  # a fixed-column (I6) reader
    assert ml.centre_of_gravity((0.003, -0.017), 0.2)[0] in cellref
    assert ml.separation_updated((0.51, 0.71))[0] in cellref
    assert " Refined mosaic spread (excluding safety factor):   0.49" in cellref
    done = ml.cell_refinement_complete(
        (51.821, 51.821, 158.103, 90, 90, 90), (51.616, 51.616, 157.605, 90, 90, 90),
        (0.008, 0.008, 0.015, 0, 0, 0), [], 0.49, (-0.02, -0.05, 0.02), (-0.01, -0.03, 0.0),
        1, 4)
    for line in (t for t in done if t.strip()):
        assert line in cellref, line


# -------------------------------------------------------------------------------------------
# MTZ header against the real MOSFLM files, field by field (issue 10 item 6)
# -------------------------------------------------------------------------------------------

REAL_MTZ = ("brap_ip_6A.mtz", "hypf_unmerged.mtz")
# batch ints and floats whose values agree in both real MOSFLM files (word offsets of the CCP4
# orientation block, see mosflm_py.output.mtz_batch); lbcell is 0 in the full-layout file
INTS_AS_MOSFLM = {"sizes": (slice(0, 3), [185, 29, 156]), "iortyp": (slice(3, 4), [0]),
                  "ncryst": (slice(12, 13), [0]), "lcrflg": (slice(13, 14), [0]),
                  "ldtype": (slice(14, 15), [1]), "jsaxs": (slice(15, 16), [1]),
                  "nbscal": (slice(16, 17), [0]), "ngonax": (slice(17, 18), [1]),
                  "lbmflg": (slice(18, 19), [1]), "ndet": (slice(19, 20), [1]),
                  "nbsetid": (slice(20, 21), [1])}
FLOATS_AS_MOSFLM = {"datum": (slice(33, 36), [0, 0, 0]), "scanax": (slice(38, 41), [0, 0, 0]),
                    "bscale": (slice(43, 44), [1]), "phirange": (slice(47, 48), [0]),
                    "e1": (slice(59, 62), [0, 0, 1]), "source": (slice(80, 83), [-1, 0, 0]),
                    "so": (slice(83, 86), [-1, 0, 0]), "delcor": (slice(88, 89), [0])}


def _real_mtz(name: str) -> gemmi.Mtz:
    path = REAL_DATA / "mosflm_mtz" / name
    if not path.is_file():
        pytest.skip(f"real MOSFLM MTZ {path} not found")
    return gemmi.read_mtz_file(str(path))


def _header_fields(mtz: gemmi.Mtz) -> dict:
    """The header fields a MOSFLM MTZ reader relies on, as comparable values."""
    out: dict = {}
    for name, (sl, _) in INTS_AS_MOSFLM.items():
        out[name] = {tuple(list(b.ints)[sl]) for b in mtz.batches}
    for name, (sl, _) in FLOATS_AS_MOSFLM.items():
        out[name] = {tuple(np.round(np.array(list(b.floats)[sl]), 4)) for b in mtz.batches}
    nums = [b.number for b in mtz.batches]
    out["batches_complete"] = nums == list(range(nums[0], nums[-1] + 1))
    out["batch_ids_in_column"] = set(np.unique(mtz.column_with_label("BATCH"))) <= set(nums)
    out["phi_from_header"] = all(b.floats[37] > b.floats[36] for b in mtz.batches)
    out["datasets"] = len([d for d in mtz.datasets if d.id > 0])
    out["missing_is_nan"] = bool(np.isnan(mtz.valm))
    col = {c.label: np.array(c, copy=False) for c in mtz.columns}
    m = col["M/ISYM"].astype(int) // 256
    mpart = col["MPART"].astype(int)
    out["mpart_codes"] = bool(np.all((mpart == 0) | ((mpart // 100 >= 2) & (mpart % 100 >= 1)
                                                      & (mpart % 100 <= mpart // 100))))
    out["mpart_zero_for_fulls"] = bool(np.all(mpart[m == 0] == 0))
    out["ipr_nan"] = int(np.isnan(col["IPR"]).sum())
    return out


def test_mtz_header_fields_as_real_mosflm_files(runs):
    ours = gemmi.read_mtz_file(str(runs["folder"] / "sim.mtz"))
    brap = _real_mtz("brap_ip_6A.mtz")
    # the full MOSFLM 6/7 column set, labels and types
    assert [(c.label, c.type) for c in ours.columns] == [(c.label, c.type) for c in brap.columns]
    got = _header_fields(ours)
    for real in (brap, _real_mtz("hypf_unmerged.mtz")):
        want = _header_fields(real)
        for name, (_, value) in {**INTS_AS_MOSFLM, **FLOATS_AS_MOSFLM}.items():
            assert want[name] == {tuple(value)}, (name, want[name])  # the real file says so
            assert got[name] == want[name], (name, got[name], want[name])
        for name in ("batches_complete", "batch_ids_in_column", "phi_from_header", "datasets",
                     "missing_is_nan", "mpart_codes", "mpart_zero_for_fulls", "ipr_nan"):
            assert got[name] == want[name], (name, got[name], want[name])
    # lbcell as in the full-layout file (the 2003 file has older flags)
    assert {tuple(list(b.ints)[4:10]) for b in ours.batches} == {(0,) * 6}
    assert {tuple(list(b.ints)[4:10]) for b in brap.batches} == {(0,) * 6}
    # partials are written as parts with MOSFLM's MPART = 100 Npart + Ipart
    mpart = np.array(ours.column_with_label("MPART"), int)
    assert (mpart >= 201).any()


def test_reflections_without_profile_fit_keep_summation_values():
    """No NaN IPR in the MTZ (as in the real MOSFLM files): the summation value is used."""
    from mosflm_py.processing.records import _fitted_or_summed

    ipr = np.array([10.0, np.nan, 30.0])
    sipr = np.array([1.0, np.nan, 3.0])
    isum, ssum = np.array([11.0, 21.0, 29.0]), np.array([1.5, 2.5, 3.5])
    np.testing.assert_array_equal(_fitted_or_summed(ipr, isum), [10.0, 21.0, 30.0])
    np.testing.assert_array_equal(_fitted_or_summed(sipr, ssum, ipr), [1.0, 2.5, 3.0])
