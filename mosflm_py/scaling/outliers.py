"""Outlier rejection among symmetry-equivalent observations (Aimless's ``REJECT``).

Each scaled observation l of a reflection measured n ≥ 3 times is compared with the weighted
mean of the others: δ_l = (I_l − Ī_others) / sqrt(σ_l² + σ²(Ī_others)). In each pass the
observation with the largest |δ| of each reflection is rejected if |δ| exceeds ``cutoff``
(Aimless default 6σ), until none is (Evans 2006, Acta Cryst. D62, 72-82, section 2.4). A pair
(n = 2) cannot say which of its two members is wrong; like Aimless's default, pairs are kept.

Written here (vectorised numpy over groups): gemmi merges but does not reject outliers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["normalised_deviations", "reject_outliers"]


def normalised_deviations(
    intensity: np.ndarray, sigma: np.ndarray, group: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """δ of every kept observation against the weighted mean of the other kept ones.

    NaN where the reflection has no other kept observation.
    """
    ng = int(group.max()) + 1 if len(group) else 0
    w = np.where(keep, 1.0 / sigma**2, 0.0)
    sw = np.bincount(group, weights=w, minlength=ng)
    swi = np.bincount(group, weights=w * intensity, minlength=ng)
    sw_o = sw[group] - w
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_o = (swi[group] - w * intensity) / sw_o
        d = (intensity - mean_o) / np.sqrt(sigma**2 + 1.0 / sw_o)
    d[~keep | (sw_o <= 0)] = np.nan
    return d


def reject_outliers(
    intensity: np.ndarray,
    sigma: np.ndarray,
    group: np.ndarray,
    cutoff: float = 6.0,
    max_passes: int = 10,
    keep: np.ndarray | None = None,
) -> np.ndarray:
    """Mask of observations kept after rejecting outliers.

    Parameters
    ----------
    intensity, sigma
        Scaled intensities and uncertainties (I/g, σ/g).
    group
        Unique-reflection number of each observation.
    cutoff
        Rejection limit on |δ| (σ units).
    keep
        Observations already excluded are False.
    """
    keep = np.ones(len(intensity), bool) if keep is None else keep.copy()
    ng = int(group.max()) + 1 if len(group) else 0
    for _ in range(max_passes):
        n = np.bincount(group, weights=keep.astype(float), minlength=ng)
        d = np.abs(normalised_deviations(intensity, sigma, group, keep))
        cand = keep & (n[group] >= 3) & (d > cutoff)
        if not cand.any():
            break
        # the worst of each reflection only
        worst = np.full(ng, -np.inf)
        np.maximum.at(worst, group[cand], d[cand])
        reject = cand & (d == worst[group])
        keep &= ~reject
    return keep
