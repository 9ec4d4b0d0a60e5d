"""Log lines worded and laid out as MOSFLM writes them, for programs that parse the log.

Pipelines that drive ipmosflm (xia2's MOSFLM wrappers up to xia2 2.0, beamline scripts) read
MOSFLM's terminal output line by line, split lines on blanks and take tokens by position, or take
fixed-width columns.  The functions here return those lines as plain strings (no printing), so
the actions stay thin and every format lives in one place.  The reference is the real MOSFLM
output in ``../shared/data/real/mosflm_logs`` (6.2.6 cell refinement and integration, 7.0.0
beta autoindexing); each function names the lines it reproduces and the fields a parser takes.

Where the two versions differ the choice is stated in the function (the solutions table and
the lines after it follow 7.0.0, the only real autoindexing log at hand, whose layout xia2's
parser was written against; everything else follows 6.2.6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

LATTICE_NAMES = {
    "aP": "Primitive Triclinic",
    "mP": "Primitive Monoclinic",
    "mC": "C Centred Monoclinic",
    "mI": "I Centred Monoclinic",
    "oP": "Primitive Orthorhombic",
    "oC": "C Centred Orthorhombic",
    "oF": "F Centred Orthorhombic",
    "oI": "I Centred Orthorhombic",
    "tP": "Primitive Tetragonal",
    "tI": "I Centred Tetragonal",
    "hP": "Primitive Hexagonal",
    "hR": "Rhombohedral",
    "cP": "Primitive Cubic",
    "cF": "F Centred Cubic",
    "cI": "I Centred Cubic",
}

SOLUTIONS_HEADER = (
    " No PENALTY SDCELL FRACN LATT      a        b        c     alpha  beta gamma"
    "  Possible spacegroups"
)
"""Printed before and after the table: xia2 toggles collection on each occurrence."""


# -------------------------------------------------------------------------------------------
# helpers
# -------------------------------------------------------------------------------------------


def finite(x: float | None, default: float = 0.0) -> float:
    """``x`` if it is a finite number, else ``default`` (MOSFLM never prints nan)."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def space_group_short(symbol: str) -> tuple[str, int]:
    """MOSFLM's compact space-group name and number ("P 21 21 21" -> ("P212121", 19))."""
    import gemmi

    sg = gemmi.find_spacegroup_by_name(str(symbol))
    if sg is None:
        return str(symbol).replace(" ", ""), 0
    name = sg.short_name()
    if sg.ext == "H":  # MOSFLM writes the hexagonal settings of R groups as H3, H32
        name = "H" + name[1:]
    return name, int(sg.number)


def rhombohedral_cell(cell: Sequence[float]) -> tuple[float, ...]:
    """Primitive rhombohedral cell of a hexagonal-setting cell (a = b, gamma = 120).

    a_r = sqrt(3 a^2 + c^2) / 3 and cos(alpha_r) = (2 c^2 - 3 a^2) / (2 c^2 + 6 a^2)
    (International Tables A, Table 5.1.3.1).
    """
    a = 0.5 * (cell[0] + cell[1])
    c = cell[2]
    ar = math.sqrt(3 * a * a + c * c) / 3.0
    cos_al = (2 * c * c - 3 * a * a) / (2 * c * c + 6 * a * a)
    al = math.degrees(math.acos(max(-1.0, min(1.0, cos_al))))
    return (ar, ar, ar, al, al, al)


def _cell9(cell: Sequence[float]) -> str:
    """The cell columns of the solutions table (3 x %9.2f, %8.1f, 2 x %6.1f)."""
    return f"{cell[0]:9.2f}{cell[1]:9.2f}{cell[2]:9.2f}{cell[3]:8.1f}{cell[4]:6.1f}{cell[5]:6.1f}"


# -------------------------------------------------------------------------------------------
# AUTOINDEX
# -------------------------------------------------------------------------------------------


def _group_text(row) -> list[str]:
    """The "Possible spacegroups" text: MOSFLM's wording for hR, P3/P6 split over two lines."""
    groups = [space_group_short(g)[0] for g in row.space_groups]
    if row.lattice == "hR":
        return [",".join(groups) + " (hexagonal settings of R3 and R32)"]
    if row.lattice == "hP":
        p3 = [g for g in groups if g.startswith("P3")]
        p6 = [g for g in groups if g.startswith("P6")]
        if p3 and p6:
            return [",".join(p3), ",".join(p6)]
    if row.lattice == "mI":
        return [",".join(groups) + " (transformed from I2)"]
    return [",".join(groups)]


