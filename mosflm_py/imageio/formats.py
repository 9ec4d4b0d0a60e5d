"""Public entry points: ``read_header(path, frame)`` and ``read_frame(path, frame)``.

Dispatch by file content: HDF5 signature -> :mod:`.hdf5`; CBF text -> :mod:`.cbf` (own header
parser and byte-offset decoder); anything else -> ``fabio.open`` and the adapter table in
:mod:`.adapters`. Every failure a user can cause becomes :class:`~mosflm_py.errors.ImageError`
naming the file and the problem.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.errors import ImageError, MosflmError
from mosflm_py.imageio import adapters, cbf, hdf5, mar345
from mosflm_py.imageio.header import ImageHeader
from mosflm_py.imageio.rawfile import read_all, read_prefix
from mosflm_py.imageio.sanity import check_header


def _kind(path: str) -> str:
    prefix = read_prefix(path, 4096)
    if hdf5.is_hdf5(prefix):
        return "hdf5"
    if cbf.is_cbf(prefix):
        return "cbf"
    return "fabio"


def _fabio_open(path: str, frame: int | None):
    import fabio

    if mar345.is_mar345(read_prefix(path, 4)):  # fabio's PCK decoder trusts the file
        mar345.check_mar345(path, read_all(path))
    try:
        img = fabio.open(path)
        if frame is not None and frame > 1:
            nfr = getattr(img, "nframes", 1) or 1
            if frame > nfr:
                raise ImageError(f"image file {path} has {nfr} frames (asked for frame {frame})")
            img = img.get_frame(frame - 1)
        data = img.data
    except MosflmError:
        raise
    except Exception as exc:  # noqa: BLE001 - fabio raises many exception types
        raise ImageError(
            f"image file {path} is not a recognised image or is corrupt/truncated: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if data is None or getattr(data, "ndim", 0) != 2 or data.size == 0:
        raise ImageError(f"image file {path} holds no 2-D image data (corrupt or truncated?)")
    return img


def read_header(path: str, frame: int | None = None) -> ImageHeader:
    """Header of an image file (frame ``frame`` of a multi-frame file) in MOSFLM conventions.

    Parameters
    ----------
    path : str
        Image file (compressed .gz/.bz2 allowed) or HDF5 master file.
    frame : int, optional
        1-based frame number for multi-frame files (HDF5); None for single images.

    Raises
    ------
    ImageError
        Missing, unreadable, unrecognised or corrupt file.
    """
    path = str(path)
    kind = _kind(path)
    try:
        if kind == "hdf5":
            return check_header(hdf5.read_hdf5_header(path, frame))
        if kind == "cbf":
            return check_header(cbf.read_cbf_header(path))
        hdr = adapters.adapt(path, _fabio_open(path, frame))
        return check_header(hdr if frame is None else hdr.with_values(frame=frame))
    except MosflmError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, OSError, ZeroDivisionError) as exc:
        raise ImageError(f"image file {path}: cannot interpret the header ({exc})") from exc


def read_frame(path: str, frame: int | None = None) -> np.ndarray:
    """Pixel array ``data[slow, fast]`` with the file's native integer dtype.

    Pilatus/Eiger gap and dead pixels keep their negative (or overflow) values; nothing is masked.

    Raises
    ------
    ImageError
        Missing, unreadable or corrupt/truncated file, or a frame number out of range.
    """
    path = str(path)
    kind = _kind(path)
    if kind == "hdf5":
        return hdf5.read_hdf5_frame(path, frame)
    if kind == "cbf":
        return cbf.read_cbf_frame(path)
    return _fabio_open(path, frame).data
