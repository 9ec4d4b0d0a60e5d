"""Header + keywords → the geometry of one image (a pure function below the session).

:func:`experiment_from` applies the user's keyword values (``State`` settings) onto an image
header, as dxtbx's model factories apply overrides onto the header model: a keyword wins, the
header fills the rest, and MOSFLM's defaults fill what neither gives (detector centre for the
beam, synchrotron or laboratory polarisation, divergence and dispersion from the wavelength).
It prints nothing: the warnings MOSFLM prints (a keyword disagreeing with the header, no beam
position) are returned as :class:`GeometryNotice` for the session to print once each.

The result holds the models of :mod:`mosflm_py.geometry` (beam, the one detector model with
DISTORTION/CAMCON applied, goniometer), so every algorithm, spot finding included, works on
the same detector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.imageio.sanity import unresolved
from mosflm_py.state import get_setting

if TYPE_CHECKING:
    from mosflm_py.state import State

CU_KALPHA = 1.5418
MO_KALPHA = 0.7107
SYNCHROTRON_POLARISATION = 0.95
SYNCHROTRON_DIVERGENCE = (0.100, 0.020)
SYNCHROTRON_DISPERSION = 0.0015
LAB_DIVERGENCE = (0.100, 0.100)  # assumption: no laboratory default is documented
LAB_DISPERSION = 0.0025  # assumption: Kalpha1/Kalpha2 spread
PLACEHOLDER_PIXEL = 0.1
"""mm: the pixel size taken for a header-only placeholder image that gives none (CrystFEL's
1 x 1 SMV image).  Nothing is measured in its pixels: AUTOINDEX from a spot file works with the
spots' mm positions, so this value only names the (unused) pixel grid."""


@dataclass(frozen=True, slots=True)
class EffectiveGeometry:
    """Geometry of one image: header values with keyword overrides applied (keywords win).

    The physics is in the models of :mod:`mosflm_py.geometry`, the ones every algorithm uses:
    ``beam`` (wavelength Angstrom, polarisation, divergence, dispersion), ``detector`` (the one
    detector model: DISTANCE, BEAM, pixel sizes and image size, TWOTHETA, OMEGA, and the
    DISTORTION/CAMCON values) and ``goniometer`` (REVERSEPHI).  The rest is the image's own
    record: its rotation range ``phi_start`` .. ``phi_end`` (degrees), how its pixel values are
    read (``gain``, ``overload``, ``nullpix``, ``adcoffset``, ``detector_type``) and
    ``placeholder``: the image is a header-only placeholder too small to hold data (see
    :func:`mosflm_py.imageio.sanity.check_header`); its pixel size and detector extent are not
    used (only AUTOINDEX from a spot file works on it).
    """

    beam: Beam
    detector: Detector
    goniometer: Goniometer
    phi_start: float
    phi_end: float
    gain: float
    overload: float
    nullpix: float
    adcoffset: float
    detector_type: str
    placeholder: bool = False

    @property
    def osc_width(self) -> float:
        """Oscillation width (deg); 0 for a still."""
        return self.phi_end - self.phi_start


@dataclass(frozen=True, slots=True)
class GeometryNotice:
    """A WARNING to print once per *key* (MOSFLM's "***** WARNING *****" block)."""

    key: tuple[Any, ...]
    text: str
    advice: str = ""
    verbatim: bool = False  # printed as one unwrapped line (a line pipelines match)


# (state path, header attribute, MOSFLM's wording, unit, format, tolerance)
_CHECKS = (
    ("detector.distance", "distance", "crystal to detector distance", "mm", "7.2f", 0.005),
    ("beam.wavelength", "wavelength", "wavelength", "A", ".5f", 5e-5),
    ("detector.two_theta", "two_theta", "two-theta angle", "deg", ".2f", 0.005),
    ("detector.pixel", "pixel_slow", "pixel size", "mm", ".5f", 5e-6),
)


def header_warnings(settings: State, hdr: Any) -> list[GeometryNotice]:
    """MOSFLM's WARNING for every user keyword value that disagrees with the header."""
    notices = []
    for path, attr, words, unit, fmt, tol in _CHECKS:
        user = get_setting(settings, path)
        head = getattr(hdr, attr, None)
        if user is None or head is None or not settings.is_user_set(path):
            continue
        if abs(user - head) > tol:
            short = words.split()[-1]
            # one line, then the advice line, as the real MOSFLM log (xia2 matches "Input
            # crystal to detector distance" and "does NOT agree with" on the same line)
            notices.append(
                GeometryNotice(
                    ("hdr", path, user, head),
                    f"Input {words} ({user:{fmt}}{unit}) does NOT agree with value in "
                    f"the image header ({head:{fmt}}{unit})",
                    f"The input {short} will be used.",
                    verbatim=True,
                )
            )
    beam = settings.detector.beam
    if (
        beam is not None
        and settings.is_user_set("detector.beam")
        and hdr.beam_x is not None
        and hdr.beam_y is not None
    ):
        if max(abs(beam[0] - hdr.beam_x), abs(beam[1] - hdr.beam_y)) > 0.005:
            notices.append(
                GeometryNotice(
                    ("hdr", "beam", beam, (hdr.beam_x, hdr.beam_y)),
                    f"Input beam position ({beam[0]:.2f}, {beam[1]:.2f} mm) does NOT "
                    f"agree with value in the image header ({hdr.beam_x:.2f}, "
                    f"{hdr.beam_y:.2f} mm). The input beam position will be used.",
                )
            )
    return notices


