"""MOSFLM-style .spt spot files: round trip, terminator, atomic write, bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mosflm_py.errors import MosflmError
from mosflm_py.spotfinding import SpotList, read_spot_file, read_spot_file_header, write_spot_file


def _spots(n=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 400, n)
    y = rng.uniform(0, 420, n)
    return SpotList(
        x_mm=x, y_mm=y, x_px=x / 0.172, y_px=y / 0.172, intensity=rng.uniform(-5, 1e5, n),
        sigma=rng.uniform(1, 300, n), size_x=np.full(n, 3, np.int32),
        size_y=np.full(n, 4, np.int32), n_pixels=np.full(n, 9, np.int32),
        peak=np.full(n, 50.0), background=np.full(n, 2.0), d_spacing=np.full(n, 3.0),
        flags=np.zeros(n, np.int32), image=np.ones(n, np.int32), phi=rng.uniform(-180, 360, n))


def test_round_trip(tmp_path):
    s = _spots()
    p = tmp_path / "spots.spt"
    write_spot_file(p, s, (2527, 2463), 0.172, 0.172, (217.33, 211.02))
    back = read_spot_file(p)
    assert len(back) == len(s)
    np.testing.assert_allclose(back.x_mm, s.x_mm, atol=5e-4)
    np.testing.assert_allclose(back.y_mm, s.y_mm, atol=5e-4)
    np.testing.assert_allclose(back.phi, s.phi, atol=5e-4)
    np.testing.assert_allclose(back.intensity, s.intensity, atol=5e-3)
    np.testing.assert_allclose(back.sigma, s.sigma, atol=5e-3)
    np.testing.assert_allclose(back.x_px, s.x_px, atol=5e-3)
    assert read_spot_file_header(p) == ((2527, 2463), 0.172, 0.172, (217.33, 211.02))
    lines = p.read_text().splitlines()
    # MOSFLM's layout: three header lines, six numbers per spot, six -999 to end
    assert len(lines) == len(s) + 4 and lines[-1].split() == ["-999.00"] * 6
    assert [len(t.split()) for t in lines[:3]] == [5, 2, 2]
    assert lines[0].split()[:2] == ["2527", "2463"] and float(lines[0].split()[3]) == 1.0
    assert all(len(t.split()) == 6 for t in lines[3:])
    assert [f for f in tmp_path.iterdir()] == [p]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # normal permissions, not 0600


def test_reads_spot_file_as_crystfel_writes_it(tmp_path):
    """The layout of CrystFEL's write_spt() (it feeds ipmosflm's AUTOINDEX DPS FILE).

    Its C formats are kept as they are, to show the layout.
    """
    p = tmp_path / "xfel-1_001.spt"
    rows = [(-12.5, 7.25, 0.0, 0.0, 1000.0, 10.0), (3.0, -4.5, 0.0, 0.0, 250.0, 5.0)]
    text = "%10d %10d %10.8f %10.6f %10.6f\n" % (1, 1, 0.0, 1.0, 0.0)  # noqa: UP031 (C formats)
    text += "%10d %10d\n" % (0, 1) + "%10.5f %10.5f\n" % (0.0, 0.0)  # noqa: UP031 (C formats)
    for r in rows:
        text += "%10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n" % r  # noqa: UP031 (C formats)
    text += "%10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n" % ((-999.0,) * 6)  # noqa: UP031 (C formats)
    p.write_text(text)
    head = read_spot_file_header(p)
    assert head[0] == (1, 1) and head[3] == (0.0, 0.0)
    s = read_spot_file(p)
    np.testing.assert_allclose(s.x_mm, [-12.5, 3.0])
    np.testing.assert_allclose(s.y_mm, [7.25, -4.5])
    np.testing.assert_allclose(s.intensity, [1000.0, 250.0])
    np.testing.assert_allclose(s.sigma, [10.0, 5.0])


def test_empty_list_and_trailing_text(tmp_path):
    p = tmp_path / "e.spt"
    write_spot_file(p, SpotList(), (10, 10), 0.1, 0.1, (0.5, 0.5))
    assert len(read_spot_file(p)) == 0
    p.write_text(p.read_text() + "anything after the terminator\n")
    assert len(read_spot_file(p)) == 0


def test_bad_files(tmp_path):
    with pytest.raises(MosflmError, match="cannot read"):
        read_spot_file(tmp_path / "missing.spt")
    p = tmp_path / "bad.spt"
    p.write_text("100 100 0.1 0.1\n5 5\n1 2 3 4 5\n")
    with pytest.raises(MosflmError, match="terminator"):
        read_spot_file(p)
    p.write_text("hello\n")
    with pytest.raises(MosflmError, match="not a MOSFLM spot file"):
        read_spot_file(p)
    p.write_text("100 100 0.1 0.1\n5 5\n1 2 3\n-999 -999 -999 -999 -999\n")
    with pytest.raises(MosflmError, match="expected X Y PHI I SIGI"):
        read_spot_file(p)
