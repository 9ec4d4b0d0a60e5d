"""Join the same spot found on consecutive images into one 3D spot (X, Y, φ centroids).

A reflection on a rotation image is recorded over the φ range where it crosses the Ewald sphere
(its rocking width: mosaic spread, beam divergence and dispersion, widened near the rotation
axis by the Lorentz factor), so on images narrower than that it appears on several consecutive
images.  The spot finder sees one 2D spot per image; joining them gives one 3D spot whose φ is
the intensity-weighted mean of the image mid-φ values, as the 3D spot finders of XDS (COLSPOT)
and DIALS do (Kabsch 2010), instead of the middle of one image (MOSFLM's approximation, good
only when spots are much narrower than the images).

References
----------
Kabsch, W. (2010). Acta Cryst. D66, 125-132.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from mosflm_py.spotfinding.types import SpotList


def link_across_images(
    spots: SpotList, max_shift_px: float = 2.0, max_gap: int = 1, searched: set[int] | None = None
) -> np.ndarray:
    """Group labels (0..m-1) joining spots that continue on consecutive images.

    A spot on image n and the nearest spot on image n + 1 within ``max_shift_px`` pixels, or
    the larger spot's extent (centroid distance), are the same reflection; each spot of
    image n + 1 continues at most one
    spot of image n (the closest claimant).  A chain may also jump ``max_gap`` images (a weak
    part below the spot-finding threshold on one image) when neither end has a partner on the
    images in between.  Chains over several images share one label.

    Parameters
    ----------
    spots : SpotList
        Spots of one or more images (``image`` numbers; consecutive numbers are adjacent in φ).
    max_shift_px : float
        Largest centroid shift (pixels) between images for one reflection.
    max_gap : int
        Images a chain may skip (only images that were searched).
    searched : set of int, optional
        Images searched (default: those holding spots).

    Returns
    -------
    ndarray of int, shape (N,)
        Group label of every spot, numbered in order of the chains' first spots.
    """
    s = spots
    n = len(s)
    if n == 0:
        return np.zeros(0, np.int64)
    parent = np.arange(n)
    has_next = np.zeros(n, bool)
    has_prev = np.zeros(n, bool)
    img_set = {int(i) for i in np.unique(s.image)}
    searched = img_set if searched is None else set(searched) | img_set
    pos = np.column_stack([s.x_px, s.y_px])
    # the weak first and last parts of a spot have noisy centroids: two parts are one spot
    # when their centroids are within the larger one's extent (at least max_shift_px)
    reach = np.maximum(max_shift_px, np.maximum(s.size_x, s.size_y))
    max_reach = float(reach.max())
    for step in range(1, max_gap + 2):
        for a in sorted(img_set):
            b = a + step
            if b not in img_set or any(a + k not in searched for k in range(1, step)):
                continue
            # a chain may skip images only where they were searched without finding it
            ia = np.flatnonzero((s.image == a) & ~has_next)
            ib = np.flatnonzero((s.image == b) & ~has_prev)
            if not len(ia) or not len(ib):
                continue
            dist, j = cKDTree(pos[ib]).query(pos[ia], distance_upper_bound=max_reach)
            hit = np.isfinite(dist)
            jj = np.where(hit, j, 0)
            hit &= dist <= np.maximum(reach[ia], reach[ib[jj]])
            # one partner per spot on image b: keep the closest claimant
            order = np.argsort(dist[hit])
            cand_a = ia[hit][order]
            cand_b = ib[j[hit][order]]
            _, first = np.unique(cand_b, return_index=True)
            for pa, pb in zip(cand_a[first], cand_b[first]):
                parent[pb] = pa
                has_next[pa] = True
                has_prev[pb] = True
    # resolve chains (parents point to an earlier image)
    root = parent.copy()
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    _, labels = np.unique(root, return_inverse=True)
    return labels.astype(np.int64)


def merge_groups(spots: SpotList, labels: np.ndarray) -> SpotList:
    """One spot per group: summed intensity (σ in quadrature), intensity-weighted X, Y, φ.

    Also the summed pixel count, the largest extent and peak, the OR of the flags, and the
    image number of the intensity-weighted mean image (rounded).
    """
    s = spots
    inv = np.asarray(labels)
    m = int(inv.max()) + 1 if len(inv) else 0

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
        x_mm=wmean(s.x_mm),
        y_mm=wmean(s.y_mm),
        x_px=wmean(s.x_px),
        y_px=wmean(s.y_px),
        intensity=ssum(s.intensity),
        sigma=np.sqrt(ssum(s.sigma**2)),
        size_x=gmax(s.size_x).astype(np.int32),
        size_y=gmax(s.size_y).astype(np.int32),
        n_pixels=ssum(s.n_pixels).astype(np.int32),
        peak=gmax(s.peak),
        background=wmean(s.background),
        d_spacing=d_out,
        flags=flags,
        image=np.rint(wmean(s.image.astype(float))).astype(np.int32),
        phi=wmean(s.phi),
    )


def merge_across_images(spots: SpotList | list[SpotList], max_shift_px: float = 2.0) -> SpotList:
    """Merge spots that continue on consecutive images (:func:`link_across_images`,
    :func:`merge_groups`).

    Parameters
    ----------
    spots : SpotList or list of SpotList
        Spots with ``image`` numbers (e.g. from :func:`find_spots_many`).
    max_shift_px : float
        Largest centroid shift (pixels) between images for one reflection.
    """
    s = SpotList.concatenate(spots) if isinstance(spots, list) else spots
    if len(s) == 0:
        return s
    return merge_groups(s, link_across_images(s, max_shift_px))


@dataclass(frozen=True)
class Spots3D:
    """3D spots (one per reflection passage) and where their images start and end.

    Attributes
    ----------
    spots : SpotList
        Merged spots; ``phi`` is the intensity-weighted φ centroid (deg).
    first_image, last_image : ndarray of int
        First and last image on which each spot was found.
    complete : ndarray of bool
        The whole rocking curve was seen, so the φ centroid is unbiased: at each end either
        the next image was searched (and the spot is not on it) or the part on the end image
        holds less than ``edge_fraction`` of the spot's intensity.  False for a spot cut by the
        first or last image searched (e.g. the start or end of the sweep).
    labels : ndarray of int
        Group label of each input spot (index into the merged arrays).
    lo_closed, hi_closed : ndarray of bool
        The start (end) of the rocking curve was seen; ``complete`` is both.
    """

    spots: SpotList
    first_image: np.ndarray
    last_image: np.ndarray
    complete: np.ndarray
    labels: np.ndarray
    lo_closed: np.ndarray
    hi_closed: np.ndarray

    def __len__(self) -> int:
        return len(self.spots)


def spots_3d(
    spots: SpotList,
    searched: set[int] | None = None,
    max_shift_px: float = 2.0,
    edge_fraction: float = 0.1,
) -> Spots3D:
    """Join the spots of consecutive images into 3D spots with φ centroids.

    Parameters
    ----------
    spots : SpotList
        Spots of the searched images (``image`` numbers, ``phi`` = each image's mid-φ).
    searched : set of int, optional
        Images that were searched (default: the images holding spots).  A spot whose first
        image n has n - 1 searched, and whose last image m has m + 1 searched, is complete.
    max_shift_px : float
        Largest centroid shift (pixels) between images for one reflection.
    edge_fraction : float
        An end part holding less than this fraction of the intensity closes the spot even when
        the image beyond it was not searched (the missing tail then moves the centroid by less
        than about this fraction of the spot's φ extent).
    """
    if searched is None:
        searched = {int(i) for i in np.unique(spots.image)}
    labels = link_across_images(spots, max_shift_px, searched=searched)
    m = int(labels.max()) + 1 if len(labels) else 0
    img = np.asarray(spots.image, np.int64)
    first = np.full(m, np.iinfo(np.int64).max)
    last = np.full(m, np.iinfo(np.int64).min)
    np.minimum.at(first, labels, img)
    np.maximum.at(last, labels, img)
    inten = np.maximum(np.asarray(spots.intensity, float), 0.0)
    total = np.bincount(labels, weights=inten, minlength=m) + 1e-12
    i_first = np.bincount(labels, weights=np.where(img == first[labels], inten, 0.0), minlength=m)
    i_last = np.bincount(labels, weights=np.where(img == last[labels], inten, 0.0), minlength=m)
    multi = last > first
    lo_closed = np.isin(first - 1, list(searched)) | (multi & (i_first < edge_fraction * total))
    hi_closed = np.isin(last + 1, list(searched)) | (multi & (i_last < edge_fraction * total))
    complete = lo_closed & hi_closed
    merged = merge_groups(spots, labels) if m else SpotList()
    return Spots3D(
        spots=merged,
        first_image=first,
        last_image=last,
        complete=complete,
        labels=labels,
        lo_closed=lo_closed,
        hi_closed=hi_closed,
    )
