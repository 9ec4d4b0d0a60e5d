"""find_spots on synthetic frames: Gaussian spots at known sub-pixel positions on Poisson
background (own tiny generator, independent of the simulator)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from mosflm_py.errors import KeywordError
from mosflm_py.geometry.detector import Detector
from mosflm_py.spotfinding import (
    FLAG_NEAR_INACTIVE,
    FLAG_OVERLOADED,
    FLAG_SPLIT,
    SpotFindParams,
    build_mask,
    find_spots,
    find_spots_many,
    merge_across_images,
)
from mosflm_py.spotfinding.filters import (
    autoresln_limit,
    choose_auto_threshold,
    raster_from_spot_size,
    separation_from_spot_size,
)

PIX = 0.1
SHAPE = (200, 220)
WL = 1.0
DET = Detector(beam_x=81 * PIX, beam_y=92 * PIX, distance=50.0, pixel_slow=PIX, pixel_fast=PIX,
               nslow=SHAPE[0], nfast=SHAPE[1])
OPEN = SpotFindParams(threshold=5.0, rmin=0.0, rmax=1e6, autoresln=False)


def render(shape, spots, bg):
    """Expected counts per pixel: background + pixel-integrated 2-D Gaussians.

    spots: rows (s, f, total, sigma_s, sigma_f) in continuous pixel coordinates."""
    img = np.full(shape, float(bg))
    es = np.arange(shape[0] + 1.0)
    ef = np.arange(shape[1] + 1.0)
    for s, f, tot, ss, sf in spots:
        ps = np.diff(0.5 * (1 + erf((es - s) / (np.sqrt(2) * ss))))
        pf = np.diff(0.5 * (1 + erf((ef - f) / (np.sqrt(2) * sf))))
        img += tot * np.outer(ps, pf)
    return img


def grid_spots(rng, n_side=5, total=3000.0, sigma=1.0, margin=25, shape=SHAPE):
    s0 = np.linspace(margin, shape[0] - margin, n_side)
    f0 = np.linspace(margin, shape[1] - margin, n_side)
    ss, ff = np.meshgrid(s0, f0, indexing="ij")
    s = ss.ravel() + rng.uniform(-0.5, 0.5, ss.size)
    f = ff.ravel() + rng.uniform(-0.5, 0.5, ss.size)
    n = s.size
    return np.column_stack([s, f, np.full(n, total), np.full(n, sigma), np.full(n, sigma)])


def match(spots, truth, tol=1.5):
    """Index of the found spot nearest each true spot (-1 if none within tol px)."""
    out = np.full(len(truth), -1)
    for k, (s, f) in enumerate(truth[:, :2]):
        d = np.hypot(spots.x_px - s, spots.y_px - f)
        if d.size and d.min() < tol:
            out[k] = int(np.argmin(d))
    return out


@pytest.mark.parametrize("bg,background", [(10.0, "local"), (0.3, "local"), (10.0, "radial")])
def test_isolated_spots_counts_centroids_intensities(bg, background):
    rng = np.random.default_rng(1)
    truth = grid_spots(rng)
    frame = rng.poisson(render(SHAPE, truth, bg)).astype(np.int32)
    params = SpotFindParams(threshold=5.0, rmin=0.0, rmax=1e6, autoresln=False,
                            background=background)
    spots, rep = find_spots(frame, DET, WL, params, image=3, phi=(10.0, 10.2))
    assert len(spots) == len(truth)  # exact count for isolated spots
    m = match(spots, truth)
    assert (m >= 0).all()
    dx = spots.x_px[m] - truth[:, 0]
    dy = spots.y_px[m] - truth[:, 1]
    assert np.abs(dx).max() < 0.1 and np.abs(dy).max() < 0.1  # centroids within 0.1 px
    # intensities within Poisson error (4σ); σ from counting statistics
    pull = (spots.intensity[m] - truth[:, 2]) / spots.sigma[m]
    assert np.abs(pull).max() < 4.0
    assert 0.5 < pull.std() < 1.5
    assert np.allclose(spots.x_mm, spots.x_px * PIX) and np.allclose(spots.y_mm, spots.y_px * PIX)
    assert (spots.image == 3).all() and np.allclose(spots.phi, 10.1)
    assert rep.threshold == 5.0 and rep.n_found == len(truth)
    assert rep.median_size_x >= 3 and rep.median_size_y >= 3
    assert np.all(spots.flags == 0)


def test_background_level_recovered():
    rng = np.random.default_rng(2)
    truth = grid_spots(rng)
    frame = rng.poisson(render(SHAPE, truth, 40.0))
    spots, rep = find_spots(frame, DET, WL, OPEN)
    assert abs(np.median(spots.background) - 40.0) < 1.0  # spots excluded from their background
    assert abs(rep.background_mean - 40.0) < 1.0


def test_masks_backstop_exclude_quadrilateral_nullpix():
    rng = np.random.default_rng(3)
    truth = grid_spots(rng)
    frame = rng.poisson(render(SHAPE, truth, 5.0)).astype(np.int32)
    s, f = truth[:, 0], truth[:, 1]
    # backstop over spot 0, rectangle over spot 6, quadrilateral over spot 12, gap over spot 18
    bs = (s[0] * PIX, f[0] * PIX, 0.8)
    rect = ((s[6] - 6) * PIX, (s[6] + 6) * PIX, (f[6] - 6) * PIX, (f[6] + 6) * PIX)
    c = (s[12] * PIX, f[12] * PIX)
    quad = ((c[0] - 0.7, c[1]), (c[0], c[1] + 0.7), (c[0] + 0.7, c[1]), (c[0], c[1] - 0.7))
    gi, gj = int(s[18]), int(f[18])
    frame[gi, gj - 12:gj + 12] = -1  # a Pilatus-style gap segment through spot 18
    params = SpotFindParams(threshold=5.0, rmin=0.0, rmax=1e6, autoresln=False, backstop=bs,
                            excludes=(rect,), quadrilaterals=(quad,))
    spots, rep = find_spots(frame, DET, WL, params)
    m = match(spots, truth)
    assert m[0] < 0 and m[6] < 0 and m[12] < 0 and m[18] < 0
    assert (m[[k for k in range(len(truth)) if k not in (0, 6, 12, 18)]] >= 0).all()
    assert rep.rejected["inactive_pixels"] >= 1
    # flag-only mode keeps spots touching the gap, flagged
    keep = SpotFindParams(threshold=5.0, rmin=0.0, rmax=1e6, autoresln=False,
                          reject_inactive=False)
    spots2, _ = find_spots(frame, DET, WL, keep)
    near = spots2.flags & FLAG_NEAR_INACTIVE
    assert near.any()
    assert np.all(np.abs(spots2.x_px[near > 0] - gi - 0.5) < 6)
    # NULLPIX: pixels <= nullpix inactive
    frame3 = frame.copy()
    frame3[frame3 == -1] = 5
    i0, j0 = int(s[3]), int(f[3])
    frame3[i0 - 1:i0 + 2, j0 - 1:j0 + 2] = 0
    spots3, rep3 = find_spots(frame3, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                          autoresln=False, nullpix=0))
    assert match(spots3, truth)[3] < 0


def test_build_mask_geometry():
    frame = np.ones((50, 60), np.int32)
    frame[10, 20] = -2
    frame[11, 21] = 3
    m = build_mask(frame.shape, 0.2, 0.1, 3.0, frame, backstop=(5.0, 3.0, 1.0),
                   excludes=((0.0, 0.4, 5.0, 6.0),),
                   quadrilaterals=(((8.0, 1.0), (8.0, 2.0), (9.0, 2.0), (9.0, 1.0)),))
    assert not m[10, 20] and not m[11, 21]  # negative; <= nullpix
    ii, jj = np.indices(frame.shape)
    xs, ys = (ii + 0.5) * 0.2, (jj + 0.5) * 0.1
    in_bs = (xs - 5.0) ** 2 + (ys - 3.0) ** 2 <= 1.0
    in_rect = (xs >= 0) & (xs <= 0.4) & (ys >= 5.0) & (ys <= 6.0)
    in_quad = (xs > 8.0) & (xs < 9.0) & (ys > 1.0) & (ys < 2.0)
    expected = (frame > 3) & ~in_bs & ~in_rect & ~in_quad
    assert np.array_equal(m, expected)
    with pytest.raises(KeywordError):
        build_mask(frame.shape, 0.2, 0.1, None, frame, quadrilaterals=(((0, 0), (1, 1)),))


def test_split_close_pair_and_no_split():
    rng = np.random.default_rng(4)
    truth = np.array([[60.3, 70.6, 4000.0, 1.0, 1.0], [60.8, 75.1, 3000.0, 1.0, 1.0],
                      [140.2, 150.7, 3000.0, 1.0, 1.0]])
    frame = rng.poisson(render(SHAPE, truth, 5.0))
    spots, rep = find_spots(frame, DET, WL, OPEN)
    assert len(spots) == 3
    m = match(spots, truth, tol=0.5)
    assert (m >= 0).all()
    assert (spots.flags[m[:2]] & FLAG_SPLIT).all() and not spots.flags[m[2]] & FLAG_SPLIT
    assert rep.n_split == 2
    assert np.abs(spots.x_px[m] - truth[:, 0]).max() < 0.3
    assert np.abs(spots.y_px[m] - truth[:, 1]).max() < 0.3
    one, _ = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                   autoresln=False, split=False))
    assert len(one) == 2
    # MAXPEAK 1: the two-peak region is rejected
    mp, rep_mp = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                       autoresln=False, maxpeak=1))
    assert len(mp) == 1 and rep_mp.rejected["too_many_peaks"] == 2


def test_overload_flagged_and_kept():
    rng = np.random.default_rng(5)
    truth = grid_spots(rng, n_side=3, margin=40)
    frame = rng.poisson(render(SHAPE, truth, 5.0))
    p = SpotFindParams(threshold=5.0, rmin=0, rmax=1e6, autoresln=False, overload=300.0)
    spots, rep = find_spots(frame, DET, WL, p)
    assert len(spots) == len(truth)
    assert (spots.flags & FLAG_OVERLOADED).all()  # 3000 photons, σ 1 px: peak >= 350 counts
    assert rep.n_overloaded == len(truth) and rep.rejected["overloaded"] == len(truth)


def test_shape_filters_minpix_size_anisotropy_rms():
    rng = np.random.default_rng(6)
    truth = grid_spots(rng, n_side=4, margin=30)
    # one huge blob (σ 8 px, far larger than the median) and one streak (anisotropic)
    extra = np.array([[100.0, 110.0, 4e5, 8.0, 8.0], [53.0, 160.0, 20000.0, 0.6, 3.0]])
    frame = rng.poisson(render(SHAPE, np.vstack([truth, extra]), 5.0))
    p = SpotFindParams(threshold=5.0, rmin=0, rmax=1e6, autoresln=False, max_size_x=4.0,
                       max_size_y=4.0, anisomax=3.0)
    spots, rep = find_spots(frame, DET, WL, p)
    assert len(spots) == len(truth)
    assert rep.rejected["too_large_x"] + rep.rejected["too_large_y"] >= 1
    assert rep.rejected["anisotropic"] == 1
    # MINPIX larger than any spot rejects everything
    none, rep2 = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, minpix=10**6,
                                                       autoresln=False))
    assert len(none) == 0 and rep2.rejected["too_few_pixels"] == rep2.n_regions
    assert any("spots found" in w for w in rep2.warnings)
    # RMSFACTOR higher than any spot's r.m.s. significance rejects everything
    rms, rep3 = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                      autoresln=False, rmsfactor=1e4))
    assert len(rms) == 0 and rep3.rejected["too_weak_rms"] > 0


def test_radii_resolution_ice_and_separation():
    rng = np.random.default_rng(7)
    truth = grid_spots(rng)
    frame = rng.poisson(render(SHAPE, truth, 5.0))
    spots, _ = find_spots(frame, DET, WL, OPEN)
    r = np.hypot(spots.x_mm - DET.beam_x, spots.y_mm - DET.beam_y)
    lo, hi = np.sort(r)[2] + 1e-3, np.sort(r)[-3] - 1e-3
    p = SpotFindParams(threshold=5.0, rmin=lo, rmax=hi, autoresln=False)
    inner, rep = find_spots(frame, DET, WL, p)
    assert len(inner) == len(spots) - 6 and rep.rejected["outside_radius"] == 6
    d = spots.d_spacing
    two_theta = np.arctan(r / DET.distance)
    np.testing.assert_allclose(d, WL / (2 * np.sin(two_theta / 2)), rtol=1e-12)
    dmin = np.sort(d)[4] + 1e-6
    res, rep_r = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                       autoresln=False, d_min=dmin))
    assert len(res) == len(spots) - 5 and rep_r.rejected["resolution"] == 5
    assert rep_r.d_min_spots >= dmin
    # ICE: put the wavelength so that one spot sits exactly on the 3.67 A ring
    k = 7
    theta = 0.5 * np.arctan(r[k] / DET.distance)
    wl_ice = 2 * 3.67 * np.sin(theta)
    ice, rep_i = find_spots(frame, DET, wl_ice, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                           autoresln=False, ice=True,
                                                           ice_width=0.001))
    assert rep_i.rejected["ice"] >= 1 and len(ice) == len(spots) - rep_i.rejected["ice"]
    # SEPARATION larger than the grid spacing in both X and Y: every spot too close
    sep, rep_s = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                       autoresln=False, separation=(4.0, 4.0)))
    assert len(sep) == 0 and rep_s.rejected["too_close"] == len(spots)
    # ... and smaller: none
    sep2, _ = find_spots(frame, DET, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                    autoresln=False, separation=(2.0, 2.0)))
    assert len(sep2) == len(spots)


def test_default_search_radii_follow_inscribed_circle():
    rng = np.random.default_rng(8)
    frame = rng.poisson(render(SHAPE, grid_spots(rng), 5.0))
    _, rep = find_spots(frame, DET, WL, SpotFindParams(autoresln=False))
    r_in = min(DET.beam_x, SHAPE[0] * PIX - DET.beam_x, DET.beam_y, SHAPE[1] * PIX - DET.beam_y)
    assert rep.rmin == pytest.approx(0.05 * r_in) and rep.rmax == pytest.approx(0.95 * r_in)


def test_find_many_and_merge_across_images():
    rng = np.random.default_rng(9)
    truth = grid_spots(rng, n_side=4, margin=30)
    weights = [0.25, 0.5, 0.25]  # each reflection spread over 3 consecutive images
    frames = [rng.poisson(render(SHAPE, truth * [1, 1, w, 1, 1], 5.0)) for w in weights]
    phis = [(0.0, 0.1), (0.1, 0.2), (0.2, 0.3)]
    spots, reps = find_spots_many(frames, DET, WL, OPEN, phis=phis, images=[7, 8, 9], n_threads=2)
    assert [r.image for r in reps] == [7, 8, 9] and len(spots) == 3 * len(truth)
    merged = merge_across_images(spots)
    assert len(merged) == len(truth)
    m = match(merged, truth)
    assert (m >= 0).all()
    np.testing.assert_allclose(merged.phi[m], 0.15, atol=0.01)
    assert (merged.image[m] == 8).all()
    pull = (merged.intensity[m] - truth[:, 2]) / merged.sigma[m]
    assert np.abs(pull).max() < 4
    # images not consecutive are not joined
    s2 = spots.replace(image=np.where(spots.image == 8, 20, spots.image).astype(np.int32))
    assert len(merge_across_images(s2)) == 3 * len(truth)


def test_rules_raster_separation_auto_threshold_autoresln():
    assert raster_from_spot_size(3, 5) == (13, 17, 9, 4, 5)  # MOSFLM's example
    assert separation_from_spot_size(3, 5, 0.1024, 0.1024) == (0.51, 0.71)
    nxs, nys, nc, nrx, nry = raster_from_spot_size(4, 2)
    assert nxs % 2 == 1 and nys % 2 == 1 and nxs - 2 * nrx >= 4 and nys - 2 * nry >= 2
    assert choose_auto_threshold(np.full(2000, 150.0)) == 20.0
    assert choose_auto_threshold(np.full(2000, 50.0)) == 10.0
    assert choose_auto_threshold(np.full(2000, 20.0)) == 5.0
    assert choose_auto_threshold(np.full(100, 500.0)) == 5.0  # too few spots to raise it
    rng = np.random.default_rng(0)
    # weak image: 100 spots to 3 A, plus 3 noise spots out to 1.5 A
    d_real = (rng.uniform(0, 1 / 27, 100)) ** (-1 / 3)
    lim = autoresln_limit(np.concatenate([d_real, [1.5, 1.6, 1.7]]))
    assert lim is not None and 1.7 < lim <= 3.2
    assert autoresln_limit(d_real) is None
    assert autoresln_limit(np.concatenate([d_real] * 4)) is None  # not a weak image


def test_auto_threshold_raised_on_strong_image():
    rng = np.random.default_rng(10)
    shape = (400, 400)
    s, f = np.meshgrid(np.arange(8, 392, 11.0), np.arange(8, 392, 11.0), indexing="ij")
    n = s.size
    truth = np.column_stack([s.ravel() + 0.3, f.ravel() + 0.2, np.full(n, 20000.0),
                             np.full(n, 0.8), np.full(n, 0.8)])
    frame = rng.poisson(render(shape, truth, 2.0))
    det = Detector(beam_x=20.0, beam_y=20.0, distance=100.0, pixel_slow=PIX, pixel_fast=PIX,
                   nslow=shape[0], nfast=shape[1])
    spots, rep = find_spots(frame, det, WL, SpotFindParams(rmin=0, rmax=1e6, autoresln=False))
    assert n >= 1000 and rep.threshold == 20.0 and len(spots) == n
    fixed, rep5 = find_spots(frame, det, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                        autoresln=False))
    assert rep5.threshold == 5.0 and len(fixed) == n


def test_errors_are_user_errors():
    frame = np.zeros((20, 20))
    with pytest.raises(KeywordError):
        find_spots(frame, DET, WL, SpotFindParams(threshold=-1.0))
    with pytest.raises(KeywordError):
        find_spots(frame, DET, WL, SpotFindParams(threshold="sometimes"))
    with pytest.raises(KeywordError):
        find_spots(frame, DET, WL, SpotFindParams(background="fancy"))
    with pytest.raises(KeywordError):
        find_spots(np.zeros(5), DET, WL)
    with pytest.raises(KeywordError):
        find_spots(frame, DET, WL, SpotFindParams(box=(1, 1)))
    with pytest.raises(KeywordError):
        find_spots_many([frame, frame], DET, WL, phis=[0.0])
    spots, rep = find_spots(frame, DET, WL)  # a blank image is not an error
    assert len(spots) == 0 and rep.warnings


def _d_swung(x_mm, y_mm, det, tt_deg):
    """Independent d-spacing on a detector swung by tt about the spindle (lab Z) through the
    crystal: lab point Rz(tt) (D, -(X - Xb), Y - Yb), 2theta = angle to the beam (+X)."""
    t = np.radians(tt_deg)
    p = np.stack([np.full_like(x_mm, det.distance), -(x_mm - det.beam_x), y_mm - det.beam_y])
    rx = np.cos(t) * p[0] - np.sin(t) * p[1]
    two_theta = np.arccos(rx / np.linalg.norm(p, axis=0))
    return WL / (2 * np.sin(two_theta / 2)), two_theta


def test_two_theta_resolution_and_search_radius_in_the_swung_frame():
    """2theta = 20 deg: d of every spot and the RMIN/RMAX window (D tan 2theta) follow the
    swung detector (one model, the one prediction uses), not a flat detector about BEAM."""
    rng = np.random.default_rng(11)
    truth = grid_spots(rng, n_side=3, margin=40)
    frame = rng.poisson(render(SHAPE, truth, 5.0))
    det = DET.replace(two_theta=20.0)
    spots, rep = find_spots(frame, det, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                       autoresln=False))
    assert len(spots) == 9
    d, tt = _d_swung(spots.x_mm, spots.y_mm, det, 20.0)
    np.testing.assert_allclose(spots.d_spacing, d, rtol=1e-9)
    # the flat formula about BEAM would be far off (the spots lie at 2theta ~ 10-30 deg)
    flat = WL / (2 * np.sin(0.5 * np.arctan2(
        np.hypot(spots.x_mm - det.beam_x, spots.y_mm - det.beam_y), det.distance)))
    assert np.max(np.abs(flat / d - 1)) > 0.2
    # search window as an angle: keep the spots with D tan(2theta) in [r1, r2]
    r = det.distance * np.tan(tt)
    r1, r2 = np.sort(r)[2] - 1e-6, np.sort(r)[6] + 1e-6
    s2, rep2 = find_spots(frame, det, WL, SpotFindParams(threshold=5.0, rmin=r1, rmax=r2,
                                                     autoresln=False))
    assert len(s2) == 5 and rep2.rejected["outside_radius"] == 4
    # resolution limits from the same model
    cut = float(np.median(d))
    s3, _ = find_spots(frame, det, WL, SpotFindParams(threshold=5.0, rmin=0, rmax=1e6,
                                                  autoresln=False, d_min=cut))
    assert np.all(s3.d_spacing >= cut) and len(s3) == int(np.sum(d >= cut))


def test_two_theta_beam_off_the_detector_searches_the_whole_detector():
    """A detector swung by 30 deg whose direct-beam position is off the panel (issue 9.1: the
    real 2theta = 30 kappa sweep lost spots 'outside the search radii'): the default search
    window is the whole detector, reported as such."""
    rng = np.random.default_rng(12)
    truth = grid_spots(rng, n_side=3, margin=40)
    frame = rng.poisson(render(SHAPE, truth, 5.0))
    det = DET.replace(two_theta=30.0)
    assert det.beam_hit_mm() is not None
    hx, hy = det.beam_hit_mm()
    assert not (0 <= hx <= SHAPE[0] * PIX and 0 <= hy <= SHAPE[1] * PIX)  # off the panel
    spots, rep = find_spots(frame, det, WL, SpotFindParams(threshold=5.0, autoresln=False))
    assert len(spots) == 9 and rep.rejected["outside_radius"] == 0
    assert rep.rmin == 0.0 and rep.rmax == np.inf
