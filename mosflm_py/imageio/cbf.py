"""CBF images (Pilatus/Eiger miniCBF and full imgCIF CBF): header geometry and fast frame decoding.

Header: the text part before the binary section is parsed here (not by fabio) so that reading a
header never decompresses pixels. The PILATUS ``# key value`` lines
(``_array_data.header_contents``) give wavelength, distance, ``Beam_xy`` (fast, slow pixels),
start angle and increment, count cutoff; when the imgCIF ``_axis`` category is present (full
CBF) the geometry comes from the axis vectors and settings (:mod:`mosflm_py.imageio.imgcif`).

Pixels: byte-offset compressed data (Hammersley, CBFlib "CBF_BYTE_OFFSET" compression) is located
by the binary start marker ``0C 1A 04 D5`` and decoded with fabio's compiled decoder; anything else
falls back to ``fabio.open``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re

import numpy as np

from mosflm_py.errors import ImageError
from mosflm_py.imageio import imgcif
from mosflm_py.imageio.header import ImageHeader
from mosflm_py.imageio.rawfile import read_all, read_prefix

BINARY_MARKER = b"\x0c\x1a\x04\xd5"
_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def is_cbf(prefix: bytes) -> bool:
    """True if the first bytes of a file look like CBF/imgCIF."""
    head = prefix[:4096]
    return head.startswith(b"###CBF") or b"_array_data" in head or head.startswith(b"data_")


def header_text(path: str) -> str:
    """The text part of a CBF file (up to the binary section), decoded as latin-1."""
    size = 65536
    while True:
        data = read_prefix(path, size)
        end = data.find(b"--CIF-BINARY-FORMAT-SECTION--")
        if end < 0:
            end = data.find(BINARY_MARKER)
        if end >= 0:
            text = data[:end].decode("latin-1")
            cut = text.rfind("_array_data.data")
            return text[:cut] if cut >= 0 else text
        if len(data) < size:
            raise ImageError(f"image file {path} is not a CBF image (no binary section found)")
        size *= 8


def _pilatus_items(text: str) -> dict[str, str]:
    """``# Key value`` lines of a PILATUS header as {Key: value}."""
    items: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("#"):
            continue
        body = line.lstrip("#").strip()
        if body.startswith("Detector:"):
            items["Detector"] = body[len("Detector:") :].strip()
            continue
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)[:=]?\s*(.*)", body)
        if m and m.group(2):
            items.setdefault(m.group(1), m.group(2).strip())
    return items


def _first_float(s: str | None) -> float | None:
    if s is None:
        return None
    m = re.search(_FLOAT, s)
    return float(m.group(0)) if m else None


def _floats(s: str | None) -> list[float]:
    return [float(x) for x in re.findall(_FLOAT, s or "")]


def _length_mm(s: str | None) -> float | None:
    """'0.30000 m' / '300 mm' / '172e-6 m' -> mm."""
    v = _first_float(s)
    if v is None or s is None:
        return None
    unit = s.split()[-1].lower() if len(s.split()) > 1 else "m"
    return v * (1.0 if unit.startswith("mm") else 1000.0)


def _single_values(block) -> dict[str, str]:
    import gemmi

    out = {}
    for item in block:
        if item.pair is not None:
            tag, value = item.pair
            out[tag] = gemmi.cif.as_string(value)
    return out


def _detector_type(name: str) -> str:
    up = name.upper()
    for key in ("EIGER", "PILATUS"):
        if key in up:
            return key
    return "UNKNOWN"


