"""Streaming writer of MOSFLM's unmerged MTZ: memory bounded by one chunk, whatever the sweep.

An unmerged MTZ of a long sweep holds tens of millions of records (a 3600-image Pilatus 6M
sweep: ~20 million rows x 18 columns = 1.4 GB of float32), and gemmi needs every row in memory
to write a file. :class:`UnmergedMtzWriter` instead appends each chunk of records (one block of
images) to the output's temporary file as soon as it is integrated, and writes the header at the
end.

File layout (CCP4 MTZ format, ``mtzlib``/``cmtzlib.c``; gemmi ``Mtz::write_to_stream``)::

    bytes 0-79      "MTZ ", header pointer (int32, 1-based 4-byte word index; -1 with the
                    int64 pointer at bytes 12-19 beyond 2**31 words), machine stamp, zeros
    bytes 80-       reflection data: NREF rows of NCOL float32, row-major, native byte order
    header pointer  80-character records VERS TITLE NCOL CELL SORT SYMINF SYMM RESO VALM COLUMN
                    NDIF PROJECT CRYSTAL DATASET DCELL DWAVEL BATCH END, then MTZHIST, MTZBATS
                    with the binary orientation blocks, MTZENDOFHEADERS

The data block is exactly what gemmi would write. The header is produced by gemmi itself, from
an Mtz with the same title, history, symmetry, datasets, columns and batches but only two rows
(the per-column minima and maxima tracked over all chunks, so that the COLUMN ranges come out
as gemmi formats them); its NCOL record is given the real number of reflections and its RESO
record is taken from a second small Mtz holding the reflections of extreme 1/d^2 (gemmi computes
RESO from the data). The result is byte-for-byte the file gemmi writes from all rows at once
(tested against :func:`~mosflm_py.output.mtz.build_unmerged_mtz`).

The file is built in a temporary file next to the target (:func:`mosflm_py.atomic.atomic_path`)
and renamed over it only when complete; an exception (also ``KeyboardInterrupt``) removes the
temporary file and leaves any existing file untouched.

References
----------
CCP4 MTZ file format (``mtzformat.html``, ``cmtzlib.c``); gemmi ``src/mtz.cpp``
(``write_to_stream``, ``calculate_min_max_1_d2``).
"""

from __future__ import annotations

import os
import struct
from types import TracebackType

import gemmi
import numpy as np

from mosflm_py.atomic import atomic_path
from mosflm_py.output.mtz_batch import BatchHeader
from mosflm_py.output.mtz_records import (
    COLUMNS,
    MtzError,
    MtzMeta,
    MtzRecords,
    check_columns,
    header_mtz,
    mtz_space_group,
    records_to_rows,
)

__all__ = ["UnmergedMtzWriter"]

SLICE_ROWS = 1 << 16
"""Records converted at once inside :meth:`UnmergedMtzWriter.add` (bounds its working memory:
about 0.4 kB per record, ~25 MB)."""

_RECORD = 80  # bytes per header record
_FIRST = 80  # bytes before the data block (20 words)
_RESO_RTOL = 1e-9  # reflections within this of the extreme 1/d^2 are kept as RESO candidates


class _Aborted(Exception):
    """Thrown into the temporary-file context to discard it."""