def solution_row_lines(row) -> list[str]:
    """One row of the solutions table (plus MOSFLM's continuation line for hR and hP rows).

    Layout of MOSFLM 7.0.0 (``mosflm-autoindex.lp``): ``%4d%5d`` number and penalty, then
    ``%10.3f %4.2f`` SDCELL and FRACN or ``      unrefined``, the lattice ``%4s``, the cell,
    three blanks and the space groups.  The first token is a plain integer (xia2:
    ``int(line.split()[0])``), the cell is tokens 5-10 of a refined row.
    """
    penalty = int(round(finite(row.penalty, 999.0)))
    sd, fr = finite(row.sdcell, float("nan")), finite(row.fracn, float("nan"))
    if row.refined and math.isfinite(sd) and math.isfinite(fr):
        mid = f"{sd:10.3f} {fr:4.2f}"
    else:
        mid = "      unrefined"
    lattice = "mC" if row.lattice == "mI" else row.lattice
    groups = _group_text(row)
    lines = [f"{row.number:4d}{penalty:5d}{mid}{lattice:>4s}{_cell9(row.cell)}   {groups[0]}"]
    if row.lattice == "hR":
        rc = rhombohedral_cell(row.cell)
        names = ",".join(space_group_short(g)[0] for g in row.space_groups)
        names = names.replace("H", "R")
        lines.append(" " * 28 + f"{_cell9(rc)}   {names} (primitive rhombohedral cell)")
    for extra in groups[1:]:
        lines.append(" " * 78 + extra)
    return lines


def solutions_table(rows: Iterable) -> list[str]:
    """The table of the 44 lattice characters as MOSFLM prints it, highest number first."""
    out = [
        " List of possible Laue groups, sorted on penalty index.",
        " The lower the PENALTY, the better",
        SOLUTIONS_HEADER,
        "",
    ]
    for row in sorted(rows, key=lambda r: -r.number):
        out.extend(solution_row_lines(row))
    out.append(SOLUTIONS_HEADER)
    out.append("")
    return out


def suggested_solution(row, chosen_by_user: bool) -> list[str]:
    """The "Suggested Solution" block and who chose it (xia2 reads the number from it)."""
    sg = space_group_short(row.space_groups[0])[0] if row.space_groups else ""
    lattice = "mC" if row.lattice == "mI" else row.lattice
    raw = getattr(row, "raw_cell", None) or row.cell
    reg = getattr(row, "regularized_cell", None) or row.cell
    out = [
        "",
        f" Suggested Solution: {row.number:2d}  {sg}",
        f"            penalty: {int(round(finite(row.penalty))):2d}",
        "               cell: " + _cell_line(raw),
        "   regularized cell: " + _cell_line(reg),
        f"           Symmetry: {lattice} ({LATTICE_NAMES.get(lattice, lattice)})",
    ]
    if chosen_by_user:
        out.append(f" Solution {row.number:2d} has been chosen from the list.")
    else:
        out.append(
            f" Mosflm has chosen solution {row.number:2d} from the list automatically. "
            "You may want to"
        )
        out.append(" re-run the autoindexing and choose a solution yourself.")
    out += [
        "",
        " The solution and direct beam position will now be refined; reflections which ",
        " deviate by more than the sigma cutoff from their calculated position will",
        " be excluded from the refinement.",
        "",
    ]
    return out


def _cell_line(cell: Sequence[float]) -> str:
    return (
        f"{cell[0]:7.3f}  {cell[1]:7.3f}  {cell[2]:7.3f} "
        f"{cell[3]:6.2f} {cell[4]:6.2f} {cell[5]:6.2f}"
    )


