"""Plain-numpy references for the integration kernels (mosflm_py/kernels/integrate_*.py)."""

from __future__ import annotations

import numpy as np


def extract_boxes(frame, ci, cj, mask_id, masks, peak_masks, noverlap, gain, adcoffset,
                  nullpix, overload):
    nm, nx, ny = masks.shape
    hx, hy = nx // 2, ny // 2
    omap = np.zeros(frame.shape, np.int64)
    for k in range(ci.size):
        for a in range(nx):
            for b in range(ny):
                i, j = ci[k] - hx + a, cj[k] - hy + b
                if 0 <= i < frame.shape[0] and 0 <= j < frame.shape[1]:
                    omap[i, j] += peak_masks[mask_id[k], a, b]
    values = np.zeros((ci.size, nx, ny))
    codes = np.zeros((ci.size, nx, ny), np.int8)
    for k in range(ci.size):
        m = mask_id[k]
        for a in range(nx):
            for b in range(ny):
                region = masks[m, a, b]
                i, j = ci[k] - hx + a, cj[k] - hy + b
                if region == 0:
                    continue
                if not (0 <= i < frame.shape[0] and 0 <= j < frame.shape[1]):
                    codes[k, a, b] = region | 16
                    continue
                raw = float(frame[i, j])
                values[k, a, b] = (raw - adcoffset) / gain
                if raw <= nullpix or raw < 0:
                    status = 3
                elif raw >= overload:
                    status = 2
                elif omap[i, j] - peak_masks[m, a, b] >= noverlap:
                    status = 1
                else:
                    status = 0
                codes[k, a, b] = region | (status << 2)
    return values.reshape(-1), codes.reshape(-1)


def _plane(dx, dy, v):
    g = np.column_stack([dx, dy, np.ones_like(dx)])
    gtg = g.T @ g
    return np.linalg.solve(gtg, g.T @ v), np.linalg.inv(gtg)


