"""MOSFLM's unmerged ("multi-record") MTZ file (HKLOUT): records, batch headers, header via gemmi.

One record per reflection per image (partials are not summed), 18 columns::

    H K L M/ISYM BATCH I SIGI IPR SIGIPR FRACTIONCALC XDET YDET ROT WIDTH LP MPART FLAG BGPKRATIOS
    H H H Y      B     J Q    J   Q      R            R    R    R   R     R  I     I    R

H K L are reduced to the CCP4 asymmetric unit (:func:`~mosflm_py.output.mtz_columns.hkl_to_asu`),
one batch (orientation block) per image is written with the word offsets of :data:`BATCH_FLOATS`
and :data:`BATCH_INTS` (:mod:`.mtz_batch`), missing values are NaN. Files are written by the
streaming :class:`~mosflm_py.output.mtz_stream.UnmergedMtzWriter` (memory bounded by one chunk
of records); :func:`write_unmerged_mtz` is the one-chunk shortcut.
See ``/work/shared/reference/mosflm_outputs.md`` section 1 and ``help/topics/conventions.txt``
(the batch U, scan axis and beam vectors are in the MOSFLM "Cambridge" laboratory frame: X along
the beam, Z along the spindle).

References
----------
CCP4 MTZ format and ``mtzdata.h``/``cmtzlib.c`` (``MtzBatchToArray``: batch word layout);
Leslie, A. G. W. (2006). Acta Cryst. D62, 48-57 (MOSFLM).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import gemmi
import numpy as np

from mosflm_py.output.mtz_batch import (
    BATCH_FLOATS,
    BATCH_INTS,
    BatchHeader,
    batch_to_gemmi,
    decode_batch,
)
from mosflm_py.output.mtz_columns import decode_misym
from mosflm_py.output.mtz_records import (
    COLUMNS,
    MtzError,
    MtzMeta,
    MtzRecords,
    build_unmerged_mtz,
    check_columns,
    header_mtz,
    mtz_space_group,
    records_to_rows,
)
from mosflm_py.output.mtz_stream import UnmergedMtzWriter

__all__ = [
    "BATCH_FLOATS",
    "BATCH_INTS",
    "COLUMNS",
    "BatchHeader",
    "MtzError",
    "MtzMeta",
    "MtzRecords",
    "UnmergedMtz",
    "batch_to_gemmi",
    "build_unmerged_mtz",
    "check_columns",
    "header_mtz",
    "mtz_space_group",
    "records_to_rows",
    "default_mtz_name",
    "read_unmerged_mtz",
    "write_unmerged_mtz",
]


def write_unmerged_mtz(
    path: str | os.PathLike[str],
    records: MtzRecords,
    batches: list[BatchHeader],
    meta: MtzMeta,
    columns: tuple[tuple[str, str], ...] = COLUMNS,
) -> None:
    """Write MOSFLM's unmerged multi-record MTZ, atomically.

    A thin wrapper around :class:`~mosflm_py.output.mtz_stream.UnmergedMtzWriter` (one
    :meth:`~mosflm_py.output.mtz_stream.UnmergedMtzWriter.add`): rows go to a temporary file in
    the target folder, in bounded slices, which is renamed over *path* only when complete. For
    long sweeps use the writer directly, adding one block of images at a time.

    Parameters
    ----------
    path
        Output file (HKLOUT).
    records
        One record per reflection part per image; indices as observed.
    batches
        One header per batch number used in *records* (extra batches, e.g. images without
        reflections, are allowed).
    meta
        Title, names, dataset cell and wavelength, space group, history.
    columns
        Columns to write, (label, type) pairs of :data:`COLUMNS` with H K L first.

    Raises
    ------
    MtzError
        Unknown space group, missing or duplicate batch headers.
    OutputFileError
        The folder of *path* does not exist or is not writable.
    """
    with UnmergedMtzWriter(path, meta, columns) as writer:
        writer.add(records, batches)


@dataclass(frozen=True, eq=False)
class UnmergedMtz:
    """What :func:`read_unmerged_mtz` returns (for tests and diagnostics)."""

    columns: dict[str, np.ndarray]  # label -> values (float64), file order
    types: dict[str, str]  # label -> MTZ column type
    hkl_asu: np.ndarray  # (N, 3) int32
    isym: np.ndarray  # (N,) int32
    partial: np.ndarray  # (N,) bool
    hkl_original: np.ndarray  # (N, 3) int32, indices mapped back with ISYM (gemmi)
    batches: list[dict[str, object]]  # decoded orientation blocks
    mtz: gemmi.Mtz


def read_unmerged_mtz(path: str | os.PathLike[str]) -> UnmergedMtz:
    """Read an unmerged MTZ back (columns, ASU indices, ISYM, observed indices, batches)."""
    mtz = gemmi.read_mtz_file(str(path))
    arr = np.array(mtz, copy=True, dtype=np.float64)
    labels = list(mtz.column_labels())
    cols = {lab: arr[:, k] for k, lab in enumerate(labels)}
    types = {c.label: c.type for c in mtz.columns}
    hkl_asu = arr[:, 0:3].astype(np.int32)
    isym, partial = decode_misym(np.rint(cols["M/ISYM"]).astype(np.int64))
    mtz.switch_to_original_hkl()
    original = np.array(mtz, copy=True)[:, 0:3].astype(np.int32)
    return UnmergedMtz(
        columns=cols,
        types=types,
        hkl_asu=hkl_asu,
        isym=isym,
        partial=partial,
        hkl_original=original,
        batches=[decode_batch(b) for b in mtz.batches],
        mtz=mtz,
    )


_HASHES = re.compile(r"#+")


def default_mtz_name(template: str, first_image: int = 1) -> str:
    """MOSFLM's default HKLOUT name for an image template.

    The ``#`` run is replaced by the (zero-padded) first image number and the image extension
    by ``.mtz``: ``12287_1_E1_###.img`` -> ``12287_1_E1_001.mtz``, ``hg_###.mar1600`` ->
    ``hg_001.mtz`` (mosflm_keywords.md 1; the iMosflm tutorial's "hg_001.mtz"). Only the file
    name is returned (no folder). A template without ``#`` just gets the extension replaced.
    """
    name = Path(template).name
    matches = list(_HASHES.finditer(name))
    if matches:
        m = matches[-1]
        name = name[: m.start()] + f"{first_image:0{len(m.group())}d}" + name[m.end() :]
    for ext in (".gz", ".bz2", ".xz"):  # compressed images: strip both extensions
        name = name.removesuffix(ext)
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return stem + ".mtz"