def refined_solution(
    number: int,
    space_group: str,
    initial_cell: Sequence[float],
    final_cell: Sequence[float],
    n_indexed: int,
    n_used: int,
    sdcutoff: float,
    sigma_xy: float,
    sigma_phi: float,
    beam_start: Sequence[float],
    beam_refined: Sequence[float],
    min_separation: float,
) -> list[str]:
    """The refinement of the chosen solution (MOSFLM 7.0.0 lines, parsed by xia2).

    ``Refining solution # N with <SG> (number n) symmetry imposed`` (xia2 takes n as the
    last token before ``)``), ``Beam coordinates of x y have been refined to x y`` (last two
    tokens) and ``Final cell (after refinement) is`` (last six tokens).
    """
    name, num = space_group_short(space_group)
    shift = math.hypot(beam_refined[0] - beam_start[0], beam_refined[1] - beam_start[1])
    phi = f" and in phi {finite(sigma_phi):.2f} degrees"
    out = [
        f"Refining solution #{number:2d} with {name} (number {num:4d}) symmetry imposed",
        "",
        "Initial cell (before refinement) is " + _cell4(initial_cell),
        f"Using {n_indexed:4d} indexed reflections (out of {n_used:4d} spots used in "
        "indexing, {delta(XY) <= " + f"{sdcutoff:.1f} sigma}}),",
        f"final sd in spot positions is {finite(sigma_xy):.2f}mm{phi}",
        "Refined cell parameters " + " ".join(f"{v:7.2f}" for v in final_cell),
        f"Beam coordinates of {beam_start[0]:.2f} {beam_start[1]:.2f} have been refined to "
        f"{beam_refined[0]:.2f} {beam_refined[1]:.2f}",
    ]
    if min_separation > 0:
        out.append(
            f"This is a shift of {shift:5.2f}mm or {shift / min_separation:6.3f} times "
            f"the minimum spot separation of ca {min_separation:5.2f}mm."
        )
    out.append("  Final cell (after refinement) is  " + _cell4(final_cell))
    return out


def _cell4(cell: Sequence[float]) -> str:
    return (
        f"{cell[0]:10.4f}{cell[1]:10.4f}{cell[2]:10.4f}{cell[3]:8.3f}{cell[4]:8.3f}{cell[5]:8.3f}"
    )


def mosaicity_estimated(value: float) -> list[str]:
    """MOSFLM's mosaic-estimate result (xia2: ``float(line.split('>')[1].split()[0])``)."""
    return [
        f" The mosaicity has been estimated as ---> {value:.2f} <--- for this image only; ",
        "This value can be used cautiously as an initial estimate.",
    ]


def raster_set(size_x: int, size_y: int, raster: Sequence[int]) -> list[str]:
    """The RASTER line (xia2 takes the last five integers)."""
    r = "".join(f"{int(v):4d}" for v in raster)
    return [
        f" Based on a median spot size of {size_x:2d} by {size_y:2d} pixels in X and Y, "
        "the measurement box ",
        f" parameters have been set to{r}",
    ]


def separation_set(size_x: int, size_y: int, sep: Sequence[float]) -> list[str]:
    """The SEPARATION lines after the spot size has been measured."""
    return [
        f" Based on a median spot size of {size_x:2d} by {size_y:2d} pixels in X and Y, "
        "the spot separation ",
        f" parameters (in X and Y) have been set to {sep[0]:5.2f} {sep[1]:5.2f}mm.",
    ]


def spot_search_summary(
    n_found: int,
    rejected: dict[str, int],
    n_ok: int,
    separation: Sequence[float] | None,
    d_spacings: np.ndarray,
) -> list[str]:
    """The end of MOSFLM's spot-search report for one image (6.2.6/7.0 wording).

    xia2 reads ``(currently SEPARATION  x  y)`` (last two numbers) and ``99% have resolution
    less than d Angstrom`` (second last token).
    """

    def n(*keys):
        return sum(int(rejected.get(k, 0)) for k in keys)

    # as MOSFLM: the spots found are those stored plus those rejected for the reasons listed
    # (``n_found`` is kept for the signature: regions below MINPIX are not counted as spots)
    listed = n("too_small_x", "too_small_y", "too_large_x", "too_large_y", "too_close")
    out = [
        f"  Total number of spots found: {n_ok + listed}",
        f"  Number rejected as too small on X: {n('too_small_x'):3d}",
        f"  Number rejected as too small on Y: {n('too_small_y'):3d}",
        f"  Number rejected as too big on X: {n('too_large_x'):3d}",
        f"  Number rejected as too big on Y: {n('too_large_y'):3d}",
        f"  Number too close (SEPARATION keyword): {n('too_close'):3d}",
    ]
    if separation is not None:
        out.append(f"  (currently SEPARATION {separation[0]:6.2f}{separation[1]:6.2f})")
    out.append(f"  Number stored as OK: {n_ok}")
    d = np.asarray(d_spacings, float)
    d = d[np.isfinite(d) & (d > 0)]
    if len(d):
        out.append(f"  highest resolution is {d.min():8.2f} Angstrom")
        # 99 % of the spots have a d-spacing above this value
        out.append(f"  99% have resolution less than {np.percentile(d, 1.0):8.2f} Angstrom")
    return out


