"""The simulator's nanoBragg-like "domains" model against independent calculations.

Discrete mosaic domains (spherical cap), Gaussian domain size, sub-stepped rotation, detector
point-spread and CCD read noise (mosflm_py/simulate/domains.py, kernels/simulate.py).  None of
these checks uses the processing code's rocking-curve or partiality model.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from reference.simulate_ref import detector_counts_ref, render_domains_ref

from mosflm_py.errors import KeywordError
from mosflm_py.kernels.simulate import detector_counts, render_domains
from mosflm_py.simulate import default_params
from mosflm_py.simulate.detector import detector_frame
from mosflm_py.simulate.domains import (
    GAUSS_XTAL_FUDGE,
    blob_precision,
    blur,
    domain_model,
    mosaic_rotations,
    phi_substeps,
    render_domains_batch,
)
from mosflm_py.simulate.params import nanobragg_like_params
from mosflm_py.simulate.render import crystal_model, e_vector, render, sweep
from mosflm_py.simulate.truth import observations, reflecting_angles


def _rotation_vector(r: np.ndarray) -> np.ndarray:
    """Axis * angle (rad) of a rotation matrix (independent of the Rodrigues code)."""
    ang = math.acos(max(-1.0, min(1.0, (np.trace(r) - 1.0) / 2.0)))
    if ang < 1e-12:
        return np.zeros(3)
    ax = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * math.sin(ang))
    return ax * ang


def test_mosaic_domains_follow_nanobragg_spherical_cap():
    m = 0.5
    rot = mosaic_rotations(m, 6000, seed=3)
    assert np.allclose(rot[0], np.eye(3))
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3)[None], atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    vec = np.degrees(np.array([_rotation_vector(r) for r in rot]))
    ang = np.linalg.norm(vec, axis=1)
    assert ang.max() <= m * (1 + 1e-9)
    # angle = m (1 - r^2)^(1/3), r ~ U[-1, 1]: E[angle^2] = m^2 int_0^1 (1 - r^2)^(2/3) dr;
    # the rms component about any fixed axis is sqrt(E[angle^2] / 3) = 0.4967 m (README: 0.49).
    e2 = math.sqrt(math.pi) / 2 * math.gamma(5 / 3) / math.gamma(13 / 6)
    expected = m * math.sqrt(e2 / 3)
    assert expected == pytest.approx(0.4967 * m, rel=1e-3)
    for axis in range(3):
        assert np.sqrt(np.mean(vec[:, axis] ** 2)) == pytest.approx(expected, rel=0.04)
    # axes uniform on the sphere: mean of the unit axis ~ 0
    assert np.all(np.abs(np.mean(vec[1:] / ang[1:, None], axis=0)) < 0.05)


def test_blob_has_nanobragg_gauss_xtal_width_in_miller_index_units():
    """|F_latt|^2 ~ exp(-2 N^2 dh^2 / 0.63): sd of dh along each axis = sqrt(0.63) / (2 N)."""
    p = default_params(cell=(41.0, 57.0, 66.0, 80.0, 103.0, 95.0), space_group="P 1")
    model = crystal_model(p)
    recip = model.M @ model.U @ model.B
    n = (5, 9, 14)
    cov = np.linalg.inv(blob_precision(recip, n))
    real = np.linalg.inv(recip)  # rows: a, b, c; dh_i = a_i . dq
    cov_h = real @ cov @ real.T
    np.testing.assert_allclose(
        np.sqrt(np.diag(cov_h)), math.sqrt(GAUSS_XTAL_FUDGE) / (2 * np.array(n)), rtol=1e-10
    )
    # independent Miller offsets: nanoBragg's hrad^2 is a plain sum over the three axes
    np.testing.assert_allclose(cov_h - np.diag(np.diag(cov_h)), 0.0, atol=1e-12)


def _small_setup(oversample=2, reverse=False):
    p = nanobragg_like_params(
        nslow=40,
        nfast=36,
        beam_x=3.0,
        beam_y=3.2,
        resolution=4.0,
        n_images=2,
        osc_width=0.3,
        mosaic=0.4,
        mosaic_domains=3,
        domain_size=(4, 5, 3),
        phi_steps=2,
        oversample=oversample,
        distance=60.0,
        reverse_phi=reverse,
        two_theta=4.0,
    )
    model = crystal_model(p)
    det = detector_frame(p)
    obs = observations(model, p, det)
    sel = obs.on_detector & (np.abs(obs.phi - 0.3) < 1.0)
    idx = np.unique(obs.refl[sel])[:8]
    return p, model, det, idx


@pytest.mark.parametrize("reverse", [False, True])
def test_render_domains_matches_numpy_reference(reverse):
    p, model, det, idx = _small_setup(reverse=reverse)
    assert idx.size >= 4
    dom = domain_model(p, model.M @ model.U @ model.B)
    r0 = np.ascontiguousarray(model.r0[idx])
    inten = np.linspace(100.0, 900.0, idx.size)
    sign = -1.0 if reverse else 1.0
    phi_sub = phi_substeps(p, 0, 2)
    dphi = math.radians(p.osc_width / p.phi_steps)
    out = np.zeros((2, p.nslow, p.nfast), dtype=np.float32)
    g = np.zeros((idx.size, 2))
    c = np.zeros((idx.size, 2))
    reach = 6.0 * dom.sigma_max
    render_domains(
        r0,
        inten,
        dom.rot,
        dom.prec,
        dom.norm,
        36.0,
        reach,
        1.1 * reach,
        1.0 / p.wavelength,
        sign,
        phi_sub,
        dphi,
        det.packed(),
        p.oversample,
        200,
        e_vector(p),
        p.polarisation,
        out,
        g,
        c,
    )
    ref, g_ref, c_ref = render_domains_ref(
        r0,
        inten,
        dom.rot,
        dom.prec,
        dom.norm,
        1.0 / p.wavelength,
        sign,
        phi_sub,
        dphi,
        det.packed(),
        p.oversample,
        e_vector(p),
        p.polarisation,
        out.shape,
    )
    assert ref.sum() > 1.0
    # the kernel stops at 6 sd (exp(-18) of the peak): agreement to ~1e-7 of the largest pixel
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6 * ref.max())
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-7 * g_ref.max())
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-7 * c_ref.max())


@functools.lru_cache(maxsize=1)
def _chosen_hkl() -> tuple[int, int, int]:
    """A reflection at d ~ 3-5 A crossing the sphere well inside the detector, largest |zeta|."""
    base = default_params(
        resolution=2.8,
        seed=4,
        nslow=512,
        nfast=512,
        beam_x=44.0,
        beam_y=44.0,
        distance=100.0,
        n_images=720,
    )
    obs = observations(crystal_model(base), base)
    ok = obs.on_detector & (obs.dstar > 0.2) & (obs.dstar < 0.35)
    ok &= (np.abs(obs.slow_px - 256) < 200) & (np.abs(obs.fast_px - 256) < 200)
    return tuple(int(v) for v in obs.hkl[np.argmax(np.where(ok, np.abs(obs.zeta), -1.0))])


def _one_reflection_params(**changes):
    """A single reflection, fully recorded in the middle of a 4-degree sweep."""
    base = default_params(
        resolution=None,
        intensities={_chosen_hkl(): 1.0e5},
        seed=4,
        background=0.0,
        background_radial=0.0,
        poisson=False,
        nslow=512,
        nfast=512,
        beam_x=44.0,
        beam_y=44.0,
        distance=100.0,
        n_images=720,
        reverse_phi=bool(changes.get("reverse_phi", False)),
    )
    obs = observations(crystal_model(base), base)
    k = int(np.argmax(np.where(obs.on_detector, np.abs(obs.zeta), -1.0)))
    assert obs.on_detector[k] and abs(obs.zeta[k]) > 0.2
    phi = float(obs.phi[k])
    changes.setdefault("phi_start", phi - 2.0)
    changes.setdefault("osc_width", 0.25)
    changes.setdefault("n_images", 16)
    return base.replace(**changes), k


def _crossing(p):
    model = crystal_model(p)
    det = detector_frame(p)
    obs = observations(model, p, det)
    k = int(np.argmin(np.abs(obs.phi - (p.phi_start + 0.5 * p.n_images * p.osc_width))))
    return model, det, obs, k


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "ball", "mosaic": 0.3},
        {
            "model": "domains",
            "mosaic": 0.0,
            "mosaic_domains": 1,
            "domain_size": (8, 8, 8),
            "phi_steps": 4,
            "oversample": 3,
        },
        {
            "model": "domains",
            "mosaic": 0.6,
            "mosaic_domains": 25,
            "domain_size": (4, 6, 5),
            "phi_steps": 3,
            "oversample": 2,
        },
        {
            "model": "domains",
            "mosaic": 0.2,
            "mosaic_domains": 10,
            "domain_size": (20, 20, 20),
            "phi_steps": 8,
            "oversample": 4,
            "reverse_phi": True,
        },
    ],
)
def test_total_counts_of_a_crossing_do_not_depend_on_the_crystal_model(changes):
    """Summed over every pixel of every image, one reflection gives I P / |zeta| counts (closed
    form at the reflecting position), for the ball model and any domain model."""
    p, _ = _one_reflection_params(**changes)
    model, det, obs, k = _crossing(p)
    assert obs.on_detector[k] and abs(obs.zeta[k]) > 0.2
    expected = obs.intensity[k] * obs.polarisation[k] * obs.lorentz[k]
    if p.model == "domains":
        spots, _, acc_c = render_domains_batch(model, p, 0, p.n_images, det)
        images = blur(spots, p)
        assert acc_c.sum() == pytest.approx(float(spots.sum(dtype=np.float64)), rel=1e-5)
    else:
        images = _ball_images(model, p, det)
    per_image = images.sum(axis=(1, 2), dtype=np.float64)
    assert per_image[0] < 1e-4 * per_image.sum() and per_image[-1] < 1e-4 * per_image.sum()
    assert per_image.sum() == pytest.approx(expected, rel=0.01)


def _ball_images(model, p, det):
    rec = sweep(model, p, 0, p.n_images, det)
    return render(rec, model.intensity[rec.refl] * rec.pol * rec.g, p, p.n_images)


def _phi_sd(images: np.ndarray, p) -> float:
    w = images.sum(axis=(1, 2), dtype=np.float64)
    phi = p.phi_start + (np.arange(w.size) + 0.5) * p.osc_width
    mean = np.sum(w * phi) / w.sum()
    var = np.sum(w * (phi - mean) ** 2) / w.sum() - p.osc_width**2 / 12.0  # image binning
    return math.sqrt(var)


def test_rocking_width_follows_the_domain_size():
    """Single domain, no mosaic: the rocking curve is the Gaussian blob crossing the sphere, sd
    ``sqrt(n^T P0^-1 n) / (|s0| |zeta|)`` (``n`` the diffracted direction), so it scales as 1/N."""
    widths = {}
    for n in (5, 10, 20):
        p0, _ = _one_reflection_params()
        model = crystal_model(p0)
        recip = model.M @ model.U @ model.B
        _, det, obs, k = _crossing(p0)
        # predicted sd from the closed-form reflecting geometry
        s1 = np.array([1.0 / p0.wavelength, 0, 0])
        phi = math.radians(obs.phi[k])
        rz = np.array(
            [[math.cos(phi), -math.sin(phi), 0], [math.sin(phi), math.cos(phi), 0], [0, 0, 1]]
        )
        s1 = s1 + rz @ model.r0[obs.refl[k]]
        s1 /= np.linalg.norm(s1)
        cov = np.linalg.inv(blob_precision(recip, (n, n, n)))
        cov_phi = rz @ cov @ rz.T
        sd_pred = math.degrees(math.sqrt(s1 @ cov_phi @ s1) * p0.wavelength / abs(obs.zeta[k]))
        osc = sd_pred / 6.0
        # sample the blob on the detector at <= its lateral sd (pixel-centre sampling otherwise)
        lateral_px = p0.distance * math.sqrt(np.linalg.eigvalsh(cov).min()) * p0.wavelength
        oversample = int(math.ceil(p0.pixel_size / lateral_px)) + 1
        p = p0.replace(
            model="domains",
            mosaic=0.0,
            mosaic_domains=1,
            domain_size=(n, n, n),
            phi_steps=2,
            oversample=oversample,
            osc_width=osc,
            n_images=96,
            phi_start=float(obs.phi[k]) - 48 * osc,
            psf_sigma=0.5,
        )
        model, det, obs2, k2 = _crossing(p)
        spots, _, _ = render_domains_batch(model, p, 0, p.n_images, det)
        widths[n] = _phi_sd(spots, p)
        assert widths[n] == pytest.approx(sd_pred, rel=0.03), n
    assert widths[5] / widths[10] == pytest.approx(2.0, rel=0.04)
    assert widths[10] / widths[20] == pytest.approx(2.0, rel=0.04)


def test_mosaic_domains_set_the_rocking_curve():
    """With blobs much narrower than the mosaic, the rocking curve is the set of the domains'
    own reflecting angles (closed form, ``truth.reflecting_angles`` on each rotated lattice
    point), each weighted by its Lorentz factor 1/|zeta|."""
    p, _ = _one_reflection_params(
        model="domains",
        mosaic=1.0,
        mosaic_domains=60,
        domain_size=(25, 25, 25),
        phi_steps=4,
        osc_width=0.05,
        n_images=80,
        oversample=3,
    )
    model, det, obs, k = _crossing(p)
    spots, _, _ = render_domains_batch(model, p, 0, p.n_images, det)
    sd = _phi_sd(spots, p)
    # independent prediction
    dom = domain_model(p, model.M @ model.U @ model.B)
    r0 = model.r0[obs.refl[k]]
    rd = np.einsum("dij,j->di", dom.rot, r0)
    ang = reflecting_angles(rd, p.wavelength, False)
    pick = np.argmin(np.abs(ang - obs.phi[k]), axis=1)
    phi_d = ang[np.arange(len(rd)), pick]
    pr = np.radians(phi_d)
    s1 = np.stack(
        [
            np.cos(pr) * rd[:, 0] - np.sin(pr) * rd[:, 1] + 1 / p.wavelength,
            np.sin(pr) * rd[:, 0] + np.cos(pr) * rd[:, 1],
            rd[:, 2],
        ],
        axis=1,
    )
    s1 /= np.linalg.norm(s1, axis=1)[:, None]
    w = 1.0 / np.abs(s1[:, 1])
    mean = np.sum(w * phi_d) / w.sum()
    sd_dom = math.sqrt(np.sum(w * (phi_d - mean) ** 2) / w.sum())
    single = p.replace(mosaic=0.0, mosaic_domains=1)
    sd0 = _phi_sd(render_domains_batch(model, single, 0, p.n_images, det)[0], single)
    assert sd0 < 0.2 * sd_dom
    assert sd == pytest.approx(math.sqrt(sd_dom**2 + sd0**2), rel=0.03)
    assert 0.25 < sd_dom < 0.75  # ~0.5 mosaic


def test_point_spread_preserves_counts_and_adds_its_variance():
    p, _ = _one_reflection_params(
        model="domains",
        mosaic=0.2,
        mosaic_domains=8,
        domain_size=(6, 6, 6),
        phi_steps=2,
        n_images=16,
    )
    model, det, _, _ = _crossing(p)
    spots, _, _ = render_domains_batch(model, p, 0, p.n_images, det)
    img = spots.sum(axis=0, dtype=np.float64)

    def moments(a):
        ii, jj = np.indices(a.shape)
        t = a.sum()
        mi, mj = (a * ii).sum() / t, (a * jj).sum() / t
        return t, mi, mj, (a * (ii - mi) ** 2).sum() / t, (a * (jj - mj) ** 2).sum() / t

    for sig_s, sig_f in ((1.5, 1.5), (0.8, 2.0)):
        q = p.replace(psf_sigma=sig_s, psf_sigma_fast=sig_f)
        blurred = blur(spots, q).sum(axis=0, dtype=np.float64)
        t0, i0, j0, vi0, vj0 = moments(img)
        t1, i1, j1, vi1, vj1 = moments(blurred)
        assert t1 == pytest.approx(t0, rel=1e-5)
        assert (i1, j1) == pytest.approx((i0, j0), abs=1e-3)
        assert vi1 - vi0 == pytest.approx(sig_s**2, rel=0.02)
        assert vj1 - vj0 == pytest.approx(sig_f**2, rel=0.02)


def test_ccd_read_noise_gain_and_pedestal():
    shape = (200, 150)
    lam = np.zeros(shape)
    no = np.zeros(shape, dtype=bool)
    out = np.empty(shape, dtype=np.int32)
    detector_counts(lam, no, 0.02, no, np.uint64(99), True, 2.0, 40.0, 65535.0, out, 4.0)
    assert out.mean() == pytest.approx(40.0, abs=0.05)
    assert out.std() == pytest.approx(math.sqrt(16.0 + 1.0 / 12.0), rel=0.03)
    ref = detector_counts_ref(
        lam[:3], no[:3], 0.02, no[:3], 99, True, 2.0, 40.0, 65535.0, read_noise=4.0
    )  # whole rows: the stream is keyed by pixel number
    np.testing.assert_array_equal(out[:3], ref)
    # Poisson photons x gain: variance gain^2 lam + read^2
    lam[:] = 50.0
    detector_counts(lam, no, 0.02, no, np.uint64(7), True, 2.0, 40.0, 65535.0, out, 4.0)
    assert out.mean() == pytest.approx(140.0, abs=0.2)
    assert out.var() == pytest.approx(4.0 * 50.0 + 16.0, rel=0.05)
    # read_noise 0 (the default) leaves the old frames unchanged
    a = np.empty(shape, dtype=np.int32)
    b = np.empty(shape, dtype=np.int32)
    detector_counts(lam, no, 0.02, no, np.uint64(7), True, 1.0, 0.0, 1e6, a)
    detector_counts(lam, no, 0.02, no, np.uint64(7), True, 1.0, 0.0, 1e6, b, 0.0)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "nanobragg"},
        {"model": "domains", "domain_size": (0, 5, 5)},
        {"model": "domains", "phi_steps": 0},
        {"model": "domains", "mosaic_domains": 0},
        {"read_noise": -1.0},
        {"model": "domains", "divergence_h": 0.1},
    ],
)
def test_bad_domain_parameters_are_refused(changes):
    with pytest.raises(KeywordError):
        default_params(**changes)


def test_ccd_like_nanobragg_dataset(tmp_path):
    """A CCD-like SMV sweep of the domains model: header GAIN / IMAGE_PEDESTAL, pixel statistics
    of gain x (Poisson background) + pedestal + read noise, truth written."""
    import fabio

    from mosflm_py.simulate.dataset import simulate_dataset
    from mosflm_py.simulate.detector import background_map

    p = nanobragg_like_params(
        nslow=96,
        nfast=96,
        beam_x=8.0,
        beam_y=8.5,
        n_images=2,
        resolution=4.0,
        background=20.0,
        background_radial=0.0,
        gain=2.0,
        adc_offset=40.0,
        read_noise=4.0,
        distance=80.0,
    )
    ds = simulate_dataset(p, tmp_path, fmt="smv", name="ccd")
    assert len(ds.paths) == 2 and ds.truth_path.is_file()
    img = fabio.open(str(ds.paths[0]))
    assert float(img.header["GAIN"]) == 2.0 and float(img.header["IMAGE_PEDESTAL"]) == 40.0
    data = img.data.astype(float)
    bg = background_map(p)
    # median pixel ~ gain * background + pedestal (spots cover few pixels)
    assert np.median(data) == pytest.approx(2.0 * np.median(bg) + 40.0, abs=1.5)
    spread = np.percentile(data, 75) - np.percentile(data, 25)
    sd = math.sqrt(4.0 * np.median(bg) + 16.0)  # gain^2 * lambda + read^2
    assert spread / 1.349 == pytest.approx(sd, rel=0.15)
