"""The rocking-curve model: one place owns the width and shape of every reflection's curve in φ.

Every part of the program that needs a rocking width or a recorded fraction (prediction, MOSAIC
ESTIMATE, post-refinement, cell refinement, integration's FRACTIONCALC) calls these functions,
so the mosaic spread η and the mosaic-block width w_d mean the same thing everywhere.

The curve of a reflection in φ is the convolution of two broadenings (conventions.txt):

* the reflecting range of MOSFLM: the reciprocal-lattice point is a uniform ball whose diameter
  d*·(η + δ) + d*·tanθ·Δλ/λ grows with resolution (mosaic spread η, beam divergence δ,
  dispersion Δλ/λ; they add linearly as in MOSFLM).  Crossing the Ewald sphere at |s0|·|ζ| per
  radian it gives the full width W_b = λ·[d*(η + δ) + d* tanθ Δλ/λ]/|ζ| and the recorded
  fraction P(q) = 3q² − 2q³ (Rossmann 1979);
* the finite size t of the mosaic blocks: the shape transform of a block spreads every lattice
  point by about 1/t in reciprocal space whatever the resolution (Greenhough & Helliwell 1982;
  Nave 1998).  The shape transform of a block with soft (Gaussian-like) boundaries falls off
  smoothly; it is modelled as a Gaussian in φ of standard deviation σ = W_d/√20 with
  W_d = λ·w_d/|ζ|, so that w_d (1/Å) is the full width of the uniform ball with the same rms
  (the rms of the uniform-ball curve is W/√20).

The rms of the convolution is the quadrature sum of the two rms, sqrt(W_b² + W_d²)/√20.  The
shape matters for the split between η and w_d: fitted with a compact curve, the Gaussian tails
of low-resolution reflections (where the block term dominates) were read as a larger width,
and η and w_d moved against each other from one set of images to another (0.2 to 0.67° on the
same small-molecule crystal); with the Gaussian block term the splits agree within their esds.

The Gaussian is cut at ±:data:`BLOCK_TAIL` σ and the cumulative curve renormalised, so every
reflection has a finite extent (the images it is predicted on) and its fractions add up to 1.

References
----------
Rossmann, M. G. (1979). J. Appl. Cryst. 12, 225–238.
Greenhough, T. J. & Helliwell, J. R. (1982). J. Appl. Cryst. 15, 493–508.
Nave, C. (1998). Acta Cryst. D54, 848–853.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtr

BLOCK_TAIL = 2.0
"""The Gaussian (mosaic-block) part of the curve is cut at this many σ (2.3 % per side): parts
beyond carry little intensity but a whole image's background each."""

RMS_PER_WIDTH = 1.0 / np.sqrt(20.0)
"""rms of the uniform-ball curve per unit full width."""

_TAIL_WIDTH = 2.0 * BLOCK_TAIL * RMS_PER_WIDTH
"""Extent added per unit mosaic-block width W_d (the Gaussian cut at ±BLOCK_TAIL σ)."""


