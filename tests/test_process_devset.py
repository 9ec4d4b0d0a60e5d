"""PROCESS on pieces of the nanoBragg development set (../shared/data/sim), truth matrix given.

Driven with the usage_contract second integration form (MATRIX truth.mat, SYMMETRY, MOSAIC):
* MAXWIDTH is an angle in degrees and fine-sliced reflections are integrated as 20+ partial
  parts whose FRACTIONCALC add up to one (dev_c2221_fine_weak, 0.05° images);
* a PROCESS that integrates nothing fails honestly: ``***`` message, non-zero exit, no new MTZ
  (an earlier file is kept);
* integration accuracy against the true amplitudes on a short piece of dev_p1_smallcell.

Skipped when ../shared is absent.
"""

from __future__ import annotations

import json

import devset
import gemmi
import numpy as np
import pytest
from conftest import REPO, run_script

SIM = REPO.parent / "shared" / "data" / "sim"

pytestmark = pytest.mark.skipif(not SIM.is_dir(), reason=f"development set not found at {SIM}")


def _script(folder: str, template: str, sg: str, first: int, last: int, extra: str = "") -> str:
    d = SIM / folder
    return (
        f'TEMPLATE "{template}"\nDIRECTORY "{d / "images"}"\nMATRIX {d / "truth.mat"}\n'
        f"SYMMETRY {sg}\n{extra}HKLOUT out.mtz\nPROCESS {first} {last}\nGO\nEXIT\n"
    )


# ------------------------------------------------------------------------------------------
# fine-sliced weak data: MAXWIDTH in degrees, 20+ parts adding up to one
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c2221_piece(tmp_path_factory):
    """Images 11-50 (2°) of the 0.05° C2221 set with a 0.9° mosaic spread held fixed, so that
    every reflection is at least 0.9° wide (18+ images) and MAXWIDTH 5 (degrees) keeps it."""
    tmp = tmp_path_factory.mktemp("c2221")
    script = _script(
        "dev_c2221_fine_weak",
        "c2221_1_#####.cbf.gz",
        "C2221",
        11,
        50,
        "MOSAIC 0.9\nPOSTREF FIX ALL\nMAXWIDTH 5\n",
    )
    rc, log = run_script(script, tmp)
    return rc, log, tmp


def test_fine_sliced_reflections_are_integrated_as_many_parts(c2221_piece):
    rc, log, tmp = c2221_piece
    assert rc == 0, log[-3000:]
    mtz = gemmi.read_mtz_file(str(tmp / "out.mtz"))
    assert len(mtz.batches) == 40
    g = devset.partial_groups(mtz)
    # the widths are 0.9-3 degrees = 18-60 images: counted in images, MAXWIDTH 5 would have
    # rejected every reflection; as an angle it keeps them, each integrated on every image
    assert g["n"].max() >= 20
    assert np.median(g["n"]) >= 10


def test_fine_sliced_fractions_of_parts_add_up_to_one(c2221_piece):
    rc, log, tmp = c2221_piece
    assert rc == 0, log[-3000:]
    mtz = gemmi.read_mtz_file(str(tmp / "out.mtz"))
    tj = json.loads((SIM / "dev_c2221_fine_weak" / "truth.json").read_text())
    phi0 = tj["oscillation_start_deg"] + 10 * tj["oscillation_width_deg"]
    phi1 = tj["oscillation_start_deg"] + 50 * tj["oscillation_width_deg"]
    g = devset.partial_groups(mtz)
    inside = (g["lo"] > phi0 + 0.01) & (g["hi"] < phi1 - 0.01) & (g["n"] >= 20)
    assert inside.sum() >= 20
    # rejected parts (overlaps, gaps) are missing from the file, so a sum may be below one,
    # never above; most reflections have all their parts written and sum to exactly one
    assert (g["frac"][inside] <= 1.0 + 2e-3).all()
    assert np.median(g["frac"][inside]) == pytest.approx(1.0, abs=2e-3)
    # reflections cut by the start of the range: recorded less than 0.4 (DIALS's partiality
    # cut-off), they keep their recorded share; recorded more, they are completed (parts and
    # fractions divided by the share: sum one), unless a part was rejected
    from mosflm_py.processing.fractions import MIN_RECORDED

    cut = g["lo"] < phi0 - 0.05
    fc = g["frac"][cut]
    assert cut.any() and (fc <= 1.0 + 2e-3).all()
    assert (fc < MIN_RECORDED).any() and (np.abs(fc - 1.0) < 2e-3).any()
    assert np.mean((fc < MIN_RECORDED) | (np.abs(fc - 1.0) < 2e-3)) > 0.8


