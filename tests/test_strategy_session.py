"""STRATEGY and TESTGEN through the keyword session: log tables, SUMMARY loggraph, PNGs, several
crystals, errors; TESTGEN's overlap count against a plain pairwise check; the real L-cysteine
sweep (AUTOINDEX matrix, real detector)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mosflm_py.actions.common import current_crystal, experiment_for_image, resolution_limits
from mosflm_py.actions.strategy import strategy_resolution
from mosflm_py.geometry.crystal import b_matrix
from mosflm_py.geometry.matrix_file import read_matrix_file, write_matrix_file
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.output.loggraph import parse_loggraph
from mosflm_py.session import Session
from mosflm_py.simulate import default_params
from mosflm_py.simulate.writers import write_cbf
from mosflm_py.strategy import measured, reflection_passages, unique_reflections
from mosflm_py.strategy.overlaps import max_oscillation, overlaps_at


@dataclass(frozen=True)
class Setup:
    out_dir: Path
    template: str
    matrix_path: Path


CELL = (40.0, 50.0, 60.0, 90.0, 90.0, 90.0)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One blank Pilatus-style CBF (its header gives the geometry) and a matrix file."""
    d = tmp_path_factory.mktemp("strat")
    p = default_params(
        nslow=400,
        nfast=400,
        beam_x=34.0,
        beam_y=34.0,
        distance=60.0,
        n_images=1,
        osc_width=1.0,
        resolution=2.0,
        phi_start=0.0,
    )
    write_cbf(d / "blank_00001.cbf", np.zeros((400, 400), np.int32), p, 1)
    u = rot_axis(np.array([1.0, 2.0, 3.0]), 37.0)
    a = p.wavelength * u @ b_matrix(CELL)
    write_matrix_file(d / "xtal1.mat", a, (0.0, 0.0, 0.0), u, CELL)
    return Setup(d, "blank_#####.cbf", d / "xtal1.mat")


def _session(sim, lines, tmp_path):
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [
            f"DIRECTORY {sim.out_dir}",
            f"TEMPLATE {sim.template}",
            f"MATRIX {sim.matrix_path}",
            "SYMMETRY P212121",
            "MOSAIC 0.3",
            f"SUMMARY {tmp_path / 'strat.sum'}",
            *lines,
        ]
    )
    return s, out.getvalue()


def _number(pattern: str, text: str) -> float:
    m = re.findall(pattern, text)
    assert m, pattern
    return float(m[-1])


def test_strategy_auto_log_summary_and_plot(sim, tmp_path):
    png = tmp_path / "auto.png"
    s, log = _session(sim, [f"STRATEGY AUTO PLOT {png}", "GO"], tmp_path)
    assert s.failures == 0, log
    assert "Data collection strategy" in log and "Laue group mmm" in log
    assert "Optimum single segment for each total rotation" in log
    assert "records all the reachable unique data" in log
    res = s.results.strategy
    # the log's completeness is the pure calculation's
    g = s.geometry(1)
    exp = experiment_for_image(s, 1, current_crystal(s, g.beam.wavelength))
    d_min, d_max = strategy_resolution(s, exp)
    p = reflection_passages(unique_reflections(exp.crystal.cell, "P 21 21 21", d_min), exp)
    ((a, b),) = [(r.start, r.end) for r in res.segments]
    assert measured(p, [(a, b)]).completeness == pytest.approx(
        _number(r"Completeness ([\d.]+)%, anomalous", log), abs=0.05
    )
    assert res.full_rotation <= 180.0
    with Image.open(png) as im:
        assert im.size == (900, 600)
    tables = parse_loggraph((tmp_path / "strat.sum").read_text())
    titles = [t.title for t in tables]
    assert "Strategy optimum start for each total rotation" in titles
    curve = next(t for t in tables if t.title.startswith("Strategy completeness against"))
    rot = curve.column("Rotation")
    c0 = curve.column("C_0")
    assert len(rot) == len(c0) > 10 and all(np.diff(c0) >= -1e-9)


