"""MTZ files written by QuickScale: merged (as Aimless) and scaled unmerged.

Merged: H K L IMEAN SIGIMEAN I(+) SIGI(+) I(-) SIGI(-) (types H H H J Q K M K M), the column
set Aimless writes; for a centric reflection I(+) = I(−) = IMEAN (no anomalous difference).
Scaled unmerged: one row per observation used (fulls and summed partials) in the chosen space
group's asymmetric unit, H K L M/ISYM BATCH I SIGI FRACTIONCALC ROT XDET YDET SCALEUSED FLAG
(FLAG = 1 for a rejected outlier, which keeps its scaled I), with the input's batch headers
(their cell replaced by the merged data's).

gemmi writes the files; the column layout is assembled here.
"""

from __future__ import annotations

import gemmi
import numpy as np

from mosflm_py.atomic import OutputFileError, atomic_write_bytes
from mosflm_py.output.mtz_columns import encode_misym, hkl_to_asu
from mosflm_py.scaling.merging import MergedData
from mosflm_py.scaling.observations import Observations, QuickScaleError

__all__ = ["write_merged_mtz", "write_scaled_unmerged_mtz"]


def _new_mtz(obs: Observations, sg: gemmi.SpaceGroup, history: str) -> gemmi.Mtz:
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = sg
    mtz.set_cell_for_all(obs.cell)
    ds = mtz.add_dataset(obs.dname)
    ds.project_name = obs.pname
    ds.crystal_name = obs.xname
    ds.wavelength = obs.wavelength
    mtz.history = [history]
    mtz.title = "mosflm-py QuickScale"
    return mtz


def _write(mtz: gemmi.Mtz, path: str) -> None:
    try:
        # gemmi's write_to_file does not check its writes (a full disk gives a truncated file
        # and no error): the bytes are written by Python, which does.
        atomic_write_bytes(path, mtz.write_to_bytes())
    except OutputFileError:
        raise
    except (OSError, RuntimeError) as err:
        raise QuickScaleError(f"cannot write the MTZ file {path}: {err}") from None


def write_merged_mtz(
    path: str, merged: MergedData, obs: Observations, sg: gemmi.SpaceGroup
) -> None:
    """Merged intensities as Aimless writes them (IMEAN and I(+)/I(−))."""
    mtz = _new_mtz(obs, sg, "From mosflm-py QUICKSCALE (merged)")
    for label, typ in (
        ("IMEAN", "J"),
        ("SIGIMEAN", "Q"),
        ("I(+)", "K"),
        ("SIGI(+)", "M"),
        ("I(-)", "K"),
        ("SIGI(-)", "M"),
    ):
        mtz.add_column(label, typ)
    c = merged.centric
    ip = np.where(c, merged.imean, merged.iplus)
    sp = np.where(c, merged.sigimean, merged.sigiplus)
    im = np.where(c, merged.imean, merged.iminus)
    sm = np.where(c, merged.sigimean, merged.sigiminus)
    data = np.column_stack(
        [merged.hkl.astype(np.float32), merged.imean, merged.sigimean, ip, sp, im, sm]
    ).astype(np.float32)
    order = np.lexsort((data[:, 2], data[:, 1], data[:, 0]))
    mtz.set_data(data[order])
    mtz.sort_order = [1, 2, 3, 0, 0]
    mtz.update_reso()
    _write(mtz, path)


def write_scaled_unmerged_mtz(
    path: str,
    obs: Observations,
    sg: gemmi.SpaceGroup,
    g: np.ndarray,
    sigma: np.ndarray,
    keep: np.ndarray,
) -> None:
    """Scaled observations (I/g, σ'), one row each, with the input file's batch headers."""
    mtz = _new_mtz(obs, sg, "From mosflm-py QUICKSCALE (scaled, unmerged)")
    asu, isym = hkl_to_asu(obs.hkl, sg)
    misym = encode_misym(isym, np.zeros(len(obs), bool))
    for label, typ in (
        ("M/ISYM", "Y"),
        ("BATCH", "B"),
        ("I", "J"),
        ("SIGI", "Q"),
        ("FRACTIONCALC", "R"),
        ("ROT", "R"),
        ("XDET", "R"),
        ("YDET", "R"),
        ("SCALEUSED", "R"),
        ("FLAG", "I"),
    ):
        mtz.add_column(label, typ)
    data = np.column_stack(
        [
            asu,
            misym,
            obs.batch,
            obs.intensity / g,
            sigma,
            obs.fraction,
            obs.rot,
            obs.xdet,
            obs.ydet,
            1.0 / g,
            (~keep).astype(float),
        ]
    ).astype(np.float32)
    order = np.lexsort((data[:, 4], data[:, 2], data[:, 1], data[:, 0]))
    mtz.set_data(data[order])
    mtz.sort_order = [1, 2, 3, 5, 4]
    batches = _batches(obs)
    if batches is not None:
        mtz.batches = batches
    mtz.update_reso()
    _write(mtz, path)


def _batches(obs: Observations):
    """The input MTZ's batch headers (dataset id 1, the cell of the data as merged: re-indexed
    and symmetrised), or None if the input cannot be re-read. The orientation blocks are the
    input's (in its own indexing)."""
    try:
        src = gemmi.read_mtz_file(obs.source)
    except (RuntimeError, OSError, ValueError):
        return None
    out = []
    for b in src.batches:
        c = b.clone()
        c.dataset_id = 1
        c.cell = obs.cell
        out.append(c)
    return out