# ------------------------------------------------------------------------------------------
# honest failure
# ------------------------------------------------------------------------------------------


def test_process_that_integrates_nothing_fails_and_keeps_the_earlier_mtz(tmp_path):
    earlier = b"an earlier good file"
    (tmp_path / "out.mtz").write_bytes(earlier)
    # every reflection is at least 0.9 degrees wide: with MAXWIDTH 0.5 (degrees) none is kept
    script = _script(
        "dev_c2221_fine_weak",
        "c2221_1_#####.cbf.gz",
        "C2221",
        1,
        3,
        "MOSAIC 0.9\nPOSTREF FIX ALL\nMAXWIDTH 0.5\n",
    )
    rc, log = run_script(script, tmp_path)
    assert rc != 0
    msg = [ln for ln in log.splitlines() if ln.startswith(" *** ")]
    assert msg and "no reflection was integrated" in log, log[-3000:]
    assert "MAXWIDTH" in log and "too wide" in log
    assert (tmp_path / "out.mtz").read_bytes() == earlier
    assert not list(tmp_path.glob("*.mtz.tmp*")) and len(list(tmp_path.glob("*mtz*"))) == 1


# ------------------------------------------------------------------------------------------
# accuracy against the truth
# ------------------------------------------------------------------------------------------


def _truth(folder: str) -> tuple[gemmi.SpaceGroup, dict[tuple[int, int, int], float]]:
    d = SIM / folder
    sg = gemmi.SpaceGroup(json.loads((d / "truth.json").read_text())["space_group_full_symbol"])
    table = {}
    gops = sg.operations()
    for line in (d / "truth_F.hkl").read_text().splitlines():
        t = line.split()
        if len(t) == 4 and not line.lstrip().startswith("#"):
            h = (int(t[0]), int(t[1]), int(t[2]))
            f2 = float(t[3]) ** 2
            for op in gops.sym_ops:
                for s in (1, -1):
                    table[tuple(s * v for v in op.apply_to_hkl(list(h)))] = f2
    return sg, table


def test_profile_fitted_intensities_match_the_truth_p1_piece(tmp_path):
    """dev_p1_smallcell images 1-12 (6°) with the truth matrix and MOSAIC 0.8.

    Reflections recorded completely (parts adding up to >= 0.95 of the reflection): Pearson
    CC(IPR summed over parts, F_true^2) >= 0.97 and the spread of (I - k F^2) / sigma(I) not
    below 0.8 (sigma(I) is not overestimated).  Measured when written: CC 0.977.  The limit is
    the rocking-width model: it has no term for the finite mosaic-domain size (~115 A here),
    so the low-resolution reflections, whose rocking curves are several degrees wide, lose
    their outer parts (with such a term, CC 0.9997 on the same images); raise the limit to
    0.995 when the model has it.
    """
    rc, log = run_script(
        _script("dev_p1_smallcell", "p1small_1_#####.cbf.gz", "P1", 1, 12, "MOSAIC 0.8\n"), tmp_path
    )
    assert rc == 0, log[-3000:]
    g = devset.partial_groups(gemmi.read_mtz_file(str(tmp_path / "out.mtz")))
    _, truth = _truth("dev_p1_smallcell")
    f2 = np.array([truth.get(tuple(h), np.nan) for h in g["hkl"]])
    ok = np.isfinite(f2) & (f2 > 0) & (g["frac"] >= 0.95) & (g["var"] > 0)
    assert ok.sum() >= 100
    i, f, v = g["ipr"][ok], f2[ok], g["var"][ok]
    cc = np.corrcoef(i, f)[0, 1]
    assert cc >= 0.97, cc
    k = np.sum(i * f / v) / np.sum(f * f / v)
    z = (i - k * f) / np.sqrt(v)
    assert 1.4826 * np.median(np.abs(z - np.median(z))) >= 0.8
