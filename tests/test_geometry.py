"""Geometry round trips: pixel → lab → reciprocal → pixel, matrices, prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal, b_matrix, cell_from_b, reciprocal_cell
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.geometry.prediction import (
    fraction_on_image,
    generate_hkl,
    nearest_phi,
    predict,
)
from mosflm_py.geometry.reciprocal import rlp_to_hkl, spots_to_rlp
from mosflm_py.geometry.rotation import misset_matrix, missets_from_matrix, orthonormalise

TRICLINIC = (31.2, 45.7, 52.9, 77.3, 84.1, 69.8)


def random_u(rng: np.random.Generator) -> np.ndarray:
    return orthonormalise(rng.normal(size=(3, 3)))


def test_b_matrix_is_busing_levy_and_inverts():
    b = b_matrix(TRICLINIC)
    assert b[1, 0] == 0 and b[2, 0] == 0 and b[2, 1] == 0
    ast = reciprocal_cell(TRICLINIC)[0]
    assert b[0, 0] == pytest.approx(ast)
    assert b[2, 2] == pytest.approx(1 / TRICLINIC[2])
    np.testing.assert_allclose(cell_from_b(b), TRICLINIC, rtol=1e-10)
    # real-space metric: columns of inv(B).T are a, b, c
    real = np.linalg.inv(b).T
    assert np.linalg.norm(real[:, 0]) == pytest.approx(TRICLINIC[0])


def test_a_matrix_round_trip_triclinic():
    rng = np.random.default_rng(1)
    cr = Crystal(TRICLINIC, U=random_u(rng), space_group="P 1")
    a = cr.a_matrix(0.9795)
    back = Crystal.from_a_matrix(a, 0.9795)
    np.testing.assert_allclose(back.cell, TRICLINIC, rtol=1e-9)
    np.testing.assert_allclose(back.U, cr.U, atol=1e-9)
    # MOSFLM check from the 6.2.6 log: U[:,0]·λa* = A[:,0]
    np.testing.assert_allclose(a[:, 0], cr.U[:, 0] * 0.9795 * reciprocal_cell(TRICLINIC)[0])


def test_missets_round_trip():
    m = misset_matrix(0.3, -0.7, 1.1)
    np.testing.assert_allclose(missets_from_matrix(m), (0.3, -0.7, 1.1), atol=1e-12)


def test_default_detector_mapping_matches_conventions():
    det = Detector(100.0, 50.0, 60.0, 0.1, 0.1, 1000, 1200)
    p = det.mm_to_lab(np.array([52.0]), np.array([63.0]))[0]
    np.testing.assert_allclose(p, (100.0, -2.0, 3.0))
    np.testing.assert_allclose(np.cross(det.fast_axis, det.slow_axis), (1, 0, 0), atol=1e-12)
    assert det.beam_hit_mm() == pytest.approx((50.0, 60.0))


@pytest.mark.parametrize("two_theta,omega,tilt,twist", [(0, 0, 0, 0), (25.0, 0, 30, -20),
                                                        (-15.0, 90, 0, 0), (0, 180, 12, 7)])
def test_pixel_lab_pixel_round_trip(two_theta, omega, tilt, twist):
    det = Detector(150.0, 40.0, 45.0, 0.172, 0.172, 487, 619, two_theta=two_theta, omega=omega,
                   tilt=tilt, twist=twist, yscale=1.001)
    rng = np.random.default_rng(2)
    slow, fast = rng.uniform(0, 487, 50), rng.uniform(0, 619, 50)
    x, y = det.px_to_mm(slow, fast)
    lab = det.mm_to_lab(x, y)
    x2, y2, ok = det.lab_to_mm(lab * rng.uniform(0.5, 2.0, (50, 1)))  # any point on the ray
    assert ok.all()
    s2, f2 = det.mm_to_px(x2, y2)
    np.testing.assert_allclose(s2, slow, atol=1e-9)
    np.testing.assert_allclose(f2, fast, atol=1e-9)


def test_two_theta_beam_point_is_foot_of_perpendicular():
    det = Detector(120.0, 30.0, 30.0, 0.1, 0.1, 600, 600, two_theta=20.0)
    foot = det.mm_to_lab(np.array([30.0]), np.array([30.0]))[0]
    np.testing.assert_allclose(np.linalg.norm(foot), 120.0)
    np.testing.assert_allclose(foot / 120.0, det.normal, atol=1e-12)
    # direct beam lands off the BEAM point by D tan(2θ) along the swing direction
    bx, by = det.beam_hit_mm()
    assert by == pytest.approx(30.0)
    assert abs(bx - 30.0) == pytest.approx(120.0 * np.tan(np.radians(20.0)))


def test_spot_finding_helpers_of_the_detector_model():
    """Search radius, resolution, inscribed circle and pixel -> lab on the one detector model
    (spot finding uses these; the flat formulas are their 2theta = 0 special case)."""
    det = Detector(100.0, 50.0, 60.0, 0.1, 0.1, 1000, 1200)
    x, y = np.array([53.0, 50.0, 20.0]), np.array([64.0, 10.0, 60.0])
    r = np.hypot(x - 50.0, y - 60.0)
    np.testing.assert_allclose(det.search_radius(x, y), r, rtol=1e-12)
    d = 1.0 / (2 * np.sin(0.5 * np.arctan(r / 100.0)))
    np.testing.assert_allclose(det.resolution_of(x, y, 1.0), d, rtol=1e-12)
    for dd, rr in zip(d, r):
        assert det.radius_at_resolution(dd, 1.0) == pytest.approx(rr, rel=1e-10)
    assert det.inscribed_radius() == pytest.approx(50.0)  # beam 50 mm from the slow edge
    np.testing.assert_allclose(det.px_to_lab(np.array([530.0]), np.array([640.0]))[0],
                               (100.0, -3.0, 4.0), atol=1e-12)
    # swung by 30 deg: the radius is D tan(2theta) of the true scattering angle, the beam hits
    # the plane 57.7 mm off the BEAM point (off this panel), so there is no inscribed circle
    sw = det.replace(two_theta=30.0)
    tt = np.radians(sw.two_theta_of(x, y))
    np.testing.assert_allclose(sw.search_radius(x, y), 100.0 * np.tan(tt), rtol=1e-12)
    assert sw.inscribed_radius() == 0.0
    assert sw.search_radius(np.zeros(0), np.zeros(0)).shape == (0,)


def make_experiment(cell=TRICLINIC, two_theta=0.0, reverse=False, seed=3, mosaic=0.3):
    rng = np.random.default_rng(seed)
    cr = Crystal(cell, U=random_u(rng), missets=(0.1, -0.2, 0.05), mosaic=mosaic)
    det = Detector(120.0, 41.3, 44.9, 0.172, 0.172, 512, 560, two_theta=two_theta)
    return Experiment(Beam(1.0), det, Goniometer(reverse_phi=reverse), cr)


@pytest.mark.parametrize("two_theta,reverse", [(0.0, False), (20.0, False), (0.0, True)])
def test_predictions_lie_on_ewald_sphere_and_index_back(two_theta, reverse):
    exp = make_experiment(two_theta=two_theta, reverse=reverse)
    pred = predict(exp, 10.0, 15.0, d_min=2.0)
    assert len(pred) > 50
    s0 = exp.beam.s0
    # |s1| = 1/λ and s1 - s0 = R(φ) UB h
    np.testing.assert_allclose(np.linalg.norm(pred.s1, axis=1), 1.0, rtol=1e-9)
    rots = exp.goniometer.rotations(pred.phi)
    r = np.einsum("nij,nj->ni", rots, pred.hkl @ exp.crystal.UB.T)
    np.testing.assert_allclose(pred.s1 - s0, r, atol=1e-9)
    # detector position → rlp at the datum → integer hkl again (pixel → reciprocal → pixel)
    rlp = spots_to_rlp(pred.x_mm, pred.y_mm, pred.phi, exp)
    hkl = rlp_to_hkl(rlp, exp.crystal.UB)
    np.testing.assert_allclose(hkl, pred.hkl, atol=1e-6)
    assert (pred.d >= 2.0 - 1e-9).all()


def test_nearest_phi_recovers_prediction():
    exp = make_experiment()
    pred = predict(exp, 0.0, 3.0, d_min=2.5)
    phi, x, y = nearest_phi(exp, pred.hkl, pred.phi + 0.3)
    np.testing.assert_allclose(phi, pred.phi, atol=1e-8)
    np.testing.assert_allclose(x, pred.x_mm, atol=1e-8)


def test_fractions_sum_to_one_over_images():
    exp = make_experiment(mosaic=0.8)
    pred = predict(exp, 0.0, 10.0, d_min=2.5)
    inner = pred.select((pred.phi - pred.width > 1.0) & (pred.phi + pred.width < 9.0))
    edges = np.arange(0.0, 10.01, 0.2)
    total = sum(
        fraction_on_image(inner.phi, inner.width, a, b) for a, b in zip(edges[:-1], edges[1:])
    )
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    # width follows W = λ d* (η + δ)/|ζ| for the default (no divergence) beam
    w = np.degrees(np.radians(0.8) / pred.d * exp.beam.wavelength / np.abs(pred.zeta))
    np.testing.assert_allclose(pred.width, w, rtol=1e-9)


def test_generate_hkl_resolution_and_absences():
    cr = Crystal((50.0, 60.0, 70.0, 90, 90, 90), space_group="P 21 21 21")
    hkl = generate_hkl(cr, 5.0)
    d = 1 / np.linalg.norm(hkl @ b_matrix(cr.cell).T, axis=1)
    assert (d >= 5.0 - 1e-9).all()
    axial = hkl[(hkl[:, 1] == 0) & (hkl[:, 2] == 0)]
    assert (axial[:, 0] % 2 == 0).all()
    full = generate_hkl(Crystal((50.0, 60.0, 70.0, 90, 90, 90)), 5.0)
    assert len(full) > len(hkl)
    # count agrees with the reciprocal-volume estimate within 3 %
    expected = 4 / 3 * np.pi / 5.0**3 * 50 * 60 * 70
    assert abs(len(full) - expected) / expected < 0.03
