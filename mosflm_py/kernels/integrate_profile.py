"""Standard-profile accumulation and 2D profile fitting kernels (Leslie 1999, Acta D55, 1696).

Standard profiles are kept on a sub-pixel grid, ``K`` bins per pixel along each axis, in box
coordinates centred on the spot: fine bin ``A`` along slow has its centre at
``x = (A + 0.5) / K - 0.5`` (box-index units; box pixel ``a`` has its centre at ``x = a`` and the
spot centre is at ``x = NX // 2``).  A contributor whose predicted centre lies ``(fx, fy)`` pixels
from the centre of its centre pixel contributes each box pixel ``(a, b)`` at ``(a - fx, b - fy)``
(bilinear splat onto the fine grid); a reflection with offsets ``(fx, fy)`` is fitted with the
profile sampled (bilinearly on the fine grid) at the same positions.  The spot is therefore
re-centred once, with sub-pixel resolution, instead of being interpolated twice between whole
pixels (which broadens sharp profiles by ~1/3 px^2 in variance and biases the fit).

Pixel variances in the fit are counting statistics of the model, ``v = max(b + J P, vmin)``;
the instrument error factor EFAC enters only the expected residual used for PKRATIO (MOSFLM's
"instrument error factor" of the PKRATIO definition), so that sigma(J) is consistent with the
scatter of photon-counting data.  The fit also returns, per box, the sums from which the caller
calculates the detector error factor of an image from its strong spots.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit


@jit
def _sample(img, x, y, k):
    """Bilinear sample of the fine grid ``img`` at box coordinates (x, y); 0 outside."""
    nfx, nfy = img.shape
    u = (x + 0.5) * k - 0.5
    v = (y + 0.5) * k - 0.5
    a0 = int(np.floor(u))
    b0 = int(np.floor(v))
    tx = u - a0
    ty = v - b0
    s = 0.0
    for da in range(2):
        a = a0 + da
        if a < 0 or a >= nfx:
            continue
        wa = tx if da == 1 else 1.0 - tx
        for db in range(2):
            b = b0 + db
            if b < 0 or b >= nfy:
                continue
            wb = ty if db == 1 else 1.0 - ty
            s += wa * wb * img[a, b]
    return s


@jit(parallel=True)
def sample_profiles(profiles, k, prof_idx, prof_w, fx, fy, nx, ny, out):
    """Each reflection's blended profile at its box pixels: ``out[i, a, b] =
    sum_q prof_w[i, q] * profiles[prof_idx[i, q]]`` sampled bilinearly at ``(a - fx[i],
    b - fy[i])`` (as :func:`fit_boxes` samples it; not clipped or normalised)."""
    n = out.shape[0]
    nq = prof_idx.shape[1]
    for i in prange(n):
        for a in range(nx):
            for b in range(ny):
                s = 0.0
                for q in range(nq):
                    wq = prof_w[i, q]
                    if wq != 0.0:
                        s += wq * _sample(profiles[prof_idx[i, q]], a - fx[i], b - fy[i], k)
                out[i, a, b] = s


@jit
def accumulate(values, codes, plane, nx, ny, k, sel, region, weight, fx, fy, sums, norms,
               count):
    """Splat the background-subtracted boxes of reflections ``sel`` onto their region's grid.

    For every usable box pixel (in the box, status ok) at box coordinates ``(a - fx, b - fy)``:
    ``sums[r] += w Delta`` and ``norms[r] += w weight`` with bilinear weights ``w`` on the fine
    grid (``sums``, ``norms`` of shape (R, NX*k, NY*k)); ``count[r] += 1``.
    """
    stride = nx * ny
    hx, hy = nx // 2, ny // 2
    nfx, nfy = nx * k, ny * k
    for t in range(sel.size):
        kk = sel[t]
        r = region[t]
        base = kk * stride
        count[r] += 1
        for p in range(stride):
            c = codes[base + p]
            if (c & 3) == 0 or (c >> 2) != 0:
                continue
            a = p // ny
            b = p % ny
            d = values[base + p] - (plane[kk, 0] * (a - hx) + plane[kk, 1] * (b - hy)
                                    + plane[kk, 2])
            u = (a - fx[t] + 0.5) * k - 0.5
            v = (b - fy[t] + 0.5) * k - 0.5
            a0 = int(np.floor(u))
            b0 = int(np.floor(v))
            tx = u - a0
            ty = v - b0
            for da in range(2):
                aa = a0 + da
                if aa < 0 or aa >= nfx:
                    continue
                wa = tx if da == 1 else 1.0 - tx
                for db in range(2):
                    bb = b0 + db
                    if bb < 0 or bb >= nfy:
                        continue
                    w = wa * (ty if db == 1 else 1.0 - ty)
                    if w == 0.0:
                        continue
                    sums[r, aa, bb] += w * d
                    norms[r, aa, bb] += w * weight[t]


@jit
def _variance(bg, j, p, vmin):
    """Pixel variance (photons^2): counting statistics of the model, at least ``vmin``."""
    return max(max(bg, 0.0) + max(j, 0.0) * p, vmin)


@jit(parallel=True)
def fit_boxes(values, codes, plane, sigma_b2, nx, ny, profiles, k, prof_idx, prof_w, fx, fy,
              efac, vmin, wdlim1, wdlim2, j_start, out_j, out_var, out_pkratio, out_nfit,
              out_missing, out_excess=None, out_signal2=None):
    """Weighted least-squares profile fit for every box (peak pixels only, plane fixed).

    ``profiles`` (R, NX*k, NY*k) are sub-pixel standard profiles (module docstring); the
    reflection's profile is ``P = sum_w prof_w * profiles[prof_idx]`` sampled at its peak pixels,
    clipped at 0 and normalised to sum 1 over the peak.
    J = sum(P D / v) / sum(P^2 / v), var = 1 / sum(P^2 / v) + plane term,
    v = max(b + e + max(J, 0) P, vmin) with e = sigma_b2 - max(b_centre, 0) the background
    variance per pixel beyond counting statistics (0 unless the caller adds it); the model,
    not the observed rho, so that weights do not correlate with the noise; iterated from
    ``j_start``; pixels beyond wdlim sigma are rejected once and the fit repeated.
    PKRATIO = rms of residual / sqrt(v + (efac m)^2).
    Optional per-box outputs over the fitted pixels (s = J P the fitted spot counts):
    ``out_excess`` = sum(residual^2 - v) and ``out_signal2`` = sum(s^2), from which the caller
    estimates the detector error factor.
    ``out_missing`` = sum of P over unusable peak pixels (overloaded, inactive, off image,
    neighbour peak, rejected).
    """
    stride = nx * ny
    hx, hy = nx // 2, ny // 2
    nbox = codes.size // stride
    nw = prof_idx.shape[1]
    for kk in prange(nbox):
        base = kk * stride
        pk = np.zeros(stride)
        tot = 0.0
        wd = wdlim1
        for p in range(stride):
            c = codes[base + p]
            if (c >> 2) == 1:
                wd = wdlim2
            if (c & 3) == 1:
                x = p // ny - fx[kk]
                y = p % ny - fy[kk]
                val = 0.0
                for w in range(nw):
                    if prof_w[kk, w] != 0.0:
                        val += prof_w[kk, w] * _sample(profiles[prof_idx[kk, w]], x, y, k)
                if val < 0.0:
                    val = 0.0
                pk[p] = val
                tot += val
        if tot <= 0.0:
            out_j[kk] = np.nan
            out_var[kk] = np.nan
            out_pkratio[kk] = np.nan
            out_nfit[kk] = 0
            out_missing[kk] = np.nan
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
        a_, b_, c_ = plane[kk, 0], plane[kk, 1], plane[kk, 2]
        # background variance beyond counting statistics (read noise), carried in sigma_b2
        eb = max(sigma_b2[kk] - max(c_, 0.0), 0.0)
        j = max(j_start[kk], 0.0)
        den = 0.0
        for rnd in range(2):
            for _ in range(6):
                num = 0.0
                den = 0.0
                for p in range(stride):
                    if use[p]:
                        bg = a_ * (p // ny - hx) + b_ * (p % ny - hy) + c_
                        v = _variance(bg + eb, j, pk[p], vmin)
                        num += pk[p] * (values[base + p] - bg) / v
                        den += pk[p] * pk[p] / v
                if den <= 0.0:
                    break
                jn = num / den
                done = abs(jn - j) <= 1e-6 * max(abs(jn), 1.0)
                j = jn
                if done:
                    break
            if den <= 0.0 or rnd == 1:
                break
            changed = False
            for p in range(stride):
                if use[p]:
                    bg = a_ * (p // ny - hx) + b_ * (p % ny - hy) + c_
                    m = max(bg, 0.0) + max(j, 0.0) * pk[p]
                    v = _variance(bg + eb, j, pk[p], vmin) + (efac * m) ** 2
                    if abs(values[base + p] - bg - j * pk[p]) > wd * np.sqrt(v):
                        use[p] = False
                        missing += pk[p]
                        changed = True
            if not changed:
                break
        if den <= 0.0:
            out_j[kk] = np.nan
            out_var[kk] = np.nan
            out_pkratio[kk] = np.nan
            out_nfit[kk] = 0
            out_missing[kk] = np.nan
            continue
        ssq = 0.0
        n = 0
        u0 = u1 = u2 = 0.0
        exc = 0.0
        sig2 = 0.0
        for p in range(stride):
            if use[p]:
                x = p // ny - hx
                y = p % ny - hy
                bg = a_ * x + b_ * y + c_
                v = _variance(bg + eb, j, pk[p], vmin)
                m = max(bg, 0.0) + max(j, 0.0) * pk[p]
                r2 = (values[base + p] - bg - j * pk[p]) ** 2
                ssq += r2 / (v + (efac * m) ** 2)
                s2 = (max(j, 0.0) * pk[p]) ** 2
                exc += r2 - v
                sig2 += s2
                n += 1
                w = pk[p] / v / den
                u0 += w * x
                u1 += w * y
                u2 += w
        pl = plane[kk]
        quad = (u0 * (pl[3] * u0 + pl[4] * u1 + pl[5] * u2)
                + u1 * (pl[6] * u0 + pl[7] * u1 + pl[8] * u2)
                + u2 * (pl[9] * u0 + pl[10] * u1 + pl[11] * u2))
        out_j[kk] = j
        out_var[kk] = 1.0 / den + sigma_b2[kk] * quad
        out_pkratio[kk] = np.sqrt(ssq / max(n - 1, 1))
        out_nfit[kk] = n
        out_missing[kk] = missing
        if out_excess is not None:
            out_excess[kk] = exc
        if out_signal2 is not None:
            out_signal2[kk] = sig2
