"""Structure walk of a CCP4 "pck" bit stream (mar345 image plate compression).

The stream is a little-endian bit sequence of chunks: 3 bits ``k`` (the chunk holds ``2**k``
pixels), 3 bits ``j`` (each pixel difference takes ``(0, 4, 5, 6, 7, 8, 16, 32)[j]`` bits), then
the differences (CCP4 ``pack_c.c``, J.P. Abrahams; mar345 format description, marXperts).
Reference: ``tests/reference/pck_ref.py``.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.kernels._jit import jit

BITDECODE = np.array([0, 4, 5, 6, 7, 8, 16, 32], dtype=np.int64)


@jit
def pck_walk(stream: np.ndarray, total: int, bitdecode: np.ndarray) -> tuple[int, int]:
    """Walk the chunks of *stream* (uint8) until *total* pixels are covered.

    Returns ``(pixels, bits)``: the pixels the chunks hold (``total`` for a sound stream, more
    when the last chunk runs past the image, less when the stream ends first) and the bits
    they take (at most ``8 * stream.size`` for a sound stream).
    """
    nbits = stream.size * 8
    pos = 0
    pixel = 0
    while pixel < total:
        if pos + 6 > nbits:
            return pixel, pos + 6
        head = 0
        for k in range(6):
            q = pos + k
            head |= ((stream[q >> 3] >> (q & 7)) & 1) << k
        pos += 6
        pixnum = 1 << (head & 7)
        pixel += pixnum
        pos += pixnum * bitdecode[(head >> 3) & 7]
        if pos > nbits:
            return pixel, pos
    return pixel, pos
