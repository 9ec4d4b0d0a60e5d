"""Observed against calculated fractions of partially recorded reflections (issue 8 item 3).

The rocking-curve model (mosaic spread η, mosaic-block width, beam divergence and dispersion:
:func:`mosflm_py.geometry.prediction.rocking_width`) decides FRACTIONCALC, the share of each
reflection recorded on each image.  The images themselves say what the share was: for a
reflection measured on every image it touched, the observed share of part k is
g_k = I_k / Σ_j I_j.  The rms of g_k − FRACTIONCALC_k over the parts of well-measured reflections
is therefore a direct, model-free test of the mosaic spread the program used: too small a spread
puts too much on the centre image (g < f on the flanks), too large a spread the opposite.

The counting noise of g_k is known (σ(g_k) ≈ σ(I_k)/ΣI), so besides the plain rms the excess
over the noise, sqrt(max(mean((g − f)² − σ(g)²), 0)), is given: that is the part of the misfit
the rocking-curve model has to answer for.

This module works on plain arrays (one row per MTZ record) so that it applies to any unmerged
multi-record file (MOSFLM's, mosflm-py's): :func:`fraction_misfit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import MosflmError


@dataclass(frozen=True)
class FractionMisfit:
    """Result of :func:`fraction_misfit`.

    Attributes
    ----------
    rms : float
        rms(g − FRACTIONCALC) over the parts used (fraction units; NaN when none).
    rms_excess : float
        sqrt(max(mean((g − f)² − σ(g)²), 0)): the misfit beyond counting noise.
    mean_signed_centre : float
        Mean of g − f over each reflection's largest-fraction part: > 0 when the observed
        rocking curves are narrower than the model (too large a mosaic spread), < 0 when wider.
    n_parts, n_reflections : int
        Parts and reflections (complete partial sets with ΣI ≥ min_i_sigma·σ) used.
    by_parts : dict[int, tuple[float, int]]
        Number of parts in the set → (rms, number of parts), for sets of 2, 3, … parts.
    """

    rms: float
    rms_excess: float
    mean_signed_centre: float
    n_parts: int
    n_reflections: int
    by_parts: dict[int, tuple[float, int]]


def fraction_misfit(
    hkl: np.ndarray,
    batch: np.ndarray,
    intensity: np.ndarray,
    sigma: np.ndarray,
    fraction: np.ndarray,
    partial: np.ndarray,
    n_parts: np.ndarray | None = None,
    min_i_sigma: float = 10.0,
    fraction_range: tuple[float, float] = (0.9, 1.1),
) -> FractionMisfit:
    """rms of each part's observed share of its reflection against its FRACTIONCALC.

    Parameters
    ----------
    hkl : (N, 3) int
        Original (not reduced) Miller indices of every record.
    batch : (N,) int
        Image (batch) number of every record.
    intensity, sigma : (N,) float
        Summation intensity of the part and its σ (any common scale per reflection).
    fraction : (N,) float
        FRACTIONCALC of the part.
    partial : (N,) bool
        Record is a part of a partially recorded reflection (M = 1).
    n_parts : (N,) int, optional
        Number of parts of the reflection (from MPART; ≤ 0 unknown).  A set is complete when it
        has that many parts; without it (or unknown), when its FRACTIONCALC sum lies in
        ``fraction_range``.
    min_i_sigma : float
        Sets whose total intensity is below this many σ are not used (their shares are noise).
    fraction_range : (float, float)
        Accepted total FRACTIONCALC of a set whose number of parts is unknown.

    Returns
    -------
    FractionMisfit

    Raises
    ------
    MosflmError
        Arrays of different lengths.
    """
    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    n = len(hkl)
    cols = [np.asarray(v) for v in (batch, intensity, sigma, fraction, partial)]
    if n_parts is not None:
        cols.append(np.asarray(n_parts))
    if any(len(c) != n for c in cols):
        raise MosflmError(
            "fraction_misfit: hkl, batch, intensity, sigma, fraction, partial "
            "(and n_parts) must have one value per record"
        )
    batch = np.asarray(batch, dtype=np.int64)
    inten = np.asarray(intensity, dtype=float)
    sig = np.asarray(sigma, dtype=float)
    frac = np.asarray(fraction, dtype=float)
    part = np.asarray(partial, dtype=bool)
    npart = np.full(n, -1, np.int64) if n_parts is None else np.asarray(n_parts, np.int64)
    good = part & np.isfinite(inten) & np.isfinite(sig) & (sig > 0) & np.isfinite(frac)
    idx = np.flatnonzero(good)
    empty = FractionMisfit(float("nan"), float("nan"), float("nan"), 0, 0, {})
    if len(idx) == 0:
        return empty
    h, b = hkl[idx], batch[idx]
    o = idx[np.lexsort((b, h[:, 2], h[:, 1], h[:, 0]))]
    hs, bs = hkl[o], batch[o]
    new = np.ones(len(o), bool)
    new[1:] = np.any(hs[1:] != hs[:-1], axis=1) | (bs[1:] - bs[:-1] != 1)
    gid = np.cumsum(new) - 1
    ng = int(gid[-1]) + 1
    count = np.bincount(gid, minlength=ng)
    tot = np.bincount(gid, inten[o], ng)
    totv = np.bincount(gid, sig[o] ** 2, ng)
    fsum = np.bincount(gid, frac[o], ng)
    np_first = npart[o][new]
    known = np_first > 0
    complete = np.where(
        known, count == np_first, (fsum >= fraction_range[0]) & (fsum <= fraction_range[1])
    )
    use = complete & (count >= 2) & (tot > 0) & (tot >= min_i_sigma * np.sqrt(totv))
    rows = use[gid]
    if not rows.any():
        return empty
    g = inten[o][rows] / tot[gid][rows]
    sg = sig[o][rows] / tot[gid][rows]
    f = frac[o][rows]
    d = g - f
    rms = float(np.sqrt(np.mean(d**2)))
    excess = float(np.sqrt(max(np.mean(d**2 - sg**2), 0.0)))
    # the largest-fraction part of each reflection
    gr = gid[rows]
    best = np.full(ng, -1.0)
    np.maximum.at(best, gr, f)
    centre = f >= best[gr] - 1e-12
    first_centre = np.zeros(len(f), bool)
    _, pos = np.unique(gr[centre], return_index=True)
    first_centre[np.flatnonzero(centre)[pos]] = True
    signed = float(np.mean(d[first_centre]))
    by: dict[int, tuple[float, int]] = {}
    cnt = count[gr]
    for k in np.unique(cnt):
        m = cnt == k
        by[int(k)] = (float(np.sqrt(np.mean(d[m] ** 2))), int(m.sum()))
    return FractionMisfit(rms, excess, signed, int(rows.sum()), int(use.sum()), by)


__all__ = ["FractionMisfit", "fraction_misfit"]
