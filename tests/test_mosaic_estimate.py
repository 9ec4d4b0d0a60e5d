"""MOSAIC ESTIMATE: the pure algorithm and the session action on simulated images of known η."""

from __future__ import annotations

import io

import numpy as np
import pytest

from mosflm_py.actions.common import current_crystal
from mosflm_py.errors import GeometryError, IntegrationError
from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.rotation import misset_matrix
from mosflm_py.imageio.formats import read_frame
from mosflm_py.mosaic import MosaicParams, box_summation, estimate_mosaic, plateau_index
from mosflm_py.session import Session
from mosflm_py.simulate import default_params, simulate_dataset

PHI0, OSC = 10.0, 1.0


def _sim(tmp_path_factory, eta):
    p = default_params(nslow=400, nfast=400, beam_x=34.0, beam_y=35.0, distance=100.0,
                       n_images=1, mosaic=eta, osc_width=OSC, resolution=2.0, phi_start=PHI0)
    return simulate_dataset(p, tmp_path_factory.mktemp(f"mos{eta}"))


@pytest.fixture(scope="module")
def sims(tmp_path_factory):
    return {eta: _sim(tmp_path_factory, eta) for eta in (0.3, 0.8)}


def _experiment(ds, u=None):
    p = ds.params
    truth = np.load(ds.truth_path)
    cr = Crystal(cell=p.cell, U=truth["U"] if u is None else u, space_group=p.space_group)
    det = Detector(distance=p.distance, beam_x=p.beam_x, beam_y=p.beam_y,
                   pixel_slow=p.pixel_size, pixel_fast=p.pixel_size, nslow=p.nslow,
                   nfast=p.nfast)
    return Experiment(beam=Beam(p.wavelength, 0.95, (0.0, 0.0), 0.0), detector=det, crystal=cr)


def _frame(ds):
    return read_frame(str(ds.paths[0]))


@pytest.mark.parametrize("eta", [0.3, 0.8])
def test_estimate_within_tolerance_of_truth(sims, eta):
    ds = sims[eta]
    est = estimate_mosaic(_frame(ds), _experiment(ds), PHI0, PHI0 + OSC)
    assert est.plateau_reached and not est.warnings
    # measured: 0.295 (true 0.3) and 0.738 (true 0.8); MOSFLM's plateau method is biased low
    assert est.eta == pytest.approx(eta, rel=0.15)
    assert est.step == 0.05
    etas = [r.eta for r in est.rows]
    assert np.allclose(etas, np.arange(len(etas)) * 0.05)
    n_pred = np.array([r.n_predicted for r in est.rows])
    assert np.all(np.diff(n_pred) >= 0)
    assert sum(r.n_gained for r in est.rows) == n_pred[-1]
    totals = np.array([r.total for r in est.rows])
    # rises by far more than its noise before the estimate, flat (within 4 SD) after it
    k = int(np.searchsorted(etas, est.eta + 0.1))
    assert totals[k] - totals[0] > 50 * est.rows[k].sd
    assert np.all(np.abs(totals[k:] - totals[k]) < 4 * est.rows[-1].sd)


def test_wrong_orientation_gives_no_estimate_and_advice(sims):
    ds = sims[0.3]
    truth = np.load(ds.truth_path)
    wrong = misset_matrix(0.0, 15.0, 0.0) @ truth["U"]
    est = estimate_mosaic(_frame(ds), _experiment(ds, u=wrong), PHI0, PHI0 + OSC)
    assert est.eta is None or not est.plateau_reached
    assert est.warnings and "symmetry" in " ".join(est.warnings)


def test_still_and_missing_crystal_are_errors(sims):
    ds = sims[0.3]
    with pytest.raises(GeometryError, match="still"):
        estimate_mosaic(_frame(ds), _experiment(ds), PHI0, PHI0)
    with pytest.raises(GeometryError, match="AUTOINDEX"):
        estimate_mosaic(_frame(ds), _experiment(ds).replace(crystal=None), PHI0, PHI0 + OSC)
    with pytest.raises(GeometryError):
        MosaicParams(step=0.0)


