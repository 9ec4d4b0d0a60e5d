"""numba kernels for spot finding (per-pixel work).

All kernels take ndarrays and scalars only. Public, validating wrappers live in
:mod:`mosflm_py.spotfinding`; plain-numpy references in ``tests/reference/spotfind_ref.py``.

Arrays are ``[slow, fast]``. Pixel flags (``uint8``) are 0/1.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit


@jit(parallel=True)
def box_mean(data, use, hs, hf, min_count, out_mean):
    """Mean of ``data`` over the ``(2hs+1) x (2hf+1)`` box centred on each pixel, using only
    pixels with ``use != 0``; NaN where fewer than ``min_count`` pixels are usable.

    Running column sums updated row by row, then a running sum along each row: O(1) per pixel,
    exact for integer-valued data. Rows are processed in independent blocks (prange).
    """
    ns, nf = data.shape
    nblocks = min(ns, 64)
    for blk in prange(nblocks):
        r0 = blk * ns // nblocks
        r1 = (blk + 1) * ns // nblocks
        colsum = np.zeros(nf, np.float64)
        colcnt = np.zeros(nf, np.int32)
        rowsum = np.zeros(nf, np.float64)
        rowcnt = np.zeros(nf, np.int32)
        for i in range(max(r0 - hs, 0), min(r0 + hs + 1, ns)):
            _add_row(colsum, colcnt, data, use, i, 1)
        for i in range(r0, r1):
            if i > r0:
                if i + hs < ns:
                    _add_row(colsum, colcnt, data, use, i + hs, 1)
                if i - hs - 1 >= 0:
                    _add_row(colsum, colcnt, data, use, i - hs - 1, -1)
            _running_row(colsum, colcnt, hf, rowsum, rowcnt)
            for j in range(nf):
                c = rowcnt[j]
                if c >= min_count and c > 0:
                    out_mean[i, j] = rowsum[j] / c
                else:
                    out_mean[i, j] = np.nan


@jit
def _add_row(colsum, colcnt, data, use, i, sign):
    nf = colsum.shape[0]
    for j in range(nf):
        u = np.int32(use[i, j] != 0)
        colsum[j] += sign * u * np.float64(data[i, j])
        colcnt[j] += sign * u


@jit
def _running_row(colsum, colcnt, hf, rowsum, rowcnt):
    """rowsum[j] = sum of colsum[j-hf .. j+hf] (clipped at the ends); same for counts."""
    nf = colsum.shape[0]
    s = 0.0
    c = 0
    for j in range(min(hf, nf)):
        s += colsum[j]
        c += colcnt[j]
    for j in range(nf):
        ja = j + hf
        if ja < nf:
            s += colsum[ja]
            c += colcnt[ja]
        jr = j - hf - 1
        if jr >= 0:
            s -= colsum[jr]
            c -= colcnt[jr]
        rowsum[j] = s
        rowcnt[j] = c


@jit(parallel=True)
def threshold_pixels(data, active, bg, bg_fallback, gain, read_noise2, nsigma, out):
    """``out = active & (data > b + nsigma * sqrt(gain * max(b, gain) + read_noise2))``.

    ``b`` is ``bg`` where finite, else ``bg_fallback`` where finite, else the pixel is not
    strong. ``max(b, gain)`` floors the Poisson variance at one photon (low-count PAD data).
    Where ``bg`` is not finite the fallback value is written back into ``bg``.
    Returns the number of strong pixels.
    """
    ns, nf = data.shape
    counts = np.zeros(ns, np.int64)
    for i in prange(ns):
        n = 0
        for j in range(nf):
            flag = 0
            if active[i, j]:
                b = bg[i, j]
                if not np.isfinite(b):
                    b = bg_fallback[i, j]
                    bg[i, j] = b
                if np.isfinite(b):
                    var = gain * max(b, gain) + read_noise2
                    if data[i, j] > b + nsigma * np.sqrt(var):
                        flag = 1
            out[i, j] = flag
            n += flag
        counts[i] = n
    return counts.sum()


@jit(parallel=True)
def exclude_dilated(active, signal, out):
    """``out = active & ~dilate3x3(signal)``: pixels usable for the background."""
    ns, nf = active.shape
    for i in prange(ns):
        for j in range(nf):
            u = active[i, j]
            if u:
                for di in range(-1, 2):
                    ii = i + di
                    if ii < 0 or ii >= ns:
                        continue
                    for dj in range(-1, 2):
                        jj = j + dj
                        if jj >= 0 and jj < nf and signal[ii, jj]:
                            u = 0
            out[i, j] = u


@jit
def radial_profile(data, use, beam_s, beam_f, bin_width, nbins, clip, niter):
    """Robust mean and r.m.s. of usable pixels in rings of width ``bin_width`` px about the beam
    (continuous pixel coords ``beam_s``, ``beam_f``); ``niter`` passes of rejecting pixels more
    than ``clip`` r.m.s. from the ring mean. Returns ``(mean, rms, n_used, n_rejected)``."""
    ns, nf = data.shape
    mean = np.zeros(nbins, np.float64)
    rms = np.full(nbins, np.inf)
    nused = np.zeros(nbins, np.int64)
    nrej = np.zeros(nbins, np.int64)
    for it in range(niter + 1):
        s = np.zeros(nbins, np.float64)
        s2 = np.zeros(nbins, np.float64)
        c = np.zeros(nbins, np.int64)
        r_ = np.zeros(nbins, np.int64)
        for i in range(ns):
            ds = i + 0.5 - beam_s
            for j in range(nf):
                if not use[i, j]:
                    continue
                df = j + 0.5 - beam_f
                k = int(np.sqrt(ds * ds + df * df) / bin_width)
                if k >= nbins:
                    continue
                v = data[i, j]
                if it > 0 and abs(v - mean[k]) > clip * rms[k]:
                    r_[k] += 1
                    continue
                s[k] += v
                s2[k] += v * v
                c[k] += 1
        for k in range(nbins):
            if c[k] > 0:
                m = s[k] / c[k]
                mean[k] = m
                var = s2[k] / c[k] - m * m
                rms[k] = np.sqrt(max(var, 0.0)) + 1e-6 * max(abs(m), 1.0)
            else:
                mean[k] = np.nan
                rms[k] = np.inf
            nused[k] = c[k]
            nrej[k] = r_[k]
    return mean, rms, nused, nrej


@jit(parallel=True)
def radial_map(profile, beam_s, beam_f, bin_width, out):
    """Per-pixel background by linear interpolation of ``profile`` (bin centres at
    ``(k + 0.5) * bin_width`` px from the beam); NaN beyond the profile or where it is NaN."""
    ns, nf = out.shape
    nb = profile.shape[0]
    for i in prange(ns):
        ds = i + 0.5 - beam_s
        for j in range(nf):
            df = j + 0.5 - beam_f
            x = np.sqrt(ds * ds + df * df) / bin_width - 0.5
            if x <= 0.0:
                out[i, j] = profile[0]
                continue
            k = int(x)
            if k >= nb - 1:
                out[i, j] = profile[nb - 1] if k == nb - 1 else np.nan
                continue
            t = x - k
            out[i, j] = (1.0 - t) * profile[k] + t * profile[k + 1]


@jit
def _find_root(parent, x):
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@jit
def label_components(strong, labels):
    """8-connected components of ``strong`` (two-pass union-find).

    ``labels`` (int32, zero-filled, same shape) receives 1..n in raster order of each
    component's first pixel. Returns n.
    """
    ns, nf = strong.shape
    cap = 1024
    parent = np.empty(cap, np.int32)
    nprov = 0
    for i in range(ns):
        for j in range(nf):
            if not strong[i, j]:
                continue
            best = 0
            # already-visited neighbours: W, NW, N, NE
            for k in range(4):
                if k == 0:
                    ii, jj = i, j - 1
                elif k == 1:
                    ii, jj = i - 1, j - 1
                elif k == 2:
                    ii, jj = i - 1, j
                else:
                    ii, jj = i - 1, j + 1
                if ii < 0 or jj < 0 or jj >= nf:
                    continue
                lab = labels[ii, jj]
                if lab == 0:
                    continue
                if best == 0:
                    best = _find_root(parent, lab - 1) + 1
                else:
                    ra = _find_root(parent, best - 1)
                    rb = _find_root(parent, lab - 1)
                    if ra != rb:
                        if ra < rb:
                            parent[rb] = ra
                            best = ra + 1
                        else:
                            parent[ra] = rb
                            best = rb + 1
            if best == 0:
                if nprov == cap:
                    cap *= 2
                    newp = np.empty(cap, np.int32)
                    newp[:nprov] = parent[:nprov]
                    parent = newp
                parent[nprov] = nprov
                nprov += 1
                best = nprov
            labels[i, j] = best
    # final consecutive ids in order of first appearance (roots are always the smallest id)
    final = np.zeros(nprov, np.int32)
    n = 0
    for k in range(nprov):
        r = _find_root(parent, k)
        if r == k:
            n += 1
            final[k] = n
    for k in range(nprov):
        final[k] = final[_find_root(parent, k)]
    for i in range(ns):
        for j in range(nf):
            lab = labels[i, j]
            if lab:
                labels[i, j] = final[lab - 1]
    return n


@jit
def component_pixels(labels, n):
    """Pixels of each component grouped by label (CSR): ``(offsets[n+1], pix_s, pix_f)``;
    within a component pixels are in raster order."""
    ns, nf = labels.shape
    counts = np.zeros(n + 1, np.int64)
    for i in range(ns):
        for j in range(nf):
            lab = labels[i, j]
            if lab > 0:
                counts[lab] += 1
    offsets = np.zeros(n + 1, np.int64)
    for k in range(n):
        offsets[k + 1] = offsets[k] + counts[k + 1]
    pos = offsets[:n].copy()
    total = offsets[n]
    ps = np.empty(total, np.int32)
    pf = np.empty(total, np.int32)
    for i in range(ns):
        for j in range(nf):
            lab = labels[i, j]
            if lab > 0:
                p = pos[lab - 1]
                ps[p] = i
                pf[p] = j
                pos[lab - 1] = p + 1
    return offsets, ps, pf


def concurrent_calls_safe() -> bool:
    """True if parallel kernels may be called from several Python threads at once.

    numba's ``workqueue`` threading layer is not thread-safe; ``omp`` and ``tbb`` are.
    """
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: run a tiny one to initialise the layer
        out = np.empty((1, 1), np.float32)
        box_mean(np.zeros((1, 1), np.float32), np.ones((1, 1), np.uint8), 0, 0, 1, out)
        layer = numba.threading_layer()
    return layer in ("omp", "tbb")
