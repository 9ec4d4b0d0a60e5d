"""Cross-check: simulator truth against the processing code's closed-form prediction.

The simulator implements conventions.txt on its own; these tests catch a disagreement between the
two implementations (frames, signs, rocking-curve model) as early as possible.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.simulate import default_params
from mosflm_py.simulate.render import crystal_model, sweep
from mosflm_py.simulate.truth import assign_partials, observations

geometry = pytest.importorskip("mosflm_py.geometry.experiment")


def _experiment(p, model):
    from mosflm_py.geometry.beam import Beam
    from mosflm_py.geometry.crystal import Crystal
    from mosflm_py.geometry.detector import Detector
    from mosflm_py.geometry.experiment import Experiment
    from mosflm_py.geometry.goniometer import Goniometer

    return Experiment(
        beam=Beam(wavelength=p.wavelength, polarisation=p.polarisation,
                  divergence=(p.divergence_h, p.divergence_v), dispersion=p.dispersion),
        detector=Detector(distance=p.distance, beam_x=p.beam_x, beam_y=p.beam_y,
                          pixel_slow=p.pixel_size, pixel_fast=p.pixel_fast, nslow=p.nslow,
                          nfast=p.nfast, two_theta=p.two_theta, omega=p.detector_omega),
        goniometer=Goniometer(reverse_phi=p.reverse_phi),
        crystal=Crystal(cell=p.cell, U=model.U, missets=p.missets, space_group=p.space_group,
                        mosaic=p.mosaic),
    )


CASES = {
    "default": dict(),
    "reverse_2theta_omega": dict(reverse_phi=True, two_theta=6.0, detector_omega=90.0,
                                 missets=(0.3, -0.6, 1.1), pixel_size_fast=0.16,
                                 divergence_h=0.05, divergence_v=0.02, dispersion=2e-4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_truth_matches_geometry_prediction(case):
    from mosflm_py.geometry.prediction import fraction_on_image, predict

    p = default_params(nslow=300, nfast=280, beam_x=26.0, beam_y=23.0, distance=100.0,
                       resolution=2.5, n_images=6, phi_start=20.0, **CASES[case])
    model = crystal_model(p)
    obs = observations(model, p)
    end = p.phi_start + p.n_images * p.osc_width
    pred = predict(_experiment(p, model), p.phi_start, end, d_min=2.5)
    sel = obs.on_detector & (obs.phi > p.phi_start) & (obs.phi < end) & ~obs.small_zeta
    assert sel.sum() > 100
    # match by hkl and phi
    key = {}
    for i, (h, ph) in enumerate(zip(map(tuple, pred.hkl.tolist()), pred.phi)):
        key.setdefault(h, []).append((ph, i))
    n_match = 0
    rows = []
    for i in np.nonzero(sel)[0]:
        cands = key.get(tuple(obs.hkl[i].tolist()), [])
        best = min(cands, key=lambda c: abs(c[0] - obs.phi[i]), default=None)
        assert best is not None, f"{obs.hkl[i]} at {obs.phi[i]:.3f} not predicted"
        j = best[1]
        rows.append((i, j))
        n_match += 1
    i, j = np.array(rows).T
    np.testing.assert_allclose(pred.phi[j], obs.phi[i], atol=1e-6)
    np.testing.assert_allclose(pred.x_mm[j], obs.x_mm[i], atol=1e-6)
    np.testing.assert_allclose(pred.y_mm[j], obs.y_mm[i], atol=1e-6)
    np.testing.assert_allclose(np.abs(pred.zeta[j]), np.abs(obs.zeta[i]), atol=1e-9)
    np.testing.assert_allclose(pred.width[j], obs.width[i], rtol=1e-6)
    # the sub-stepped fractions on each image follow the closed-form rocking model
    rec = sweep(model, p, 0, p.n_images)
    key2 = rec.refl.astype(np.int64) * p.n_images + rec.img
    uk, inv = np.unique(key2, return_inverse=True)
    part = assign_partials(obs, uk // p.n_images, uk % p.n_images, np.bincount(inv, rec.g),
                           np.bincount(inv, rec.g), p)
    o = part["obs"]
    ok = np.isin(o, i)
    o, img, frac = o[ok], part["image"][ok] - p.first_image, part["fraction"][ok]
    phi1 = p.phi_start + img * p.osc_width
    closed = fraction_on_image(obs.phi[o], obs.width[o], phi1, phi1 + p.osc_width)
    assert frac.size > 300
    assert np.max(np.abs(frac - closed)) < 0.003