def image_header_values(distance: float, wavelength: float, pixel: float) -> list[str]:
    """Values taken from the image header (xia2: ``line.split()[5]`` is the distance + mm)."""
    return [
        f" Crystal to detector distance of {distance:7.2f}mm taken from image header",
        "",
        f" Wavelength of {wavelength:7.5f}A taken from image header",
        "",
        f" Pixel size of {pixel:6.4f}mm taken from image header.",
        "",
    ]


# -------------------------------------------------------------------------------------------
# per image (cell refinement and integration, MOSFLM 6.2.6)
# -------------------------------------------------------------------------------------------

STARS48 = " " + "*" * 48


def image_banner(verb: str, number: int, phi_start: float, phi_end: float) -> list[str]:
    """``Processing Image    1  Phi  290.00 to  291.00`` between rows of stars.

    xia2 takes ``int(line.split()[2])`` as the image number of ``Processing Image`` and
    ``Integrating Image`` lines.
    """
    return [
        "",
        STARS48,
        f" {verb} Image {number:4d}  Phi {phi_start:7.2f} to {phi_end:7.2f}",
        STARS48,
    ]


def positional_refinement(
    rms: float,
    wrms: float,
    beam_x: float,
    beam_y: float,
    distance: float,
    yscale: float,
    tilt: float,
    twist: float,
    ccx: float = 0.0,
    ccy: float = 0.0,
    ccom: float = 0.0,
) -> list[str]:
    """Result of positional refinement on one image.

    ``Final rms residual:   0.023mm; Weighted residual    0.6`` (xia2: token 3 after removing
    ``mm``, weighted residual last), then the ``XCEN YCEN XTOFRA XTOFD YSCALE TILT TWIST``
    header and one line of values (xia2 takes values 0, 1 as the beam, 3 as the distance and
    5, 6 as tilt and twist in hundredths of a degree).  XTOFRA is printed as 1.0000: the
    distance is refined directly (XTOFD).
    """
    return [
        f" Final rms residual: {finite(rms):7.3f}mm; Weighted residual {finite(wrms):6.1f}",
        "   XCEN    YCEN  XTOFRA   XTOFD  YSCALE  TILT TWIST",
        f"{beam_x:7.2f} {beam_y:7.2f} {1.0:7.4f} {distance:7.2f} {yscale:7.4f}"
        f"{int(round(finite(tilt))):6d}{int(round(finite(twist))):6d}",
        " Refined Fiducial constants (mm and degrees)",
        f"  CCX: {finite(ccx):8.2f}   CCY: {finite(ccy):8.2f}  CCOM: {finite(ccom):9.4f}",
    ]


def raster_optimised(raster: Sequence[int]) -> list[str]:
    """``Final optimised raster parameters:   17   19   13    6    6`` (xia2 splits on ``:``)."""
    return [" Final optimised raster parameters:" + "".join(f"{int(v):5d}" for v in raster)]


def separation_updated(sep: Sequence[float]) -> list[str]:
    """``Separation parameters updated to   0.51mm in X and  0.71mm in Y`` (tokens 4 and 8)."""
    return [f" Separation parameters updated to {sep[0]:6.2f}mm in X and {sep[1]:5.2f}mm in Y"]


def centre_of_gravity(shift_mm: Sequence[float], residual: float) -> list[str]:
    """``C. of G. SHIFTS = -0.006 -0.037mm  Background residual=  0.5 (peak scaled to 255)``.

    The centre-of-gravity shift (mm, X and Y) of the central standard profile and its background
    rms with the peak scaled to 255 (xia2 reads token 8 after removing ``residual=``).
    """
    return [f" C. of G. SHIFTS ={shift_mm[0]:7.3f}{shift_mm[1]:7.3f}mm  Background residual="
            f"{residual:5.1f} (peak scaled to 255)"]


