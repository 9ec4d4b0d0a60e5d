"""Templates, series discovery on the l-cysteine sweep, gaps, and imgCIF axis geometry."""

from __future__ import annotations

import os

import pytest

from mosflm_py.errors import ImageError
from mosflm_py.imageio import (
    ImageSeries,
    filename,
    find_numbers,
    read_header,
    template_from_filename,
)


@pytest.mark.parametrize(
    ("name", "template", "number"),
    [
        ("l-cyst_04_00001.cbf", "l-cyst_04_#####.cbf", 1),
        ("/d/x/thaum_0500.cbf.gz", "/d/x/thaum_####.cbf.gz", 500),
        ("12287_1_E1_001.img.bz2", "12287_1_E1_###.img.bz2", 1),
        ("prot_7_000123_master.h5", "prot_7_######_master.h5", 123),
        ("Cr8F8140k103.0026", "Cr8F8140k103.####", 26),
        ("run2_1_00148.cbf.bz2", "run2_1_#####.cbf.bz2", 148),
    ],
)
def test_template_from_filename(name, template, number):
    assert template_from_filename(name) == (template, number)
    assert filename(template, number) == name


def test_template_errors():
    with pytest.raises(ImageError):
        template_from_filename("example.mar")
    with pytest.raises(ImageError):
        filename("img_##.cbf", 123)
    with pytest.raises(ImageError):
        filename("img.cbf", 1)


@pytest.mark.realdata
def test_series_from_template_and_from_filename(real_data):
    d = str(real_data / "l_cysteine_sweep04")
    assert find_numbers("l-cyst_04_#####.cbf", [d]) == list(range(1, 16))
    s1 = ImageSeries.from_template("l-cyst_04_#####.cbf", ["/nonexistent", d])
    s2 = ImageSeries.from_filename(os.path.join(d, "l-cyst_04_00009.cbf"))
    for s in (s1, s2):
        assert s.numbers == list(range(1, 16)) and s.warnings == []
        assert os.path.basename(s.path(12)) == "l-cyst_04_00012.cbf"
        for n in (1, 7, 15):
            assert s.phi_range(n) == pytest.approx((0.1 * (n - 1), 0.1 * n), abs=1e-6)
        assert s.header(7).phi_start == pytest.approx(0.6, abs=1e-6)
        assert s.frame(2).shape == (1679, 1475)
    # phi of unread images comes from the model: only the first and last headers were parsed
    s3 = ImageSeries.from_filename(os.path.join(d, "l-cyst_04_00001.cbf"))
    s3.phi_range(8)
    assert sorted(s3._headers) == [1, 15]
    with pytest.raises(ImageError, match="not in the series"):
        s1.header(16)
    with pytest.raises(ImageError, match="no images match"):
        ImageSeries.from_template("nothing_###.cbf", [d])


@pytest.mark.realdata
def test_series_gaps_are_reported(real_data, tmp_path):
    src = real_data / "l_cysteine_sweep04"
    for n in (1, 2, 3, 6, 8):
        os.symlink(src / f"l-cyst_04_{n:05d}.cbf", tmp_path / f"l-cyst_04_{n:05d}.cbf")
    s = ImageSeries.from_filename(str(tmp_path / "l-cyst_04_00002.cbf"))
    assert s.numbers == [1, 2, 3, 6, 8]
    assert len(s.warnings) == 2
    assert "4-5" in s.warnings[0] and "7" in s.warnings[1]
    assert s.phi_range(6) == pytest.approx((0.5, 0.6), abs=1e-6)


def _edit_cbf(real_data, tmp_path, replacements):
    raw = (real_data / "l_cysteine_sweep04" / "l-cyst_04_00001.cbf").read_bytes()
    for old, new in replacements:
        assert old in raw
        raw = raw.replace(old, new)
    out = tmp_path / "edited_00001.cbf"
    out.write_bytes(raw)
    return out


@pytest.mark.realdata
def test_imgcif_two_theta_and_spindle_along_slow(real_data, tmp_path):
    """Spindle along imgCIF X (= detector slow) and DET_2THETA = 30 deg about it."""
    path = _edit_cbf(
        real_data,
        tmp_path,
        [
            (b"GON_PHI    rotation    goniometer GON_OMEGA 0.5774 -0.8165 0",
             b"GON_PHI    rotation    goniometer GON_OMEGA 1 0 0"),
            (b"FRAME1 DET_2THETA 0.0000 0.0", b"FRAME1 DET_2THETA 30.0000 0.0"),
        ],
    )
    h = read_header(path)
    # detector swung by +30 deg right-handed about imgCIF +X; in the MOSFLM frame chosen
    # (Z = -X_cif, REVERSEPHI) that is -30 deg, and the slow axis lies along the spindle
    assert h.two_theta == pytest.approx(-30.0, abs=1e-6)
    assert h.detector_omega == pytest.approx(90.0, abs=1e-6)
    assert h.reverse_phi is True
    # normal distance and the foot of the normal are unchanged by the swing
    assert h.distance == pytest.approx(160.0, abs=1e-6)
    assert h.beam_x == pytest.approx(148.78, abs=1e-6)
    assert h.beam_y == pytest.approx(125.56, abs=1e-6)


@pytest.mark.realdata
def test_imgcif_negative_increment_sets_reversephi(real_data, tmp_path):
    path = _edit_cbf(
        real_data,
        tmp_path,
        [
            (b"GON_PHI    rotation    goniometer GON_OMEGA 0.5774 -0.8165 0",
             b"GON_PHI    rotation    goniometer GON_OMEGA 0 1 0"),
            (b"SCAN1 GON_PHI    0.0000 0.1000 0.1000", b"SCAN1 GON_PHI    0.0000 -0.1000 -0.1000"),
            (b"FRAME1 GON_PHI 0.0000 0.0", b"FRAME1 GON_PHI 5.0000 0.0"),
        ],
    )
    h = read_header(path)
    # spindle along fast (default orientation); phi 5 -> 4.9 is written as -5 -> -4.9 about -Z
    assert h.detector_omega == pytest.approx(0.0, abs=1e-6)
    assert h.phi_start == pytest.approx(-5.0, abs=1e-6)
    assert h.phi_end == pytest.approx(-4.9, abs=1e-6)
    assert h.reverse_phi is True
