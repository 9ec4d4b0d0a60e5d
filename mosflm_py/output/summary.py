"""MOSFLM's SUMMARY file: loggraph tables of per-image refinement and integration results.

MOSFLM 6.2.6 writes (mosflm_outputs.md 2.2) a header, per-block plain-text tables, a warnings
summary and two loggraph tables, "Refined detector parameters" (22 columns) and "Post
refinement"; xia2 relies on exactly those two being present (it splits the file on ``$$`` and
expects 9 pieces).  mosflm_py's PROCESS and cell refinement write exactly those two tables
(same titles, column headers and graph lists, numbers where MOSFLM has numbers); the other
tables built here (per-image counts and <I/sigma(I)>, cell refinement per cycle) are printed in
the log instead.  The tables are built by pure functions from plain per-image records;
:class:`SummaryWriter` keeps the file complete at every moment by rewriting it atomically after
each addition.

View with CCP4 ``loggraph`` or read with :func:`~mosflm_py.output.loggraph.parse_loggraph`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mosflm_py.atomic import atomic_write_text
from mosflm_py.output.loggraph import Graph, LoggraphTable

__all__ = [
    "CellCycle",
    "CellImageCycle",
    "DetectorImageResult",
    "ImageCounts",
    "PostrefImageResult",
    "SummaryWriter",
    "cell_refinement_images_table",
    "cell_refinement_table",
    "detector_parameters_table",
    "image_statistics_table",
    "postrefinement_table",
    "symmetry_agreement",
]

F = float | None  # a value that may be missing (written ******)


@dataclass(frozen=True)
class DetectorImageResult:
    """Refined detector parameters and counts for one image (one row of Table 1).

    Units: CCX, CCY, ROFF, TOFF, RESID in mm; CCOM in deg; DIST in mm; TILT, TWIST in 0.01 deg;
    WRESID dimensionless. FULL..BAD are counts; I/sigI overall and in the outer resolution shell;
    Rsym, Nsym and SDRAT from symmetry-related fulls on the image.
    """

    image: int
    ccx: F
    ccy: F
    ccom: F
    dist: F
    yscale: F
    tilt: F
    twist: F
    roff: F
    toff: F
    resid: F
    wresid: F
    full: int
    part: int
    ovrl: int
    neg: int
    bad: int
    i_sigi: F
    i_sigi_outer: F
    rsym: F = None
    nsym: int | None = None
    sdrat: F = None


DETECTOR_COLUMNS = (
    "IMAGE", "CCX", "CCY", "CCOM", "DIST", "YSCAL", "TILT", "TWIST", "ROFF", "TOFF", "RESID",
    "WRESID", "FULL", "PART", "OVRL", "NEG", "BAD", "I/sigI", "I/sgI_out", "Rsym", "Nsym",
    "SDRAT",
)  # fmt: skip
DETECTOR_FORMATS = (
    "d", ".2f", ".2f", ".2f", ".2f", ".4f", ".0f", ".0f", ".2f", ".2f", ".3f", ".2f",
    "d", "d", "d", "d", "d", ".1f", ".1f", ".3f", "d", ".2f",
)  # fmt: skip
DETECTOR_GRAPHS = (
    Graph("Camera constants CCX CCY (mm) CCOM (deg) v image", (1, 2, 3, 4)),
    Graph("Distance (mm) v image", (1, 5)),
    Graph("Yscale v image", (1, 6)),
    Graph("Tilt and twist (hundredths of deg) v image", (1, 7, 8)),
    Graph("ROFF and TOFF (mm) v image", (1, 9, 10)),
    Graph("Positional error (mm) and weighted error v image", (1, 11, 12)),
    Graph("I/sig(I) overall and outer v image", (1, 18, 19), "N"),
    Graph("Rsym v image", (1, 20), "N"),
    Graph("SDratio v image", (1, 22), "N"),
    Graph("Number of overloads and badspots v image", (1, 15, 17)),
)


def detector_parameters_table(rows: Sequence[DetectorImageResult]) -> LoggraphTable:
    """MOSFLM's Table 1 ``Refined detector parameters`` (22 columns, mosflm_outputs.md 2.2)."""
    data = [
        [r.image, r.ccx, r.ccy, r.ccom, r.dist, r.yscale, r.tilt, r.twist, r.roff, r.toff,
         r.resid, r.wresid, r.full, r.part, r.ovrl, r.neg, r.bad, r.i_sigi, r.i_sigi_outer,
         r.rsym, r.nsym, r.sdrat]
        for r in rows
    ]  # fmt: skip
    return LoggraphTable("Refined detector parameters", DETECTOR_GRAPHS, DETECTOR_COLUMNS, data,
                         DETECTOR_FORMATS)  # fmt: skip


