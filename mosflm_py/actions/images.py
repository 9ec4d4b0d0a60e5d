"""Image keywords: TEMPLATE, DIRECTORY, EXTENSION, IMAGE, HEADER, and the merged geometry.

The series is resolved lazily from TEMPLATE (``#`` = image-number digits), DIRECTORY (several,
searched in order) and EXTENSION when first needed (IMAGE, HEADER, or an action at GO), and its
summary is printed then. A single image *filename* given to TEMPLATE or IMAGE (iMosflm style)
finds the template and the whole series at once. Each new template becomes a new sector
(``session.results.sectors``); the current sector is the last one.

:func:`effective_geometry` merges an image header with the keywords (keywords win; a WARNING is
printed once when a keyword disagrees with the header, as MOSFLM does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mosflm_py.errors import GeometryError, ImageError
from mosflm_py.imageio.sanity import unresolved
from mosflm_py.lexer import parse_int

if TYPE_CHECKING:
    from mosflm_py.registry import Record
    from mosflm_py.session import Session

CU_KALPHA = 1.5418
MO_KALPHA = 0.7107
SYNCHROTRON_POLARISATION = 0.95
SYNCHROTRON_DIVERGENCE = (0.100, 0.020)
SYNCHROTRON_DISPERSION = 0.0015
LAB_DIVERGENCE = (0.100, 0.100)  # assumption: no laboratory default is documented
LAB_DISPERSION = 0.0025  # assumption: Kalpha1/Kalpha2 spread


@dataclass(frozen=True, slots=True)
class EffectiveGeometry:
    """Geometry of one image: header values with keyword overrides applied (keywords win).

    Lengths in mm, angles in degrees, wavelength in Angstrom. ``beam_x``/``beam_y`` are MOSFLM
    detector coordinates (X along slow, Y along fast). ``polarisation`` is MOSFLM's degree of
    polarisation (0 = unpolarised), ``divergence`` (horizontal, vertical) in degrees,
    ``dispersion`` = delta-lambda / lambda.
    """

    wavelength: float
    distance: float
    beam_x: float
    beam_y: float
    pixel_slow: float
    pixel_fast: float
    nslow: int
    nfast: int
    two_theta: float
    phi_start: float
    phi_end: float
    gain: float
    overload: float
    nullpix: float
    adcoffset: float
    detector_type: str
    detector_omega: float
    reverse_phi: bool
    polarisation: float
    divergence: tuple[float, float]
    dispersion: float

    @property
    def osc_width(self) -> float:
        """Oscillation width (deg); 0 for a still."""
        return self.phi_end - self.phi_start


# -------------------------------------------------------------------------------------------
# Series resolution
# -------------------------------------------------------------------------------------------


def _series_class():
    try:
        from mosflm_py.imageio.series import ImageSeries
    except ImportError as err:  # pragma: no cover - depends on the imageio engineer
        raise ImageError(f"image reading is not available yet in mosflm-py ({err})") from None
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
    cache = session.results.extra.setdefault("images", {})
    if cache.get("key") == key and session.results.sectors:
        return session.results.sectors[-1]
    im = session.state.images
    if not im.template:
        raise ImageError("No images have been given: use TEMPLATE (and DIRECTORY), or IMAGE "
                         "with a file name, first.")
    series = _series_class().from_template(im.template, list(im.directories) or ["."],
                                           im.extension)
    # same template (e.g. only the DIRECTORY changed): replace the sector, else a new sector
    _add_sector(session, series, key, replace=cache.get("key", (None,))[0] == key[0])
    return series


def _add_sector(session: Session, series: Any, key: tuple[Any, ...], replace: bool) -> None:
    cache = session.results.extra.setdefault("images", {})
    if replace and session.results.sectors:
        session.results.sectors[-1] = series
    else:
        session.results.sectors.append(series)
    cache["key"] = key
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
        check_header_against_keywords(session, header)
    rep.line()


def on_template(session: Session, record: Record) -> None:
    """TEMPLATE effect: a real file name (iMosflm style) finds the whole series immediately."""
    template = session.state.images.template or ""
    if "#" not in template and os.path.isfile(template):
        _from_filename(session, template)
        return
    head, tail = os.path.split(template)
    if head and "#" in tail:
        session.set("images.template", tail, user=True)
        session.set("images.directories", (head,), user=True)


def _from_filename(session: Session, path: str, image: int | None = None) -> Any:
    series = _series_class().from_filename(path)
    sectors = session.results.sectors
    same = bool(sectors) and (sectors[-1].template, os.path.abspath(str(sectors[-1].directory))) \
        == (series.template, os.path.abspath(str(series.directory)))
    session.set("images.template", series.template, user=True)
    session.set("images.directories", (str(series.directory),), user=True)
    if same:
        series = sectors[-1]
        session.results.extra.setdefault("images", {})["key"] = _key(session)
    else:
        _add_sector(session, series, _key(session), replace=False)
    if image is None:
        image = _number_of(series, path)
    if image is not None:
        session.set("images.image", image, user=True)
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
    from mosflm_py.state import apply_setting

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
    g = effective_geometry(session, n, header=header)
    session.report.line(f"   Phi {g.phi_start:.3f} to {g.phi_end:.3f} deg")


def _header_values(session: Session, header: Any) -> None:
    """MOSFLM's "... taken from image header" lines (drivers read the distance from them)."""
    from mosflm_py.output.mosflm_log import image_header_values

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
        g = effective_geometry(session, n, header=hdr)
        session.report.line(" Values that will be used (keywords override the header):")
        session.report.lines(_describe_geometry(g))