def background_and_sum(values, codes, nx, ny, bgfrac, bias_f, bgsig):
    """Returns per box: plane (a, b, c), n_bg, i_sum, var_sum (no RECOVER)."""
    hx, hy = nx // 2, ny // 2
    dx = (np.arange(nx)[:, None] - hx + np.zeros((1, ny))).reshape(-1)
    dy = (np.arange(ny)[None, :] - hy + np.zeros((nx, 1))).reshape(-1)
    out = []
    for k in range(values.size // (nx * ny)):
        v = values[k * nx * ny:(k + 1) * nx * ny]
        c = codes[k * nx * ny:(k + 1) * nx * ny]
        ok = ((c & 3) == 2) & ((c >> 2) == 0)
        vals = v[ok]
        order = np.argsort(vals, kind="mergesort")
        nlow = max(int(np.ceil(bgfrac * vals.size)), 3)
        low = np.flatnonzero(ok)[order[:nlow]]
        p, inv = _plane(dx[low], dy[low], v[low])
        p[2] += bias_f * np.sqrt(abs(p[2]))
        use = np.zeros_like(ok)
        use[low] = True
        for it in range(10):
            var = max(abs(p[2]), 1.0)
            if it > 0 and use.sum() > 3:
                res = v[use] - (p[0] * dx[use] + p[1] * dy[use] + p[2])
                var = max(var, (res**2).sum() / (use.sum() - 3))
            new = ok & (np.abs(v - (p[0] * dx + p[1] * dy + p[2])) <= bgsig * np.sqrt(var))
            changed = bool((new != use).any())
            use = new
            p, inv = _plane(dx[use], dy[use], v[use])
            if not changed and it >= 1:
                break
        peak = ((c & 3) == 1) & ((c >> 2) == 0)
        delta = v[peak] - (p[0] * dx[peak] + p[1] * dy[peak] + p[2])
        s = np.array([dx[peak].sum(), dy[peak].sum(), peak.sum()])
        var = np.clip(v[peak], 0, None).sum() + max(p[2], 0.0) * s @ inv @ s
        out.append((p, int(use.sum()), delta.sum(), var))
    return out


def fit_profile(rho, bg, p, vmin=0.1, niter=50):
    """Iterated weighted least squares J = sum(P D/v)/sum(P^2/v), v = max(bg + J P, vmin)."""
    j = 0.0
    for _ in range(niter):
        v = np.maximum(np.clip(bg, 0, None) + max(j, 0.0) * p, vmin)
        den = (p * p / v).sum()
        j = (p * (rho - bg) / v).sum() / den
    return j, 1.0 / den


def sample_fine(fine, x, y, k):
    """Bilinear sample of a sub-pixel profile (NX*k, NY*k) at box coordinates (x, y)."""
    u, v = (x + 0.5) * k - 0.5, (y + 0.5) * k - 0.5
    a0, b0 = int(np.floor(u)), int(np.floor(v))
    tx, ty = u - a0, v - b0
    out = 0.0
    for da, wa in ((0, 1 - tx), (1, tx)):
        for db, wb in ((0, 1 - ty), (1, ty)):
            if 0 <= a0 + da < fine.shape[0] and 0 <= b0 + db < fine.shape[1]:
                out += wa * wb * fine[a0 + da, b0 + db]
    return out


def accumulate_fine(values, codes, plane, nx, ny, k, sel, region, weight, fx, fy, nreg):
    """Bilinear splat of usable box pixels at (a - fx, b - fy) onto (nreg, NX*k, NY*k) grids."""
    hx, hy = nx // 2, ny // 2
    sums = np.zeros((nreg, nx * k, ny * k))
    norms = np.zeros_like(sums)
    for t, kk in enumerate(sel):
        v = values.reshape(-1, nx, ny)[kk]
        c = codes.reshape(-1, nx, ny)[kk]
        for a in range(nx):
            for b in range(ny):
                if (c[a, b] & 3) == 0 or (c[a, b] >> 2) != 0:
                    continue
                d = v[a, b] - (plane[kk, 0] * (a - hx) + plane[kk, 1] * (b - hy) + plane[kk, 2])
                u, w = (a - fx[t] + 0.5) * k - 0.5, (b - fy[t] + 0.5) * k - 0.5
                a0, b0 = int(np.floor(u)), int(np.floor(w))
                for da, wa in ((0, 1 - (u - a0)), (1, u - a0)):
                    for db, wb in ((0, 1 - (w - b0)), (1, w - b0)):
                        if 0 <= a0 + da < nx * k and 0 <= b0 + db < ny * k:
                            sums[region[t], a0 + da, b0 + db] += wa * wb * d
                            norms[region[t], a0 + da, b0 + db] += wa * wb * weight[t]
    return sums, norms


def shift_bilinear(img, fx, fy):
    """out[a, b] = img sampled at (a - fx, b - fy), zero outside."""
    nx, ny = img.shape
    out = np.zeros_like(img)
    for a in range(nx):
        for b in range(ny):
            x, y = a - fx, b - fy
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            tx, ty = x - x0, y - y0
            for da, wa in ((0, 1 - tx), (1, tx)):
                for db, wb in ((0, 1 - ty), (1, ty)):
                    if 0 <= x0 + da < nx and 0 <= y0 + db < ny:
                        out[a, b] += wa * wb * img[x0 + da, y0 + db]
    return out


def sample_profiles(fine, k, idx, w, fx, fy, nx, ny):
    """Plain-numpy reference of kernels.integrate_profile.sample_profiles: each reflection's
    blended profile at its box pixels (bilinear on the fine grid at (a - fx, b - fy))."""
    n = len(fx)
    nfx, nfy = fine.shape[1:]
    u = (np.arange(nx)[None, :, None] - np.asarray(fx)[:, None, None] + 0.5) * k - 0.5
    v = (np.arange(ny)[None, None, :] - np.asarray(fy)[:, None, None] + 0.5) * k - 0.5
    u = np.broadcast_to(u, (n, nx, ny))
    v = np.broadcast_to(v, (n, nx, ny))
    a0, b0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    tx, ty = u - a0, v - b0
    out = np.zeros((n, nx, ny))
    for q in range(idx.shape[1]):
        prof = fine[idx[:, q]]
        for da, wa in ((0, 1.0 - tx), (1, tx)):
            for db, wb in ((0, 1.0 - ty), (1, ty)):
                aa, bb = a0 + da, b0 + db
                inside = (aa >= 0) & (aa < nfx) & (bb >= 0) & (bb < nfy)
                val = np.take_along_axis(
                    prof.reshape(n, -1),
                    (np.clip(aa, 0, nfx - 1) * nfy + np.clip(bb, 0, nfy - 1)).reshape(n, -1),
                    axis=1,
                ).reshape(n, nx, ny)
                out += w[:, q][:, None, None] * np.where(inside, wa * wb * val, 0.0)
    return out
