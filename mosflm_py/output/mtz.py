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

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from mosflm_py.errors import MosflmError
from mosflm_py.output.mtz_batch import (
    BATCH_FLOATS,
    BATCH_INTS,
    BatchHeader,
    _ro,
    batch_to_gemmi,
    decode_batch,
)
from mosflm_py.output.mtz_columns import (
    decode_misym,
    encode_bgpkratios,
    encode_misym,
    hkl_to_asu,
)

__all__ = [
    "BATCH_FLOATS",
    "BATCH_INTS",
    "COLUMNS",
    "BatchHeader",
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

COLUMNS: tuple[tuple[str, str], ...] = (
    ("H", "H"), ("K", "H"), ("L", "H"), ("M/ISYM", "Y"), ("BATCH", "B"),
    ("I", "J"), ("SIGI", "Q"), ("IPR", "J"), ("SIGIPR", "Q"), ("FRACTIONCALC", "R"),
    ("XDET", "R"), ("YDET", "R"), ("ROT", "R"), ("WIDTH", "R"), ("LP", "R"),
    ("MPART", "I"), ("FLAG", "I"), ("BGPKRATIOS", "R"),
)  # fmt: skip
"""Column labels and MTZ types, in file order (MOSFLM 6.2.6)."""

class MtzError(MosflmError):
    """The unmerged MTZ cannot be written (inconsistent records or batches)."""


@dataclass(frozen=True, eq=False)
class MtzRecords:
    """Reflection records, one per reflection part per image (struct of arrays, length N).

    Attributes
    ----------
    hkl : (N, 3) int
        Miller indices as observed (reduced to the ASU on writing).
    batch : (N,) int
        Batch number (image number + offset).
    I, sigI : (N,) float
        Summation intensity and sigma (LP corrected).
    Ipr, sigIpr : (N,) float
        Profile-fitted intensity and sigma (LP corrected).
    fraction : (N,) float
        Calculated fraction recorded on this image (1 for fulls).
    xdet, ydet : (N,) float
        Position on the detector, pixels (slow, fast).
    rot : (N,) float
        Spindle angle at the centroid (deg).
    width : (N,) float
        Reflection width in phi (deg).
    lp : (N,) float
        Lorentz-polarisation multiplier applied (I = I_raw * LP).
    mpart : (N,) int
        MPART code (:func:`~mosflm_py.output.mtz_columns.encode_mpart`); 0 if not given.
    flag : (N,) int
        FLAG bits (:class:`~mosflm_py.output.mtz_columns.Flag`); 0 if not given.
    bgratio, pkratio, gradient : (N,) float
        Packed into BGPKRATIOS; NaN if not given.
    partial : (N,) bool
        True for a part of a partially recorded reflection (M = 1 in M/ISYM).
    """

    hkl: np.ndarray
    batch: np.ndarray
    I: np.ndarray
    sigI: np.ndarray
    Ipr: np.ndarray
    sigIpr: np.ndarray
    fraction: np.ndarray
    xdet: np.ndarray
    ydet: np.ndarray
    rot: np.ndarray
    width: np.ndarray
    lp: np.ndarray
    partial: np.ndarray
    mpart: np.ndarray | None = None
    flag: np.ndarray | None = None
    bgratio: np.ndarray | None = None
    pkratio: np.ndarray | None = None
    gradient: np.ndarray | None = None

    def __post_init__(self) -> None:
        hkl = np.ascontiguousarray(self.hkl, dtype=np.int32).reshape(-1, 3)
        n = hkl.shape[0]
        object.__setattr__(self, "hkl", _ro(hkl))
        ints = {"batch": 0, "mpart": 0, "flag": 0}
        for f in dataclasses.fields(self):
            if f.name == "hkl":
                continue
            value = getattr(self, f.name)
            if f.name == "partial":
                arr = np.asarray(value, dtype=bool).reshape(-1)
            elif value is None:
                arr = np.zeros(n, np.int32) if f.name in ints else np.full(n, np.nan)
            elif f.name in ints:
                arr = np.asarray(value, dtype=np.int32).reshape(-1)
            else:
                arr = np.asarray(value, dtype=np.float64).reshape(-1)
            if arr.shape[0] != n:
                raise ValueError(f"MtzRecords.{f.name} has {arr.shape[0]} rows, hkl has {n}")
            object.__setattr__(self, f.name, _ro(np.ascontiguousarray(arr)))

    def __len__(self) -> int:
        return int(self.hkl.shape[0])


@dataclass(frozen=True)
class MtzMeta:
    """File-level header: title, names, crystal and symmetry.

    PNAME/DNAME default to "Unspecified" and XNAME to the crystal identifier (IDENT), as MOSFLM.
    """

    cell: tuple[float, float, float, float, float, float]
    wavelength: float
    space_group: str | int
    title: str = ""
    pname: str = "Unspecified"
    xname: str = "Unspecified"
    dname: str = "Unspecified"
    history: tuple[str, ...] = field(default_factory=tuple)


def _check_batches(records: MtzRecords, batches: list[BatchHeader]) -> None:
    numbers = np.array([b.number for b in batches], dtype=np.int64)
    if numbers.size == 0:
        raise MtzError("cannot write an unmerged MTZ without batch headers")
    if np.unique(numbers).size != numbers.size:
        raise MtzError("batch numbers in the MTZ batch headers are not unique")
    missing = np.setdiff1d(np.unique(records.batch), numbers)
    if missing.size:
        raise MtzError(
            f"{missing.size} batch number(s) used by reflections have no batch header "
            f"(first: {int(missing[0])})"
        )


def mtz_space_group(space_group: str | int) -> gemmi.SpaceGroup:
    """gemmi space group of ``MtzMeta.space_group`` (number or Hermann-Mauguin symbol).

    Raises
    ------
    MtzError
        Unknown space group.
    """
    sg = (
        gemmi.find_spacegroup_by_number(space_group)
        if isinstance(space_group, int)
        else gemmi.find_spacegroup_by_name(str(space_group))
    )
    if sg is None:
        raise MtzError(f"unknown space group {space_group!r} for the MTZ file")
    return sg


def check_columns(columns: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Validate a column selection: (label, type) pairs of :data:`COLUMNS`, H K L first.

    Raises
    ------
    MtzError
        Unknown label, wrong type, duplicate label, or H K L not the first three columns.
    """
    columns = tuple((str(lab), str(typ)) for lab, typ in columns)
    known = dict(COLUMNS)
    labels = [lab for lab, _ in columns]
    if labels[:3] != ["H", "K", "L"]:
        raise MtzError("the first three MTZ columns must be H K L")
    if len(set(labels)) != len(labels):
        raise MtzError(f"duplicate MTZ column labels in {labels}")
    for lab, typ in columns:
        if known.get(lab) != typ:
            raise MtzError(
                f"unknown MTZ column {lab!r} of type {typ!r} (known: "
                + " ".join(f"{a}:{b}" for a, b in COLUMNS) + ")"
            )
    return columns


def _column_values(records: MtzRecords, sl: slice, label: str, isym: np.ndarray) -> np.ndarray:
    """Values of one non-index column for the records in *sl* (any dtype, cast by caller)."""
    if label == "M/ISYM":
        return encode_misym(isym, records.partial[sl])
    if label == "BGPKRATIOS":
        return encode_bgpkratios(records.bgratio[sl], records.pkratio[sl], records.gradient[sl])
    return getattr(records, _FIELD_OF[label])[sl]


_FIELD_OF = {
    "BATCH": "batch", "I": "I", "SIGI": "sigI", "IPR": "Ipr", "SIGIPR": "sigIpr",
    "FRACTIONCALC": "fraction", "XDET": "xdet", "YDET": "ydet", "ROT": "rot",
    "WIDTH": "width", "LP": "lp", "MPART": "mpart", "FLAG": "flag",
}  # fmt: skip


def records_to_rows(
    records: MtzRecords,
    space_group: gemmi.SpaceGroup,
    columns: tuple[tuple[str, str], ...] = COLUMNS,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """MTZ data rows (float32, row-major, columns in file order) of ``records[start:stop]``.

    H K L are reduced to the CCP4 asymmetric unit and M/ISYM is computed
    (:func:`~mosflm_py.output.mtz_columns.hkl_to_asu`); this is exactly the layout of the
    reflection block of an MTZ file.
    """
    sl = slice(start, len(records) if stop is None else stop)
    hkl_asu, isym = hkl_to_asu(records.hkl[sl], space_group)
    data = np.empty((hkl_asu.shape[0], len(columns)), dtype=np.float32)
    data[:, 0:3] = hkl_asu
    for k, (label, _typ) in enumerate(columns[3:], start=3):
        data[:, k] = _column_values(records, sl, label, isym)
    return data


def header_mtz(
    meta: MtzMeta,
    batches: list[BatchHeader],
    space_group: gemmi.SpaceGroup,
    columns: tuple[tuple[str, str], ...] = COLUMNS,
) -> gemmi.Mtz:
    """A gemmi Mtz with the file header of MOSFLM's unmerged MTZ and no reflections.

    Title, history, space group, the two datasets (HKL_base and PNAME/XNAME/DNAME with cell and
    wavelength), the columns and one orientation block per batch (sorted by number).
    """
    mtz = gemmi.Mtz(with_base=True)
    mtz.title = meta.title[:70]
    mtz.spacegroup = space_group
    mtz.history = [h[:80] for h in meta.history] or ["From mosflm_py"]
    ds = mtz.add_dataset(meta.dname)
    ds.project_name = meta.pname
    ds.crystal_name = meta.xname
    ds.wavelength = float(meta.wavelength)
    mtz.set_cell_for_all(gemmi.UnitCell(*meta.cell))
    for label, mtz_type in columns[3:]:
        mtz.add_column(label, mtz_type)
    for header in sorted(batches, key=lambda b: b.number):
        mtz.batches.append(batch_to_gemmi(header))
    return mtz


def build_unmerged_mtz(
    records: MtzRecords,
    batches: list[BatchHeader],
    meta: MtzMeta,
    columns: tuple[tuple[str, str], ...] = COLUMNS,
) -> gemmi.Mtz:
    """The whole unmerged MTZ as an in-memory gemmi Mtz (all rows at once).

    For small data and as the reference the streaming
    :class:`~mosflm_py.output.mtz_stream.UnmergedMtzWriter` is tested against; files are
    written with :func:`write_unmerged_mtz`, which streams.
    """
    sg = mtz_space_group(meta.space_group)
    columns = check_columns(columns)
    _check_batches(records, batches)
    mtz = header_mtz(meta, batches, sg, columns)
    mtz.set_data(records_to_rows(records, sg, columns))
    mtz.update_reso()
    return mtz


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
    from mosflm_py.output.mtz_stream import UnmergedMtzWriter

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
