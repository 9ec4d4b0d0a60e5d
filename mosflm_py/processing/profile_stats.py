"""Centre of gravity of a standard profile, for MOSFLM's ``C. of G. SHIFTS`` log line.

MOSFLM prints, with the average spot profile of the central region, the shift of the profile's
centre of gravity from the predicted spot position (the box centre) in X and Y (mm) and the
background residual with the peak scaled to 255 (Leslie 1999, Acta Cryst. D55, 1696-1702).  A
shift that is not small says the predicted positions are off.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.integration.box import PEAK


def centre_of_gravity_mm(
    profile: np.ndarray,
    mask: np.ndarray,
    offsets: tuple[np.ndarray, np.ndarray],
    pixel_slow: float,
    pixel_fast: float,
) -> tuple[float, float]:
    """Shift (mm, X slow and Y fast) of the centre of gravity of the peak from the box centre.

    Parameters
    ----------
    profile : (NXS, NYS) profile values (any scale).
    mask : (NXS, NYS) box codes; only PEAK pixels with positive values weigh.
    offsets : integer pixel offsets (slow, fast) of the box pixels from its centre.
    pixel_slow, pixel_fast : pixel sizes (mm).

    Returns
    -------
    (dx, dy) in mm; (nan, nan) when the peak has no positive value.
    """
    p = np.where((np.asarray(mask) == PEAK) & (np.asarray(profile) > 0), profile, 0.0)
    total = float(p.sum())
    if total <= 0:
        return float("nan"), float("nan")
    dx, dy = offsets
    return (float((p * dx).sum() / total * pixel_slow), float((p * dy).sum() / total * pixel_fast))
