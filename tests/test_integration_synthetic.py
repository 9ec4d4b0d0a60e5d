"""Integration on synthetic spots: unbiased, calibrated sigmas, profile fitting, rejection cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from integration_synth import peak_truth, spot_grid

from mosflm_py.integration import (
    Flag,
    IntegrationParams,
    ProfileParams,
    Raster,
    Reject,
    SeparationParams,
    Targets,
    accumulate_profiles,
    integrate_image,
)

RASTER = Raster(15, 17, 13, 4, 4)


def _params(**profile):
    prof = ProfileParams(xlines=(0.0, 1e4), ylines=(0.0, 1e4), nref=10, **profile)
    return IntegrationParams(raster=RASTER, profile=prof)


@pytest.fixture(scope="module")
def strong_profiles():
    rng = np.random.default_rng(11)
    frame, pred, _ = spot_grid(rng, 8, intensity=20000.0)
    params = _params(efac=0.0, optimise=False)
    return accumulate_profiles([(frame, pred)], params, high_resolution=False)


def test_standard_profile_shape_and_report(strong_profiles):
    sp = strong_profiles
    assert sp.usable and sp.n_contrib[0] == 64 and not sp.averaged.any()
    p = sp.profiles[0]
    assert p[sp.masks[0] == 1].sum() == pytest.approx(1.0)
    nx, ny = p.shape
    # centred: first moments within 0.1 px of the box centre
    a, b = np.indices(p.shape)
    w = np.clip(p, 0, None)
    assert abs((w * (a - nx // 2)).sum() / w.sum()) < 0.1
    assert abs((w * (b - ny // 2)).sum() / w.sum()) < 0.1
    rep = sp.report()
    assert len(rep) == 1 and rep[0]["corrln"] == pytest.approx(1.0)
    assert len(rep[0]["map"]) == nx and "9" in "".join(rep[0]["map"])


@pytest.mark.parametrize("efac", [0.0, 0.07])
def test_unbiased_and_sigma_consistent(strong_profiles, efac):
    rng = np.random.default_rng(5)
    frame, pred, spots = spot_grid(rng, 24, intensity=400.0)
    params = _params(efac=efac, optimise=False)
    res = integrate_image(frame, pred, params, strong_profiles)
    truth = peak_truth(spots, pred, RASTER.mask())
    ok = res.reject == 0
    assert ok.sum() == len(pred)
    # allowance 0.5 % for both (sub-pixel profiles: no interpolation broadening)
    for i, s in ((res.I, res.sigI), (res.Ipr, res.sigIpr)):
        d = (i - truth)[ok]
        # mean bias within 3 standard errors plus the allowance
        assert abs(d.mean()) < 3 * d.std() / np.sqrt(d.size) + 0.005 * truth.mean()
        z = d / s[ok]
        assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0, abs=0.1)


# sharp spots: peak half-widths >= 3 sigma, rims of 4 px
SHARP = {0.6: Raster(11, 11, 9, 4, 4), 0.9: Raster(13, 13, 11, 4, 4),
         1.3: Raster(17, 17, 15, 4, 4)}


@pytest.mark.parametrize("sigma", sorted(SHARP))
def test_sharp_spots_unbiased_fulls_and_partials(sigma):
    """Strong spots of any width >= 0.6 px: bias < 0.5 %; sigma(Ipr) matches the scatter for
    fulls and for partials (a partial's spot is a fraction of the full's profile)."""
    raster = SHARP[sigma]
    params = IntegrationParams(raster=raster, profile=ProfileParams(
        xlines=(0.0, 1e4), ylines=(0.0, 1e4), optimise=False))
    sig = (sigma, 1.15 * sigma)
    spacing = raster.nxs + 3
    rng = np.random.default_rng(int(sigma * 10))
    frame, pred, _ = spot_grid(rng, 8, spacing=spacing, intensity=20000.0, sigma=sig)
    prof = accumulate_profiles([(frame, pred)], params, high_resolution=False)
    frame, pred, spots = spot_grid(rng, 16, spacing=spacing, intensity=20000.0, sigma=sig)
    res = integrate_image(frame, pred, params, prof)
    truth = peak_truth(spots, pred, raster.mask())
    assert (res.reject == 0).all()
    assert abs(res.Ipr.sum() / truth.sum() - 1) < 0.005
    z = (res.Ipr - truth) / res.sigIpr
    assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0, abs=0.1)
    # partials: 2 - 40 % of a full on this image, zero-ish and ordinary backgrounds
    for bg in (0.3, 10.0):
        frac = rng.uniform(0.02, 0.4, 256)
        frame, pred, spots = spot_grid(rng, 16, spacing=spacing, intensity=20000.0 * frac,
                                       sigma=sig, bg=bg, slope=(0.0, 0.0))
        pred = Targets.from_arrays(pred.x_px, pred.y_px, fraction=frac)
        res = integrate_image(frame, pred, params, prof)
        truth = peak_truth(spots, pred, raster.mask())
        assert abs(res.Ipr.sum() / truth.sum() - 1) < 0.005
        z = (res.Ipr - truth) / res.sigIpr
        assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0, abs=0.1)


def test_profile_fitting_beats_summation_on_weak_spots(strong_profiles):
    rng = np.random.default_rng(6)
    frame, pred, spots = spot_grid(rng, 20, intensity=60.0, bg=20.0)
    res = integrate_image(frame, pred, _params(efac=0.0, optimise=False), strong_profiles)
    truth = peak_truth(spots, pred, RASTER.mask())
    rms_sum = np.sqrt(np.mean((res.I - truth) ** 2))
    rms_prf = np.sqrt(np.mean((res.Ipr - truth) ** 2))
    assert rms_prf < 0.85 * rms_sum
    assert np.median(res.sigIpr) < np.median(res.sigI)


def test_overloads_estimated_from_profile(strong_profiles):
    rng = np.random.default_rng(7)
    frame, pred, spots = spot_grid(rng, 6, intensity=20000.0)
    truth = peak_truth(spots, pred, RASTER.mask())
    params = dataclasses.replace(_params(efac=0.0, optimise=False),
                                 overload=0.7 * float(spots.max()))
    res = integrate_image(frame, pred, params, strong_profiles)
    over = (res.flags & Flag.OVERLOAD) != 0
    assert over.sum() >= len(pred) // 2
    assert np.all(np.abs(res.Ipr[over] / truth[over] - 1) < 0.10)
    assert np.all(np.abs(res.I[over] / truth[over] - 1) < 0.10)
    # without profiles they cannot be measured
    res0 = integrate_image(frame, pred, params, None)
    assert np.all(res0.reject[over] & Reject.NO_PROFILE)


def test_zinger_in_background_rejected():
    rng = np.random.default_rng(8)
    frame, pred, spots = spot_grid(rng, 4, intensity=500.0)
    params = _params(enabled=False)
    clean = integrate_image(frame, pred, params)
    hit = frame.copy()
    i0, j0 = int(pred.x_px[5]), int(pred.y_px[5])
    hit[i0 + 6, j0 + 2] += 5000  # in the background rim
    res = integrate_image(hit, pred, params)
    assert res.I[5] == pytest.approx(clean.I[5], abs=0.1 * clean.sigI[5])
    assert res.n_bg[5] == clean.n_bg[5] - 1
    assert res.bgratio[5] < 1.5


def test_overlap_masking_and_notclose():
    rng = np.random.default_rng(9)
    frame, pred, spots = spot_grid(rng, 3, spacing=30, intensity=3000.0)
    # a neighbour 8 px away along slow: inside the 15x17 box but peaks do not overlap
    extra_x, extra_y = pred.x_px[4] + 8.0, pred.y_px[4] + 0.3
    from integration_synth import gaussian_pixels
    spots2 = gaussian_pixels(frame.shape, [extra_x], [extra_y], [30000.0], (1.5, 1.8))
    frame = frame + rng.poisson(spots2).astype(np.int32)
    both = Targets.from_arrays(np.r_[pred.x_px, extra_x], np.r_[pred.y_px, extra_y])
    truth = peak_truth(spots, pred, RASTER.mask())[4]
    params = _params(enabled=False)
    res = integrate_image(frame, both, params)
    assert res.reject[4] == 0 and res.I[4] == pytest.approx(truth, abs=3 * res.sigI[4])
    assert res.n_bg[4] < res.n_bg[0] - 15  # the neighbour's peak pixels are masked
    unmasked = integrate_image(frame, both, dataclasses.replace(
        params, separation=SeparationParams(noverlap=99)))
    assert unmasked.n_bg[4] < res.n_bg[0]  # left to the outlier rejection instead
    notclose = integrate_image(frame, both, dataclasses.replace(
        params, separation=SeparationParams(close=False)))
    assert notclose.reject[4] & Reject.OVERLAP


def test_edge_reflection_profile_fitted(strong_profiles):
    rng = np.random.default_rng(10)
    frame, pred, spots = spot_grid(rng, 3, intensity=5000.0)
    truth = peak_truth(spots, pred, RASTER.mask())
    frame = frame.copy()
    i0 = int(pred.x_px[4])
    frame[i0 + 2:, :] = -1  # inactive rows cut through the peak of reflection 4
    res = integrate_image(frame, pred, _params(efac=0.0, optimise=False), strong_profiles)
    assert res.flags[4] & Flag.EDGE
    assert res.Ipr[4] == pytest.approx(truth[4], rel=0.1)
