"""Background plane with outlier rejection and summation integration, one box per iteration.

MOSFLM background (Leslie 1999; DIALS ``MosflmOutlierRejector``): plane through the lowest
``bgfrac`` of the background pixels, bias correction ``c += f sqrt|c|``, rejection beyond
``bgsig`` standard deviations of a pixel about the plane, refit on the survivors, repeated until
the set of survivors no longer changes (at most 10 passes).  The standard deviation is the
larger of the Poisson value ``sqrt(max(|c|, 1))`` and the scatter of the survivors about the
previous plane: with read noise (CCDs) or a background the plane does not follow the pixels
scatter more than Poisson, and a Poisson-width window about the low first plane (the lowest
``bgfrac`` start) cuts more of the high side than of the low side, so that the plane stays
biased low, by a small amount per pixel that the sum over a large peak makes a large positive
bias of weak intensities (the development set's CCD: five times the true intensity at 1.3 Å).
Iterating to a fixed set removes the memory of the low start.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit


@jit
def _with_status(bv, bstat, nb, status):
    """Values and indices of the first ``nb`` background pixels whose status is ``status``."""
    n = 0
    for q in range(nb):
        if bstat[q] == status:
            n += 1
    vals = np.empty(n)
    idx = np.empty(n, np.int64)
    t = 0
    for q in range(nb):
        if bstat[q] == status:
            vals[t] = bv[q]
            idx[t] = q
            t += 1
    return vals, idx


@jit
def fit_plane(dx, dy, v, use, out):
    """Least-squares plane v = a dx + b dy + c over ``use``; out = [a, b, c, inv(GtG) (9)].

    Returns the number of pixels used; falls back to a constant when the normal matrix is
    singular (a = b = 0, inverse diag(0, 0, 1/n)).
    """
    sxx = sxy = syy = sx = sy = s1 = 0.0
    rx = ry = r1 = 0.0
    n = 0
    for p in range(dx.size):
        if use[p]:
            x = dx[p]
            y = dy[p]
            sxx += x * x
            sxy += x * y
            syy += y * y
            sx += x
            sy += y
            s1 += 1.0
            rx += x * v[p]
            ry += y * v[p]
            r1 += v[p]
            n += 1
    for q in range(12):
        out[q] = 0.0
    if n == 0:
        return 0
    c00 = syy * s1 - sy * sy
    c01 = -(sxy * s1 - sy * sx)
    c02 = sxy * sy - syy * sx
    c11 = sxx * s1 - sx * sx
    c12 = -(sxx * sy - sxy * sx)
    c22 = sxx * syy - sxy * sxy
    det = sxx * c00 + sxy * c01 + sx * c02
    if n < 3 or abs(det) <= 1e-9 * (sxx * syy * s1 + 1.0):
        out[2] = r1 / s1
        out[11] = 1.0 / s1
        return n
    inv00, inv01, inv02 = c00 / det, c01 / det, c02 / det
    inv11, inv12, inv22 = c11 / det, c12 / det, c22 / det
    out[0] = inv00 * rx + inv01 * ry + inv02 * r1
    out[1] = inv01 * rx + inv11 * ry + inv12 * r1
    out[2] = inv02 * rx + inv12 * ry + inv22 * r1
    out[3], out[4], out[5] = inv00, inv01, inv02
    out[6], out[7], out[8] = inv01, inv11, inv12
    out[9], out[10], out[11] = inv02, inv12, inv22
    return n


@jit(parallel=True)
def background_and_sum(values, codes, nx, ny, bgfrac, bias_f, bgsig, recover, recover_target,
                       plane, n_bg, bgratio, gradient, sigma_b2, i_sum, var_sum, counts):
    """Per box: plane (N, 12) [a, b, c, inv3x3], background stats and summation I, var(I).

    counts (N, 5) int64: ok peak pixels, peak pixels in a neighbour's peak, overloaded peak
    pixels, inactive/off-image peak pixels, neighbour-masked background pixels.
    """
    stride = nx * ny
    hx, hy = nx // 2, ny // 2
    nbox = codes.size // stride
    for k in prange(nbox):
        base = k * stride
        nb = 0
        for p in range(stride):
            if (codes[base + p] & 3) == 2:
                nb += 1
        bx = np.empty(nb)
        by = np.empty(nb)
        bv = np.empty(nb)
        bstat = np.empty(nb, np.int64)
        nb = 0
        for p in range(stride):
            c = codes[base + p]
            if (c & 3) == 2:
                bx[nb] = p // ny - hx
                by[nb] = p % ny - hy
                bv[nb] = values[base + p]
                bstat[nb] = c >> 2
                nb += 1
        use = np.zeros(nb, np.bool_)
        okv, oki = _with_status(bv, bstat, nb, 0)
        n_ok = okv.size
        order = np.argsort(okv, kind="mergesort")
        nlow = int(np.ceil(bgfrac * n_ok))
        if nlow < 3 and n_ok >= 3:
            nlow = 3
        for t in range(min(nlow, n_ok)):
            use[oki[order[t]]] = True
        out = plane[k]
        n = fit_plane(bx, by, bv, use, out)
        out[2] += bias_f * np.sqrt(abs(out[2]))
        for it in range(10):
            var = max(abs(out[2]), 1.0)
            if it > 0 and n > 3:
                ssq0 = 0.0
                for q in range(nb):
                    if use[q]:
                        ssq0 += (bv[q] - (out[0] * bx[q] + out[1] * by[q] + out[2])) ** 2
                var = max(var, ssq0 / (n - 3))
            thr = bgsig * np.sqrt(var)
            changed = False
            for q in range(nb):
                u = bstat[q] == 0 and abs(bv[q] - (out[0] * bx[q] + out[1] * by[q]
                                                    + out[2])) <= thr
                if u != use[q]:
                    changed = True
                use[q] = u
            n = fit_plane(bx, by, bv, use, out)
            if not changed and it >= 1:
                break
        if recover and n < recover_target:
            thr = bgsig * np.sqrt(max(abs(out[2]), 1.0))
            cv, cq = _with_status(bv, bstat, nb, 1)
            cand_n = cv.size
            corder = np.argsort(cv, kind="mergesort")
            added = 0
            for t in range(cand_n):
                if n + added >= recover_target:
                    break
                q = cq[corder[t]]
                if abs(bv[q] - (out[0] * bx[q] + out[1] * by[q] + out[2])) <= thr:
                    use[q] = True
                    added += 1
            if added > 0:
                n = fit_plane(bx, by, bv, use, out)
        n_bg[k] = n
        ssq = 0.0
        mean = 0.0
        for q in range(nb):
            if use[q]:
                pl = out[0] * bx[q] + out[1] * by[q] + out[2]
                ssq += (bv[q] - pl) ** 2
                mean += pl
        if n > 0:
            mean /= n
            bgratio[k] = np.sqrt(ssq / n) / np.sqrt(max(mean, 0.01))
        else:
            bgratio[k] = np.nan
        gradient[k] = np.sqrt(out[0] ** 2 + out[1] ** 2) / max(out[2], 1.0)
        sb2 = max(out[2], 0.0)
        sigma_b2[k] = sb2
        # summation over the peak
        s = 0.0
        sv = 0.0
        g0 = g1 = g2 = 0.0
        c_ok = c_ovl = c_over = c_edge = c_nbg = 0
        for p in range(stride):
            c = codes[base + p]
            region = c & 3
            st = c >> 2
            if region == 1:
                if st == 0:
                    x = p // ny - hx
                    y = p % ny - hy
                    v = values[base + p]
                    s += v - (out[0] * x + out[1] * y + out[2])
                    sv += max(v, 0.0)
                    g0 += x
                    g1 += y
                    g2 += 1.0
                    c_ok += 1
                elif st == 1:
                    c_ovl += 1
                elif st == 2:
                    c_over += 1
                else:
                    c_edge += 1
            elif region == 2 and st == 1:
                c_nbg += 1
        quad = (g0 * (out[3] * g0 + out[4] * g1 + out[5] * g2)
                + g1 * (out[6] * g0 + out[7] * g1 + out[8] * g2)
                + g2 * (out[9] * g0 + out[10] * g1 + out[11] * g2))
        i_sum[k] = s
        var_sum[k] = sv + sb2 * quad
        counts[k, 0] = c_ok
        counts[k, 1] = c_ovl
        counts[k, 2] = c_over
        counts[k, 3] = c_edge
        counts[k, 4] = c_nbg
