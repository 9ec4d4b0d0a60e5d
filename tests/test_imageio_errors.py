"""Missing, empty, garbage, truncated and corrupt files give ImageError naming the file."""

from __future__ import annotations

import gzip

import pytest

from mosflm_py.errors import ImageError
from mosflm_py.imageio import read_frame, read_header


def test_missing_file(tmp_path):
    p = tmp_path / "nothere_001.cbf"
    for fn in (read_header, read_frame):
        with pytest.raises(ImageError, match="does not exist") as err:
            fn(p)
        assert str(p) in str(err.value)


def test_empty_and_directory(tmp_path):
    p = tmp_path / "empty_001.img"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        read_header(p)
    with pytest.raises(ImageError, match="directory"):
        read_frame(tmp_path)


def test_garbage_file(tmp_path):
    p = tmp_path / "garbage_001.img"
    p.write_bytes(b"this is not an image at all\n" * 40)
    for fn in (read_header, read_frame):
        with pytest.raises(ImageError, match="garbage_001.img"):
            fn(p)


@pytest.mark.realdata
def test_truncated_cbf(real_data, tmp_path):
    raw = (real_data / "l_cysteine_sweep04" / "l-cyst_04_00001.cbf").read_bytes()
    p = tmp_path / "trunc_00001.cbf"
    p.write_bytes(raw[: len(raw) // 2])
    read_header(p)  # the header is intact
    with pytest.raises(ImageError, match="truncated"):
        read_frame(p)
    p.write_bytes(raw[:2000])
    with pytest.raises(ImageError, match="trunc_00001.cbf"):
        read_header(p)


@pytest.mark.realdata
def test_truncated_gzip(real_data, tmp_path):
    raw = (real_data / "format_singles_dials" / "DLS_I03_smargon_0001.cbf.gz").read_bytes()
    p = tmp_path / "cut_0001.cbf.gz"
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ImageError, match="cut_0001.cbf.gz"):
        read_frame(p)


@pytest.mark.realdata
def test_truncated_smv(real_data, tmp_path):
    raw = (real_data / "format_singles_dials" / "TIMEPIX_SU_512-stdgoni_0001.img").read_bytes()
    p = tmp_path / "smv_0001.img"
    p.write_bytes(raw[:1000])
    with pytest.raises(ImageError, match="smv_0001.img"):
        read_frame(p)


def test_corrupt_gzip_magic(tmp_path):
    p = tmp_path / "bad_0001.cbf.gz"
    p.write_bytes(gzip.compress(b"###CBF: VERSION 1.5\n")[:12] + b"\x00" * 50)
    with pytest.raises(ImageError, match="bad_0001.cbf.gz"):
        read_header(p)
