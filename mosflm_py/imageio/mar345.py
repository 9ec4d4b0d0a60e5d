"""mar345 image plate files: structure checks before fabio decodes them.

fabio's PCK decoder (C) trusts the file: a packed-image line whose size disagrees with the
header, or a bit stream whose chunks run past the image or past the end of the file, makes it
write outside its buffer and abort the interpreter ("malloc(): invalid size"). These checks
refuse such files with an :class:`~mosflm_py.errors.ImageError` first.

Layout (mar345 format description, marXperts; CCP4 ``pack_c.c``): 4096-byte header whose first
16 int32 are binary (1234 byte-order mark, size, number of overflow pixels, format 1 = PCK,
mode, number of pixels, ...); ``ceil(NumHigh / 8)`` 64-byte records of overflow pixels;
``\\nCCP4 packed image, X: xxxx, Y: yyyy\\n``; the packed bit stream.
"""

from __future__ import annotations

import re
import struct

import numpy as np

from mosflm_py.errors import ImageError
from mosflm_py.kernels.pck import BITDECODE, pck_walk

HEADER_BYTES = 4096
_PACKED = re.compile(rb"CCP4 packed image, X: *(\d{1,6}), Y: *(\d{1,6})\n")
MAX_SIZE = 20000  # pixels along one side (the largest mar345 scan is 3450)


def is_mar345(prefix: bytes) -> bool:
    """True for the mar345 byte-order mark (int32 1234, either byte order)."""
    return len(prefix) >= 4 and prefix[:4] in (struct.pack("<i", 1234), struct.pack(">i", 1234))


def check_mar345(path: str, raw: bytes) -> None:
    """Raise :class:`ImageError` unless the mar345 file *raw* is structurally sound.

    Checks the binary header (size, overflow count, format), that the file holds the overflow
    records, that the packed-image line matches the header, and that the chunks of the bit
    stream (version 1) cover exactly the image within the file.
    """
    if len(raw) < 64:
        raise ImageError(f"image file {path} is truncated in its mar345 header")
    order = "<" if raw[:4] == struct.pack("<i", 1234) else ">"
    dim1, numhigh, fmt, _mode, npix = struct.unpack(order + "5i", raw[4:24])
    if not 1 <= dim1 <= MAX_SIZE:
        raise ImageError(f"image file {path}: the mar345 header gives the size as {dim1} pixels "
                         f"(expected 1 to {MAX_SIZE}); the file is corrupt")
    if fmt != 1:
        return  # not PCK-compressed: fabio refuses it with its own error
    if not 0 <= numhigh <= dim1 * MAX_SIZE:
        raise ImageError(f"image file {path}: the mar345 header gives {numhigh} overflow "
                         "pixels; the file is corrupt")
    start = HEADER_BYTES + -(-numhigh // 8) * 64
    m = _PACKED.search(raw, start, start + 256)
    if m is None:
        if b"CCP4 packed image V2" in raw[start:start + 256]:
            return  # version 2 streams: read by fabio unchecked (not written by mar345 itself)
        raise ImageError(f"image file {path}: no 'CCP4 packed image' line after the mar345 "
                         "header and overflow records (corrupt or truncated file)")
    x, y = int(m.group(1)), int(m.group(2))
    if x != dim1 or x * y != npix:
        raise ImageError(f"image file {path}: the packed image is {x} x {y} pixels but the "
                         f"mar345 header says {dim1} pixels wide, {npix} in all; the file is "
                         "corrupt")
    stream = np.frombuffer(raw, dtype=np.uint8, offset=m.end())
    pixels, bits = pck_walk(stream, x * y, BITDECODE)
    if pixels != x * y or bits > 8 * stream.size:
        raise ImageError(f"image file {path}: the packed mar345 data do not hold the "
                         f"{x} x {y} pixels (truncated or corrupt file)")
