"""From an image and its background to candidate spots: threshold, 8-connected labelling,
splitting of regions with several maxima, and per-spot sums (centroid, intensity, shape)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.kernels.spotfind import component_pixels, label_components, threshold_pixels
from mosflm_py.kernels.spotfind_spots import split_components, spot_stats


@dataclass(frozen=True)
class Candidates:
    """Unfiltered spots of one image (struct of arrays, length N; pixel coordinates).

    ``x_px``/``y_px`` are intensity-weighted centroids over the above-threshold pixels plus a
    one-pixel rim (continuous coordinates, slow/fast); ``mss, mff, msf`` second central moments
    (px²) of the positive background-subtracted signal; ``npeak`` the number of significant
    maxima of the parent region; ``region`` the parent region index.
    """

    x_px: np.ndarray
    y_px: np.ndarray
    intensity: np.ndarray
    variance: np.ndarray
    n_pixels: np.ndarray
    size_x: np.ndarray
    size_y: np.ndarray
    peak: np.ndarray
    background: np.ndarray
    n_overloaded: np.ndarray
    touches_inactive: np.ndarray
    rms_significance: np.ndarray
    peak_significance: np.ndarray
    mss: np.ndarray
    mff: np.ndarray
    msf: np.ndarray
    npeak: np.ndarray
    split: np.ndarray
    region: np.ndarray
    n_regions: int

    def __len__(self) -> int:
        return int(self.x_px.shape[0])


def threshold_image(data: np.ndarray, active: np.ndarray, bg: np.ndarray, gain: float,
                    read_noise: float, nsigma: float) -> np.ndarray:
    """Strong-pixel flags (uint8): ``data > bg + nsigma * sqrt(gain * max(bg, gain) + rn²)``."""
    strong = np.empty(data.shape, np.uint8)
    threshold_pixels(data, active, bg, bg, float(gain), float(read_noise) ** 2, float(nsigma),
                     strong)
    return strong


def label_strong(strong: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of the strong pixels: (labels int32 [slow, fast], n)."""
    labels = np.zeros(strong.shape, np.int32)
    n = label_components(np.ascontiguousarray(strong, dtype=np.uint8), labels)
    return labels, int(n)


def find_candidates(
    data: np.ndarray,
    active: np.ndarray,
    bg: np.ndarray,
    gain: float,
    read_noise: float,
    nsigma: float,
    overload: float,
    split: bool = True,
    split_sep: tuple[float, float] = (0.0, 0.0),
    split_dip: float = 3.0,
) -> Candidates:
    """Threshold, label, split and measure the spots of one image.

    Parameters
    ----------
    data : float32 ndarray ``[slow, fast]``; active : uint8 mask; bg : float32 background.
    gain, read_noise : counts per photon, read noise (counts).
    nsigma : threshold (σ above background).
    overload : saturation cutoff (counts).
    split, split_sep, split_dip : see :class:`~mosflm_py.spotfinding.types.SpotFindParams`.
    """
    strong = threshold_image(data, active, bg, gain, read_noise, nsigma)
    labels, n = label_strong(strong)
    offsets, ps, pf = component_pixels(labels, n)
    npx = ps.shape[0]
    sub = np.empty(npx, np.int64)
    npeak = np.empty(n, np.int64)
    nsub = np.empty(n, np.int64)
    rn2 = float(read_noise) ** 2
    split_components(data, labels, offsets, ps, pf, float(gain), rn2, float(split_dip),
                     float(split_sep[0]), float(split_sep[1]), bool(split), sub, npeak, nsub)
    base = np.concatenate([[0], np.cumsum(nsub)])
    region_of_px = np.repeat(np.arange(n), np.diff(offsets))
    gid = base[region_of_px] + sub
    nspots = int(base[-1])
    st = spot_stats(data, bg, active, labels, ps, pf, gid, nspots, float(gain), rn2,
                    float(overload))
    region = np.repeat(np.arange(n), nsub)
    sw = st[:, 1]
    swp = st[:, 4]
    with np.errstate(divide="ignore", invalid="ignore"):
        good = sw > 0.0
        xs = np.where(good, st[:, 2] / sw, st[:, 5] / swp)
        ys = np.where(good, st[:, 3] / sw, st[:, 6] / swp)
        ms = st[:, 5] / swp
        mf = st[:, 6] / swp
        mss = np.maximum(st[:, 7] / swp - ms * ms, 0.0)
        mff = np.maximum(st[:, 8] / swp - mf * mf, 0.0)
        msf = st[:, 9] / swp - ms * mf
    bad = ~np.isfinite(xs) | ~np.isfinite(ys)
    if bad.any():  # no positive signal at all: box centre
        xs[bad] = 0.5 * (st[bad, 12] + st[bad, 13]) + 0.5
        ys[bad] = 0.5 * (st[bad, 14] + st[bad, 15]) + 0.5
        mss[bad] = mff[bad] = msf[bad] = 0.0
    nstrong = st[:, 0].astype(np.int32)
    # background under the peak pixel, and the peak significance
    peak = st[:, 11]
    bg_spot = _background_at(bg, xs, ys)
    var_pk = gain * np.maximum(bg_spot, gain) + rn2
    return Candidates(
        x_px=xs, y_px=ys, intensity=sw, variance=st[:, 10], n_pixels=nstrong,
        size_x=(st[:, 13] - st[:, 12] + 1).astype(np.int32),
        size_y=(st[:, 15] - st[:, 14] + 1).astype(np.int32),
        peak=peak, background=bg_spot, n_overloaded=st[:, 16].astype(np.int32),
        touches_inactive=st[:, 17] > 0,
        rms_significance=np.sqrt(st[:, 18] / np.maximum(nstrong, 1)),
        peak_significance=(peak - bg_spot) / np.sqrt(var_pk),
        mss=np.nan_to_num(mss), mff=np.nan_to_num(mff), msf=np.nan_to_num(msf),
        npeak=npeak[region], split=(nsub > 1)[region], region=region, n_regions=n,
    )


def _background_at(bg: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    i = np.clip(xs.astype(np.int64), 0, bg.shape[0] - 1)
    j = np.clip(ys.astype(np.int64), 0, bg.shape[1] - 1)
    out = bg[i, j].astype(float)
    return np.where(np.isfinite(out), out, 0.0)
