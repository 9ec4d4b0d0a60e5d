"""Helpers of the autoindexing follow-up: thin-slab limit, strong-vector pool, MAXCELL per
image, basis misfit, BEAMSEARCH parsing."""

from __future__ import annotations

import io

import numpy as np
from reference.indexing_ref import synthetic_rlp

from mosflm_py.actions.autoindex import beam_search_from_job
from mosflm_py.indexing.autoindex import basis_misfit, estimate_max_cell
from mosflm_py.indexing.dps import MIN_PLANES, find_basis, plane_count_kmin, strong_pool
from mosflm_py.session import Session


def _ewald_cap(cell_edge: float = 50.0, d_min: float = 2.0, wavelength: float = 1.0):
    """rlp of a primitive cubic lattice that lie within 0.002 1/A of the Ewald sphere (a still)."""
    n = int(cell_edge / d_min) + 1
    g = np.arange(-n, n + 1)
    h = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    rot = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    r = (h / cell_edge) @ rot.T
    s0 = np.array([1.0 / wavelength, 0.0, 0.0])
    d = np.abs(np.linalg.norm(r + s0, axis=1) - 1.0 / wavelength)
    keep = (d < 0.002) & (np.linalg.norm(r, axis=1) < 1.0 / d_min) & np.any(h != 0, axis=1)
    return r[keep], rot / cell_edge


def test_plane_count_limit_excludes_short_vectors_across_a_thin_slab():
    """Along the beam a still's rlp span ~0.07 1/A: a vector there must be > ~3/0.07 A."""
    rlp, _ = _ewald_cap()
    dirs = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    span = 2.0
    kmin = plane_count_kmin(rlp, dirs, span)
    # lengths (A) below which a vector cuts the spots into fewer than MIN_PLANES planes
    shortest = kmin / span
    spread = 3.3 * np.sqrt(np.var(rlp @ dirs.T, axis=0, ddof=1))
    np.testing.assert_allclose(shortest * spread, MIN_PLANES, rtol=1e-6)
    assert shortest[0] > 5 * shortest[1]  # across the slab (beam) much longer than in-plane


def test_still_cap_indexes_with_lattice_vectors_only():
    """DPS on one Ewald cap finds a basis of 50 A vectors (no degenerate short vector)."""
    rlp, _ = _ewald_cap()
    res = find_basis(rlp, max_cell=75.0)
    lengths = np.linalg.norm(res.basis, axis=1)
    np.testing.assert_allclose(sorted(lengths), [50.0, 50.0, 50.0], rtol=0.01)
    assert res.fraction > 0.95


def test_strong_pool_keeps_high_scores_and_extends_to_three_dimensions():
    vecs = np.array([[10.0, 0, 0], [0, 10.0, 0], [10.0, 10.0, 0], [0, 0, 10.0], [3, 4, 5.0]])
    scores = np.array([0.99, 0.98, 0.97, 0.5, 0.45])
    pool = strong_pool(vecs, scores)
    # the three coplanar strong vectors, extended by the best vector out of their plane
    assert list(pool) == [0, 1, 2, 3]
    assert list(strong_pool(vecs, np.array([0.9, 0.9, 0.9, 0.85, 0.2]))) == [0, 1, 2, 3]


def test_max_cell_uses_the_largest_per_image_estimate():
    """Image A sees 1/100 separations, image B only 1/40: MAXCELL 1.5 x 100."""
    g = np.arange(-5, 6)
    a = np.stack([np.zeros(11), g / 100.0, np.zeros(11)], 1)
    b = np.stack([np.zeros(11), g / 40.0, np.full(11, 0.3)], 1)
    rlp = np.concatenate([a, b])
    image = np.repeat([1, 2], 11)
    np.testing.assert_allclose(estimate_max_cell(rlp, image), 150.0, rtol=1e-6)


def test_max_cell_pooled_sparse_images_use_all_3d_spots():
    """Few (3D) spots per image are pooled: the closest pair on any images sets MAXCELL."""
    g = np.arange(5)
    rlp = np.stack([g * 0.1, np.zeros(5), np.zeros(5)], 1)  # 1/10 A spacing, one per image
    rlp = np.concatenate([rlp, rlp + [0, 0.25, 0]])
    image = np.tile(np.arange(1, 6), 2)
    np.testing.assert_allclose(estimate_max_cell(rlp, image), 15.0, rtol=1e-6)


def test_basis_misfit_separates_right_and_wrong_bases():
    rlp, ub = synthetic_rlp((50.0, 60.0, 70.0, 90, 90, 90), "oP", seed=2, outlier_fraction=0.0,
                            max_spots=400)
    right = np.linalg.inv(ub)
    assert basis_misfit(rlp, right) < 0.05
    wrong = right * np.array([[1.07], [1.0], [1.0]])
    assert basis_misfit(rlp, wrong) > 0.15


def _queued_job(line: str):
    s = Session(out=io.StringIO())
    s.run_lines([line])
    assert s.pending, "AUTOINDEX should queue a job until GO"
    return s.pending[-1]


def test_beamsearch_subkeyword_parsed_from_the_job():
    job = _queued_job("AUTOINDEX IMAGE 1 BEAMSEARCH 2.0 0.25")
    assert beam_search_from_job(job) == {"beam_search": True, "beam_range": 2.0,
                                         "beam_step": 0.25}
    job = _queued_job("AUTOINDEX IMAGE 1 BEAMSEARCH 0.6")
    assert beam_search_from_job(job) == {"beam_search": True, "beam_range": 0.6,
                                         "beam_step": 0.3}
    assert beam_search_from_job(_queued_job("AUTOINDEX IMAGE 1 BEAMSEARCH")) == {
        "beam_search": True}
    assert beam_search_from_job(_queued_job("AUTOINDEX IMAGE 1")) == {}
