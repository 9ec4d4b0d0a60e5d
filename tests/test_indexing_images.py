"""AUTOINDEX through the session on simulated images: all 14 Bravais lattices, beam search,
weak images, a single image.

Every case simulates (``mosflm_py.simulate``) two single images 90 degrees apart on a small
Pilatus-like detector with the beam off the detector centre, runs the spot finder and
``AUTOINDEX DPS REFINE IMAGE 1 IMAGE k`` in a :class:`Session`, and compares with the truth:
the right Bravais lattice, Niggli-reduced cell edges within 0.2 % and angles within 0.2 deg,
sigma(x,y) under half a pixel, the refined beam within 0.05 mm.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from mosflm_py.indexing.niggli import basis_from_cell, niggli_reduce
from mosflm_py.session import Session
from mosflm_py.simulate.dataset import simulate_dataset
from mosflm_py.simulate.params import SimulationParams, default_params

PIXEL = 0.172
# lattice: (cell, space group, wavelength A, distance mm, detector px, oscillation deg)
CASES = {
    "aP": ((31.2, 38.5, 44.1, 78.0, 84.0, 69.0), "P 1", 1.0, 120, 512, 1.0),
    "mP": ((42.1, 51.3, 37.8, 90, 104.5, 90), "P 1 21 1", 1.0, 120, 512, 1.0),
    "mC": ((98.2, 54.1, 66.3, 90, 112.3, 90), "C 1 2 1", 1.0, 150, 512, 1.0),
    "oP": ((5.43, 8.14, 12.04, 90, 90, 90), "P 21 21 21", 0.7, 45, 640, 10.0),
    "oC": ((63.4, 88.2, 71.5, 90, 90, 90), "C 2 2 21", 1.0, 150, 512, 1.0),
    "oI": ((75.5, 82.3, 93.1, 90, 90, 90), "I 2 2 2", 1.0, 150, 512, 1.0),
    "oF": ((102.3, 120.5, 141.2, 90, 90, 90), "F 2 2 2", 1.0, 200, 512, 0.5),
    "tP": ((57.99, 57.99, 149.83, 90, 90, 90), "P 41 21 2", 1.0, 200, 512, 0.5),
    "tI": ((112.5, 112.5, 64.2, 90, 90, 90), "I 4", 1.0, 150, 512, 1.0),
    "hP": ((91.34, 91.34, 45.91, 90, 90, 120), "P 3", 1.0, 150, 512, 1.0),
    "hR": ((105.2, 105.2, 190.0, 90, 90, 120), "H 3", 1.0, 200, 512, 0.5),
    "cP": ((62.1, 62.1, 62.1, 90, 90, 90), "P 21 3", 1.0, 120, 512, 1.0),
    "cI": ((78.0, 78.0, 78.0, 90, 90, 90), "I 21 3", 1.0, 150, 512, 1.0),
    "cF": ((300.0, 300.0, 300.0, 90, 90, 90), "F 2 3", 1.0, 300, 768, 0.2),
}


def case_params(lattice: str, seed: int = 11, **changes) -> SimulationParams:
    """Simulation of one image of a case; the beam is off centre, d_min at the search radius."""
    cell, sg, wl, dist, npx, osc = CASES[lattice]
    bx, by = npx * PIXEL * 0.46, npx * PIXEL * 0.55
    radius = 0.95 * min(bx, by, npx * PIXEL - bx, npx * PIXEL - by)
    d_min = wl / (2 * np.sin(0.5 * np.arctan(radius / dist)))
    p = dict(cell=cell, space_group=sg, wavelength=wl, distance=dist, nslow=npx, nfast=npx,
             beam_x=bx, beam_y=by, osc_width=osc, n_images=1, resolution=0.98 * d_min,
             mosaic=min(0.3, osc / 3), seed=seed)
    p.update(changes)
    return default_params(**p)


def simulate_pair(p: SimulationParams, out) -> list[int]:
    """Images 1 (phi 0) and 1 + 90/osc (phi 90) of the same crystal; their numbers."""
    simulate_dataset(p, out, fmt="cbf")
    k = 1 + int(round(90.0 / p.osc_width))
    simulate_dataset(p.replace(first_image=k, phi_start=90.0), out, fmt="cbf")
    return [1, k]


def index_images(out, images: list[int], extra: tuple[str, ...] = ()):
    log = io.StringIO()
    s = Session(out=log)
    s.run_lines([f"DIRECTORY {out}", "TEMPLATE sim_#####.cbf", *extra,
                 "AUTOINDEX DPS REFINE " + " ".join(f"IMAGE {i}" for i in images), "GO"])
    return s.results.indexing, log.getvalue()


_CACHE: dict = {}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """Simulate each case once per module: name -> (params, folder, image numbers)."""

    def get(name: str, lattice: str, **changes):
        if name not in _CACHE:
            p = case_params(lattice, **changes)
            out = tmp_path_factory.mktemp(f"sim_{name}")
            _CACHE[name] = (p, out, simulate_pair(p, out))
        return _CACHE[name]

    return get


def assert_matches_truth(res, p: SimulationParams, lattice: str, log: str) -> None:
    assert res is not None, log[-2000:]
    assert res.solution.lattice == lattice, log[-4000:]
    red_true = niggli_reduce(basis_from_cell(p.cell)).cell
    red_got = niggli_reduce(np.linalg.inv(res.solution.ub)).cell
    np.testing.assert_allclose(red_got[:3], red_true[:3], rtol=0.002)
    np.testing.assert_allclose(red_got[3:], red_true[3:], atol=0.2)
    # conventional edges (any order) within 0.2 %
    np.testing.assert_allclose(sorted(res.crystal.cell[:3]), sorted(p.cell[:3]), rtol=0.002)
    assert res.sigma_xy < 0.5 * PIXEL
    np.testing.assert_allclose(res.beam_refined, (p.beam_x, p.beam_y), atol=0.05)


@pytest.mark.parametrize("lattice", list(CASES))
def test_autoindex_simulated_lattice(simulated, lattice):
    """Right lattice, cell within 0.2 % / 0.2 deg, sigma(x,y) < 0.5 px, beam within 0.05 mm."""
    p, out, images = simulated(lattice, lattice)
    res, log = index_images(out, images)
    assert_matches_truth(res, p, lattice, log)
    assert "Suggested Solution" in log


@pytest.mark.parametrize("lattice", ["oC", "tP"])
def test_autoindex_beam_search_recovers_1mm_beam_error(simulated, lattice):
    """BEAM wrong by 1.0 mm (0.8, -0.6): BEAMSEARCH finds the lattice and refines the beam."""
    p, out, images = simulated(lattice, lattice)
    wrong = f"BEAM {p.beam_x + 0.8:.3f} {p.beam_y - 0.6:.3f}"
    res, log = index_images(out, images, (wrong, "AUTOINDEX BEAMSEARCH 1.0 0.5"))
    assert_matches_truth(res, p, lattice, log)
    assert "Beam search over +-1 mm in 0.5 mm steps" in log


def test_autoindex_weak_images(simulated):
    """Weak images: ~300 spots found on the two images (I/sigma mostly below 20)."""
    p, out, images = simulated("weak_tI", "tI", mean_intensity=150.0, background=20.0)
    res, log = index_images(out, images)
    assert res is not None, log[-2000:]
    assert 150 <= res.n_spots <= 400, res.n_spots
    assert_matches_truth(res, p, "tI", log)


def test_autoindex_single_image(simulated):
    """One 1-degree image of the hP case (the first of the pair)."""
    p, out, images = simulated("hP", "hP")
    res, log = index_images(out, images[:1])
    assert res is not None, log[-2000:]
    assert res.solution.lattice == "hP"
    np.testing.assert_allclose(sorted(res.crystal.cell[:3]), sorted(p.cell[:3]), rtol=0.005)
    assert res.sigma_xy < 0.5 * PIXEL


def test_pixel_array_minpix_default_and_user_override(simulated):
    """AUTOINDEX on PILATUS images searches with MINPIX 3 unless FINDSPOTS MINPIX was given."""
    _, out, images = simulated("hP", "hP")
    s = Session(out=io.StringIO())
    s.run_lines([f"DIRECTORY {out}", "TEMPLATE sim_#####.cbf",
                 f"AUTOINDEX IMAGE {images[0]}", "GO"])
    assert s.effective.spotfind.minpix == 3 and s.results.minpix.source == "AUTOINDEX"
    assert s.state.spotfind.minpix == 6  # the user's setting (MOSFLM's default) is unchanged
    s = Session(out=io.StringIO())
    s.run_lines([f"DIRECTORY {out}", "TEMPLATE sim_#####.cbf", "FINDSPOTS MINPIX 5",
                 f"AUTOINDEX IMAGE {images[0]}", "GO"])
    assert s.state.spotfind.minpix == 5 and s.effective.spotfind.minpix == 5
    assert s.results.minpix is None


def test_autoindex_still_made_from_a_rotation_image(tmp_path):
    """A still (issue 9.3): one simulated 0.02 deg image of the tP case rewritten with a zero
    oscillation width in its header indexes as a still (no phi residual) with the right
    lattice and every cell edge within 0.5 %."""
    import re

    p = case_params("tP", osc_width=0.02, mosaic=0.3)
    simulate_dataset(p, tmp_path, fmt="cbf")
    f = tmp_path / "sim_00001.cbf"
    raw = f.read_bytes()
    m = re.search(rb"# Angle_increment ([0-9.]+)", raw)
    assert m is not None
    zero = b"0." + b"0" * (len(m.group(1)) - 2)  # same length: the binary part stays put
    f.write_bytes(raw.replace(m.group(0), b"# Angle_increment " + zero))
    res, log = index_images(tmp_path, [1])
    assert res is not None, log[-2000:]
    assert res.solution.lattice == "tP"
    np.testing.assert_allclose(res.crystal.cell[:3], p.cell[:3], rtol=0.005)
    assert not np.isfinite(res.sigma_phi)  # indexed as a still
    assert "nan" not in log.split("DPS Indexing using")[1]


def test_weak_fine_sliced_series_gets_the_right_crystal_system(tmp_path):
    """Issue 9.4: weak P212121 series of 60 x 0.1 deg images (mean reflection 25 photons on a
    background of 20), indexed from images 1 and 60 as users do: ~30 spots pass, and the
    suggested solution is oP (not mP or aP), cell edges within 0.5 %."""
    p = default_params(n_images=60, osc_width=0.1, seed=8, mean_intensity=25.0,
                       background=20.0, mosaic=0.2)
    simulate_dataset(p, tmp_path, fmt="cbf")
    res, log = index_images(tmp_path, [1, 60])
    assert res is not None, log[-2000:]
    assert res.solution.lattice == "oP", log[log.find("No PENALTY"):][:1500]
    np.testing.assert_allclose(res.crystal.cell[:3], p.cell[:3], rtol=0.005)


def test_weak_fine_sliced_true_monoclinic_with_beta_near_90_stays_mp(tmp_path):
    """Issue 9.4, the other side: the same weak series (60 x 0.1 deg, images 1 and 60) of a true
    P21 crystal with beta = 91 deg.  oP has penalty ~19 (below MOSFLM's 20) but its constrained
    refinement fits clearly worse (sd(x,y) 2.5 x the triclinic one): mP is suggested, beta
    within 0.1 deg, edges within 0.5 %.  (Before every lattice was refined with the same
    detector geometry, oP moved the distance by 1 % to absorb its misfit and was chosen.)"""
    cell = (47.3, 58.9, 71.6, 90.0, 91.0, 90.0)
    p = default_params(n_images=60, osc_width=0.1, seed=8, mean_intensity=25.0,
                       background=20.0, mosaic=0.2, cell=cell, space_group="P 1 21 1")
    simulate_dataset(p, tmp_path, fmt="cbf")
    res, log = index_images(tmp_path, [1, 60])
    assert res is not None, log[-2000:]
    assert res.solution.lattice == "mP", log[log.find("No PENALTY"):][:1500]
    got = res.crystal.cell
    beta = [a for a in got[3:] if abs(a - 90.0) > 1e-6]
    assert len(beta) == 1 and abs(abs(beta[0] - 90.0) - 1.0) < 0.1, got
    np.testing.assert_allclose(sorted(got[:3]), sorted(cell[:3]), rtol=0.005)


def test_header_distance_one_percent_off_is_refined(simulated):
    """Issue 9.6: the header distance 1 % long (as on real beamlines) on the small-molecule oP
    pair (spots to 2theta ~ 48 deg, where the spots determine the distance): AUTOINDEX refines
    the distance to within 0.2 % of the truth (it differs from the header by many esd) and the
    cell comes out within 0.2 %, not 1 % long, and the log says so.  (With exact header
    distances every other case here keeps the header value.)"""
    p, out, images = simulated("oP", "oP")
    res, log = index_images(out, images, (f"DISTANCE {1.01 * p.distance:.3f}",))
    assert res is not None, log[-2000:]
    assert res.solution.lattice == "oP"
    assert abs(res.distance - p.distance) < 0.002 * p.distance, res.distance
    np.testing.assert_allclose(res.crystal.cell[:3], p.cell[:3], rtol=0.002)
    assert "Distance refined from" in log