def rocking_widths(
    dstar: np.ndarray,
    zeta: np.ndarray,
    wavelength: float,
    mosaic: float,
    divergence: float = 0.0,
    dispersion: float = 0.0,
    domain_width: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The two broadenings of each reflection's rocking curve (degrees of φ).

    Parameters
    ----------
    dstar : |r| (1/Å).  zeta : m·(ŝ1 × ŝ0).  wavelength : Å.
    mosaic, divergence : full widths η, δ (degrees).  dispersion : Δλ/λ.
    domain_width : w_d, the reciprocal-space width from the mosaic-block size (1/Å).

    Returns
    -------
    ball, block : ndarray
        W_b, full width of the uniform-ball part (η, δ, dispersion), and W_d, the uniform-ball
        equivalent full width of the Gaussian block part (σ = W_d/√20).  Infinite where ζ = 0.
    """
    dstar = np.asarray(dstar, dtype=float)
    sin_t = np.clip(dstar * wavelength / 2.0, 0.0, 0.999999)
    tan_t = sin_t / np.sqrt(1.0 - sin_t**2)
    angular = dstar * np.radians(mosaic + divergence) + dstar * tan_t * dispersion
    with np.errstate(divide="ignore"):
        inv = 1.0 / np.abs(np.asarray(zeta, dtype=float))
    ball = np.degrees(angular * wavelength * inv)
    block = np.degrees(float(domain_width) * wavelength * inv) * np.ones_like(ball)
    return ball, block


def extent(ball: np.ndarray, block: np.ndarray | float = 0.0) -> np.ndarray:
    """Full φ extent of a curve (degrees): the ball width plus the Gaussian cut at ±BLOCK_TAIL σ."""
    return np.asarray(ball, dtype=float) + _TAIL_WIDTH * np.asarray(block, dtype=float)


def equivalent_width(width: np.ndarray, ball: np.ndarray | None = None) -> np.ndarray:
    """Full width (degrees) of the uniform-ball curve with the same rms as the curve of extent
    ``width`` and ball part ``ball`` (None: all ball): sqrt(W_b² + W_d²).  This is MOSFLM's
    rocking width, the one MAXWIDTH limits (the extent adds the Gaussian tails to ±2 σ)."""
    w = np.asarray(width, dtype=float)
    if ball is None:
        return w
    b = np.minimum(np.asarray(ball, dtype=float), w)
    with np.errstate(invalid="ignore"):
        block = np.maximum(w - b, 0.0) / _TAIL_WIDTH
        return np.where(np.isfinite(w), np.hypot(b, block), w)


def rocking_width(
    dstar: np.ndarray,
    zeta: np.ndarray,
    wavelength: float,
    mosaic: float,
    divergence: float = 0.0,
    dispersion: float = 0.0,
    domain_width: float = 0.0,
) -> np.ndarray:
    """Full φ extent W (degrees) of each reflection's rocking curve (:func:`extent` of
    :func:`rocking_widths`): the reflection is recorded on the images overlapping
    [φc − W/2, φc + W/2].  Without a block term it is MOSFLM's full reflecting width."""
    ball, block = rocking_widths(
        dstar, zeta, wavelength, mosaic, divergence, dispersion, domain_width
    )
    return extent(ball, block)


def cumulative_fraction(q: np.ndarray) -> np.ndarray:
    """P(q) = 3q² − 2q³ for q clipped to [0, 1]: the uniform-ball curve's cumulative fraction."""
    q = np.clip(q, 0.0, 1.0)
    return q * q * (3.0 - 2.0 * q)