@dataclass(frozen=True)
class PostrefImageResult:
    """Post-refinement result of one image (one row of Table 2).

    Missets PHIX/PHIY/PHIZ, cell angles, MOSAIC, DIVH, DIVV in deg; cell edges in A; Resid is the
    rms phi residual (deg); NR the number of reflections used.
    """

    image: int
    phix: F
    phiy: F
    phiz: F
    cell: tuple[F, F, F, F, F, F]
    mosaic: F
    divh: F
    divv: F
    resid: F
    nref: int


POSTREF_COLUMNS = ("Image", "PHIX", "PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA", "GAMMA",
                   "MOSAIC", "DIVH", "DIVV", "Resid", "NR")  # fmt: skip
POSTREF_FORMATS = ("d", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f",
                   ".3f", ".3f", ".3f", "d")  # fmt: skip
POSTREF_GRAPHS = (
    Graph("Missets phix phiy phiz v image", (1, 2, 3, 4)),
    Graph("Cell parameters A,B,C v image", (1, 5, 6, 7)),
    Graph("Cell angles alpha beta gamma v image", (1, 8, 9, 10)),
    Graph("Mosaic spread v image", (1, 11)),
    Graph("Beam divergences v image", (1, 12, 13)),
)


def postrefinement_table(rows: Sequence[PostrefImageResult]) -> LoggraphTable:
    """MOSFLM's Table 2 ``Post refinement`` (mosflm_outputs.md 2.2 item 5)."""
    data = [[r.image, r.phix, r.phiy, r.phiz, *r.cell, r.mosaic, r.divh, r.divv, r.resid, r.nref]
            for r in rows]  # fmt: skip
    return LoggraphTable("Post refinement", POSTREF_GRAPHS, POSTREF_COLUMNS, data,
                         POSTREF_FORMATS)  # fmt: skip


