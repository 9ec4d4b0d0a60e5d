"""Plain-numpy / plain-Python references for the spot-finding kernels
(mosflm_py/kernels/spotfind.py and spotfind_spots.py). Slow; small arrays only."""

from __future__ import annotations

import numpy as np


def box_mean_ref(data, use, hs, hf, min_count):
    ns, nf = data.shape
    out = np.full((ns, nf), np.nan)
    for i in range(ns):
        for j in range(nf):
            sl = (slice(max(i - hs, 0), i + hs + 1), slice(max(j - hf, 0), j + hf + 1))
            u = use[sl].astype(bool)
            c = u.sum()
            if c >= min_count and c > 0:
                out[i, j] = data[sl][u].astype(float).sum() / c
    return out


def threshold_ref(data, active, bg, bg_fallback, gain, rn2, nsigma):
    b = np.where(np.isfinite(bg), bg, bg_fallback)
    var = gain * np.maximum(b, gain) + rn2
    with np.errstate(invalid="ignore"):
        strong = active.astype(bool) & np.isfinite(b) & (data > b + nsigma * np.sqrt(var))
    return strong.astype(np.uint8)


def exclude_dilated_ref(active, signal):
    ns, nf = active.shape
    sig = np.zeros((ns + 2, nf + 2), bool)
    sig[1:-1, 1:-1] = signal.astype(bool)
    dil = np.zeros((ns, nf), bool)
    for di in range(3):
        for dj in range(3):
            dil |= sig[di:di + ns, dj:dj + nf]
    return (active.astype(bool) & ~dil).astype(np.uint8)


def radial_profile_ref(data, use, beam_s, beam_f, bin_width, nbins, clip, niter):
    ii, jj = np.indices(data.shape)
    r = np.hypot(ii + 0.5 - beam_s, jj + 0.5 - beam_f)
    k = (r / bin_width).astype(int)
    sel = use.astype(bool) & (k < nbins)
    mean = np.full(nbins, np.nan)
    rms = np.full(nbins, np.inf)
    nused = np.zeros(nbins, int)
    nrej = np.zeros(nbins, int)
    for it in range(niter + 1):
        newm, newr = mean.copy(), rms.copy()
        for b in range(nbins):
            v = data[sel & (k == b)].astype(float)
            if it > 0:
                keep = ~(np.abs(v - mean[b]) > clip * rms[b])
                nrej[b] = (~keep).sum()
                v = v[keep]
            else:
                nrej[b] = 0
            nused[b] = v.size
            if v.size:
                m = v.mean()
                newm[b] = m
                newr[b] = np.sqrt(max((v * v).mean() - m * m, 0.0)) + 1e-6 * max(abs(m), 1.0)
            else:
                newm[b], newr[b] = np.nan, np.inf
        mean, rms = newm, newr
    return mean, rms, nused, nrej


def radial_map_ref(profile, beam_s, beam_f, bin_width, shape):
    ii, jj = np.indices(shape)
    x = np.hypot(ii + 0.5 - beam_s, jj + 0.5 - beam_f) / bin_width - 0.5
    centres = np.arange(profile.size, dtype=float)
    out = np.interp(x, centres, profile)
    out[x >= profile.size] = np.nan
    return out


def label_ref(strong):
    """8-connected flood fill; labels numbered in raster order of each component's first pixel."""
    ns, nf = strong.shape
    labels = np.zeros((ns, nf), np.int32)
    n = 0
    for i in range(ns):
        for j in range(nf):
            if strong[i, j] and labels[i, j] == 0:
                n += 1
                stack = [(i, j)]
                labels[i, j] = n
                while stack:
                    a, b = stack.pop()
                    for da in (-1, 0, 1):
                        for db in (-1, 0, 1):
                            x, y = a + da, b + db
                            if 0 <= x < ns and 0 <= y < nf and strong[x, y] and labels[x, y] == 0:
                                labels[x, y] = n
                                stack.append((x, y))
    return labels, n


def component_pixels_ref(labels, n):
    offsets = [0]
    ps, pf = [], []
    for lab in range(1, n + 1):
        s, f = np.nonzero(labels == lab)  # raster order
        ps += list(s)
        pf += list(f)
        offsets.append(len(ps))
    return np.array(offsets), np.array(ps, np.int32), np.array(pf, np.int32)


def _key(data, p):
    """Sort key implementing the kernels' strict order: value, then earlier raster position."""
    i, j = p
    return (data[i, j], -i, -j)