def _ball_gauss_cdf(x: np.ndarray, h: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Cumulative fraction at offset x of the uniform-ball curve of half width h convolved with a
    Gaussian of standard deviation s (all > 0), in closed form.

    The ball's cumulative fraction on [−h, h] is the cubic B(y) = ½ + 3y/(4h) − y³/(4h³); with
    y = x + t, t ~ N(0, s²), F(x) = P(t > h − x) + Σ_k c_k(x) M_k where M_k = ∫ t^k φ_s(t) dt
    over [−h − x, h − x] (truncated-normal moments, M_k = (k−1)s² M_(k−2) + s²[t^(k−1) φ_s(t)]
    between the limits, reversed).
    """
    t1, t2 = -h - x, h - x
    z1, z2 = t1 / s, t2 / s
    p1 = np.exp(-0.5 * z1 * z1) / (s * np.sqrt(2.0 * np.pi))
    p2 = np.exp(-0.5 * z2 * z2) / (s * np.sqrt(2.0 * np.pi))
    s2 = s * s
    m0 = ndtr(z2) - ndtr(z1)
    m1 = s2 * (p1 - p2)
    m2 = s2 * m0 + s2 * (t1 * p1 - t2 * p2)
    m3 = 2.0 * s2 * m1 + s2 * (t1 * t1 * p1 - t2 * t2 * p2)
    a = 0.75 / h
    b = 0.25 / h**3
    c0 = 0.5 + a * x - b * x**3
    c1 = a - 3.0 * b * x * x
    c2 = -3.0 * b * x
    c3 = -b
    return (1.0 - ndtr(z2)) + c0 * m0 + c1 * m1 + c2 * m2 + c3 * m3


def cumulative_curve_exact(x: np.ndarray, ball: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Fraction of the rocking curve (ball width ``ball``, block width ``block``, degrees) that
    lies below the offset ``x`` (degrees) from its centre; 0 and 1 outside its extent.

    Closed form (:func:`_ball_gauss_cdf`), about 40 times slower than the ball alone; the
    program uses the table of it, :func:`cumulative_curve`."""
    x, ball, block = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(ball, float), np.asarray(block, float)
    )
    out = np.where(x > 0, 1.0, 0.0)
    sig = block * RMS_PER_WIDTH
    h = 0.5 * ball
    pure_ball = (ball > 1e-12) & (sig <= 1e-6 * ball)
    out = np.where(pure_ball, cumulative_fraction(x / np.where(pure_ball, ball, 1.0) + 0.5), out)
    has_g = (sig > 1e-6 * ball) & (sig > 1e-12)
    if np.any(has_g):
        xs, hs, ss = x[has_g], h[has_g], sig[has_g]
        e = hs + BLOCK_TAIL * ss
        gauss = hs <= 1e-3 * ss
        hh = np.where(gauss, 1.0, hs)

        def raw(u: np.ndarray) -> np.ndarray:
            return np.where(gauss, ndtr(u / ss), _ball_gauss_cdf(u, hh, ss))

        lo, hi = raw(-e), raw(e)
        val = (raw(np.clip(xs, -e, e)) - lo) / np.maximum(hi - lo, 1e-300)
        out[has_g] = np.clip(val, 0.0, 1.0)
    return out


_N_SHAPE, _N_OFFSET = 101, 401
"""Table of :func:`cumulative_curve`: ball share ρ = h/E of the half extent E (101 values on
[0, 1]) by offset t = x/E (401 values on [−1, 1]), single precision (160 kB: it stays in the
processor cache; the bilinear interpolation is memory-bound)."""


@lru_cache(maxsize=1)
def _cdf_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ρ, t, F) of the renormalised curve of half extent 1 (built once, 4·10⁴ closed forms)."""
    rho = np.linspace(0.0, 1.0, _N_SHAPE)
    t = np.linspace(-1.0, 1.0, _N_OFFSET)
    r2, t2 = np.meshgrid(rho, t, indexing="ij")
    ball = 2.0 * r2
    block = (1.0 - r2) / BLOCK_TAIL / RMS_PER_WIDTH
    f = cumulative_curve_exact(t2, ball, block)
    f[:, 0], f[:, -1] = 0.0, 1.0
    f = np.ascontiguousarray(f, dtype=np.float32)
    f.setflags(write=False)
    return rho, t, f


def cumulative_curve(x: np.ndarray, ball: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Fraction of the rocking curve (ball width ``ball``, block width ``block``, degrees) that
    lies below the offset ``x`` (degrees) from its centre; 0 and 1 outside its extent.

    Bilinear interpolation in the table of :func:`cumulative_curve_exact` (the curve depends
    only on x/E and the ball's share of E, E the half extent): within 2·10⁻⁵ of the closed form
    and as fast as the ball alone (the closed form made integration several times slower)."""
    x, ball, block = np.broadcast_arrays(
        np.asarray(x, float), np.asarray(ball, float), np.asarray(block, float)
    )
    x0 = x
    half = 0.5 * ball + BLOCK_TAIL * RMS_PER_WIDTH * block
    ok = np.isfinite(half) & (half > 1e-12) & np.isfinite(x)
    safe = np.where(ok, half, 1.0)
    ball = np.where(ok, ball, 0.0)
    x = np.where(ok, x, 0.0)
    f = _cdf_table()[2].ravel()  # flat indexing: a 2-D fancy gather is 20 times slower
    fi = np.minimum(np.maximum(0.5 * ball / safe, 0.0), 1.0) * (_N_SHAPE - 1)
    i0 = np.minimum(fi.astype(np.int64), _N_SHAPE - 2)
    wi = fi - i0
    fj = (np.minimum(np.maximum(x / safe, -1.0), 1.0) + 1.0) * (0.5 * (_N_OFFSET - 1))
    j0 = np.minimum(fj.astype(np.int64), _N_OFFSET - 2)
    wj = fj - j0
    k = i0 * _N_OFFSET + j0
    v = (1.0 - wi) * ((1.0 - wj) * f[k] + wj * f[k + 1]) + wi * (
        (1.0 - wj) * f[k + _N_OFFSET] + wj * f[k + _N_OFFSET + 1]
    )
    return np.where(ok, v, np.where(x0 > 0, 1.0, 0.0))


