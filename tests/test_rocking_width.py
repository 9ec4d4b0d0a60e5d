"""The rocking-width model with a mosaic-block term, and post-refinement of η and block width.

Synthetic data from the uniform-ball model itself (known truth): post-refinement started from
η = 0.1° and from η = 1.0° must reach the true η within 10 % and the block width within 15 %;
the width term must scale as 1/|ζ| and not with d*, and the rms of the curve (uniform ball
convolved with the block Gaussian) be the quadrature sum of the two.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import predict
from mosflm_py.geometry.rocking_curve import (
    extent,
    fraction_on_image,
    rocking_width,
    rocking_widths,
)
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.mosaic import rocking_width_from_partials
from mosflm_py.refinement import PartialObservations, PostrefParams, postrefine


def test_block_term_does_not_grow_with_resolution():
    zeta = np.array([0.3, 0.3])
    dstar = np.array([0.1, 0.4])
    w_eta, b0 = rocking_widths(dstar, zeta, 1.0, 0.5)
    ball, w_blk = rocking_widths(dstar, zeta, 1.0, 0.0, domain_width=2e-3)
    assert np.isclose(w_eta[1] / w_eta[0], 4.0)  # angular term ∝ d*
    assert np.allclose(b0, 0.0) and np.allclose(ball, 0.0)
    assert np.allclose(w_blk, np.degrees(2e-3 / 0.3))  # block term: λ w_d / |ζ|, any d*
    # the extent holds the Gaussian block term to ±2 σ (σ = W_d/√20)
    both = rocking_width(dstar, zeta, 1.0, 0.5, domain_width=2e-3)
    assert np.allclose(both, w_eta + 4.0 * w_blk / np.sqrt(20.0))


def test_curve_is_the_convolution_and_its_rms_adds_in_quadrature():
    """Fractions on fine slices: they add up to 1, the curve is centred, and its rms is the
    quadrature sum of the uniform-ball rms W_b/√20 and the Gaussian σ = W_d/√20 (up to the
    cut at the extent, which removes at most 4.6 % of the Gaussian and 23 % of its variance)."""
    edges = np.linspace(-3.0, 3.0, 3001)
    mid = 0.5 * (edges[1:] + edges[:-1])
    n = len(mid)
    for ball, block in ((0.8, 0.0), (0.0, 0.6), (0.5, 0.6), (1.2, 0.2)):
        w = float(np.asarray(extent(ball, block)))
        f = fraction_on_image(np.full(n, 0.01), np.full(n, w), edges[:-1], edges[1:],
                              np.full(n, ball))
        assert abs(f.sum() - 1.0) < 1e-9
        assert abs(np.sum(f * mid) - 0.01) < 1e-4
        var = np.sum(f * (mid - 0.01) ** 2)
        # a Gaussian cut at ±2 σ keeps 0.774 of its variance (truncated-normal variance);
        # the convolution is cut further out, so it keeps more
        lo, hi = (ball**2 + 0.774 * block**2) / 20.0, (ball**2 + block**2) / 20.0
        assert 0.99 * lo - 1e-7 <= var <= 1.01 * hi + 1e-7, (ball, block, var, lo, hi)
        assert np.all(f[np.abs(mid - 0.01) > 0.5 * w + 0.002] == 0.0)


def _observations(exp, starts, osc, nimg, d_min, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for s0 in starts:
        p = predict(exp, s0, s0 + osc * nimg, d_min=d_min)
        inten = rng.uniform(500.0, 8000.0, len(p))
        for k in range(nimg):
            a, b = s0 + k * osc, s0 + (k + 1) * osc
            f = fraction_on_image(p.phi, p.width, a, b, p.ball)
            m = (p.phi + p.width > a) & (p.phi - p.width < b)
            iobs = inten[m] * f[m]
            sig = np.sqrt(iobs + 50.0)
            parts.append(PartialObservations(p.hkl[m], np.full(m.sum(), k), np.full(m.sum(), a),
                                             np.full(m.sum(), b),
                                             iobs + rng.normal(0, 1, m.sum()) * sig, sig))
    return PartialObservations.concatenate(parts)


def _truth():
    cr = Crystal((61.3, 72.8, 90.4, 90, 90, 90), U=rot_axis((1, 2, 3), 37.0),
                 space_group="P 21 21 21", mosaic=0.35, domain_width=2.5e-3)
    det = Detector(150.0, 88.0, 88.0, 0.172, 0.172, 1024, 1024)
    return Experiment(Beam(0.9795), det, crystal=cr)


def test_postrefinement_converges_from_small_and_large_mosaic():
    truth = _truth()
    obs = _observations(truth, (0.0, 90.0), 0.2, 8, 2.0, 3)
    got = []
    for eta0 in (0.1, 1.0):
        start = truth.replace(crystal=truth.crystal.replace(mosaic=eta0, domain_width=0.0))
        res = postrefine(start, obs, PostrefParams())
        got.append(res.values["MOSAIC"])
        assert abs(res.values["MOSAIC"] - 0.35) < 0.1 * 0.35, res.values
        assert abs(res.values["BLOCKSIZE"] - 2.5e-3) < 0.15 * 2.5e-3, res.values
        assert res.rms_fraction < 0.05
    assert abs(got[0] - got[1]) < 0.1 * max(got)


def test_rocking_width_from_partials_with_orientation_off():
    truth = _truth()
    obs = _observations(truth, (10.0,), 0.2, 10, 2.0, 4)
    cr = truth.crystal
    off = tuple(m + d for m, d in zip(cr.missets, (0.0, 0.2, -0.2)))
    start = truth.replace(crystal=cr.replace(mosaic=1.2, domain_width=0.0, missets=off))
    w = rocking_width_from_partials(start, obs)
    assert abs(w.mosaic - 0.35) < 0.1 * 0.35
    assert abs(w.domain_width - 2.5e-3) < 0.15 * 2.5e-3
    assert w.n_reflections > 50


def test_tabulated_curve_matches_the_closed_form():
    """The program's cumulative curve (bilinear table) is within 3e-5 of the closed form of the
    ball convolved with the Gaussian, and the closed form within 1e-8 of a direct numerical
    convolution."""
    from scipy.special import ndtr

    from mosflm_py.geometry.rocking_curve import cumulative_curve, cumulative_curve_exact

    rng = np.random.default_rng(7)
    n = 20000
    ball = rng.uniform(0.0, 1.5, n)
    block = rng.uniform(0.0, 1.0, n)
    ball[:500], block[500:1000] = 0.0, 0.0
    x = rng.uniform(-1.5, 1.5, n)
    assert np.max(np.abs(cumulative_curve(x, ball, block)
                         - cumulative_curve_exact(x, ball, block))) < 3e-5
    u = np.linspace(-0.4, 0.4, 40001)
    dens = 1.5 / 0.8 * (1.0 - (u / 0.4) ** 2) * (u[1] - u[0])
    sig = 0.5 / np.sqrt(20.0)
    half = 0.4 + 2.0 * sig
    for xx in (-0.5, -0.1, 0.0, 0.3):
        raw = [np.sum(dens * ndtr((v - u) / sig)) for v in (xx, -half, half)]
        want = (raw[0] - raw[1]) / (raw[2] - raw[1])
        assert abs(cumulative_curve_exact(np.array([xx]), 0.8, 0.5)[0] - want) < 1e-6
