"""Merging statistics by resolution shell and overall, and a suggested resolution cut-off.

From gemmi (``Intensities.calculate_merging_stats``, ``Binner``, ``make_miller_array``):
Rmerge, Rmeas, Rpim (reflections measured twice or more, deviations from the inverse-variance
weighted mean over Σ I, as Aimless and cctbx; Diederichs & Karplus 1997, Weiss 2001) and CC1/2
by the σ-τ method from unit-weight means (as cctbx and DIALS; Assmann et al. 2016,
J. Appl. Cryst. 49, 1021-1028) with CC* = sqrt(2 CC1/2 / (1 + CC1/2)) (Karplus & Diederichs
2012, Science 336, 1030-1033); the equal-volume resolution shells and the list of possible
reflections.

Written here (numpy), because gemmi's merging statistics do not include them: ⟨I/σ(I)⟩ of the
merged intensities (Aimless's Mn(I/sd)), completeness, multiplicity, the anomalous completeness
(acentric reflections with both I+ and I− measured), anomalous multiplicity (mean number of
observations of I+ and of I−) and CC_anom (correlation of the anomalous differences of two
random halves of the observations, Aimless's CCanom), and the cut-off: the d where a fitted
CC1/2 curve (½ (1 − tanh((s − s0)/r)), s = 1/d², as Aimless fits) falls to ``cc_half_limit``
and where ⟨I/σ⟩ falls to ``isig_limit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import gemmi
import numpy as np

from mosflm_py.output.mtz_columns import hkl_to_asu
from mosflm_py.scaling.observations import d_spacing, hkl_keys

__all__ = [
    "MergedData",
    "MergingStatistics",
    "ShellStats",
    "merge",
    "merging_statistics",
    "resolution_cutoff",
]


@dataclass
class ShellStats:
    """Statistics of one resolution shell (or overall)."""

    d_max: float
    d_min: float
    n_obs: int = 0
    n_unique: int = 0
    n_possible: int = 0
    r_merge: float = float("nan")
    r_meas: float = float("nan")
    r_pim: float = float("nan")
    cc_half: float = float("nan")
    cc_star: float = float("nan")
    i_over_sigma: float = float("nan")
    mean_i: float = float("nan")
    anom_completeness: float = float("nan")
    anom_multiplicity: float = float("nan")
    cc_anom: float = float("nan")
    n_cc_anom: int = 0

    @property
    def completeness(self) -> float:
        return 100.0 * self.n_unique / self.n_possible if self.n_possible else float("nan")

    @property
    def multiplicity(self) -> float:
        return self.n_obs / self.n_unique if self.n_unique else float("nan")

    def table_cells(self) -> list[str | int]:
        """The shell's row of the merging-statistics table (log and HTML report): Dmax, Dmin,
        Nobs, Nuniq, Compl%, Mult, Rmerge, Rmeas, Rpim, CC1/2, CC*, <I/sig>, AnoCmp%, AnoMult,
        CCanom; "-" where a figure is undefined."""

        def f(x: float, fmt: str = ".3f") -> str:
            return "-" if not math.isfinite(x) else format(x, fmt)

        return [
            f(self.d_max, ".2f"),
            f(self.d_min, ".2f"),
            self.n_obs,
            self.n_unique,
            f(self.completeness, ".1f"),
            f(self.multiplicity, ".1f"),
            f(self.r_merge),
            f(self.r_meas),
            f(self.r_pim),
            f(self.cc_half),
            f(self.cc_star),
            f(self.i_over_sigma, ".1f"),
            f(self.anom_completeness, ".1f"),
            f(self.anom_multiplicity, ".1f"),
            f(self.cc_anom),
        ]


@dataclass
class MergingStatistics:
    """Shells from low to high resolution, the overall figures and the suggested cut-off."""

    shells: list[ShellStats]
    overall: ShellStats
    cutoff_cc_half: float | None = None
    cutoff_isig: float | None = None
    cc_half_limit: float = 0.3
    isig_limit: float = 2.0
    notes: list[str] = field(default_factory=list)


@dataclass
class MergedData:
    """Merged intensities in the asymmetric unit: mean and I+/I− (NaN where unmeasured)."""

    hkl: np.ndarray
    imean: np.ndarray
    sigimean: np.ndarray
    nobs: np.ndarray
    iplus: np.ndarray
    sigiplus: np.ndarray
    nplus: np.ndarray
    iminus: np.ndarray
    sigiminus: np.ndarray
    nminus: np.ndarray
    centric: np.ndarray


def _weighted(group: np.ndarray, n: int, I: np.ndarray, sig: np.ndarray):
    w = 1.0 / sig**2
    sw = np.bincount(group, weights=w, minlength=n)
    swi = np.bincount(group, weights=w * I, minlength=n)
    cnt = np.bincount(group, minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(cnt > 0, swi / sw, np.nan)
        sd = np.where(cnt > 0, 1.0 / np.sqrt(sw), np.nan)
    return mean, sd, cnt


def merge(
    hkl: np.ndarray, I: np.ndarray, sig: np.ndarray, space_group: gemmi.SpaceGroup
) -> MergedData:
    """Inverse-variance weighted means per unique reflection, and per I+ / I−.

    Written with numpy (the same weighting as gemmi's ``merge_in_place``), because the merged
    MTZ needs IMEAN and I(+)/I(−) together on one row per reflection.
    """
    asu, isym = hkl_to_asu(hkl, space_group)
    keys = hkl_keys(asu)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    n = len(uk)
    hkl_u = asu[first].astype(np.int32)
    centric = np.asarray(space_group.operations().centric_flag_array(hkl_u), bool)
    plus = (isym % 2 == 1) | centric[inv]
    mean, sd, cnt = _weighted(inv, n, I, sig)
    ip, sp_, np_ = (
        _weighted(inv[plus], n, I[plus], sig[plus])
        if plus.any()
        else (np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int))
    )
    mi = ~plus
    im, sm, nm = (
        _weighted(inv[mi], n, I[mi], sig[mi])
        if mi.any()
        else (np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, int))
    )
    return MergedData(hkl_u, mean, sd, cnt, ip, sp_, np_, im, sm, nm, centric)


def _binner(cell: gemmi.UnitCell, hkl: np.ndarray, nbins: int) -> gemmi.Binner:
    b = gemmi.Binner()
    b.setup(nbins, gemmi.Binner.Method.Dstar3, np.ascontiguousarray(hkl, np.int32), cell)
    return b


def _shell_count(n_unique: int) -> int:
    """Number of shells: about 100 unique reflections per shell, 1 to 10 (Aimless uses ~10)."""
    return int(min(10, max(1, n_unique // 100)))


def merging_statistics(
    hkl: np.ndarray,
    I: np.ndarray,
    sig: np.ndarray,
    cell: gemmi.UnitCell,
    space_group: gemmi.SpaceGroup,
    nbins: int | None = None,
    cc_half_limit: float = 0.3,
    isig_limit: float = 2.0,
    seed: int = 0,
) -> MergingStatistics:
    """Merging statistics of scaled observations in *space_group*.

    Parameters
    ----------
    hkl
        Original Miller indices (N, 3) of the observations (one row per full or summed partial).
    I, sig
        Scaled intensities and uncertainties.
    cell, space_group
        The cell and the (Laue-group) space group to merge in.
    nbins
        Number of resolution shells (default: ~100 unique reflections each, at most 10).
    cc_half_limit, isig_limit
        Criteria of the suggested resolution cut-off.
    seed
        Seed of the random half-dataset split used for CC_anom.
    """
    I = np.asarray(I, float)
    sig = np.asarray(sig, float)
    asu, isym = hkl_to_asu(hkl, space_group)
    keys = hkl_keys(asu)
    uk, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    hkl_u = asu[first].astype(np.int32)
    d_u = d_spacing(cell, hkl_u)
    nbins = nbins or _shell_count(len(uk))
    binner = _binner(cell, hkl_u, nbins)
    nb = binner.size
    bin_u = np.asarray(binner.get_bins(hkl_u))
    # gemmi: R factors and CC1/2 (σ-τ)
    it = gemmi.Intensities()
    it.set_data(cell, space_group, np.ascontiguousarray(asu, np.int32), I, sig)
    it.type = gemmi.DataType.Unmerged
    it.sort()
    # R factors about the inverse-variance weighted mean with Σ I in the denominator ('X', as
    # Aimless and cctbx); CC1/2 by σ-τ from unit-weight means and internal variances ('U', as
    # cctbx and DIALS compute it)
    gstats = it.calculate_merging_stats(binner, use_weights="X")
    gstats_u = it.calculate_merging_stats(binner, use_weights="U")
    # possible reflections (completeness)
    d_min, d_max = float(d_u.min()), float(d_u.max())
    possible = np.asarray(
        gemmi.make_miller_array(cell, space_group, d_min * (1 - 1e-9), d_max * (1 + 1e-9))
    )
    gops = space_group.operations()
    absent = np.asarray(gops.systematic_absences(possible), bool) if len(possible) else []
    possible = possible[~absent] if len(possible) else possible
    pbin = np.asarray(binner.get_bins(np.ascontiguousarray(possible, np.int32)))
    p_centric = np.asarray(gops.centric_flag_array(np.ascontiguousarray(possible, np.int32)), bool)
    merged = merge(hkl, I, sig, space_group)
    centric = merged.centric
    acen = ~centric
    both = acen & (merged.nplus > 0) & (merged.nminus > 0)
    # CC_anom from two random halves of the observations of each I+ and I−
    rng = np.random.default_rng(seed)
    plus = (isym % 2 == 1) | centric[inv]
    half = rng.random(len(I)) < 0.5
    ng = len(uk)
    dano = []
    for h in (half, ~half):
        ip, _, cp = _weighted(inv[plus & h], ng, I[plus & h], sig[plus & h])
        im, _, cm = _weighted(inv[~plus & h], ng, I[~plus & h], sig[~plus & h])
        dano.append(np.where((cp > 0) & (cm > 0), ip - im, np.nan))
    ok_anom = acen & np.isfinite(dano[0]) & np.isfinite(dano[1])
    isig_u = merged.imean / merged.sigimean
    nobs_u = np.bincount(inv, minlength=ng)

    def shell(
        sel_u: np.ndarray,
        sel_p: np.ndarray,
        gs: gemmi.MergingStats | None,
        gu: gemmi.MergingStats | None,
        dmax: float,
        dmin: float,
    ) -> ShellStats:
        st = ShellStats(d_max=dmax, d_min=dmin)
        st.n_unique = int(sel_u.sum())
        st.n_obs = int(nobs_u[sel_u].sum())
        st.n_possible = int(sel_p.sum())
        if gs is not None and gs.stats_refl > 0:
            st.r_merge, st.r_meas, st.r_pim = gs.r_merge(), gs.r_meas(), gs.r_pim()
            if gu is not None and gu.stats_refl > 2:
                st.cc_half = gu.cc_half()
                st.cc_star = (
                    math.sqrt(2 * st.cc_half / (1 + st.cc_half)) if st.cc_half > 0 else float("nan")
                )
        if st.n_unique:
            st.i_over_sigma = float(np.mean(isig_u[sel_u]))
            st.mean_i = float(np.mean(merged.imean[sel_u]))
        n_acen_p = int((sel_p & ~p_centric).sum())
        if n_acen_p:
            st.anom_completeness = 100.0 * int((sel_u & both).sum()) / n_acen_p
        a = sel_u & acen & ((merged.nplus > 0) | (merged.nminus > 0))
        if a.any():
            st.anom_multiplicity = float(
                np.mean(
                    np.r_[
                        merged.nplus[a & (merged.nplus > 0)], merged.nminus[a & (merged.nminus > 0)]
                    ]
                )
            )
        c = sel_u & ok_anom
        st.n_cc_anom = int(c.sum())
        if c.sum() > 2 and np.std(dano[0][c]) > 0 and np.std(dano[1][c]) > 0:
            st.cc_anom = float(np.corrcoef(dano[0][c], dano[1][c])[0, 1])
        return st

    shells = []
    for k in range(nb):
        shells.append(
            shell(
                bin_u == k,
                pbin == k,
                gstats[k],
                gstats_u[k],
                binner.dmax_of_bin(k),
                binner.dmin_of_bin(k),
            )
        )
    total = it.calculate_merging_stats(None, use_weights="X")[0]
    total_u = it.calculate_merging_stats(None, use_weights="U")[0]
    overall = shell(np.ones(ng, bool), np.ones(len(possible), bool), total, total_u, d_max, d_min)
    stats = MergingStatistics(shells, overall, cc_half_limit=cc_half_limit, isig_limit=isig_limit)
    stats.cutoff_cc_half, stats.cutoff_isig = resolution_cutoff(shells, cc_half_limit, isig_limit)
    return stats


def _crossing(s: np.ndarray, y: np.ndarray, limit: float) -> float | None:
    """s (1/d²) where y, sampled at increasing s, first falls below *limit* (linear)."""
    below = np.flatnonzero(y < limit)
    if not len(below):
        return None
    k = int(below[0])
    if k == 0:
        return float(s[0])
    y0, y1 = y[k - 1], y[k]
    t = (y0 - limit) / (y0 - y1) if y0 != y1 else 0.0
    return float(s[k - 1] + t * (s[k] - s[k - 1]))


def resolution_cutoff(
    shells: list[ShellStats], cc_half_limit: float = 0.3, isig_limit: float = 2.0
) -> tuple[float | None, float | None]:
    """Suggested d_min (Å) from CC1/2 and from ⟨I/σ⟩; None when the data do not fall below.

    CC1/2 is fitted with ½ (1 − tanh((s − s0)/r)) over the shells (s = 1/d² at the shell's
    middle; scipy ``curve_fit``), as Aimless does; if the fit fails the shells are
    interpolated. ⟨I/σ⟩ is interpolated between shells.
    """
    from scipy.optimize import curve_fit

    if not shells:
        return None, None
    s = np.array([0.5 * (1 / sh.d_max**2 + 1 / sh.d_min**2) for sh in shells])
    cc = np.array([sh.cc_half for sh in shells])
    isig = np.array([sh.i_over_sigma for sh in shells])
    d_cc = None
    ok = np.isfinite(cc)
    if ok.sum() >= 3 and np.nanmin(cc) < cc_half_limit:

        def f(x, s0, r):
            return 0.5 * (1 - np.tanh((x - s0) / r))

        try:
            (s0, r), _ = curve_fit(
                f,
                s[ok],
                cc[ok],
                p0=(float(np.median(s)), float(np.ptp(s)) / 4 or 0.01),
                maxfev=2000,
            )
            # f(x) = limit  <=>  x = s0 + r atanh(1 - 2 limit)
            x = s0 + r * math.atanh(1 - 2 * cc_half_limit)
            if r > 0 and s.min() * 0.5 < x < s.max() * 1.5:
                d_cc = 1 / math.sqrt(min(max(x, s.min()), s.max()))
        except (RuntimeError, ValueError):
            d_cc = None
        if d_cc is None:
            x = _crossing(s[ok], cc[ok], cc_half_limit)
            d_cc = 1 / math.sqrt(x) if x else None
    ok = np.isfinite(isig)
    x = _crossing(s[ok], isig[ok], isig_limit) if ok.any() else None
    d_is = 1 / math.sqrt(x) if x else None
    return d_cc, d_is
