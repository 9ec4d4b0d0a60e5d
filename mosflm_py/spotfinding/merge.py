"""Join the same spot found on consecutive images (fine-sliced data) into one spot."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from mosflm_py.spotfinding.types import SpotList


def merge_across_images(spots: SpotList | list[SpotList], max_shift_px: float = 2.0) -> SpotList:
    """Merge spots that continue on consecutive images.

    A spot on image n and the nearest spot on image n + 1 within ``max_shift_px`` pixels (centroid
    distance) are the same reflection; chains over several images become one spot with summed
    intensity (σ added in quadrature), intensity-weighted position and φ centroid, summed pixel
    count, the largest extent and peak, OR of the flags, and the image number of the
    intensity-weighted mean image (rounded).

    Parameters
    ----------
    spots : SpotList or list of SpotList
        Spots with ``image`` numbers (e.g. from :func:`find_spots_many`).
    max_shift_px : float
        Largest centroid shift (pixels) between images for one reflection.
    """
    s = SpotList.concatenate(spots) if isinstance(spots, list) else spots
    n = len(s)
    if n == 0:
        return s
    parent = np.arange(n)
    imgs = np.unique(s.image)
    pos = np.column_stack([s.x_px, s.y_px])
    for a, b in zip(imgs[:-1], imgs[1:]):
        if b != a + 1:
            continue
        ia = np.flatnonzero(s.image == a)
        ib = np.flatnonzero(s.image == b)
        if not len(ia) or not len(ib):
            continue
        dist, j = cKDTree(pos[ib]).query(pos[ia], distance_upper_bound=max_shift_px)
        hit = np.isfinite(dist)
        # one partner per spot on image b: keep the closest claimant
        order = np.argsort(dist[hit])
        cand_a = ia[hit][order]
        cand_b = ib[j[hit][order]]
        _, first = np.unique(cand_b, return_index=True)
        for pa, pb in zip(cand_a[first], cand_b[first]):
            parent[pb] = pa
    # resolve chains (parents point to an earlier image)
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    groups, inv = np.unique(root, return_inverse=True)
    m = len(groups)

    def ssum(v):
        return np.bincount(inv, weights=v, minlength=m)

    w = np.maximum(s.intensity, 0.0) + 1e-12
    wsum = ssum(w)

    def wmean(v):
        return ssum(w * v) / wsum

    def gmax(v):
        out = np.full(m, -np.inf)
        np.maximum.at(out, inv, v)
        return out

    flags = np.zeros(m, np.int32)
    np.bitwise_or.at(flags, inv, s.flags)
    d = np.where(np.isfinite(s.d_spacing), s.d_spacing, 1e30)
    d_mean = wmean(1.0 / d)
    with np.errstate(divide="ignore"):
        d_out = np.where(d_mean > 0, 1.0 / d_mean, np.inf)
    return SpotList(
        x_mm=wmean(s.x_mm), y_mm=wmean(s.y_mm), x_px=wmean(s.x_px), y_px=wmean(s.y_px),
        intensity=ssum(s.intensity), sigma=np.sqrt(ssum(s.sigma**2)),
        size_x=gmax(s.size_x).astype(np.int32), size_y=gmax(s.size_y).astype(np.int32),
        n_pixels=ssum(s.n_pixels).astype(np.int32), peak=gmax(s.peak),
        background=wmean(s.background), d_spacing=d_out, flags=flags,
        image=np.rint(wmean(s.image.astype(float))).astype(np.int32), phi=wmean(s.phi),
    )