def _pick(user: Any, header_value: Any, default: Any = None) -> Any:
    if user is not None:
        return user
    if header_value is not None:
        return header_value
    return default


def _is_lab(wavelength: float) -> bool:
    return abs(wavelength - CU_KALPHA) < 0.002 or abs(wavelength - MO_KALPHA) < 0.002


def experiment_from(
    settings: State, header: Any, image_number: int, user: State | None = None
) -> tuple[EffectiveGeometry, list[GeometryNotice]]:
    """Geometry of image *image_number*: *header* with the keyword *settings* applied.

    Parameters
    ----------
    settings : State
        The settings in effect (the user's keywords, and the values the program found such as
        the beam position refined by AUTOINDEX); they override the header.
    header : ImageHeader
        Header of the image (lengths mm, angles degrees, wavelength Angstrom).
    image_number : int
        Image number (for PHI overrides given with ``IMAGE n PHI a TO b`` and messages).
    user : State, optional
        The user's own settings, for the WARNINGs about a keyword disagreeing with the header
        (a value the program found is not the user's input); default *settings*.

    Returns
    -------
    geometry : EffectiveGeometry
        With the beam, detector (DISTORTION/CAMCON applied) and goniometer models.
    notices : list of GeometryNotice
        Warnings to print, in MOSFLM's order (keyword vs header, then defaults used).

    Raises
    ------
    GeometryError
        A header value is physically impossible, or a value needed is neither in the header
        nor given by a keyword.
    """
    notices = header_warnings(user if user is not None else settings, header)
    st = settings
    overridden = any(o[0] == image_number for o in st.images.phi_overrides)
    if bad := unresolved(header, st.is_user_set, image_number, overridden):
        raise GeometryError(bad)
    det, beam = st.detector, st.beam

    def need(value: Any, what: str, keyword: str) -> Any:
        if value is None:
            raise GeometryError(
                f"The {what} is not in the image header of image {image_number}: "
                f"give it with the {keyword} keyword."
            )
        return value

    wavelength = need(_pick(beam.wavelength, header.wavelength), "wavelength", "WAVELENGTH")
    distance = need(
        _pick(det.distance, header.distance), "crystal to detector distance", "DISTANCE"
    )
    placeholder = bool(getattr(header, "no_pixels", None))
    pixel_slow = _pick(det.pixel, header.pixel_slow)
    if pixel_slow is None and placeholder:
        pixel_slow = PLACEHOLDER_PIXEL
    pixel_slow = need(pixel_slow, "pixel size", "PIXEL")
    pixel_fast = _pick(det.pixel_fast or det.pixel, header.pixel_fast, pixel_slow)
    nslow, nfast = det.size if det.size is not None else (header.nslow, header.nfast)
    if det.beam is not None:
        beam_x, beam_y = det.beam
    elif header.beam_x is not None and header.beam_y is not None:
        beam_x, beam_y = header.beam_x, header.beam_y
    else:
        beam_x, beam_y = nslow * pixel_slow / 2.0, nfast * pixel_fast / 2.0
        notices.append(
            GeometryNotice(
                ("nobeam",),
                "The beam position is not in the image header; the "
                f"detector centre ({beam_x:.2f}, {beam_y:.2f} mm) will be used.",
                "Give the BEAM keyword if this is wrong.",
            )
        )
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
    dist = st.detector.distortion
    geometry = EffectiveGeometry(
        beam=Beam(
            float(wavelength),
            polarisation=float(polarisation),
            divergence=(float(divergence[0]), float(divergence[1])),
            dispersion=float(dispersion),
        ),
        detector=Detector(
            distance=float(distance) * dist.xtofra,
            beam_x=float(beam_x) + dist.ccx,
            beam_y=float(beam_y) + dist.ccy,
            pixel_slow=float(pixel_slow),
            pixel_fast=float(pixel_fast),
            nslow=int(nslow),
            nfast=int(nfast),
            two_theta=float(_pick(det.two_theta, header.two_theta, 0.0)),
            omega=float(_pick(det.omega, header.detector_omega, 0.0)),
            tilt=dist.tilt,
            twist=dist.twist,
            ccomega=dist.ccomega,
            yscale=dist.yscale,
        ),
        goniometer=Goniometer(reverse_phi=bool(det.reverse_phi or header.reverse_phi)),
        phi_start=float(phi_start),
        phi_end=float(phi_end),
        gain=float(_pick(det.gain, header.gain, 1.0)),
        overload=float(_pick(det.overload, header.overload, 65500.0)),
        nullpix=float(_pick(det.nullpix, header.nullpix, 0.0)),
        adcoffset=float(_pick(det.adcoffset, getattr(header, "adcoffset", None), 0.0)),
        detector_type=str(_pick(det.type, header.detector_type, "UNKNOWN")),
        placeholder=placeholder,
    )
    return geometry, notices


__all__ = ["EffectiveGeometry", "GeometryNotice", "experiment_from", "header_warnings"]
