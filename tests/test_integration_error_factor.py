"""Detector error factor calculated from the data, and PKRATIO on the parts of partials.

Synthetic spots (tests/integration_synth.py): ideal counting data give a factor near 0; spots
whose pixels carry an extra multiplicative scatter e (spot shapes that differ from the
standard profile, as on images of discrete mosaic blocks) give back e; with that factor the
PKRATIO of ordinary strong spots is near 1, so they are not rejected, and a part of a partial
that fails PKRATIO is written flagged instead of being dropped.
"""

from __future__ import annotations

import numpy as np
import pytest
from integration_synth import gaussian_pixels, spot_grid

from mosflm_py.integration import (
    Flag,
    IntegrationParams,
    ProfileParams,
    Raster,
    Reject,
    Targets,
    accumulate_profiles,
    integrate_image,
)
from mosflm_py.integration.integrate import detector_error_factor

RASTER = Raster(15, 17, 13, 4, 4)
PARAMS = IntegrationParams(
    raster=RASTER,
    profile=ProfileParams(xlines=(0.0, 1e4), ylines=(0.0, 1e4), nref=10, optimise=False),
)


@pytest.fixture(scope="module")
def profiles():
    rng = np.random.default_rng(21)
    frame, pred, _ = spot_grid(rng, 8, intensity=20000.0)
    return accumulate_profiles([(frame, pred)], PARAMS, high_resolution=False)


def _distorted(rng, n_side, e, intensity=20000.0):
    """Spots whose expected pixel counts scatter by a relative e about the Gaussian shape."""
    frame, pred, spots = spot_grid(rng, n_side, intensity=intensity)
    size = frame.shape[0]
    ii, jj = np.indices(frame.shape)
    background = 10.0 + 0.004 * (ii - size / 2) - 0.003 * (jj - size / 2)
    shaped = spots * np.clip(1.0 + e * rng.standard_normal(spots.shape), 0.0, None)
    return rng.poisson(shaped + background).astype(np.int32), pred


def test_ideal_counting_data_give_no_error_factor(profiles):
    rng = np.random.default_rng(22)
    frame, pred, _ = spot_grid(rng, 12, intensity=20000.0)
    res = integrate_image(frame, pred, PARAMS, profiles)
    assert res.error_factor < 0.02
    assert (res.reject == 0).all()


@pytest.mark.parametrize("e", [0.1, 0.25])
def test_error_factor_recovered_and_strong_spots_kept(profiles, e):
    rng = np.random.default_rng(int(e * 100))
    frame, pred = _distorted(rng, 12, e)
    res = integrate_image(frame, pred, PARAMS, profiles)
    # recovered within 20 % (one image, 144 strong spots, the 10 % largest dropped)
    assert res.error_factor == pytest.approx(e, rel=0.2)
    # PKRATIO normalised by the calculated factor: typical strong spot near 1, few rejected
    assert np.nanmedian(res.pkratio) == pytest.approx(1.0, abs=0.3)
    assert np.mean((res.reject & Reject.PKRATIO) != 0) < 0.05


def test_estimator_moments():
    # exact moments: excess = e^2 signal2 for every strong reflection -> e
    j = np.full(50, 1e4)
    var = np.full(50, 1e4)
    signal2 = np.linspace(1e6, 2e6, 50)
    assert detector_error_factor(j, var, 0.09 * signal2, signal2) == pytest.approx(0.3)
    # too few strong reflections: no factor
    assert detector_error_factor(j[:5], var[:5], signal2[:5], signal2[:5]) == 0.0
    # weak reflections do not count
    assert detector_error_factor(j, var * 1e3, signal2, signal2) == 0.0


def test_pkratio_failure_of_a_partial_is_written_flagged(profiles):
    """A badly shaped spot: rejected when fully recorded, kept with FLAG 2 as a partial part
    (dropping it would leave the reflection's other parts an incomplete sum)."""
    rng = np.random.default_rng(23)
    frame, pred, _ = spot_grid(rng, 6, intensity=20000.0)
    # reflection 0 gets a second, displaced spot of half its intensity: a bad profile
    extra = gaussian_pixels(
        frame.shape, [pred.x_px[0] + 3.0], [pred.y_px[0]], [10000.0], (1.5, 1.8)
    )
    frame = frame + rng.poisson(extra).astype(np.int32)
    full = integrate_image(frame, pred, PARAMS, profiles)
    assert full.pkratio[0] > PARAMS.rejection.pkratio
    assert full.reject[0] & Reject.PKRATIO
    frac = np.ones(len(pred))
    frac[0] = 0.5
    part = Targets.from_arrays(pred.x_px, pred.y_px, fraction=frac)
    res = integrate_image(frame, part, PARAMS, profiles)
    assert res.reject[0] == 0 and res.flags[0] & Flag.PKRATIO
    assert np.isfinite(res.Ipr[0])


def test_automatic_box_grows_to_hold_large_spots():
    """Spots elongated beyond the automatic box (tails in the background rim, 16 % of the
    intensity lost): the box grows until the standard profile fits and the intensities are
    within TOLERANCE of the truth; without growth (a user RASTER) the box is kept."""
    from dataclasses import replace

    small = Raster(17, 15, 13, 5, 5)
    sig = (2.0, 1.4)
    rng = np.random.default_rng(31)
    frame, pred, _ = spot_grid(rng, 8, spacing=44, intensity=20000.0, sigma=sig)
    base = IntegrationParams(
        raster=small, profile=ProfileParams(xlines=(0.0, 1e4), ylines=(0.0, 1e4), nref=10)
    )
    auto = replace(base, profile=replace(base.profile, grow_box=True))
    fixed = accumulate_profiles([(frame, pred)], base, high_resolution=False)
    grown = accumulate_profiles([(frame, pred)], auto, high_resolution=False)
    assert (fixed.raster.nxs, fixed.raster.nys) == (17, 15)
    assert grown.raster.nxs > 17 and grown.raster.nys > 15
    frame, pred, _ = spot_grid(rng, 8, spacing=44, intensity=20000.0, sigma=sig)
    lost = integrate_image(frame, pred, base, fixed)
    kept = integrate_image(frame, pred, auto, grown)
    assert np.mean(lost.Ipr) < 0.9 * 20000.0
    # the optimised peak leaves out up to TOLERANCE (2-3 %) of the profile, as MOSFLM's
    assert np.mean(kept.Ipr) == pytest.approx(0.975 * 20000.0, rel=0.02)
    with pytest.raises(Exception, match="different RASTER"):
        integrate_image(frame, pred, base, grown)
