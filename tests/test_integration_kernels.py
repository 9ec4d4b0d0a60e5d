"""Integration kernels against their plain-numpy references (tests/reference/integrate_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
from integration_synth import spot_grid
from reference import integrate_ref as ref

from mosflm_py.integration import IntegrationParams, Raster
from mosflm_py.integration.shoebox import _bias_factor, extract_shoeboxes, measure_boxes
from mosflm_py.kernels import integrate_profile as kp


@pytest.mark.parametrize("seed", range(2))
def test_extract_and_background_match_reference(seed):
    rng = np.random.default_rng(seed)
    frame, pred, _ = spot_grid(rng, 4, spacing=12, intensity=800.0)
    frame[3:6, :] = -1
    frame[30, 30] = 70000
    params = IntegrationParams(raster=Raster(13, 15, 11, 4, 4))
    masks = params.raster.mask()[None]
    boxes = extract_shoeboxes(frame, pred.x_px, pred.y_px, masks, params)
    peak = (masks == 1).astype(np.uint8)
    v, c = ref.extract_boxes(frame, boxes.ci, boxes.cj, boxes.mask_id, masks, peak, 1, 1.0, 0.0,
                             -1.0, 65500.0)
    np.testing.assert_array_equal(boxes.codes, c)
    np.testing.assert_allclose(boxes.values, v)
    meas = measure_boxes(boxes, params)
    want = ref.background_and_sum(boxes.values, boxes.codes, 13, 15, 0.8, _bias_factor(0.8), 3.0)
    for k, (p, nbg, isum, var) in enumerate(want):
        np.testing.assert_allclose(meas.plane[k, :3], p, rtol=1e-9, atol=1e-9)
        assert meas.n_bg[k] == nbg
        assert meas.i_sum[k] == pytest.approx(isum, rel=1e-9, abs=1e-9)
        assert meas.var_sum[k] == pytest.approx(var, rel=1e-9)


def test_fit_matches_reference():
    rng = np.random.default_rng(3)
    nx, ny, n = 9, 11, 20
    a, b = np.indices((nx, ny))
    prof = np.exp(-0.5 * (((a - 4) / 1.3) ** 2 + ((b - 5) / 1.6) ** 2))
    prof /= prof.sum()
    codes = np.full((n, nx, ny), 2, np.int8)
    codes[:, 2:7, 2:9] = 1
    fx, fy = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
    plane = np.zeros((n, 12))
    plane[:, 2] = 5.0
    plane[:, 11] = 1.0 / 50
    vals = np.empty((n, nx, ny))
    for k in range(n):
        pk = ref.shift_bilinear(prof, fx[k], fy[k])
        vals[k] = rng.poisson(5.0 + 300.0 * pk)
    out = [np.zeros(n) for _ in range(3)] + [np.zeros(n, np.int64), np.zeros(n)]
    kp.fit_boxes(vals.reshape(-1), codes.reshape(-1), plane, np.full(n, 5.0), nx, ny,
                 prof[None].copy(), np.zeros((n, 4), np.int64), np.array([[1.0, 0, 0, 0]] * n),
                 fx, fy, 0.05, 1e9, 1e9, np.zeros(n), *out)
    for k in range(n):
        pk = ref.shift_bilinear(prof, fx[k], fy[k])
        peak = codes[k] == 1
        p = np.clip(pk[peak], 0, None)
        p /= p.sum()
        j, var = ref.fit_profile(vals[k][peak], np.full(p.size, 5.0), p, 0.05, niter=6)
        assert out[0][k] == pytest.approx(j, rel=1e-6)
        m = 5.0 + max(j, 0) * p
        v = np.maximum(m + (0.05 * m) ** 2, 1.0)
        u2 = (p / v).sum() * var  # d J / d c (background-level term of the plane covariance)
        assert out[1][k] == pytest.approx(var + 5.0 * u2**2 / 50.0, rel=1e-6)
