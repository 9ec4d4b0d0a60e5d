"""Image keywords: TEMPLATE, DIRECTORY, EXTENSION, IMAGE, HEADER, and the merged geometry.

The series is resolved lazily from TEMPLATE (``#`` = image-number digits), DIRECTORY (several,
searched in order) and EXTENSION when first needed (IMAGE, HEADER, or an action at GO), and its
summary is printed then. A single image *filename* given to TEMPLATE or IMAGE (iMosflm style)
finds the template and the whole series at once. Each new template becomes a new sector
(``session.results.sectors``); the current sector is the last one.

:meth:`Session.geometry <mosflm_py.session.Session.geometry>` prints what
:func:`mosflm_py.image_geometry.experiment_from` (header + keywords, keywords win) finds: a
WARNING once when a keyword disagrees with the header, as MOSFLM does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mosflm_py.errors import ImageError
from mosflm_py.geometry.matrix_file import read_matrix_file
from mosflm_py.image_geometry import EffectiveGeometry
from mosflm_py.imageio.series import ImageSeries
from mosflm_py.lexer import parse_int
from mosflm_py.output.mosflm_log import image_header_values
from mosflm_py.state import apply_setting

if TYPE_CHECKING:
    from mosflm_py.registry import Record
    from mosflm_py.session import Session

# -------------------------------------------------------------------------------------------
# Series resolution
# -------------------------------------------------------------------------------------------


def _series_class():
    """The image-series class (a seam for tests that fake the images)."""
    return ImageSeries


def _key(session: Session) -> tuple[Any, ...]:
    im = session.state.images
    return (im.template, im.directories, im.extension)


def current_series(session: Session):
    """The current image series, resolved (and its summary printed) on first use.

    Raises
    ------
    ImageError
        No TEMPLATE given, or the template matches no image.
    """
    key = _key(session)
    known = session.results.series_key
    if known == key and session.results.sectors:
        return session.results.sectors[-1]
    im = session.state.images
    if not im.template:
        raise ImageError("No images have been given: use TEMPLATE (and DIRECTORY), or IMAGE "
                         "with a file name, first.")
    series = _series_class().from_template(im.template, list(im.directories) or ["."],
                                           im.extension)
    # same template (e.g. only the DIRECTORY changed): replace the sector, else a new sector
    _add_sector(session, series, key, replace=known is not None and known[0] == key[0])
    return series


def _add_sector(session: Session, series: Any, key: tuple[Any, ...], replace: bool) -> None:
    if replace and session.results.sectors:
        session.results.sectors[-1] = series
    else:
        session.results.sectors.append(series)
    session.results.series_key = key
    describe_series(session, series)


def describe_series(session: Session, series: Any) -> None:
    """Print what was read: number of images, range, and the first image's header summary."""
    nums = list(series.numbers)
    rep = session.report
    rep.line()
    rep.line(f" Sector {len(session.results.sectors)}: template {series.template}"
             f"  directory {series.directory}")
    if nums:
        contiguous = nums == list(range(nums[0], nums[-1] + 1))
        rng = f"{nums[0]} to {nums[-1]}" + ("" if contiguous else " (not contiguous)")
        rep.line(f" Number of images {len(nums)}, image numbers {rng}")
        header = series.header(nums[0])
        rep.lines(header.describe())
        _header_values(session, header)
        for w in [*(getattr(series, "warnings", ()) or ()),
                  *(getattr(header, "warnings", ()) or ())]:
            session.report.warning(w)
        session.warn_header(header)
    rep.line()


def on_template(session: Session, record: Record) -> None:
    """TEMPLATE effect: a real file name (iMosflm style) finds the whole series immediately."""
    template = session.state.images.template or ""
    if "#" not in template and os.path.isfile(template):
        _from_filename(session, template)
        return
    head, tail = os.path.split(template)
    if head and "#" in tail:
        session.set("images.template", tail)
        session.set("images.directories", (head,))


def _from_filename(session: Session, path: str, image: int | None = None) -> Any:
    series = _series_class().from_filename(path)
    sectors = session.results.sectors
    same = bool(sectors) and (sectors[-1].template, os.path.abspath(str(sectors[-1].directory))) \
        == (series.template, os.path.abspath(str(series.directory)))
    session.set("images.template", series.template)
    session.set("images.directories", (str(series.directory),))
    if same:
        series = sectors[-1]
        session.results.series_key = _key(session)
    else:
        _add_sector(session, series, _key(session), replace=False)
    if image is None:
        image = _number_of(series, path)
    if image is not None:
        session.set("images.image", image)
    return series