def test_strategy_segments_and_second_crystal(sim, tmp_path):
    """START/END is remembered; a second MATRIX + STRATEGY ROTATE fills what the first missed."""
    mat = read_matrix_file(sim.matrix_path)
    turned = tmp_path / "second.mat"
    r = rot_axis(np.array([1.0, -1.0, 0.5]), 50.0)
    write_matrix_file(
        turned, r @ np.asarray(mat.A), (0.0, 0.0, 0.0), r @ np.asarray(mat.U), mat.cell
    )
    s, log = _session(
        sim,
        [
            "STRATEGY ROTATE 40 SEGMENTS 2 ANOMALOUS",
            "GO",
            "STRATEGY START 0 END 20",
            "GO",
            f"MATRIX {turned}",
            "STRATEGY ROTATE 20",
            "GO",
        ],
        tmp_path,
    )
    assert s.failures == 0, log
    assert "point group 222" in log and "Optimum set of segments" in log
    assert "Data already collected" in log and f"MATRIX {sim.matrix_path}" in log
    first = _number(r"together: completeness ([\d.]+)%", log)
    both = _number(r"Completeness ([\d.]+)%, anomalous", log)
    assert both > first + 5.0
    assert "added to the data already collected" in log


@pytest.mark.parametrize(
    "line, message",
    [
        ("STRATEGY START 0", "START and END must be given together"),
        ("STRATEGY AUTO START 0 END 20", "cannot be combined with START/END"),
        ("STRATEGY ALTERNATE", "ALTERNATE is not implemented yet"),
        ("TESTGEN ANGLE 1", "TESTGEN needs START and END"),
        ("STRATEGY ROTATE 30 SEGMENTS 3 SIZES 10 20", "SEGMENTS 3 but 2 SIZES"),
    ],
)
def test_strategy_errors(sim, tmp_path, line, message):
    s, log = _session(sim, [line, "GO"], tmp_path)
    assert s.failures == 1 and message in log, log


def test_strategy_needs_an_orientation(sim):
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines([f"DIRECTORY {sim.out_dir}", f"TEMPLATE {sim.template}", "STRATEGY", "GO"])
    assert s.failures == 1 and "needs the crystal orientation" in out.getvalue()


# ------------------------------------------------------------------------------------ TESTGEN
def _pairwise_overlaps(x, y, sx, sy):
    """Plain O(N²) count of reflections with another closer than (sx, sy) in X and Y."""
    dx = np.abs(x[:, None] - x[None, :]) < sx
    dy = np.abs(y[:, None] - y[None, :]) < sy
    close = dx & dy
    np.fill_diagonal(close, False)
    return int(np.count_nonzero(close.any(axis=1)))


def test_testgen_session_and_overlap_definition(sim, tmp_path):
    png = tmp_path / "tg.png"
    s, log = _session(
        sim,
        [
            "SEPARATION 0.6 0.6",
            f"TESTGEN START 0 END 20 STEP 10 PLOT {png}",
            "GO",
            "TESTGEN START 0 END 10 STEP 10 ANGLE 0.5 3",
            "GO",
        ],
        tmp_path,
    )
    assert s.failures == 0, log
    assert "Maximum oscillation angle giving at most 0% spatially overlapped" in log
    assert "SEPARATION 0.60 0.60 mm, mosaic spread 0.30 deg" in log
    assert png.is_file()
    tables = parse_loggraph((tmp_path / "strat.sum").read_text())
    tg = next(t for t in tables if t.title == "TESTGEN maximum oscillation angle against phi")
    assert tg.column("Phi") == [0.0, 10.0, 20.0]
    # the overlap count is the plain pairwise one, and the largest angle is the largest
    g = s.geometry(1)
    exp = experiment_for_image(s, 1, current_crystal(s, g.beam.wavelength))
    from mosflm_py.geometry.prediction import predict

    d_min, _ = resolution_limits(s, exp)
    rows = max_oscillation(exp, [0.0, 10.0, 20.0], (0.6, 0.6), d_min)
    assert tg.column("MaxOsc")[1:] == [r.oscillation for r in rows[1:]]
    for row in rows[1:]:
        assert row.oscillation is not None and row.n_overlapped == 0
        pred = predict(exp, row.phi, row.phi + row.oscillation + 0.05, d_min=d_min)
        lo, hi = row.phi, row.phi + row.oscillation + 0.05
        half = 0.5 * pred.width
        on = (pred.phi - half < hi) & (pred.phi + half > lo) | ((pred.phi >= lo) & (pred.phi < hi))
        if row.oscillation < 5.0:
            assert _pairwise_overlaps(pred.x_mm[on], pred.y_mm[on], 0.6, 0.6) > 0
    (n1, o1), (n2, o2) = overlaps_at(exp, 0.0, [0.5, 3.0], (0.6, 0.6), d_min)
    assert n2 >= n1 and o2 >= o1


