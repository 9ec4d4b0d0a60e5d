"""MOSFLM's unmerged ("multi-record") MTZ file (HKLOUT): records, batch headers, header via gemmi.

One record per reflection per image (partials are not summed), 18 columns::

    H K L M/ISYM BATCH I SIGI IPR SIGIPR FRACTIONCALC XDET YDET ROT WIDTH LP MPART FLAG BGPKRATIOS
    H H H Y      B     J Q    J   Q      R            R    R    R   R     R  I     I    R

H K L are reduced to the CCP4 asymmetric unit (:func:`~mosflm_py.output.mtz_columns.hkl_to_asu`),
one batch (orientation block) per image is written with the word offsets of :data:`BATCH_FLOATS`
and :data:`BATCH_INTS`, missing values are NaN. See ``/work/shared/reference/mosflm_outputs.md``
section 1 and ``help/topics/conventions.txt`` (the batch U, scan axis and beam vectors are in the
MOSFLM "Cambridge" laboratory frame: X along the beam, Z along the spindle).

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
from mosflm_py.geometry.crystal import b_matrix
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

# Word offsets of the batch orientation block (CCP4 cmtzlib MtzBatchToArray), named once here.
BATCH_FLOATS: dict[str, slice] = {
    "cell": slice(0, 6),  # a b c alpha beta gamma (A, deg)
    "umat": slice(6, 15),  # U in Fortran (column-major) order: U11 U21 U31 U12 ...
    "phixyz_start": slice(15, 18),  # missets at start of the image (deg)
    "phixyz_end": slice(18, 21),  # missets at end of the image (deg)
    "crydat": slice(21, 33),  # crydat[0] = mosaic spread (deg)
    "datum": slice(33, 36),  # goniostat datum angles (deg)
    "phistt": slice(36, 37),  # phi start (deg)
    "phiend": slice(37, 38),  # phi end (deg)
    "scanax": slice(38, 41),  # rotation axis in the lab frame
    "time1": slice(41, 42),
    "time2": slice(42, 43),
    "bscale": slice(43, 44),
    "bbfac": slice(44, 45),
    "sdbscale": slice(45, 46),
    "sdbfac": slice(46, 47),
    "phirange": slice(47, 48),  # oscillation width (deg)
    "e1": slice(59, 62),  # goniostat axis vectors (Cambridge frame)
    "e2": slice(62, 65),
    "e3": slice(65, 68),
    "source": slice(80, 83),  # idealised beam direction (source -> crystal)
    "so": slice(83, 86),  # actual beam direction
    "alambd": slice(86, 87),  # wavelength (A)
    "delamb": slice(87, 88),  # dispersion dlambda/lambda
    "delcor": slice(88, 89),  # correlated dispersion component
    "divhd": slice(89, 90),  # horizontal divergence (deg)
    "divvd": slice(90, 91),  # vertical divergence (deg)
    "dx": slice(111, 112),  # crystal-to-detector distance (mm), detector 1
    "theta": slice(112, 113),  # detector two-theta (deg), detector 1
    "detlm": slice(113, 117),  # detector 1 limits (pixels): slow min, max, fast min, max
}
BATCH_INTS: dict[str, slice] = {
    "iortyp": slice(3, 4),  # orientation block type (0)
    "lbcell": slice(4, 10),  # cell refinement flags
    "misflg": slice(10, 11),  # number of missetting-angle sets (0, 1, 2)
    "jumpax": slice(11, 12),  # reciprocal axis closest to the rotation axis (1, 2, 3)
    "ncryst": slice(12, 13),  # crystal number
    "lcrflg": slice(13, 14),  # mosaicity model (0 isotropic)
    "ldtype": slice(14, 15),  # 2 = 3D rotation data
    "jsaxs": slice(15, 16),  # goniostat scan axis number
    "nbscal": slice(16, 17),  # number of batch scales (0 = unset)
    "ngonax": slice(17, 18),  # number of goniostat axes
    "lbmflg": slice(18, 19),  # beam info flag (1 = delcor, divhd, divvd present)
    "ndet": slice(19, 20),  # number of detectors
    "nbsetid": slice(20, 21),  # dataset id
}


class MtzError(MosflmError):
    """The unmerged MTZ cannot be written (inconsistent records or batches)."""


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


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


@dataclass(frozen=True, eq=False)
class BatchHeader:
    """Orientation block of one image (batch).

    Attributes
    ----------
    number : int
        Batch number.
    phi_start, phi_end : float
        Spindle angles at the start and end of the image (deg).
    cell : 6 floats
        a, b, c (A), alpha, beta, gamma (deg).
    U : (3, 3)
        Orientation matrix (MOSFLM lab frame, phi = 0, before missets).
    missets_start, missets_end : 3 floats
        PHIX, PHIY, PHIZ at the start and end of the image (deg).
    mosaic : float
        Mosaic spread (deg, full width).
    wavelength : float
        (A).
    distance : float
        Crystal-to-detector distance (mm).
    detector_limits : 4 floats
        Pixel limits: slow min, slow max, fast min, fast max (XDET/YDET range).
    two_theta : float
        Detector swing angle (deg).
    divergence : 2 floats
        DIVH, DIVV (deg).
    dispersion : float
        dlambda/lambda.
    beam_direction : 3 floats
        Unit beam vector (lab frame), (1, 0, 0) ideally.
    reverse_phi : bool
        Rotation about -Z (scan axis (0, 0, -1)).
    title : str
        Batch title (70 characters are kept).
    dataset_id : int
        Dataset the batch belongs to (1).
    time_start, time_end : float
        Optional exposure times (s), 0 if unknown.
    cell_flags : 6 ints
        ``lbcell``: refinement flags of the cell parameters (-1 = not recorded).
    """

    number: int
    phi_start: float
    phi_end: float
    cell: tuple[float, float, float, float, float, float]
    U: np.ndarray
    missets_start: tuple[float, float, float]
    missets_end: tuple[float, float, float]
    mosaic: float
    wavelength: float
    distance: float
    detector_limits: tuple[float, float, float, float]
    two_theta: float = 0.0
    divergence: tuple[float, float] = (0.0, 0.0)
    dispersion: float = 0.0
    beam_direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    reverse_phi: bool = False
    title: str = ""
    dataset_id: int = 1
    time_start: float = 0.0
    time_end: float = 0.0
    cell_flags: tuple[int, int, int, int, int, int] = (-1, -1, -1, -1, -1, -1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "U", _ro(np.array(self.U, dtype=np.float64).reshape(3, 3)))


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


def _jumpax(U: np.ndarray, cell: tuple[float, ...], axis: np.ndarray) -> int:
    """Reciprocal axis (1 = a*, 2 = b*, 3 = c*) most nearly parallel to the rotation axis."""
    ub = U @ b_matrix(tuple(cell))  # type: ignore[arg-type]
    cosines = np.abs(axis @ ub) / np.linalg.norm(ub, axis=0)
    return int(np.argmax(cosines)) + 1


def batch_to_gemmi(header: BatchHeader) -> gemmi.Mtz.Batch:
    """A gemmi batch with the orientation block of *header* (offsets of BATCH_FLOATS/INTS)."""
    b = gemmi.Mtz.Batch()
    b.number = int(header.number)
    b.title = (header.title or f"Batch {header.number}")[:70]
    b.axes = ["PHI"]
    floats = np.zeros(len(b.floats), dtype=np.float64)
    ints = np.zeros(len(b.ints), dtype=np.int64)
    ints[:3] = list(b.ints)[:3]  # sizes 185 29 156, set by gemmi
    axis = np.array([0.0, 0.0, -1.0 if header.reverse_phi else 1.0])
    beam = np.asarray(header.beam_direction, dtype=np.float64)
    put_f = {
        "cell": header.cell,
        "umat": header.U.ravel(order="F"),
        "phixyz_start": header.missets_start,
        "phixyz_end": header.missets_end,
        "crydat": [header.mosaic] + [0.0] * 11,
        "phistt": [header.phi_start],
        "phiend": [header.phi_end],
        "scanax": axis,
        "time1": [header.time_start],
        "time2": [header.time_end],
        "bscale": [1.0],
        "phirange": [header.phi_end - header.phi_start],
        "e1": axis,
        "source": [1.0, 0.0, 0.0],
        "so": beam / np.linalg.norm(beam),
        "alambd": [header.wavelength],
        "delamb": [header.dispersion],
        "divhd": [header.divergence[0]],
        "divvd": [header.divergence[1]],
        "dx": [header.distance],
        "theta": [header.two_theta],
        "detlm": header.detector_limits,
    }
    for name, value in put_f.items():
        floats[BATCH_FLOATS[name]] = value
    same_missets = np.allclose(header.missets_start, header.missets_end)
    put_i = {
        "lbcell": header.cell_flags,
        "misflg": [1 if same_missets else 2],
        "jumpax": [_jumpax(header.U, header.cell, axis)],
        "ncryst": [1],
        "ldtype": [2],
        "jsaxs": [1],
        "ngonax": [1],
        "lbmflg": [1],
        "ndet": [1],
        "nbsetid": [header.dataset_id],
    }
    for name, value in put_i.items():
        ints[BATCH_INTS[name]] = value
    for i, v in enumerate(floats.tolist()):
        b.floats[i] = v
    for i, v in enumerate(ints.tolist()):
        b.ints[i] = v
    b.dataset_id = int(header.dataset_id)
    return b


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


def _decode_batch(b: gemmi.Mtz.Batch) -> dict[str, object]:
    f = np.array(list(b.floats), dtype=np.float64)
    i = np.array(list(b.ints), dtype=np.int64)
    title = b.title.removeprefix("TITLE ").rstrip()  # gemmi 0.7 keeps the record keyword
    out: dict[str, object] = {"number": b.number, "title": title, "dataset_id": b.dataset_id}
    for name, sl in BATCH_FLOATS.items():
        v = f[sl]
        out[name] = float(v[0]) if v.size == 1 else v
    for name, sl in BATCH_INTS.items():
        v = i[sl]
        out[name] = int(v[0]) if v.size == 1 else v
    out["U"] = np.asarray(out["umat"]).reshape(3, 3, order="F")
    return out


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
        batches=[_decode_batch(b) for b in mtz.batches],
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
