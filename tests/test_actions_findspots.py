"""FINDSPOTS FIND through the session on a small simulated sweep (truth from the simulator)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy.spatial import cKDTree

from mosflm_py.actions.findspots import spotfind_params, spots_for_images
from mosflm_py.cli import main
from mosflm_py.session import Session
from mosflm_py.simulate import default_params, simulate_dataset
from mosflm_py.spotfinding import read_spot_file

PIXEL = 0.172
BEAM = (34.0, 35.0)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    p = default_params(nslow=400, nfast=400, beam_x=BEAM[0], beam_y=BEAM[1], distance=100.0,
                       n_images=2, mosaic=0.3, osc_width=1.0, resolution=2.0, phi_start=10.0)
    return simulate_dataset(p, tmp_path_factory.mktemp("fs"))


def _session(ds, *extra: str) -> tuple[Session, io.StringIO]:
    buf = io.StringIO()
    s = Session(out=buf)
    s.run_lines([f"DIRECTORY {ds.out_dir}", f"TEMPLATE {ds.template}", *extra])
    return s, buf


def _strong_truth(ds, image: int, min_counts: float = 300.0):
    """Isolated strong spots on *image* inside the default search radii (slow, fast px)."""
    part, obs = ds.partials, ds.obs
    sel = (part["image"] == image) & (part["counts"] > min_counts)
    o = part["obs"][sel]
    xs, ys = obs.slow_px[o], obs.fast_px[o]
    tree = cKDTree(np.column_stack([xs, ys]))
    isolated = np.array([len(tree.query_ball_point([x, y], 4.0)) == 1 for x, y in zip(xs, ys)])
    r = np.hypot(xs * PIXEL - BEAM[0], ys * PIXEL - BEAM[1])
    keep = (xs > 5) & (xs < 395) & (ys > 5) & (ys < 395) & (r > 2.0) & (r < 31.0) & isolated
    return xs[keep], ys[keep]


def test_findspots_finds_strong_spots_at_true_positions(sweep):
    s, buf = _session(sweep, "FINDSPOTS FIND 1", "GO")
    assert s.failures == 0, buf.getvalue()
    spots = s.results.spots[1]
    xs, ys = _strong_truth(sweep, 1)
    assert len(xs) > 100
    d, _ = cKDTree(np.column_stack([spots.x_px, spots.y_px])).query(np.column_stack([xs, ys]))
    found = d < 1.5
    assert found.mean() >= 0.9  # measured: 100 % of 186
    assert np.percentile(d[found], 90) < 0.3  # measured: 0.12 px (median 0.02 px)
    assert np.all(spots.image == 1)
    assert np.allclose(spots.phi, 10.5)
    text = buf.getvalue()
    assert "Threshold used: 5.0 sigma" in text
    assert f"{len(spots)} spots accepted" in text
    assert "Based on a median spot size of" in text


def test_implied_raster_and_separation_are_sensible(sweep):
    s, buf = _session(sweep, "FINDSPOTS FIND 1", "GO")
    spots = s.results.spots[1]
    mx, my = np.median(spots.size_x), np.median(spots.size_y)
    nxs, nys, nc, nrx, nry = s.effective.integration.raster
    assert s.results.raster.value == (nxs, nys, nc, nrx, nry)
    assert s.results.raster.source == "FINDSPOTS"
    # found values live in the experiment model, not in the user's settings
    assert s.state.integration.raster is None and s.state.integration.separation is None
    assert nxs % 2 == 1 and nys % 2 == 1
    # peak region at least the median spot, box not more than ~4 spot sizes
    assert nxs - 2 * nrx >= mx and nys - 2 * nry >= my
    assert nxs <= 4 * mx + 8 and nys <= 4 * my + 8
    assert 0 < nc < nxs + nys
    sx, sy = s.effective.integration.separation
    assert mx * PIXEL <= sx <= 3 * mx * PIXEL + 0.5
    assert my * PIXEL <= sy <= 3 * my * PIXEL + 0.5
    assert not s.state.is_user_set("integration.raster")
    # MOSFLM's line, read as xia2 does: the last five integers
    line = next(t for t in buf.getvalue().splitlines() if "parameters have been set to" in t)
    assert [int(v) for v in line.split()[-5:]] == [nxs, nys, nc, nrx, nry]


def test_user_raster_and_separation_are_kept(sweep):
    s, buf = _session(sweep, "RASTER 21 21 15 5 5", "SEPARATION 2.0 2.0", "FINDSPOTS FIND 1",
                      "GO")
    assert s.failures == 0, buf.getvalue()
    assert s.state.integration.raster == (21, 21, 15, 5, 5)
    assert s.state.integration.separation == (2.0, 2.0)
    assert s.effective.integration.raster == (21, 21, 15, 5, 5)
    assert s.results.raster is None and s.results.separation is None
    assert "is kept" in buf.getvalue()


def test_settings_map_onto_spotfind_params(sweep):
    s, _ = _session(sweep, "FINDSPOTS THRESHOLD 8 MINPIX 4 BOX 20 24 RMAX 20 ICE RADIAL",
                    "BACKSTOP CENTRE 34 35 RADIUS 3", "LIMITS EXCLUDE 0 10 0 10",
                    "RESOLUTION 2.5 30")
    prm = spotfind_params(s, s.geometry(1))
    assert prm.threshold == 8.0 and prm.minpix == 4 and prm.box == (20, 24)
    assert prm.rmax == 20.0 and prm.ice and prm.background == "radial"
    assert prm.backstop == (34.0, 35.0, 3.0)
    assert prm.excludes == ((0.0, 10.0, 0.0, 10.0),)
    assert prm.d_min == 2.5 and prm.d_max == 30.0
    # threshold not given: automatic
    s2, _ = _session(sweep)
    assert spotfind_params(s2, s2.geometry(1)).threshold == "auto"


def test_threshold_rmax_and_resolution_take_effect(sweep):
    s, _ = _session(sweep, "FINDSPOTS RMAX 20", "FINDSPOTS FIND 1", "GO")
    spots = s.results.spots[1]
    r = np.hypot(spots.x_mm - BEAM[0], spots.y_mm - BEAM[1])
    assert len(spots) > 20 and r.max() <= 20.0
    s2, _ = _session(sweep, "RESOLUTION 4.0", "FINDSPOTS FIND 1", "GO")
    assert len(s2.results.spots[1]) > 10 and s2.results.spots[1].d_spacing.min() >= 4.0


def test_spots_for_images_caches(sweep):
    s, buf = _session(sweep)
    out = spots_for_images(s, [1, 2], report=False)
    assert set(out) == {1, 2} and len(out[1]) > 100 and len(out[2]) > 100
    again = spots_for_images(s, [1], report=True)
    assert again[1] is out[1]
    assert "already found" in buf.getvalue()


def test_piped_command_file_writes_spot_file(sweep, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spt = tmp_path / "found.spt"
    cmds = (f"DIRECTORY {sweep.out_dir}\nTEMPLATE {sweep.template}\nFINDSPOTS FILE {spt}\n"
            "FINDSPOTS FIND 1\nFINDSPOTS FIND 2 PHI 11 TO 12\nGO\nEXIT\n")
    out = io.StringIO()
    assert main([], stdin=io.StringIO(cmds), stdout=out) == 0, out.getvalue()
    spots = read_spot_file(spt)
    assert len(spots) > 200
    assert set(np.round(spots.phi, 3)) == {10.5, 11.5}
    # a new session with the same FILE reads the spots instead of searching
    buf = io.StringIO()
    s = Session(out=buf)
    s.run_lines([f"DIRECTORY {sweep.out_dir}", f"TEMPLATE {sweep.template}",
                 f"FINDSPOTS FILE {spt}", "FINDSPOTS FIND 1", "GO"])
    assert s.failures == 0
    assert "read" in buf.getvalue() and "taken from the spot file" in buf.getvalue()
    assert len(s.results.spots[1]) == int(np.sum(np.isclose(spots.phi, 10.5)))


def test_pick_adds_a_spot_and_rejects_off_detector(sweep):
    s, buf = _session(sweep, "PICK 1 30.0 40.0", "GO")
    assert s.failures == 0
    sp = s.results.spots[1]
    assert len(sp) == 1 and sp.x_mm[0] == 30.0 and np.isclose(sp.y_px[0], 40.0 / PIXEL)
    s2, buf2 = _session(sweep, "PICK 1 300.0 40.0", "GO")
    assert s2.failures == 1 and "off the detector" in buf2.getvalue()


def test_findspots_bad_image_is_a_user_error(sweep):
    s, buf = _session(sweep, "FINDSPOTS FIND 7", "GO")
    assert s.failures == 1
    assert "Internal error" not in buf.getvalue()


def test_too_few_spots_do_not_set_the_box(sweep):
    s, buf = _session(sweep, "FINDSPOTS THRESHOLD 3000", "FINDSPOTS FIND 1", "GO")
    assert s.failures == 0, buf.getvalue()
    assert len(s.results.spots[1]) < 10
    assert s.effective.integration.raster is None
    assert s.effective.integration.separation is None
    assert "too few to set the measurement box" in buf.getvalue()
    assert "WARNING" in buf.getvalue()
