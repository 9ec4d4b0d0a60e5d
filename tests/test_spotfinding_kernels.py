"""Spot-finding kernels against their plain references (tests/reference/spotfind_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reference import spotfind_ref as ref

from mosflm_py.kernels.spotfind import (
    box_mean,
    component_pixels,
    exclude_dilated,
    label_components,
    radial_map,
    radial_profile,
    threshold_pixels,
)
from mosflm_py.kernels.spotfind_spots import split_components, spot_stats


def _image(seed, shape=(23, 31), lam=5.0):
    rng = np.random.default_rng(seed)
    data = rng.poisson(lam, shape).astype(np.float32)
    use = (rng.random(shape) > 0.15).astype(np.uint8)
    return rng, data, use


@pytest.mark.parametrize("seed,hs,hf,minc", [(0, 2, 3, 5), (1, 8, 8, 30), (2, 0, 1, 1),
                                             (3, 15, 20, 1)])
def test_box_mean_matches_reference(seed, hs, hf, minc):
    _, data, use = _image(seed)
    out = np.empty(data.shape, np.float32)
    box_mean(data, use, hs, hf, minc, out)
    exp = ref.box_mean_ref(data, use, hs, hf, minc)
    assert np.array_equal(np.isnan(out), np.isnan(exp))
    ok = ~np.isnan(exp)
    np.testing.assert_allclose(out[ok], exp[ok], rtol=1e-6)


def test_box_mean_all_masked_is_nan_and_single_row():
    data = np.ones((1, 7), np.float32)
    out = np.empty_like(data)
    box_mean(data, np.zeros((1, 7), np.uint8), 2, 2, 1, out)
    assert np.isnan(out).all()
    box_mean(data, np.ones((1, 7), np.uint8), 2, 2, 1, out)
    np.testing.assert_array_equal(out, 1.0)


@pytest.mark.parametrize("seed,gain,rn,t", [(0, 1.0, 0.0, 3.0), (1, 0.5, 2.0, 5.0),
                                            (2, 4.0, 0.0, 2.0)])
def test_threshold_matches_reference(seed, gain, rn, t):
    rng, data, use = _image(seed, lam=2.0)
    data[rng.random(data.shape) < 0.05] += 40
    bg = rng.uniform(0.2, 4.0, data.shape).astype(np.float32)
    bg[rng.random(data.shape) < 0.1] = np.nan
    fb = np.full(data.shape, 1.5, np.float32)
    fb[0, :] = np.nan
    exp = ref.threshold_ref(data, use, bg, fb, gain, rn * rn, t)
    out = np.empty(data.shape, np.uint8)
    n = threshold_pixels(data, use, bg, fb, gain, rn * rn, t, out)
    np.testing.assert_array_equal(out, exp)
    assert n == exp.sum()


def test_exclude_dilated_matches_reference():
    rng, _, use = _image(4)
    sig = (rng.random(use.shape) < 0.05).astype(np.uint8)
    sig[0, 0] = sig[-1, -1] = 1
    out = np.empty_like(use)
    exclude_dilated(use, sig, out)
    np.testing.assert_array_equal(out, ref.exclude_dilated_ref(use, sig))


def test_radial_profile_and_map_match_reference():
    rng, data, use = _image(5, shape=(40, 37), lam=20.0)
    data[rng.random(data.shape) < 0.02] += 500  # outliers to reject
    args = (data, use, 17.3, 21.9, 2.0, 16, 3.0, 3)
    got = radial_profile(*args)
    exp = ref.radial_profile_ref(*args)
    for g, e in zip(got, exp):
        np.testing.assert_allclose(g, e, rtol=1e-9)
    assert got[3].sum() > 0  # some outliers rejected
    prof = np.where(np.isfinite(got[0]), got[0], 0.0)
    out = np.empty(data.shape, np.float32)
    radial_map(prof, 17.3, 21.9, 2.0, out)
    e = ref.radial_map_ref(prof, 17.3, 21.9, 2.0, data.shape)
    np.testing.assert_allclose(out, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed,p", [(0, 0.3), (1, 0.55), (2, 0.8), (3, 0.0), (4, 1.0)])
def test_labelling_matches_flood_fill(seed, p):
    rng = np.random.default_rng(seed)
    strong = (rng.random((37, 41)) < p).astype(np.uint8)
    labels = np.zeros(strong.shape, np.int32)
    n = label_components(strong, labels)
    exp, n_exp = ref.label_ref(strong)
    assert n == n_exp
    np.testing.assert_array_equal(labels, exp)
    off, ps, pf = component_pixels(labels, n)
    eo, eps, epf = ref.component_pixels_ref(labels, n)
    np.testing.assert_array_equal(off, eo)
    np.testing.assert_array_equal(ps, eps)
    np.testing.assert_array_equal(pf, epf)


def test_labelling_u_shape_and_diagonal():
    # a U merges late (needs union of two provisional labels); diagonal pixels are connected
    strong = np.array([[1, 0, 1, 0, 0],
                       [1, 0, 1, 0, 0],
                       [1, 1, 1, 0, 0],
                       [0, 0, 0, 1, 0],
                       [0, 0, 0, 0, 0]], np.uint8)
    labels = np.zeros(strong.shape, np.int32)
    assert label_components(strong, labels) == 1
    assert set(np.unique(labels)) == {0, 1}


def _blobs(seed, n=6, shape=(48, 52)):
    rng = np.random.default_rng(seed)
    data = rng.poisson(3.0, shape).astype(np.float32)
    ii, jj = np.indices(shape)
    for _ in range(n):
        ci, cj = rng.uniform(4, shape[0] - 4), rng.uniform(4, shape[1] - 4)
        data += rng.uniform(50, 400) * np.exp(-((ii - ci) ** 2 + (jj - cj) ** 2) / 3.0)
    return rng, np.rint(data).astype(np.float32)


@pytest.mark.parametrize("seed,do_split,sep", [(0, True, 0.0), (1, True, 0.0), (2, False, 0.0),
                                               (3, True, 4.0), (4, True, 0.0)])
def test_split_matches_reference(seed, do_split, sep):
    _, data = _blobs(seed, n=10)
    strong = (data > 12).astype(np.uint8)
    labels = np.zeros(strong.shape, np.int32)
    n = label_components(strong, labels)
    off, ps, pf = component_pixels(labels, n)
    sub = np.empty(ps.size, np.int64)
    npeak = np.empty(n, np.int64)
    nsub = np.empty(n, np.int64)
    split_components(data, labels, off, ps, pf, 1.0, 0.0, 3.0, sep, sep, do_split, sub, npeak,
                     nsub)
    several = 0
    for c in range(n):
        pix = np.column_stack([ps[off[c]:off[c + 1]], pf[off[c]:off[c + 1]]])
        e_np, e_ns, e_sub = ref.split_ref(data, pix, 1.0, 0.0, 3.0, sep, sep, do_split)
        assert npeak[c] == e_np
        assert nsub[c] == e_ns
        np.testing.assert_array_equal(sub[off[c]:off[c + 1]], e_sub)
        several += e_np > 1
    if seed in (0, 1):
        assert several >= 1  # the case is exercised


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spot_stats_matches_reference(seed):
    rng, data = _blobs(seed, n=8)
    data[5, 5] = 70000.0  # an overload
    active = (rng.random(data.shape) > 0.03).astype(np.uint8)
    bg = np.full(data.shape, 3.0, np.float32)
    strong = ((data > 12) & active.astype(bool)).astype(np.uint8)
    labels = np.zeros(strong.shape, np.int32)
    n = label_components(strong, labels)
    off, ps, pf = component_pixels(labels, n)
    gid = np.repeat(np.arange(n), np.diff(off))
    exp = ref.spot_stats_ref(data, bg, active, labels.copy(), n, 1.0, 1.5, 65000.0)
    got = spot_stats(data, bg, active, labels, ps, pf, gid, n, 1.0, 1.5, 65000.0)
    np.testing.assert_allclose(got, exp, rtol=1e-6, atol=1e-9)
    assert got[:, 16].sum() >= 1