def read_cbf_header(path: str) -> ImageHeader:
    """Header of a CBF image as :class:`ImageHeader` (MOSFLM conventions)."""
    text = header_text(path)
    block = imgcif.parse_cif_text(text)
    single = _single_values(block)
    contents = single.get("_array_data.header_contents", "")
    pil = _pilatus_items(contents)
    raw = {**single, **pil}
    raw.pop("_array_data.header_contents", None)
    warnings: list[str] = []

    # image size
    nfast = nslow = None
    for r in imgcif._rows(block, "_array_structure_list.", ["index", "dimension"]):
        if r["index"] == "1":
            nfast = int(float(r["dimension"]))
        elif r["index"] == "2":
            nslow = int(float(r["dimension"]))
    if nfast is None or nslow is None:
        mime = _mime_items(read_prefix(path, len(text.encode("latin-1")) + 4096))
        nfast = int(mime.get("X-Binary-Size-Fastest-Dimension", 0))
        nslow = int(mime.get("X-Binary-Size-Second-Dimension", 0))
    if not nfast or not nslow:
        raise ImageError(f"image file {path}: CBF header gives no image dimensions")

    detector = pil.get("Detector", "")
    for r in imgcif._rows(block, "_diffrn_detector.", ["?type", "?id"]):
        detector = detector or r.get("type", "")
    dtype = _detector_type(detector) if detector else "PILATUS"
    serial = None
    m = re.search(r"S/N\s*([\w-]+)", detector) or re.search(r",\s*([\w-]+)", detector)
    if m:
        serial = m.group(1)

    # Pilatus header values
    px = _floats(pil.get("Pixel_size"))
    pixel_fast = px[0] * 1000.0 if px else None
    pixel_slow = (px[1] if len(px) > 1 else px[0]) * 1000.0 if px else None
    wavelength = _first_float(pil.get("Wavelength"))
    distance = _length_mm(pil.get("Detector_distance"))
    beam = _floats(pil.get("Beam_xy"))
    phi_start = _first_float(pil.get("Start_angle"))
    width = _first_float(pil.get("Angle_increment"))
    two_theta = _first_float(pil.get("Detector_2theta"))
    overload = _first_float(pil.get("Count_cutoff"))
    exposure = _first_float(pil.get("Exposure_time"))
    osc_axis = pil.get("Oscillation_axis", "")
    omega = 90.0 if "SLOW" in osc_axis.upper() else 0.0
    beam_x = beam_y = None
    if len(beam) >= 2 and pixel_fast and pixel_slow:
        beam_x, beam_y = beam[1] * pixel_slow, beam[0] * pixel_fast
    reverse_frame = False

    for r in imgcif._rows(block, "_diffrn_radiation_wavelength.", ["wavelength"]):
        wavelength = wavelength or _first_float(r["wavelength"])
    nullpix = -1.0 if dtype in ("PILATUS", "EIGER") else None
    gain = 1.0 if dtype in ("PILATUS", "EIGER") else None
    for r in imgcif._rows(
        block, "_array_intensities.", ["?gain", "?overload", "?undefined_value"]
    ):
        overload = _first_float(r.get("overload")) or overload
        g = _first_float(r.get("gain"))
        gain = g if g else gain
        undef = _first_float(r.get("undefined_value"))
        if undef is not None and nullpix is None:
            nullpix = undef

    geom = imgcif.geometry_from_block(block, axis_hint=osc_axis.split(",")[0].split(".")[0])
    if geom is not None:
        distance, beam_x, beam_y = geom.distance, geom.beam_x, geom.beam_y
        two_theta, omega, reverse_frame = geom.two_theta, geom.detector_omega, geom.reverse_frame
        if geom.pixel_fast:
            pixel_fast, pixel_slow = geom.pixel_fast, geom.pixel_slow
        if geom.phi_start is not None:
            phi_start, width = geom.phi_start, geom.phi_width
        warnings.extend(geom.warnings)
        raw["imgcif_scan_axis"] = str(geom.scan_axis)
        raw["imgcif_rotation_axis"] = " ".join(f"{v:.6f}" for v in geom.rotation_axis_cif)
        raw["goniometer"] = ", ".join(
            f"{name} {angle:.2f}" + (" (scan)" if name == geom.scan_axis else "")
            for name, angle in geom.goniometer
        )
        raw["scan_axis"] = str(geom.scan_axis)
    else:
        gon = [(k, _first_float(pil.get(k))) for k in ("Omega", "Chi", "Kappa", "Phi")]
        gon = [(k, v) for k, v in gon if v is not None]
        # the scan axis is the one that moves (<axis>_increment), else the one the
        # Oscillation_axis line names; that line's text (e.g. "X.CW +SLOW") is shown as well
        moving = [k for k, _ in gon if (_first_float(pil.get(k + "_increment")) or 0.0) != 0.0]
        scan = moving[0].upper() if moving else None
        if osc_axis.strip():
            scan = f"{scan} ({osc_axis.strip()})" if scan else osc_axis.strip()
        if gon:
            raw["goniometer"] = ", ".join(f"{k.upper()} {v:.2f}" for k, v in gon)
        if scan:
            raw["scan_axis"] = scan
    phi_end, reverse = _phi_range(phi_start, width)
    if exposure is None:
        exposure = None
    return ImageHeader(
        path=str(path),
        frame=None,
        format="CbfImage",
        detector_type=dtype,
        nslow=nslow,
        nfast=nfast,
        pixel_slow=pixel_slow,
        pixel_fast=pixel_fast,
        wavelength=wavelength,
        distance=distance,
        beam_x=beam_x,
        beam_y=beam_y,
        phi_start=None if phi_start is None else (-phi_start if reverse else phi_start),
        phi_end=phi_end,
        two_theta=two_theta,
        gain=gain,
        overload=overload,
        nullpix=nullpix,
        detector_omega=omega,
        reverse_phi=reverse != reverse_frame,
        serial=serial,
        exposure=exposure,
        raw=raw,
        warnings=tuple(warnings),
    )


