"""Physical checks of the values an image header gives, with the bounds of the keywords.

A header that lies (wavelength 0, a beam position of 1e9 mm, an image one pixel wide) must stop
the run with a message naming the file, not turn into an empty MTZ or a numerical failure deep in
indexing. The allowed ranges are the ones declared for the keyword that sets the same value
(``keywords/*.toml``), so the header and the keyword input obey one rule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mosflm_py.errors import ImageError
from mosflm_py.registry import default_registry

if TYPE_CHECKING:
    from mosflm_py.imageio.header import ImageHeader
    from mosflm_py.registry import ArgSpec

# header attribute -> (keyword, sub-keyword or None, argument, what it is)
HEADER_CHECKS: tuple[tuple[str, str, str | None, str, str], ...] = (
    ("wavelength", "WAVELENGTH", None, "lambda", "wavelength"),
    ("distance", "DISTANCE", None, "d", "crystal to detector distance"),
    ("pixel_slow", "PIXEL", None, "size", "pixel size (slow)"),
    ("pixel_fast", "PIXEL", None, "size", "pixel size (fast)"),
    ("nslow", "SIZE", None, "nslow", "number of pixels (slow)"),
    ("nfast", "SIZE", None, "nfast", "number of pixels (fast)"),
    ("beam_x", "BEAM", None, "x", "beam position X"),
    ("beam_y", "BEAM", None, "y", "beam position Y"),
    ("two_theta", "TWOTHETA", None, "angle", "two-theta"),
    ("gain", "GAIN", None, "g", "gain"),
    ("overload", "OVERLOAD", "CUTOFF", "value", "overload cutoff"),
    ("phi_start", "IMAGE", "PHI", "start", "phi start"),
    ("phi_end", "IMAGE", "PHI", "start", "phi end"),
)


def _arg(keyword: str, sub: str | None, name: str) -> ArgSpec:
    spec = default_registry().specs[keyword]
    forms = spec.subkeywords[sub].forms if sub else spec.forms
    return next(a for form in forms for a in form if a.name == name)


# header attribute -> state setting that overrides it (a keyword the user gave)
OVERRIDES = {
    "wavelength": "beam.wavelength",
    "distance": "detector.distance",
    "pixel_slow": "detector.pixel",
    "pixel_fast": "detector.pixel",
    "beam_x": "detector.beam",
    "beam_y": "detector.beam",
    "two_theta": "detector.two_theta",
    "gain": "detector.gain",
    "overload": "detector.overload",
}


def check_header(hdr: ImageHeader) -> ImageHeader:
    """*hdr* with every physically impossible value removed and explained in ``hdr.rejected``.

    The image size must be possible (it is the data's own shape).  An image smaller than the
    SIZE keyword's minimum but at least 1 x 1 pixel is kept as a header-only placeholder
    (``no_pixels`` holds the message that refuses its pixels, see
    :meth:`mosflm_py.imageio.series.ImageSeries.frame`): CrystFEL sends a 1 x 1 SMV image with
    ``AUTOINDEX ... FILE``, which needs no pixels.  Any other value out of the
    range of its keyword is set to None and the reason kept in ``rejected[attr]``, so that a
    keyword given by the user can still override it (:func:`unresolved` says when none did).

    Raises
    ------
    ImageError
        The image size is impossible: below 1 or above the SIZE keyword's maximum (naming the
        file, the value and the allowed range).
    """
    name = hdr.path if hdr.frame is None else f"{hdr.path} (frame {hdr.frame})"
    rejected: dict[str, str] = {}
    placeholder = 0  # the SIZE minimum when the image is a placeholder
    for attr, keyword, sub, argname, what in HEADER_CHECKS:
        value = getattr(hdr, attr, None)
        if value is None:
            continue
        arg = _arg(keyword, sub, argname)
        try:
            why = arg.check(value if arg.type == "int" else float(value))
        except (TypeError, ValueError, OverflowError):
            why = "is not a number"
        if why is None and isinstance(value, float) and not math.isfinite(value):
            why = "is not a finite number"
        if why:
            unit = f" {arg.unit}" if arg.unit else ""
            key = f"{keyword} {sub}" if sub else keyword
            msg = (f"image file {name}: the header gives the {what} as {value:g}{unit}, which "
                   f"{why}; expected a value{arg.range_text()}{unit}")
            if attr in ("nslow", "nfast"):
                if isinstance(value, int) and 1 <= value < (arg.min or 0):
                    # too small to hold data: a header-only placeholder (CrystFEL's 1 x 1 SMV
                    # image for AUTOINDEX ... FILE); refused where pixels are read
                    placeholder = int(arg.min)
                    continue
                raise ImageError(msg)
            rejected[attr] = f"{msg} (give the {key} keyword to override the header value)"
    if placeholder:
        hdr = hdr.with_values(no_pixels=placeholder_message(name, hdr.nslow, hdr.nfast,
                                                               placeholder))
    if not rejected:
        return hdr
    changes = {a: None for a in rejected}
    if "phi_start" in rejected or "phi_end" in rejected:
        changes.update(phi_start=None, phi_end=None)
    return hdr.with_values(**changes, rejected=rejected)


def placeholder_message(name: str, nslow: int, nfast: int, minimum: int) -> str:
    """The refusal for reading the pixels of an image too small to hold data (sides below
    *minimum* pixels, the SIZE keyword's minimum)."""
    return (f"image file {name} is {nslow} x {nfast} pixels, too small to hold data (a "
            "header-only placeholder image): this step needs the pixel data of an image of at "
            f"least {minimum} x {minimum} pixels. Only AUTOINDEX from a spot file "
            "(AUTOINDEX ... FILE name) works with a placeholder image")


def unresolved(hdr: ImageHeader, is_user_set, image_number: int,
               phi_overridden: bool) -> str | None:
    """The message for a rejected header value that no keyword overrides, or None.

    Parameters
    ----------
    hdr : the checked header.
    is_user_set : callable(path) -> bool (``State.is_user_set``).
    image_number : the image the header belongs to.
    phi_overridden : True when ``IMAGE n PHI a TO b`` gave the phi range of this image.
    """
    for attr, msg in getattr(hdr, "rejected", {}).items():
        if attr in ("phi_start", "phi_end"):
            if not phi_overridden:
                return msg.replace("IMAGE PHI keyword", f"IMAGE {image_number} PHI keyword")
            continue
        if not is_user_set(OVERRIDES[attr]):
            return msg
    return None
