"""CCP4 data-harvesting file written after integration (HARVEST ON), as MOSFLM writes it.

The layout is that of MOSFLM 6.2.6's ``<DNAME>.mosflm_run_<first>_<last>`` (the real file is in
``../shared/data/real/mosflm_logs/INFL.mosflm_run_1_60``): an mmCIF-like block
``data_<PNAME>[<DNAME>]`` with the cell, symmetry, geometry, mosaicity and resolution items and a
loop of per-image statistics (rms positional residual, weighted residual, <I/sigma>, I/sigma in
the outer shell, Rsym, Nsym, SDRAT).  Where it goes follows CCP4's harvesting convention: the
current directory with UCWD, otherwise ``$HARVESTHOME/DepositFiles/<PNAME>`` (HARVESTHOME
defaults to the home directory).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mosflm_py.atomic import atomic_write_text

__all__ = ["HarvestImage", "HarvestRun", "format_harvest", "harvest_path"]


@dataclass(frozen=True)
class HarvestImage:
    """Per-image statistics of the harvest loop (residuals in mm; Rsym, SDRAT ratios)."""

    image: int
    rms_residual: float
    weighted_residual: float
    i_sigma: float
    i_sigma_outer: float
    rsym: float
    nsym: int
    sdrat: float


@dataclass(frozen=True)
class HarvestRun:
    """What one integration run reports to the harvest file.

    Cell in Angstrom/degrees, distance in mm, wavelength in Angstrom, mosaic spreads and
    divergences in degrees, resolution limits in Angstrom.
    """

    pname: str
    dname: str
    first: int
    last: int
    cell: tuple[float, float, float, float, float, float]
    space_group_number: int
    space_group_name: str
    distance: float
    wavelength: float
    synchrotron: bool
    detector: str
    polarisation: float
    mosaics: Sequence[float]
    divergence: tuple[float, float]
    d_high: float
    d_low: float
    images: Sequence[HarvestImage]
    version: str = ""
    when: _dt.datetime | None = None


def _detector_class(detector: str) -> str:
    """The kind of detector, in the words of the harvest dictionary."""
    d = detector.upper()
    if any(k in d for k in ("PILATUS", "EIGER", "TIMEPIX")):
        return "pixel array detector"
    if any(k in d for k in ("MAR345", "MARIP", "RAXIS", "IMAGE PLATE")):
        return "image plate detector"
    return "CCD area detector"


def harvest_path(pname: str, dname: str, first: int, last: int, use_cwd: bool) -> Path:
    """``<DNAME>.mosflm_run_<first>_<last>`` in the cwd (UCWD) or in the DepositFiles tree."""
    name = f"{dname}.mosflm_run_{first}_{last}"
    if use_cwd:
        return Path(name)
    home = os.environ.get("HARVESTHOME") or os.path.expanduser("~")
    return Path(home) / "DepositFiles" / pname / name


def format_harvest(run: HarvestRun) -> str:
    """The text of the harvest file (MOSFLM 6.2.6 layout)."""
    when = (run.when or _dt.datetime.now().astimezone()).isoformat(timespec="seconds")
    mos = [m for m in run.mosaics] or [0.0]
    lines = [
        f"data_{run.pname}[{run.dname}]",
        f"_entry.id                 '{run.pname}'",
        f"_diffrn.id                '{run.dname}'",
        f"_audit.creation_DayTime    '{when}'",
        f"_audit.ebi_image_start     {run.first:8d}",
        f"_audit.ebi_image_end       {run.last:8d}",
        "",
        "_software.name            'mosflm-py'",
        f"_software.version         '{run.version} (a re-implementation of MOSFLM)'",
        "_software.classification        'data reduction'",
        "_software.description       'reflection data processing'",
        "",
        "",
        f"_cell.length_a    {run.cell[0]:8.3f}",
        f"_cell.length_b    {run.cell[1]:8.3f}",
        f"_cell.length_c    {run.cell[2]:8.3f}",
        f"_cell.angle_alpha  {run.cell[3]:7.2f}",
        f"_cell.angle_beta   {run.cell[4]:7.2f}",
        f"_cell.angle_gamma  {run.cell[5]:7.2f}",
        "",
        f"_Symmetry.Int_Tables_number   {run.space_group_number:4d}",
        f"_Symmetry.space_group_name_H-M   '{run.space_group_name:<10s}'",
        "",
        f"_diffrn_measurement.detector_distance  {run.distance:8.4f}",
        "_diffrn_measurement.device 'oscillation camera'",
        "_diffrn_radiation.wavelength_id         1",
        f"_diffrn_radiation_wavelength.wavelength    {run.wavelength:6.4f}",
        "",
        f"_diffrn_source.source   '{'synchrotron' if run.synchrotron else 'sealed tube'}'",
        f"_diffrn_detector.detector  '{_detector_class(run.detector)}'",
        f"_diffrn_detector.type  '{run.detector} with orthogonal scan'",
        f"_diffrn_radiation.polarisn_ratio     {run.polarisation:6.4f}",
        "_diffrn_radiation.polarisation_collimation  "
        f"'{'synchrotron' if run.synchrotron else 'unpolarised'}'",
        "",
        f"_ebi_diffrn_images.mosaicity_min                    {min(mos):7.3f}",
        f"_ebi_diffrn_images.mosaicity_max                    {max(mos):7.3f}",
        f"_ebi_diffrn_images.mosaicity_mean                   {sum(mos) / len(mos):7.3f}",
        f"_ebi_diffrn_images.beam_divergence_Horizontal_mean  {run.divergence[0]:7.3f}",
        f"_ebi_diffrn_images.beam_divergence_Vertical_mean    {run.divergence[1]:7.3f}",
        "",
        f"_diffrn_measurement.ebi_d_res_high    {run.d_high:7.3f}",
        f"_diffrn_measurement.ebi_d_res_low     {run.d_low:7.3f}",
        "",
        "",
        "loop_",
        "_ebi_diffrn_images.id      ",
        "_ebi_diffrn_images.rms_positional_residual",
        "_ebi_diffrn_images.weighted_rms_positional_residual",
        "_ebi_diffrn_images.mean_I_over_SigmaI",
        "_ebi_diffrn_images.I_over_Sigma_I_res_high",
        "_ebi_diffrn_images.Intensity_R_factor_symmetry_reflection",
        "_ebi_diffrn_images.number_symmetry_related_observations",
        "_ebi_diffrn_images.agreement_ratio_symm_Int_to_esd",
    ]
    for im in run.images:
        lines.append(
            f"{im.image:6d}{im.rms_residual:8.3f}{im.weighted_residual:11.1f}"
            f"{im.i_sigma:9.1f}{im.i_sigma_outer:9.1f}{im.rsym:10.3f}{im.nsym:7d}"
            f"{im.sdrat:8.1f}"
        )
    return "\n".join(lines) + "\n"


def write_harvest(path: str | os.PathLike[str], run: HarvestRun) -> Path:
    """Write the harvest file atomically (creating its folder); returns the path."""
    path = Path(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, format_harvest(run))
    return path


__all__ += ["write_harvest"]