def test_plateau_index_synthetic_curve():
    eta = np.arange(21) * 0.1
    total = 1000.0 * np.minimum(eta, 0.5) + np.array([3, -2, 1, 0, 2, -1, 1, -3, 2, 0, 1,
                                                      -2, 0, 1, 2, -1, 0, 1, -2, 0, 1])
    var = 25.0 * (1 + np.arange(21))
    assert eta[plateau_index(total, var)] == pytest.approx(0.5)
    rising = 1000.0 * eta
    assert plateau_index(rising, var) == 20


def test_box_summation_recovers_known_intensity():
    rng = np.random.default_rng(5)
    ns, nf, bg, amp = 64, 64, 20.0, 3000.0
    ii, jj = np.mgrid[0:ns, 0:nf] + 0.5
    centres = np.array([[20.3, 30.6], [45.0, 12.2]])
    expected = np.full((ns, nf), bg)
    for c in centres:
        expected += amp / (2 * np.pi) * np.exp(-0.5 * ((ii - c[0]) ** 2 + (jj - c[1]) ** 2))
    frame = rng.poisson(expected).astype(np.int32)
    i, var, ok = box_summation(frame, centres[:, 0], centres[:, 1], (6, 6), (3, 3))
    assert ok.all()
    frac = 0.999  # of a unit Gaussian inside +-3.5 px (7 x 7 peak, centre within the pixel)
    assert np.all(np.abs(i - amp * frac) < 4 * np.sqrt(var))
    assert np.all(np.sqrt(var) > np.sqrt(amp))
    # off the image, and an inactive peak pixel
    frame[20, 30] = -1
    i2, _, ok2 = box_summation(frame, np.array([2.0, 20.3]), np.array([2.0, 30.6]), (6, 6),
                               (3, 3))
    assert not ok2.any() and np.all(i2 == 0)
    with pytest.raises(IntegrationError):
        box_summation(frame, centres[:, 0], centres[:, 1], (3, 3), (3, 3))


def _run(ds, *lines):
    buf = io.StringIO()
    s = Session(out=buf)
    s.run_lines([f"DIRECTORY {ds.out_dir}", f"TEMPLATE {ds.template}", *lines])
    return s, buf.getvalue()


@pytest.mark.parametrize("eta", [0.3, 0.8])
def test_mosaic_estimate_action_with_true_matrix(sims, eta):
    ds = sims[eta]
    s, text = _run(ds, f"MATRIX {ds.matrix_path}", "SYMMETRY P212121", "DIVERGENCE 0 0",
                   "DISPERSION 0", "MOSAIC ESTIMATE 1", "GO")
    assert s.failures == 0, text
    got = s.results.crystal.crystal.mosaic
    assert got == pytest.approx(eta, rel=0.2)  # measured 0.29 and 0.74
    assert s.results.crystal.origins["mosaic"].source == "MOSAIC ESTIMATE"
    assert s.state.crystal.mosaic is None  # the user's settings are unchanged
    assert "The mosaicity has been estimated as --->" in text
    assert "for this image only" in text and "No gained" in text
    assert s.results.mosaic.eta == pytest.approx(got)
    assert current_crystal(s).mosaic == pytest.approx(got)


def test_mosaic_estimate_still_keeps_value(sims):
    ds = sims[0.3]
    s, text = _run(ds, f"MATRIX {ds.matrix_path}", "MOSAIC 0.4", "IMAGE 1 PHI 10 TO 10",
                   "MOSAIC ESTIMATE 1", "GO")
    assert s.failures == 0, text
    assert "cannot be" in text and "still" in text
    assert s.state.crystal.mosaic == 0.4 and current_crystal(s).mosaic == 0.4


def test_mosaic_estimate_without_crystal_fails_cleanly(sims):
    s, text = _run(sims[0.3], "MOSAIC ESTIMATE", "GO")
    assert s.failures == 1
    assert "AUTOINDEX" in text and "Internal error" not in text