def symmetry_agreement(hkl_asu, intensity, sigma) -> tuple[float, int, float]:
    """Rsym, Nsym and SDRAT of the fully recorded reflections of one image (SUMMARY Table 1).

    As MOSFLM's "Agreement between symmetry related fully recorded reflections": reflections
    with the same asymmetric-unit index measured more than once on the image are compared with
    their mean, ``Rsym = sum|I - <I>| / sum I``, ``Nsym`` = number of such observations and
    ``SDRAT`` = rms of ``(I - <I>) / sigma * sqrt(n / (n - 1))`` (1 when sigma describes the
    scatter).  0, 0, 0 when no reflection is measured twice (MOSFLM writes numbers, never a
    missing-value marker).

    Parameters
    ----------
    hkl_asu : (N, 3) int
        Asymmetric-unit indices of the fully recorded reflections of the image.
    intensity, sigma : (N,) float
        Their (profile-fitted) intensities and sigmas.
    """
    hkl = np.asarray(hkl_asu, dtype=np.int64).reshape(-1, 3)
    i = np.asarray(intensity, dtype=float)
    sd = np.asarray(sigma, dtype=float)
    ok = np.isfinite(i) & np.isfinite(sd) & (sd > 0)
    hkl, i, sd = hkl[ok], i[ok], sd[ok]
    if len(i) < 2:
        return 0.0, 0, 0.0
    _, inv, counts = np.unique(hkl, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    n = counts[inv]
    multi = n >= 2
    if not multi.any():
        return 0.0, 0, 0.0
    mean = np.bincount(inv, weights=i) / counts
    dev = i - mean[inv]
    denom = float(np.sum(i[multi]))  # signed, as MOSFLM (weak images give Rsym < 0)
    rsym = float(np.sum(np.abs(dev[multi])) / denom) if denom != 0 else 0.0
    z = dev[multi] / sd[multi] * np.sqrt(n[multi] / (n[multi] - 1.0))
    return rsym, int(multi.sum()), float(np.sqrt(np.mean(z * z)))


@dataclass(frozen=True)
class ImageCounts:
    """Per-image reflection counts and mean I/sigma(I), overall and in the outer shell.

    ``*_prf`` for profile-fitted, ``*_sum`` for summation intensities.
    """

    image: int
    full: int
    part: int
    overlap: int
    overload: int
    bad: int
    i_sigi_prf: F
    i_sigi_prf_outer: F
    i_sigi_sum: F
    i_sigi_sum_outer: F


IMAGE_COLUMNS = ("Image", "FULL", "PART", "OVRLAP", "OVRLOAD", "BADSPOT", "IsigI_prf",
                 "IsigI_prf_out", "IsigI_sum", "IsigI_sum_out")  # fmt: skip


def image_statistics_table(rows: Sequence[ImageCounts]) -> LoggraphTable:
    """Counts of fulls, partials, overlaps, overloads, bad spots and <I/sigI> per image."""
    data = [[r.image, r.full, r.part, r.overlap, r.overload, r.bad, r.i_sigi_prf,
             r.i_sigi_prf_outer, r.i_sigi_sum, r.i_sigi_sum_outer] for r in rows]  # fmt: skip
    graphs = (
        Graph("Number of fully and partially recorded reflections v image", (1, 2, 3), "N"),
        Graph("Number of overlaps, overloads and badspots v image", (1, 4, 5, 6), "N"),
        Graph("Profile fitted I/sig(I) overall and outer v image", (1, 7, 8), "N"),
        Graph("Summation I/sig(I) overall and outer v image", (1, 9, 10), "N"),
    )
    formats = ("d", "d", "d", "d", "d", "d", ".1f", ".1f", ".1f", ".1f")
    return LoggraphTable("Reflection counts and I/sigma per image", graphs, IMAGE_COLUMNS, data,
                         formats)  # fmt: skip


@dataclass(frozen=True)
class CellCycle:
    """Cell after one cycle of cell refinement (A, deg) and the rms positional residual (mm)."""

    cycle: int
    cell: tuple[float, float, float, float, float, float]
    rms_resid: F
    rms_phi_resid: F
    nref: int


def cell_refinement_table(rows: Sequence[CellCycle]) -> LoggraphTable:
    """Cell parameters and residuals per cell-refinement cycle."""
    columns = ("Cycle", "A", "B", "C", "ALPHA", "BETA", "GAMMA", "RMSRES", "RMSPHI", "NREF")
    data = [[r.cycle, *r.cell, r.rms_resid, r.rms_phi_resid, r.nref] for r in rows]
    graphs = (
        Graph("Cell edges A B C v cycle", (1, 2, 3, 4)),
        Graph("Cell angles alpha beta gamma v cycle", (1, 5, 6, 7)),
        Graph("Rms positional residual (mm) v cycle", (1, 8), "N"),
        Graph("Rms phi residual (deg) v cycle", (1, 9), "N"),
    )
    formats = ("d", ".3f", ".3f", ".3f", ".3f", ".3f", ".3f", ".4f", ".4f", "d")
    return LoggraphTable("Cell refinement", graphs, columns, data, formats)


@dataclass(frozen=True)
class CellImageCycle:
    """Per-image detector values in one cell-refinement cycle (mm for RMSRES and DIST)."""

    cycle: int
    image: int
    rms_resid: F
    yscale: F
    distance: F


def cell_refinement_images_table(rows: Sequence[CellImageCycle]) -> LoggraphTable:
    """RMS positional error, YSCALE and distance per image and cycle of cell refinement.

    The x column is a running row number (1, 2, ...) because loggraph needs a numeric axis;
    the cycle and image of each row are in the next two columns.
    """
    columns = ("N", "Cycle", "Image", "RMSRES", "YSCALE", "DIST")
    data = [[k + 1, r.cycle, r.image, r.rms_resid, r.yscale, r.distance]
            for k, r in enumerate(rows)]  # fmt: skip
    graphs = (
        Graph("Rms positional error (mm) v cycle and image", (1, 4), "N"),
        Graph("Yscale v cycle and image", (1, 5)),
        Graph("Distance (mm) v cycle and image", (1, 6)),
    )
    formats = ("d", "d", "d", ".4f", ".4f", ".2f")
    return LoggraphTable("Cell refinement per image", graphs, columns, data, formats)


class SummaryWriter:
    """SUMMARY file that is complete at every moment.

    Each :meth:`add_table`/:meth:`add_text` rewrites the whole file atomically (temporary file
    plus rename), so a reader, a crash or Ctrl-C never sees half a table. A table can be replaced
    in place by adding another with the same title (e.g. Table 1 grows image by image).

    Parameters
    ----------
    path
        SUMMARY file name.
    header
        Free text written first (title, crystal identifier, warnings banner).
    """

    def __init__(self, path: str | os.PathLike[str], header: str = "") -> None:
        self.path = Path(path)
        self._blocks: list[tuple[str | None, str]] = []
        if header:
            self._blocks.append((None, header if header.endswith("\n") else header + "\n"))
        self._flush()

    def add_text(self, text: str) -> None:
        """Append a block of plain text."""
        self._blocks.append((None, text if text.endswith("\n") else text + "\n"))
        self._flush()

    def add_table(self, table: LoggraphTable, replace: bool = True) -> None:
        """Append *table*, or replace the earlier table of the same title if *replace*."""
        block = (table.title, "\n" + table.format())
        if replace:
            for k, (title, _) in enumerate(self._blocks):
                if title == table.title:
                    self._blocks[k] = block
                    self._flush()
                    return
        self._blocks.append(block)
        self._flush()

    def text(self) -> str:
        """Current contents of the file."""
        return "".join(text for _, text in self._blocks)

    def _flush(self) -> None:
        atomic_write_text(self.path, self.text())