def _number_of(series: Any, path: str) -> int | None:
    target = os.path.abspath(path)
    for n in series.numbers:
        try:
            if os.path.abspath(str(series.path(n))) == target:
                return n
        except ImageError:
            continue
    return None


def apply_image(state, record: Record):
    """IMAGE state update: the current image number and an optional PHI start TO end."""
    value = str(record.get("image"))
    try:
        n = parse_int(value)
    except ValueError:
        return state  # a file name: handled by on_image
    state = apply_setting(state, "images.image", n)
    phi = record.sub("PHI")
    if phi is not None:
        start, end = phi.get("start"), phi.get("end", phi.get("start"))
        overrides = tuple(o for o in state.images.phi_overrides if o[0] != n)
        state = apply_setting(state, "images.phi_overrides", (*overrides, (n, start, end)))
    return state


def on_image(session: Session, record: Record) -> None:
    """IMAGE effect: read and print the image's header (a file name starts a new sector)."""
    value = str(record.get("image"))
    try:
        n = parse_int(value)
    except ValueError:
        if not os.path.isfile(value):
            raise ImageError(f"IMAGE {value}: no such image file (give an image number or the "
                             "name of an existing image file)") from None
        series = _from_filename(session, value)
        n = session.state.images.image
        if n is None:
            return
    else:
        series = current_series(session)
    if n not in series.numbers:
        nums = list(series.numbers)
        rng = f"{nums[0]} to {nums[-1]}" if nums else "none"
        raise ImageError(f"Image {n} is not in the series {series.template} (images {rng}).")
    header = series.header(n)
    session.report.line(f" Image {n}: {series.path(n)}")
    g = session.geometry(n, header=header)
    session.report.line(f"   Phi {g.phi_start:.3f} to {g.phi_end:.3f} deg")


def _header_values(session: Session, header: Any) -> None:
    """MOSFLM's "... taken from image header" lines (drivers read the distance from them)."""
    vals = (getattr(header, "distance", None), getattr(header, "wavelength", None),
            getattr(header, "pixel_slow", None))
    if all(v is not None and v > 0 for v in vals):
        session.report.line()
        session.report.lines(image_header_values(*(float(v) for v in vals)))


def header(session: Session, record: Record) -> None:
    """HEADER [BRIEF]: print the current image's header geometry again."""
    series = current_series(session)
    n = session.state.images.image
    if n is None:
        n = list(series.numbers)[0]
    hdr = series.header(n)
    lines = hdr.describe()
    if record.has("BRIEF"):
        lines = lines[:5]
    session.report.line(f" Header of image {n}:")
    session.report.lines(lines)
    if not record.has("BRIEF"):
        g = session.geometry(n, header=hdr)
        session.report.line(" Values that will be used (keywords override the header):")
        session.report.lines(_describe_geometry(g))


def _describe_geometry(g: EffectiveGeometry) -> list[str]:
    det, beam = g.detector, g.beam
    return [
        f"   Wavelength {beam.wavelength:.5f} A  distance {det.distance:.2f} mm"
        f"  two-theta {det.two_theta:.2f} deg",
        f"   Beam X {det.beam_x:.2f} Y {det.beam_y:.2f} mm  pixel {det.pixel_slow:.5f}"
        f" x {det.pixel_fast:.5f} mm  size {det.nslow} x {det.nfast}",
        f"   Phi {g.phi_start:.3f} to {g.phi_end:.3f} deg  gain {g.gain:g}"
        f"  overload {g.overload:g}  nullpix {g.nullpix:g}  detector {g.detector_type}",
        f"   Polarisation {beam.polarisation:.3f}  divergence {beam.divergence[0]:.3f}"
        f" {beam.divergence[1]:.3f} deg  dispersion {beam.dispersion:.4f}",
    ]


def on_matrix(session: Session, record: Record) -> None:
    """MATRIX effect: read the matrix file now (clear error if missing), keep it in results."""
    path = session.state.files.matrix
    if not path:
        return
    mat = read_matrix_file(path)
    session.results.matrix = mat
    # the matrix read now is the current orientation, replacing one from an earlier AUTOINDEX
    session.results.crystal = None
    cell = " ".join(f"{c:.4f}" for c in mat.cell)
    session.report.line(f" Matrix file {path} read: cell {cell}")
