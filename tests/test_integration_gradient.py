"""GRADMAX test of the background plane: flagged where the gradient is real, not where counting
noise on a weak background makes the plane's slope scatter (fine-sliced pixel-detector data)."""

from __future__ import annotations

import numpy as np

from mosflm_py.integration import IntegrationParams, Raster
from mosflm_py.integration.integrate import gradient_too_steep
from mosflm_py.integration.shoebox import extract_shoeboxes, measure_boxes

GRADMAX = 0.03  # MOSFLM's default REJECTION GRADMAX


def _measure(background: np.ndarray, seed: int = 0):
    """Poisson image of the given mean background (no spots) measured in a grid of boxes."""
    rng = np.random.default_rng(seed)
    frame = rng.poisson(background).astype(np.float64)
    params = IntegrationParams(raster=Raster(13, 15, 11, 4, 4))
    masks = params.raster.mask()[None]
    centres = np.arange(12, background.shape[0] - 12, 16, dtype=np.float64)
    x, y = np.meshgrid(centres, centres, indexing="ij")
    boxes = extract_shoeboxes(frame, x.ravel(), y.ravel(), masks, params)
    return measure_boxes(boxes, params)


def test_weak_flat_background_is_not_flagged():
    """1 photon/pixel, flat (the worst case of the plain test, which divides by max(b, 1)):
    the plain test flags many boxes, the significance test (almost) none (a 3-standard-error
    excess is expected in well under 1 % of boxes)."""
    meas = _measure(np.full((400, 400), 1.0))
    plain = np.mean(meas.gradient > GRADMAX)
    tested = np.mean(gradient_too_steep(meas, GRADMAX))
    assert plain > 0.3  # the problem this test guards against
    assert tested < 0.01


def test_strong_sloped_background_is_flagged_and_flat_one_is_not():
    """Background 400 photons/pixel with a slope of 0.05 of the mean per pixel (above GRADMAX
    0.03 by far more than its noise): every box flagged; the same level flat: none."""
    rows = np.arange(400, dtype=np.float64)[:, None]
    # the local slope relative to the local mean: 20 / (400 + 20 (i - 200)) varies over the
    # image; keep it above 0.04 by a sawtooth of period 40 px around 400
    saw = 400.0 + 20.0 * ((rows % 40) - 20)
    sloped = np.broadcast_to(np.maximum(saw, 10.0), (400, 400)).copy()
    meas = _measure(sloped, seed=1)
    steep = meas.gradient > 0.04
    assert steep.sum() > 50
    assert np.all(gradient_too_steep(meas, GRADMAX)[steep])
    flat = _measure(np.full((400, 400), 400.0), seed=2)
    assert not gradient_too_steep(flat, GRADMAX).any()