def _describe_geometry(g: EffectiveGeometry) -> list[str]:
    return [
        f"   Wavelength {g.wavelength:.5f} A  distance {g.distance:.2f} mm"
        f"  two-theta {g.two_theta:.2f} deg",
        f"   Beam X {g.beam_x:.2f} Y {g.beam_y:.2f} mm  pixel {g.pixel_slow:.5f}"
        f" x {g.pixel_fast:.5f} mm  size {g.nslow} x {g.nfast}",
        f"   Phi {g.phi_start:.3f} to {g.phi_end:.3f} deg  gain {g.gain:g}"
        f"  overload {g.overload:g}  nullpix {g.nullpix:g}  detector {g.detector_type}",
        f"   Polarisation {g.polarisation:.3f}  divergence {g.divergence[0]:.3f}"
        f" {g.divergence[1]:.3f} deg  dispersion {g.dispersion:.4f}",
    ]


# -------------------------------------------------------------------------------------------
# Header versus keywords
# -------------------------------------------------------------------------------------------

# (state path, header attribute, MOSFLM's wording, unit, format, tolerance)
_CHECKS = (
    ("detector.distance", "distance", "crystal to detector distance", "mm", "7.2f", 0.005),
    ("beam.wavelength", "wavelength", "wavelength", "A", ".5f", 5e-5),
    ("detector.two_theta", "two_theta", "two-theta angle", "deg", ".2f", 0.005),
    ("detector.pixel", "pixel_slow", "pixel size", "mm", ".5f", 5e-6),
)


def check_header_against_keywords(session: Session, hdr: Any) -> None:
    """Print MOSFLM's WARNING for every user keyword value that disagrees with the header."""
    st = session.state
    for path, attr, words, unit, fmt, tol in _CHECKS:
        user = session.get(path)
        head = getattr(hdr, attr, None)
        if user is None or head is None or not st.is_user_set(path):
            continue
        if abs(user - head) > tol:
            short = words.split()[-1]
            # one line, then the advice line, as the real MOSFLM log (xia2 matches "Input
            # crystal to detector distance" and "does NOT agree with" on the same line)
            session.warn_once(("hdr", path, user, head),
                              f"Input {words} ({user:{fmt}}{unit}) does NOT agree with value in "
                              f"the image header ({head:{fmt}}{unit})",
                              f"The input {short} will be used.", verbatim=True)
    beam = st.detector.beam
    if (beam is not None and st.is_user_set("detector.beam") and hdr.beam_x is not None
            and hdr.beam_y is not None):
        if max(abs(beam[0] - hdr.beam_x), abs(beam[1] - hdr.beam_y)) > 0.005:
            session.warn_once(("hdr", "beam", beam, (hdr.beam_x, hdr.beam_y)),
                              f"Input beam position ({beam[0]:.2f}, {beam[1]:.2f} mm) does NOT "
                              f"agree with value in the image header ({hdr.beam_x:.2f}, "
                              f"{hdr.beam_y:.2f} mm). The input beam position will be used.")


def _pick(user: Any, header_value: Any, default: Any = None) -> Any:
    if user is not None:
        return user
    if header_value is not None:
        return header_value
    return default


def _is_lab(wavelength: float) -> bool:
    return abs(wavelength - CU_KALPHA) < 0.002 or abs(wavelength - MO_KALPHA) < 0.002


