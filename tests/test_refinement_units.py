"""Unit tests of the refinement building blocks (fraction inversion, cell constraints, grouping,
orientation increments, positional refinement against exact predictions)."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import KeywordError, RefinementError
from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import cumulative_fraction, predict, predict_positions
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.refinement import (
    PartialObservations,
    PostrefParams,
    RefinementParams,
    refine_detector,
    smooth_mosaic,
)
from mosflm_py.refinement.cell_params import CELL_NAMES, cell_constraint
from mosflm_py.refinement.lsq import robust_outliers
from mosflm_py.refinement.observations import group_parts
from mosflm_py.refinement.orientation import rotate_crystal
from mosflm_py.refinement.postref import inverse_fraction
from mosflm_py.refinement.tables import DETECTOR_COLUMNS, as_table, detector_row


def _experiment(cell=(47.3, 58.9, 71.6, 90, 90, 90), sg="P 21 21 21", **det):
    cr = Crystal(cell, U=rot_axis([1, 2, 3], 37.0), space_group=sg, mosaic=0.3,
                 missets=(0.1, -0.2, 0.05))
    d = dict(distance=150.0, beam_x=88.0, beam_y=88.0, pixel_slow=0.172, pixel_fast=0.172,
             nslow=1024, nfast=1024)
    d.update(det)
    return Experiment(Beam(0.9795), Detector(**d), crystal=cr)


def test_inverse_fraction_round_trip():
    q = np.linspace(0.0, 1.0, 101)
    assert np.allclose(inverse_fraction(cumulative_fraction(q)), q, atol=1e-12)


@pytest.mark.parametrize(
    ("sg", "cell", "free"),
    [
        ("P 1", (40, 50, 60, 80, 85, 95), ("A", "B", "C", "ALPHA", "BETA", "GAMMA")),
        ("P 1 21 1", (40, 50, 60, 90, 105, 90), ("A", "B", "C", "BETA")),
        ("P 21 21 21", (40, 50, 60, 90, 90, 90), ("A", "B", "C")),
        ("P 41 21 2", (57.99, 57.99, 149.8, 90, 90, 90), ("A", "C")),
        ("P 3", (91.34, 91.34, 45.91, 90, 90, 120), ("A", "C")),
        ("R 3 :R", (50, 50, 50, 80, 80, 80), ("A", "ALPHA")),
        ("I 21 3", (78, 78, 78, 90, 90, 90), ("A",)),
    ],
)
def test_cell_constraint(sg, cell, free):
    cons = cell_constraint(sg, cell)
    assert cons.free == free
    new = cons.cell(cons.values(cell) * 1.01, cell)
    # the symmetry is kept: constrained values follow their master exactly
    if cons.system in ("tetragonal", "trigonal"):
        assert new[1] == new[0] and new[5] == cell[5]
    if cons.system == "cubic":
        assert new[0] == new[1] == new[2]
    if cons.system == "rhombohedral":
        assert new[3] == new[4] == new[5]


def test_cell_constraint_fix_removes_parameter():
    assert cell_constraint("P 21 21 21", (40, 50, 60, 90, 90, 90), frozenset({"B"})).free == (
        "A", "C")


@pytest.mark.parametrize("fix", [frozenset({"BETA"}), frozenset(CELL_NAMES)])
def test_monoclinic_fixed_beta_keeps_its_value(fix):
    # PROCESS fixes the whole cell; the fixed β of a P21 cell must stay 103.36°, not become 90°
    # (which made post-refinement fit missets and a 3.9° mosaic spread to a wrong cell)
    cell = (45.187, 67.795, 52.067, 90.0, 103.364, 90.0)
    cons = cell_constraint("P 1 21 1", cell, fix)
    assert "BETA" not in cons.free
    assert cons.cell(cons.values(cell), cell) == pytest.approx(cell, abs=1e-12)
    # an unusual setting with γ as the unique angle keeps γ
    cell_c = (45.0, 52.0, 67.0, 90.0, 90.0, 103.0)
    cons = cell_constraint("P 1 1 21", cell_c, frozenset(CELL_NAMES))
    assert cons.cell(cons.values(cell_c), cell_c)[5] == pytest.approx(103.0)


def test_params_validation():
    with pytest.raises(KeywordError):
        RefinementParams(fix={"WRONG"})
    with pytest.raises(KeywordError):
        PostrefParams(frmin=0.9, frmax=0.1)
    assert "DISTANCE" in RefinementParams(fix={"XTOFRA"}).fix
    assert {"A", "B", "C", "ALPHA", "BETA", "GAMMA"} <= PostrefParams(fix={"CELL"}).fix


def test_smooth_mosaic():
    v = np.array([0.2, 0.4, 0.6, 0.8])
    assert np.allclose(smooth_mosaic(v, 2, 0.05), np.array([0.2, 0.3, 0.5, 0.7]) * 1.05)


def test_group_parts_contiguity():
    hkl = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3], [2, 0, 0]])
    obs = PartialObservations(hkl, np.array([1, 2, 9, 1]), np.array([0.0, 0.2, 1.6, 0.0]),
                              np.array([0.2, 0.4, 1.8, 0.2]), np.ones(4), np.ones(4))
    g = group_parts(obs)
    assert sorted(g.count.tolist()) == [1, 1, 2]


def test_robust_outliers():
    v = np.concatenate([np.random.default_rng(0).normal(0, 1, 200), [25.0]])
    assert np.nonzero(robust_outliers(v, 5.0))[0].tolist() == [200]


def test_rotate_crystal_about_beam_keeps_phi_positions_rotating():
    exp = _experiment()
    cr2 = rotate_crystal(exp.crystal, 0.5, 0.0, 0.0, 30.0)
    # at phi = 30 the reciprocal lattice is turned about the beam (X) by exactly 0.5 deg
    r1 = exp.goniometer.rotation(30.0) @ exp.crystal.UB
    r2 = exp.goniometer.rotation(30.0) @ cr2.UB
    assert np.allclose(r2, rot_axis([1, 0, 0], 0.5) @ r1, atol=1e-12)


def test_positional_refinement_recovers_detector():
    truth = _experiment(tilt=10.0, twist=-15.0, yscale=1.0005)
    p = predict(truth, 30.0, 30.5, d_min=2.0)
    rng = np.random.default_rng(1)
    sig = 0.02
    xo = p.x_mm + rng.normal(0, sig, len(p))
    yo = p.y_mm + rng.normal(0, sig, len(p))
    start = truth.replace(
        detector=truth.detector.replace(distance=151.5, beam_x=88.3, beam_y=87.7, tilt=0.0,
                                        twist=0.0, yscale=1.0),
        crystal=rotate_crystal(truth.crystal, 0.3, 0.0, 0.0, 30.25),
    )
    res = refine_detector(start, p.hkl, xo, yo, p.phi, np.full(len(p), sig), phi_ref=30.25)
    d = res.experiment.detector
    assert abs(d.distance - 150.0) < 0.02
    assert abs(d.beam_x - 88.0) < 0.005 and abs(d.beam_y - 88.0) < 0.005
    assert abs(d.tilt - 10.0) < 1.5 and abs(d.twist + 15.0) < 1.5
    assert abs(res.values["PSIX"] + 0.3) < 0.005
    assert 0.8 < res.wrms < 1.25
    assert abs(res.rms - sig * np.sqrt(2)) < 0.006
    # esds agree with the actual errors within a factor 3 (or 3 esd)
    for name, true in (("DISTANCE", 150.0), ("XCEN", 88.0), ("YCEN", 88.0)):
        assert abs(res.values[name] - true) < 3.5 * res.esds[name]
    # calculated positions of the refined model match the truth
    xc, yc, _ = predict_positions(res.experiment, p.hkl, p.phi)
    assert np.sqrt(np.mean((xc - p.x_mm) ** 2 + (yc - p.y_mm) ** 2)) < 0.005
    row = detector_row(1, 7, res, start.detector)
    assert as_table([row], DETECTOR_COLUMNS)[0][0] == 7
    assert abs(row["CCX"] + 0.3) < 0.01


def test_positional_refinement_residual_limit():
    truth = _experiment()
    p = predict(truth, 0.0, 0.5, d_min=2.0)
    rng = np.random.default_rng(2)
    xo = p.x_mm + rng.normal(0, 0.2, len(p))
    yo = p.y_mm + rng.normal(0, 0.2, len(p))
    with pytest.raises(RefinementError, match="RESIDUAL"):
        refine_detector(truth, p.hkl, xo, yo, p.phi, np.full(len(p), 0.01))
    res = refine_detector(truth, p.hkl, xo, yo, p.phi, np.full(len(p), 0.01),
                          RefinementParams(raise_on_residual=False))
    assert res.warnings and res.wrms > 5
    with pytest.raises(RefinementError, match="usable"):
        refine_detector(truth, p.hkl[:5], xo[:5], yo[:5], p.phi[:5], np.full(5, 0.01))
