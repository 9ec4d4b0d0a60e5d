"""Per-image MTZ records (:class:`~mosflm_py.output.mtz.MtzRecords`) and statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.integration import ImageIntegration, Reject
from mosflm_py.output.mtz import MtzRecords
from mosflm_py.output.mtz_columns import Flag, encode_mpart
from mosflm_py.processing.params import ProcessParams
from mosflm_py.processing.plan import ImagePlan


@dataclass
class ImageStats:
    """Counts and ⟨I/σ(I)⟩ of one image (log and SUMMARY)."""

    image: int
    n_predicted: int
    n_full: int
    n_partial: int
    n_overlap: int
    n_overload: int
    n_edge: int
    n_bad: int
    n_negative: int
    n_too_wide: int
    n_written: int
    isig_sum: float
    isig_sum_outer: float
    isig_prf: float
    isig_prf_outer: float
    d_outer: float


def _mean_isig(i: np.ndarray, s: np.ndarray, mask: np.ndarray) -> float:
    ok = mask & np.isfinite(i) & np.isfinite(s) & (s > 0)
    return float(np.mean(i[ok] / s[ok])) if ok.any() else float("nan")


def _fitted_or_summed(value: np.ndarray, summed: np.ndarray,
                      fitted: np.ndarray | None = None) -> np.ndarray:
    """Profile-fitted value, or the summation value where no profile fit was possible.

    The MTZ never holds a NaN IPR (neither real MOSFLM file does): a reflection that could not
    be profile fitted (no usable standard profile) carries its summation intensity and sigma in
    IPR/SIGIPR, so scaling programs that use IPR keep it.  ``fitted`` decides (for the sigma)
    which reflections were not fitted; by default ``value`` itself.
    """
    bad = ~np.isfinite(value if fitted is None else fitted) | ~np.isfinite(value)
    return np.where(bad, summed, value)


def image_records(
    image: ImagePlan,
    res: ImageIntegration,
    extra: dict,
    lp_multiplier: np.ndarray,
    params: ProcessParams,
) -> tuple[MtzRecords, ImageStats]:
    """MTZ records (accepted reflections, LP corrected: I = I_raw × LP; xdet, ydet in pixels
    (slow, fast); rot, width in degrees) and statistics of one integrated image."""
    acc = res.accepted
    lpm = np.asarray(lp_multiplier, float)
    partial = (res.fraction < 0.999) | (extra["npart"] > 1)
    npart = np.where(partial, np.maximum(extra["npart"], 2), 1)
    rec = MtzRecords(
        hkl=res.hkl[acc].astype(np.int32),
        batch=np.full(int(acc.sum()), image.batch, np.int32),
        I=(res.I * lpm)[acc],
        sigI=(res.sigI * lpm)[acc],
        Ipr=(_fitted_or_summed(res.Ipr, res.I) * lpm)[acc],
        sigIpr=(_fitted_or_summed(res.sigIpr, res.sigI, res.Ipr) * lpm)[acc],
        fraction=res.fraction[acc],
        xdet=res.x_px[acc],
        ydet=res.y_px[acc],
        rot=extra["phi"][acc],
        width=extra["width"][acc],
        lp=lpm[acc],
        mpart=encode_mpart(npart[acc], extra["ipart"][acc]),
        flag=res.flags[acc].astype(np.int32),
        bgratio=res.bgratio[acc],
        pkratio=res.pkratio[acc],
        gradient=res.gradient[acc],
        partial=partial[acc],
    )
    d = extra["d"]
    dstar2 = 1.0 / d**2
    outer = dstar2 >= 0.8 / params.d_min**2
    fl = res.flags
    stats = ImageStats(
        image=image.number,
        n_predicted=len(res),
        n_full=int((acc & ~partial).sum()),
        n_partial=int((acc & partial).sum()),
        n_overlap=int(((res.reject & Reject.OVERLAP) != 0).sum()),
        n_overload=int(((fl & Flag.OVERLOAD) != 0).sum()),
        n_edge=int(((fl & Flag.EDGE) != 0).sum()),
        n_bad=int((((fl & (Flag.BGRATIO | Flag.PKRATIO | Flag.GRADIENT)) != 0) & acc).sum()),
        n_negative=int((((fl & Flag.NEGATIVE) != 0) & acc).sum()),
        n_too_wide=int(extra.get("n_too_wide", 0)),
        n_written=int(acc.sum()),
        isig_sum=_mean_isig(res.I, res.sigI, acc),
        isig_sum_outer=_mean_isig(res.I, res.sigI, acc & outer),
        isig_prf=_mean_isig(res.Ipr, res.sigIpr, acc),
        isig_prf_outer=_mean_isig(res.Ipr, res.sigIpr, acc & outer),
        d_outer=float(np.sqrt(1.0 / (0.8 / params.d_min**2))),
    )
    return rec, stats
