"""MOSFLM-style spot file (SPOTOD / FINDSPOTS FILE, ``.spt``).

Layout written and read here (free-format numbers, one record per line):

1. ``NSLOW NFAST PIXEL_SLOW PIXEL_FAST`` - image size (pixels) and pixel sizes (mm);
2. ``BEAM_X BEAM_Y`` - direct-beam position (mm, MOSFLM X slow, Y fast);
3. one line per spot: ``X Y PHI I SIGI`` - centroid (mm, X slow / Y fast), φ (deg),
   background-subtracted intensity and its σ (counts);
4. a terminating line of ``-999`` values (``-999.0 -999.0 -999.0 -999.0 -999.0``).

Anything after the terminator is ignored. The file is written to a temporary name in the same
folder and renamed, so readers never see a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

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
    lines = [f"{int(shape[0]):8d}{int(shape[1]):8d}{pixel_slow:12.6f}{pixel_fast:12.6f}",
             f"{beam[0]:12.4f}{beam[1]:12.4f}"]
    for x, y, p, i, s in zip(spots.x_mm, spots.y_mm, spots.phi, spots.intensity, spots.sigma):
        lines.append(f"{x:12.4f}{y:12.4f}{p:12.4f}{i:16.2f}{s:14.2f}")
    lines.append(" ".join([f"{TERMINATOR:8.1f}"] * 5))
    text = "\n".join(lines) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
        x_mm=a[:, 0], y_mm=a[:, 1], x_px=a[:, 0] / ps, y_px=a[:, 1] / pf, intensity=a[:, 3],
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
        ns, nf, ps, pf = int(lines[0][0]), int(lines[0][1]), float(lines[0][2]), float(lines[0][3])
        bx, by = float(lines[1][0]), float(lines[1][1])
        rows = []
        for k, ln in enumerate(lines[2:], start=3):
            vals = [float(v) for v in ln[:5]]
            if vals and vals[0] <= TERMINATOR + 0.5:
                break
            if len(vals) < 5:
                raise SpotFileError(f"spot file {path} line {k}: expected X Y PHI I SIGI")
            rows.append(vals)
        else:
            raise SpotFileError(f"spot file {path} has no -999 terminator line")
    except (IndexError, ValueError) as err:
        raise SpotFileError(f"spot file {path} is not a MOSFLM spot file ({err})") from err
    if ps <= 0 or pf <= 0:
        raise SpotFileError(f"spot file {path}: pixel size must be positive")
    return ((ns, nf), ps, pf, (bx, by)), rows
