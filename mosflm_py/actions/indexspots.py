"""Spots for AUTOINDEX: 3D spots with φ centroids from the images given and their neighbours.

MOSFLM gives every spot the middle of its image's φ range, which is only right when the spots
are much narrower in φ than the images; on fine-sliced images, or at high resolution and near the
rotation axis, a reflection is recorded on several consecutive images (each part then gets a
different φ, and a spot on image n may belong to a reflection centred on image n ± 1).  The φ
error is up to half a rocking width, and it shows in the indexing as a large sd(phi) and a cell
that refinement distorts to fit (1.1 % on 0.5° small-molecule images).

So, as the 3D spot finders of XDS and DIALS (Kabsch 2010), the spots of the images given are
joined with their continuations on the neighbouring images into 3D spots whose φ is the
intensity-weighted centroid: the images on each side of an image given are searched while some
of its spots continue onto them (up to :data:`MAX_EXTEND_DEG` or :data:`MAX_EXTEND_IMAGES` on
each side).  A single image cannot give the centroid: a spot seen on one image says nothing of
how much of the reflection lies on the next one, so the neighbours must be read (as DIALS does,
which reads every image).  Only 3D spots that are on an image given are used, so the choice of
images still decides which reflections index the crystal (MOSFLM's behaviour).

Sparse images (small molecules: a few spots per image): when the images given yield fewer than
:data:`SPARSE_MIN_SPOTS` spots, first the whole detector is searched instead of iMosflm's default
search circle (95 % of the circle inscribed in the detector, which leaves out the corners of a
rectangular detector, where a small molecule's highest-angle spots are: they are the ones that
separate the crystal-to-detector distance from the cell, see
:func:`mosflm_py.indexing.autoindex.distance_test`; on the shared L-cysteine sweep the corners
hold a third of the reflections, and without them a 1 % error of the header distance stays in
the cell), unless RMAX was given.  Then, if there are still fewer than :data:`SPARSE_MIN_SPOTS`
3D spots, the wedge around each image given is widened image by image (up to
:data:`MAX_EXTEND_DEG` on each side) and its spots are used too.  The log says so.

A spot whose rocking curve is cut by the first or last image searched (the start or end of the
sweep, or the extension limit) has a biased φ centroid; its φ is given an uncertainty of its
whole φ extent, so the refinement trusts its X, Y but hardly its φ.

References
----------
Kabsch, W. (2010). Acta Cryst. D66, 125-132.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.findspots import find_on_image, spots_for_images
from mosflm_py.errors import ImageError, IndexingError
from mosflm_py.experiment_model import Found
from mosflm_py.indexing.detector_refine import SIGMA_XY, DetectorSpots
from mosflm_py.spotfinding import SpotList
from mosflm_py.spotfinding.merge import spots_3d

if TYPE_CHECKING:
    from mosflm_py.session import Session

MAX_EXTEND_DEG = 2.0
"""Neighbouring images are read up to this φ distance (deg) from an image given."""
MAX_EXTEND_IMAGES = 20
"""... and at most this many images on each side."""
SPARSE_MIN_SPOTS = 100
"""Fewer 3D spots than this on the images given: widen the wedges around them."""


def _phi_of(
    session: Session, m: int, phis: dict[int, tuple[float, float]]
) -> tuple[float, float] | None:
    """φ range of image m: a PHI override of an image given, shifted by whole images."""
    if not phis:
        return None
    n = min(phis, key=lambda k: abs(k - m))
    a, b = phis[n]
    w = b - a
    return (a + (m - n) * w, b + (m - n) * w)


def _phi_range(
    session: Session, m: int, phis: dict[int, tuple[float, float]]
) -> tuple[float, float]:
    ph = _phi_of(session, m, phis)
    if ph is not None:
        return ph
    g = session.geometry(m)
    return g.phi_start, g.phi_end


def _width(session: Session, m: int, phis: dict[int, tuple[float, float]]) -> float:
    a, b = _phi_range(session, m, phis)
    return abs(b - a)


def indexing_spots(
    session: Session, numbers: list[int], phis: dict[int, tuple[float, float]] | None = None
) -> tuple[DetectorSpots, dict[int, SpotList], list[str]]:
    """3D spots of the images *numbers* for AUTOINDEX (see the module docstring).

    Returns
    -------
    (DetectorSpots, {image: SpotList} of the images given, log lines)
    """
    phis = dict(phis or {})
    spot_lists = spots_for_images(session, numbers, report=True, phis=phis)
    notes: list[str] = []
    n_found = sum(len(s) for s in spot_lists.values())
    if n_found < SPARSE_MIN_SPOTS and session.effective.spotfind.rmax is None:
        # sparse images: the corners of the detector too (see the module docstring); a value
        # found (not the user's setting), so a later FINDSPOTS agrees with AUTOINDEX
        session.results.search_rmax = Found(float("inf"), "AUTOINDEX", session.state.clock)
        spot_lists = spots_for_images(session, numbers, report=True, phis=phis)
        notes.append(
            f"Only {n_found} spots inside the default search radius on the images given: "
            f"the whole detector was searched ({sum(len(s) for s in spot_lists.values())} "
            "spots)"
        )
    widths = {n: _width(session, n, phis) for n in numbers}
    if any(w <= 0 for w in widths.values()):
        # stills (or a still among them): no φ centroids; every image on its own
        return _per_image(spot_lists, widths), spot_lists, notes
    series = session.images()
    available = set(series.numbers)
    read: dict[int, SpotList] = dict(spot_lists)

    def within(m: int, centre: int) -> bool:
        return (
            abs(m - centre) <= MAX_EXTEND_IMAGES
            and abs(m - centre) * widths[centre] <= MAX_EXTEND_DEG + 1e-9
        )

    def search(m: int, near: int) -> bool:
        if m in read:
            return True
        if m not in available or not within(m, near):
            return False
        try:
            s, _, _ = find_on_image(session, m, _phi_of(session, m, phis))
        except ImageError:
            return False
        read[m] = s
        return True

    def gather(wanted: set[int]):
        """Read neighbours until every 3D spot on a wanted image ends on a searched image."""
        for _ in range(2 * MAX_EXTEND_IMAGES + 2):
            all_spots = SpotList.concatenate([read[m] for m in sorted(read) if len(read[m])])
            s3 = spots_3d(all_spots, set(read))
            img = np.asarray(all_spots.image)
            on_wanted = np.zeros(len(s3), bool)
            if len(img):
                on_wanted[np.unique(s3.labels[np.isin(img, list(wanted))])] = True
            grew = False
            for k in np.flatnonzero(on_wanted & ~s3.complete):
                lo, hi = int(s3.first_image[k]), int(s3.last_image[k])
                near = min(numbers, key=lambda n: min(abs(n - lo), abs(n - hi)))
                for m in (lo - 1, hi + 1):
                    if m not in read and search(m, near):
                        grew = True
            if not grew:
                return s3, on_wanted, all_spots
        return s3, on_wanted, all_spots

    wanted = set(numbers)
    s3, on_wanted, all_spots = gather(wanted)
    n_given = int(on_wanted.sum())
    if n_given < SPARSE_MIN_SPOTS:
        # sparse images: widen the wedge around each image given, one image a side at a time
        wedge = {n: [n, n] for n in numbers}
        for _ in range(MAX_EXTEND_IMAGES):
            more = set()
            for n, lim in wedge.items():
                for side, m in ((0, lim[0] - 1), (1, lim[1] + 1)):
                    if m in wanted:
                        lim[side] = m
                    elif search(m, n):
                        more.add(m)
                        lim[side] = m
            if not more:
                break
            wanted |= more
            s3, on_wanted, all_spots = gather(wanted)
            if on_wanted.sum() >= SPARSE_MIN_SPOTS:
                break
        if len(wanted) > len(numbers):
            extra = sorted(wanted - set(numbers))
            notes.append(
                f"Only {n_given} spots on the images given: the spots of {len(extra)} "
                f"neighbouring images ({_ranges(extra)}) are used too "
                f"({int(on_wanted.sum())} spots)"
            )
    extra_read = sorted(set(read) - wanted)
    if extra_read:
        notes.insert(
            0,
            f"Spot centroids in phi from the images given and their neighbours "
            f"({_ranges(extra_read)} also searched)",
        )
    sel = np.flatnonzero(on_wanted)
    if not len(sel):
        raise IndexingError("no spots were found on the images selected for autoindexing")
    merged = s3.spots.select(sel)
    first, last = s3.first_image[sel], s3.last_image[sel]
    complete = s3.complete[sel]
    # each 3D spot is labelled with the image given it is on (or nearest to), so the
    # per-image logic of the indexing (maximum cell) keeps its meaning
    given = np.array(sorted(numbers))
    centre = 0.5 * (first + last)
    label = given[np.argmin(np.abs(centre[:, None] - given[None, :]), axis=1)]
    w = np.array([widths.get(int(n), widths[numbers[0]]) for n in label])
    # φ uncertainty: complete spots w/sqrt(12) (centroid within an image at worst); cut
    # spots their whole extent (DetectorSpots.phi_width is twice the φ sigma used)
    extent = (last - first + 1) * w
    # φ: the centroid of a complete spot is known to ~w/sqrt(12) (within an image at worst).
    # For a cut spot the observed centroid is a bound: the unseen part of its rocking curve
    # lies before the first image searched (or after the last), by an unknown amount, likely
    # no more than its observed extent (or MAX_EXTEND_DEG); the refinement is given that
    # interval (DetectorSpots.phi_min / phi_max) and a φ uncertainty of that much beyond it.
    lo_cut = ~s3.lo_closed[sel]
    hi_cut = ~s3.hi_closed[sel]
    unseen = np.minimum(extent, MAX_EXTEND_DEG)
    phi_sigma = np.where(lo_cut | hi_cut, np.maximum(unseen, w / np.sqrt(12.0)), w / np.sqrt(12.0))
    ends = np.array(
        [
            _phi_range(session, int(f), phis) + _phi_range(session, int(la), phis)
            for f, la in zip(first, last)
        ]
    )
    phi_min = np.where(lo_cut, ends.min(axis=1) - unseen, merged.phi)
    phi_max = np.where(hi_cut, ends.max(axis=1) + unseen, merged.phi)
    # position of a cut spot: the centroid of part of its rocking curve; the spot moves on the
    # detector while it crosses the Ewald sphere (measured along the chain, mm per image), so
    # its centroid may be off by that motion over about half its observed extent
    slope = _motion_per_image(all_spots, s3)[sel]
    n_img = last - first + 1
    xy_sigma = np.where(complete, SIGMA_XY, np.hypot(SIGMA_XY, 0.5 * slope * n_img))
    spots = DetectorSpots(
        merged.x_mm,
        merged.y_mm,
        merged.phi,
        2.0 * phi_sigma,
        merged.intensity,
        merged.sigma,
        label.astype(int),
        xy_sigma,
        phi_min,
        phi_max,
    )
    n_multi = int(np.sum(last > first))
    notes.append(
        f"{len(sel)} spots ({n_multi} of them on more than one image, "
        f"{int(np.sum(~complete))} cut by the first or last image searched) "
        "with phi centroids"
    )
    return spots, spot_lists, notes


def _motion_per_image(all_spots: SpotList, s3) -> np.ndarray:
    """Detector motion (mm per image) of each 3D spot between its first and last image."""
    m = len(s3)
    img = np.asarray(all_spots.image)
    lab = s3.labels
    out = np.zeros(m)
    at_first = img == s3.first_image[lab]
    at_last = img == s3.last_image[lab]
    x0 = np.zeros(m)
    y0 = np.zeros(m)
    x1 = np.zeros(m)
    y1 = np.zeros(m)
    x0[lab[at_first]], y0[lab[at_first]] = all_spots.x_mm[at_first], all_spots.y_mm[at_first]
    x1[lab[at_last]], y1[lab[at_last]] = all_spots.x_mm[at_last], all_spots.y_mm[at_last]
    span = s3.last_image - s3.first_image
    multi = span > 0
    out[multi] = np.hypot(x1 - x0, y1 - y0)[multi] / span[multi]
    return out


def _per_image(spot_lists: dict[int, SpotList], widths: dict[int, float]) -> DetectorSpots:
    parts = [spot_lists[n] for n in sorted(spot_lists) if len(spot_lists[n].x_mm)]
    if not parts:
        raise IndexingError("no spots were found on the images selected for autoindexing")
    cat = SpotList.concatenate(parts)
    width = np.array([widths.get(int(i), 0.0) for i in cat.image])
    return DetectorSpots(
        cat.x_mm, cat.y_mm, cat.phi, width, cat.intensity, cat.sigma, cat.image.astype(int)
    )


def _ranges(nums: list[int]) -> str:
    """'1-3, 7, 9-10' from sorted image numbers."""
    out = []
    start = prev = None
    for n in sorted(nums):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(out)
