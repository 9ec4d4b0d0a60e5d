"""MOSFLM spot file (SPOTOD / FINDSPOTS FILE / AUTOINDEX FILE, ``.spt``).

Layout written (MOSFLM's, as programs that hand spots to ipmosflm write it, e.g. CrystFEL's
``mosflm.c``; numbers separated by blanks, so the file reads with fixed or free format):

1. ``NXPIX NYPIX PIXEL YSCALE OMEGA`` (``%10d %10d %10.8f %10.6f %10.6f``): image size (pixels,
   slow and fast), pixel size (mm, slow direction), YSCALE = fast/slow pixel-size ratio and the
   detector OMEGA (0: X along the slow, Y along the fast pixel direction, mosflm-py's frame);
2. ``INVERTX ISWUNG`` (``%10d %10d``): 0 1, as CrystFEL writes them;
3. ``XBEAM YBEAM`` (``%10.5f %10.5f``): direct-beam position (mm);
4. one line per spot, six numbers: ``X Y PHI 0 I SIGI`` - centroid (mm, X slow / Y fast),
   φ of the spot (deg), a column mosflm-py does not use (written 0, as CrystFEL does),
   background-subtracted intensity and its σ (counts);
5. a terminating line of six ``-999.00``.

Also read: the older mosflm-py layout (first line ``NSLOW NFAST PIXEL_SLOW PIXEL_FAST``, second
``BEAM_X BEAM_Y``, spots ``X Y PHI I SIGI``, terminator of -999).  Anything after the
terminator is ignored.  The file is written to a temporary name in the same folder and renamed
(readers never see a half-written file), with the usual permissions (0666 less the umask).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mosflm_py.atomic import atomic_write_text
from mosflm_py.errors import MosflmError
from mosflm_py.spotfinding.types import SpotList

TERMINATOR = -999.0


class SpotFileError(MosflmError):
    """A spot file that cannot be read."""


def write_spot_file(
    path: str | os.PathLike,
    spots: SpotList,
    shape: tuple[int, int],
    pixel_slow: float,
    pixel_fast: float,
    beam: tuple[float, float],
) -> None:
    """Write ``spots`` as a MOSFLM-style ``.spt`` file, atomically (temp file then rename).

    Parameters
    ----------
    path : path of the file.
    spots : SpotList (positions in mm, φ in deg, I and σ in counts).
    shape : image size (slow, fast) in pixels.
    pixel_slow, pixel_fast : pixel sizes (mm).
    beam : direct-beam position (mm, X slow, Y fast).
    """
    path = Path(path)
    yscale = pixel_fast / pixel_slow if pixel_slow > 0 else 1.0
    lines = [f"{int(shape[0]):10d} {int(shape[1]):10d} {pixel_slow:10.8f} {yscale:10.6f} "
             f"{0.0:10.6f}",
             f"{0:10d} {1:10d}",
             f"{beam[0]:10.5f} {beam[1]:10.5f}"]
    for x, y, p, i, s in zip(spots.x_mm, spots.y_mm, spots.phi, spots.intensity, spots.sigma):
        lines.append(f"{x:10.3f} {y:10.3f} {p:10.3f} {0.0:10.2f} {i:10.2f} {s:10.2f}")
    lines.append(" ".join([f"{TERMINATOR:10.2f}"] * 6))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_spot_file_header(path: str | os.PathLike) -> tuple[tuple[int, int], float, float,
                                                                  tuple[float, float]]:
    """Return ``((nslow, nfast), pixel_slow, pixel_fast, (beam_x, beam_y))`` of a spot file."""
    head, _ = _parse(path)
    return head


def read_spot_file(path: str | os.PathLike) -> SpotList:
    """Read a ``.spt`` file written by :func:`write_spot_file` (or MOSFLM-style) into a SpotList.

    Pixel coordinates are recomputed from the header pixel sizes; sizes, pixel counts, peak,
    background and flags are not stored in the file and come back as zeros; ``image`` is 0 and
    ``d_spacing`` NaN.
    """
    (_, ps, pf, _), rows = _parse(path)
    n = len(rows)
    a = np.asarray(rows, float).reshape(n, 5)
    zi = np.zeros(n, np.int32)
    return SpotList(
        # a pixel size of 0 (positions given in mm only, as CrystFEL writes) leaves pixels NaN
        x_mm=a[:, 0], y_mm=a[:, 1], x_px=a[:, 0] / ps if ps > 0 else np.full(n, np.nan),
        y_px=a[:, 1] / pf if pf > 0 else np.full(n, np.nan), intensity=a[:, 3],
        sigma=a[:, 4], size_x=zi.copy(), size_y=zi.copy(), n_pixels=zi.copy(),
        peak=np.zeros(n), background=np.zeros(n), d_spacing=np.full(n, np.nan),
        flags=zi.copy(), image=zi.copy(), phi=a[:, 2],
    )


def _parse(path):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpotFileError(f"cannot read spot file {path}: {err.strerror}") from err
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    try:
        if len(lines[0]) >= 5:  # MOSFLM: NXPIX NYPIX PIXEL YSCALE OMEGA / INVERTX ISWUNG / BEAM
            ns, nf, ps = int(lines[0][0]), int(lines[0][1]), float(lines[0][2])
            pf = ps * float(lines[0][3])
            bx, by = float(lines[2][0]), float(lines[2][1])
            first, columns = 3, (0, 1, 2, 4, 5)
        else:  # older mosflm-py layout
            ns, nf, ps, pf = (int(lines[0][0]), int(lines[0][1]), float(lines[0][2]),
                              float(lines[0][3]))
            bx, by = float(lines[1][0]), float(lines[1][1])
            first, columns = 2, (0, 1, 2, 3, 4)
        rows = []
        for k, ln in enumerate(lines[first:], start=first + 1):
            vals = [float(v) for v in ln[:6]]
            if vals and vals[0] <= TERMINATOR + 0.5:
                break
            if len(vals) <= max(columns):
                raise SpotFileError(f"spot file {path} line {k}: expected X Y PHI I SIGI")
            rows.append([vals[c] for c in columns])
        else:
            raise SpotFileError(f"spot file {path} has no -999 terminator line")
    except (IndexError, ValueError) as err:
        raise SpotFileError(f"spot file {path} is not a MOSFLM spot file ({err})") from err
    if ps < 0 or pf < 0:
        raise SpotFileError(f"spot file {path}: pixel size must not be negative")
    return ((ns, nf), ps, pf, (bx, by)), rows
