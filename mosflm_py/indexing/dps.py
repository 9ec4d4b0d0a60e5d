"""DPS basis search: 1D Fourier transforms of projected reciprocal-lattice vectors.

For a direction t the projections p_i = r_i . t of the reciprocal-lattice vectors cluster on
planes spaced 1/|a| when t is parallel to a real-space lattice vector a; the Fourier transform of
the histogram of the p_i then peaks at a frequency proportional to |a|.  Scanning ~7300
directions over a hemisphere and keeping the strongest peaks gives candidate real-space vectors;
three non-coplanar candidates that index most spots with the smallest cell volume form the
basis.

References
----------
Steller, Bolotovsky & Rossmann (1997) *J. Appl. Cryst.* 30, 1036-1040; Powell (1999) *Acta
Cryst.* D55, 1690-1695; Sauter, Grosse-Kunstleve & Adams (2004) *J. Appl. Cryst.* 37, 399-409.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.spatial import cKDTree

from mosflm_py.errors import IndexingError
from mosflm_py.kernels.fft_index import project_histograms, project_histograms_serial


def projection_histograms(rlp: np.ndarray, dirs: np.ndarray, span: float, nbins: int) -> np.ndarray:
    """Cloud-in-cell histograms (M, nbins) of the projections of rlp (N, 3) on dirs (M, 3).

    Bins cover [-span/2, span/2) (1/Angstrom); see :func:`mosflm_py.kernels.fft_index`.
    """
    rlp = np.ascontiguousarray(rlp, dtype=np.float64)
    dirs = np.ascontiguousarray(dirs, dtype=np.float64)
    if rlp.ndim != 2 or rlp.shape[1] != 3 or dirs.ndim != 2 or dirs.shape[1] != 3:
        raise ValueError("rlp and dirs must be (N, 3) and (M, 3)")
    if nbins < 2 or not span > 0:
        raise ValueError("need nbins >= 2 and span > 0")
    out = np.zeros((len(dirs), int(nbins)))
    kernel = project_histograms if len(dirs) * len(rlp) > 200_000 else project_histograms_serial
    kernel(rlp, dirs, float(span), out)
    return out


@dataclass(frozen=True)
class BasisSearchResult:
    """Outcome of :func:`find_basis`.

    Attributes
    ----------
    basis : ndarray (3, 3)
        Chosen real-space basis (rows, Angstrom), right-handed, not yet reduced.
    fraction : float
        Fraction of the rlp indexed within ``hkldev`` by the basis.
    vectors : ndarray (n, 3)
        The refined candidate vectors (Angstrom), best first.
    scores : ndarray (n,)
        Their Fourier scores (fraction-like, 0..1).
    """

    basis: np.ndarray
    fraction: float
    vectors: np.ndarray
    scores: np.ndarray


def hemisphere_directions(spacing: float = 0.029) -> np.ndarray:
    """Near-uniform unit vectors over the hemisphere z >= 0 (Fibonacci lattice).

    Parameters
    ----------
    spacing : float
        Approximate angular spacing (radians); 0.029 gives ~7500 directions.
    """
    n_full = int(np.ceil(4 * np.pi / spacing**2))
    i = np.arange(n_full) + 0.5
    z = 1 - 2 * i / n_full
    keep = z >= 0
    z = z[keep]
    golden = np.pi * (3 - np.sqrt(5))
    phi = golden * i[keep]
    rxy = np.sqrt(1 - z * z)
    return np.stack([rxy * np.cos(phi), rxy * np.sin(phi), z], axis=1)


MIN_PLANES = 3.0
"""A candidate vector must cut the spots into at least this many lattice planes (see
:func:`plane_count_kmin`)."""


def plane_count_kmin(rlp: np.ndarray, dirs: np.ndarray, span: float) -> np.ndarray:
    """Lowest useful Fourier frequency bin per direction (float, may be below 2).

    When all the reciprocal-lattice points lie in a thin slab (one still, or a narrow wedge of
    rotation), their projections on directions across the slab occupy a narrow range and every
    short vector along those directions "indexes" all spots with index 0: the transform of a
    narrow distribution is flat.  Frequency k corresponds to the vector length k / span; the
    central ~90 % of the projections (3.3 standard deviations) must contain at least
    ``MIN_PLANES`` planes, i.e. ``k >= MIN_PLANES * span / (3.3 sigma_t)``, where
    ``sigma_t^2 = t' C t`` from the covariance C of the rlp.
    """
    cov = np.atleast_2d(np.cov(np.asarray(rlp, float).T))
    var = np.einsum("mi,ij,mj->m", dirs, cov, dirs)
    sd = np.sqrt(np.maximum(var, 1e-30))
    return MIN_PLANES * span / (3.3 * sd)


def _fft_scores(
    rlp: np.ndarray, dirs: np.ndarray, span: float, nbins: int, kmin: int, kmax: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best Fourier peak (amplitude, fractional frequency) per direction.

    Projections are binned on [-span/2, span/2) with linear (cloud-in-cell) weights; the peak is
    searched for in frequency bins max(kmin, plane_count_kmin)..kmax and located to a fraction
    of a bin by a parabola.  Directions with no allowed bin get amplitude 0.
    """
    n = len(rlp)
    kmin_dir = np.maximum(np.ceil(plane_count_kmin(rlp, dirs, span)), kmin)
    amp = np.empty(len(dirs))
    freq = np.empty(len(dirs))
    chunk = max(1, int(4_000_000 // max(nbins, 1)))
    for s in range(0, len(dirs), chunk):
        d = np.ascontiguousarray(dirs[s : s + chunk])
        m = len(d)
        hist = projection_histograms(rlp, d, span, nbins)
        spec = np.abs(scipy.fft.rfft(hist, axis=1, workers=-1)[:, : kmax + 2]) / n
        sub = spec[:, kmin : kmax + 1].copy()
        ks = np.arange(kmin, kmax + 1)
        sub[ks[None, :] < kmin_dir[s : s + m, None]] = 0.0
        k = np.argmax(sub, axis=1) + kmin
        rows = np.arange(m)
        y0, y1, y2 = spec[rows, k - 1], spec[rows, k], spec[rows, k + 1]
        den = y0 - 2 * y1 + y2
        delta = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
        amp[s : s + m] = np.where(sub[rows, k - kmin] > 0, y1, 0.0)
        freq[s : s + m] = k + np.clip(delta, -0.5, 0.5)
    return amp, freq


def _local_maxima(dirs: np.ndarray, score: np.ndarray, radius: float) -> np.ndarray:
    """Indices of directions whose score is maximal within ``radius`` (antipodes included)."""
    both = np.concatenate([dirs, -dirs])
    tree = cKDTree(both)
    pairs = tree.query_pairs(2 * np.sin(radius / 2), output_type="ndarray")
    n = len(dirs)
    a, b = pairs[:, 0] % n, pairs[:, 1] % n
    ok = a != b
    a, b = a[ok], b[ok]
    is_max = np.ones(n, bool)
    worse_a = score[a] < score[b]
    is_max[a[worse_a]] = False
    is_max[b[~worse_a & (score[a] > score[b])]] = False
    idx = np.flatnonzero(is_max)
    return idx[np.argsort(-score[idx])]


def _cone(t: np.ndarray, half_angle: float, steps: int) -> np.ndarray:
    """Directions on a square grid within ``half_angle`` (rad) of unit vector t."""
    helper = np.array([1.0, 0, 0]) if abs(t[0]) < 0.9 else np.array([0, 1.0, 0])
    e1 = np.cross(t, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(t, e1)
    g = np.linspace(-half_angle, half_angle, 2 * steps + 1)
    gx, gy = np.meshgrid(g, g)
    keep = gx**2 + gy**2 <= half_angle**2 * 1.0001
    d = t[None, :] + gx[keep][:, None] * e1[None, :] + gy[keep][:, None] * e2[None, :]
    return d / np.linalg.norm(d, axis=1)[:, None]


def fourier_score(rlp: np.ndarray, v: np.ndarray) -> float:
    """|mean exp(2 pi i r.v)|: 1 when every rlp has an integral projection on v (Angstrom)."""
    ph = 2 * np.pi * (rlp @ v)
    return float(np.hypot(np.cos(ph).mean(), np.sin(ph).mean()))


def refine_vector(rlp: np.ndarray, v: np.ndarray, hkldev: float, cycles: int = 4) -> np.ndarray:
    """Least-squares refinement of a real-space vector v so that r.v is integral (Angstrom)."""
    v = np.asarray(v, dtype=float)
    for _ in range(cycles):
        h = rlp @ v
        hr = np.round(h)
        sel = np.abs(h - hr) < hkldev
        if sel.sum() < 6 or not np.any(hr[sel]):
            break
        sol, *_ = np.linalg.lstsq(rlp[sel], hr[sel], rcond=None)
        v = sol
    return v


def _refine_direction(
    rlp: np.ndarray, t: np.ndarray, freq0: float, spacing: float, span: float, max_cell: float
) -> np.ndarray:
    """Two-level cone search around t with finer FFTs; returns the vector (Angstrom).

    The peak is looked for within +-25 % of the first-pass frequency ``freq0``.
    """
    nb = _nbins(span, max_cell, oversample=4)
    kmin = max(2, int(np.floor(freq0 * 0.75)))
    kmax = min(nb // 2 - 2, int(np.ceil(freq0 * 1.25)) + 1)
    best_t, best_f = t, freq0
    half = spacing
    for _ in range(2):
        dirs = _cone(best_t, half, 3)
        amp, freq = _fft_scores(rlp, dirs, span, nb, kmin, kmax)
        j = int(np.argmax(amp))
        best_t, best_f = dirs[j], freq[j]
        half /= 4
    return best_t * best_f / span


def _nbins(span: float, max_cell: float, oversample: float = 4) -> int:
    need = int(np.ceil(oversample * span * max_cell))
    return int(2 ** np.ceil(np.log2(max(need, 64))))


def find_basis(
    rlp: np.ndarray,
    max_cell: float,
    *,
    min_cell: float = 2.5,
    hkldev: float = 0.3,
    nvect: int = 30,
    spacing: float = 0.029,
    n_candidates: int = 40,
) -> BasisSearchResult:
    """DPS search for a real-space basis indexing the reciprocal-lattice vectors.

    Parameters
    ----------
    rlp : array (N, 3)
        Reciprocal-lattice vectors at the datum (1/Angstrom).
    max_cell : float
        Longest expected real-space vector (Angstrom); sets the histogram sampling.
    min_cell : float
        Shortest vector considered (Angstrom).
    hkldev : float
        Tolerance on fractional indices for a spot to count as indexed (MOSFLM HKLDEV, 0.3).
    nvect : int
        Number of distinct refined candidate vectors kept (MOSFLM NVECT, 30).
    spacing : float
        Angular spacing of the hemisphere of directions (radians).
    n_candidates : int
        Number of local maxima of the first pass that are refined.

    Returns
    -------
    BasisSearchResult

    Raises
    ------
    IndexingError
        Too few vectors or no three non-coplanar candidates index the spots.
    """
    rlp = np.ascontiguousarray(rlp, dtype=float)
    if rlp.ndim != 2 or rlp.shape[1] != 3:
        raise ValueError("rlp must be (N, 3)")
    if len(rlp) < 10:
        raise IndexingError(
            f"only {len(rlp)} reflections available for indexing (at least 10 needed): "
            "lower the THRESHOLD or add more images"
        )
    pmax = float(np.max(np.linalg.norm(rlp, axis=1)))
    span = 2.0 * pmax * 1.02
    nb = _nbins(span, max_cell, oversample=2.5)
    kmin = max(2, int(np.floor(min_cell * span)))
    kmax = min(nb // 2 - 2, int(np.ceil(max_cell * span * 1.05)))
    dirs = hemisphere_directions(spacing)
    amp, freq = _fft_scores(rlp, dirs, span, nb, kmin, kmax)
    peaks = _local_maxima(dirs, amp, 2.5 * spacing)[:n_candidates]

    cov = np.atleast_2d(np.cov(rlp.T))
    vecs, scores = [], []
    for j in peaks:
        if amp[j] <= 0:
            continue
        v = _refine_direction(rlp, dirs[j], freq[j], spacing, span, max_cell)
        v = refine_vector(rlp, v, hkldev)
        length = np.linalg.norm(v)
        if not (min_cell * 0.8 <= length <= max_cell * 1.5):
            continue
        if 3.3 * np.sqrt(max(v @ cov @ v, 0.0)) < MIN_PLANES:
            continue  # cuts the spots into too few planes: degenerate (thin slab)
        vecs.append(v)
        scores.append(fourier_score(rlp, v))
    if len(vecs) < 3:
        raise IndexingError("fewer than three candidate real-space vectors were found")
    vecs_arr, scores_arr = _distinct(np.array(vecs), np.array(scores), nvect)
    pool = strong_pool(vecs_arr, scores_arr)
    basis, frac = choose_basis(rlp, vecs_arr[pool], hkldev)
    return BasisSearchResult(basis=basis, fraction=frac, vectors=vecs_arr, scores=scores_arr)


def _distinct(vecs: np.ndarray, scores: np.ndarray, nvect: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove near-parallel duplicates (keep the shorter of comparable-score multiples)."""
    order = np.argsort(-scores)
    keep: list[int] = []
    for i in order:
        vi = vecs[i]
        li = np.linalg.norm(vi)
        dup = False
        for n, k in enumerate(keep):
            vk = vecs[k]
            lk = np.linalg.norm(vk)
            cos = abs(vi @ vk) / (li * lk)
            if cos > np.cos(np.radians(3.0)):
                # collinear: same vector or a multiple; prefer the shorter if it scores well
                if li < lk * 0.9 and scores[i] > 0.7 * scores[k]:
                    keep[n] = i
                dup = True
                break
        if not dup:
            keep.append(i)
        if len(keep) >= nvect:
            break
    keep_arr = np.array(keep)
    return vecs[keep_arr], scores[keep_arr]


STRONG_SCORE = 0.7
"""Vectors scoring at least this fraction of the best one form the pool for the basis."""


def strong_pool(vecs: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of the candidate vectors the basis is chosen from.

    With few spots, a wrong short vector can index nearly as many spots within HKLDEV as a
    lattice vector (random indices fall within +-0.3 of an integer 60 % of the time), and the
    smallest-volume rule of :func:`choose_basis` would then prefer a wrong small cell.  Lattice
    vectors have Fourier scores near 1 on good data, wrong ones ~0.5, so the pool is the
    vectors scoring at least ``STRONG_SCORE`` times the best, extended in score order until it
    holds three non-coplanar vectors.
    """
    order = np.argsort(-scores)
    strong = [int(i) for i in order if scores[i] >= STRONG_SCORE * scores[order[0]]]
    rest = [int(i) for i in order if int(i) not in strong]
    pool = list(strong)
    while rest and not _spans_3d(vecs[pool]):
        pool.append(rest.pop(0))
    return np.array(pool)


def _spans_3d(v: np.ndarray) -> bool:
    if len(v) < 3:
        return False
    u = v / np.linalg.norm(v, axis=1)[:, None]
    return bool(np.linalg.svd(u, compute_uv=False)[2] > 0.2)


def choose_basis(rlp: np.ndarray, vecs: np.ndarray, hkldev: float) -> tuple[np.ndarray, float]:
    """Three non-coplanar vectors indexing the most rlp, smallest volume among near-best.

    A triple qualifies if its fraction indexed is at least 90 % of the best fraction; among
    those the smallest cell volume wins (supercells index as many spots but are larger).
    """
    h = rlp @ vecs.T  # (N, n)
    ok = np.abs(h - np.round(h)) < hkldev
    n = len(vecs)
    trip = np.array(list(itertools.combinations(range(n), 3)))
    if len(trip) == 0:
        raise IndexingError("fewer than three candidate real-space vectors were found")
    v = vecs[trip]  # (T, 3, 3)
    vol = np.abs(np.linalg.det(v))
    lens = np.linalg.norm(v, axis=2).prod(axis=1)
    good = vol > 0.2 * lens  # not nearly coplanar
    if not np.any(good):
        raise IndexingError("no three non-coplanar real-space vectors were found")
    trip, vol = trip[good], vol[good]
    frac = np.empty(len(trip))
    for s in range(0, len(trip), 2000):
        t = trip[s : s + 2000]
        frac[s : s + 2000] = (ok[:, t[:, 0]] & ok[:, t[:, 1]] & ok[:, t[:, 2]]).mean(axis=0)
    fbest = frac.max()
    cand = np.flatnonzero(frac >= 0.9 * fbest)
    # smallest volume; among volumes equal within 2 %, the higher fraction
    vmin = vol[cand].min()
    near = cand[vol[cand] <= vmin * 1.02]
    j = near[np.argmax(frac[near])]
    basis = vecs[trip[j]].copy()
    if np.linalg.det(basis) < 0:
        basis = -basis
    return basis, float(frac[j])


def fit_basis(rlp: np.ndarray, basis: np.ndarray, hkldev: float, cycles: int = 3) -> np.ndarray:
    """Least-squares real-space basis (rows) from the rlp it indexes within ``hkldev``.

    Solves ``h_i = V r_i`` for the integer indices of the indexed rlp; ``UB = inv(V)``.
    """
    v = np.asarray(basis, dtype=float)
    for _ in range(cycles):
        h = rlp @ v.T
        hr = np.round(h)
        sel = np.all(np.abs(h - hr) < hkldev, axis=1)
        if sel.sum() < 6:
            break
        sol, *_ = np.linalg.lstsq(rlp[sel], hr[sel], rcond=None)
        v = sol.T
    return v
