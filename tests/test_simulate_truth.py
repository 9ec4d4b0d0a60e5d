"""Simulated images against the independently computed truth (positions, partiality, LP)."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.simulate import default_params, simulate_dataset
from mosflm_py.simulate.crystal import b_matrix, generate_hkl, wilson_intensities
from mosflm_py.simulate.detector import background_map
from mosflm_py.simulate.render import crystal_model, render, sweep
from mosflm_py.simulate.truth import (
    assign_partials,
    observations,
    polarisation_factor,
    reflecting_angles,
)

SMALL = dict(nslow=320, nfast=300, beam_x=27.0, beam_y=24.5, distance=110.0, resolution=2.6,
             n_images=16, phi_start=10.0, osc_width=0.5)


def _noise_free(p):
    model = crystal_model(p)
    obs = observations(model, p)
    rec = sweep(model, p, 0, p.n_images)
    counts = model.intensity[rec.refl] * rec.pol * rec.g
    images = render(rec, counts, p, p.n_images)
    key = rec.refl.astype(np.int64) * p.n_images + rec.img
    uk, inv = np.unique(key, return_inverse=True)
    part = assign_partials(obs, uk // p.n_images, uk % p.n_images,
                           np.bincount(inv, rec.g), np.bincount(inv, counts), p)
    return model, obs, images, part


@pytest.fixture(scope="module")
def sim():
    p = default_params(**SMALL, poisson=False, background=0.0, background_radial=0.0)
    return (p, *_noise_free(p))


def _isolated(p, obs, part, radius=12.0, margin=8):
    """Observations fully recorded, on the detector, with no other spot near them in time."""
    lo = np.full(len(obs), 10**9)
    hi = np.full(len(obs), -1)
    np.minimum.at(lo, part["obs"], part["image"] - p.first_image)
    np.maximum.at(hi, part["obs"], part["image"] - p.first_image)
    sel = obs.fully_recorded & obs.on_detector & ~obs.small_zeta
    sp, fp = obs.slow_px, obs.fast_px
    ok = np.isfinite(sp) & (hi >= 0)
    good = []
    for i in np.nonzero(sel)[0]:
        if not (margin < sp[i] < p.nslow - margin and margin < fp[i] < p.nfast - margin):
            continue
        near = ok & (np.hypot(sp - sp[i], fp - fp[i]) < radius) & (lo <= hi[i]) & (hi >= lo[i])
        if near.sum() == 1:
            good.append(i)
    return np.array(good), lo, hi


def test_partialities_sum_to_one(sim):
    p, model, obs, images, part = sim
    sums = np.bincount(part["obs"], weights=part["fraction"], minlength=len(obs))
    full = obs.fully_recorded & ~obs.small_zeta
    assert full.sum() > 500
    assert np.max(np.abs(sums[full] - 1.0)) < 0.01
    # and the images themselves hold I P L x fraction on each image
    per_obs_counts = np.bincount(part["obs"], weights=part["counts"], minlength=len(obs))
    expect = obs.intensity * obs.polarisation * obs.lorentz
    np.testing.assert_allclose(per_obs_counts[full], expect[full], rtol=0.01)


def test_reflecting_angles_on_ewald_sphere(sim):
    p, model, obs, *_ = sim
    s0 = np.array([1.0 / p.wavelength, 0.0, 0.0])
    ang = np.radians(obs.phi)
    r0 = model.r0[obs.refl]
    c, s = np.cos(ang), np.sin(ang)
    r = np.column_stack([c * r0[:, 0] - s * r0[:, 1], s * r0[:, 0] + c * r0[:, 1], r0[:, 2]])
    np.testing.assert_allclose(np.linalg.norm(r + s0, axis=1), 1.0 / p.wavelength, rtol=1e-12)
    # position from conventions.txt: P = (D, -(Xd - Xb), Yd - Yb) on the ray along s0 + r
    s1 = r + s0
    hit = s1 * (p.distance / s1[:, 0])[:, None]
    np.testing.assert_allclose(obs.x_mm, p.beam_x - hit[:, 1], atol=1e-9)
    np.testing.assert_allclose(obs.y_mm, p.beam_y + hit[:, 2], atol=1e-9)
    np.testing.assert_allclose(obs.slow_px, obs.x_mm / p.pixel_size, atol=1e-9)


def test_reverse_phi_negates_angles():
    p = default_params(**SMALL)
    m = crystal_model(p)
    a = reflecting_angles(m.r0, p.wavelength, False)
    b = reflecting_angles(m.r0, p.wavelength, True)
    ok = np.isfinite(a)
    np.testing.assert_allclose(b[ok], -a[ok], atol=1e-12)


def test_spot_centroids_and_totals_match_truth(sim):
    p, model, obs, images, part = sim
    good, lo, hi = _isolated(p, obs, part)
    assert good.size > 100
    errs, ratios = [], []
    ii, jj = np.mgrid[0:15, 0:15] + 0.5
    for i in good:
        i0, j0 = int(obs.slow_px[i]) - 7, int(obs.fast_px[i]) - 7
        w = images[lo[i]:hi[i] + 1, i0:i0 + 15, j0:j0 + 15].sum(axis=0)
        tot = w.sum()
        errs.append(np.hypot((w * (ii + i0)).sum() / tot - obs.slow_px[i],
                             (w * (jj + j0)).sum() / tot - obs.fast_px[i]))
        ratios.append(tot / (obs.intensity[i] * obs.polarisation[i] * obs.lorentz[i]))
    assert max(errs) < 0.1  # px
    np.testing.assert_allclose(ratios, 1.0, atol=0.005)


def test_noisy_totals_within_poisson(tmp_path):
    p = default_params(**{**SMALL, "n_images": 10}, mean_intensity=3000.0, background=8.0)
    ds = simulate_dataset(p, tmp_path, fmt="cbf")
    import fabio

    frames = np.stack([fabio.open(str(f)).data for f in ds.paths]).astype(float)
    bg = background_map(p)
    obs, part = ds.obs, ds.partials
    good, lo, hi = _isolated(p, obs, part)
    assert good.size > 50
    z = []
    for i in good:
        i0, j0 = int(obs.slow_px[i]) - 6, int(obs.fast_px[i]) - 6
        win = (slice(lo[i], hi[i] + 1), slice(i0, i0 + 13), slice(j0, j0 + 13))
        raw = frames[win].sum()
        b = bg[win[1:]].sum() * (hi[i] - lo[i] + 1)
        expect = obs.intensity[i] * obs.polarisation[i] * obs.lorentz[i]
        z.append((raw - b - expect) / np.sqrt(raw))
    z = np.array(z)
    assert np.max(np.abs(z)) < 5.0
    assert abs(z.mean()) < 4.0 / np.sqrt(z.size)
    assert 0.7 < z.std() < 1.3


def test_polarisation_limits():
    rng = np.random.default_rng(3)
    s1 = rng.normal(size=(50, 3))
    s1[:, 0] = np.abs(s1[:, 0])
    s1 /= np.linalg.norm(s1, axis=1)[:, None]
    e = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(polarisation_factor(s1, e, 1.0), 1.0 - s1[:, 1] ** 2, atol=1e-12)
    np.testing.assert_allclose(polarisation_factor(s1, e, 0.0), 0.5 * (1 + s1[:, 0] ** 2),
                               atol=1e-12)


@pytest.mark.parametrize(
    ("symbol", "cell", "rule"),
    [
        ("P 21 21 21", (40, 50, 60, 90, 90, 90),
         lambda h, k, l: ((h == 0) & (k == 0) & (l % 2 != 0)) | ((h == 0) & (l == 0) & (k % 2 != 0))
         | ((k == 0) & (l == 0) & (h % 2 != 0))),
        ("P 43 21 2", (50, 50, 40, 90, 90, 90),
         lambda h, k, l: ((h == 0) & (k == 0) & (l % 4 != 0))
         | ((k == 0) & (l == 0) & (h % 2 != 0)) | ((h == 0) & (l == 0) & (k % 2 != 0))),
        ("I 2 3", (60, 60, 60, 90, 90, 90), lambda h, k, l: (h + k + l) % 2 != 0),
        ("C 1 2 1", (60, 40, 50, 90, 105, 90), lambda h, k, l: (h + k) % 2 != 0),
    ],
)
def test_systematic_absences(symbol, cell, rule):
    hkl = generate_hkl(cell, symbol, 5.0)
    h, k, l = hkl.T
    assert not np.any(rule(h, k, l))
    # and nothing else is missing: all non-absent reflections within the limit are present
    b = b_matrix(cell)
    m = [int(c / 5.0) + 1 for c in cell[:3]]
    g = np.stack(np.meshgrid(*[np.arange(-x, x + 1) for x in m], indexing="ij"), -1).reshape(-1, 3)
    d = np.linalg.norm(g @ b.T, axis=1)
    g = g[(d > 0) & (d <= 0.2)]
    assert hkl.shape[0] == np.count_nonzero(~rule(*g.T))


def test_wilson_equivalents_equal():
    cell = (40.0, 50.0, 60.0, 90.0, 90.0, 90.0)
    hkl = np.array([[1, 2, 3], [-1, 2, 3], [1, -2, -3], [-1, -2, -3], [1, 2, -3], [2, 1, 3]])
    inten = wilson_intensities(hkl, cell, "P 21 21 21", 1000.0, 20.0, seed=4)
    np.testing.assert_allclose(inten[:5], inten[0])
    assert inten[5] != inten[0]


def test_wilson_mean_follows_b_factor():
    cell = (50.0, 50.0, 50.0, 90.0, 90.0, 90.0)
    hkl = generate_hkl(cell, "P 1", 2.0)
    inten = wilson_intensities(hkl, cell, "P 1", 1000.0, 30.0, seed=2)
    d2 = np.sum((hkl @ b_matrix(cell).T) ** 2, axis=1)
    shell = (d2 > 0.15) & (d2 < 0.17)
    expect = 1000.0 * np.exp(-0.5 * 30.0 * d2[shell]).mean()
    # P1 without Friedel-related duplicates: n/2 independent exponentials
    assert inten[shell].mean() == pytest.approx(expect, rel=4.0 / np.sqrt(shell.sum() / 2))


def test_truth_identity_without_missets():
    p = default_params(**SMALL, missets=(0.4, -0.3, 0.2))
    m = crystal_model(p)
    np.testing.assert_allclose(m.A, p.wavelength * m.U @ m.B, rtol=1e-12)
    np.testing.assert_allclose(m.r0, (m.M @ m.U @ m.B @ m.hkl.T).T, rtol=1e-12)
    np.testing.assert_allclose(m.U @ m.U.T, np.eye(3), atol=1e-12)


def test_other_geometry_reverse_phi_two_theta_omega():
    p = default_params(**{**SMALL, "n_images": 8}, reverse_phi=True, two_theta=8.0,
                       detector_omega=90.0, pixel_size_fast=0.15, missets=(0.5, -1.0, 2.0),
                       poisson=False, background=0.0, background_radial=0.0)
    model, obs, images, part = _noise_free(p)
    sums = np.bincount(part["obs"], weights=part["fraction"], minlength=len(obs))
    full = obs.fully_recorded & ~obs.small_zeta
    assert full.sum() > 200
    assert np.max(np.abs(sums[full] - 1.0)) < 0.01
    good, lo, hi = _isolated(p, obs, part)
    assert good.size > 30
    ii, jj = np.mgrid[0:15, 0:15] + 0.5
    for i in good:
        i0, j0 = int(obs.slow_px[i]) - 7, int(obs.fast_px[i]) - 7
        w = images[lo[i]:hi[i] + 1, i0:i0 + 15, j0:j0 + 15].sum(axis=0)
        tot = w.sum()
        assert abs((w * (ii + i0)).sum() / tot - obs.slow_px[i]) < 0.1
        assert abs((w * (jj + j0)).sum() / tot - obs.fast_px[i]) < 0.1
        assert tot == pytest.approx(obs.intensity[i] * obs.polarisation[i] * obs.lorentz[i],
                                    rel=0.005)
    # the swung detector: the direct beam would hit at Xd = Xb + D tan(2theta) (slow = -Y lab,
    # fast = +Z, rotated by omega 90 about +X: slow -> -Z, fast -> -Y)
    from mosflm_py.simulate.detector import detector_frame

    det = detector_frame(p)
    x, y = det.project(np.array([[1.0, 0.0, 0.0]]))
    assert x[0] == pytest.approx(p.beam_x, abs=1e-9)
    assert y[0] == pytest.approx(p.beam_y + p.distance * np.tan(np.radians(8.0)), abs=1e-9)


def test_user_intensities():
    hkl_i = {(1, 2, 3): 5000.0, (2, 0, 4): 100.0, (3, -1, 2): 0.0}
    p = default_params(**SMALL, intensities=hkl_i)
    m = crystal_model(p)
    assert sorted(map(tuple, m.hkl.tolist())) == sorted(hkl_i)
    for h, v in zip(m.hkl.tolist(), m.intensity):
        assert hkl_i[tuple(h)] == v
