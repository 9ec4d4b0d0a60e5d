"""3D spots for AUTOINDEX: spots joined across images, phi centroids, cut spots (issue 8.4)."""

from __future__ import annotations

import numpy as np

from mosflm_py.spotfinding import SpotList
from mosflm_py.spotfinding.merge import link_across_images, spots_3d


def _spots(rows):
    """rows: (image, x_px, y_px, intensity); phi = image centre of 0.5 deg images from 0."""
    a = np.array(rows, float)
    n = len(a)
    img = a[:, 0].astype(np.int32)
    return SpotList(
        x_mm=a[:, 1] * 0.1,
        y_mm=a[:, 2] * 0.1,
        x_px=a[:, 1],
        y_px=a[:, 2],
        intensity=a[:, 3],
        sigma=np.sqrt(a[:, 3]),
        size_x=np.full(n, 3, np.int32),
        size_y=np.full(n, 3, np.int32),
        n_pixels=np.full(n, 9, np.int32),
        peak=a[:, 3],
        background=np.zeros(n),
        d_spacing=np.full(n, 2.0),
        flags=np.zeros(n, np.int32),
        image=img,
        phi=(img - 1) * 0.5 + 0.25,
    )


def test_phi_centroid_is_the_intensity_weighted_mean_and_complete_spots_are_flagged():
    s = _spots(
        [
            (4, 100, 100, 10),
            (5, 100.5, 100, 30),
            (6, 101, 100.2, 60),  # one spot on 4-6
            (5, 300, 300, 100),  # one spot on image 5 only
            (2, 500, 500, 80),
            (3, 500, 500.4, 20),  # starts on image 2
        ]
    )
    s3 = spots_3d(s, searched={2, 3, 4, 5, 6, 7})
    assert len(s3) == 3
    k = int(np.argmin(np.abs(s3.spots.x_px - 100.6)))
    expect = (10 * 1.75 + 30 * 2.25 + 60 * 2.75) / 100
    assert abs(s3.spots.phi[k] - expect) < 1e-9
    assert (s3.first_image[k], s3.last_image[k]) == (4, 6) and s3.complete[k]
    one = int(np.argmin(np.abs(s3.spots.x_px - 300)))
    assert s3.complete[one] and s3.spots.phi[one] == 2.25
    # image 1 was not searched and the part on image 2 is 80 % of the spot: cut, phi biased
    cut = int(np.argmin(np.abs(s3.spots.x_px - 500)))
    assert not s3.complete[cut]


def test_weak_first_part_closes_a_spot_at_the_start_of_the_images():
    s = _spots([(1, 50, 50, 5), (2, 50, 50, 200), (3, 50, 50, 100)])
    s3 = spots_3d(s, searched={1, 2, 3, 4})
    assert len(s3) == 1 and s3.complete[0]  # 5 / 305 < 10 % on image 1 (nothing before it)


def test_chain_skips_one_searched_image_without_the_spot_but_not_an_unsearched_one():
    s = _spots([(1, 10, 10, 50), (3, 10.5, 10, 50)])
    assert len(set(link_across_images(s, searched={1, 2, 3}))) == 1
    assert len(set(link_across_images(s, searched={1, 3}))) == 2
    # a spot on the image in between belongs to the chain instead
    s2 = _spots([(1, 10, 10, 50), (2, 10.2, 10, 50), (3, 10.5, 10, 50)])
    assert len(set(link_across_images(s2))) == 1


