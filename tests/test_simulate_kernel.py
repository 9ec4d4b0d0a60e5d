"""Simulator kernels against their plain-numpy references (tests/reference/simulate_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reference.simulate_ref import detector_counts_ref, render_records_ref, sweep_records_ref

from mosflm_py.kernels.simulate import detector_counts, render_records, sweep_records
from mosflm_py.simulate import default_params
from mosflm_py.simulate.dataset import noise_key
from mosflm_py.simulate.detector import detector_frame
from mosflm_py.simulate.render import (
    MIN_STEPS_PER_IMAGE,
    STEPS_PER_WIDTH,
    crystal_model,
    e_vector,
    phi_edges_deg,
)
from mosflm_py.simulate.truth import observations


@pytest.mark.parametrize("reverse", [False, True])
def test_sweep_records_match_reference(reverse):
    p = default_params(nslow=96, nfast=80, beam_x=8.0, beam_y=7.0, resolution=3.0, n_images=3,
                       osc_width=0.4, reverse_phi=reverse, two_theta=5.0, detector_omega=30.0)
    model = crystal_model(p)
    obs = observations(model, p)
    idx = np.unique(obs.refl[np.abs(obs.phi - 0.6) < 0.8])[:25]
    assert idx.size >= 10
    args = (np.ascontiguousarray(model.r0[idx]), np.ascontiguousarray(model.rho[idx]),
            1.0 / p.wavelength, -1.0 if reverse else 1.0, np.radians(phi_edges_deg(p, 0, 3)),
            STEPS_PER_WIDTH, MIN_STEPS_PER_IMAGE, detector_frame(p).packed(), e_vector(p),
            p.polarisation)
    got = sweep_records(*args)
    ref = sweep_records_ref(*args)
    assert got[0].size == ref[0].size > 50
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got[4], ref[4], rtol=1e-12)


def test_render_records_match_reference():
    rng = np.random.default_rng(5)
    n_img, shape = 3, (3, 40, 36)
    n = 30
    img = np.sort(rng.integers(0, n_img, n)).astype(np.int32)
    starts = np.searchsorted(img, np.arange(n_img + 1)).astype(np.int64)
    pos = np.column_stack([rng.uniform(-3, 43, n), rng.uniform(-3, 39, n)])
    pos[4] = np.nan  # ray missing the detector
    counts = rng.uniform(10, 1000, n)
    out = np.zeros(shape)
    render_records(starts, pos, counts, 0.7, 1.1, 6, out)
    ref = render_records_ref(starts, pos, counts, 0.7, 1.1, 6, shape)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_render_conserves_counts_and_centroid():
    out = np.zeros((1, 30, 30))
    pos = np.array([[12.37, 15.81]])
    render_records(np.array([0, 1], dtype=np.int64), pos, np.array([1000.0]), 0.8, 0.8, 6, out)
    assert out.sum() == pytest.approx(1000.0, rel=1e-6)
    ii, jj = np.mgrid[0:30, 0:30] + 0.5
    assert (out[0] * ii).sum() / 1000.0 == pytest.approx(12.37, abs=1e-4)
    assert (out[0] * jj).sum() / 1000.0 == pytest.approx(15.81, abs=1e-4)


@pytest.mark.parametrize("poisson", [True, False])
def test_detector_counts_match_reference(poisson):
    rng = np.random.default_rng(11)
    expected = rng.choice([0.0, 0.3, 2.5, 7.9, 12.0, 55.5, 3000.0], size=(23, 17))
    shadow = np.zeros(expected.shape, dtype=bool)
    shadow[3:6, 4:8] = True
    invalid = rng.random(expected.shape) < 0.05
    key = noise_key(7, 3)
    out = np.empty(expected.shape, dtype=np.int32)
    detector_counts(expected, shadow, 0.02, invalid, key, poisson, 1.5, 4.0, 2500.0, out)
    ref = detector_counts_ref(expected, shadow, 0.02, invalid, int(key), poisson, 1.5, 4.0, 2500.0)
    np.testing.assert_array_equal(out, ref)


def test_poisson_statistics():
    for lam in (0.7, 6.0, 25.0, 400.0):
        expected = np.full((200, 100), lam)
        none = np.zeros(expected.shape, dtype=bool)
        out = np.empty(expected.shape, dtype=np.int32)
        detector_counts(expected, none, 1.0, none, noise_key(1, 1), True, 1.0, 0.0, 1e9, out)
        n = out.size
        assert out.mean() == pytest.approx(lam, abs=5 * np.sqrt(lam / n))
        assert out.var() == pytest.approx(lam, rel=5 * np.sqrt(2.0 / n) + 0.01)
        if lam < 1:  # P(0) = exp(-lam)
            assert np.mean(out == 0) == pytest.approx(np.exp(-lam), abs=0.01)
