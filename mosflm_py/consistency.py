"""Consistency checks run before a job starts (``checks = [...]`` in ``keywords/*.toml``).

Each check is ``check(session, job) -> None`` and raises a :class:`~mosflm_py.errors.MosflmError`
with a complete message when the job cannot give a meaningful result, before any work is done
and before any output file is touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mosflm_py.actions.common import current_crystal, space_group_name
from mosflm_py.errors import GeometryError, ImageError, MosflmError

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session

LENGTH_TOL = 0.02  # relative: cell edges that must be equal by symmetry
ANGLE_TOL = 2.0  # deg: angles fixed by symmetry (90 or 120)

_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal",
            "cubic")


def _eq(x: float, y: float) -> bool:
    return abs(x - y) <= LENGTH_TOL * max(x, y)


def _ang(x: float, y: float) -> bool:
    return abs(x - y) <= ANGLE_TOL


def cell_fits_system(cell: tuple[float, ...], system: str, rhombohedral: bool = False) -> bool:
    """True when *cell* (a b c alpha beta gamma; A, deg) has the metric of a crystal *system*.

    The tolerances (2 % on edges, 2 degrees on angles) accept a cell refined without
    constraints; they only reject a lattice of visibly lower symmetry. A monoclinic cell may have
    any unique axis; trigonal/hexagonal cells are in the hexagonal setting unless *rhombohedral*.
    """
    a, b, c, al, be, ga = cell
    if system == "triclinic":
        return True
    if system == "monoclinic":
        return sum(_ang(x, 90.0) for x in (al, be, ga)) >= 2
    if system == "orthorhombic":
        return all(_ang(x, 90.0) for x in (al, be, ga))
    if system == "tetragonal":
        return cell_fits_system(cell, "orthorhombic") and _eq(a, b)
    if system in ("trigonal", "hexagonal"):
        if rhombohedral:
            return _eq(a, b) and _eq(b, c) and _ang(al, be) and _ang(be, ga)
        return _eq(a, b) and _ang(al, 90.0) and _ang(be, 90.0) and _ang(ga, 120.0)
    if system == "cubic":
        return cell_fits_system(cell, "orthorhombic") and _eq(a, b) and _eq(b, c)
    raise ValueError(f"unknown crystal system {system!r}")


def compatible_space_groups(cell: tuple[float, ...], limit: int = 24) -> list[str]:
    """Chiral (Sohncke) space groups whose lattice the cell fits, highest symmetry first."""
    import gemmi

    out = []
    for number in range(230, 0, -1):
        sg = gemmi.find_spacegroup_by_number(number)
        if sg is None or not sg.is_sohncke():
            continue
        if _fits(sg, cell):
            out.append(sg.hm)
        if len(out) >= limit:
            break
    return out


def _fits(sg, cell: tuple[float, ...]) -> bool:
    system = sg.crystal_system_str()
    if sg.hm.startswith("R"):  # either the hexagonal or the rhombohedral setting
        return (cell_fits_system(cell, system) or
                cell_fits_system(cell, system, rhombohedral=True))
    return cell_fits_system(cell, system)


def symmetry_cell_problem(symbol: str, cell: tuple[float, ...]) -> str | None:
    """Why space group *symbol* cannot describe a crystal with *cell* (None when it can)."""
    import gemmi

    sg = gemmi.find_spacegroup_by_name(str(symbol))
    if sg is None or _fits(sg, cell):
        return None  # SYMMETRY itself reports unknown names
    fits = [s for s in _SYSTEMS if cell_fits_system(cell, s)]
    if cell_fits_system(cell, "trigonal", rhombohedral=True):
        fits.append("trigonal (rhombohedral)")
    limit = 24
    found = compatible_space_groups(cell, limit)
    groups = ", ".join(g.replace(" ", "") for g in found) + (", ..." if len(found) == limit else "")
    text = " ".join(f"{x:.2f}" for x in cell)
    return (f"SYMMETRY {sg.hm} ({sg.crystal_system_str()}) is not compatible with the cell "
            f"{text} of the orientation matrix, whose lattice is at most {fits[-1]}. "
            f"Compatible space groups (highest symmetry first): {groups}. Give one of these "
            "with SYMMETRY, or index again.")


def check_symmetry(session: Session, job: Job) -> None:
    """Job check: the SYMMETRY in force fits the cell of the current crystal.

    Only when the user gave SYMMETRY; the space group in force is the crystal's (the user's
    SYMMETRY, unless a step found the space group after it was given).
    """
    if session.state.crystal.symmetry is None:
        return

    try:
        crystal = current_crystal(session)
    except GeometryError:
        return  # no usable crystal: the job itself says so
    if crystal is None:
        return
    problem = symmetry_cell_problem(space_group_name(crystal.space_group), tuple(crystal.cell))
    if problem:
        raise GeometryError(problem)


def check_pixels(session: Session, job: Job) -> None:
    """Job check: a header-only placeholder image (too small to hold data, e.g. CrystFEL's
    1 x 1 SMV image) is refused by every job that needs pixels, i.e. all but AUTOINDEX from a
    spot file (``AUTOINDEX ... FILE name``), with the message naming the file and its size."""
    if job.record.keyword == "AUTOINDEX" and session.state.index.file:
        return
    try:
        series = session.images()
    except MosflmError:
        return  # the job reports missing images itself
    try:
        header = series.header(series.first)
    except MosflmError:
        return  # an unreadable image: the job says so when it reads it
    if header.no_pixels:
        raise ImageError(header.no_pixels)


MAX_EDGE_RESOLUTION = 50.0  # A: a detector that records nothing finer sees no Bragg spots


def check_geometry(session: Session, job: Job) -> None:
    """Job check: beam, distance, detector size and wavelength record a diffraction pattern.

    The direct beam (with two-theta, the foot of the detector normal, MOSFLM's BEAM) must lie
    within one detector width of the detector, and the highest resolution reached anywhere on
    the detector (its corners and edges) must be better than 50 A; otherwise (a distance of
    metres, a beam far off a small detector) every spot would fall off the detector and the job
    could only produce nothing.
    """
    rec = job.record
    try:
        series = session.images()
        n = rec.get("first") if rec.keyword == "PROCESS" else None
        if n is None:
            n = session.state.images.image
        if n is None or n not in series.numbers:
            n = series.first
        g = session.geometry(n)
    except MosflmError:
        return  # the job reports missing images or header values itself
    if g.placeholder:
        return  # no detector area: a job that needs pixels refuses the image when it reads them
    det, wl = g.detector, g.beam.wavelength
    sx, sy = det.size_mm
    if not (-sx <= det.beam_x <= 2 * sx and -sy <= det.beam_y <= 2 * sy):
        raise GeometryError(
            f"The beam position ({det.beam_x:g}, {det.beam_y:g} mm) is far outside the detector "
            f"of image {n} (0 to {sx:.1f} mm by 0 to {sy:.1f} mm): the direct beam (with "
            "two-theta, the foot of the detector normal) must lie within one detector width of "
            "it. Check BEAM (mm, X along the slow direction) and the image header.")
    d = det.max_resolution(wl)
    if d > MAX_EDGE_RESOLUTION:
        raise GeometryError(
            f"With the geometry of image {n} (wavelength {wl:g} A, distance "
            f"{det.distance:g} mm, beam {det.beam_x:g} {det.beam_y:g} mm, {det.nslow} x "
            f"{det.nfast} pixels of {det.pixel_slow:g} mm, two-theta {det.two_theta:g} deg) the "
            f"detector records nothing finer than {d:.0f} A: no Bragg spots would be measured. "
            "Check DISTANCE, BEAM, PIXEL, WAVELENGTH and TWOTHETA.")