def _phi_range(start: float | None, width: float | None) -> tuple[float | None, bool]:
    """(phi_end in MOSFLM sense, negated?) for a header start and signed width."""
    if start is None:
        return None, False
    w = 0.0 if width is None or math.isnan(width) else width
    if w < 0:
        return -(start + w), True
    return start + w, False


def _mime_items(data: bytes) -> dict[str, str]:
    start = data.find(b"--CIF-BINARY-FORMAT-SECTION--")
    end = data.find(BINARY_MARKER, max(start, 0))
    if start < 0 or end < 0:
        return {}
    items = {}
    for line in data[start:end].decode("latin-1").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            items[k.strip()] = v.strip().strip('"').strip(";").strip()
        elif "=" in line:
            k, v = line.split("=", 1)
            items[k.strip()] = v.strip().strip('"').strip(";").strip()
    return items


_DTYPES = {
    "signed 32-bit integer": np.int32,
    "unsigned 32-bit integer": np.uint32,
    "signed 16-bit integer": np.int16,
    "unsigned 16-bit integer": np.uint16,
    "signed 8-bit integer": np.int8,
    "unsigned 8-bit integer": np.uint8,
}


def read_cbf_frame(path: str) -> np.ndarray:
    """Pixels ``data[slow, fast]`` of a byte-offset CBF, in the declared integer type."""
    data = read_all(path)
    items = _mime_items(data)
    conv = items.get("conversions", "") + items.get("Content-Type", "")
    etype = items.get("X-Binary-Element-Type", "").strip('"')
    try:
        nfast = int(items["X-Binary-Size-Fastest-Dimension"])
        nslow = int(items["X-Binary-Size-Second-Dimension"])
        nbytes = int(items["X-Binary-Size"])
    except (KeyError, ValueError):
        return _fabio_frame(path)
    if "BYTE_OFFSET" not in conv.upper() or etype not in _DTYPES:
        return _fabio_frame(path)
    start = data.find(BINARY_MARKER, data.find(b"--CIF-BINARY-FORMAT-SECTION--")) + 4
    stream = data[start : start + nbytes]
    if len(stream) < nbytes:
        raise ImageError(
            f"image file {path} is truncated: {len(stream)} of {nbytes} bytes of pixel data"
        )
    _check_md5(path, stream, items.get("Content-MD5"))
    from fabio.ext import byte_offset

    try:
        arr = np.asarray(byte_offset.dec_cbf32(stream, nfast * nslow))
    except Exception as exc:  # noqa: BLE001 - compiled decoder raises assorted errors
        raise ImageError(f"image file {path}: corrupt byte-offset data ({exc})") from exc
    if arr.size != nfast * nslow:
        raise ImageError(f"image file {path}: decoded {arr.size} pixels, expected {nfast * nslow}")
    return arr.astype(_DTYPES[etype], copy=False).reshape(nslow, nfast)


def _check_md5(path: str, stream: bytes, declared: str | None) -> None:
    """Verify the binary section against its ``Content-MD5`` (RFC 1864: base64 of the digest).

    Raises
    ------
    ImageError
        The pixel data were changed after the file was written (bit flips, bad copy).
    """
    if not declared:
        return
    digest = base64.b64encode(hashlib.md5(stream).digest()).decode("ascii")
    if digest != declared.strip():
        raise ImageError(f"image file {path} is corrupt: the MD5 checksum of its pixel data "
                         f"({digest}) does not match the Content-MD5 in its header ({declared})")


def _fabio_frame(path: str) -> np.ndarray:
    import fabio

    try:
        return fabio.open(path).data
    except Exception as exc:  # noqa: BLE001
        raise ImageError(
            f"image file {path} cannot be read as CBF: {exc} ({os.path.basename(path)})"
        ) from exc
