"""tests/devset.py, the development-set harness: command files, log parsing, sigma calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from devset import SIM_ROOT, DevSet, Run, command_file, sigma_calibration


def test_command_files_are_the_usage_contract_shapes():
    idx = command_file("index", "x_1_#####.cbf.gz", "/data/x", 40)
    assert idx.splitlines() == [
        'TEMPLATE "x_1_#####.cbf.gz"',
        'DIRECTORY "/data/x"',
        "NEWMAT index.mat",
        "AUTOINDEX DPS REFINE IMAGE 1 IMAGE 40",
        "MOSAIC ESTIMATE",
        "GO",
        "EXIT",
    ]
    ref = command_file("cellref", "x_1_#####.cbf.gz", "/data/x", 40)
    assert ref.splitlines()[5:] == [
        "GO",
        "POSTREF SEGMENT 2",
        "PROCESS 1 3",
        "GO",
        "PROCESS 38 40",
        "GO",
        "EXIT",
    ]
    integ = command_file("integrate", "x_1_###.img", "/d", 30, first=5)
    assert "HKLOUT integrated.mtz" in integ
    assert "AUTOINDEX DPS REFINE IMAGE 5 IMAGE 34" in integ and "PROCESS 5 34" in integ
    allowed = {
        "TEMPLATE",
        "DIRECTORY",
        "NEWMAT",
        "HKLOUT",
        "AUTOINDEX",
        "MOSAIC",
        "GO",
        "POSTREF",
        "PROCESS",
        "EXIT",
    }
    for text in (idx, ref, integ):  # only the usage-contract keywords: nothing dataset-specific
        assert {line.split()[0] for line in text.splitlines()} <= allowed
        assert "MOSAIC ESTIMATE" in text
    with pytest.raises(ValueError):
        command_file("strategy", "x", "/d", 3)


def test_run_log_parsing():
    log = "\n".join(
        [
            " Suggested Solution: 6 oP with penalty 1",
            " Refined cell        47.14   58.86   72.10   90.0   90.0   90.0   Space group P 2 2 2",
            " The mosaicity has been estimated as --->  0.45 <---",
            " Image     1: beam  90.9  84.5  dist 62.00  missets 0 0 0  mosaic 0.512",
            " Image     2: beam  90.9  84.5  dist 62.00  missets 0 0 0  mosaic 0.498",
        ]
    )
    run = Run(kind="integrate", workdir=SIM_ROOT, returncode=0, log=log, seconds=1.0)
    assert run.lattice == "oP"
    assert run.autoindex_cell == [47.14, 58.86, 72.10, 90.0, 90.0, 90.0]
    assert run.mosaic_estimate == pytest.approx(0.45)
    assert run.mosaic_refined == pytest.approx(0.498)
    run.log += "\n Refined mosaic spread (without safety factor) 0.310 +- 0.020 deg"
    assert run.mosaic_refined == pytest.approx(0.31)
    assert Run(kind="index", workdir=SIM_ROOT, returncode=1, log="", seconds=0).lattice is None


def _write_mtz(path, hkl, batch, inten, sig, frac, cell):
    import gemmi

    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup("P 1")
    mtz.set_cell_for_all(gemmi.UnitCell(*cell))
    mtz.add_dataset("sim")
    for label, kind in (
        ("BATCH", "B"),
        ("I", "J"),
        ("SIGI", "Q"),
        ("IPR", "J"),
        ("SIGIPR", "Q"),
        ("FRACTIONCALC", "R"),
    ):
        mtz.add_column(label, kind)
    data = np.column_stack([hkl, batch, inten, sig, inten, sig, frac]).astype(np.float32)
    mtz.set_data(data)
    mtz.write_to_file(str(path))


@pytest.mark.skipif(
    not (SIM_ROOT / "tools" / "score_mtz.py").is_file(),
    reason="development-set scorers (../shared/data/sim/tools) not found",
)
@pytest.mark.parametrize("sigma_factor", [1.0, 2.0])
def test_sigma_calibration_on_a_synthetic_mtz(tmp_path, sigma_factor):
    """I = k F^2 + sigma_true N(0,1), split into two partials on consecutive batches; the MTZ's
    sigma is ``sigma_factor`` x sigma_true, so the rms z must be 1 / sigma_factor."""
    rng = np.random.default_rng(3)
    cell = (30.0, 40.0, 50.0, 90.0, 90.0, 90.0)
    grid = np.stack(
        np.meshgrid(np.arange(1, 15), np.arange(1, 15), np.arange(1, 12), indexing="ij"), axis=-1
    ).reshape(-1, 3)
    f = rng.uniform(5.0, 60.0, len(grid))
    (tmp_path / "truth_F.hkl").write_text(
        "".join(f"{h} {k} {l} {v:.4f}\n" for (h, k, l), v in zip(grid, f))
    )
    (tmp_path / "truth.json").write_text(json.dumps({"space_group": "P 1", "cell": list(cell)}))
    ds = DevSet(name="fake", path=tmp_path, truth={"space_group": "P 1", "cell": list(cell)})
    k = 0.7
    sig = np.sqrt(k * f**2 + 25.0)
    inten = k * f**2 + sig * rng.normal(size=f.size)
    # each reflection as two partials (60 % + 40 %) on batches 3 and 4
    hkl = np.concatenate([grid, grid])
    batch = np.concatenate([np.full(f.size, 3), np.full(f.size, 4)])
    part_i = np.concatenate([0.6 * inten, 0.4 * inten])
    part_s = sigma_factor * np.concatenate([np.sqrt(0.6) * sig, np.sqrt(0.4) * sig])
    frac = np.concatenate([np.full(f.size, 0.6), np.full(f.size, 0.4)])
    mtz = tmp_path / "x.mtz"
    _write_mtz(mtz, hkl, batch, part_i, part_s, frac, cell)
    out = sigma_calibration(mtz, ds)
    assert out["n_IPR"] == f.size
    assert out["IPR"] == pytest.approx(1.0 / sigma_factor, rel=0.05)
    assert out["I"] == pytest.approx(1.0 / sigma_factor, rel=0.05)
    assert "error" in sigma_calibration(tmp_path / "missing.mtz", ds)
