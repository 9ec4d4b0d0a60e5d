"""The unmerged MTZ's content: columns, records, metadata and the gemmi header.

Shared by the one-shot writer and reader (:mod:`mosflm_py.output.mtz`) and the streaming writer
(:mod:`mosflm_py.output.mtz_stream`), which both import it; the column layout, batch words and
frame conventions are described in :mod:`mosflm_py.output.mtz`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import gemmi
import numpy as np

from mosflm_py.errors import MosflmError
from mosflm_py.output.mtz_batch import (
    BatchHeader,
    _ro,
    batch_to_gemmi,
)
from mosflm_py.output.mtz_columns import (
    encode_bgpkratios,
    encode_misym,
    hkl_to_asu,
)

__all__ = [
    "COLUMNS",
    "MtzError",
    "MtzMeta",
    "MtzRecords",
    "build_unmerged_mtz",
    "check_columns",
    "header_mtz",
    "mtz_space_group",
    "records_to_rows",
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
                + " ".join(f"{a}:{b}" for a, b in COLUMNS)
                + ")"
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