def test_testgen_larger_mosaic_or_separation_allows_less(sim, tmp_path):
    s, _ = _session(sim, [], tmp_path)
    g = s.geometry(1)
    exp = experiment_for_image(s, 1, current_crystal(s, g.beam.wavelength))
    base = max_oscillation(exp, [0.0, 30.0], (0.4, 0.4), 2.0, max_overlap_percent=1.0)
    wide = max_oscillation(
        exp.replace(crystal=exp.crystal.replace(mosaic=1.5)),
        [0.0, 30.0],
        (0.4, 0.4),
        2.0,
        max_overlap_percent=1.0,
    )
    far = max_oscillation(exp, [0.0, 30.0], (1.2, 1.2), 2.0, max_overlap_percent=1.0)
    for b, w, f in zip(base, wide, far):
        assert (w.oscillation or 0.0) <= (b.oscillation or 0.0)
        assert (f.oscillation or 0.0) <= (b.oscillation or 0.0)
        assert b.percent <= 1.0


# ---------------------------------------------------------------------------- real data
def dials_matrix_in_mosflm_frame(
    expt_path: Path, wavelength: float, reverse_phi: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(A = λ·U·B, U) of the DIALS crystal model of sweep 04 at φ = 0 in the MOSFLM frame.

    dxtbx's beam ``direction`` points to the source (s0 = -direction/λ); the scan axis of sweep
    04 is GON_PHI with all goniometer angles zero.  MOSFLM: X along s0, Z along the spindle, or
    against it when the headers give REVERSEPHI (the rotation is then about -Z).
    """
    import json

    d = json.loads(expt_path.read_text())
    s0 = -np.asarray(d["beam"][0]["direction"], float)
    gon = d["goniometer"][d["experiment"][3]["goniometer"]]
    axis = np.asarray(gon["axes"][gon["scan_axis"]], float)
    x = s0 / np.linalg.norm(s0)
    z = axis - (axis @ x) * x
    z /= np.linalg.norm(z) * (-1.0 if reverse_phi else 1.0)
    rot = np.array([x, np.cross(z, x), z])
    c = d["crystal"][d["experiment"][3]["crystal"]]
    real = np.array([c["real_space_a"], c["real_space_b"], c["real_space_c"]]) @ rot.T
    ub = np.linalg.inv(real)  # columns a*, b*, c*
    from mosflm_py.geometry.crystal import u_b_from_ub

    u, _ = u_b_from_ub(ub)
    return wavelength * ub, u


@pytest.mark.realdata
def test_strategy_on_the_l_cysteine_sweep(real_data, tmp_path):
    """Real Pilatus 2M geometry (header of l-cyst_04_00001.cbf) with the DIALS orientation of
    the sweep (P212121, a 5.43 b 8.14 c 12.04 Å): the completeness STRATEGY prints for
    phi 0-45 equals a brute-force Ewald count with the same real orientation and detector
    within 0.5 %, and the orthorhombic data are complete in less than 90 degrees from the
    best start."""
    from test_strategy import brute_completeness, brute_force

    folder = real_data / "l_cysteine_sweep04"
    expt = folder / "reference_dials" / "indexed.expt"
    header = Session(out=io.StringIO())
    header.run_lines([f"DIRECTORY {folder}", "TEMPLATE l-cyst_04_#####.cbf"])
    a, u = dials_matrix_in_mosflm_frame(expt, 0.6889, header.geometry(1).goniometer.reverse_phi)
    cell = (5.428, 8.141, 12.038, 90.0, 90.0, 90.0)
    write_matrix_file(tmp_path / "lcys.mat", a, (0.0, 0.0, 0.0), u, cell)
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [
            f"DIRECTORY {folder}",
            "TEMPLATE l-cyst_04_#####.cbf",
            f"MATRIX {tmp_path / 'lcys.mat'}",
            "SYMMETRY P212121",
            "RESOLUTION 1.25",
            "STRATEGY NOTANOM",
            "GO",
            "STRATEGY START 0 END 45",
            "GO",
        ]
    )
    log = out.getvalue()
    assert s.failures == 0, log
    g = s.geometry(1)
    exp = experiment_for_image(s, 1, current_crystal(s, g.beam.wavelength))
    d = exp.detector
    assert d.two_theta == 0 and d.tilt == 0 and d.twist == 0  # OMEGA 35.3: phi axis tilted
    assert np.allclose(exp.crystal.cell[:3], cell[:3], rtol=0.02)
    crossings, n_unique, _ = brute_force(exp, 1.25, step=0.1)
    bf, _ = brute_completeness(crossings, n_unique, [(0.0, 45.0)])
    m = re.search(r"Completeness for phi 0 to 45:\n\n.*\n\s+1\s+0\.0\s+45\.0\s+([\d.]+)", log)
    assert m, log
    assert float(m.group(1)) == pytest.approx(bf, abs=0.5)
    assert _number(r"turn of this crystal setting: ([\d.]+)%", log) > 95.0
    # the orientation AUTOINDEX finds from these 15 images gives the same strategy (82 degrees
    # from phi 117, 54.4 % for phi 0-45; measured when this test was written)
    assert _number(r"A total rotation of ([\d.]+) degrees", log) == pytest.approx(82.0, abs=2.0)
    assert _number(r"A total rotation of [\d.]+ degrees from phi ([\d.]+)", log) == (
        pytest.approx(117.0, abs=4.0)
    )


def test_strategy_from_keywords_alone(sim, tmp_path):
    """No images: the detector and beam from keywords give the same strategy as the header."""
    s_img, log_img = _session(sim, ["STRATEGY START 0 END 30", "GO"], tmp_path)
    g = s_img.geometry(1)
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [
            f"MATRIX {sim.matrix_path}",
            "SYMMETRY P212121",
            f"WAVELENGTH {g.beam.wavelength}",
            f"DISTANCE {g.detector.distance}",
            f"BEAM {g.detector.beam_x} {g.detector.beam_y}",
            f"PIXEL {g.detector.pixel_slow}",
            f"SIZE {g.detector.nslow} {g.detector.nfast}",
            "STRATEGY START 0 END 30",
            "GO",
        ]
    )
    log = out.getvalue()
    assert s.failures == 0, log
    assert _number(r"Completeness ([\d.]+)%, anomalous", log) == _number(
        r"Completeness ([\d.]+)%, anomalous", log_img
    )
    text = io.StringIO()
    bare = Session(out=text)
    bare.run_lines([f"MATRIX {sim.matrix_path}", "WAVELENGTH 1.0", "STRATEGY", "GO"])
    assert bare.failures == 1
    assert "give DISTANCE, BEAM, PIXEL," in text.getvalue()
