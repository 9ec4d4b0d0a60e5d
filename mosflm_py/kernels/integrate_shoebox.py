"""Shoebox extraction kernels: overlap map and per-reflection pixel classification.

Pixel code = region | (status << 2); region 0 outside box, 1 peak, 2 background; status 0 ok,
1 inside a neighbour's peak, 2 overloaded, 3 inactive (<= NULLPIX or negative), 4 off the image.
Values are photons: (raw - adcoffset) / gain.
"""

from __future__ import annotations

from numba import prange

from mosflm_py.kernels._jit import jit


@jit
def paint_peaks(n_slow, n_fast, ci, cj, mask_id, peak_masks, out_map):
    """Add 1 to ``out_map[i, j]`` for every (trimmed) peak pixel of every reflection."""
    nx, ny = peak_masks.shape[1], peak_masks.shape[2]
    hx, hy = nx // 2, ny // 2
    for k in range(ci.size):
        m = mask_id[k]
        for a in range(nx):
            i = ci[k] - hx + a
            if i < 0 or i >= n_slow:
                continue
            for b in range(ny):
                j = cj[k] - hy + b
                if j < 0 or j >= n_fast:
                    continue
                if peak_masks[m, a, b]:
                    out_map[i, j] += 1


@jit(parallel=True)
def extract_boxes(frame, ci, cj, mask_id, masks, peak_masks, overlap_map, noverlap,
                  gain, adcoffset, nullpix, overload, values, codes):
    """Fill ``values`` / ``codes`` (flat, stride NX*NY per reflection) for every reflection."""
    nx, ny = masks.shape[1], masks.shape[2]
    hx, hy = nx // 2, ny // 2
    n_slow, n_fast = frame.shape[0], frame.shape[1]
    stride = nx * ny
    for k in prange(ci.size):
        m = mask_id[k]
        base = k * stride
        for a in range(nx):
            i = ci[k] - hx + a
            for b in range(ny):
                j = cj[k] - hy + b
                p = base + a * ny + b
                region = masks[m, a, b]
                if region == 0:
                    values[p] = 0.0
                    codes[p] = 0
                    continue
                if i < 0 or i >= n_slow or j < 0 or j >= n_fast:
                    values[p] = 0.0
                    codes[p] = region | (4 << 2)
                    continue
                raw = float(frame[i, j])
                values[p] = (raw - adcoffset) / gain
                if raw <= nullpix or raw < 0.0:
                    codes[p] = region | (3 << 2)
                elif raw >= overload:
                    codes[p] = region | (2 << 2)
                elif overlap_map[i, j] - peak_masks[m, a, b] >= noverlap:
                    codes[p] = region | (1 << 2)
                else:
                    codes[p] = region
