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


@pytest.mark.parametrize("k", [1, 4])
def test_fit_matches_reference(k):
    rng = np.random.default_rng(3)
    nx, ny, n = 9, 11, 20
    a, b = np.indices((nx * k, ny * k))
    ca, cb = (a + 0.5) / k - 0.5, (b + 0.5) / k - 0.5  # box coordinates of the fine bins
    fine = np.exp(-0.5 * (((ca - 4) / 0.9) ** 2 + ((cb - 5) / 1.2) ** 2))
    codes = np.full((n, nx, ny), 2, np.int8)
    codes[:, 2:7, 2:9] = 1
    codes[0, 4, 5] = 1 | (2 << 2)  # an overloaded peak pixel: missing from the fit
    fx, fy = rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n)
    plane = np.zeros((n, 12))
    plane[:, 2] = 0.5 + 2.0 * (np.arange(n) % 2)  # near-zero and low backgrounds
    plane[:, 11] = 1.0 / 50
    vals = np.empty((n, nx, ny))
    prof = []
    for q in range(n):
        pk = np.array([[ref.sample_fine(fine, i - fx[q], j - fy[q], k) for j in range(ny)]
                       for i in range(nx)])
        prof.append(pk)
        vals[q] = rng.poisson(plane[q, 2] + 300.0 * pk / pk[codes[q] & 3 == 1].sum())
    out = [np.zeros(n) for _ in range(3)] + [np.zeros(n, np.int64), np.zeros(n)]
    kp.fit_boxes(vals.reshape(-1), codes.reshape(-1), plane, plane[:, 2].copy(), nx, ny,
                 fine[None].copy(), k, np.zeros((n, 4), np.int64),
                 np.array([[1.0, 0, 0, 0]] * n), fx, fy, 0.05, 0.1, 1e9, 1e9, np.zeros(n), *out)
    for q in range(n):
        peak = (codes[q] & 3) == 1
        p = np.clip(prof[q][peak], 0, None)
        p /= p.sum()
        use = (codes[q][peak] >> 2) == 0
        bg = np.full(p.size, plane[q, 2])
        j, var = ref.fit_profile(vals[q][peak][use], bg[use], p[use], vmin=0.1)
        assert out[0][q] == pytest.approx(j, rel=1e-5)
        v = np.maximum(bg[use] + max(j, 0) * p[use], 0.1)
        u2 = (p[use] / v).sum() * var  # d J / d c (background-level term of the plane covariance)
        assert out[1][q] == pytest.approx(var + plane[q, 2] * u2**2 / 50.0, rel=1e-5)
        assert out[4][q] == pytest.approx(p[~use].sum(), abs=1e-12)


def test_accumulate_matches_reference():
    rng = np.random.default_rng(4)
    frame, pred, _ = spot_grid(rng, 3, spacing=14, intensity=900.0, sigma=(0.8, 1.0))
    params = IntegrationParams(raster=Raster(11, 11, 9, 3, 3))
    boxes = extract_shoeboxes(frame, pred.x_px, pred.y_px, params.raster.mask()[None], params)
    meas = measure_boxes(boxes, params)
    sel = np.array([0, 2, 3, 5, 8])
    region = np.array([0, 1, 0, 1, 1])
    k = 3
    sums = np.zeros((2, 11 * k, 11 * k))
    norms = np.zeros_like(sums)
    count = np.zeros(2, np.int64)
    kp.accumulate(boxes.values, boxes.codes, meas.plane, 11, 11, k, sel, region,
                  meas.i_sum[sel].copy(), boxes.fx[sel].copy(), boxes.fy[sel].copy(), sums,
                  norms, count)
    s2, n2 = ref.accumulate_fine(boxes.values, boxes.codes, meas.plane, 11, 11, k, sel, region,
                                 meas.i_sum[sel], boxes.fx[sel], boxes.fy[sel], 2)
    np.testing.assert_allclose(sums, s2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(norms, n2, rtol=1e-9)
    assert list(count) == [2, 3]


def test_sample_profiles_matches_reference():
    """Blended profiles at box pixels: kernel == numpy reference (1e-12), incl. zero weights
    and offsets that put corners outside the fine grid."""
    rng = np.random.default_rng(7)
    n, nx, ny, k = 60, 13, 11, 4
    fine = rng.random((5, nx * k, ny * k))
    idx = rng.integers(0, 5, (n, 4)).astype(np.int64)
    w = rng.random((n, 4))
    w[rng.random((n, 4)) < 0.3] = 0.0
    fx = rng.uniform(-1.2, 1.2, n)
    fy = rng.uniform(-1.2, 1.2, n)
    out = np.zeros((n, nx, ny))
    kp.sample_profiles(fine, k, idx, w, fx, fy, nx, ny, out)
    expected = ref.sample_profiles(fine, k, idx, w, fx, fy, nx, ny)
    assert np.abs(out - expected).max() < 1e-12
    assert expected.max() > 0.1  # not all outside the grid
