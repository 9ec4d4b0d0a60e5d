"""Compare an unmerged MTZ with simulated ground truth (used by the demo, tests, benchmarks).

Parts of partially recorded reflections are added (as Aimless does) and matched to the
simulator's observations (same hkl, nearest rotation angle); only reflections whose whole rocking
curve lies inside the processed images, whose parts add up to a fraction of 1 ± 0.05 and none of
whose parts is flagged (FLAG ≠ 0, rejected by Aimless by default) are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mosflm_py.output.mtz import read_unmerged_mtz


@dataclass(frozen=True)
class TruthComparison:
    """Agreement of integrated intensities with the truth.

    n_compared : reflections compared; cc_strong_prf / cc_strong_sum : correlation with the true
    intensities for I/σ > 10 (profile fitted / summation); cc_all_prf, cc_all_sum : all compared;
    ratio_prf, ratio_sum : median observed/true for I/σ > 10; rmsz_prf, rmsz_sum : rms of
    (I − I_true)/σ; fraction_sum_rms : rms deviation of the summed FRACTIONCALC from 1 over
    reflections whose rocking curve lies inside the sweep; fraction_within_005 : share of those
    whose parts add up to 1 within 0.05.
    """

    n_compared: int
    n_strong: int
    cc_strong_prf: float
    cc_strong_sum: float
    cc_all_prf: float
    cc_all_sum: float
    ratio_prf: float
    ratio_sum: float
    rmsz_prf: float
    rmsz_sum: float
    fraction_sum_rms: float
    fraction_within_005: float


def _keys(hkl: np.ndarray) -> np.ndarray:
    h = np.asarray(hkl, np.int64) + 1024
    return (h[:, 0] * 4096 + h[:, 1]) * 4096 + h[:, 2]


def compare(mtz_path: str | Path, truth_path: str | Path) -> TruthComparison:
    """Add partial parts, match to the truth, and compute the agreement statistics."""
    m = read_unmerged_mtz(mtz_path)
    t = np.load(truth_path)
    c = m.columns
    key = _keys(m.hkl_original)
    rot = c["ROT"]
    order = np.lexsort((rot, key))
    key, rot = key[order], rot[order]
    new = np.ones(len(key), bool)
    new[1:] = (key[1:] != key[:-1]) | (np.abs(rot[1:] - rot[:-1]) > 5.0)
    gid = np.cumsum(new) - 1
    ng = int(gid[-1]) + 1 if len(gid) else 0

    def gsum(v):
        return np.bincount(gid, np.nan_to_num(v[order]), ng)

    frac = gsum(c["FRACTIONCALC"])
    i_prf, v_prf = gsum(c["IPR"]), gsum(c["SIGIPR"] ** 2)
    i_sum, v_sum = gsum(c["I"]), gsum(c["SIGI"] ** 2)
    bad_prf = np.bincount(gid, ~np.isfinite(c["IPR"][order]), ng) > 0
    # flagged parts (FLAG != 0: edge, overload, bad spot) are rejected by Aimless by default
    flagged = np.bincount(gid, (c["FLAG"][order] != 0).astype(float), ng) > 0
    gkey = key[new]
    grot = np.bincount(gid, rot, ng) / np.bincount(gid, minlength=ng)

    tk = _keys(t["obs_hkl"])
    ok_t = t["obs_fully_recorded"] & t["obs_on_detector"] & ~t["obs_small_zeta"]
    tk, tphi, tI = tk[ok_t], t["obs_phi"][ok_t], t["obs_intensity"][ok_t]
    torder = np.argsort(tk, kind="stable")
    tk, tphi, tI = tk[torder], tphi[torder], tI[torder]
    lo = np.searchsorted(tk, gkey, "left")
    hi = np.searchsorted(tk, gkey, "right")
    match = np.full(ng, -1)
    for g in np.nonzero(hi > lo)[0]:
        cand = np.arange(lo[g], hi[g])
        j = cand[np.argmin(np.abs(tphi[cand] - grot[g]))]
        if abs(tphi[j] - grot[g]) < 2.0:
            match[g] = j
    complete = (match >= 0) & (np.abs(frac - 1.0) < 0.05) & ~flagged
    inner = match >= 0
    dev = np.abs(frac[inner] - 1.0)
    frac_rms = float(np.sqrt(np.mean(dev**2))) if inner.any() else np.nan
    frac_ok = float(np.mean(dev < 0.05)) if inner.any() else np.nan
    truth = tI[match[complete]]

    def stats(i, v, valid):
        i, s, tr = i[complete][valid], np.sqrt(v[complete][valid]), truth[valid]
        strong = (s > 0) & (i / np.where(s > 0, s, 1) > 10)
        cc_s = float(np.corrcoef(tr[strong], i[strong])[0, 1]) if strong.sum() > 2 else np.nan
        cc_a = float(np.corrcoef(tr, i)[0, 1]) if len(i) > 2 else np.nan
        ratio = float(np.median(i[strong] / tr[strong])) if strong.any() else np.nan
        z = (i - tr) / np.where(s > 0, s, np.inf)
        return cc_s, cc_a, ratio, float(np.sqrt(np.mean(z[s > 0] ** 2))), int(strong.sum())

    valid_prf = ~bad_prf[complete]
    cps, cpa, rp, zp, _ = stats(i_prf, v_prf, valid_prf)
    css, csa, rs, zs, ns = stats(i_sum, v_sum, np.ones(int(complete.sum()), bool))
    return TruthComparison(int(complete.sum()), ns, cps, css, cpa, csa, rp, rs, zp, zs, frac_rms,
                           frac_ok)


def compare_mtz_with_truth(mtz_path: str | Path, truth_path: str | Path) -> list[str]:
    """Human-readable lines of :func:`compare`."""
    r = compare(mtz_path, truth_path)
    return [
        f"Comparison with the simulated truth ({r.n_compared} complete reflections, "
        f"{r.n_strong} with I/sig > 10):",
        f"   profile fitted: CC(I/sig>10) {r.cc_strong_prf:.4f}  CC(all) {r.cc_all_prf:.4f}  "
        f"<I/Itrue> {r.ratio_prf:.3f}  rms((I-Itrue)/sig) {r.rmsz_prf:.2f}",
        f"   summation:      CC(I/sig>10) {r.cc_strong_sum:.4f}  CC(all) {r.cc_all_sum:.4f}  "
        f"<I/Itrue> {r.ratio_sum:.3f}  rms((I-Itrue)/sig) {r.rmsz_sum:.2f}",
        f"   sum of FRACTIONCALC over the parts of a reflection: rms deviation from 1 "
        f"{r.fraction_sum_rms:.3f}, {100 * r.fraction_within_005:.1f}% within 0.05",
    ]
