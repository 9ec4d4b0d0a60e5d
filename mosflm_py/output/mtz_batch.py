"""Batch headers (orientation blocks) of MOSFLM's unmerged MTZ, one per image.

The 185-word binary block of each batch (29 ints, 156 floats) is addressed through the named
word offsets :data:`BATCH_FLOATS` and :data:`BATCH_INTS`; U, the scan axis and the beam vectors
are in the MOSFLM "Cambridge" laboratory frame (X along the beam, Z along the spindle; see
``help/topics/conventions.txt``).

References
----------
CCP4 ``mtzdata.h``/``cmtzlib.c`` (``MtzBatchToArray``: batch word layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import gemmi
import numpy as np

from mosflm_py.geometry.crystal import b_matrix

__all__ = ["BATCH_FLOATS", "BATCH_INTS", "BatchHeader", "batch_to_gemmi", "decode_batch"]

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
    "ldtype": slice(14, 15),  # data type; MOSFLM writes 1 (both real MOSFLM files)
    "jsaxs": slice(15, 16),  # goniostat scan axis number
    "nbscal": slice(16, 17),  # number of batch scales (0 = unset)
    "ngonax": slice(17, 18),  # number of goniostat axes
    "lbmflg": slice(18, 19),  # beam info flag (1 = delcor, divhd, divvd present)
    "ndet": slice(19, 20),  # number of detectors
    "nbsetid": slice(20, 21),  # dataset id
}



def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


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
        ``lbcell``: refinement flags of the cell parameters (0, as MOSFLM writes them).
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
    cell_flags: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "U", _ro(np.array(self.U, dtype=np.float64).reshape(3, 3)))



def _jumpax(U: np.ndarray, cell: tuple[float, ...], axis: np.ndarray) -> int:
    """Reciprocal axis (1 = a*, 2 = b*, 3 = c*) most nearly parallel to the rotation axis."""
    ub = U @ b_matrix(tuple(cell))  # type: ignore[arg-type]
    cosines = np.abs(axis @ ub) / np.linalg.norm(ub, axis=0)
    return int(np.argmax(cosines)) + 1


def batch_to_gemmi(header: BatchHeader) -> gemmi.Mtz.Batch:
    """A gemmi batch with the orientation block of *header* (offsets of BATCH_FLOATS/INTS).

    Fields are set as in the real MOSFLM files (``../shared/data/real/mosflm_mtz``, checked
    field by field in ``tests/test_mtz_header_vs_mosflm.py``): the idealised and actual beam
    vectors point from the crystal to the source (-1 0 0), the rotation axis is given by the
    goniostat axis E1 (SCANAX and PHIRANGE left 0), ldtype 1, ncryst 0, lbcell 0, and the batch
    title is the TITLE (blank when none was given).
    """
    b = gemmi.Mtz.Batch()
    b.number = int(header.number)
    b.title = (header.title or "")[:70]
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
        "time1": [header.time_start],
        "time2": [header.time_end],
        "bscale": [1.0],
        "e1": axis,
        "source": [-1.0, 0.0, 0.0],
        "so": -beam / np.linalg.norm(beam),
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
        "ncryst": [0],
        "ldtype": [1],
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


def decode_batch(b: gemmi.Mtz.Batch) -> dict[str, object]:
    """The orientation block of a gemmi batch as a dict (names of BATCH_FLOATS/INTS, U)."""
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