def curve_density(x: np.ndarray, width: np.ndarray, ball: np.ndarray | None = None) -> np.ndarray:
    """Density (per degree) of the rocking curve at offset ``x`` (degrees) from its centre.

    ``width`` is the extent and ``ball`` its uniform-ball part as in :func:`fraction_on_image`
    (None: all ball, density 6q(1 − q)/W).  Central difference of :func:`cumulative_curve`.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(width, dtype=float)
    safe = np.where(np.isfinite(w) & (w > 1e-9), w, 1.0)
    if ball is None:
        q = np.clip(x / safe + 0.5, 0.0, 1.0)
        return np.where(w > 1e-9, 6.0 * q * (1.0 - q) / safe, 0.0)
    b = np.minimum(np.where(np.isfinite(w), np.asarray(ball, dtype=float), 0.0), safe)
    block = np.maximum(safe - b, 0.0) / _TAIL_WIDTH
    h = 1e-3 * safe
    dens = (cumulative_curve(x + h, b, block) - cumulative_curve(x - h, b, block)) / (2.0 * h)
    return np.where(np.isfinite(w) & (w > 1e-9), dens, 0.0)


def fraction_on_image(
    phi_c: np.ndarray,
    width: np.ndarray,
    phi1: float | np.ndarray,
    phi2: float | np.ndarray,
    ball: np.ndarray | None = None,
) -> np.ndarray:
    """Fraction of each reflection recorded between φ1 and φ2 (degrees).

    Parameters
    ----------
    phi_c : centre of each rocking curve (deg).
    width : full extent W of each curve (deg; :func:`rocking_width`).
    phi1, phi2 : the image's φ range (deg).
    ball : the uniform-ball part W_b of each width (:func:`rocking_widths`); None when the whole
        extent is the uniform ball (no mosaic-block term).  The block part is recovered from
        the extent (:func:`extent`).

    A reflection with zero width is wholly on the image containing its centre.
    """
    phi_c = np.asarray(phi_c, dtype=float)
    w = np.asarray(width, dtype=float)
    if ball is None:
        safe = np.where(w > 1e-9, w, 1.0)
        f = cumulative_fraction((phi2 - phi_c) / safe + 0.5) - cumulative_fraction(
            (phi1 - phi_c) / safe + 0.5
        )
    else:
        fin = np.isfinite(w)
        wf = np.where(fin, w, 0.0)
        b = np.minimum(np.where(fin, np.asarray(ball, dtype=float), 0.0), wf)
        block = np.maximum(wf - b, 0.0) / _TAIL_WIDTH
        f = cumulative_curve(phi2 - phi_c, b, block) - cumulative_curve(phi1 - phi_c, b, block)
        f = np.where(fin, f, 0.0)
    inside = (phi_c >= phi1) & (phi_c < phi2)
    return np.where(w > 1e-9, f, inside.astype(float))


__all__ = [
    "BLOCK_TAIL",
    "cumulative_curve",
    "cumulative_curve_exact",
    "cumulative_fraction",
    "curve_density",
    "equivalent_width",
    "extent",
    "fraction_on_image",
    "rocking_width",
    "rocking_widths",
]