def effective_geometry(session: Session, image_number: int,
                       header: Any = None) -> EffectiveGeometry:
    """Header of image *image_number* merged with the keywords (keywords win).

    Parameters
    ----------
    session : Session
    image_number : int
        Image number in the current sector.
    header : ImageHeader, optional
        Already-read header (skips reading it again).

    Returns
    -------
    EffectiveGeometry

    Raises
    ------
    ImageError
        The image cannot be read.
    GeometryError
        A value needed is neither in the header nor given by a keyword.
    """
    if header is None:
        header = current_series(session).header(image_number)
    check_header_against_keywords(session, header)
    st = session.state
    overridden = any(o[0] == image_number for o in st.images.phi_overrides)
    if bad := unresolved(header, st.is_user_set, image_number, overridden):
        raise GeometryError(bad)
    det, beam = st.detector, st.beam

    def need(value: Any, what: str, keyword: str) -> Any:
        if value is None:
            raise GeometryError(f"The {what} is not in the image header of image {image_number}: "
                                f"give it with the {keyword} keyword.")
        return value

    wavelength = need(_pick(beam.wavelength, header.wavelength), "wavelength", "WAVELENGTH")
    distance = need(_pick(det.distance, header.distance), "crystal to detector distance",
                    "DISTANCE")
    pixel_slow = need(_pick(det.pixel, header.pixel_slow), "pixel size", "PIXEL")
    pixel_fast = _pick(det.pixel_fast or det.pixel, header.pixel_fast, pixel_slow)
    nslow, nfast = det.size if det.size is not None else (header.nslow, header.nfast)
    if det.beam is not None:
        beam_x, beam_y = det.beam
    elif header.beam_x is not None and header.beam_y is not None:
        beam_x, beam_y = header.beam_x, header.beam_y
    else:
        beam_x, beam_y = nslow * pixel_slow / 2.0, nfast * pixel_fast / 2.0
        session.warn_once(("nobeam",), "The beam position is not in the image header; the "
                          f"detector centre ({beam_x:.2f}, {beam_y:.2f} mm) will be used.",
                          "Give the BEAM keyword if this is wrong.")
    override = {o[0]: (o[1], o[2]) for o in st.images.phi_overrides}
    if image_number in override:
        phi_start, phi_end = override[image_number]
    else:
        phi_start = _pick(None, header.phi_start, 0.0)
        phi_end = _pick(None, header.phi_end, phi_start)
    lab = _is_lab(wavelength)
    if beam.polarisation is not None:
        polarisation = beam.polarisation
    elif beam.polarisation_mode in ("PINHOLE", "MONOCHROMATOR"):
        polarisation = 0.0
    else:
        polarisation = 0.0 if lab else SYNCHROTRON_POLARISATION
    divergence = beam.divergence or (LAB_DIVERGENCE if lab else SYNCHROTRON_DIVERGENCE)
    dispersion = _pick(beam.dispersion, None, LAB_DISPERSION if lab else SYNCHROTRON_DISPERSION)
    return EffectiveGeometry(
        wavelength=float(wavelength),
        distance=float(distance),
        beam_x=float(beam_x),
        beam_y=float(beam_y),
        pixel_slow=float(pixel_slow),
        pixel_fast=float(pixel_fast),
        nslow=int(nslow),
        nfast=int(nfast),
        two_theta=float(_pick(det.two_theta, header.two_theta, 0.0)),
        phi_start=float(phi_start),
        phi_end=float(phi_end),
        gain=float(_pick(det.gain, header.gain, 1.0)),
        overload=float(_pick(det.overload, header.overload, 65500.0)),
        nullpix=float(_pick(det.nullpix, header.nullpix, 0.0)),
        adcoffset=float(_pick(det.adcoffset, getattr(header, "adcoffset", None), 0.0)),
        detector_type=str(_pick(det.type, header.detector_type, "UNKNOWN")),
        detector_omega=float(_pick(det.omega, header.detector_omega, 0.0)),
        reverse_phi=bool(det.reverse_phi or header.reverse_phi),
        polarisation=float(polarisation),
        divergence=(float(divergence[0]), float(divergence[1])),
        dispersion=float(dispersion),
    )


def on_matrix(session: Session, record: Record) -> None:
    """MATRIX effect: read the matrix file now (clear error if missing), keep it in results."""
    path = session.state.files.matrix
    if not path:
        return
    try:
        from mosflm_py.geometry.matrix_file import read_matrix_file
    except ImportError:  # pragma: no cover - module written by the geometry engineer
        return
    mat = read_matrix_file(path)
    session.results.matrix = mat
    # the matrix read now is the current orientation, replacing one from an earlier AUTOINDEX
    session.results.extra.pop("crystal", None)
    cell = " ".join(f"{c:.4f}" for c in mat.cell)
    session.report.line(f" Matrix file {path} read: cell {cell}")