def postref_result(
    missets: Sequence[float],
    cell: Sequence[float],
    mosaic: float,
    rms_deg: float | None = None,
    n_refl: int | None = None,
) -> list[str]:
    """The end of MOSFLM's post-refinement block for one image (6.2.6 wording).

    xia2 reads the line after ``Real cell parameters`` as the cell and the last token of
    ``Smoothed value for refined mosaic spread`` as the mosaic spread.
    """
    out = [""]
    if rms_deg is not None and math.isfinite(rms_deg):
        out.append(f"  Total number of reflections = {int(n_refl or 0):4d}")
        out.append(f" Rms Resid = {rms_deg:8.3f} degrees")
    out += [
        "",
        "            Refined Orientation Angles",
        "          PHIX       PHIY       PHIZ",
        "        " + "".join(f"{finite(v):10.3f}" for v in missets),
        "",
        "          Real cell parameters",
        "       " + "".join(f"{v:10.3f}" for v in cell),
        "",
        " Smoothed value for refined mosaic spread (including safety factor): "
        f"{finite(mosaic):6.2f}",
        "",
    ]
    return out


def integrated_image(
    n_measured: int,
    n_full: int,
    n_overload: int,
    n_edge: int,
    n_bad: int,
    n_written: int,
    batch: int,
) -> list[str]:
    """The counts MOSFLM prints after integrating an image.

    xia2: ``int(line.split()[0])`` of ``Spots measured on this image``, token 4 of
    ``are OVERLOADS`` (commas removed), the last token of ``Number of bad spots =``.
    """
    return [
        f"{n_measured:6d} Spots measured on this image",  # I6, as the real log
        f" {n_full:5d} are fully recorded, {n_overload:4d} are OVERLOADS {n_edge:4d} "
        "Outside active area",
        "",
        f"  Number of bad spots = {n_bad:3d}",
        f" {n_written:6d} Reflections written to MTZ file with batch number {batch:7d}",
    ]


def _stat_row(label: str, values: Sequence[float], fmt: str) -> str:
    return label + "".join(format(v, fmt) for v in values)


def resolution_analysis(
    dstar2: np.ndarray,
    ipr: np.ndarray,
    sigpr: np.ndarray,
    isum: np.ndarray,
    sigsum: np.ndarray,
    full: np.ndarray,
    nbin: int = 8,
) -> list[str]:
    """``Analysis as a function of resolution.`` for one image, as MOSFLM 6.2.6 lays it out.

    Eight shells equal in 1/d^2 up to the highest resolution, the upper d of each shell on the
    ``Res (Ang)`` line, then Number, <I>, <sigma>, <I/sigma> of the profile-fitted fulls and
    partials (and the same for summation integration).  xia2 reads the lines at fixed offsets
    (resolutions on the next line, fulls' Number 3 lines below, their <I/sigma> 6 below,
    partials' Number 8 and <I/sigma> 11 below) and needs ``Maximum Intensity`` 3 lines above.
    """
    ok = np.isfinite(dstar2) & (dstar2 > 0)
    if not ok.any():
        return []
    top = float(dstar2[ok].max())
    edges = top * np.arange(1, nbin + 1) / nbin
    shell = np.clip(np.searchsorted(edges, dstar2, "left"), 0, nbin - 1)
    res = 1.0 / np.sqrt(edges)
    good = np.isfinite(ipr)
    imax = float(np.nanmax(ipr)) if good.any() else 0.0
    imin = float(np.nanmin(ipr)) if good.any() else 0.0
    out = [
        f"  Maximum Intensity={imax:7.0f}",
        f"  Minimum Intensity={imin:7.0f}",
        "",
        " Analysis as a function of resolution.",
        " Res (Ang)" + "".join(f"{r:7.2f}" for r in res) + " Overall",
    ]

    def block(title: str, sel: np.ndarray, inten: np.ndarray, sig: np.ndarray) -> list[str]:
        num, mi, ms, mr = [], [], [], []
        for k in [*range(nbin), -1]:
            m = sel & ok & np.isfinite(inten) & np.isfinite(sig) & (sig > 0)
            if k >= 0:
                m = m & (shell == k)
            num.append(int(m.sum()))
            mi.append(float(inten[m].mean()) if m.any() else 0.0)
            ms.append(float(sig[m].mean()) if m.any() else 0.0)
            mr.append(float((inten[m] / sig[m]).mean()) if m.any() else 0.0)
        return [
            title,
            _stat_row(" Number   ", num, "7d"),
            _stat_row("  <I>     ", mi, "7.0f"),
            _stat_row("  <sigma> ", ms, "7.0f"),
            _stat_row("  <I/sigma>", mr, "6.1f"),
        ]

    full = np.asarray(full, bool)
    out += block(" Profile fitted fully recorded:", full, ipr, sigpr)
    out += block(" Profile fitted partials:", ~full, ipr, sigpr)
    out.append("")
    out.append(" Summation integration fully recorded:")
    out.append(" Res (Ang)" + "".join(f"{r:7.2f}" for r in res) + " Overall")
    out += block(" Number of reflections", full, isum, sigsum)[1:]
    out += block(" Summation integration partials", ~full, isum, sigsum)
    return out


