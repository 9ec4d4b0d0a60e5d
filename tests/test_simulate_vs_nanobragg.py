"""The simulator's "domains" model against nanoBragg itself (development set dev_p1_smallcell).

The same crystal (truth U, cell, amplitudes), geometry, mosaic (16 domains, 0.35 deg cap),
domain size (16 x 12 x 10 cells), 5 phi sub-steps and 0.5 px point-spread are rendered with
:mod:`mosflm_py.simulate.domains`, and every fully recorded reflection's counts summed over twenty
images are compared with the same sum in nanoBragg's images (background taken from a ring around
each spot).  The domain orientations differ (different random generators), which changes how a
reflection is shared between images but not its total, so the totals must agree up to one scale
factor (nanoBragg's fluence): no trend with resolution or with the Lorentz factor, and a scatter
at the level of the counting noise.  Spot centroids must agree too (same conventions).
"""

from __future__ import annotations

import numpy as np
import pytest
from devset import dev_set

from mosflm_py.simulate.detector import detector_frame
from mosflm_py.simulate.domains import blur, render_domains_batch
from mosflm_py.simulate.params import nanobragg_like_params
from mosflm_py.simulate.render import crystal_model
from mosflm_py.simulate.truth import observations

FIRST, COUNT = 6, 20  # images 6-25 of the set


@pytest.fixture(scope="module")
def totals():
    import fabio

    ds = dev_set("dev_p1_smallcell")
    t = ds.truth
    rows = np.loadtxt(ds.path / "truth_F.hkl")
    inten = {}
    for h, f in zip(rows[:, :3].astype(int), rows[:, 3]):
        inten[tuple(h)] = inten[tuple(-h)] = f * f  # P1 with Friedel mates, as given nanoBragg
    nfast, nslow = t["detector_size_px_fast_slow"]
    beam_x, beam_y = t["beam_centre"]["mosflm_BEAM_X_Y_mm"]
    osc = t["oscillation_width_deg"]
    p = nanobragg_like_params(
        wavelength=t["wavelength_A"], distance=t["distance_mm"], pixel_size=t["pixel_size_mm"],
        nslow=nslow, nfast=nfast, beam_x=beam_x, beam_y=beam_y,
        U=tuple(map(tuple, t["mosflm_U_matrix_busing_levy"])), cell=tuple(t["cell"]),
        space_group="P 1", intensities=inten, resolution=t["structure_factors"]["d_min_A"],
        phi_start=t["oscillation_start_deg"] + (FIRST - 1) * osc, osc_width=osc, n_images=COUNT,
        mosaic=t["mosaic_spread_deg"], mosaic_domains=t["mosaic_domains"],
        domain_size=tuple(t["domain_size_cells_abc"]), phi_steps=t["nanoBragg"]["phisteps"],
        psf_sigma=t["detector_psf_gaussian_sigma_px"],
        polarisation=t["polarization"]["kahn_factor"], background=0.0, background_radial=0.0,
        poisson=False,
    )  # fmt: skip
    model = crystal_model(p)
    np.testing.assert_allclose(model.A, np.array(t["mosflm_A_matrix_at_phi0"]), atol=1e-12)
    det = detector_frame(p)
    obs = observations(model, p, det)
    spots, _, _ = render_domains_batch(model, p, 0, COUNT, det)
    mine = blur(spots, p).sum(axis=0, dtype=np.float64)
    theirs = np.zeros_like(mine)
    bad = np.zeros(mine.shape, dtype=bool)
    template = ds.image_dir / ds.template
    for n in range(FIRST, FIRST + COUNT):
        name = str(template).replace("#####", f"{n:05d}")
        a = fabio.open(name).data.astype(float)
        bad |= a < 0
        theirs += np.where(a < 0, 0.0, a)
    rows = []
    ii, jj = np.mgrid[-10:11, -10:11]
    ring = np.maximum(abs(ii), abs(jj)) >= 7
    for i in np.nonzero(obs.fully_recorded & obs.on_detector & ~obs.small_zeta)[0]:
        s0, f0 = int(obs.slow_px[i]), int(obs.fast_px[i])
        if not (12 <= s0 < nslow - 12 and 12 <= f0 < nfast - 12):
            continue
        big = (slice(s0 - 10, s0 + 11), slice(f0 - 10, f0 + 11))
        if bad[big].any():
            continue
        out = []
        for img in (mine, theirs):
            cut = img[big] - np.median(img[big][ring])
            box = cut[6:15, 6:15]
            tot = box.sum()
            out += [tot, (box * ii[6:15, 6:15]).sum() / tot, (box * jj[6:15, 6:15]).sum() / tot]
        rows.append(out + [obs.dstar[i], abs(obs.zeta[i])])
    return np.array(rows)


def test_reflection_totals_match_nanobragg_up_to_one_scale(totals):
    r = totals
    strong = r[:, 0] > np.median(r[:, 0])
    assert strong.sum() > 40
    ratio = r[strong, 3] / r[strong, 0]
    k = np.median(ratio)
    # scatter: counting noise of these strong spots is ~1-2 %
    assert 1.4826 * np.median(np.abs(ratio / k - 1.0)) < 0.04
    for col in (6, 7):  # no trend with resolution (d*) or with the Lorentz factor (|zeta|)
        lo = r[strong, col] < np.median(r[strong, col])
        assert np.median(ratio[lo]) / np.median(ratio[~lo]) == pytest.approx(1.0, abs=0.03)


def test_spot_centroids_match_nanobragg(totals):
    r = totals
    strong = r[:, 0] > np.median(r[:, 0])
    assert abs(np.median(r[strong, 4] - r[strong, 1])) < 0.2  # slow, px
    assert abs(np.median(r[strong, 5] - r[strong, 2])) < 0.2  # fast, px
