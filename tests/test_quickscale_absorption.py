"""QUICKSCALE ABSORPTION: the absorption surface (issue 13), and QuickSymm's honest answers.

* The real spherical harmonics are orthonormal on the sphere (quadrature on a Fibonacci grid).
* The beam directions in the crystal frame, built from the MTZ batch headers (U, E1, SO, λ),
  satisfy the Laue condition on the real MOSFLM files of ../shared (conventions checked on
  files mosflm-py did not write).
* Synthetic data where every reflection is observed where it diffracts, multiplied by a known
  smooth absorption-like factor of the incident and diffracted directions: the surface brings
  Rmerge down and the merged intensities closer to the truth; on data without absorption it
  changes nothing that matters (the restraint keeps it flat).
* Keyword path: ABSORPTION and ACCEPT parsed, a file whose headers do not fit is a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from quickscale_synth import make_unmerged

from mosflm_py.output.mtz_columns import hkl_to_asu
from mosflm_py.scaling.absorption import absorption_basis, real_sph_harm
from mosflm_py.scaling.observations import read_unmerged
from mosflm_py.scaling.pipeline import QuickScaleOptions, quickscale

REPO = Path(__file__).resolve().parents[1]
REAL_MTZ = REPO.parent / "shared" / "data" / "real" / "mosflm_mtz"

U_AXIS = np.array([0.3, 0.5, 0.81]) / np.linalg.norm([0.3, 0.5, 0.81])
V_AXIS = np.array([0.9, -0.2, 0.3]) / np.linalg.norm([0.9, -0.2, 0.3])


def absorption_like(s0c: np.ndarray, s1c: np.ndarray) -> np.ndarray:
    """A smooth factor of the two directions (±20 % or so): a dipole along U_AXIS for the
    path in and out, a quadrupole along V_AXIS (a plate)."""
    return np.exp(
        0.25 * ((-s0c) @ U_AXIS + s1c @ U_AXIS) / 2
        + 0.3 * ((s1c @ V_AXIS) ** 2 - 1 / 3)
        + 0.3 * ((s0c @ V_AXIS) ** 2 - 1 / 3)
    )


def test_real_spherical_harmonics_orthonormal():
    n = 40000
    k = np.arange(n) + 0.5
    z = 1 - 2 * k / n
    phi = np.pi * (1 + 5**0.5) * k
    r = np.sqrt(1 - z * z)
    v = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    Y = real_sph_harm(4, v)
    assert Y.shape == (n, 24)
    gram = Y.T @ Y * (4 * np.pi / n)
    assert np.abs(gram - np.eye(24)).max() < 5e-3  # quadrature error of the grid
    B = absorption_basis(v, v, 2)
    assert B.shape == (n, 8)


@pytest.mark.realdata
def test_directions_fit_the_laue_condition_in_real_mosflm_files():
    files = sorted(REAL_MTZ.glob("*.mtz"))
    if not files:
        pytest.skip(f"no real MOSFLM MTZ files in {REAL_MTZ}")
    for path in files:
        obs = read_unmerged(str(path))
        # |s0 + R(φ) U B h| λ = 1 to 0.2 % (missets and the per-batch cells are ignored)
        assert obs.direction_error < 2e-3, (path.name, obs.direction_error)
        assert np.allclose(np.linalg.norm(obs.s1c, axis=1), 1.0)
        # the angle between the beams is 2θ: cos 2θ = 1 - 2 sin²θ = 1 - λ²/(2 d²)
        d = obs.d_spacing()
        lam = obs.wavelength
        cos2t = np.sum(obs.s0c * obs.s1c, axis=1)
        assert np.median(np.abs(cos2t - (1 - lam**2 / (2 * d**2)))) < 2e-3, path.name


def _cc_truth(res, syn) -> float:
    truth = {tuple(h): i for h, i in zip(syn.truth_hkl.tolist(), syn.truth_i)}
    asu, _ = hkl_to_asu(res.merged.hkl, res.space_group)
    t = np.array([truth.get(tuple(h), np.nan) for h in asu.tolist()])
    ok = np.isfinite(t) & np.isfinite(res.merged.imean)
    return float(np.corrcoef(res.merged.imean[ok], t[ok])[0, 1])


@pytest.fixture(scope="module")
def absorbed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qs_abs")
    runs = {}
    for label, fn in (("absorbed", absorption_like), ("clean", None)):
        syn = make_unmerged(
            str(folder / f"{label}.mtz"),
            true_sg="P 4",
            file_sg="P 1",
            d_min=3.0,
            n_images=90,
            geometry=True,
            absorption=fn,
            seed=3,
        )
        obs = read_unmerged(syn.path)
        plain = quickscale(obs)
        surface = quickscale(obs, QuickScaleOptions(absorption_lmax=4))
        runs[label] = (syn, obs, plain, surface)
    return runs


def test_absorption_surface_corrects_simulated_absorption(absorbed):
    """Rmerge falls by more than 40 % (0.064 -> 0.025 measured) and the merged intensities'
    CC with the truth rises (0.9970 -> 0.9980 measured); the error model no longer needs the
    proportional term SdAdd to absorb the systematic error."""
    syn, obs, plain, surface = absorbed["absorbed"]
    assert obs.direction_error < 1e-6
    assert plain.space_group.hm == surface.space_group.hm == "P 4"
    assert surface.scaling.converged and surface.scaling.model.lmax == 4
    assert len(surface.scaling.model.c) == 24
    r0, r1 = plain.stats.overall.r_merge, surface.stats.overall.r_merge
    assert r1 < 0.6 * r0, (r0, r1)
    cc0, cc1 = _cc_truth(plain, syn), _cc_truth(surface, syn)
    assert cc1 > cc0 + 3e-4, (cc0, cc1)
    assert surface.stats.overall.cc_half > plain.stats.overall.cc_half
    assert surface.sdadd < 0.5 * plain.sdadd, (plain.sdadd, surface.sdadd)


def test_absorption_surface_harmless_without_absorption(absorbed):
    """On data with no absorption the restrained surface changes the scales by less than 0.5 %
    rms (the surface's φ-only part trades with the rotation scales, so the total scale is
    compared), and Rmerge and the CC with the truth are unchanged to 2 % and 2e-4."""
    syn, obs, plain, surface = absorbed["clean"]
    d = np.log(surface.g / plain.g)
    assert np.std(d) < 0.005
    assert surface.stats.overall.r_merge == pytest.approx(plain.stats.overall.r_merge, rel=0.02)
    assert abs(_cc_truth(surface, syn) - _cc_truth(plain, syn)) < 2e-4


def test_absorption_keyword_and_clear_error(tmp_path):
    """ABSORPTION runs through the keyword; on a file whose batch orientation does not fit
    the observations (random φ) it stops with one clear message."""
    good = make_unmerged(
        str(tmp_path / "g.mtz"), true_sg="P 4", d_min=3.0, n_images=45, geometry=True
    )
    rc, log = run_script(
        f"QUICKSCALE HKLIN {good.path} ABSORPTION 2 ACCEPT GRADIENT PKRATIO REPORT r.html\n"
        "GO\nEXIT\n",
        tmp_path,
    )
    assert rc == 0, log[-2000:]
    assert "absorption surface to order 2" in log
    assert "Absorption surface: spherical harmonics to order 2" in (tmp_path / "r.html").read_text()
    bad = make_unmerged(str(tmp_path / "b.mtz"), true_sg="P 4", d_min=3.0, n_images=30)
    rc, log = run_script(f"QUICKSCALE HKLIN {bad.path} ABSORPTION\nGO\nEXIT\n", tmp_path)
    assert rc != 0
    assert "does not fit the observations" in log and "Traceback" not in log


def test_profiles_grid_drawn_as_the_regions_lie():
    """The report's standard-profiles grid: one cell per region at its (ix, iy) place, the
    peak's maximum black, averaged profiles framed in red."""
    from mosflm_py.scaling.report import PROFILE_CELL, render_profiles_grid

    prof = [" ..... ", "..121..", ".19991.", "..121..", " ..... "]
    regions = [
        {"region": 1, "ix": 1, "iy": 1, "n_contrib": 40, "averaged": False, "map": prof},
        {"region": 4, "ix": 2, "iy": 2, "n_contrib": 2, "averaged": True, "map": prof},
    ]
    img = render_profiles_grid({"first": 1, "last": 5, "regions": regions}).convert("RGB")
    a = np.asarray(img)
    c = PROFILE_CELL
    cw, ch = 7 * c + 10, 5 * c + 22
    assert a.shape[:2] == (2 * ch + 22 + 10, 2 * cw + 10)
    # the centre pixel ('9') of region 1 is black, region 1's frame grey, region 4's red
    y, x = 22 + 5 + 2 * c + c // 2, 5 + 5 + 3 * c + c // 2
    assert tuple(a[y, x]) == (0, 0, 0)
    assert tuple(a[22 + 3, 5 + 2]) == (170, 170, 170)
    assert tuple(a[22 + ch + 3, 5 + cw + 2]) == (200, 0, 0)
    # nothing drawn where no region lies (ix 1, iy 2)
    assert (a[22 + 10 : 22 + ch - 10, 5 + cw + 10 : 5 + 2 * cw - 10] == 255).all()
