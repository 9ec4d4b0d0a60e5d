"""numba kernels for per-spot work: splitting components with several maxima, growing a
one-pixel rim, and accumulating centroids/intensities/shapes.

Pixel lists are CSR-grouped by component (see :func:`mosflm_py.kernels.spotfind.component_pixels`).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit

_MAX_SPLIT_PIXELS = 40000  # larger components are never split (they are rejected as too big)
_MAX_MAXIMA = 512


@jit
def _higher(v1, i1, j1, v2, i2, j2):
    """Strict total order on pixels: value, then raster position (ties go to the earlier pixel)."""
    if v1 != v2:
        return v1 > v2
    if i1 != i2:
        return i1 < i2
    return j1 < j2


@jit(parallel=True)
def split_components(data, labels, offsets, ps, pf, gain, read_noise2, dip_nsigma,
                     min_sep_s, min_sep_f, do_split, out_sub, out_npeak, out_nsub):
    """Resolve each component into peaks by steepest ascent; merge a peak into its neighbour when
    its dip to the saddle is < ``dip_nsigma`` σ or it lies within ``min_sep_s`` x ``min_sep_f`` px
    of a higher peak. ``out_npeak[c]`` = significant peaks; ``out_nsub[c]`` = sub-spots (= npeak
    when ``do_split`` else 1); ``out_sub[p]`` = sub-spot index of pixel p within its component.
    """
    nc = offsets.shape[0] - 1
    for c in prange(nc):
        o0 = offsets[c]
        o1 = offsets[c + 1]
        npx = o1 - o0
        for p in range(o0, o1):
            out_sub[p] = 0
        out_npeak[c] = 1
        out_nsub[c] = 1
        if npx < 3 or npx > _MAX_SPLIT_PIXELS:
            continue
        smin = ps[o0]
        smax = ps[o1 - 1]
        fmin = pf[o0]
        fmax = pf[o0]
        for p in range(o0, o1):
            fmin = min(fmin, pf[p])
            fmax = max(fmax, pf[p])
        hs = smax - smin + 1
        hf = fmax - fmin + 1
        if hs * hf > 50 * _MAX_SPLIT_PIXELS:  # sparse streak: too large a lookup grid
            continue
        loc = np.full((hs, hf), -1, np.int64)
        for p in range(o0, o1):
            loc[ps[p] - smin, pf[p] - fmin] = p - o0
        # steepest ascent pointer
        up = np.empty(npx, np.int64)
        nmax = 0
        for q in range(npx):
            i = ps[o0 + q]
            j = pf[o0 + q]
            bi = i
            bj = j
            bv = data[i, j]
            bq = q
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    ii = i + di
                    jj = j + dj
                    if ii < smin or ii > smax or jj < fmin or jj > fmax:
                        continue
                    r = loc[ii - smin, jj - fmin]
                    if r < 0:
                        continue
                    v = data[ii, jj]
                    if _higher(v, ii, jj, bv, bi, bj):
                        bv = v
                        bi = ii
                        bj = jj
                        bq = r
            up[q] = bq
            if bq == q:
                nmax += 1
        if nmax == 1:
            continue
        if nmax > _MAX_MAXIMA:
            out_npeak[c] = nmax
            continue
        # region id of each maximum
        rid = np.full(npx, -1, np.int64)
        peak_q = np.empty(nmax, np.int64)
        m = 0
        for q in range(npx):
            if up[q] == q:
                rid[q] = m
                peak_q[m] = q
                m += 1
        for q in range(npx):
            r = q
            while up[r] != r:
                r = up[r]
            rid[q] = rid[r]
        # saddle heights between neighbouring regions
        sad = np.full((nmax, nmax), -np.inf)
        for q in range(npx):
            i = ps[o0 + q]
            j = pf[o0 + q]
            a = rid[q]
            va = data[i, j]
            for di in range(-1, 2):
                for dj in range(-1, 2):
                    ii = i + di
                    jj = j + dj
                    if ii < smin or ii > smax or jj < fmin or jj > fmax:
                        continue
                    r = loc[ii - smin, jj - fmin]
                    if r < 0:
                        continue
                    b = rid[r]
                    if b == a:
                        continue
                    s = min(va, data[ii, jj])
                    if s > sad[a, b]:
                        sad[a, b] = s
                        sad[b, a] = s
        alive = np.ones(nmax, np.bool_)
        merged_into = np.arange(nmax)
        nalive = nmax
        while nalive > 1:
            # lowest alive peak that is insignificant or too close to a higher neighbour
            worst = -1
            worst_v = np.inf
            for a in range(nmax):
                if not alive[a]:
                    continue
                qa = peak_q[a]
                va = data[ps[o0 + qa], pf[o0 + qa]]
                best_s = -np.inf
                for b in range(nmax):
                    if b != a and alive[b] and sad[a, b] > best_s:
                        best_s = sad[a, b]
                weak = False
                if best_s > -np.inf:
                    sig = np.sqrt(gain * (max(va, gain) + max(best_s, 0.0)) + 2.0 * read_noise2)
                    weak = (va - best_s) < dip_nsigma * sig
                if not weak:
                    for b in range(nmax):
                        if b == a or not alive[b]:
                            continue
                        qb = peak_q[b]
                        vb = data[ps[o0 + qb], pf[o0 + qb]]
                        if vb >= va and abs(ps[o0 + qb] - ps[o0 + qa]) < min_sep_s and abs(
                                pf[o0 + qb] - pf[o0 + qa]) < min_sep_f:
                            weak = True
                            break
                if weak and va < worst_v:
                    worst_v = va
                    worst = a
            if worst < 0:
                break
            # merge into the neighbour with the highest saddle (or the nearest higher peak)
            tgt = -1
            best_s = -np.inf
            for b in range(nmax):
                if b != worst and alive[b] and sad[worst, b] > best_s:
                    best_s = sad[worst, b]
                    tgt = b
            if tgt < 0:
                qa = peak_q[worst]
                dbest = np.inf
                for b in range(nmax):
                    if b != worst and alive[b]:
                        qb = peak_q[b]
                        d = (ps[o0 + qb] - ps[o0 + qa]) ** 2 + (pf[o0 + qb] - pf[o0 + qa]) ** 2
                        if d < dbest:
                            dbest = d
                            tgt = b
            alive[worst] = False
            nalive -= 1
            merged_into[worst] = tgt
            for b in range(nmax):
                if b != tgt and b != worst and alive[b]:
                    s = max(sad[tgt, b], sad[worst, b])
                    sad[tgt, b] = s
                    sad[b, tgt] = s
        out_npeak[c] = nalive
        if not do_split or nalive == 1:
            continue
        newid = np.full(nmax, -1, np.int64)
        k = 0
        for a in range(nmax):
            if alive[a]:
                newid[a] = k
                k += 1
        for q in range(npx):
            a = rid[q]
            while not alive[a]:
                a = merged_into[a]
            out_sub[o0 + q] = newid[a]
        out_nsub[c] = nalive


@jit
def spot_stats(data, bg, active, labels, ps, pf, gid, nspots, gain, read_noise2, overload):
    """Accumulate per-spot sums over its strong pixels plus a one-pixel rim of active,
    non-strong pixels adjacent to exactly one spot.

    ``labels`` must be zero except at strong pixels, where it is overwritten with ``gid + 1``.
    Returns a (nspots, 19) float64 table with columns:
    0 n_strong, 1 sum_w, 2 sum_w*s, 3 sum_w*f, 4 sum w+ , 5 sum w+ s, 6 sum w+ f, 7 sum w+ s^2,
    8 sum w+ f^2, 9 sum w+ s f, 10 variance of sum_w, 11 peak value, 12 smin, 13 smax, 14 fmin,
    15 fmax, 16 n_overloaded, 17 touches inactive/edge (0/1), 18 sum z^2 over strong pixels,
    where w = value - background, w+ = max(w, 0), s/f continuous pixel coords (centre i + 0.5).
    """
    ns, nf = data.shape
    npx = ps.shape[0]
    out = np.zeros((nspots, 19), np.float64)
    for k in range(nspots):
        out[k, 11] = -np.inf
        out[k, 12] = 1e18
        out[k, 13] = -1e18
        out[k, 14] = 1e18
        out[k, 15] = -1e18
    for p in range(npx):
        labels[ps[p], pf[p]] = gid[p] + 1
    ring = {}
    for p in range(npx):
        i = ps[p]
        j = pf[p]
        g = gid[p]
        v = data[i, j]
        b = bg[i, j]
        var = gain * max(b, gain) + read_noise2
        w = v - b
        out[g, 0] += 1
        _acc(out, g, w, i + 0.5, j + 0.5, gain * max(v, 0.0) + read_noise2)
        out[g, 18] += w * w / var
        if v > out[g, 11]:
            out[g, 11] = v
        out[g, 12] = min(out[g, 12], i)
        out[g, 13] = max(out[g, 13], i)
        out[g, 14] = min(out[g, 14], j)
        out[g, 15] = max(out[g, 15], j)
        if v >= overload:
            out[g, 16] += 1
        for di in range(-1, 2):
            ii = i + di
            for dj in range(-1, 2):
                jj = j + dj
                if ii < 0 or ii >= ns or jj < 0 or jj >= nf:
                    out[g, 17] = 1.0
                    continue
                if not active[ii, jj]:
                    out[g, 17] = 1.0
                    continue
                if labels[ii, jj] != 0:
                    continue
                key = ii * nf + jj
                if key in ring:
                    if ring[key] != g:
                        ring[key] = -1
                else:
                    ring[key] = g
    for key, g in ring.items():
        if g < 0:
            continue
        ii = key // nf
        jj = key - ii * nf
        v = data[ii, jj]
        _acc(out, g, v - bg[ii, jj], ii + 0.5, jj + 0.5, gain * max(v, 0.0) + read_noise2)
        if v >= overload:
            out[g, 16] += 1
    return out


@jit
def _acc(out, g, w, s, f, var):
    out[g, 1] += w
    out[g, 2] += w * s
    out[g, 3] += w * f
    wp = max(w, 0.0)
    out[g, 4] += wp
    out[g, 5] += wp * s
    out[g, 6] += wp * f
    out[g, 7] += wp * s * s
    out[g, 8] += wp * f * f
    out[g, 9] += wp * s * f
    out[g, 10] += var