def test_sparse_random_spots_fail_honestly_never_a_nonsense_cell():
    """15 spots on each of 3 images that are not from a lattice: AUTOINDEX says it cannot
    index them (IndexingError), it does not return a cell (issue 9.2)."""
    import pytest

    from mosflm_py.errors import IndexingError
    from mosflm_py.geometry.beam import Beam
    from mosflm_py.geometry.detector import Detector
    from mosflm_py.geometry.experiment import Experiment
    from mosflm_py.indexing.autoindex import autoindex
    from mosflm_py.indexing.detector_refine import DetectorSpots

    rng = np.random.default_rng(5)
    exp = Experiment(Beam(0.7), Detector(60.0, 50.0, 50.0, 0.1, 0.1, 1000, 1000))
    n = 45
    x = rng.uniform(5, 95, n)
    y = rng.uniform(5, 95, n)
    img = np.repeat([1, 7, 15], 15)
    phi = (img - 0.5) * 0.1
    spots = DetectorSpots(x, y, phi, np.full(n, 0.1), np.full(n, 1e4), np.full(n, 100.0), img)
    with pytest.raises(IndexingError, match="Autoindexing failed"):
        autoindex(spots, exp)


def _predicted_spots(experiment, phis, width):
    """Spot list of the reflections predicted on images of ``width`` deg centred on ``phis``."""
    from mosflm_py.geometry.prediction import predict

    parts = []
    for k, ph in enumerate(phis):
        p = predict(experiment, ph - width / 2, ph + width / 2, d_min=2.2)
        inside = np.abs(p.phi - ph) <= width / 2
        parts.append((p.x_mm[inside], p.y_mm[inside], p.phi[inside], np.full(inside.sum(), k)))
    return [np.concatenate(v) for v in zip(*parts)]


def test_second_lattice_is_found_and_reported_with_its_rotation():
    """Two P3 crystals (91.3 91.3 45.9) 23.2 deg apart on the same two images: AUTOINDEX keeps
    the first (hP, right cell) and finds the second among the spots left unindexed, with its
    rotation relative to the first (issue 9.5); one crystal alone gives no second lattice."""
    from mosflm_py.geometry.beam import Beam
    from mosflm_py.geometry.crystal import Crystal
    from mosflm_py.geometry.detector import Detector
    from mosflm_py.geometry.experiment import Experiment
    from mosflm_py.geometry.rotation import rot_axis
    from mosflm_py.indexing.autoindex import autoindex
    from mosflm_py.indexing.detector_refine import DetectorSpots
    from mosflm_py.simulate.crystal import random_rotation

    cell = (91.34, 91.34, 45.91, 90.0, 90.0, 120.0)
    u1 = random_rotation(3)
    u2 = rot_axis(np.array([0.3, -0.5, 0.81]) / np.linalg.norm([0.3, -0.5, 0.81]), 23.2) @ u1
    exp = Experiment(Beam(0.98), Detector(250.0, 150.0, 155.0, 0.172, 0.172, 1800, 1800))
    spots = {}
    for name, u in (("one", u1), ("two", u2)):
        e = exp.replace(crystal=Crystal(cell=cell, U=u, space_group="P 3"))
        x, y, phi, img = _predicted_spots(e, [0.5, 45.5], 1.0)
        spots[name] = (x, y, np.round(phi - 0.5) + 0.5, img)  # phi: image centre
    rng = np.random.default_rng(2)

    def detector_spots(parts):
        x, y, phi, img = (np.concatenate(v) for v in zip(*parts))
        n = len(x)
        return DetectorSpots(
            x + rng.normal(0, 0.02, n),
            y + rng.normal(0, 0.02, n),
            phi,
            np.full(n, 1.0),
            np.full(n, 1e4),
            np.full(n, 100.0),
            img,
        )

    both = autoindex(detector_spots([spots["one"], spots["two"]]), exp)
    assert both.solution.lattice == "hP"
    np.testing.assert_allclose(sorted(both.crystal.cell[:3]), sorted(cell[:3]), rtol=0.005)
    sec = both.second_lattice
    assert sec is not None and sec.lattice == "hP"
    np.testing.assert_allclose(sorted(sec.cell[:3]), sorted(cell[:3]), rtol=0.005)
    assert abs(sec.rotation - 23.2) < 0.5 or abs(sec.rotation - (120 - 23.2)) < 0.5
    assert autoindex(detector_spots([spots["one"]]), exp).second_lattice is None
