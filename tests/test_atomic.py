"""Tests of mosflm_py.atomic: the target is replaced whole or not at all."""

from __future__ import annotations

import os

import pytest

from mosflm_py.atomic import (
    OutputFileError,
    atomic_path,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
)
from mosflm_py.errors import MosflmError


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_text_and_bytes_round_trip(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "line 1\nline 2\n")
    assert target.read_text() == "line 1\nline 2\n"
    atomic_write_bytes(target, b"\x00\x01\xff")
    assert target.read_bytes() == b"\x00\x01\xff"
    assert _leftovers(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_keeps_old_file_and_removes_temp(tmp_path, exc):
    target = tmp_path / "SUMMARY"
    target.write_text("good old content\n")
    with pytest.raises(type(exc)), atomic_write(target) as fh:
        fh.write("half of the new")
        raise exc
    assert target.read_text() == "good old content\n"
    assert _leftovers(tmp_path) == ["SUMMARY"]


def test_failure_without_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="x"), atomic_write(tmp_path / "new.mtz", "wb") as fh:
        fh.write(b"abc")
        raise ValueError("x")
    assert _leftovers(tmp_path) == []


def test_target_not_visible_until_block_ends(tmp_path):
    target = tmp_path / "NEWMAT"
    target.write_text("old\n")
    with atomic_write(target) as fh:
        fh.write("new\n")
        fh.flush()
        assert target.read_text() == "old\n"
    assert target.read_text() == "new\n"


def test_atomic_path_for_external_writers(tmp_path):
    target = tmp_path / "pic.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".png.tmp")
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png"
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")
    assert target.read_bytes() == b"png"
    assert _leftovers(tmp_path) == ["pic.png"]


def test_permissions_of_replaced_file_are_kept(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("a")
    os.chmod(target, 0o640)
    atomic_write_text(target, "b")
    assert (os.stat(target).st_mode & 0o777) == 0o640


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(OutputFileError, match="no_such_dir") as info:
        atomic_write_text(tmp_path / "no_such_dir" / "x.mtz", "x")
    assert isinstance(info.value, MosflmError)


def test_bad_mode_rejected(tmp_path):
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "a"):  # type: ignore[arg-type]
        pass
