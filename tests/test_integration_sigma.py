"""σ(I) calibration against known truth: the unmeasured-tail term and completed partials.

Synthetic spots (tests/integration_synth.py) with known intensities.  Pure counting data whose
spots all have the standard profile's shape keep σ at counting statistics (rms z near 1, no
inflation); strong spots whose shapes differ from spot to spot (so that each loses a different
share of its tail outside the optimised peak region) have errors far above counting statistics,
and the tail term from the standard profiles brings rms z into [0.8, 1.5].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from integration_synth import gaussian_pixels, spot_grid

from mosflm_py.geometry.prediction import fraction_on_image
from mosflm_py.integration import (
    IntegrationParams,
    ProfileParams,
    Raster,
    Targets,
    accumulate_profiles,
    integrate_image,
)
from mosflm_py.integration.box import BACKGROUND, PEAK
from mosflm_py.integration.integrate import ring_masks, ring_width, tail_scatter, tail_variance
from mosflm_py.processing.fractions import FractionNormaliser, ImageParts

RASTER = Raster(21, 21, 17, 5, 5)
GRID = dict(xlines=(0.0, 1e4), ylines=(0.0, 1e4), nref=10)


def _rms_z(i_obs, sig, i_true):
    """rms of (I - k I_true)/σ with the weighted least-squares scale k (as the dev-set score)."""
    w = 1.0 / sig**2
    k = np.sum(w * i_obs * i_true) / np.sum(w * i_true**2)
    return float(np.sqrt(np.mean(((i_obs - k * i_true) / sig) ** 2)))


def _shaped_frame(rng, n_side, intensity, widths, spacing=30, bg=2.0):
    """Spots of one intensity whose Gaussian widths differ from spot to spot."""
    size = spacing * (n_side + 1)
    c = spacing * (1 + np.arange(n_side))
    x, y = np.meshgrid(c, c, indexing="ij")
    x = x.ravel() + rng.uniform(-0.5, 0.5, x.size)
    y = y.ravel() + rng.uniform(-0.5, 0.5, y.size)
    spots = np.zeros((size, size))
    for k in range(x.size):
        spots += gaussian_pixels(spots.shape, [x[k]], [y[k]], [intensity], widths[k])
    frame = rng.poisson(spots + bg).astype(np.int32)
    return frame, Targets.from_arrays(x, y)


def test_tail_scatter_moments():
    # exact moments: (R - s I)^2 - var(R) = t^2 I^2 for every strong reflection -> t
    n = 40
    j = np.linspace(1e4, 3e4, n)
    var = np.full(n, 1e4)
    share = np.full(n, 0.03)
    ring_var = np.full(n, 500.0)
    sign = np.where(np.arange(n) % 2, 1.0, -1.0)
    observed = share * j + np.sqrt((0.02 * j) ** 2 + ring_var) * sign
    # (one fitted mean: n/(n-1) on t^2)
    assert tail_scatter(j, var, observed, share, ring_var) == pytest.approx(0.02, rel=0.02)
    # a misfit common to all spots (the profile's sampling) is not scatter between them
    assert tail_scatter(j, var, 1.05 * share * j, share, np.zeros(n)) < 1e-6
    # counting scatter only: no tail term; weak or too few reflections: none
    assert tail_scatter(j, var, share * j, share, np.zeros(n)) < 1e-6
    assert tail_scatter(j, var * 1e4, observed, share, ring_var) == 0.0
    assert tail_scatter(j[:5], var[:5], observed[:5], share[:5], ring_var[:5]) == 0.0
    np.testing.assert_allclose(tail_variance(np.array([-5.0, 100.0]), 0.02), [0.0, 4.0])


def test_ring_masks():
    masks = np.full((1, 9, 9), BACKGROUND, np.int8)
    masks[0, 3:6, 3:6] = PEAK
    masks[0, 1, :] = 0  # a row outside the box
    r1, r2 = ring_masks(masks, 1)[0], ring_masks(masks, 2)[0]
    assert r1.sum() == 5 * 5 - 9 and r2.sum() == 7 * 7 - 9 - 7
    assert not (r2 & (masks[0] != BACKGROUND)).any() and (r1 <= r2).all()
    assert ring_width(Raster(21, 21, 17, 5, 5)) == 2 and ring_width(Raster(9, 9, 7, 1, 1)) == 1


def test_counting_data_keep_counting_sigma():
    """Identical spot shapes, Poisson counts, mask holding the spot: rms z in [0.8, 1.25] and
    σ within 5 % of counting statistics (no inflation of good data)."""
    params = IntegrationParams(raster=RASTER, profile=ProfileParams(optimise=False, **GRID))
    rng = np.random.default_rng(11)
    frame, pred, _ = spot_grid(rng, 8, spacing=30, intensity=5000.0)
    prof = accumulate_profiles([(frame, pred)], params, high_resolution=False)
    z = []
    tails = []
    for seed in range(3):
        frame, pred, spots = spot_grid(
            np.random.default_rng(100 + seed), 8, spacing=30, intensity=5000.0
        )
        res = integrate_image(frame, pred, params, prof)
        ok = res.reject == 0
        z.append(_rms_z(res.Ipr[ok], res.sigIpr[ok], np.full(ok.sum(), 5000.0)))
        tails.append(res.tail_scatter)
    assert 0.8 <= np.mean(z) <= 1.25
    # tail scatter ≤ 0.3 %: σ inflated by < 2 % at I = 5000 (counting σ/I ≈ 1.6 %)
    assert max(tails) < 0.003


def test_varying_spot_shapes_calibrated_by_the_tail_term():
    """Strong spots (I/σ ~ 300) 0.6-1.7 times the standard width: each loses a different
    share of its tail outside the optimised peak (2-3 % tolerance), an error ~10 times the
    counting error.  Counting σ alone gives rms z far above 1.5; with the tail term from the
    standard profiles, rms z lies in [0.8, 1.5] (profile fitted and summation)."""
    params = IntegrationParams(raster=RASTER, profile=ProfileParams(**GRID))
    rng = np.random.default_rng(7)
    n_side, inten = 9, 2.0e5
    widths = [(1.3 * s, 1.5 * s) for s in rng.uniform(0.6, 1.7, n_side**2)]
    frame, pred = _shaped_frame(rng, n_side, inten, widths)
    prof = accumulate_profiles([(frame, pred)], params, high_resolution=False)
    widths = [(1.3 * s, 1.5 * s) for s in rng.uniform(0.6, 1.7, n_side**2)]
    frame, pred = _shaped_frame(rng, n_side, inten, widths)
    res = integrate_image(frame, pred, params, prof)
    ok = (res.reject == 0) & np.isfinite(res.Ipr)
    assert ok.sum() > 60
    truth = np.full(ok.sum(), inten)
    # the scatter about the truth (~2 %) is several times the counting error (1/√I ~ 0.2 %)
    assert np.std(res.Ipr[ok] / inten) > 5 / np.sqrt(inten)
    for i_obs, sig in ((res.Ipr[ok], res.sigIpr[ok]), (res.I[ok], res.sigI[ok])):
        assert 0.8 <= _rms_z(i_obs, sig, truth) <= 1.5


@dataclass(frozen=True)
class _RecI:
    hkl: np.ndarray
    fraction: np.ndarray
    I: np.ndarray  # noqa: E741
    sigI: np.ndarray


def test_reflection_with_an_unrecorded_part_is_completed_with_its_uncertainty():
    """A reflection wholly inside the run whose middle part the detector could not record
    (mostly in a gap): its written parts are scaled by 1/f (f their share), their fractions sum
    to 1, and σ² of the sum gains ((1 - f) I)²; a reflection with all parts keeps its counting
    σ; one with less than MIN_RECORDED written, with a part rejected for its measurement
    (an overlap), or too weak for the completion to pay (3 photons: scaling its noise by 1/f
    costs more than the bias it removes) stays incomplete."""
    n_img, osc = 12, 0.2
    starts = np.arange(n_img) * osc
    ends = starts + osc
    hkl = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [2, 2, 2], [3, 3, 3]])
    phi = np.full(5, 1.2)
    w = np.full(5, 0.6)
    full_i = np.array([1000.0, 2000.0, 3000.0, 4000.0, 3.0])
    norm = FractionNormaliser(0.0, float(ends[-1]))
    out = []
    written_share = np.zeros(5)
    for i in range(n_img):
        f = fraction_on_image(phi, w, starts[i], ends[i])
        on = f >= 1e-3
        idx = np.flatnonzero(on)
        acc = np.ones(idx.size, bool)
        lost = np.zeros(idx.size, bool)
        # reflection 1 loses its central part in a gap; reflection 2 all but its first part;
        # reflection 3 its central part to an overlap; the weak reflection 4 its central part
        lost[((idx == 1) | (idx == 4)) & (i == 6)] = True
        lost[(idx == 2) & (i > 4)] = True
        acc &= ~lost
        acc[(idx == 3) & (i == 6)] = False
        written_share[idx[acc]] += f[on][acc]
        parts = ImageParts(hkl[on], f[on], phi[on], w[on], acc, lost)
        rec = _RecI(
            hkl[on][acc], f[on][acc], (full_i[on] * f[on])[acc], np.sqrt(full_i[on] * f[on])[acc]
        )
        out += norm.add(rec, parts, ends[i], i)
    out += norm.finish()
    tot_f, tot_i, tot_v = np.zeros(5), np.zeros(5), np.zeros(5)
    for rec, _ in out:
        for h, f, inten, s in zip(rec.hkl, rec.fraction, rec.I, rec.sigI):
            k = int(np.flatnonzero((hkl == h).all(axis=1))[0])
            tot_f[k] += f
            tot_i[k] += inten
            tot_v[k] += s**2
    fr = written_share[1]
    assert 0.4 < fr < 0.9 and written_share[2] < 0.4 and 0.4 < written_share[3] < 0.9
    np.testing.assert_allclose(tot_f[:2], 1.0, atol=1e-9)
    np.testing.assert_allclose(tot_i[:2], full_i[:2], rtol=1e-9)
    assert tot_v[0] == pytest.approx(full_i[0], rel=1e-9)
    want = full_i[1] / fr + ((1 - fr) * full_i[1]) ** 2
    assert tot_v[1] == pytest.approx(want, rel=1e-6)
    for k in (2, 3, 4):
        assert tot_f[k] == pytest.approx(written_share[k], rel=1e-9)
        assert tot_i[k] == pytest.approx(full_i[k] * written_share[k], rel=1e-9)
        assert tot_v[k] == pytest.approx(full_i[k] * written_share[k], rel=1e-9)
