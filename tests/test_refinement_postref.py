"""Post-refinement against partial fractions generated from the uniform-ball model (known truth).

Tolerances (acceptance of the refinement part): cell within 0.03 %, missets within 0.02°, mosaic
within 10 %, esds within a factor 3 of the actual errors (rms of error/esd over parameters and
seeds between 1/3 and 3).
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import RefinementError
from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import fraction_on_image, predict
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.refinement import PartialObservations, PostrefParams, postrefine
from mosflm_py.refinement.tables import POSTREF_COLUMNS, as_table, postref_row

CELL_KEYS = ("A", "B", "C", "ALPHA", "BETA", "GAMMA")


def make_observations(exp, seg_starts, osc, nimg, d_min, seed, extra=2):
    """Parts of every reflection over images of each segment, Poisson-like noise on 50 bg."""
    rng = np.random.default_rng(seed)
    parts = []
    for s0 in seg_starts:
        p = predict(exp, s0, s0 + osc * nimg, d_min=d_min)
        inten = rng.uniform(300.0, 6000.0, len(p))
        for k in range(-extra, nimg + extra):
            a, b = s0 + k * osc, s0 + (k + 1) * osc
            f = fraction_on_image(p.phi, p.width, a, b)
            m = (p.phi + p.width > a - osc) & (p.phi - p.width < b + osc)
            iobs = inten[m] * f[m]
            sig = np.sqrt(iobs + 50.0)
            parts.append(PartialObservations(
                p.hkl[m], np.full(m.sum(), int(round(a / osc))), np.full(m.sum(), a),
                np.full(m.sum(), b), iobs + rng.normal(0, 1, m.sum()) * sig, sig))
    return PartialObservations.concatenate(parts)


def _experiment(cell, sg, mosaic=0.3, u_axis=(1, 2, 3), u_angle=37.0, distance=150.0):
    cr = Crystal(cell, U=rot_axis(u_axis, u_angle), space_group=sg, mosaic=mosaic,
                 missets=(0.1, -0.2, 0.05))
    det = Detector(distance, 88.0, 88.0, 0.172, 0.172, 1024, 1024)
    return Experiment(Beam(0.9795), det, crystal=cr)


def _perturbed(exp, rel, missets=(0.3, -0.3, 0.3), mosaic_factor=0.8):
    cr = exp.crystal
    c = list(cr.cell)
    for i, f in enumerate(rel):
        c[i] *= f
    ms = tuple(m + d for m, d in zip(cr.missets, missets))
    new = cr.replace(cell=tuple(c), missets=ms, mosaic=cr.mosaic * mosaic_factor)
    return exp.replace(crystal=new)


def _check(res, truth, cell_tol=3e-4):
    cr, tc = res.experiment.crystal, truth.crystal
    rel = np.abs(np.array(cr.cell) - np.array(tc.cell)) / np.array(tc.cell)
    assert rel.max() < cell_tol, (cr.cell, tc.cell)
    # missets: compare orientations (rotation between the refined and the true M)
    d = cr.M @ tc.M.T
    ang = np.degrees(np.arccos(np.clip((np.trace(d) - 1) / 2, -1, 1)))
    assert ang < 0.02
    assert abs(cr.mosaic - tc.mosaic) < 0.1 * tc.mosaic
    return [(res.values[k] - v) / res.esds[k] for k, v in zip(CELL_KEYS, tc.cell)
            if res.esds[k] > 0]


def test_postrefine_orthorhombic_seeds_and_esds():
    truth = _experiment((47.3, 58.9, 71.6, 90, 90, 90), "P 21 21 21")
    ratios = []
    for seed in (1, 2, 3):
        obs = make_observations(truth, (0.0, 90.0), 0.2, 6, 2.2, seed)
        start = _perturbed(truth, (1.005, 0.995, 1.005))
        res = postrefine(start, obs, PostrefParams())
        ratios += _check(res, truth)
        ratios.append((res.values["MOSAIC"] - 0.3) / res.esds["MOSAIC"])
        assert 0.5 < res.wrms < 2.0
        assert res.rms_resid < 0.05
    z = np.sqrt(np.mean(np.square(ratios)))
    assert 1 / 3 < z < 3, ratios
    row = postref_row(1, 0, res)
    assert len(as_table([row], POSTREF_COLUMNS)[0]) == len(POSTREF_COLUMNS)


def test_postrefine_triclinic_three_segments():
    cell = (41.2, 52.7, 60.3, 82.0, 97.0, 104.0)
    truth = _experiment(cell, "P 1", u_axis=(2, -1, 1), u_angle=61.0)
    obs = make_observations(truth, (0.0, 45.0, 90.0), 0.2, 6, 2.2, 5)
    start = _perturbed(truth, (1.005, 0.995, 1.005, 1.002, 0.998, 1.001))
    res = postrefine(start, obs, PostrefParams())
    assert set(CELL_KEYS) <= set(res.free)
    rel = np.abs(np.array(res.experiment.crystal.cell) - np.array(cell)) / np.array(cell)
    assert rel.max() < 3e-4
    _check(res, truth)


def test_postrefine_large_cell():
    cell = (300.0, 300.0, 300.0, 90, 90, 90)
    truth = _experiment(cell, "P 2 3", mosaic=0.15, distance=300.0)
    obs = make_observations(truth, (0.0, 90.0), 0.1, 5, 6.0, 7, extra=2)
    start = _perturbed(truth, (1.005, 1.005, 1.005), missets=(0.1, -0.1, 0.1))
    res = postrefine(start, obs, PostrefParams())
    assert res.free.count("A") == 1 and "B" not in res.free
    _check(res, truth)


def test_postrefine_too_few():
    truth = _experiment((47.3, 58.9, 71.6, 90, 90, 90), "P 21 21 21")
    obs = make_observations(truth, (0.0,), 0.2, 2, 8.0, 1, extra=0)
    with pytest.raises(RefinementError):
        postrefine(truth, obs.select(np.arange(len(obs)) < 10), PostrefParams())


def test_postrefine_monoclinic_fixed_cell_keeps_beta_and_finds_mosaic():
    """PROCESS refines missets and mosaic with the cell fixed: a P21 cell must keep β (it used
    to be set to 90°, so the missets and a mosaic several times too large absorbed the error)."""
    cell = (45.187, 67.795, 52.067, 90.0, 103.364, 90.0)
    truth = _experiment(cell, "P 1 21 1", mosaic=0.7, u_axis=(1, -2, 1), u_angle=23.0)
    obs = make_observations(truth, (0.0,), 1.0, 10, 2.0, 11)
    # PHIX is not refined on a wedge under 20 degrees
    start = _perturbed(truth, (1.0,) * 6, missets=(0.0, -0.1, 0.1), mosaic_factor=1.5)
    res = postrefine(start, obs, PostrefParams(fix=frozenset(CELL_KEYS)))
    assert res.experiment.crystal.cell == pytest.approx(cell, abs=1e-9)
    assert not set(CELL_KEYS) & set(res.free)
    err = np.array(res.experiment.crystal.missets) - np.array(truth.crystal.missets)
    assert np.abs(err).max() < 0.03, err
    assert res.experiment.crystal.mosaic == pytest.approx(0.7, rel=0.1)
