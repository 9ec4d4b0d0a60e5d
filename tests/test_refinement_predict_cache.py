"""PredictionCache: same predictions as geometry.prediction.predict for slowly changing models."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.geometry.prediction import predict
from mosflm_py.refinement.predict_cache import PredictionCache


def _experiment(reverse=False, mosaic=0.4):
    rng = np.random.default_rng(11)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    u = q * np.sign(np.linalg.det(q))
    cr = Crystal((41.0, 52.0, 63.0, 90, 90, 90), U=u, space_group="P 21 21 21", mosaic=mosaic)
    return Experiment(Beam(1.0), Detector(120.0, 40.0, 41.0, 0.172, 0.172, 480, 480),
                      Goniometer(reverse_phi=reverse), crystal=cr)


def _same(p1, p2):
    assert len(p1) == len(p2) > 0
    assert np.array_equal(p1.hkl, p2.hkl)
    np.testing.assert_allclose(p1.phi, p2.phi, atol=1e-9)
    np.testing.assert_allclose(p1.x_mm, p2.x_mm, atol=1e-9)
    np.testing.assert_allclose(p1.width, p2.width, atol=1e-9)


@pytest.mark.parametrize("reverse", [False, True])
def test_cache_matches_full_prediction_over_drifting_model(reverse):
    """30 images of 0.3° with missets drifting 0.01°/image and the cell changing 0.01 %/image:
    identical reflections and positions; most calls reuse the reference."""
    exp0 = _experiment(reverse)
    pc = PredictionCache()
    for k in range(30):
        cr = exp0.crystal
        cell = tuple(c * (1 + 1e-4 * k) for c in cr.cell[:3]) + (90.0, 90.0, 90.0)
        cr = cr.replace(cell=cell, missets=(0.01 * k, -0.01 * k, 0.005 * k))
        e = exp0.replace(crystal=cr)
        a = 10.0 + 0.3 * k
        _same(predict(e, a, a + 0.3, d_min=2.5), pc.predict(e, a, a + 0.3, d_min=2.5))
    assert pc.hits >= 20 and 1 <= pc.misses <= 10


def test_cache_resolution_limits_and_big_change_recomputes():
    exp0 = _experiment()
    pc = PredictionCache()
    _same(predict(exp0, 0.0, 0.5, d_min=3.0, d_max=8.0),
          pc.predict(exp0, 0.0, 0.5, d_min=3.0, d_max=8.0))
    p = pc.predict(exp0, 50.0, 50.5, d_min=3.0, d_max=8.0)
    assert np.all((p.d >= 3.0) & (p.d <= 8.0))
    assert pc.misses == 1 and pc.hits == 1
    turned = exp0.replace(crystal=exp0.crystal.replace(missets=(1.0, 0.0, 0.0)))
    _same(predict(turned, 50.0, 50.5, d_min=3.0, d_max=8.0),
          pc.predict(turned, 50.0, 50.5, d_min=3.0, d_max=8.0))
    assert pc.misses == 2 and pc.hits == 1  # a 1° turn exceeds max_change: new reference
    pc.predict(turned, 51.0, 51.5, d_min=3.0)  # other limits: another reference
    assert pc.misses == 3
