"""MOSFLM-style .spt spot files: round trip, terminator, atomic write, bad files."""

from __future__ import annotations

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
    np.testing.assert_allclose(back.x_mm, s.x_mm, atol=5e-5)
    np.testing.assert_allclose(back.y_mm, s.y_mm, atol=5e-5)
    np.testing.assert_allclose(back.phi, s.phi, atol=5e-5)
    np.testing.assert_allclose(back.intensity, s.intensity, atol=5e-3)
    np.testing.assert_allclose(back.sigma, s.sigma, atol=5e-3)
    np.testing.assert_allclose(back.x_px, s.x_px, atol=1e-3)
    assert read_spot_file_header(p) == ((2527, 2463), 0.172, 0.172, (217.33, 211.02))
    lines = p.read_text().splitlines()
    assert len(lines) == len(s) + 3 and lines[-1].split()[0] == "-999.0"
    assert [f for f in tmp_path.iterdir()] == [p]  # no temporary file left behind


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
