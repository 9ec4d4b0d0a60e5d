"""Global positional refinement (cell, orientation, distance, beam vs X/Y/φ centroids), 3D spot
centroids from per-image measurements, mosaic from spot widths, and the cell refinement's switch
to it when there are too few partials (simulated small molecule and the real L-cysteine sweep).
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from mosflm_py.errors import RefinementError
from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import fraction_on_image, predict
from mosflm_py.refinement import (
    GlobalRefinementParams,
    make_measure_fn,
    mosaic_from_spots,
    refine_cell_segments,
    refine_global,
    spots_from_measurements,
)
from mosflm_py.refinement.measure import ImageMeasurements
from mosflm_py.refinement.spots3d import SpotObservations

CYS = (5.428, 8.141, 12.038, 90.0, 90.0, 90.0)


def _rot_angle(m1: np.ndarray, m2: np.ndarray) -> float:
    r = m1 @ m2.T
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))))


def small_molecule(mosaic: float = 0.2) -> Experiment:
    """L-cysteine-like cell on a 512x512 0.172 mm detector at 50 mm (2θ up to ~50°)."""
    u = Crystal.from_ub(np.eye(3)).U
    rng = np.random.default_rng(7)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    u = q * np.sign(np.linalg.det(q))
    cr = Crystal(CYS, U=u, space_group="P 21 21 21", mosaic=mosaic)
    return Experiment(Beam(0.6889), Detector(50.0, 44.1, 43.3, 0.172, 0.172, 512, 512), crystal=cr)


def synthetic_spots(exp: Experiment, phi0: float, phi1: float, seed: int, sxy=0.02, sphi=0.01):
    """Exact predicted centroids plus Gaussian noise, all complete."""
    p = predict(exp, phi0, phi1)
    p = p.select((p.phi > phi0) & (p.phi < phi1))
    rng = np.random.default_rng(seed)
    n = len(p)
    one = np.ones(n)
    return SpotObservations(
        hkl=p.hkl, x=p.x_mm + rng.normal(0, sxy, n), y=p.y_mm + rng.normal(0, sxy, n),
        phi=p.phi + rng.normal(0, sphi, n), sigma_x=sxy * one, sigma_y=sxy * one,
        sigma_phi=sphi * one, complete=np.ones(n, bool), intensity=1e4 * one, sigma=100 * one,
        n_images=3 * np.ones(n, np.int64), var_phi=np.zeros(n), osc=0.1 * one,
        first_image=np.ones(n, np.int64),
    )


def perturbed(exp: Experiment, scale=1.006, dist=0.8, beam=(0.15, -0.1),
              missets=(0.15, -0.1, 0.1)) -> Experiment:
    c = exp.crystal.cell
    cr = exp.crystal.replace(cell=(c[0] * scale, c[1] * scale * 0.998, c[2] * scale, 90, 90, 90),
                             missets=missets)
    d = exp.detector
    return exp.replace(crystal=cr, detector=d.replace(distance=d.distance + dist,
                                                      beam_x=d.beam_x + beam[0],
                                                      beam_y=d.beam_y + beam[1]))


def test_refine_global_recovers_cell_distance_beam_orientation():
    """Start 0.6 % / 0.8 mm / 0.15 mm / 0.15° off; 1.5° of spots: cell within 0.05 %, distance
    0.05 mm, beam 0.03 mm (correlated with TILT/TWIST, refined too: within 0.1°), orientation
    0.01°; errors within 3.5 esd; weighted residual ≈ 1."""
    truth = small_molecule()
    spots = synthetic_spots(truth, 0.0, 1.5, seed=1)
    assert len(spots) >= 20
    g = refine_global(perturbed(truth), spots, GlobalRefinementParams(sigma_xy_floor=0.0,
                                                                      sigma_phi_floor=0.0))
    cell = np.array(g.experiment.crystal.cell)
    err = cell[:3] - np.array(CYS[:3])
    assert np.all(np.abs(err) / np.array(CYS[:3]) < 5e-4), err
    assert np.allclose(cell[3:], 90.0)
    esd = np.array([g.esds[n] for n in "ABC"])
    assert np.all(esd > 0) and np.all(np.abs(err) < 3.5 * esd), (err, esd)
    d = g.experiment.detector
    assert abs(d.distance - 50.0) < 0.05
    assert abs(d.beam_x - 44.1) < 0.03 and abs(d.beam_y - 43.3) < 0.03
    assert abs(d.beam_x - 44.1) < 3.5 * g.esds["XCEN"]
    assert abs(d.tilt) < 10 and abs(d.twist) < 10 and {"TILT", "TWIST"} <= set(g.free)
    assert _rot_angle(g.experiment.crystal.M, truth.crystal.M) < 0.01
    assert 0.6 < g.wrms < 1.5
    assert g.n_phi == g.n_used == len(spots)
    assert g.rms_phi < 0.02 and g.rms_xy < 0.05
    assert set(g.correlation) == {"A", "B", "C"}
    assert g.free[:3] == ("PHIX", "PHIY", "PHIZ") and "DISTANCE" in g.free


def test_refine_global_rejects_outliers_and_fix():
    truth = small_molecule()
    spots = synthetic_spots(truth, 0.0, 1.5, seed=2)
    x = spots.x.copy()
    x[:2] += 1.0  # two gross outliers (1 mm)
    spots = SpotObservations(**{**{k: getattr(spots, k) for k in spots.__dataclass_fields__},
                                "x": x})
    start = perturbed(truth, dist=0.0)
    g = refine_global(start, spots, GlobalRefinementParams(fix=frozenset({"DISTANCE", "YSCALE",
                                                                          "TILT", "TWIST",
                                                                          "CCOMEGA"})))
    assert not g.used[0] and not g.used[1] and g.used[2:].all()
    assert g.experiment.detector.distance == 50.0 and "DISTANCE" not in g.free
    assert g.esds["DISTANCE"] == 0.0 and g.correlation == {}
    err = np.array(g.experiment.crystal.cell[:3]) / np.array(CYS[:3]) - 1
    assert np.all(np.abs(err) < 3e-4)


def test_refine_global_without_phi_warns_and_too_few_raise():
    truth = small_molecule()
    spots = synthetic_spots(truth, 0.0, 1.5, seed=3)
    no_phi = spots.select(np.arange(len(spots)))
    no_phi = SpotObservations(**{**{k: getattr(no_phi, k) for k in no_phi.__dataclass_fields__},
                                 "complete": np.zeros(len(spots), bool)})
    g = refine_global(truth, no_phi)
    assert g.n_phi == 0 and np.isnan(g.rms_phi)
    assert any("φ centroids could not be used" in w for w in g.warnings)
    # without φ centroids the distance is not separable from the cell: held at the start
    assert "DISTANCE" not in g.free and g.experiment.detector.distance == 50.0
    assert any("held at 50.00 mm" in w for w in g.warnings)
    with pytest.raises(RefinementError, match="too few spots"):
        refine_global(truth, spots.select(np.arange(2)))


def _meas(image, hkl, inten, x, y, osc=0.1):
    n = len(hkl)
    one = np.ones(n)
    return ImageMeasurements(
        image=image, phi_start=(image - 1) * osc, phi_end=image * osc,
        hkl=np.array(hkl, np.int32), phi_c=0 * one, width=0.3 * one, fraction=0.5 * one,
        x_calc=np.array(x), y_calc=np.array(y), x_obs=np.array(x, float),
        y_obs=np.array(y, float), sigma_x=0.01 * one, sigma_y=0.01 * one,
        intensity=np.array(inten, float), sigma=np.full(n, 10.0), valid=np.ones(n, bool),
        d=one,
    )


def test_spots_from_measurements_centroids_and_completeness():
    """(1,2,3) on images 1-4 with I 0,100,300,1 (σ 10; parts below 1σ get no weight): x = 10.15,
    φ = 0.225, complete; (2,0,0) cut by the first image: incomplete; (0,0,4) weak: dropped."""
    h1, h2, h3 = (1, 2, 3), (2, 0, 0), (0, 0, 4)
    ms = [
        _meas(1, [h1, h2, h3], [0.0, 500.0, 5.0], [9.0, 50.0, 70.0], [5.0, 1.0, 1.0]),
        _meas(2, [h1, h2, h3], [100.0, 200.0, 3.0], [10.0, 50.2, 70.0], [5.0, 1.0, 1.0]),
        _meas(3, [h1, h2], [300.0, 2.0], [10.2, 50.0], [5.4, 1.0]),
        _meas(4, [h1, h2], [1.0, 0.0], [12.0, 50.0], [5.0, 1.0]),
    ]
    s = spots_from_measurements(ms, min_isig=5.0)
    assert len(s) == 2
    i1 = [tuple(h) for h in s.hkl].index(h1)
    i2 = [tuple(h) for h in s.hkl].index(h2)
    w = np.array([0.0, 100.0, 300.0, 0.0])
    assert s.x[i1] == pytest.approx(np.dot(w, [9, 10, 10.2, 12]) / w.sum(), abs=1e-9)
    assert s.y[i1] == pytest.approx(np.dot(w, [5, 5, 5.4, 5]) / w.sum(), abs=1e-9)
    assert s.phi[i1] == pytest.approx(np.dot(w, [0.05, 0.15, 0.25, 0.35]) / w.sum(), abs=1e-9)
    assert s.complete[i1] and not s.complete[i2]
    assert s.intensity[i1] == pytest.approx(401.0) and s.n_images[i1] == 4
    assert s.sigma[i1] == pytest.approx(20.0)
    assert 0 < s.sigma_phi[i1] < 0.1 and s.first_image[i2] == 1
    # images 1 and 3 only: not contiguous -> two passages of (1,2,3)
    s2 = spots_from_measurements([ms[0], ms[2]], min_isig=0.5)
    assert sum(tuple(h) == h1 for h in s2.hkl) == 1  # image-1 part has I = 0: not strong


def test_mosaic_from_model_profiles():
    """Spots whose image intensities follow the rocking-curve model of η = 0.25° on 0.1° images:
    the estimate is within 10 %."""
    truth = small_molecule(mosaic=0.25)
    osc, n_img = 0.1, 30
    p = predict(truth, 0.0, osc * n_img)
    p = p.select((p.phi - p.width > 0) & (p.phi + p.width < osc * n_img))
    starts = np.arange(n_img) * osc
    frac = np.stack([fraction_on_image(p.phi, p.width, a, a + osc) for a in starts], axis=1)
    mid = starts + osc / 2
    phi = frac @ mid / frac.sum(axis=1)
    var = (frac * (mid[None, :] - phi[:, None]) ** 2).sum(axis=1) / frac.sum(axis=1)
    n = len(p)
    one = np.ones(n)
    spots = SpotObservations(
        hkl=p.hkl, x=p.x_mm, y=p.y_mm, phi=phi, sigma_x=0.01 * one, sigma_y=0.01 * one,
        sigma_phi=0.01 * one, complete=np.ones(n, bool), intensity=1e4 * one, sigma=10 * one,
        n_images=3 * np.ones(n, np.int64), var_phi=var, osc=osc * one,
        first_image=np.ones(n, np.int64))
    eta, esd, used = mosaic_from_spots(truth, spots)
    assert used >= 10
    assert eta == pytest.approx(0.25, rel=0.1)
    assert 0 < esd < 0.05
    with pytest.raises(RefinementError, match="too few"):
        mosaic_from_spots(truth, spots.select(np.arange(3)))


def simulated_small_molecule(seed: int):
    """15 x 0.1° images of the L-cysteine-like crystal (few spots, few complete partials)."""
    sim = pytest.importorskip("mosflm_py.simulate")
    from mosflm_py.simulate.dataset import static_masks, to_detector_counts
    from mosflm_py.simulate.detector import background_map, detector_frame
    from mosflm_py.simulate.render import crystal_model, render, sweep

    p = sim.default_params(nslow=512, nfast=512, distance=50.0, beam_x=44.1, beam_y=43.3,
                           osc_width=0.1, wavelength=0.6889, cell=CYS, space_group="P 21 21 21",
                           resolution=None, n_images=15, mosaic=0.2, seed=seed,
                           mean_intensity=3e4, wilson_b=3.0)
    model = crystal_model(p)
    bg = background_map(p)
    inv, sh = static_masks(p)
    rec = sweep(model, p, 0, 15, detector_frame(p))
    spots = render(rec, model.intensity[rec.refl] * rec.pol * rec.g, p, 15)
    frames = {n: to_detector_counts(spots[n - 1] + bg, p, n, inv, sh) for n in range(1, 16)}
    cr = Crystal(p.cell, U=model.U, missets=p.missets, space_group=p.space_group,
                 mosaic=p.mosaic)
    truth = Experiment(Beam(p.wavelength), Detector(p.distance, p.beam_x, p.beam_y, p.pixel_size,
                                                    p.pixel_fast, p.nslow, p.nfast), crystal=cr)

    def phi(n):
        return (p.phi_start + (n - 1) * p.osc_width, p.phi_start + n * p.osc_width)

    return truth, frames, phi


def test_cell_refinement_switches_to_global_for_small_molecule():
    """Simulated 15 x 0.1° small-molecule sweep, start cell 0.6 % off, distance 0.5 mm, beam
    0.1 mm, missets 0.1°: too few partials, so the global refinement is used automatically;
    cell within 0.03 % (errors < 3 esd), distance 0.05 mm, beam 0.01 mm, mosaic within 15 %."""
    truth, frames, phi = simulated_small_molecule(3)
    c = truth.crystal.cell
    start = truth.replace(
        crystal=truth.crystal.replace(cell=(c[0] * 1.006, c[1] * 1.006, c[2] * 1.006, 90, 90, 90),
                                      missets=(0.1, -0.1, 0.1), mosaic=0.3),
        detector=truth.detector.replace(distance=50.5, beam_x=44.2, beam_y=43.2))
    res = refine_cell_segments([list(range(1, 16))], start,
                               make_measure_fn(frames.__getitem__, phi))
    assert res.method == "global positional refinement"
    assert any("post-refinement is not possible" in w for w in res.warnings)
    err = np.array(res.final_cell[:3]) - np.array(c[:3])
    assert np.all(np.abs(err) / np.array(c[:3]) < 3e-4), err
    esd = np.array(res.cell_esds[:3])
    assert np.all(esd > 0) and np.all(np.abs(err) < 3 * esd), (err, esd)
    d = res.experiment.detector
    assert abs(d.distance - 50.0) < 0.05
    assert abs(d.beam_x - 44.1) < 0.01 and abs(d.beam_y - 43.3) < 0.01
    assert _rot_angle(res.experiment.crystal.M, truth.crystal.M) < 0.01
    assert res.mosaic == pytest.approx(0.2, rel=0.15) and res.mosaic_esd > 0
    assert res.converged and res.cycles <= 3
    assert res.global_refinement is not None and res.postref.n_used == res.global_refinement.n_used
    assert len(res.detector_rows) == 15 * res.cycles
    assert {"rms_mm", "postref_rms_deg", "max_shift_sds"} <= set(res.cycle_rows[-1])
    # method="postref" keeps post-refinement (31 fractions here, enough for NREF 20)
    res2 = refine_cell_segments([list(range(1, 16))], start,
                                make_measure_fn(frames.__getitem__, phi), method="postref",
                                max_cycles=1)
    assert res2.method == "post-refinement" and res2.global_refinement is None


def test_unknown_method():
    with pytest.raises(RefinementError, match="unknown cell refinement method"):
        refine_cell_segments([[1]], small_molecule(), lambda e, i: [], method="magic")


@pytest.mark.realdata
def test_l_cysteine_cell_through_session(real_data):
    """AUTOINDEX on the 15 images, POSTREF SEGMENT 1, PROCESS 1 15, GO: refined cell within 0.3 %
    of P212121 5.428 8.141 12.038 (the global positional refinement; too few partials)."""
    from mosflm_py.session import Session

    out = io.StringIO()
    s = Session(out=out)
    s.run_lines([
        f"DIRECTORY {real_data / 'l_cysteine_sweep04'}",
        "TEMPLATE l-cyst_04_#####.cbf",
        # UNFIXDIST: the header distance is ~1 % off; with it fixed AUTOINDEX's phi
        # centroids favour mP (beta 90.7 absorbs the error) and its axes (b < a)
        "AUTOINDEX DPS REFINE " + " ".join(f"IMAGE {i}" for i in range(1, 16)) + " UNFIXDIST",
        "GO",
        "POSTREF SEGMENT 1",
        "PROCESS 1 15",
        "GO",
    ])
    log = out.getvalue()
    res = s.results.refinement
    assert res is not None, log
    assert res.method == "global positional refinement"
    assert "global positional refinement" in log
    np.testing.assert_allclose(res.final_cell[:3], CYS[:3], rtol=3e-3)
    assert np.all(np.array(res.cell_esds[:3]) > 0)
    assert 0.05 < res.mosaic < 0.5


def test_refine_global_holds_distance_not_separable_from_cell():
    """Issue 8 item 5 (dev_c2221_fine_weak): a large cell at low angle (2θ < 25°), spots from
    two 0.15° wedges 45° apart, none complete in φ.  With the distance free its correlation
    with every cell length is > 0.99 and the cell follows the distance (here 0.15 % off, on
    the dev set 1 %); the distance must be held at its (exact) starting value, and then the
    cell comes back within 0.05 % of the truth from a start 0.4 % off."""
    from mosflm_py.refinement.global_positional import _refine_global_once

    cell = (63.9, 95.7, 110.1, 90.0, 90.0, 90.0)
    q = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))[0]
    cr = Crystal(cell, U=q * np.sign(np.linalg.det(q)), space_group="C 2 2 21", mosaic=0.3)
    truth = Experiment(Beam(0.9763), Detector(90.0, 44.0, 38.0, 0.075, 0.075, 1170, 1000),
                       crystal=cr)
    a = synthetic_spots(truth, 0.0, 0.15, seed=2, sxy=0.03)
    b = synthetic_spots(truth, 45.0, 45.15, seed=12, sxy=0.03)
    f = {k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__}
    f["complete"] = np.zeros(len(f["x"]), bool)
    spots = SpotObservations(**f)
    start = perturbed(truth, scale=1.004, dist=0.0)
    free = _refine_global_once(start, spots, GlobalRefinementParams())
    assert min(abs(c) for c in free.correlation.values()) > 0.99
    g = refine_global(start, spots, GlobalRefinementParams())
    assert "DISTANCE" not in g.free and g.experiment.detector.distance == 90.0
    assert any("cannot be refined together with the cell" in w for w in g.warnings)
    err = np.array(g.experiment.crystal.cell[:3]) / np.array(cell[:3]) - 1
    assert np.all(np.abs(err) < 5e-4), err


def _lab_rotation_deg(m_new: np.ndarray, m_old: np.ndarray, phi_ref: float) -> np.ndarray:
    """Rotation vector (°, about lab X, Y, Z at spindle angle phi_ref) taking m_old to m_new."""
    c, s = np.cos(np.radians(phi_ref)), np.sin(np.radians(phi_ref))
    r_phi = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    r = r_phi @ m_new @ m_old.T @ r_phi.T
    ang = np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return np.degrees(ang) * axis / max(np.linalg.norm(axis), 1e-300)


def test_refine_global_holds_the_rotation_about_the_spindle_without_phi_centroids():
    """Spots all cut by the ends of the images (no usable φ centroid; their φ centroids biased
    by ±0.15° as truncated rocking curves are): the positions do not determine the rotation
    about the spindle, so it is held at the start (0.1° off here) with a warning.  The rotations
    about X and Y are refined towards the truth (from 0.08° and 0.06° off to within 0.06°: the
    cut spots are predicted at their biased φ centroids, which ties X and Y to the held rotation
    by a few hundredths of a degree).  With complete spots (φ centroids) the same start refines
    the rotation about the spindle to within 0.005° and all three within 0.02° (the one about
    the beam shares the spot positions with TILT and TWIST on 1.5° of spots)."""
    from mosflm_py.refinement.orientation import rotate_crystal

    truth = small_molecule()
    spots = synthetic_spots(truth, 0.0, 1.5, seed=3)
    phi_ref = float(np.mean(spots.phi))
    cr0 = rotate_crystal(truth.crystal, 0.08, -0.06, 0.1, phi_ref, truth.goniometer)
    start = truth.replace(crystal=cr0)
    bias = np.where(np.arange(len(spots)) % 2 == 0, 0.15, -0.15)
    cut = SpotObservations(**{**{k: getattr(spots, k) for k in spots.__dataclass_fields__},
                              "complete": np.zeros(len(spots), bool), "phi": spots.phi + bias})
    params = GlobalRefinementParams(fix=frozenset({"DISTANCE", "YSCALE", "CCOMEGA"}),
                                    sigma_xy_floor=0.0)
    g = refine_global(start, cut, params, phi_ref=phi_ref)
    assert "PHIZ" not in g.free and {"PHIX", "PHIY"} <= set(g.free)
    assert any("rotation about the spindle" in w for w in g.warnings), g.warnings
    m = g.experiment.crystal.M
    held = _lab_rotation_deg(m, cr0.M, phi_ref)
    assert abs(held[2]) < 1e-3, held
    err = _lab_rotation_deg(m, truth.crystal.M, phi_ref)
    assert np.all(np.abs(err[:2]) < 0.06) and abs(err[2] - 0.1) < 0.002, err

    g = refine_global(start, spots, params, phi_ref=phi_ref)
    assert "PHIZ" in g.free and not any("spindle" in w for w in g.warnings)
    err = _lab_rotation_deg(g.experiment.crystal.M, truth.crystal.M, phi_ref)
    assert abs(err[2]) < 0.005 and np.all(np.abs(err) < 0.02), err
