"""Unmerged observations read from a multi-record MTZ, and the summation of partials.

The MTZ is read through its columns only (H K L M/ISYM BATCH I SIGI [IPR SIGIPR] [FRACTIONCALC]
[MPART] [FLAG] [ROT] [XDET YDET]), so files written by MOSFLM, by mosflm-py and by
``dials.export`` are all accepted.

Partials (M = 1 in M/ISYM) of one reflection are the records of the same original indices on
consecutive batches. They are summed (intensities added, variances added) as Aimless does for
``PARTIALS`` (Evans 2006, Acta Cryst. D62, 72-82, section 2.2): a set is accepted when all its
parts are present (Npart and the part numbers from MPART, Aimless's ``PARTIALS CHECK``), or
when its total calculated fraction lies within [``frac_min``, ``frac_max``] (Aimless's
``PARTIALS TEST 0.95 1.05``; this decides alone in a file without MPART); other sets are
incomplete and rejected (counted).

Written by hand (numpy): neither gemmi nor scipy sums partials.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import gemmi
import numpy as np

from mosflm_py.errors import MosflmError
from mosflm_py.output.mtz_batch import BATCH_FLOATS
from mosflm_py.output.mtz_columns import Flag, decode_misym, decode_mpart, hkl_from_asu
from mosflm_py.scaling.absorption import crystal_frame_directions

__all__ = [
    "Observations",
    "PartialsSummary",
    "QuickScaleError",
    "read_unmerged",
    "sum_partials",
]


class QuickScaleError(MosflmError):
    """QUICKSCALE/QUICKSYMM cannot run on these data (message says why)."""


ROW_FIELDS = (
    "hkl",
    "batch",
    "rot",
    "intensity",
    "sigma",
    "fraction",
    "partial",
    "mpart",
    "flag",
    "xdet",
    "ydet",
)
"""The per-observation arrays of :class:`Observations` that always exist (``s0c``/``s1c`` are
per observation too, but may be None)."""


@dataclass
class Observations:
    """One row per observation (a full, a summed partial, or an unsummed part).

    Attributes
    ----------
    hkl : (N, 3) int
        Original (observed) Miller indices in the file's cell.
    batch : (N,) int
        Batch number (the first batch of a summed partial set).
    rot : (N,) float
        Rotation angle φ of the observation (deg): the centroid of a summed partial.
    intensity, sigma : (N,) float
        Intensity and its standard uncertainty (LP-corrected, as in the MTZ).
    fraction : (N,) float
        Total calculated fraction (1 for a full).
    partial : (N,) bool
        Record is a partial part (only before summation).
    mpart : (N,) int
        MPART code (0 if the file has no MPART column).
    flag : (N,) int
        FLAG column (0 = good).
    xdet, ydet : (N,) float
        Detector position (mm or pixels, as in the file; NaN if absent).
    cell : gemmi.UnitCell
    space_group : gemmi.SpaceGroup
        The file's space group (used only to expand M/ISYM to original indices).
    wavelength : float
    batches : sorted unique batch numbers of the file, with their φ ranges
    s0c, s1c : (N, 3) float or None
        Unit incident and diffracted beam directions in the crystal frame (from the batch
        headers' orientation; None when the file has none), for the absorption surface.
    direction_error : float
        Median relative violation of the Laue condition by those directions (NaN if none).
    """

    hkl: np.ndarray
    batch: np.ndarray
    rot: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    fraction: np.ndarray
    partial: np.ndarray
    mpart: np.ndarray
    flag: np.ndarray
    xdet: np.ndarray
    ydet: np.ndarray
    cell: gemmi.UnitCell
    space_group: gemmi.SpaceGroup
    wavelength: float = 1.0
    batch_numbers: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    batch_phi: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    source: str = ""
    intensity_kind: str = "profile"
    pname: str = "Unspecified"
    xname: str = "Unspecified"
    dname: str = "Unspecified"
    s0c: np.ndarray | None = None
    s1c: np.ndarray | None = None
    direction_error: float = float("nan")

    def __len__(self) -> int:
        return int(self.hkl.shape[0])

    def take(self, sel: np.ndarray) -> Observations:
        """A copy restricted to the rows selected by a boolean mask or index array."""
        rows = {k: getattr(self, k)[sel] for k in ROW_FIELDS}
        return replace(
            self,
            **rows,
            s0c=None if self.s0c is None else self.s0c[sel],
            s1c=None if self.s1c is None else self.s1c[sel],
        )

    def d_spacing(self) -> np.ndarray:
        """Resolution d (Å) of every observation."""
        return d_spacing(self.cell, self.hkl)


def d_spacing(cell: gemmi.UnitCell, hkl: np.ndarray) -> np.ndarray:
    """d (Å) of Miller indices *hkl* (N, 3) in *cell* (vectorised 1/|B h|)."""
    frac = np.array(cell.frac.mat.tolist())  # orthogonal -> fractional; B = frac^T
    s = np.asarray(hkl, float) @ frac
    return 1.0 / np.sqrt(np.maximum(np.sum(s * s, axis=1), 1e-30))


def _col(mtz: gemmi.Mtz, data: np.ndarray, label: str) -> np.ndarray | None:
    for k, c in enumerate(mtz.columns):
        if c.label == label:
            return data[:, k].astype(np.float64)
    return None


def read_unmerged(path: str, intensities: str = "profile") -> Observations:
    """Read an unmerged (multi-record) MTZ file.

    Parameters
    ----------
    path
        MTZ file name.
    intensities
        ``"profile"`` (IPR/SIGIPR where present, else I/SIGI), or ``"summation"`` (I/SIGI).

    Raises
    ------
    QuickScaleError
        The file cannot be read, is merged, or lacks H K L M/ISYM BATCH I SIGI.
    """
    try:
        mtz = gemmi.read_mtz_file(str(path))
    except (RuntimeError, OSError, ValueError) as err:
        raise QuickScaleError(f"cannot read the MTZ file {path}: {err}") from None
    labels = [c.label for c in mtz.columns]
    missing = [c for c in ("H", "K", "L", "M/ISYM", "BATCH", "I", "SIGI") if c not in labels]
    if missing:
        raise QuickScaleError(
            f"{path} is not an unmerged MTZ file: it has no column(s) "
            f"{' '.join(missing)} (columns: {' '.join(labels)})"
        )
    if mtz.spacegroup is None:
        raise QuickScaleError(f"{path}: the MTZ file has no space group")
    data = np.asarray(mtz.array, dtype=np.float64)
    n = data.shape[0]
    hkl_asu = np.rint(data[:, :3]).astype(np.int64)
    misym = np.rint(_col(mtz, data, "M/ISYM")).astype(np.int64)
    isym, partial = decode_misym(misym)
    isym = np.where(isym == 0, 1, isym)
    hkl = hkl_from_asu(hkl_asu, isym, mtz.spacegroup).astype(np.int64)
    batch = np.rint(_col(mtz, data, "BATCH")).astype(np.int64)
    kind = "summation"
    inten, sig = _col(mtz, data, "I"), _col(mtz, data, "SIGI")
    if intensities == "profile":
        ipr, spr = _col(mtz, data, "IPR"), _col(mtz, data, "SIGIPR")
        if ipr is not None and spr is not None:
            good = np.isfinite(ipr) & (spr > 0)
            inten = np.where(good, ipr, inten)
            sig = np.where(good, spr, sig)
            kind = "profile"
    frac = _col(mtz, data, "FRACTIONCALC")
    frac = np.ones(n) if frac is None else np.nan_to_num(frac, nan=1.0)
    mpart = _col(mtz, data, "MPART")
    mpart = (
        np.zeros(n, np.int64) if mpart is None else np.rint(np.nan_to_num(mpart)).astype(np.int64)
    )
    flag = _col(mtz, data, "FLAG")
    flag = np.zeros(n, np.int64) if flag is None else np.rint(np.nan_to_num(flag)).astype(np.int64)
    numbers = np.array([b.number for b in mtz.batches], dtype=np.int64)
    phis = (
        np.array([[b.floats[36], b.floats[37]] for b in mtz.batches], dtype=np.float64)
        if len(mtz.batches)
        else np.zeros((0, 2))
    )
    rot = _col(mtz, data, "ROT")
    if rot is None or not np.isfinite(rot).any():
        order = np.argsort(numbers)
        pos = np.clip(np.searchsorted(numbers[order], batch), 0, max(len(numbers) - 1, 0))
        rot = phis[order][pos].mean(axis=1) if len(numbers) else batch.astype(float)
    xdet, ydet = _col(mtz, data, "XDET"), _col(mtz, data, "YDET")
    nanv = np.full(n, np.nan)
    ds = mtz.datasets[-1] if len(mtz.datasets) else None
    cell = mtz.cell
    if len(mtz.batches):  # average cell of the batch headers, as gemmi and Aimless use
        cells = np.array([list(b.cell.parameters) for b in mtz.batches], dtype=np.float64)
        if cells.size and np.all(cells[:, :3] > 0):
            cell = gemmi.UnitCell(*cells.mean(axis=0))
    s0c, s1c, derr = _directions(mtz, hkl, rot)
    return Observations(
        s0c=s0c,
        s1c=s1c,
        direction_error=derr,
        hkl=hkl,
        batch=batch,
        rot=rot,
        intensity=inten,
        sigma=sig,
        fraction=frac,
        partial=np.asarray(partial, bool),
        mpart=mpart,
        flag=flag,
        xdet=nanv if xdet is None else xdet,
        ydet=nanv if ydet is None else ydet,
        cell=cell,
        space_group=mtz.spacegroup,
        wavelength=float(ds.wavelength) if ds is not None and ds.wavelength > 0 else 1.0,
        batch_numbers=numbers,
        batch_phi=phis,
        source=str(path),
        intensity_kind=kind,
        pname=(ds.project_name if ds is not None else "") or "Unspecified",
        xname=(ds.crystal_name if ds is not None else "") or "Unspecified",
        dname=(ds.dataset_name if ds is not None else "") or "Unspecified",
    )


def _directions(
    mtz: gemmi.Mtz, hkl: np.ndarray, rot: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """Beam directions in the crystal frame from the first batch header's orientation (U,
    E1, the beam vector SO, λ); (None, None, NaN) when the headers hold no orientation."""
    if not len(mtz.batches) or not len(hkl):
        return None, None, float("nan")
    f = np.asarray(mtz.batches[0].floats, dtype=np.float64)
    umat = f[BATCH_FLOATS["umat"]].reshape(3, 3, order="F")
    axis = f[BATCH_FLOATS["e1"]]
    if not np.any(axis):
        axis = f[BATCH_FLOATS["scanax"]]
    so = f[BATCH_FLOATS["so"]]
    if not np.any(so):
        so = f[BATCH_FLOATS["source"]]
    lam = float(f[BATCH_FLOATS["alambd"]][0])
    cell = tuple(f[BATCH_FLOATS["cell"]])
    det = np.linalg.det(umat)
    if not (abs(det - 1.0) < 1e-3 and np.any(axis) and np.any(so) and lam > 0 and cell[0] > 0):
        return None, None, float("nan")
    # SO points from the crystal to the source (MOSFLM); the beam travels along -SO
    return crystal_frame_directions(hkl, rot, umat, cell, axis, -so, lam)


@dataclass(frozen=True)
class PartialsSummary:
    """Counts from :func:`sum_partials`."""

    n_records: int
    n_fulls: int
    n_partial_records: int
    n_summed: int
    n_incomplete: int
    n_flagged: int
    n_bad_sigma: int
    frac_min: float
    frac_max: float


def hkl_keys(hkl: np.ndarray) -> np.ndarray:
    """One int64 per Miller index triple (|h|, |k|, |l| < 2**20)."""
    h = np.asarray(hkl, dtype=np.int64) + (1 << 20)
    return (h[:, 0] << 42) | (h[:, 1] << 21) | h[:, 2]


def sum_partials(
    obs: Observations,
    frac_min: float = 0.95,
    frac_max: float = 1.05,
    reject_flags: int = int(~Flag.EDGE & 0xFF),
) -> tuple[Observations, PartialsSummary]:
    """Sum the parts of partially recorded reflections; drop incomplete sets and flagged rows.

    Parameters
    ----------
    obs
        Observations as read (one row per record).
    frac_min, frac_max
        Accepted range of the summed FRACTIONCALC of a complete set (Aimless default
        0.95-1.05).
    reject_flags
        FLAG bits that reject a record (default: all but EDGE, as Aimless).

    Returns
    -------
    (Observations, PartialsSummary)
        One row per full or complete summed partial; φ of a summed partial is the
        fraction-weighted mean of its parts' ROT, its batch the middle part's batch.
    """
    n = len(obs)
    bad_sigma = ~(np.isfinite(obs.intensity) & np.isfinite(obs.sigma) & (obs.sigma > 0))
    flagged = (obs.flag & reject_flags) != 0
    # an observation is rejected if any of its parts is flagged or has no sigma (Aimless)
    key = hkl_keys(obs.hkl)
    order = np.lexsort((obs.batch, key))
    k_s, b_s = key[order], obs.batch[order]
    part_s = obs.partial[order]
    # a new reflection starts where the indices change, the batch is not consecutive, or
    # either neighbour is a full
    new = np.ones(n, bool)
    if n > 1:
        new[1:] = (k_s[1:] != k_s[:-1]) | (b_s[1:] - b_s[:-1] != 1) | ~part_s[1:] | ~part_s[:-1]
    gid = np.cumsum(new) - 1
    ng = int(gid[-1]) + 1 if n else 0
    counts = np.bincount(gid, minlength=ng)
    inten = obs.intensity[order]
    var = obs.sigma[order] ** 2
    frac = obs.fraction[order]
    bad_any = np.bincount(gid, weights=(bad_sigma | flagged)[order].astype(float), minlength=ng) > 0
    isum = np.bincount(gid, weights=np.nan_to_num(inten), minlength=ng)
    vsum = np.bincount(gid, weights=np.nan_to_num(var), minlength=ng)
    fsum = np.bincount(gid, weights=frac, minlength=ng)
    first = np.flatnonzero(new)
    is_partial = part_s[first]
    # completeness from MPART where known: Npart parts present and the part numbers 1..Npart
    npart, ipart = decode_mpart(obs.mpart[order], part_s)
    known = np.bincount(gid, weights=(npart > 0).astype(float), minlength=ng) == counts
    np_first = npart[first]
    ipsum = np.bincount(gid, weights=ipart.astype(float), minlength=ng)
    mpart_ok = (counts == np_first) & (ipsum == np_first * (np_first + 1) / 2)
    frac_ok = (fsum >= frac_min) & (fsum <= frac_max)
    # MPART says whether every part is present. The calculated fractions of a complete set
    # scatter by several per cent about 1 (mosaic-model error; 0.88-1.11 for 98 % of the sets
    # in a real MOSFLM file), so a set with all its parts is accepted whatever its total; a set
    # with a part missing (or without MPART) is accepted when its total fraction passes the test
    # (a missing part of negligible fraction does not matter), as Aimless's PARTIALS CHECK TEST.
    complete = ~is_partial | (known & mpart_ok) | frac_ok
    # a full with a fraction (DIALS: partials summed already, FRACTIONCALC < 1): keep it
    fsum = np.where(is_partial, fsum, frac[first])
    wrot = np.bincount(gid, weights=obs.rot[order] * np.maximum(frac, 1e-6), minlength=ng)
    wsum = np.bincount(gid, weights=np.maximum(frac, 1e-6), minlength=ng)
    rot = wrot / wsum
    mid = first + (counts - 1) // 2
    keep = complete & ~bad_any
    idx = order[mid]
    out = Observations(
        hkl=obs.hkl[idx][keep],
        batch=obs.batch[idx][keep],
        rot=rot[keep],
        intensity=isum[keep],
        sigma=np.sqrt(vsum[keep]),
        fraction=fsum[keep],
        partial=np.zeros(int(keep.sum()), bool),
        mpart=np.zeros(int(keep.sum()), np.int64),
        flag=np.zeros(int(keep.sum()), np.int64),
        xdet=obs.xdet[idx][keep],
        ydet=obs.ydet[idx][keep],
        s0c=None if obs.s0c is None else obs.s0c[idx][keep],
        s1c=None if obs.s1c is None else obs.s1c[idx][keep],
        direction_error=obs.direction_error,
        cell=obs.cell,
        space_group=obs.space_group,
        wavelength=obs.wavelength,
        batch_numbers=obs.batch_numbers,
        batch_phi=obs.batch_phi,
        source=obs.source,
        intensity_kind=obs.intensity_kind,
        pname=obs.pname,
        xname=obs.xname,
        dname=obs.dname,
    )
    summary = PartialsSummary(
        n_records=n,
        n_fulls=int((~obs.partial).sum()),
        n_partial_records=int(obs.partial.sum()),
        n_summed=int((is_partial & keep).sum()),
        n_incomplete=int((is_partial & ~complete).sum()),
        n_flagged=int((bad_any & complete).sum()),
        n_bad_sigma=int(bad_sigma.sum()),
        frac_min=frac_min,
        frac_max=frac_max,
    )
    return out, summary
