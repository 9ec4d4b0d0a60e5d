"""Partially recorded reflections: the images each reflection is spread over.

A reflection with rocking-curve centre φc and full width W (see conventions) is recorded on every
image whose φ range overlaps [φc − W/2, φc + W/2].  Parts carrying less than :data:`MIN_FRACTION`
are ignored.  ``npart`` is the number of images the reflection is spread over and ``ipart`` the
serial number (1-based) of this image among them.  There is no limit on the number of parts: on
finely sliced images a reflection may cover 20 or more images and is integrated on every one of
them (the fractions of all its parts add up to 1).  Reflections whose width W exceeds MAXWIDTH
(an angle in degrees, default 5°, as MOSFLM) are "too wide" and are not integrated.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.prediction import fraction_on_image

MIN_FRACTION = 1e-3


def _image_edges(
    starts: np.ndarray, ends: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """φ ranges of images ``lo``..``hi`` (positions in the run, possibly outside it).

    Images outside the processed range are extrapolated with the median oscillation, so that
    a reflection at the start or end of the run has its missing parts counted too.
    """
    n_img = len(starts)
    osc = float(np.median(ends - starts)) if n_img else 1.0
    j = np.arange(lo, hi + 1)
    a = np.empty(j.size)
    inside = (j >= 0) & (j < n_img)
    a[inside] = starts[j[inside]]
    a[j < 0] = starts[0] + j[j < 0] * osc
    a[j >= n_img] = ends[-1] + (j[j >= n_img] - n_img) * osc
    b = a + osc
    b[inside] = ends[j[inside]]
    return a, b


def spread_over_images(
    phi_c: np.ndarray,
    width: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    image_index: int,
    ball: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction on image ``image_index`` and (npart, ipart) of each reflection.

    Parameters
    ----------
    phi_c, width : rocking-curve centre and full extent (degrees), shape (N,).
    ball : uniform-ball part of each width (degrees; :mod:`mosflm_py.geometry.rocking_curve`);
        None: the whole width.
    starts, ends : φ ranges of all images of the sweep in order (degrees).
    image_index : position of the current image in ``starts``/``ends``.

    Returns
    -------
    fraction, npart, ipart : arrays (N,); npart counts the images (of the run, or beyond it on
    the extrapolated image grid) that receive a fraction ≥ MIN_FRACTION; ipart is the serial
    number of the current image among them.
    """
    n_img = len(starts)
    phi_c = np.asarray(phi_c, float)
    width = np.nan_to_num(np.asarray(width, float), posinf=360.0)
    n = len(phi_c)
    if ball is not None:
        ball = np.nan_to_num(np.asarray(ball, float), posinf=360.0)
    frac_here = fraction_on_image(phi_c, width, starts[image_index], ends[image_index], ball)
    npart = np.zeros(n, np.int32)
    before = np.zeros(n, np.int32)
    if n == 0:
        return frac_here, np.ones(0, np.int32), np.ones(0, np.int32)
    osc = float(np.median(ends - starts)) if n_img else 1.0
    # images within reach of the widest reflection on either side of the current one
    reach = int(np.ceil(min(float(width.max()), 360.0) / max(osc, 1e-6))) + 1
    lo, hi = image_index - reach, image_index + reach
    a, b = _image_edges(np.asarray(starts, float), np.asarray(ends, float), lo, hi)
    for k, off in enumerate(range(lo - image_index, hi - image_index + 1)):
        near = np.abs(phi_c - 0.5 * (a[k] + b[k])) <= 0.5 * width + (b[k] - a[k])
        if not near.any():
            continue
        f = np.zeros(n)
        f[near] = fraction_on_image(phi_c[near], width[near], a[k], b[k],
                                    None if ball is None else ball[near])
        present = f >= MIN_FRACTION
        npart += present
        if off < 0:
            before += present
    ipart = before + 1
    return frac_here, np.maximum(npart, 1), ipart
