"""Tests of the unmerged MTZ writer (mosflm_py.output.mtz)."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.atomic import OutputFileError
from mosflm_py.errors import MosflmError
from mosflm_py.output.mtz import (
    COLUMNS,
    BatchHeader,
    MtzMeta,
    MtzRecords,
    default_mtz_name,
    read_unmerged_mtz,
    write_unmerged_mtz,
)
from mosflm_py.output.mtz_columns import Flag, decode_bgpkratios, decode_mpart, encode_mpart

CELL = (51.6158, 51.6158, 157.6046, 90.0, 90.0, 90.0)
SPACE_GROUP = "P 43 21 2"


def rotation(seed):
    q = np.random.default_rng(seed).normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def make_records(n=2000, n_images=4, seed=0):
    rng = np.random.default_rng(seed)
    npart = rng.integers(1, 4, n)
    ipart = np.minimum(rng.integers(1, 4, n), npart)
    partial = npart > 1
    return MtzRecords(
        hkl=rng.integers(-20, 21, size=(n, 3)),
        batch=rng.integers(1, n_images + 1, n) + 100,
        I=rng.normal(500.0, 200.0, n),
        sigI=rng.uniform(5, 30, n),
        Ipr=rng.normal(500.0, 200.0, n),
        sigIpr=rng.uniform(5, 30, n),
        fraction=np.where(partial, rng.uniform(0.05, 0.95, n), 1.0),
        xdet=rng.uniform(0, 2048, n),
        ydet=rng.uniform(0, 2048, n),
        rot=rng.uniform(0, 4, n),
        width=rng.uniform(0.3, 1.2, n),
        lp=rng.uniform(0.5, 2.0, n),
        partial=partial,
        mpart=encode_mpart(npart, ipart),
        flag=rng.choice([0, int(Flag.OVERLOAD), int(Flag.BGRATIO | Flag.EDGE)], n),
        bgratio=rng.uniform(0.8, 2.0, n),
        pkratio=rng.uniform(0.5, 4.0, n),
        gradient=rng.uniform(0.0, 0.05, n),
    )


def make_batches(n_images=4, reverse=False):
    out = []
    for k in range(n_images):
        out.append(
            BatchHeader(
                number=101 + k,
                phi_start=10.0 + k,
                phi_end=11.0 + k,
                cell=CELL,
                U=rotation(k),
                missets_start=(0.1 * k, -0.2, 0.05),
                missets_end=(0.1 * k + 0.01, -0.2, 0.05),
                mosaic=0.45,
                wavelength=0.97966,
                distance=169.65,
                detector_limits=(0.0, 2048.0, 0.0, 2048.0),
                two_theta=5.0,
                divergence=(0.02, 0.01),
                dispersion=2e-4,
                reverse_phi=reverse,
                title=f"image {101 + k}",
            )
        )
    return out


META = MtzMeta(cell=CELL, wavelength=0.97966, space_group=SPACE_GROUP, title="TS03 test",
               pname="TS03", xname="12287", dname="INFL", history=("MOSFLM_PY run",))  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("mtz") / "out.mtz"
    records, batches = make_records(), make_batches()
    write_unmerged_mtz(path, records, batches, META)
    return path, records, batches, read_unmerged_mtz(path)


def test_columns_and_types(written):
    _, _, _, got = written
    assert list(got.types.items()) == list(COLUMNS)


def test_records_identical(written):
    _, rec, _, got = written
    c = got.columns
    f32 = lambda a: np.asarray(a, np.float32).astype(np.float64)  # noqa: E731
    np.testing.assert_array_equal(c["BATCH"], rec.batch)
    for label, value in [("I", rec.I), ("SIGI", rec.sigI), ("IPR", rec.Ipr),
                         ("SIGIPR", rec.sigIpr), ("FRACTIONCALC", rec.fraction),
                         ("XDET", rec.xdet), ("YDET", rec.ydet), ("ROT", rec.rot),
                         ("WIDTH", rec.width), ("LP", rec.lp)]:  # fmt: skip
        np.testing.assert_array_equal(c[label], f32(value), err_msg=label)
    np.testing.assert_array_equal(c["MPART"], rec.mpart)
    np.testing.assert_array_equal(c["FLAG"], rec.flag)
    np.testing.assert_array_equal(got.partial, rec.partial)
    bg, pk, gr = decode_bgpkratios(c["BGPKRATIOS"])
    np.testing.assert_allclose(bg, np.minimum(np.trunc(rec.bgratio * 10) / 10, 9.9), atol=1e-9)
    np.testing.assert_allclose(pk, np.rint(rec.pkratio * 100) / 100, atol=1e-9)
    np.testing.assert_allclose(gr, rec.gradient, atol=5e-3)  # float32 of ~40000.xx
    n, i = decode_mpart(c["MPART"], got.partial)
    assert np.all(n[rec.partial] >= 2) and np.all(n[~rec.partial] == 1)


def test_isym_maps_back_to_observed_indices(written):
    import gemmi

    _, rec, _, got = written
    np.testing.assert_array_equal(got.hkl_original, rec.hkl)  # gemmi's own inverse mapping
    sg = gemmi.SpaceGroup(SPACE_GROUP)
    asu = gemmi.ReciprocalAsu(sg)
    assert all(asu.is_in(h) for h in got.hkl_asu.tolist())
    ops = sg.operations().sym_ops
    for h_asu, isym, h_obs in list(zip(got.hkl_asu, got.isym, rec.hkl))[:300]:
        op = ops[(isym - 1) // 2]
        image = op.apply_to_hkl(h_obs.tolist())
        if isym % 2 == 0:  # Friedel mate: operator then inversion
            image = [-v for v in image]
        assert image == h_asu.tolist()


def test_file_header(written):
    _, rec, _, got = written
    mtz = got.mtz
    assert mtz.title == "TS03 test"
    assert mtz.spacegroup.xhm() == SPACE_GROUP
    ds = mtz.datasets[1]
    assert (ds.project_name, ds.crystal_name, ds.dataset_name) == ("TS03", "12287", "INFL")
    assert ds.wavelength == pytest.approx(0.97966, abs=1e-6)
    assert ds.cell.parameters == pytest.approx(CELL, abs=1e-4)
    assert mtz.history == ["MOSFLM_PY run"]
    assert mtz.nreflections == len(rec)
    assert list(mtz.sort_order) == [0, 0, 0, 0, 0]


def test_batch_headers_decode(written):
    _, _, batches, got = written
    assert [b["number"] for b in got.batches] == [101, 102, 103, 104]
    for want, b in zip(batches, got.batches):
        assert b["title"] == want.title
        assert b["dataset_id"] == 1 and b["nbsetid"] == 1
        np.testing.assert_allclose(b["cell"], CELL, atol=1e-4)
        np.testing.assert_allclose(b["U"], want.U, atol=1e-6)
        np.testing.assert_allclose(b["phixyz_start"], want.missets_start, atol=1e-6)
        np.testing.assert_allclose(b["phixyz_end"], want.missets_end, atol=1e-6)
        assert b["crydat"][0] == pytest.approx(0.45, abs=1e-6)
        # as MOSFLM: PHIRANGE and SCANAX 0, the axis in E1, beam vectors towards the source
        assert (b["phistt"], b["phiend"], b["phirange"]) == pytest.approx(
            (want.phi_start, want.phi_end, 0.0), abs=1e-5
        )
        np.testing.assert_array_equal(b["scanax"], [0, 0, 0])
        np.testing.assert_array_equal(b["e1"], [0, 0, 1])
        np.testing.assert_array_equal(b["source"], [-1, 0, 0])
        np.testing.assert_allclose(b["so"], [-1, 0, 0], atol=1e-7)
        assert b["alambd"] == pytest.approx(0.97966, abs=1e-6)
        assert b["delamb"] == pytest.approx(2e-4, rel=1e-5)
        assert (b["divhd"], b["divvd"]) == pytest.approx((0.02, 0.01), abs=1e-7)
        assert b["dx"] == pytest.approx(169.65, abs=1e-4)
        assert b["theta"] == pytest.approx(5.0, abs=1e-6)
        np.testing.assert_array_equal(b["detlm"], [0, 2048, 0, 2048])
        assert (b["ldtype"], b["ndet"], b["ngonax"], b["jsaxs"], b["lbmflg"]) == (1, 1, 1, 1, 1)
        assert b["misflg"] == 2 and b["ncryst"] == 0
        # jumpax: reciprocal axis with the largest direction cosine on Z of U.B
        ub = want.U @ np.diag([1 / CELL[0], 1 / CELL[1], 1 / CELL[2]])
        cos = np.abs(ub[2]) / np.linalg.norm(ub, axis=0)
        assert b["jumpax"] == int(np.argmax(cos)) + 1


def test_reverse_phi_scan_axis(tmp_path):
    path = tmp_path / "rev.mtz"
    write_unmerged_mtz(path, make_records(50), make_batches(reverse=True), META)
    b = read_unmerged_mtz(path).batches[0]
    np.testing.assert_array_equal(b["e1"], [0, 0, -1])


def test_missing_values_are_nan(tmp_path):
    rec = make_records(20)
    rec = MtzRecords(
        hkl=rec.hkl, batch=rec.batch, I=rec.I, sigI=rec.sigI, Ipr=np.full(20, np.nan),
        sigIpr=np.full(20, np.nan), fraction=rec.fraction, xdet=rec.xdet, ydet=rec.ydet,
        rot=rec.rot, width=rec.width, lp=rec.lp, partial=rec.partial,
    )  # fmt: skip
    path = tmp_path / "nan.mtz"
    write_unmerged_mtz(path, rec, make_batches(), META)
    c = read_unmerged_mtz(path).columns
    assert np.isnan(c["IPR"]).all() and np.isnan(c["SIGIPR"]).all()
    assert np.isnan(c["BGPKRATIOS"]).all()
    assert (c["FLAG"] == 0).all() and (c["MPART"] == 0).all()


def test_batch_header_errors_and_atomicity(tmp_path):
    path = tmp_path / "x.mtz"
    path.write_bytes(b"old")
    with pytest.raises(MosflmError, match="no batch header"):
        write_unmerged_mtz(path, make_records(30), make_batches()[:2], META)
    with pytest.raises(MosflmError, match="not unique"):
        write_unmerged_mtz(path, make_records(30), make_batches() * 2, META)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mtz"]
    with pytest.raises(OutputFileError):
        write_unmerged_mtz(tmp_path / "nodir" / "x.mtz", make_records(30), make_batches(), META)


def test_records_validate_lengths():
    with pytest.raises(ValueError, match="rows"):
        MtzRecords(hkl=np.zeros((3, 3)), batch=[1, 2], I=[1, 2, 3], sigI=[1, 2, 3],
                   Ipr=[1, 2, 3], sigIpr=[1, 2, 3], fraction=[1, 1, 1], xdet=[0, 0, 0],
                   ydet=[0, 0, 0], rot=[0, 0, 0], width=[1, 1, 1], lp=[1, 1, 1],
                   partial=[0, 0, 0])  # fmt: skip


@pytest.mark.parametrize(
    ("template", "first", "expected"),
    [
        ("12287_1_E1_###.img", 1, "12287_1_E1_001.mtz"),
        ("/data/hg_###.mar1600", 1, "hg_001.mtz"),
        ("insulin_1_####.cbf.gz", 7, "insulin_1_0007.mtz"),
    ],
)
def test_default_mtz_name(template, first, expected):
    assert default_mtz_name(template, first) == expected


_CCTBX_READER = """
import json, sys
import iotbx.mtz
obj = iotbx.mtz.object(sys.argv[1])
b = obj.batches()[0]
print(json.dumps({
    "n": obj.n_reflections(), "labels": [c.label() for c in obj.columns()],
    "types": [c.type() for c in obj.columns()], "nbatch": obj.n_batches(), "num": b.num(),
    "phi": [b.phistt(), b.phiend()], "dx": list(b.dx()), "alambd": b.alambd(),
    "detlm": list(b.detlm()), "umat": list(b.umat()), "crydat": list(b.crydat()),
    "sg": obj.space_group().type().lookup_symbol(),
    "hkl0": list(obj.extract_miller_indices()[0]),
}))
"""


def test_read_by_cctbx_if_available(written):
    """Second, independent reader (cctbx iotbx.mtz, CCP4 cmtzlib underneath).

    Run in a subprocess: importing iotbx.mtz after gemmi in one process segfaults
    (cctbx-base 2025.11 with gemmi 0.7.5).
    """
    import json
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import iotbx.mtz"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cctbx (iotbx.mtz) not importable; pip install cctbx-base")
    path, rec, batches, got = written
    out = subprocess.run([sys.executable, "-c", _CCTBX_READER, str(path)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    r = json.loads(out.stdout)
    assert r["n"] == len(rec)
    assert r["labels"] == [c[0].replace("/", "_") for c in COLUMNS]  # cmtzlib renames M/ISYM
    assert r["types"] == [c[1] for c in COLUMNS]
    assert r["nbatch"] == 4 and r["num"] == 101
    assert r["phi"] == pytest.approx([10.0, 11.0])
    assert r["dx"][0] == pytest.approx(169.65, abs=1e-4)
    assert r["alambd"] == pytest.approx(0.97966, abs=1e-6)
    assert r["detlm"][:4] == [0.0, 2048.0, 0.0, 2048.0]
    assert r["umat"] == pytest.approx(list(batches[0].U.ravel(order="F")), abs=1e-6)
    assert r["crydat"][0] == pytest.approx(0.45, abs=1e-6)
    assert r["sg"] == "P 43 21 2"
    assert r["hkl0"] == got.hkl_asu[0].tolist()
