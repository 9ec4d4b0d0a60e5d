"""Plain-Python reference of :func:`mosflm_py.kernels.pck.pck_walk`."""

from __future__ import annotations

BITDECODE = (0, 4, 5, 6, 7, 8, 16, 32)


def pck_walk_ref(stream: bytes, total: int) -> tuple[int, int]:
    nbits = len(stream) * 8

    def bits(p: int, n: int) -> int:
        return sum(((stream[(p + k) // 8] >> ((p + k) % 8)) & 1) << k for k in range(n))

    pos = pixel = 0
    while pixel < total:
        if pos + 6 > nbits:
            return pixel, pos + 6
        pixnum, bitnum = 1 << bits(pos, 3), BITDECODE[bits(pos + 3, 3)]
        pos += 6
        pixel += pixnum
        pos += pixnum * bitnum
        if pos > nbits:
            return pixel, pos
    return pixel, pos