# -------------------------------------------------------------------------------------------
# cell refinement (MOSFLM 6.2.6)
# -------------------------------------------------------------------------------------------


POSTREF_MULTI = [
    "",
    " *** Post-refinement will use partials extending over several images ***",
    " This is equivalent to including a POSTREF MULTI keyword.",
    " (To prevent this, include keywords POSTREF NOMULTI.)",
    "",
]
"""Printed at the start of each cell-refinement cycle; xia2 counts cycles by it."""

REPEATING_RUN = [
    "",
    " Repeating the entire run, using the refined cell parameters as given above",
    "",
]


def _per_cycle_table(
    title: str,
    images: Sequence[int],
    cycles: Sequence[int],
    values: dict[tuple[int, int], float],
    fmt: str,
) -> list[str]:
    """``<title> as a function of cycle for each image`` with the Image and Cycle lines.

    The values start at column 11 in fields of width 6 (xia2 slices ``line[11:17]``, ...).
    """
    out = [
        "",
        f" {title}",
        "      Image" + "".join(f"{n:4d}" if k == 0 else f"{n:6d}" for k, n in enumerate(images)),
    ]
    for c in cycles:
        out.append(
            f" Cycle{c:2d}   " + "".join(format(finite(values.get((c, n))), fmt) for n in images)
        )
    out.append("")
    return out


def cell_refinement_complete(
    initial_cell: Sequence[float],
    final_cell: Sequence[float],
    esds: Sequence[float],
    detector_rows: Sequence[dict],
    mosaic: float,
    missets_first: Sequence[float],
    missets_last: Sequence[float],
    first: int,
    last: int,
) -> list[str]:
    """The end of a MOSFLM cell refinement run (``mosflm-cellrefinement.log``).

    ``Cell refinement is complete`` is followed, two lines down, by ``Refined cell`` (xia2:
    tokens 2 on) and the ``Error`` line (tokens 1 on); then the per-cycle tables of rms
    positional error, YSCALE and distance, and ``Refined mosaic spread (excluding safety
    factor):   0.49`` with the number last.
    """
    images = sorted({int(r["IMAGE"]) for r in detector_rows})
    cycles = sorted({int(r["cycle"]) for r in detector_rows})

    def table(key):
        return {(int(r["cycle"]), int(r["IMAGE"])): float(r[key]) for r in detector_rows}

    out = [
        "",
        "",
        " Cell refinement is complete",
        " Starting cell" + "".join(f"{v:9.3f}" for v in initial_cell),
        " Refined cell " + "".join(f"{v:9.3f}" for v in final_cell),
        " Error        " + "".join(f"{finite(v):9.3f}" for v in esds),
    ]
    if images and cycles:
        out += _per_cycle_table(
            "Rms positional error (mm) as a function of cycle for each image.",
            images,
            cycles,
            table("RESID"),
            "6.3f",
        )
        out += _per_cycle_table(
            "YSCALE as a function of cycle for each image:", images, cycles, table("YSCALE"), "6.3f"
        )
        out += _per_cycle_table(
            "Detector distance as a function of cycle for each image:",
            images,
            cycles,
            table("DIST"),
            "6.1f",
        )
    out += [
        f" Refined mosaic spread (excluding safety factor): {finite(mosaic):6.2f}",
        "",
        "",
        f" Missets for first image ({first:4d})"
        + "".join(f"{finite(v):6.2f}" for v in missets_first),
        f" Missets for last image  ({last:4d})"
        + "".join(f"{finite(v):6.2f}" for v in missets_last),
        "",
    ]
    return out


