"""Atomic file output: a failure never leaves a half-written file over a good one.

Every output file of mosflm_py (MTZ, SUMMARY, NEWMAT, spot files, pictures) is written through
:func:`atomic_write` (or the two helpers below): the data go to a temporary file in the *same*
folder, are flushed and ``fsync``-ed, and the temporary file is then renamed over the target with
:func:`os.replace`, which is atomic on POSIX and Windows. On any exception (including
``KeyboardInterrupt``) the temporary file is removed and the target is left untouched.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_write(folder / "NEWMAT") as f:
...     _ = f.write("hello\\n")
>>> (folder / "NEWMAT").read_text()
'hello\\n'
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from mosflm_py.errors import MosflmError
from mosflm_py.signals import checkpoint, deferred

__all__ = [
    "OutputFileError",
    "check_output_folder",
    "check_output_path",
    "atomic_path",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
]


class OutputFileError(MosflmError):
    """An output file cannot be created (missing folder, no permission, disk full)."""


def check_output_path(path: str | os.PathLike[str], what: str = "output file") -> None:
    """Raise :class:`OutputFileError` unless *path* can be written by :func:`atomic_path`.

    Done at the start of a job that writes the file, so that an impossible name (empty, holding
    a NUL byte, a folder, in a folder that does not exist or cannot be written) is reported
    before any work, not after an hour of integration.
    """
    name = os.fspath(path)
    if not name.strip():
        raise OutputFileError(f"The {what} name is empty: give a file name.")
    if "\0" in name:
        raise OutputFileError(f"The {what} name {name!r} contains a NUL character.")
    target = Path(name).expanduser() if name.startswith("~") else Path(name)
    if target.is_dir():
        raise OutputFileError(f"The {what} {name} is a folder, not a file name.")
    folder = target.parent if str(target.parent) else Path(".")
    check_output_folder(folder, f"folder of the {what} {name}")


def check_output_folder(folder: str | os.PathLike[str], what: str = "output folder") -> None:
    """Raise :class:`OutputFileError` unless *folder* is an existing, writable folder."""
    name = os.fspath(folder)
    if "\0" in name:
        raise OutputFileError(f"The {what} name {name!r} contains a NUL character.")
    path = Path(name or ".")
    if not path.exists():
        raise OutputFileError(f"The {what} ({name}) does not exist.")
    if not path.is_dir():
        raise OutputFileError(f"The {what} ({name}) is not a folder.")
    try:  # the real test (os.access is not enough for root or special file systems)
        fd, probe = tempfile.mkstemp(prefix=".mosflm_py_probe.", suffix=".tmp", dir=path)
    except OSError as err:
        raise OutputFileError(f"The {what} ({name}) is not writable: "
                              f"{err.strerror or err}.") from None
    os.close(fd)
    _remove_quietly(probe)


# errno values that mean "the file system cannot take the data": disk full, quota exceeded,
# file too large, read-only file system.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _fsync_folder(folder: Path) -> None:
    """Best-effort fsync of a directory so the rename itself is durable (POSIX only)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to *path*; on success rename it over *path*.

    For writers that insist on opening the file themselves (gemmi's ``Mtz.write_to_file``,
    pillow's ``Image.save``). The caller writes the temporary file; this context manager fsyncs it
    and renames it, or deletes it if the block raised (also on ``KeyboardInterrupt``).

    Parameters
    ----------
    path
        Final file name. Its folder must exist.
    suffix
        Suffix for the temporary name (e.g. ``".png"`` for writers that choose the format from
        the extension).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    tmp = None
    try:
        with deferred():  # a signal between creating the file and knowing its name would leak it
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp",
                                           dir=folder)
            except OSError as err:
                raise OutputFileError(
                    f"Cannot create output file {target}: {err.strerror or err} "
                    f"(check that the folder {folder} exists and is writable)"
                ) from err
            os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _copy_mode(target, tmp)
        checkpoint()  # an interrupt swallowed earlier (numba callbacks) must not publish
        os.replace(tmp, target)
    except OSError as err:
        if tmp is not None:
            _remove_quietly(tmp)
        if err.errno in _FULL:  # only a write gives these (not e.g. reading an input image)
            raise OutputFileError(
                f"Cannot write output file {target}: {err.strerror or err}; the earlier "
                f"file (if any) is untouched and no partial file was left"
            ) from err
        raise
    except BaseException:
        if tmp is not None:
            _remove_quietly(tmp)
        raise
    _fsync_folder(folder)


def _copy_mode(target: Path, tmp: str) -> None:
    """Give the new file the permissions of the file it replaces, or umask defaults."""
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["w", "wb"] = "w",
    encoding: str = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; replace *path* with it only if the block succeeds.

    Parameters
    ----------
    path
        Final file name. Its folder must exist.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    encoding, newline
        Passed to :func:`open` in text mode.

    Yields
    ------
    file object
        Write to it; do not close it yourself.

    Raises
    ------
    ValueError
        For any other *mode*.
    OutputFileError
        If the temporary file cannot be created in the target's folder.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "wb":
            fh: IO[Any] = open(tmp, "wb")
        else:
            fh = open(tmp, "w", encoding=encoding, newline=newline)
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write *data* to *path* atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write *text* to *path* atomically (``\\n`` line endings kept as given)."""
    with atomic_write(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