def split_ref(data, pixels, gain, rn2, dip, sep_s, sep_f, do_split):
    """Reference for one component: returns (npeak, nsub, sub index per pixel)."""
    pix = [tuple(map(int, p)) for p in pixels]
    n = len(pix)
    arr = np.asarray(pix).reshape(-1, 2)
    area = (np.ptp(arr[:, 0]) + 1) * (np.ptp(arr[:, 1]) + 1) if n else 0
    if n < 3 or n > 40000 or area > 50 * 40000:
        return 1, 1, [0] * n
    index = {p: q for q, p in enumerate(pix)}

    def nbrs(p):
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                r = (p[0] + di, p[1] + dj)
                if r in index:
                    yield r

    up = [index[max(nbrs(p), key=lambda r: _key(data, r))] for p in pix]
    maxima = [q for q in range(n) if up[q] == q]
    if len(maxima) == 1:
        return 1, 1, [0] * n
    rid_of_max = {q: k for k, q in enumerate(maxima)}

    def root(q):
        while up[q] != q:
            q = up[q]
        return q

    rid = [rid_of_max[root(q)] for q in range(n)]
    m = len(maxima)
    sad = np.full((m, m), -np.inf)
    for q, p in enumerate(pix):
        for r in nbrs(p):
            a, b = rid[q], rid[index[r]]
            if a != b:
                s = min(data[p], data[r])
                sad[a, b] = max(sad[a, b], s)
                sad[b, a] = sad[a, b]
    alive = [True] * m
    into = list(range(m))
    val = [float(data[pix[maxima[a]]]) for a in range(m)]
    pos = [pix[maxima[a]] for a in range(m)]
    while sum(alive) > 1:
        worst, worst_v = -1, np.inf
        for a in range(m):
            if not alive[a]:
                continue
            others = [b for b in range(m) if b != a and alive[b]]
            best_s = max(sad[a, b] for b in others)
            weak = False
            if best_s > -np.inf:
                sig = np.sqrt(gain * (max(val[a], gain) + max(best_s, 0.0)) + 2 * rn2)
                weak = val[a] - best_s < dip * sig
            if not weak:
                weak = any(val[b] >= val[a] and abs(pos[b][0] - pos[a][0]) < sep_s
                           and abs(pos[b][1] - pos[a][1]) < sep_f for b in others)
            if weak and val[a] < worst_v:
                worst, worst_v = a, val[a]
        if worst < 0:
            break
        others = [b for b in range(m) if b != worst and alive[b]]
        tgt, best_s = -1, -np.inf
        for b in others:
            if sad[worst, b] > best_s:
                tgt, best_s = b, sad[worst, b]
        if tgt < 0:
            d = [(pos[b][0] - pos[worst][0]) ** 2 + (pos[b][1] - pos[worst][1]) ** 2
                 for b in others]
            tgt = others[int(np.argmin(d))]
        alive[worst] = False
        into[worst] = tgt
        for b in range(m):
            if b not in (tgt, worst) and alive[b]:
                sad[tgt, b] = sad[b, tgt] = max(sad[tgt, b], sad[worst, b])
    npeak = sum(alive)
    if not do_split or npeak == 1:
        return npeak, 1, [0] * n
    newid = {a: k for k, a in enumerate(a for a in range(m) if alive[a])}
    sub = []
    for q in range(n):
        a = rid[q]
        while not alive[a]:
            a = into[a]
        sub.append(newid[a])
    return npeak, npeak, sub


def spot_stats_ref(data, bg, active, gid_map, nspots, gain, rn2, overload):
    """Per-spot table like the kernel's (columns documented in spot_stats), from a dense map of
    spot ids (0 = none, k + 1 = spot k) of the strong pixels."""
    ns, nf = data.shape
    out = np.zeros((nspots, 19))
    out[:, 11] = -np.inf
    out[:, 12] = out[:, 14] = 1e18
    out[:, 13] = out[:, 15] = -1e18
    ring = {}

    def acc(g, i, j):
        v = float(data[i, j])
        w = v - float(bg[i, j])
        s, f = i + 0.5, j + 0.5
        wp = max(w, 0.0)
        out[g, 1:11] += [w, w * s, w * f, wp, wp * s, wp * f, wp * s * s, wp * f * f, wp * s * f,
                         gain * max(v, 0.0) + rn2]
        if v >= overload:
            out[g, 16] += 1

    for i in range(ns):
        for j in range(nf):
            g = gid_map[i, j] - 1
            if g < 0:
                continue
            b = float(bg[i, j])
            v = float(data[i, j])
            out[g, 0] += 1
            acc(g, i, j)
            out[g, 18] += (v - b) ** 2 / (gain * max(b, gain) + rn2)
            out[g, 11] = max(out[g, 11], v)
            out[g, 12] = min(out[g, 12], i)
            out[g, 13] = max(out[g, 13], i)
            out[g, 14] = min(out[g, 14], j)
            out[g, 15] = max(out[g, 15], j)
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    x, y = i + di, j + dj
                    if not (0 <= x < ns and 0 <= y < nf) or not active[x, y]:
                        out[g, 17] = 1
                        continue
                    if gid_map[x, y]:
                        continue
                    ring.setdefault((x, y), set()).add(g)
    for (x, y), gs in ring.items():
        if len(gs) == 1:
            acc(next(iter(gs)), x, y)
    return out
