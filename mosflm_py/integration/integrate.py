"""Integrate one image: summation and 2D profile fitting of all predicted reflections.

Leslie (1999), Acta Cryst. D55, 1696-1702.  Intensities are in photons (ADU minus ADCOFFSET,
divided by GAIN), not LP-corrected (see :func:`mosflm_py.integration.lp.lp_factors`); partials
are returned per image, adding them is the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mosflm_py.errors import IntegrationError
from mosflm_py.integration.box import BACKGROUND, PEAK
from mosflm_py.integration.flags import Flag, Reject, pack_bgpkratios
from mosflm_py.integration.params import IntegrationParams
from mosflm_py.integration.predictions import Targets
from mosflm_py.integration.profiles import StandardProfiles, blend_weights
from mosflm_py.integration.shoebox import extract_shoeboxes, measure_boxes
from mosflm_py.kernels import integrate_profile as _kp

MAX_MISSING_EDGE = 0.5
"""Largest fraction of a standard profile that may fall on inactive or off-image pixels for
an EDGE reflection to be measured (profile fitted from the rest)."""


def excess_background_variance(meas) -> float:
    """Background variance per pixel beyond counting statistics on this image (photons²).

    The scatter of the background pixels about each box's plane, ``BGRATIO² · b``, exceeds the
    Poisson value ``b`` when the detector adds read noise (CCDs: a few ADU per pixel, which
    matters for weak data once ADCOFFSET and GAIN are taken out) or the background has structure
    the plane does not follow.  The median excess over all boxes of the image (n/(n−3) for the
    three plane parameters) is one number for the image, precise where one box's estimate is
    not; 0 for photon-counting detectors, where it scatters about zero.  It is added to the
    variance of every pixel in σ(I) (Leslie 1999's σ² = ΣI + m·B(1 + m/n), B then the
    observed, not the Poisson, background variance).
    """
    ok = np.isfinite(meas.bgratio) & (meas.n_bg > 3) & (meas.plane[:, 2] > 0)
    if np.count_nonzero(ok) < 10:
        return 0.0
    n = meas.n_bg[ok].astype(np.float64)
    b = meas.plane[ok, 2]
    excess = meas.bgratio[ok] ** 2 * b * n / (n - 3.0) - b
    return float(max(np.median(excess), 0.0))


GRADIENT_SIGNIFICANCE = 3.0
"""Standard errors by which a background gradient must exceed GRADMAX to be flagged."""


def gradient_too_steep(meas, gradmax: float) -> np.ndarray:
    """Boxes whose background gradient exceeds GRADMAX by more than its own noise.

    MOSFLM's GRADMAX test (gradient of the background plane / its mean, default 0.03) is meant
    to catch real structure under a spot (ice-ring edges, the backstop shadow, a neighbour's
    tail). On weak backgrounds (pixel detectors, fine slices: a photon or less per pixel) the
    plane's slope is dominated by counting noise, and the plain test would flag most boxes
    although the background is flat. The gradient is therefore flagged only where it exceeds
    GRADMAX by :data:`GRADIENT_SIGNIFICANCE` of its standard error, from the plane fit's
    normal matrix and the background scatter observed about the plane (``BGRATIO² · b``,
    which includes any non-Poisson noise). Where the background is strong the error is tiny
    and this is MOSFLM's test.

    Parameters
    ----------
    meas : BoxMeasurement
        ``plane`` (a, b, c and the 3×3 inverse normal matrix), ``bgratio``, ``gradient``.
    gradmax : float
        REJECTION GRADMAX (1/pixel).

    Returns
    -------
    numpy.ndarray of bool
        True where the GRADIENT flag is due.
    """
    plane = meas.plane
    c = plane[:, 2]
    var_px = np.nan_to_num(meas.bgratio, nan=0.0) ** 2 * np.maximum(c, 0.01)
    var_slope = var_px * (np.abs(plane[:, 3]) + np.abs(plane[:, 7]))
    sigma = np.sqrt(var_slope) / np.maximum(c, 1.0)
    return meas.gradient > gradmax + GRADIENT_SIGNIFICANCE * sigma


FULL_FRACTION = 0.999
"""A prediction recording at least this fraction of its reflection is fully recorded."""

ERROR_MIN_ISIGMA = 10.0
"""Reflections profile-fitted at I/σ(I) above this inform the detector error factor."""
ERROR_MIN_REFLECTIONS = 10
"""Fewer strong reflections on an image than this: no error factor is calculated (0)."""


def detector_error_factor(j: np.ndarray, var: np.ndarray, excess: np.ndarray,
                          signal2: np.ndarray) -> float:
    """MOSFLM's "calculated detector error factor" of one image, estimated from the data.

    The pixels of a profile-fitted spot scatter about the fitted profile by more than counting
    statistics when the spot shape differs from the standard profile (discrete mosaic blocks,
    shape changes across a detector region, detector response): Leslie (1999) adds
    ``(EFAC · ρ)²`` to each pixel's variance, and MOSFLM prints the factor it calculates from
    the strong spots of each image ("Calculated detector error factor is ...") and uses it for
    PKRATIO when it exceeds the input EFAC, so that the strong spots of data whose shapes
    vary are not all rejected as "bad profiles".  It is not added to σ(I): residuals
    orthogonal to the profile say little about the error of the fitted intensity.  Here the
    factor is the moment estimator over strong reflections (I/σ > ``ERROR_MIN_ISIGMA``):
    e² = Σ(r² − v) / Σ(J P)², r the residuals of the fitted peak pixels, v their counting
    variance and J P the fitted spot counts, pooled after dropping the 10 % of reflections
    with the largest individual ratio (outliers: overlaps, zingers, as MOSFLM drops spots
    with a high PKRATIO).  Zero for data that follow counting statistics.

    Parameters
    ----------
    j, var : ndarray (N,)
        Profile-fitted intensity and its variance from a fit without the error term (photons).
    excess, signal2 : ndarray (N,)
        Σ(r² − v) and Σ(J P)² over each reflection's fitted pixels (photons²).

    Returns
    -------
    float
        The error factor (dimensionless; fraction of a pixel's spot counts).
    """
    ok = (np.isfinite(j) & np.isfinite(var) & (var > 0) & np.isfinite(excess)
          & np.isfinite(signal2) & (signal2 > 0))
    ok[ok] = j[ok] > ERROR_MIN_ISIGMA * np.sqrt(var[ok])
    if np.count_nonzero(ok) < ERROR_MIN_REFLECTIONS:
        return 0.0
    ratio = excess[ok] / signal2[ok]
    keep = ratio <= np.quantile(ratio, 0.9)
    e2 = float(excess[ok][keep].sum() / signal2[ok][keep].sum())
    return float(np.sqrt(e2)) if e2 > 0 else 0.0


TAIL_MIN_ISIGMA = 10.0
"""Reflections profile-fitted at I/σ(I) above this inform the tail-share scatter of an image."""


def ring_masks(masks: np.ndarray, width: int = 1) -> np.ndarray:
    """Background pixels within ``width`` pixels (8-neighbourhood steps) of the peak of each
    mask (M, NX, NY) bool: where the tail of a spot beyond its peak region lies."""
    peak = masks == PEAK
    grown = peak.copy()
    nx, ny = peak.shape[1:]
    for _ in range(max(int(width), 1)):
        pad = np.pad(grown, ((0, 0), (1, 1), (1, 1)))
        step = grown.copy()
        for da in (0, 1, 2):
            for db in (0, 1, 2):
                step |= pad[:, da : da + nx, db : db + ny]
        grown = step
    return grown & (masks == BACKGROUND)


def ring_width(raster) -> int:
    """Width of the tail ring: the inner half of the background rim (NRX, NRY) of the box,
    the outer half giving the background level (at least one pixel)."""
    return max(1, min(int(raster.nrx), int(raster.nry)) // 2)


def sampled_profiles(boxes, fine: np.ndarray, k: int, idx: np.ndarray,
                     w: np.ndarray) -> np.ndarray:
    """Each reflection's blended profile at its box pixels, for its sub-pixel offset (N, NX, NY).

    The fine (sub-pixel) standard profiles are sampled bilinearly at ``(a - fx, b - fy)`` as the
    profile-fitting kernel samples them (:func:`mosflm_py.kernels.integrate_profile.
    sample_profiles`), so that a sharp spot's share on each pixel follows where its centre falls.
    """
    n, nx, ny = len(boxes), boxes.nx, boxes.ny
    out = np.zeros((n, nx, ny))
    if n:
        _kp.sample_profiles(np.ascontiguousarray(fine, dtype=np.float64), int(k),
                            np.ascontiguousarray(idx, dtype=np.int64),
                            np.ascontiguousarray(w, dtype=np.float64),
                            np.ascontiguousarray(boxes.fx, dtype=np.float64),
                            np.ascontiguousarray(boxes.fy, dtype=np.float64), int(nx), int(ny),
                            out)
    return out


def ring_counts(boxes, meas, rings: np.ndarray, masks: np.ndarray, profile: np.ndarray):
    """Observed and expected tail counts of each box in the ring around its peak.

    ``profile`` (N, NX, NY) is each reflection's profile at its pixels
    (:func:`sampled_profiles`).  Returns ``(observed, share, variance)``: the
    background-subtracted counts on the usable ring pixels, the profile's share there relative
    to its (clipped) sum over the peak, so that ``share · I`` is the expected ring counts, and
    the counting variance of the observed counts (pixel counts; photons²).
    """
    n = len(boxes)
    vals = boxes.values.reshape(n, boxes.nx, boxes.ny)
    codes = boxes.codes.reshape(n, boxes.nx, boxes.ny)
    dx = (np.arange(boxes.nx) - boxes.nx // 2)[None, :, None]
    dy = (np.arange(boxes.ny) - boxes.ny // 2)[None, None, :]
    pl = meas.plane
    bg = pl[:, 0, None, None] * dx + pl[:, 1, None, None] * dy + pl[:, 2, None, None]
    use = rings[boxes.mask_id] & ((codes >> 2) == 0)
    observed = np.where(use, vals - bg, 0.0).sum(axis=(1, 2))
    peak = np.where(masks[boxes.mask_id] == PEAK, np.maximum(profile, 0.0), 0.0).sum(axis=(1, 2))
    share = np.where(use, profile, 0.0).sum(axis=(1, 2)) / np.where(peak > 0, peak, np.nan)
    variance = np.where(use, np.maximum(vals, 0.0), 0.0).sum(axis=(1, 2))
    return observed, share, variance


def tail_scatter(j: np.ndarray, var: np.ndarray, observed: np.ndarray, share: np.ndarray,
                 ring_var: np.ndarray, fx: np.ndarray | None = None,
                 fy: np.ndarray | None = None) -> float:
    """rms scatter, between the strong reflections of one image, of their tail share.

    The peak region leaves out the faint tail of each spot (PROFILE TOLERANCE, 2-3 % by
    default), so summation and profile fitting both measure the intensity within the peak.
    Where every spot has the standard profile's shape this loses the same share of every
    reflection (scaling absorbs it) and adds no error; where shapes differ from reflection to
    reflection (discrete mosaic blocks, partiality, the obliquity of high-angle spots) each
    loses a different share, an error proportional to I that counting statistics do not
    contain and that dominates strong sharp spots (small-molecule data, I/σ of hundreds).
    The ring of background pixels touching the peak holds most of the tail, and there each
    spot's own tail is seen.  The relative ring misfit d = (R − s I)/I (R the observed ring
    counts, s I the standard profile's) has a part common to all spots — the profile's
    sampling of sharp spots, a smooth function of the sub-pixel offsets ``fx``, ``fy`` —
    which is removed by least squares on (1, |fx|, |fy|, fx², fy²); the moment estimator
    of the rest over strong reflections (I/σ > ``TAIL_MIN_ISIGMA``),
    t² = Σ[(d I)² − var(R)] / Σ I² · n/(n − p), pooled after dropping the 10 % of
    reflections with the largest individual ratio (a neighbour's tail, a zinger), is the
    scatter t of the tail share.  0 when spot shapes follow the standard profile; no
    constant enters.
    """
    ok = (np.isfinite(j) & np.isfinite(var) & (var > 0) & np.isfinite(observed)
          & np.isfinite(share))
    ok[ok] = j[ok] > TAIL_MIN_ISIGMA * np.sqrt(var[ok])
    n = int(np.count_nonzero(ok))
    if n < ERROR_MIN_REFLECTIONS:
        return 0.0
    jj = j[ok]
    d = (observed[ok] - share[ok] * jj) / jj
    cols = [np.ones(n)]
    if fx is not None and fy is not None:
        ax, ay = np.abs(np.asarray(fx)[ok]), np.abs(np.asarray(fy)[ok])
        cols += [ax, ay, ax**2, ay**2]
    x = np.stack(cols, axis=1)
    p = x.shape[1]
    if n <= 2 * p:
        x, p = x[:, :1], 1
    beta = np.linalg.lstsq(x, d, rcond=None)[0]
    resid = d - x @ beta
    excess = (resid * jj) ** 2 - ring_var[ok]
    ratio = excess / jj**2
    keep = ratio <= np.quantile(ratio, 0.9)
    t2 = float(excess[keep].sum() / (jj[keep] ** 2).sum()) * n / (n - p)
    return float(np.sqrt(t2)) if t2 > 0 else 0.0


def tail_variance(intensity: np.ndarray, scatter: float) -> np.ndarray:
    """Variance ``(t · I)²`` of an intensity measured within the peak region whose tail share
    scatters by ``t`` between reflections (:func:`tail_scatter`); I clipped at 0."""
    return (float(scatter) * np.maximum(np.nan_to_num(intensity), 0.0)) ** 2


def _plane_quad(boxes, meas) -> np.ndarray:
    """s^T (G^T G)^-1 s of each box, s = sum of (dx, dy, 1) over its usable peak pixels: the
    factor of the background variance in the summation variance (as the kernel computes it)."""
    n = len(boxes)
    if n == 0:
        return np.zeros(0)
    codes = boxes.codes.reshape(n, boxes.nx, boxes.ny)
    ok = ((codes & 3) == 1) & ((codes >> 2) == 0)
    dx = (np.arange(boxes.nx) - boxes.nx // 2)[None, :, None]
    dy = (np.arange(boxes.ny) - boxes.ny // 2)[None, None, :]
    g = np.stack([(ok * dx).sum(axis=(1, 2)), (ok * dy).sum(axis=(1, 2)), ok.sum(axis=(1, 2))],
                 axis=1).astype(np.float64)
    m = meas.plane[:, 3:12].reshape(n, 3, 3)
    return np.einsum("ni,nij,nj->n", g, m, g)


@dataclass(frozen=True)
class ImageIntegration:
    """Struct of arrays, one row per prediction (photons; NaN where not measured).

    I, sigI : summation; Ipr, sigIpr : profile fitted; bg : background per pixel at the centre;
    bgratio, pkratio, gradient : BGPKRATIOS components; flags : MTZ FLAG bits; reject : Reject
    bits (non-zero = not written); n_peak, n_bg, n_fit : pixels used; error_factor : the
    detector error factor calculated from this image's strong spots
    (:func:`detector_error_factor`; the PKRATIO instrument error when above EFAC);
    tail_scatter : the scatter of the tail share between this image's strong spots
    (:func:`tail_scatter`), whose ``(t · I)²`` is in both sigmas.
    """

    hkl: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    fraction: np.ndarray
    I: np.ndarray  # noqa: E741
    sigI: np.ndarray
    Ipr: np.ndarray
    sigIpr: np.ndarray
    bg: np.ndarray
    bgratio: np.ndarray
    pkratio: np.ndarray
    gradient: np.ndarray
    flags: np.ndarray
    reject: np.ndarray
    n_peak: np.ndarray
    n_bg: np.ndarray
    n_fit: np.ndarray
    warnings: tuple[str, ...] = ()
    error_factor: float = 0.0
    tail_scatter: float = 0.0

    def __len__(self) -> int:
        return int(self.I.size)

    @property
    def accepted(self) -> np.ndarray:
        """Rows to write to the MTZ."""
        return self.reject == 0

    def bgpkratios(self) -> np.ndarray:
        return pack_bgpkratios(self.bgratio, self.pkratio, self.gradient)


def integrate_image(
    frame: np.ndarray,
    predictions: Targets,
    params: IntegrationParams,
    profiles: StandardProfiles | None = None,
) -> ImageIntegration:
    """Summation and (with ``profiles``) profile-fitted intensities of all predictions on an image.

    Parameters
    ----------
    frame : ndarray (n_slow, n_fast)
        Raw image in ADU.
    predictions : Targets
        Positions (slow, fast pixels), hkl, fraction recorded, extra flags.
    params : IntegrationParams
        Box, background, rejection, profile, separation, GAIN, ADCOFFSET, NULLPIX, OVERLOAD.
    profiles : StandardProfiles, optional
        From :func:`accumulate_profiles` for this image's block; None or PROFILE OFF gives
        summation only (overloaded and edge reflections are then rejected).
    """
    if not isinstance(predictions, Targets):
        raise IntegrationError("predictions must be a Targets instance")
    rej = params.rejection
    warnings: list[str] = []
    fit = (profiles is not None and params.profile.enabled and profiles.usable)
    if fit:
        if (profiles.raster.nxs, profiles.raster.nys) != (params.raster.nxs, params.raster.nys):
            if not params.profile.grow_box:
                raise IntegrationError(
                    "standard profiles were made with a different RASTER box size")
            # the block's profiles enlarged the automatic box to hold its spots: measure with it
            params = replace(params, raster=profiles.raster)
        idx, w = blend_weights(profiles.grid, predictions.x_px, predictions.y_px,
                               params.profile.variable)
        mask_id = idx[np.arange(idx.shape[0]), np.argmax(w, axis=1)]
        masks = profiles.masks
    else:
        masks = params.raster.mask()[None]
        mask_id = None
    boxes = extract_shoeboxes(frame, predictions.x_px, predictions.y_px, masks, params, mask_id)
    meas = measure_boxes(boxes, params)
    extra = excess_background_variance(meas)
    if extra > 0:
        meas = replace(meas, sigma_b2=meas.sigma_b2 + extra,
                       var_sum=meas.var_sum + extra * (meas.counts[:, 0] + _plane_quad(boxes,
                                                                                       meas)))
    n = len(predictions)
    c = meas.counts
    reject = np.zeros(n, np.int32)
    # a peak that overlaps a neighbour's peak: with standard profiles it is measured from its
    # own pixels (those in the neighbour's peak left out, as overloaded ones), else rejected
    overlapped = c[:, 1] > 0
    if not fit:
        reject[overlapped] |= Reject.OVERLAP
    if not params.separation.close:
        reject[c[:, 4] > 0] |= Reject.OVERLAP
    reject[c[:, 0] == 0] |= Reject.NO_PEAK
    reject[meas.n_bg < rej.nbgmin] |= Reject.TOO_FEW_BG
    flags = predictions.flags.astype(np.int32).copy()
    over, edge = c[:, 2] > 0, c[:, 3] > 0
    I, var = meas.i_sum.copy(), meas.var_sum.copy()  # noqa: E741
    Ipr, varpr = np.full(n, np.nan), np.full(n, np.nan)
    pkratio, nfit = np.full(n, np.nan), np.zeros(n, np.int64)
    error_factor = 0.0
    tail = 0.0
    if fit:
        missing = np.zeros(n)
        fx = boxes.fx if params.profile.interpolate else np.zeros(n)
        fy = boxes.fy if params.profile.interpolate else np.zeros(n)
        prof, k = profiles.fit_profiles()
        excess, signal2 = np.zeros(n), np.zeros(n)

        def run_fit(efac: float) -> None:
            _kp.fit_boxes(boxes.values, boxes.codes, meas.plane, meas.sigma_b2, boxes.nx,
                          boxes.ny, np.ascontiguousarray(prof), int(k), idx, w,
                          np.ascontiguousarray(fx), np.ascontiguousarray(fy), float(efac),
                          float(params.profile.vmin), float(params.profile.wdlim1),
                          float(params.profile.wdlim2), np.nan_to_num(meas.i_sum), Ipr, varpr,
                          pkratio, nfit, missing, excess, signal2)

        run_fit(params.profile.efac)
        error_factor = detector_error_factor(Ipr, varpr, excess, signal2)
        if error_factor > params.profile.efac:
            # the calculated factor is the instrument error of PKRATIO and WDLIM when larger
            # than the input one (as MOSFLM: "Calculated detector error factor is ...")
            run_fit(error_factor)
        # the tail of each spot beyond its peak region: its share scatters between reflections
        # (tail_scatter, from this image's strong spots); both intensities are within the peak
        sampled = sampled_profiles(boxes, prof, int(k), idx, w)
        rings = ring_masks(masks, ring_width(params.raster))
        observed, share, ring_var = ring_counts(boxes, meas, rings, masks, sampled)
        tail = tail_scatter(Ipr, varpr, observed, share, ring_var, boxes.fx, boxes.fy)
        varpr = varpr + tail_variance(Ipr, tail)
        var = var + tail_variance(I, tail)
        partial = over | edge | overlapped
        # a spot mostly in a detector gap or off the image: its intensity would be an
        # extrapolation from less than half of its profile (and the background plane from one
        # side of the box), dominated by model error, so it is not measured
        too_much = np.nan_to_num(missing, nan=1.0) > MAX_MISSING_EDGE
        reject[edge & ~over & too_much] |= Reject.NO_PROFILE
        reject[overlapped & (too_much | ~np.isfinite(Ipr))] |= Reject.OVERLAP
        done = partial & np.isfinite(Ipr)
        I[done] += Ipr[done] * missing[done]
        var[done] += missing[done] ** 2 * varpr[done] + np.maximum(Ipr[done], 0) * missing[done]
        reject[(over | edge) & ~np.isfinite(Ipr)] |= Reject.NO_PROFILE
        bad_pk = np.isfinite(pkratio) & (pkratio > rej.pkratio)
        flags[bad_pk] |= Flag.PKRATIO
        if not rej.pkratio_accept:
            # a part of a partially recorded reflection is written, flagged, rather than
            # dropped: without it the reflection's other parts would add up to an incomplete
            # intensity (the flag lets scaling reject the whole reflection)
            reject[bad_pk & (predictions.fraction >= FULL_FRACTION)] |= Reject.PKRATIO
    else:
        reject[over | edge] |= Reject.NO_PROFILE
    flags[over] |= Flag.OVERLOAD
    flags[edge] |= Flag.EDGE
    flags[np.nan_to_num(meas.bgratio) > rej.bgratio] |= Flag.BGRATIO
    flags[gradient_too_steep(meas, rej.gradmax)] |= Flag.GRADIENT
    sig = np.sqrt(np.maximum(var, 0.0))
    sigpr = np.sqrt(np.maximum(varpr, 0.0))
    neg = (I < -rej.negative_sigma * sig) | (Ipr < -rej.negative_sigma * sigpr)
    flags[neg] |= Flag.NEGATIVE
    unmeasured = (reject & (Reject.NO_PEAK | Reject.TOO_FEW_BG | Reject.NO_PROFILE)) != 0
    I[unmeasured], sig[unmeasured] = np.nan, np.nan
    if np.count_nonzero(over):
        warnings.append(f"{int(np.count_nonzero(over))} overloaded reflections "
                        "(intensity estimated by profile fitting, FLAG 16)")
    return ImageIntegration(
        hkl=predictions.hkl, x_px=predictions.x_px, y_px=predictions.y_px,
        fraction=predictions.fraction, I=I, sigI=sig, Ipr=Ipr, sigIpr=sigpr,
        bg=meas.plane[:, 2].copy(), bgratio=meas.bgratio, pkratio=pkratio,
        gradient=meas.gradient, flags=flags, reject=reject, n_peak=c[:, 0].copy(),
        n_bg=meas.n_bg, n_fit=nfit, warnings=tuple(warnings), error_factor=error_factor,
        tail_scatter=tail)