class UnmergedMtzWriter:
    """Write an unmerged MTZ chunk by chunk with memory bounded by one chunk.

    Use as a context manager::

        with UnmergedMtzWriter("out.mtz", meta) as w:
            for block in blocks:
                w.add(block_records, block_batches)

    The file appears at *path* only when the ``with`` block ends without an exception (or
    :meth:`close` returns); on an exception, ``KeyboardInterrupt`` or :meth:`abort` the temporary
    file is removed and an existing file at *path* is not touched.

    Parameters
    ----------
    path
        Output file (HKLOUT). Its folder must exist.
    meta
        Title, names, dataset cell and wavelength, space group, history.
    columns
        (label, type) pairs of :data:`~mosflm_py.output.mtz.COLUMNS` to write, H K L first.

    Raises
    ------
    MtzError
        Unknown space group or column selection.
    OutputFileError
        The temporary file cannot be created in the folder of *path*.

    Notes
    -----
    Memory: the rows of one :meth:`add` are converted in slices of :data:`SLICE_ROWS` records
    and written at once; the writer itself keeps only the batch headers, the set of batch
    numbers used, two rows of column ranges and a few RESO candidates. Rows are written in the
    order added (MOSFLM writes them image by image); SORT is 0 0 0 0 0 as in gemmi's files.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: MtzMeta,
        columns: tuple[tuple[str, str], ...] = COLUMNS,
    ) -> None:
        self._open = False
        self.path = path
        self.meta = meta
        self.columns = check_columns(columns)
        self._sg = mtz_space_group(meta.space_group)
        self._cell = gemmi.UnitCell(*meta.cell)
        frac = np.array(self._cell.frac.mat.tolist(), dtype=np.float64)
        self._recip = frac  # s = h . frac -> 1/d^2 = |s|^2
        ncol = len(self.columns)
        self._nref = 0
        self._colmin = np.full(ncol, np.nan, dtype=np.float32)
        self._colmax = np.full(ncol, np.nan, dtype=np.float32)
        self._reso_lo = (np.inf, np.zeros((0, 3), np.float32))  # (1/d^2, candidate rows)
        self._reso_hi = (-np.inf, np.zeros((0, 3), np.float32))
        self._batches: dict[int, BatchHeader] = {}
        self._used = np.zeros(0, dtype=np.int64)
        self._cm = atomic_path(path, suffix=".mtz")
        self._tmp = self._cm.__enter__()
        try:
            self._fh = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()/abort()
            self._fh.write(bytes(_FIRST))
        except BaseException as err:
            self._cm.__exit__(type(err), err, err.__traceback__)
            raise
        self._open = True

    # ------------------------------------------------------------------------------------------
    # context manager
    # ------------------------------------------------------------------------------------------

    def __enter__(self) -> UnmergedMtzWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)

    def __del__(self) -> None:  # a writer dropped without close() leaves no temporary file
        if getattr(self, "_open", False):
            try:
                self.abort()
            except Exception:  # never raise from a finaliser
                pass

    @property
    def nreflections(self) -> int:
        """Number of records written so far."""
        return self._nref

    # ------------------------------------------------------------------------------------------
    # public API
    # ------------------------------------------------------------------------------------------

    def add(self, records: MtzRecords, batches: list[BatchHeader] | tuple[()] = ()) -> None:
        """Append *records* (indices as observed) and the headers of their *batches*.

        A batch header may come with an earlier or later chunk than its records; every batch
        number used must have exactly one header by :meth:`close`.

        Raises
        ------
        MtzError
            A batch number given twice, or the writer is already closed.
        """
        self._check_open()
        numbers = [int(b.number) for b in batches]
        dup = {n for n in numbers if n in self._batches} | {
            n for n in numbers if numbers.count(n) > 1
        }
        if dup:
            raise MtzError(
                f"batch numbers in the MTZ batch headers are not unique (repeated: {min(dup)})"
            )
        for header in batches:
            self._batches[int(header.number)] = header
        n = len(records)
        if n == 0:
            return
        self._used = np.union1d(self._used, np.unique(records.batch).astype(np.int64))
        for start in range(0, n, SLICE_ROWS):
            rows = records_to_rows(records, self._sg, self.columns, start, start + SLICE_ROWS)
            self._fh.write(memoryview(rows).cast("B"))
            self._track(rows)
            self._nref += rows.shape[0]

    def close(self) -> None:
        """Write the header and move the finished file to *path* (atomic rename).

        Raises
        ------
        MtzError
            No batch headers, or batch numbers used by records without a header. The
            temporary file is removed and *path* left as it was.
        """
        if not self._open:
            return
        try:
            self._check_batches()
            first, header = self._header_bytes()
            self._fh.write(header)
            self._fh.seek(0)
            self._fh.write(first)
            self._fh.close()
            self._open = False
            self._cm.__exit__(None, None, None)
        except BaseException as err:
            self.abort(err)
            raise

    def abort(self, exc: BaseException | None = None) -> None:
        """Discard the temporary file; *path* is left as it was. Idempotent."""
        if not self._open:
            return
        self._open = False
        try:
            self._fh.close()
        finally:
            err = exc if exc is not None else _Aborted("MTZ writing aborted")
            self._cm.__exit__(type(err), err, err.__traceback__)

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._open:
            raise MtzError(f"the MTZ file {self.path} is already closed or was abandoned")

    def _check_batches(self) -> None:
        if not self._batches:
            raise MtzError("cannot write an unmerged MTZ without batch headers")
        numbers = np.fromiter(self._batches, dtype=np.int64, count=len(self._batches))
        missing = np.setdiff1d(self._used, numbers)
        if missing.size:
            raise MtzError(
                f"{missing.size} batch number(s) used by reflections have no batch header "
                f"(first: {int(missing[0])})"
            )

    def _track(self, rows: np.ndarray) -> None:
        """Update column ranges (NaN disregarded, as gemmi) and the RESO candidates."""
        self._colmin = np.fmin(self._colmin, np.fmin.reduce(rows, axis=0))
        self._colmax = np.fmax(self._colmax, np.fmax.reduce(rows, axis=0))
        hkl = rows[:, 0:3]
        s = hkl.astype(np.float64) @ self._recip
        d2 = np.einsum("ij,ij->i", s, s)
        self._reso_lo = _merge_extreme(self._reso_lo, hkl, d2, lowest=True)
        self._reso_hi = _merge_extreme(self._reso_hi, hkl, d2, lowest=False)

    def _header_bytes(self) -> tuple[bytes, bytes]:
        """(first 80 bytes, header records) of the finished file, produced by gemmi."""
        mtz = header_mtz(self.meta, list(self._batches.values()), self._sg, self.columns)
        if self._nref:
            mtz.set_data(np.vstack([self._colmin, self._colmax]))
        small = mtz.write_to_bytes()
        start = (struct.unpack("<i" if _LITTLE else ">i", small[4:8])[0] - 1) * 4
        records = bytearray(small[start:])
        ncol, nbatch = len(self.columns), len(self._batches)
        _replace_record(records, b"NCOL", f"NCOL {ncol:8d} {self._nref:12d} {nbatch:8d}")
        if self._nref:
            _replace_record(records, b"RESO", self._reso_record())
        words = ncol * self._nref + _FIRST // 4 + 1
        first = bytearray(small[:_FIRST])
        endian = "<" if _LITTLE else ">"
        if words > 2**31 - 1:  # gemmi/cmtzlib convention for files beyond 8 GB
            first[4:8] = struct.pack(endian + "i", -1)
            first[12:20] = struct.pack(endian + "q", words)
        else:
            first[4:8] = struct.pack(endian + "i", words)
            first[12:20] = bytes(8)
        return bytes(first), bytes(records)

    def _reso_record(self) -> str:
        """The RESO record gemmi computes from the reflections of extreme 1/d^2."""
        mtz = gemmi.Mtz(with_base=True)
        mtz.spacegroup = self._sg
        mtz.set_cell_for_all(self._cell)
        mtz.set_data(np.vstack([self._reso_lo[1], self._reso_hi[1]]).astype(np.float32))
        small = mtz.write_to_bytes()
        start = (struct.unpack("<i" if _LITTLE else ">i", small[4:8])[0] - 1) * 4
        return _find_record(small[start:], b"RESO").decode("ascii")


_LITTLE = np.little_endian


def _merge_extreme(
    current: tuple[float, np.ndarray], hkl: np.ndarray, d2: np.ndarray, lowest: bool
) -> tuple[float, np.ndarray]:
    """Keep the distinct index rows whose 1/d^2 is within _RESO_RTOL of the extreme.

    Rows with nearly equal 1/d^2 are all kept so that gemmi, recomputing 1/d^2 in its own
    arithmetic, picks the same extreme as it would from all rows.
    """
    value, rows = current
    ext = float(d2.min() if lowest else d2.max())
    best = min(value, ext) if lowest else max(value, ext)
    tol = _RESO_RTOL * abs(best) + 1e-300
    near = (d2 <= best + tol) if lowest else (d2 >= best - tol)
    cand = np.vstack([rows, hkl[near]]) if abs(value - best) <= tol else hkl[near]
    return best, np.unique(cand, axis=0)


def _iter_records(block: bytes | bytearray):
    for pos in range(0, len(block) - _RECORD + 1, _RECORD):
        rec = bytes(block[pos : pos + _RECORD])
        yield pos, rec
        if rec.startswith(b"END ") or rec.rstrip() == b"END":
            return


def _find_record(block: bytes | bytearray, key: bytes) -> bytes:
    for _pos, rec in _iter_records(block):
        if rec.startswith(key + b" "):
            return rec.rstrip(b" ")
    raise RuntimeError(f"gemmi MTZ header has no {key.decode()} record")


def _replace_record(block: bytearray, key: bytes, text: str) -> None:
    """Replace the 80-character main-header record starting with *key* (before END)."""
    raw = text.encode("ascii")
    if len(raw) > _RECORD:
        raise ValueError(f"MTZ header record longer than 80 characters: {text!r}")
    for pos, rec in _iter_records(block):
        if rec.startswith(key + b" "):
            block[pos : pos + _RECORD] = raw.ljust(_RECORD, b" ")
            return
    raise RuntimeError(f"gemmi MTZ header has no {key.decode()} record")
