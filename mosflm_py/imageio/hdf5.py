"""Eiger / NeXus (NXmx) HDF5 master files: header geometry and single-frame reads.

Frames live in ``/entry/data/data_000001, data_000002, ...`` (usually external links to data files,
each holding a block of frames) or directly in ``/entry/data/data``; frame ``n`` (1-based) of the
series is the n-th 2-D slice across those datasets in name order. Only that slice is read (Eiger
files are chunked one frame per chunk, bitshuffle/LZ4 decoded through ``hdf5plugin``).

Geometry follows NXmx (Bernstein et al., *J. Appl. Cryst.* 2020, 53, 585): ``beam_center_x/y`` in
pixels along fast/slow, ``detector_distance`` and pixel sizes in the units attribute (default m),
wavelength from ``/entry/instrument/beam/incident_wavelength`` (Angstrom), the scan from the
goniometer arrays in ``/entry/sample/goniometer`` or ``/entry/sample/transformations``.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from mosflm_py.errors import ImageError
from mosflm_py.imageio.header import ImageHeader

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_AXES = ("omega", "phi", "chi", "kappa")
_cache: dict[str, tuple[float, object]] = {}
_lock = threading.Lock()


def is_hdf5(prefix: bytes) -> bool:
    """True for an HDF5 file signature at byte 0."""
    return prefix.startswith(HDF5_MAGIC)


def _open(path: str):
    """Open (and cache) an HDF5 file read-only."""
    import h5py
    import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4 filters)

    key = os.path.abspath(path)
    mtime = os.path.getmtime(path)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == mtime and hit[1]:  # type: ignore[truthy-bool]
            return hit[1]
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise ImageError(f"image file {path} is not a readable HDF5 file: {exc}") from exc
        if len(_cache) >= 8:
            old_key = next(iter(_cache))
            try:
                _cache.pop(old_key)[1].close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                pass
        _cache[key] = (mtime, f)
        return f


def close_all() -> None:
    """Close every cached HDF5 file (tests, end of session)."""
    with _lock:
        for _, f in _cache.values():
            try:
                f.close()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001
                pass
        _cache.clear()


def _datasets(f, path: str) -> list:
    """Image datasets in frame order."""
    import h5py

    if "entry/data" not in f:
        raise ImageError(f"HDF5 file {path} has no /entry/data group (not an Eiger/NeXus file)")
    grp = f["entry/data"]
    out = []
    for name in sorted(grp.keys()):
        if not (name == "data" or name.startswith("data_")):
            continue
        try:
            ds = grp[name]
        except KeyError as exc:
            raise ImageError(
                f"HDF5 file {path}: /entry/data/{name} links to a missing data file ({exc})"
            ) from exc
        if isinstance(ds, h5py.Dataset) and ds.ndim in (2, 3):
            out.append(ds)
    if not out:
        raise ImageError(f"HDF5 file {path} has no image datasets under /entry/data")
    return out


def nframes(path: str) -> int:
    """Number of frames in a master file."""
    return sum(1 if ds.ndim == 2 else ds.shape[0] for ds in _datasets(_open(path), path))


def read_hdf5_frame(path: str, frame: int | None = None) -> np.ndarray:
    """Frame ``frame`` (1-based, default 1) as ``data[slow, fast]`` in the stored dtype."""
    n = 1 if frame is None else int(frame)
    if n < 1:
        raise ImageError(f"HDF5 frame numbers start at 1 (asked for {n}) in {path}")
    f = _open(path)
    k = n - 1
    for ds in _datasets(f, path):
        count = 1 if ds.ndim == 2 else ds.shape[0]
        if k < count:
            _check_bitshuffle_chunk(ds, k, path, n)
            try:
                return ds[()] if ds.ndim == 2 else ds[k]
            except (OSError, ValueError) as exc:
                raise ImageError(f"HDF5 file {path}: cannot read frame {n}: {exc}") from exc
        k -= count
    raise ImageError(f"HDF5 file {path} has only {n - 1 - k} frames (asked for frame {n})")


BITSHUFFLE_FILTER = "32008"


def _check_bitshuffle_chunk(ds, k: int, path: str, n: int) -> None:
    """Check the block structure of a bitshuffle-LZ4 chunk before the filter decodes it.

    The compiled bitshuffle filter trusts the sizes written in the chunk: a corrupt chunk
    (truncated file, flipped bits) can crash the interpreter instead of raising an error. The
    chunk format (Masui et al. 2015, *Astron. Comput.* 12, 181) is: total uncompressed bytes
    (uint64, big-endian), block size in bytes (uint32), then for each block its compressed size
    (uint32) and the LZ4 data; the last ``n_elements % 8`` elements are stored raw.

    Raises
    ------
    ImageError
        The chunk's sizes do not describe this frame.
    """
    filters = getattr(ds, "_filters", {}) or {}
    if BITSHUFFLE_FILTER not in filters or ds.chunks is None or ds.ndim != 3:
        return
    if tuple(ds.chunks[1:]) != tuple(ds.shape[1:]) or ds.chunks[0] != 1:
        return  # unusual chunking: leave it to the filter
    opts = filters[BITSHUFFLE_FILTER]
    if len(opts) < 5 or opts[4] != 2:
        return  # bitshuffle without LZ4
    bad = f"HDF5 file {path}: the compressed data of frame {n} are corrupt"
    try:
        _mask, raw = ds.id.read_direct_chunk((k, 0, 0))
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ImageError(f"{bad} ({exc})") from exc
    esize = ds.dtype.itemsize
    expected = int(np.prod(ds.shape[1:])) * esize
    if len(raw) < 12:
        raise ImageError(f"{bad} (chunk of {len(raw)} bytes)")
    total = int.from_bytes(raw[:8], "big")
    block = int.from_bytes(raw[8:12], "big")
    if total != expected or block <= 0 or block % (8 * esize):
        raise ImageError(f"{bad} (header says {total} bytes in blocks of {block})")
    tail = (total // esize) % 8 * esize  # elements beyond a multiple of 8: stored raw
    remaining, pos = total - tail, 12
    while remaining > 0:
        this = min(block, remaining - remaining % (8 * esize)) or remaining
        if pos + 4 > len(raw):
            raise ImageError(f"{bad} (truncated)")
        csize = int.from_bytes(raw[pos:pos + 4], "big")
        if csize <= 0 or csize > this + this // 255 + 16 or pos + 4 + csize > len(raw):
            raise ImageError(f"{bad} (block size {csize})")
        pos += 4 + csize
        remaining -= this
    if pos + tail != len(raw):
        raise ImageError(f"{bad} ({len(raw) - pos - tail} bytes too many)")


def _value(f, key: str, unit: str | None = None) -> float | None:
    """Scalar (first element) at ``key``, converted to ``unit`` ('mm' or 'A') when given."""
    if key not in f:
        return None
    ds = f[key]
    try:
        v = float(np.asarray(ds[()]).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None
    units = ds.attrs.get("units", b"")
    units = units.decode() if isinstance(units, bytes) else str(units)
    units = units.strip().lower()
    if unit == "mm":
        scale = {"m": 1000.0, "mm": 1.0, "um": 1e-3, "micron": 1e-3, "cm": 10.0}.get(units)
        if scale is None:
            scale = 1000.0 if v < 5.0 else 1.0  # NXmx default is metres
        v *= scale
    elif unit == "A":
        if units in ("nm",):
            v *= 10.0
        elif units == "m":
            v *= 1e10
    return v


def _scan(f, n: int) -> tuple[str | None, float | None, float | None, np.ndarray | None]:
    """(axis name, start of frame n, width, axis vector) from the goniometer arrays."""
    best = None
    for group in ("entry/sample/goniometer", "entry/sample/transformations"):
        if group not in f:
            continue
        g = f[group]
        for name in _AXES:
            if name not in g:
                continue
            arr = np.atleast_1d(np.asarray(g[name][()], dtype=float))
            width = None
            for wkey in (f"{name}_increment_set", f"{name}_range_average",
                         f"{name}_range_total"):
                if wkey in g:
                    width = float(np.asarray(g[wkey][()]).ravel()[0])
                    if wkey.endswith("total") and arr.size > 1:
                        width /= arr.size
                    break
            if width is None and f"{name}_end" in g:
                width = float(np.asarray(g[f"{name}_end"][()]).ravel()[0]) - float(arr[0])
            if width is None and arr.size > 1:
                width = float(arr[1] - arr[0])
            vec = g[name].attrs.get("vector")
            vec = None if vec is None else np.asarray(vec, dtype=float)
            start = float(arr[n - 1]) if arr.size >= n else float(arr[0]) + (n - 1) * (width or 0)
            cand = (name, start, width or 0.0, vec)
            if best is None or (abs(cand[2]) > 0 and abs(best[2] or 0.0) == 0):
                best = cand
    if best is None:
        return None, None, None, None
    return best


def _orientation(f, axis_vec: np.ndarray | None) -> tuple[float, bool, list[str]]:
    """(detector_omega, reverse_frame, warnings) from NXmx vectors (McStas frame, z = beam)."""
    warnings: list[str] = []
    fast = None
    for key in ("entry/instrument/detector/module/fast_pixel_direction",):
        if key in f and "vector" in f[key].attrs:
            fast = np.asarray(f[key].attrs["vector"], dtype=float)
    if axis_vec is None or fast is None or np.linalg.norm(axis_vec) == 0:
        return 0.0, False, warnings
    beam = np.array([0.0, 0.0, 1.0])
    rot = axis_vec - (axis_vec @ beam) * beam
    if np.linalg.norm(rot) < 1e-6:
        return 0.0, False, ["rotation axis parallel to the beam"]
    best = None
    for sign in (1.0, -1.0):
        Z = sign * rot / np.linalg.norm(rot)
        Y = np.cross(Z, beam)
        w = math.degrees(math.atan2(-(fast @ Y), fast @ Z))
        cw = math.cos(math.radians(w))
        ok = cw > 1e-6 or (abs(cw) <= 1e-6 and math.sin(math.radians(w)) > 0)
        if ok or best is None:
            best = (0.0 if abs(w) < 1e-9 else w, sign < 0)
        if ok:
            break
    assert best is not None
    return best[0], best[1], warnings


def read_hdf5_header(path: str, frame: int | None = None) -> ImageHeader:
    """Header of frame ``frame`` (1-based, default 1) of an Eiger/NeXus master file."""
    n = 1 if frame is None else int(frame)
    f = _open(path)
    dsets = _datasets(f, path)
    nslow, nfast = dsets[0].shape[-2], dsets[0].shape[-1]
    total = sum(1 if ds.ndim == 2 else ds.shape[0] for ds in dsets)
    if not 1 <= n <= total:
        raise ImageError(f"HDF5 file {path} has {total} frames (asked for frame {n})")
    det = "entry/instrument/detector/"
    px = _value(f, det + "x_pixel_size", "mm")
    py = _value(f, det + "y_pixel_size", "mm") or px
    bx = _value(f, det + "beam_center_x")
    by = _value(f, det + "beam_center_y")
    wavelength = None
    for key in ("entry/instrument/beam/incident_wavelength",
                "entry/instrument/monochromator/wavelength", "entry/instrument/beam/wavelength"):
        wavelength = wavelength or _value(f, key, "A")
    distance = _value(f, det + "detector_distance", "mm") or _value(f, det + "distance", "mm")
    spec = det + "detectorSpecific/"
    overload = _value(f, spec + "countrate_correction_count_cutoff") or _value(
        f, det + "saturation_value"
    )
    desc = ""
    if det + "description" in f:
        d = f[det + "description"][()]
        desc = d.decode() if isinstance(d, bytes) else str(d)
    serial = None
    if det + "detector_number" in f:
        s = f[det + "detector_number"][()]
        serial = s.decode() if isinstance(s, bytes) else str(s)
    axis, start, width, vec = _scan(f, n)
    omega, reverse_frame, warnings = _orientation(f, vec)
    reverse = False
    phi_start = phi_end = None
    if start is not None:
        w = width or 0.0
        reverse = w < 0
        phi_start = -start if reverse else start
        phi_end = -(start + w) if reverse else start + w
    dtype = "EIGER" if ("EIGER" in desc.upper() or spec.rstrip("/") in f) else "UNKNOWN"
    if "PILATUS" in desc.upper():
        dtype = "PILATUS"
    return ImageHeader(
        path=str(path), frame=n, format="HDF5", detector_type=dtype, nslow=int(nslow),
        nfast=int(nfast), pixel_slow=py, pixel_fast=px, wavelength=wavelength, distance=distance,
        beam_x=None if by is None or py is None else by * py,
        beam_y=None if bx is None or px is None else bx * px,
        phi_start=phi_start, phi_end=phi_end, two_theta=0.0, gain=1.0, overload=overload,
        nullpix=-1.0, detector_omega=omega, reverse_phi=reverse != reverse_frame, serial=serial,
        exposure=_value(f, det + "count_time"),
        raw={"scan_axis": str(axis), "nframes": str(total), "description": desc},
        warnings=tuple(warnings),
    )
