"""Integration accuracy on a small simulated sweep: fulls and partials against the truth.

The simulator (:mod:`mosflm_py.simulate`) renders each part of a reflection at the diffracted-ray
position of the moment it was recorded, so partial parts are smeared and shifted by rotation as in
real data; the truth holds the expected photons of every part on every image.  Reflections are
predicted from the true model (each part at the centroid angle of its share of the rocking
curve, :func:`part_centroid_phi`), profiles formed from all images, and each part is compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.integration import (
    IntegrationParams,
    ProfileParams,
    Raster,
    Targets,
    accumulate_profiles,
    integrate_image,
    part_centroid_phi,
)
from mosflm_py.simulate import default_params, simulate_dataset


def _experiment(p, model):
    from mosflm_py.geometry.beam import Beam
    from mosflm_py.geometry.crystal import Crystal
    from mosflm_py.geometry.detector import Detector
    from mosflm_py.geometry.experiment import Experiment
    from mosflm_py.geometry.goniometer import Goniometer

    return Experiment(
        beam=Beam(wavelength=p.wavelength, polarisation=p.polarisation),
        detector=Detector(distance=p.distance, beam_x=p.beam_x, beam_y=p.beam_y,
                          pixel_slow=p.pixel_size, pixel_fast=p.pixel_fast, nslow=p.nslow,
                          nfast=p.nfast),
        goniometer=Goniometer(),
        crystal=Crystal(cell=p.cell, U=model.U, missets=p.missets, space_group=p.space_group,
                        mosaic=p.mosaic),
    )


@pytest.fixture(scope="module")
def sweep_parts(tmp_path_factory):
    """Integrated parts (Ipr, sigIpr, I, sigI, true counts, fraction) of a 6-image sweep."""
    import fabio

    from mosflm_py.geometry.prediction import fraction_on_image, predict, predict_positions

    p = default_params(nslow=420, nfast=420, beam_x=36.0, beam_y=36.5, distance=90.0,
                       resolution=1.9, n_images=6, mosaic=0.3, seed=3)
    ds = simulate_dataset(p, tmp_path_factory.mktemp("g2sim"))
    t = ds.truth
    truth = {}
    for o, img, cnt in zip(t["part_obs"], t["part_image"], t["part_counts"]):
        truth[(tuple(t["obs_hkl"][o]), int(img))] = float(cnt)
    exp = _experiment(p, ds.model)
    params = IntegrationParams(raster=Raster(13, 13, 11, 4, 4), profile=ProfileParams())
    block = []
    for n, path in zip(ds.image_numbers, ds.paths):
        a = p.phi_start + (n - p.first_image) * p.osc_width
        pr = predict(exp, a, a + p.osc_width)
        frac = fraction_on_image(pr.phi, pr.width, a, a + p.osc_width)
        keep = frac > 1e-3
        # each part where the reflection is while it is recorded on this image
        ph = part_centroid_phi(pr.phi[keep], pr.width[keep], a, a + p.osc_width)
        xm, ym, _ = predict_positions(exp, pr.hkl[keep], ph)
        x, y = exp.detector.mm_to_px(xm, ym)
        ip = Targets.from_arrays(x, y, pr.hkl[keep], frac[keep])
        block.append((fabio.open(str(path)).data.astype(np.int32), ip, n))
    prof = accumulate_profiles([(f, ip) for f, ip, _ in block], params, high_resolution=False)
    rows = []
    for frame, ip, n in block:
        res = integrate_image(frame, ip, params, prof)
        for q in np.flatnonzero(res.accepted & (res.flags == 0)):
            key = (tuple(int(v) for v in ip.hkl[q]), n)  # truth parts carry image numbers
            if key in truth:
                rows.append((res.Ipr[q], res.sigIpr[q], res.I[q], res.sigI[q], truth[key],
                             ip.fraction[q]))
    return np.array(rows), prof


def test_parts_unbiased_and_sigmas_consistent(sweep_parts):
    rows, prof = sweep_parts
    ipr, spr, isum, ssum, true, frac = rows.T
    assert prof.usable and rows.shape[0] > 1500
    full, part = frac > 0.99, frac <= 0.99
    assert full.sum() > 150 and part.sum() > 1000
    for sel in (full, part):
        for i, s in ((ipr, spr), (isum, ssum)):
            z = (i - true)[sel] / s[sel]
            assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0, abs=0.1)
        strong = sel & (true > 50 * np.sqrt(np.median(ssum)))
        # strong: the profile-fitted total agrees with the true counts within 0.5 %
        assert abs(ipr[strong].sum() / true[strong].sum() - 1) < 0.005


def test_profile_fitting_beats_summation(sweep_parts):
    rows, _ = sweep_parts
    ipr, spr, isum, ssum, true, frac = rows.T
    isig = isum / ssum
    strong, weak = isig > 10, isig < 3
    rms = lambda i, sel: np.sqrt(np.mean((i - true)[sel] ** 2))  # noqa: E731
    assert weak.sum() > 100 and strong.sum() > 500
    assert rms(ipr, strong) <= 1.02 * rms(isum, strong)
    assert rms(ipr, weak) < 0.85 * rms(isum, weak)


def test_part_centroid_phi():
    # whole curve inside: centroid at the centre; half curve: 3/8 W from the centre (6q(1-q))
    ph = part_centroid_phi(np.array([10.0, 10.0, 10.0]), np.array([0.4, 0.4, 0.0]), 9.0, 10.0)
    assert ph[0] == pytest.approx(10.0 - 0.4 * (0.5 - 5 / 16), abs=1e-9)
    assert ph[2] == 10.0
    assert part_centroid_phi(np.array([10.0]), np.array([0.4]), 9.0, 11.0)[0] == pytest.approx(10)
