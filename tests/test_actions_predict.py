"""PREDICT_SPOTS: classes (full / partial / overlapped / too wide), counts and the PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree

from mosflm_py.actions.predict import classify_predictions, ring_resolutions
from mosflm_py.output.picture import PREDICTION_COLOURS, PredictionClass, picture_scale
from mosflm_py.session import Session
from mosflm_py.simulate import default_params, simulate_dataset

FULL, PARTIAL, OVERLAP, TOO_WIDE = (int(c) for c in PredictionClass)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    p = default_params(nslow=400, nfast=400, beam_x=34.0, beam_y=35.0, distance=100.0,
                       n_images=1, mosaic=0.3, osc_width=1.0, resolution=2.0, phi_start=10.0)
    return simulate_dataset(p, tmp_path_factory.mktemp("pred"))


def test_classify_predictions_rules():
    phi = np.array([10.5, 10.95, 10.5, 10.5, 10.5, 10.5])
    width = np.array([0.4, 0.4, 0.2, 0.2, 7.0, 0.3])
    x = np.array([10.0, 20.0, 30.0, 30.3, 50.0, 50.2])
    y = np.array([10.0, 20.0, 30.0, 30.4, 50.0, 50.1])
    cls, frac = classify_predictions(phi, width, x, y, 10.0, 11.0, (0.5, 0.5), 5.0)
    assert cls.tolist() == [FULL, PARTIAL, OVERLAP, OVERLAP, TOO_WIDE, OVERLAP]
    assert frac[0] == pytest.approx(1.0) and frac[2] == pytest.approx(1.0)
    # 10.95 +- 0.2: q at 11.0 is 0.625 -> P = 3q^2 - 2q^3
    q = 0.625
    assert frac[1] == pytest.approx(3 * q * q - 2 * q**3)
    # a pair closer in X but not in Y is not overlapped
    cls2, _ = classify_predictions(phi[2:4], width[2:4], np.array([30.0, 30.3]),
                                   np.array([30.0, 31.0]), 10.0, 11.0, (0.5, 0.5), 5.0)
    assert cls2.tolist() == [FULL, FULL]


def _run(sim, *lines):
    buf = io.StringIO()
    s = Session(out=buf)
    s.run_lines([f"DIRECTORY {sim.out_dir}", f"TEMPLATE {sim.template}",
                 f"MATRIX {sim.matrix_path}", "SYMMETRY P212121", "MOSAIC 0.3", *lines])
    return s, buf.getvalue()


def test_predict_spots_classes_counts_and_positions(sim):
    s, text = _run(sim, "SEPARATION 1.0 1.0", "PREDICT_SPOTS 1", "GO")
    assert s.failures == 0, text
    ip = s.results.predictions
    p = ip.predictions
    n = len(p)
    assert n > 200
    counts = [ip.count(c) for c in PredictionClass]
    assert sum(counts) == n
    assert f"{n} reflections predicted" in text
    for c, label in zip(counts, ("fully recorded", "partials", "spatially overlapped",
                                 "too wide in phi")):
        assert f"{c:8d} {label}" in text
    cls, frac = ip.classes, ip.fraction
    edges_in = (p.phi - 0.5 * p.width >= 10.0) & (p.phi + 0.5 * p.width <= 11.0)
    assert np.all(frac[cls == FULL] > 0.999) and np.all(edges_in[cls == FULL])
    assert np.all(~edges_in[cls == PARTIAL])
    assert np.median(frac[cls == PARTIAL]) < 0.9  # grazing partials may be nearly 1
    assert np.all((frac > 0) & (frac <= 1 + 1e-9))
    assert np.all(p.width[cls == TOO_WIDE] > 5.0)
    # overlap rule: overlapped ones have a neighbour within SEPARATION in X and Y, others none
    xy = np.column_stack([p.x_mm, p.y_mm])
    pairs = cKDTree(xy).query_pairs(r=1.0, p=np.inf, output_type="ndarray")
    close = np.zeros(n, bool)
    if len(pairs):
        d = np.abs(xy[pairs[:, 0]] - xy[pairs[:, 1]])
        ok = (d[:, 0] < 1.0) & (d[:, 1] < 1.0)
        close[pairs[ok].ravel()] = True
    assert np.array_equal(close & (cls != TOO_WIDE), cls == OVERLAP)
    # positions agree with the simulator's truth (same crystal, zero-misset matrix)
    obs = sim.obs
    on = obs.on_detector & (np.abs(obs.phi - 10.5) < 0.5)
    d, _ = cKDTree(np.column_stack([obs.slow_px[on], obs.fast_px[on]])).query(
        np.column_stack([p.x_px, p.y_px]))
    inside = (p.phi > 10.0) & (p.phi < 11.0)
    assert np.median(d[inside]) < 0.05 and np.all(d[inside] < 0.5)


def test_predict_spots_plot_png_colours(sim, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s, text = _run(sim, "PREDICT_SPOTS IMAGE 1 PLOT", "GO")
    assert s.failures == 0, text
    png = tmp_path / "predict_1.png"
    assert png.is_file() and "predict_1.png" in text
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (400, 400)
    ip = s.results.predictions
    p = ip.predictions
    scale = picture_scale((400, 400))
    marker = max(3, 400 // 300)
    hits = {c: [] for c in PredictionClass}
    for xs, ys, c in zip(p.x_px, p.y_px, ip.classes):
        col, row = int(np.floor(ys / scale)), int(np.floor(xs / scale))
        if not (marker <= row < 400 - marker and marker <= col < 400 - marker):
            continue
        if row < 120 and col < 120:  # colour key in the corner
            continue
        ring = np.concatenate([img[row - marker, col - marker:col + marker + 1],
                               img[row + marker, col - marker:col + marker + 1],
                               img[row - marker:row + marker + 1, col - marker],
                               img[row - marker:row + marker + 1, col + marker]])
        want = np.array(PREDICTION_COLOURS[PredictionClass(c)])
        hits[PredictionClass(c)].append(bool(np.any(np.all(ring == want, axis=1))))
    for c in (PredictionClass.FULL, PredictionClass.PARTIAL):
        assert len(hits[c]) > 20 and np.mean(hits[c]) > 0.9
    # found spots (magenta) are drawn: the picture contains the spot colour
    assert np.any(np.all(img == np.array([210, 0, 210]), axis=2))


def test_predict_spots_named_plot_and_rings(sim, tmp_path):
    out = tmp_path / "mine.png"
    s, text = _run(sim, f"PREDICT_SPOTS PLOT {out}", "GO")
    assert s.failures == 0, text
    assert out.is_file() and s.results.predictions.image == 1
    g = s.geometry(1)
    det, wavelength = g.detector, g.beam.wavelength
    rings = ring_resolutions(det, wavelength)
    assert len(rings) == 3
    d = np.array([r[0] for r in rings])
    assert np.all(np.diff(d) < 0)  # outer rings are higher resolution
    for dd, rad in rings:  # radius (px) consistent with d = lambda / (2 sin theta)
        two_theta = np.arctan(rad * det.pixel_slow / det.distance)
        assert wavelength / (2 * np.sin(two_theta / 2)) == pytest.approx(dd, rel=1e-6)


def test_predict_spots_without_crystal_fails_cleanly(sim):
    buf = io.StringIO()
    s = Session(out=buf)
    s.run_lines([f"DIRECTORY {sim.out_dir}", f"TEMPLATE {sim.template}", "PREDICT_SPOTS",
                 "GO"])
    assert s.failures == 1
    assert "AUTOINDEX" in buf.getvalue() and "Internal error" not in buf.getvalue()
