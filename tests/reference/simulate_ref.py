"""Plain-numpy references of the simulator kernels (mosflm_py/kernels/simulate.py).

Slow and obvious: explicit rotation matrices, one reflection / image / sub-step at a time.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf


def _rz(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _inside_fraction(t: float, rho: float) -> float:
    """Volume fraction of a ball (radius rho) on the inner side of a plane at distance t."""
    q = min(1.0, max(0.0, (rho - t) / (2.0 * rho)))
    return q * q * (3.0 - 2.0 * q)


def sweep_records_ref(r0, rho, s0, sign, phi_edges, steps_per_width, min_steps_per_image, det,
                      e_pol, tau):
    """Same records as ``sweep_records``, in the same order (reflection, image, sub-step)."""
    s0v = np.array([s0, 0.0, 0.0])
    origin, e_slow, e_fast, normal = det[0:3], det[3:6], det[6:9], det[9:12]
    dist, bx, by, pxs, pxf = det[12:17]

    def t_of(r, phi):
        return np.linalg.norm(s0v + _rz(sign * phi) @ r) - s0

    out = []
    for i in range(len(r0)):
        r = r0[i]
        rperp = math.hypot(r[0], r[1])
        if rperp <= 0 or rho[i] <= 0:
            continue
        h_width = 2.0 * rho[i] / (steps_per_width * rperp)
        for k in range(len(phi_edges) - 1):
            a, b = phi_edges[k], phi_edges[k + 1]
            ta, tb = t_of(r, a), t_of(r, b)
            if ta * tb > 0 and 0.5 * (abs(ta) + abs(tb) - rperp * (b - a)) > rho[i]:
                continue
            nsub = max(min_steps_per_image, math.ceil((b - a) / h_width))
            h = (b - a) / nsub
            for j in range(nsub):
                t1 = t_of(r, a + j * h) if j > 0 else ta
                t2 = t_of(r, a + (j + 1) * h) if j < nsub - 1 else tb
                if min(t1, t2) >= rho[i] or max(t1, t2) <= -rho[i]:
                    continue
                if abs(t2 - t1) > 1e-9 * rho[i]:
                    dens = abs(_inside_fraction(t2, rho[i]) - _inside_fraction(t1, rho[i])) / abs(
                        t2 - t1)
                else:
                    dens = 0.75 / rho[i] * max(0.0, 1.0 - (t1 / rho[i]) ** 2)
                g = s0 * dens * h
                if g <= 0:
                    continue
                s1 = s0v + _rz(sign * (a + (j + 0.5) * h)) @ r
                s1 = s1 / np.linalg.norm(s1)
                two_theta = math.acos(min(1.0, max(-1.0, s1[0])))
                perp = np.array([0.0, s1[1], s1[2]])
                if np.linalg.norm(perp) > 0:
                    cos_rho = perp @ e_pol / np.linalg.norm(perp)
                    cos2rho = 2 * cos_rho**2 - 1
                else:
                    cos2rho = 0.0
                pol = 0.5 * (1 + math.cos(two_theta) ** 2
                             - tau * cos2rho * math.sin(two_theta) ** 2)
                if s1 @ normal > 1e-6:
                    hit = s1 * dist / (s1 @ normal)
                    ps = (bx + (hit - origin) @ e_slow) / pxs
                    pf = (by + (hit - origin) @ e_fast) / pxf
                else:
                    ps = pf = np.nan
                out.append((i, k, ps, pf, g, pol))
    if not out:
        z = np.zeros(0)
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 2)), z, z
    arr = np.array(out, dtype=float)
    return (arr[:, 0].astype(np.int32), arr[:, 1].astype(np.int32), arr[:, 2:4], arr[:, 4],
            arr[:, 5])


def render_records_ref(img_start, pos, counts, sigma_slow, sigma_fast, half_width, shape):
    """Same as ``render_records`` into a new zero array of ``shape`` (n_img, nslow, nfast)."""
    out = np.zeros(shape)
    n_img, nslow, nfast = shape
    for k in range(n_img):
        for m in range(img_start[k], img_start[k + 1]):
            ps, pf = pos[m]
            if not (np.isfinite(ps) and np.isfinite(pf)):
                continue
            for i in range(max(0, math.floor(ps) - half_width),
                           min(nslow, math.floor(ps) + half_width + 1)):
                wi = 0.5 * (erf((i + 1 - ps) / (math.sqrt(2) * sigma_slow))
                            - erf((i - ps) / (math.sqrt(2) * sigma_slow)))
                for j in range(max(0, math.floor(pf) - half_width),
                               min(nfast, math.floor(pf) + half_width + 1)):
                    wj = 0.5 * (erf((j + 1 - pf) / (math.sqrt(2) * sigma_fast))
                                - erf((j - pf) / (math.sqrt(2) * sigma_fast)))
                    out[k, i, j] += counts[m] * wi * wj
    return out


def _mix(z: int) -> int:
    mask = (1 << 64) - 1
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def uniform_ref(key: int, n: int, j: int) -> float:
    """splitmix64 counter-based uniform of (key, pixel, draw) in (0, 1)."""
    z = _mix(int(key) + n * 0x9E3779B97F4A7C15 + j * 0xD1B54A32D192ED03)
    return ((z >> 11) + 0.5) / 2.0**53


def poisson_ref(lam: float, key: int, n: int) -> float:
    """Same Poisson algorithm as the kernel (sequential inversion / PTRS), in plain Python."""
    if lam <= 0:
        return 0.0
    if lam < 10:
        u = uniform_ref(key, n, 0)
        x, prob = 0, math.exp(-lam)
        cdf = prob
        while u > cdf and x < 200:
            x += 1
            prob *= lam / x
            cdf += prob
        return float(x)
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    j = 0
    while True:
        u = uniform_ref(key, n, j) - 0.5
        v = uniform_ref(key, n, j + 1)
        j += 2
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return float(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / us**2 + b) <= (
                -lam + k * loglam - math.lgamma(k + 1)):
            return float(k)


def detector_counts_ref(expected, shadow, transmission, invalid, key, poisson, gain, offset,
                        overload, read_noise=0.0):
    """Same as ``detector_counts``, returning a new int32 array."""
    out = np.zeros(expected.shape, dtype=np.int32)
    nslow, nfast = expected.shape
    for i in range(nslow):
        for j in range(nfast):
            if invalid[i, j]:
                out[i, j] = -1
                continue
            lam = expected[i, j] * (transmission if shadow[i, j] else 1.0)
            ph = poisson_ref(lam, key, i * nfast + j) if poisson else math.floor(lam + 0.5)
            val = gain * ph + offset
            if read_noise > 0:
                u1 = uniform_ref(key, i * nfast + j, 1 << 40)
                u2 = uniform_ref(key, i * nfast + j, (1 << 40) + 1)
                val = max(0.0, val + read_noise * math.sqrt(-2 * math.log(u1))
                          * math.cos(2 * math.pi * u2))
            out[i, j] = min(math.floor(val + 0.5), overload)
    return out


def render_domains_ref(r0, intensity, rot, prec, norm, s0, sign, phi_sub, dphi, det, oversample,
                       e_pol, tau, shape):
    """Same sums as ``render_domains`` but over EVERY pixel (no window, no cut-offs).

    Returns (images, acc_g, acc_c).  For each image, sub-step, domain and reflection the whole
    detector is evaluated with whole-array numpy: sub-pixel lab positions, the scattering vector
    ``q = s0 (s1 - x)``, its offset from the rotated lattice point taken back to phi = 0 with an
    explicit rotation matrix, the Gaussian blob, solid angle and Kahn polarisation.
    """
    n_img, nslow, nfast = shape
    origin, e_slow, e_fast, normal = det[0:3], det[3:6], det[6:9], det[9:12]
    bx, by, pxs, pxf = det[13:17]
    sub = (np.arange(oversample) + 0.5) / oversample
    slow = (np.arange(nslow)[:, None] + sub[None, :]).ravel()  # (nslow*os,)
    fast = (np.arange(nfast)[:, None] + sub[None, :]).ravel()
    xd = slow * pxs - bx
    yd = fast * pxf - by
    lab = origin + xd[:, None, None] * e_slow + yd[None, :, None] * e_fast
    ln = np.linalg.norm(lab, axis=2)
    s1 = lab / ln[..., None]
    d_omega = pxs * pxf / oversample**2 * (s1 @ normal) / ln**2
    cos2t = s1[..., 0]
    perp = np.hypot(s1[..., 1], s1[..., 2])
    cr = np.where(perp > 0, (s1[..., 1] * e_pol[1] + s1[..., 2] * e_pol[2]) / np.maximum(perp,
                                                                                         1e-300),
                  0.0)
    cos2rho = np.where(perp > 0, 2 * cr**2 - 1, 0.0)
    pol = 0.5 * (1 + cos2t**2 - tau * cos2rho * (1 - cos2t**2))
    q = s0 * (s1 - np.array([1.0, 0.0, 0.0]))
    n_dom = rot.shape[0]
    out = np.zeros(shape)
    acc_g = np.zeros((r0.shape[0], n_img))
    acc_c = np.zeros((r0.shape[0], n_img))
    for k in range(n_img):
        for phi in phi_sub[k]:
            rz = _rz(sign * phi)
            for d in range(n_dom):
                for i in range(r0.shape[0]):
                    r = rz @ rot[d] @ r0[i]
                    dq0 = (q - r) @ rz  # = (rz^T (q - r)^T)^T
                    quad = np.einsum("...i,ij,...j->...", dq0, prec[d], dq0)
                    w = norm * np.exp(-0.5 * quad) * d_omega * dphi * s0**3 / n_dom
                    wp = (w * pol).reshape(nslow, oversample, nfast, oversample).sum(axis=(1, 3))
                    out[k] += intensity[i] * wp
                    acc_g[i, k] += w.sum()
                    acc_c[i, k] += intensity[i] * wp.sum()
    return out, acc_g, acc_c
