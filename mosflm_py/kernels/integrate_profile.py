"""Standard-profile accumulation and 2D profile fitting kernels (Leslie 1999, Acta D55, 1696).

Profiles live on the box grid (NX, NY); index (a, b) is offset (a - NX//2, b - NY//2) from the
box's centre pixel.  A reflection whose predicted centre is (fx, fy) pixels from its centre-pixel
centre has profile ``P(a, b) = P_std(a - fx, b - fy)`` (bilinear interpolation, INTERPOLATE).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit


@jit
def _bilinear(img, x, y):
    """Bilinear sample of img (NX, NY) at fractional index (x, y); 0 outside."""
    nx, ny = img.shape
    x0 = int(np.floor(x))
    y0 = int(np.floor(y))
    tx = x - x0
    ty = y - y0
    s = 0.0
    for da in range(2):
        a = x0 + da
        if a < 0 or a >= nx:
            continue
        wa = tx if da == 1 else 1.0 - tx
        for db in range(2):
            b = y0 + db
            if b < 0 or b >= ny:
                continue
            wb = ty if db == 1 else 1.0 - ty
            s += wa * wb * img[a, b]
    return s


@jit
def accumulate(values, codes, plane, nx, ny, sel, region, weight, fx, fy, sums, norms, count):
    """Add the centred background-subtracted boxes of reflections ``sel`` to their regions.

    ``sums[r] += Delta`` sampled at (a + fx, b + fy) and ``norms[r] += weight`` where all four
    interpolation pixels are usable (in the box, status ok); ``count[r] += 1``.
    """
    stride = nx * ny
    hx, hy = nx // 2, ny // 2
    for t in range(sel.size):
        k = sel[t]
        r = region[t]
        base = k * stride
        count[r] += 1
        for a in range(nx):
            xa = a + fx[t]
            a0 = int(np.floor(xa))
            tx = xa - a0
            for b in range(ny):
                yb = b + fy[t]
                b0 = int(np.floor(yb))
                ty = yb - b0
                s = 0.0
                ok = True
                for da in range(2):
                    aa = a0 + da
                    wa = tx if da == 1 else 1.0 - tx
                    for db in range(2):
                        bb = b0 + db
                        wb = ty if db == 1 else 1.0 - ty
                        if wa * wb == 0.0:
                            continue
                        if aa < 0 or aa >= nx or bb < 0 or bb >= ny:
                            ok = False
                            continue
                        c = codes[base + aa * ny + bb]
                        if (c & 3) == 0 or (c >> 2) != 0:
                            ok = False
                            continue
                        pl = plane[k, 0] * (aa - hx) + plane[k, 1] * (bb - hy) + plane[k, 2]
                        s += wa * wb * (values[base + aa * ny + bb] - pl)
                if ok:
                    sums[r, a, b] += s
                    norms[r, a, b] += weight[t]


@jit
def _variance(bg, j, p, efac):
    """Pixel variance (photons^2): model counts plus (efac * model counts)^2, at least 1."""
    model = max(bg, 0.0) + max(j, 0.0) * p
    return max(model + (efac * model) ** 2, 1.0)


@jit(parallel=True)
def fit_boxes(values, codes, plane, sigma_b2, nx, ny, profiles, prof_idx, prof_w, fx, fy,
              efac, wdlim1, wdlim2, j_start, out_j, out_var, out_pkratio, out_nfit,
              out_missing):
    """Weighted least-squares profile fit for every box (peak pixels only, plane fixed).

    J = sum(P D / v) / sum(P^2 / v), var = 1 / sum(P^2 / v) + plane term,
    v = max(m + (efac m)^2, 1) with the model m = b + max(J, 0) P (the
    model, not the observed rho, so that weights do not correlate with the noise), iterated
    6 times from ``j_start``; pixels beyond wdlim sigma are rejected once and the fit repeated.
    ``out_missing`` = sum of P over unusable
    peak pixels (overloaded, inactive, off image, neighbour peak).
    """
    stride = nx * ny
    hx, hy = nx // 2, ny // 2
    nbox = codes.size // stride
    nw = prof_idx.shape[1]
    for k in prange(nbox):
        base = k * stride
        blend = np.zeros((nx, ny))
        for w in range(nw):
            if prof_w[k, w] != 0.0:
                blend += prof_w[k, w] * profiles[prof_idx[k, w]]
        pk = np.zeros(stride)
        tot = 0.0
        wd = wdlim1
        for p in range(stride):
            c = codes[base + p]
            if (c >> 2) == 1:
                wd = wdlim2
            if (c & 3) == 1:
                val = _bilinear(blend, p // ny - fx[k], p % ny - fy[k])
                if val < 0.0:
                    val = 0.0
                pk[p] = val
                tot += val
        if tot <= 0.0:
            out_j[k] = np.nan
            out_var[k] = np.nan
            out_pkratio[k] = np.nan
            out_nfit[k] = 0
            out_missing[k] = np.nan
            continue
        missing = 0.0
        use = np.zeros(stride, np.bool_)
        for p in range(stride):
            pk[p] /= tot
            c = codes[base + p]
            if (c & 3) == 1:
                if (c >> 2) == 0:
                    use[p] = True
                else:
                    missing += pk[p]
        a_, b_, c_ = plane[k, 0], plane[k, 1], plane[k, 2]
        j = max(j_start[k], 0.0)
        den = 0.0
        for rnd in range(2):
            for _ in range(6):
                num = 0.0
                den = 0.0
                for p in range(stride):
                    if use[p]:
                        bg = a_ * (p // ny - hx) + b_ * (p % ny - hy) + c_
                        rho = values[base + p]
                        v = _variance(bg, j, pk[p], efac)
                        num += pk[p] * (rho - bg) / v
                        den += pk[p] * pk[p] / v
                if den <= 0.0:
                    break
                j = num / den
            if den <= 0.0 or rnd == 1:
                break
            changed = False
            for p in range(stride):
                if use[p]:
                    bg = a_ * (p // ny - hx) + b_ * (p % ny - hy) + c_
                    rho = values[base + p]
                    v = _variance(bg, j, pk[p], efac)
                    if abs(rho - bg - j * pk[p]) > wd * np.sqrt(v):
                        use[p] = False
                        missing += pk[p]
                        changed = True
            if not changed:
                break
        if den <= 0.0:
            out_j[k] = np.nan
            out_var[k] = np.nan
            out_pkratio[k] = np.nan
            out_nfit[k] = 0
            out_missing[k] = np.nan
            continue
        ssq = 0.0
        n = 0
        u0 = u1 = u2 = 0.0
        for p in range(stride):
            if use[p]:
                x = p // ny - hx
                y = p % ny - hy
                bg = a_ * x + b_ * y + c_
                rho = values[base + p]
                v = _variance(bg, j, pk[p], efac)
                ssq += (rho - bg - j * pk[p]) ** 2 / v
                n += 1
                w = pk[p] / v / den
                u0 += w * x
                u1 += w * y
                u2 += w
        pl = plane[k]
        quad = (u0 * (pl[3] * u0 + pl[4] * u1 + pl[5] * u2)
                + u1 * (pl[6] * u0 + pl[7] * u1 + pl[8] * u2)
                + u2 * (pl[9] * u0 + pl[10] * u1 + pl[11] * u2))
        out_j[k] = j
        out_var[k] = 1.0 / den + sigma_b2[k] * quad
        out_pkratio[k] = np.sqrt(ssq / max(n - 1, 1))
        out_nfit[k] = n
        out_missing[k] = missing
