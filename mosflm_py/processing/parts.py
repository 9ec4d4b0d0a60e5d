"""Partially recorded reflections: the images each reflection is spread over.

A reflection with rocking-curve centre φc and full width W (see conventions) is recorded on every
image whose φ range overlaps [φc − W/2, φc + W/2].  Parts carrying less than :data:`MIN_FRACTION`
are ignored.  ``npart`` is the number of images the reflection is spread over and ``ipart`` the
serial number (1-based) of this image among them; a reflection spread over more than MAXWIDTH
images is "too wide" and is not integrated (MOSFLM).
"""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.prediction import fraction_on_image

MIN_FRACTION = 1e-3


def spread_over_images(
    phi_c: np.ndarray, width: np.ndarray, starts: np.ndarray, ends: np.ndarray, image_index: int,
    max_images: int = 12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction on image ``image_index`` and (npart, ipart) of each reflection.

    Parameters
    ----------
    phi_c, width : rocking-curve centre and full width (degrees), shape (N,).
    starts, ends : φ ranges of all images of the sweep in order (degrees).
    image_index : position of the current image in ``starts``/``ends``.
    max_images : images looked at on either side (beyond is counted as one more part).

    Returns
    -------
    fraction, npart, ipart : arrays (N,); npart counts parts with fraction ≥ MIN_FRACTION,
    including images outside the processed range extrapolated with the same width.
    """
    n_img = len(starts)
    phi_c = np.asarray(phi_c, float)
    width = np.asarray(width, float)
    osc = float(np.median(ends - starts)) if n_img else 1.0
    frac_here = fraction_on_image(phi_c, width, starts[image_index], ends[image_index])
    npart = np.zeros(len(phi_c), np.int32)
    before = np.zeros(len(phi_c), np.int32)
    for off in range(-max_images, max_images + 1):
        j = image_index + off
        if 0 <= j < n_img:
            a, b = starts[j], ends[j]
        else:  # extrapolate the image grid outside the processed range
            a = starts[image_index] + off * osc
            b = a + osc
        f = fraction_on_image(phi_c, width, a, b)
        present = f >= MIN_FRACTION
        npart += present
        if off < 0:
            before += present
    ipart = before + 1
    return frac_here, np.maximum(npart, 1), ipart
