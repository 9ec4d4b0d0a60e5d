"""DETECTOR ROTATION / ORIGIN / FAST: a detector's pixel layout as the in-plane angle OMEGA.

MOSFLM describes how a detector's pixel array lies relative to the spindle with
``DETECTOR ROTATION HORIZONTAL|VERTICAL CLOCKWISE|ANTICLOCKWISE ORIGIN UL|LL|UR|LR
FAST HORIZONTAL|VERTICAL``: the direction and sense of the spindle, the corner where the first
pixel is and the direction of the fast pixel coordinate.  mosflm-py's detector model
(:mod:`mosflm_py.geometry.detector`) places the pixel axes by the in-plane rotation OMEGA, so a
layout that is a rotation of the default one is an OMEGA; a mirror-image layout is not
representable (the model has no inverted axis).

The only fixed point available is CrystFEL's MOSFLM indexer (``libcrystfel`` ``mosflm.c``), which
declares ``ROTATION HORIZONTAL ANTICLOCKWISE ORIGIN LL FAST HORIZONTAL`` and converts MOSFLM's
matrix back to its own laboratory frame with a fixed transformation (``a* = (-a*_Y, -a*_Z,
a*_X) / lambda``).  That round trip holds with OMEGA = 180° (checked on simulated spots in
``tests/test_crystfel_mosflm_indexer.py``).  The layout turned by 180° in the detector plane
(ORIGIN UR, FAST HORIZONTAL) then follows without any assumption about the viewing side: OMEGA
0°.  The layouts turned by ±90° (FAST VERTICAL) need the sense in which MOSFLM views the detector,
which neither the MOSFLM documents available here nor CrystFEL fix, and a vertical or clockwise
spindle changes the frame the layout is described in; those are refused with a clear message
rather than guessed.
"""

from __future__ import annotations

from mosflm_py.errors import BadParameter, NotImplementedYet

# (ORIGIN, FAST) with the spindle HORIZONTAL ANTICLOCKWISE -> OMEGA (deg)
SUPPORTED = {("LL", "HORIZONTAL"): 180.0, ("UR", "HORIZONTAL"): 0.0}
# the layouts that are mirror images of the supported ones (first pixel and fast direction)
_MIRRORED = {("UL", "HORIZONTAL"), ("LR", "HORIZONTAL"), ("LL", "VERTICAL"), ("UR", "VERTICAL")}


def layout_omega(
    rotation: str | None, sense: str | None, origin: str | None, fast: str | None
) -> float | None:
    """OMEGA (deg) of the layout given by DETECTOR ROTATION / ORIGIN / FAST, or None.

    Parameters
    ----------
    rotation : HORIZONTAL or VERTICAL (spindle direction), or None when not given.
    sense : CLOCKWISE or ANTICLOCKWISE, or None.
    origin : UL, LL, UR or LR (corner of the first pixel), or None.
    fast : HORIZONTAL or VERTICAL (direction of the fast pixel coordinate), or None.

    Returns
    -------
    The detector OMEGA in degrees, or None when neither ORIGIN nor FAST was given (a spindle
    HORIZONTAL [ANTICLOCKWISE] alone is the model's own and changes nothing).

    Raises
    ------
    BadParameter
        ORIGIN without FAST or the other way round.
    NotImplementedYet
        A layout or spindle the detector model cannot represent or that is not established.
    """
    rotation = rotation.upper() if rotation else None
    sense = sense.upper() if sense else None
    if rotation == "VERTICAL" or sense == "CLOCKWISE":
        raise NotImplementedYet(
            f"DETECTOR ROTATION {rotation or ''} {sense or ''}: only a horizontal spindle turning "
            "anticlockwise (ROTATION HORIZONTAL ANTICLOCKWISE) is implemented yet; use OMEGA and "
            "REVERSEPHI to describe the detector"
        )
    if origin is None and fast is None:
        return None
    if origin is None or fast is None:
        raise BadParameter(
            "DETECTOR: ORIGIN and FAST must be given together (e.g. ORIGIN LL FAST HORIZONTAL)"
        )
    key = (origin.upper(), fast.upper())
    if rotation is not None and sense is None:
        raise NotImplementedYet(
            "DETECTOR ROTATION HORIZONTAL without CLOCKWISE/ANTICLOCKWISE: the sense of the "
            "spindle is needed with ORIGIN and FAST; give ROTATION HORIZONTAL ANTICLOCKWISE"
        )
    if key in SUPPORTED:
        return SUPPORTED[key]
    if key in _MIRRORED:
        raise NotImplementedYet(
            f"DETECTOR ORIGIN {key[0]} FAST {key[1]}: a mirror-image pixel layout is not "
            "implemented yet (the detector model turns the pixel axes with OMEGA but cannot "
            "invert one of them); supported: ORIGIN LL FAST HORIZONTAL, ORIGIN UR FAST HORIZONTAL"
        )
    raise NotImplementedYet(
        f"DETECTOR ORIGIN {key[0]} FAST {key[1]}: a layout turned by 90 degrees is not "
        "implemented yet (its sense is not fixed by the documents available); give OMEGA 90 or "
        "OMEGA 270 instead, or use ORIGIN LL / UR with FAST HORIZONTAL"
    )
