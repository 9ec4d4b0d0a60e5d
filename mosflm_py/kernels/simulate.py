"""numba kernels of the rotation-image simulator (wrappers: :mod:`mosflm_py.simulate.render`).

Two stages:

1. :func:`sweep_records` walks every reflection through the rotation in fine phi sub-steps and
   emits one *record* per sub-step in which its mosaic ball cuts the Ewald sphere: the image
   index, the detector position (continuous pixel coordinates) of the diffracted-ray direction at
   the sub-step's middle, the Lorentz-weighted swept fraction ``g`` and the polarisation factor.
2. :func:`render_records` spreads each record's counts over the pixels with a Gaussian
   point-spread function integrated exactly over each pixel's area (erf differences), one image
   per parallel iteration, so no two threads write the same pixel.

Physics (conventions.txt): a reflection is a uniformly filled ball of radius ``rho`` centred on
``r(phi) = Rz(sign*phi) r0``.  With ``t = |s0 + r| - |s0|`` the signed distance of its centre
from the Ewald sphere, the fraction of the ball already inside the sphere is
``F(t) = q^2 (3 - 2q)``, ``q = clip((rho - t) / (2 rho), 0, 1)``, whose density
``dF/dt = 3/(4 rho) (1 - (t/rho)^2)`` is the swept-ball rocking curve (Rossmann 1979).  The counts
collected while phi turns by ``dphi`` are ``I P |s0| (dF/dt) dphi``; integrated over the crossing
this gives ``I P / |zeta|`` because ``dt/dphi = |s0| zeta``: the Lorentz factor is not put in, it
comes out of the sweep.  Over a sub-step the mean density is ``|F(t2) - F(t1)| / |t2 - t1|`` (exact
when ``t`` is linear over the sub-step), so steep edges of the ball are integrated exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from mosflm_py.kernels._jit import jit


@jit
def _cap_fraction(t: float, rho: float) -> float:
    """Fraction of a uniform ball (radius ``rho``) inside the sphere, its centre at ``t``."""
    q = (rho - t) / (2.0 * rho)
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    return q * q * (3.0 - 2.0 * q)


@jit
def _dist(r0x: float, r0y: float, r0z: float, c: float, s: float, s0: float) -> float:
    """Signed distance of ``Rz r0`` (rotation cosine ``c``, sine ``s``) from the Ewald sphere."""
    x = c * r0x - s * r0y + s0
    y = s * r0x + c * r0y
    return math.sqrt(x * x + y * y + r0z * r0z) - s0


@jit
def _walk(
    i: int,
    r0: np.ndarray,
    rho: np.ndarray,
    s0: float,
    sign: float,
    phi_edges: np.ndarray,
    steps_per_width: int,
    min_steps_per_image: int,
    det: np.ndarray,
    e_pol: np.ndarray,
    tau: float,
    write: bool,
    offset: int,
    out_refl: np.ndarray,
    out_img: np.ndarray,
    out_pos: np.ndarray,
    out_g: np.ndarray,
    out_pol: np.ndarray,
) -> int:
    """Walk reflection ``i`` through all images; count (and if ``write``, store) its records."""
    rx = r0[i, 0]
    ry = r0[i, 1]
    rz = r0[i, 2]
    rh = rho[i]
    rperp = math.sqrt(rx * rx + ry * ry)
    n = 0
    if rperp <= 0.0 or rh <= 0.0:
        return 0
    # |dt/dphi| <= rperp, so a step of 2 rho / (steps * rperp) resolves the rocking width W.
    h_width = 2.0 * rh / (steps_per_width * rperp)
    n_img = phi_edges.shape[0] - 1
    pa = sign * phi_edges[0]
    ta = _dist(rx, ry, rz, math.cos(pa), math.sin(pa), s0)
    for k in range(n_img):
        a = phi_edges[k]
        b = phi_edges[k + 1]
        pb = sign * b
        tb = _dist(rx, ry, rz, math.cos(pb), math.sin(pb), s0)
        span = b - a
        # Lipschitz test: t cannot reach the ball on this image.
        if ta * tb > 0.0 and 0.5 * (abs(ta) + abs(tb) - rperp * span) > rh:
            ta = tb
            continue
        nsub = max(min_steps_per_image, int(math.ceil(span / h_width)))
        h = span / nsub
        t1 = ta
        for j in range(nsub):
            p2 = sign * (a + (j + 1) * h)
            if j == nsub - 1:
                t2 = tb
            else:
                t2 = _dist(rx, ry, rz, math.cos(p2), math.sin(p2), s0)
            if (t1 >= rh and t2 >= rh) or (t1 <= -rh and t2 <= -rh):
                t1 = t2
                continue
            dt = t2 - t1
            if abs(dt) > 1e-9 * rh:
                dens = abs(_cap_fraction(t2, rh) - _cap_fraction(t1, rh)) / abs(dt)
            else:
                u = t1 / rh
                dens = 0.75 / rh * max(0.0, 1.0 - u * u)
            g = s0 * dens * h
            t1 = t2
            if g <= 0.0:
                continue
            if write:
                pm = sign * (a + (j + 0.5) * h)
                c = math.cos(pm)
                s = math.sin(pm)
                sx = c * rx - s * ry + s0
                sy = s * rx + c * ry
                sz = rz
                norm = math.sqrt(sx * sx + sy * sy + sz * sz)
                sx /= norm
                sy /= norm
                sz /= norm
                # polarisation (Kahn et al. 1982)
                cos2t = sx
                sin2t_sq = max(0.0, 1.0 - cos2t * cos2t)
                perp = math.sqrt(sy * sy + sz * sz)
                if perp > 0.0:
                    cr = (sy * e_pol[1] + sz * e_pol[2]) / perp
                    cos2rho = 2.0 * cr * cr - 1.0
                else:
                    cos2rho = 0.0
                pol = 0.5 * (1.0 + cos2t * cos2t - tau * cos2rho * sin2t_sq)
                # ray / detector-plane intersection; det = [O(3), e_slow(3), e_fast(3), n(3),
                # D, beam_x, beam_y, pixel_slow, pixel_fast]
                dn = sx * det[9] + sy * det[10] + sz * det[11]
                ps = np.nan
                pf = np.nan
                if dn > 1e-6:
                    mu = det[12] / dn
                    qx = mu * sx - det[0]
                    qy = mu * sy - det[1]
                    qz = mu * sz - det[2]
                    xd = det[13] + qx * det[3] + qy * det[4] + qz * det[5]
                    yd = det[14] + qx * det[6] + qy * det[7] + qz * det[8]
                    ps = xd / det[15]
                    pf = yd / det[16]
                m = offset + n
                out_refl[m] = i
                out_img[m] = k
                out_pos[m, 0] = ps
                out_pos[m, 1] = pf
                out_g[m] = g
                out_pol[m] = pol
            n += 1
        ta = tb
    return n


@jit(parallel=True)
def sweep_records(
    r0: np.ndarray,
    rho: np.ndarray,
    s0: float,
    sign: float,
    phi_edges: np.ndarray,
    steps_per_width: int,
    min_steps_per_image: int,
    det: np.ndarray,
    e_pol: np.ndarray,
    tau: float,
):
    """Sub-step every reflection through the sweep and return its records.

    Parameters
    ----------
    r0 : (N, 3) float64
        Reciprocal-lattice vectors at phi = 0 (1/Angstrom), ``M U B h``.
    rho : (N,) float64
        Mosaic-ball radii (1/Angstrom).
    s0 : float
        ``1 / wavelength`` (1/Angstrom).
    sign : float
        +1 for rotation about +Z, -1 for REVERSEPHI.
    phi_edges : (n_img + 1,) float64
        Image phi boundaries (radians), increasing.
    steps_per_width, min_steps_per_image : int
        Sub-steps per rocking width (lower bound) and per image.
    det : (17,) float64
        Detector description, see ``_walk``.
    e_pol : (3,) float64
        Unit electric vector of the incident beam.
    tau : float
        Degree of polarisation.

    Returns
    -------
    refl, img : int32 arrays; pos (M, 2) float64 (slow, fast pixels); g, pol : float64 arrays.
    """
    n_refl = r0.shape[0]
    counts = np.zeros(n_refl, dtype=np.int64)
    d_i = np.zeros(0, dtype=np.int32)
    d_p = np.zeros((0, 2), dtype=np.float64)
    d_f = np.zeros(0, dtype=np.float64)
    for i in prange(n_refl):
        counts[i] = _walk(i, r0, rho, s0, sign, phi_edges, steps_per_width,
                          min_steps_per_image, det, e_pol, tau, False, 0,
                          d_i, d_i, d_p, d_f, d_f)
    offsets = np.zeros(n_refl + 1, dtype=np.int64)
    for i in range(n_refl):
        offsets[i + 1] = offsets[i] + counts[i]
    total = offsets[n_refl]
    out_refl = np.empty(total, dtype=np.int32)
    out_img = np.empty(total, dtype=np.int32)
    out_pos = np.empty((total, 2), dtype=np.float64)
    out_g = np.empty(total, dtype=np.float64)
    out_pol = np.empty(total, dtype=np.float64)
    for i in prange(n_refl):
        if counts[i] > 0:
            _walk(i, r0, rho, s0, sign, phi_edges, steps_per_width, min_steps_per_image,
                  det, e_pol, tau, True, offsets[i], out_refl, out_img, out_pos, out_g, out_pol)
    return out_refl, out_img, out_pos, out_g, out_pol


@jit
def _erf_weights(c: float, lo: int, hi: int, inv: float, w: np.ndarray) -> None:
    """Fill ``w[k]`` with the Gaussian mass in pixel ``lo + k`` (cell [p, p+1)), centre ``c``."""
    prev = math.erf((lo - c) * inv)
    for k in range(hi - lo):
        nxt = math.erf((lo + k + 1 - c) * inv)
        w[k] = 0.5 * (nxt - prev)
        prev = nxt


@jit(parallel=True)
def render_records(
    img_start: np.ndarray,
    pos: np.ndarray,
    counts: np.ndarray,
    sigma_slow: float,
    sigma_fast: float,
    half_width: int,
    out: np.ndarray,
) -> None:
    """Add Gaussian spots to ``out`` (n_img, nslow, nfast), records grouped by image.

    Records ``img_start[k]:img_start[k+1]`` belong to image ``k``; ``pos`` is the (slow, fast)
    continuous pixel position, ``counts`` the expected photons.  Each pixel receives the exact
    integral of the normalised 2-D Gaussian over its area; pixels outside the array are dropped.
    """
    n_img = out.shape[0]
    nslow = out.shape[1]
    nfast = out.shape[2]
    inv_s = 1.0 / (math.sqrt(2.0) * sigma_slow)
    inv_f = 1.0 / (math.sqrt(2.0) * sigma_fast)
    for k in prange(n_img):
        ws = np.empty(2 * half_width + 2, dtype=np.float64)
        wf = np.empty(2 * half_width + 2, dtype=np.float64)
        for m in range(img_start[k], img_start[k + 1]):
            ps = pos[m, 0]
            pf = pos[m, 1]
            if not (ps == ps and pf == pf):
                continue
            i0 = max(0, int(math.floor(ps)) - half_width)
            i1 = min(nslow, int(math.floor(ps)) + half_width + 1)
            j0 = max(0, int(math.floor(pf)) - half_width)
            j1 = min(nfast, int(math.floor(pf)) + half_width + 1)
            if i0 >= i1 or j0 >= j1:
                continue
            _erf_weights(ps, i0, i1, inv_s, ws)
            _erf_weights(pf, j0, j1, inv_f, wf)
            c = counts[m]
            for a in range(i1 - i0):
                ca = c * ws[a]
                for b in range(j1 - j0):
                    out[k, i0 + a, j0 + b] += ca * wf[b]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_DRAW = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_READ_DRAW = np.uint64(1 << 40)


@jit
def _uniform(key: np.uint64, n: np.uint64, j: np.uint64) -> float:
    """Counter-based uniform deviate in (0, 1): splitmix64 finaliser of (key, pixel n, draw j)."""
    z = key + n * _GOLDEN + j * _DRAW
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return (float(z >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@jit
def _poisson(lam: float, key: np.uint64, n: np.uint64) -> float:
    """Poisson deviate with mean ``lam``: inversion by sequential search below 10, else PTRS
    (Hoermann 1993, as in numpy), using the counter-based stream of pixel ``n``."""
    if lam <= 0.0:
        return 0.0
    j = np.uint64(0)
    if lam < 10.0:
        u = _uniform(key, n, j)
        x = 0.0
        prob = math.exp(-lam)
        cdf = prob
        while u > cdf and x < 200.0:
            x += 1.0
            prob *= lam / x
            cdf += prob
        return x
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = _uniform(key, n, j) - 0.5
        v = _uniform(key, n, j + np.uint64(1))
        j += np.uint64(2)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)) <= (
                -lam + k * loglam - math.lgamma(k + 1.0)):
            return k


@jit(parallel=True)
def detector_counts(
    expected: np.ndarray,
    shadow: np.ndarray,
    transmission: float,
    invalid: np.ndarray,
    key: np.uint64,
    poisson: bool,
    gain: float,
    offset: float,
    overload: float,
    out: np.ndarray,
    read_noise: float = 0.0,
) -> None:
    """Expected photons (nslow, nfast) -> int32 ADU frame ``out``.

    Photons are Poisson deviates (or the rounded mean) of ``expected`` (times ``transmission`` in
    the ``shadow`` mask), from a counter-based generator keyed by ``key`` so the result does not
    depend on threads or batching; ADU = rint(gain * photons + offset) clipped to ``overload``;
    ``invalid`` pixels are -1.
    """
    nslow, nfast = expected.shape
    for i in prange(nslow):
        for jf in range(nfast):
            if invalid[i, jf]:
                out[i, jf] = -1
                continue
            lam = expected[i, jf]
            if shadow[i, jf]:
                lam *= transmission
            if poisson:
                ph = _poisson(lam, key, np.uint64(i * nfast + jf))
            else:
                ph = math.floor(lam + 0.5)
            val = gain * ph + offset
            if read_noise > 0.0:
                nn = np.uint64(i * nfast + jf)
                u1 = _uniform(key, nn, _READ_DRAW)
                u2 = _uniform(key, nn, _READ_DRAW + np.uint64(1))
                val += read_noise * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
                if val < 0.0:
                    val = 0.0
            adu = math.floor(val + 0.5)
            if adu > overload:
                adu = overload
            out[i, jf] = np.int32(adu)


@jit
def _blob_quad(dx: float, dy: float, dz: float, prec: np.ndarray, d: int) -> float:
    """``dq^T P_d dq`` for the domain-``d`` precision matrix ``prec[d]`` (3x3)."""
    return (prec[d, 0, 0] * dx * dx + prec[d, 1, 1] * dy * dy + prec[d, 2, 2] * dz * dz
            + 2.0 * (prec[d, 0, 1] * dx * dy + prec[d, 0, 2] * dx * dz + prec[d, 1, 2] * dy * dz))


@jit(parallel=True)
def render_domains(
    r0: np.ndarray,
    intensity: np.ndarray,
    rot: np.ndarray,
    prec: np.ndarray,
    norm: float,
    quad_cut: float,
    t_cut: float,
    lateral: float,
    s0: float,
    sign: float,
    phi_sub: np.ndarray,
    dphi: float,
    det: np.ndarray,
    oversample: int,
    max_half: int,
    e_pol: np.ndarray,
    tau: float,
    out: np.ndarray,
    acc_g: np.ndarray,
    acc_c: np.ndarray,
) -> None:
    """nanoBragg-like rendering: discrete mosaic domains with Gaussian reciprocal-space blobs.

    For image ``k``, rotation sub-step ``j`` (spindle angle ``phi_sub[k, j]``, radians, each
    standing for ``dphi`` radians of rotation) and mosaic domain ``d`` (rotation ``rot[d]``,
    weight ``1 / n_domains``), reflection ``i`` sits at ``r = Rz(sign phi) rot[d] r0[i]``; every
    detector pixel (sampled at ``oversample^2`` sub-pixel centres) within reach of the ray through
    ``r`` receives

        ``I_i * P * rho(q - r) * dOmega * dphi * s0^3 / n_domains``,

    with ``q = s0 (s1 - x)`` the scattering vector of the pixel, ``rho(dq) = norm exp(-dq0^T
    prec[d] dq0 / 2)`` the normalised Gaussian domain transform (``dq0`` rotated back to phi = 0),
    ``dOmega`` the (sub-)pixel solid angle and ``P`` the Kahn polarisation factor.  Because the
    volume element of reciprocal space swept by the sphere is ``dV = dOmega dphi |zeta| s0^3``,
    the counts of a whole crossing integrate to ``I P / |zeta|`` (the same intensity definition
    as :func:`sweep_records`) whatever the domain size and mosaic, as long as the blob is sampled
    finely enough in phi and on the detector.  This is the per-pixel scheme of nanoBragg (Holton,
    simtbx/nanoBragg, ``-gauss_xtal -mosaic_domains -phisteps``), evaluated only near spots.

    Parameters
    ----------
    r0 : (N, 3) reciprocal vectors at phi = 0 (1/A).  intensity : (N,) I_true (photons).
    rot : (D, 3, 3) domain rotations.  prec : (D, 3, 3) blob precision matrices at phi = 0
        (A^2), ``rot[d] P0 rot[d]^T``.  norm : ``sqrt(det P0) / (2 pi)^1.5`` (A^3).
    quad_cut : pixels with ``dq^T P dq`` above it are skipped.  t_cut : blobs whose centre is
        farther than this from the Ewald sphere (1/A) are skipped.  lateral : radius (1/A) of a
        ball around r holding the blob out to ``quad_cut``; with the centre's distance ``t``
        from the sphere it sets the pixel window.
    s0 : 1/lambda.  sign : +1, or -1 for REVERSEPHI.  phi_sub : (n_img, S) radians.
    dphi : radians per sub-step.  det : packed detector (see ``_walk``).
    oversample : sub-pixels per pixel edge.  max_half : largest pixel half-window.
    e_pol, tau : polarisation.
    out : (n_img, nslow, nfast) expected photons, added to.
    acc_g, acc_c : (N, n_img) per reflection and image: ``sum rho dOmega dphi s0^3 / D``
        (Lorentz-weighted fraction, sums to ``1/|zeta|`` over a crossing) and the counts.
    """
    n_img = out.shape[0]
    nslow = out.shape[1]
    nfast = out.shape[2]
    n_refl = r0.shape[0]
    n_dom = rot.shape[0]
    n_sub = phi_sub.shape[1]
    w_dom = 1.0 / n_dom
    s03 = s0 * s0 * s0
    px_s = det[15]
    px_f = det[16]
    inv_os = 1.0 / oversample
    d_area = px_s * px_f * inv_os * inv_os
    for k in prange(n_img):
        for j in range(n_sub):
            ph = sign * phi_sub[k, j]
            c = math.cos(ph)
            s = math.sin(ph)
            for d in range(n_dom):
                for i in range(n_refl):
                    ax = rot[d, 0, 0] * r0[i, 0] + rot[d, 0, 1] * r0[i, 1] + rot[d, 0, 2] * r0[i, 2]
                    ay = rot[d, 1, 0] * r0[i, 0] + rot[d, 1, 1] * r0[i, 1] + rot[d, 1, 2] * r0[i, 2]
                    az = rot[d, 2, 0] * r0[i, 0] + rot[d, 2, 1] * r0[i, 1] + rot[d, 2, 2] * r0[i, 2]
                    rx = c * ax - s * ay
                    ry = s * ax + c * ay
                    rz = az
                    sx = rx + s0
                    sn = math.sqrt(sx * sx + ry * ry + rz * rz)
                    if abs(sn - s0) > t_cut:
                        continue
                    ux = sx / sn
                    uy = ry / sn
                    uz = rz / sn
                    dn = ux * det[9] + uy * det[10] + uz * det[11]
                    if dn < 1e-3:
                        continue
                    mu = det[12] / dn
                    qx = mu * ux - det[0]
                    qy = mu * uy - det[1]
                    qz = mu * uz - det[2]
                    ps = (det[13] + qx * det[3] + qy * det[4] + qz * det[5]) / px_s
                    pf = (det[14] + qx * det[6] + qy * det[7] + qz * det[8]) / px_f
                    # the blob (within ``lateral`` of r) meets the sphere within a cap of chord
                    # radius sqrt(lateral^2 - t^2); a lateral step dq turns the ray by dq/s0 rad,
                    # i.e. mu dq/(s0 dn) mm on the detector plane
                    tt = sn - s0
                    lat = math.sqrt(max(0.0, lateral * lateral - tt * tt))
                    half = int(math.ceil(mu * lat / (s0 * dn) / min(px_s, px_f))) + 1
                    if half > max_half:
                        half = max_half
                    i0 = max(0, int(math.floor(ps)) - half)
                    i1 = min(nslow, int(math.floor(ps)) + half + 1)
                    j0 = max(0, int(math.floor(pf)) - half)
                    j1 = min(nfast, int(math.floor(pf)) + half + 1)
                    if i0 >= i1 or j0 >= j1:
                        continue
                    g_sum = 0.0
                    c_sum = 0.0
                    for a in range(i0, i1):
                        for b in range(j0, j1):
                            pix = 0.0
                            pix_g = 0.0
                            for u in range(oversample):
                                xd = (a + (u + 0.5) * inv_os) * px_s - det[13]
                                for v in range(oversample):
                                    yd = (b + (v + 0.5) * inv_os) * px_f - det[14]
                                    lx = det[0] + xd * det[3] + yd * det[6]
                                    ly = det[1] + xd * det[4] + yd * det[7]
                                    lz = det[2] + xd * det[5] + yd * det[8]
                                    ln = math.sqrt(lx * lx + ly * ly + lz * lz)
                                    ex = lx / ln
                                    ey = ly / ln
                                    ez = lz / ln
                                    # dq = s0 (s1 - x) - r, rotated back to phi = 0
                                    qx1 = s0 * (ex - 1.0) - rx
                                    qy1 = s0 * ey - ry
                                    qz1 = s0 * ez - rz
                                    dx = c * qx1 + s * qy1
                                    dy = -s * qx1 + c * qy1
                                    quad = _blob_quad(dx, dy, qz1, prec, d)
                                    if quad > quad_cut:
                                        continue
                                    cosn = ex * det[9] + ey * det[10] + ez * det[11]
                                    w = (norm * math.exp(-0.5 * quad) * d_area * cosn
                                         / (ln * ln) * dphi * s03 * w_dom)
                                    # polarisation (Kahn et al. 1982), as in _walk
                                    sin2t_sq = max(0.0, 1.0 - ex * ex)
                                    perp = math.sqrt(ey * ey + ez * ez)
                                    if perp > 0.0:
                                        cr = (ey * e_pol[1] + ez * e_pol[2]) / perp
                                        cos2rho = 2.0 * cr * cr - 1.0
                                    else:
                                        cos2rho = 0.0
                                    pol = 0.5 * (1.0 + ex * ex - tau * cos2rho * sin2t_sq)
                                    pix_g += w
                                    pix += w * pol
                            if pix_g > 0.0:
                                out[k, a, b] += intensity[i] * pix
                                g_sum += pix_g
                                c_sum += intensity[i] * pix
                    acc_g[i, k] += g_sum
                    acc_c[i, k] += c_sum
