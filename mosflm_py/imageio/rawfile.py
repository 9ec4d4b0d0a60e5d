"""Byte-level access to (possibly gzip/bzip2-compressed) image files, with clear errors."""

from __future__ import annotations

import bz2
import gzip
import os

from mosflm_py.errors import ImageError

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"


def check_readable(path: str) -> None:
    """Raise :class:`ImageError` if ``path`` is missing, a directory or unreadable."""
    if not os.path.exists(path):
        raise ImageError(f"image file {path} does not exist")
    if os.path.isdir(path):
        raise ImageError(f"image file {path} is a directory, not an image")
    if not os.access(path, os.R_OK):
        raise ImageError(f"image file {path} cannot be read (permission denied)")
    if os.path.getsize(path) == 0:
        raise ImageError(f"image file {path} is empty")


def _opener(path: str):
    with open(path, "rb") as fh:
        magic = fh.read(3)
    if magic[:2] == GZIP_MAGIC:
        return gzip.open
    if magic == BZ2_MAGIC:
        return bz2.open
    return open


def read_prefix(path: str, nbytes: int) -> bytes:
    """First ``nbytes`` of the (decompressed) file."""
    check_readable(path)
    try:
        with _opener(path)(path, "rb") as fh:
            return fh.read(nbytes)
    except (OSError, EOFError, ValueError) as exc:
        raise ImageError(f"image file {path} cannot be read: {exc}") from exc


def read_all(path: str) -> bytes:
    """The whole (decompressed) file."""
    check_readable(path)
    try:
        with _opener(path)(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, ValueError) as exc:
        raise ImageError(f"image file {path} is corrupt or truncated: {exc}") from exc


def strip_compression_suffix(name: str) -> str:
    """``x.cbf.gz`` -> ``x.cbf`` (also .bz2, .Z, .xz)."""
    for ext in (".gz", ".bz2", ".Z", ".xz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name