# -------------------------------------------------------------------------------------------
# end of run, MTZ and errors
# -------------------------------------------------------------------------------------------

END_OF_PROCESSING = ["", "", " *********** END OF PROCESSING *****************", ""]

FAILURE = [" An unrecoverable error has occurred in MOSFLM", " Processing will be aborted"]
"""Printed before the ``***`` message of a failed action (GO): drivers recognise these."""


def mtz_written(path: str, mtz=None) -> list[str]:
    """The header dump MOSFLM prints after closing HKLOUT (read back from the file).

    xia2 takes the file name as the last token of the line after `` WRITTEN OUTPUT MTZ FILE``
    and the reflection count as the last token of ``Number of Reflections``.  The logical name
    is the file name as given, as in the 6.2.6 log.
    """

    import gemmi

    if mtz is None:
        mtz = gemmi.read_mtz_file(str(path))
    name = str(path)  # as given (HKLOUT), so a driver finds it relative to its own folder
    ds = [d for d in mtz.datasets if d.id > 0]
    out = [
        "",
        " WRITTEN OUTPUT MTZ FILE ",
        f" Logical Name: {name}   Filename: {name} ",
        "",
        " * Title:",
        "",
        f" {mtz.title}",
        "",
        " * Base dataset:",
        "",
        "        0 HKL_base",
        "          HKL_base",
        "          HKL_base",
        "",
        f" * Number of Datasets = {len(ds)}",
        "",
        " * Dataset ID, project/crystal/dataset names, cell dimensions, wavelength:",
        "",
    ]
    for d in ds:
        c = d.cell
        out += [
            f" {d.id:8d} {d.project_name}",
            f"          {d.crystal_name}",
            f"          {d.dataset_name}",
            "          " + "".join(f"{v:10.4f}" for v in (c.a, c.b, c.c, c.alpha, c.beta, c.gamma)),
            f"          {d.wavelength:10.5f}",
            "",
        ]
    labels = " ".join(col.label for col in mtz.columns)
    types = " ".join(col.type for col in mtz.columns)
    c = mtz.cell
    lo, hi = mtz.resolution_low(), mtz.resolution_high()
    out += [
        f" * Number of Columns = {len(mtz.columns)}",
        "",
        f" * Number of Reflections = {mtz.nreflections}",
        "",
        " * Missing value set to NaN in input mtz file",
        "",
        f" * Number of Batches = {len(mtz.batches)}",
        "",
        " * Column Labels :",
        "",
        f" {labels}",
        "",
        " * Column Types :",
        "",
        f" {types}",
        "",
        " * Associated datasets :",
        "",
        " " + " ".join(str(col.dataset_id) for col in mtz.columns),
        "",
        " * Cell Dimensions : (obsolete - refer to dataset cell dimensions above)",
        "",
        " " + "".join(f"{v:10.4f}" for v in (c.a, c.b, c.c, c.alpha, c.beta, c.gamma)) + " ",
        "",
        " *  Resolution Range :",
        "",
        f"    {1 / lo**2:10.5f} {1 / hi**2:10.5f}     (   {lo:8.3f} - {hi:10.3f} A )",
        "",
        " * Sort Order :",
        "",
        "      0     0     0     0     0",
        "",
        f" * Space group = '{mtz.spacegroup.short_name() if mtz.spacegroup else ''}'"
        f" (number {mtz.spacegroup.number if mtz.spacegroup else 0:5d})",
        "",
    ]
    return out


__all__ = [
    "END_OF_PROCESSING",
    "FAILURE",
    "POSTREF_MULTI",
    "REPEATING_RUN",
    "STARS48",
    "cell_refinement_complete",
    "image_banner",
    "integrated_image",
    "mtz_written",
    "positional_refinement",
    "raster_optimised",
    "separation_updated",
    "postref_result",
    "resolution_analysis",
    "LATTICE_NAMES",
    "SOLUTIONS_HEADER",
    "finite",
    "image_header_values",
    "mosaicity_estimated",
    "raster_set",
    "refined_solution",
    "rhombohedral_cell",
    "separation_set",
    "solution_row_lines",
    "solutions_table",
    "space_group_short",
    "spot_search_summary",
    "suggested_solution",
]
