"""End-to-end cell refinement (POSTREF SEGMENT) on images from the simulator (known truth).

Start: cell 0.5 % off, distance 1.5 mm, beam 0.3 mm, missets 0.3° off.  Required: cell within
0.03 %, distance within 0.2 mm, beam within 0.02 mm, missets within 0.02°, mosaic within 10 %,
cell esds within a factor 3 of the actual errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.refinement import auto_segments, make_measure_fn, refine_cell_segments
from mosflm_py.refinement.tables import POSTREF_COLUMNS, as_table

sim = pytest.importorskip("mosflm_py.simulate")


def simulated_segments(seed, n_images=500, **changes):
    """Images of the automatic segments rendered in memory, the truth and a phi function."""
    from mosflm_py.simulate.dataset import static_masks, to_detector_counts
    from mosflm_py.simulate.detector import background_map, detector_frame
    from mosflm_py.simulate.render import crystal_model, render, sweep

    kw = dict(nslow=512, nfast=512, distance=100.0, beam_x=45.1, beam_y=43.9, osc_width=0.2,
              resolution=2.0, n_images=n_images, mosaic=0.3, seed=seed)
    kw.update(changes)
    p = sim.default_params(**kw)
    model = crystal_model(p)
    det = detector_frame(p)
    bg = background_map(p)
    inv, sh = static_masks(p)

    def phi(n):
        return (p.phi_start + (n - 1) * p.osc_width, p.phi_start + n * p.osc_width)

    cr = Crystal(p.cell, U=model.U, missets=p.missets, space_group=p.space_group, mosaic=p.mosaic)
    truth = Experiment(Beam(p.wavelength), Detector(p.distance, p.beam_x, p.beam_y, p.pixel_size,
                                                    p.pixel_fast, p.nslow, p.nfast), crystal=cr)
    segs = auto_segments(range(1, n_images + 1), phi, p.mosaic, p.space_group)
    cache = {}
    for s in segs:
        rec = sweep(model, p, s[0] - 1, len(s), det)
        spots = render(rec, model.intensity[rec.refl] * rec.pol * rec.g, p, len(s))
        for k, n in enumerate(s):
            cache[n] = to_detector_counts(spots[k] + bg, p, n, inv, sh)
    return truth, segs, cache, phi


def test_auto_segments():
    def phi(n):
        return ((n - 1) * 0.5, n * 0.5)

    segs = auto_segments(range(1, 361), phi, 0.5, "P 21 21 21")
    assert segs == [[1, 2, 3, 4], [181, 182, 183, 184]]
    segs = auto_segments(range(1, 361), phi, 0.5, "P 1")
    assert len(segs) == 4 and segs[1][0] == 91
    # short sweep: the second segment goes as far away as possible
    assert auto_segments(range(1, 11), phi, 0.5, "P 21 21 21") == [[1, 2, 3, 4], [7, 8, 9, 10]]


@pytest.mark.parametrize("seed,global_detector", [(1, False), (4, True)])
def test_cell_refinement_end_to_end(seed, global_detector):
    """Post-refinement of the cell; with ``global_detector`` one detector and the orientation are
    refined against all spot centroids each cycle (same tolerances)."""
    truth, segs, cache, phi = simulated_segments(seed)
    assert segs == [[1, 2, 3, 4, 5], [451, 452, 453, 454, 455]]
    c = truth.crystal.cell
    start = truth.replace(
        crystal=truth.crystal.replace(cell=(c[0] * 1.005, c[1] * 0.995, c[2] * 1.005, 90, 90, 90),
                                      missets=tuple(m + d for m, d in
                                                    zip(truth.crystal.missets, (0.3, -0.3, 0.3))),
                                      mosaic=0.25),
        detector=truth.detector.replace(distance=101.5, beam_x=45.4, beam_y=43.6),
    )
    res = refine_cell_segments(segs, start, make_measure_fn(cache.__getitem__, phi),
                               global_detector=global_detector)
    assert res.method == "post-refinement"
    # the orientation and detector come from the spot positions (with the post-refined cell)
    # either every cycle (global_detector) or once post-refinement's cell is accepted
    assert res.global_refinement is not None
    cr, d = res.experiment.crystal, res.experiment.detector
    err = np.array(cr.cell) - np.array(c)
    assert np.max(np.abs(err[:3]) / np.array(c[:3])) < 3e-4
    assert np.allclose(cr.cell[3:], 90.0)
    assert abs(d.distance - truth.detector.distance) < 0.2
    assert abs(d.beam_x - truth.detector.beam_x) < 0.02
    assert abs(d.beam_y - truth.detector.beam_y) < 0.02
    rot = cr.M @ truth.crystal.M.T
    assert np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))) < 0.02
    assert abs(cr.mosaic - 0.3) < 0.03
    esd = np.array(res.cell_esds[:3])
    assert np.all(esd > 0)
    assert np.all(np.abs(err[:3]) < 3.0 * esd), (err, esd)
    assert res.converged and 2 <= res.cycles <= 5
    assert res.initial_cell == start.crystal.cell
    assert len(res.detector_rows) >= 10
    assert len(as_table(res.postref_rows, POSTREF_COLUMNS)) >= 10


def test_box_for_raster_holds_the_spot():
    """The cell-refinement summation box holds the RASTER's peak region (+ 1-pixel rim, odd, at
    least 9).  Known truth: a Gaussian spot (σ 1.5 px, ~9 px across above background, as the
    nanoBragg small-cell spots) 1.3 px off the box centre on a flat background: the centroid
    from the box chosen for RASTER 25 21 17 7 6 is within 0.05 px of the true centre; the
    9-pixel box truncates the spot and pulls the centroid by more than 0.2 px towards its
    centre."""
    from mosflm_py.refinement import box_for_raster
    from mosflm_py.refinement.measure import _boxes, _sum_box

    assert box_for_raster(25, 21, 7, 6) == 13
    assert box_for_raster(15, 15, 4, 4) == 9 and box_for_raster(11, 11, 3, 3) == 9
    assert box_for_raster(41, 41, 5, 5) == 33 and box_for_raster(11, 11, 3, 3, minimum=5) == 7
    true_i, true_j = 50.3, 49.7  # pixel-centre coordinates of the spot centre
    ii, jj = np.mgrid[0:100, 0:100]
    img = 10.0 + 5000.0 * np.exp(-((ii - true_i) ** 2 + (jj - true_j) ** 2) / (2 * 1.5**2))
    ci, cj = np.array([49]), np.array([51])  # box centre (integer pixel) 1.3 px off
    for box, tol, pulled in ((box_for_raster(25, 21, 7, 6), 0.05, False), (9, None, True)):
        stack, ok = _boxes(img, ci, cj, box // 2)
        assert ok.all()
        _, inten, _, oi, oj, _, _, _ = _sum_box(stack, ci, cj)
        # _sum_box returns centroids in the pixel-edge convention (centre of pixel k at k + 0.5)
        err = np.hypot(oi[0] - 0.5 - true_i, oj[0] - 0.5 - true_j)
        if pulled:
            assert err > 0.2, err
        else:
            assert err < tol, err
