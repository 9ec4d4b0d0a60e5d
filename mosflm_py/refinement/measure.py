"""Simple summation measurement of predicted reflections on one image (for cell refinement).

For each reflection predicted on the image (rocking curve widened by MOSADD):

1. *Search*: in a (box + 2·search)² window around the prediction the brightest 3×3 sum marks
   the spot; the background-subtracted centroid in a box around it is a first observed position.
2. *Offset model*: an affine map (observed − calculated) = c + M·(X, Y) is fitted to the strong
   spots, so residual errors of beam, distance or rotation do not put the boxes off the spots.
3. *Measure*: in the box centred on the corrected prediction the rim (1 pixel wide) gives a
   constant local background (robust mean), the interior gives the summation intensity
   I = Σ(ρ − b), σ²(I) = Σρ + n²·b/n_rim (counting statistics, Leslie 1999), the centroid of the
   positive background-subtracted pixels and its σ (second moment / √I).

Pixels < 0 (masked, gaps) invalidate a box.  Boxes touching the image edge are invalid.
Predictions reuse the Ewald solutions of earlier calls (:mod:`predict_cache`): image after image
only the Miller indices near the image's φ are solved.

References
----------
Leslie, A. G. W. (1999). Acta Cryst. D55, 1696–1702.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.rocking_curve import extent, fraction_on_image, rocking_widths
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.predict_cache import predict_cached


@dataclass(frozen=True)
class MeasureParams:
    """box : odd box size (pixels, interior = box − 2).  search : extra half-width searched (px).
    mosadd : safety factor on the mosaic for prediction.  widen : extra mosaic (°) added for
    prediction only, so reflections whose model is still wrong are measured over their whole
    rocking curve (parts with nothing recorded are harmless).  d_min, d_max : resolution limits (Å).
    min_isig_offset : I/σ of spots used for the affine offset model."""

    box: int = 9
    search: int = 4
    mosadd: float = 0.05
    widen: float = 0.3
    d_min: float | None = None
    d_max: float | None = None
    min_isig_offset: float = 10.0

    def __post_init__(self) -> None:
        if self.box < 5 or self.box % 2 == 0:
            raise IntegrationError(f"measurement box must be odd and at least 5 (got {self.box})")


def box_for_raster(nxs: int, nys: int, nrx: int, nry: int, minimum: int = 9) -> int:
    """Summation box (odd, pixels) whose interior holds the peak region of a MOSFLM RASTER.

    RASTER NXS NYS NC NRX NRY (chosen from the median spot size, or given) leaves a peak region
    of (NXS − 2·NRX) × (NYS − 2·NRY) pixels inside its background rims; the box here has a rim
    one pixel wide, so it is the larger peak dimension + 2, made odd, and at least ``minimum``
    (the default box, which leaves room for the spot search on small spots).  A box smaller than
    the spots truncates them and pulls every centroid towards the box centre, i.e. towards the
    prediction: on nanoBragg small-molecule data (spots 9 × 7 pixels, RASTER 25 21 17 7 6) the
    default 9-pixel box gave cell angles 0.1° off and the orientation 0.1° off, a 13-pixel box
    0.02° and 0.07° (the floor set by the mean orientation of the simulated mosaic domains).

    Parameters
    ----------
    nxs, nys : RASTER box size (pixels, slow and fast).
    nrx, nry : RASTER background rim widths (pixels).
    minimum : smallest box returned (odd).

    Returns
    -------
    int
    """
    peak = max(int(nxs) - 2 * int(nrx), int(nys) - 2 * int(nry), 1)
    box = peak + 2
    if box % 2 == 0:
        box += 1
    return max(int(minimum), box)


@dataclass(frozen=True, eq=False)
class ImageMeasurements:
    """Summation measurements of the reflections predicted on one image.

    hkl (N,3); phi_c, width: model centre and full rocking width (°); fraction: calculated
    fraction on this image; x_calc, y_calc / x_obs, y_obs: mm; sigma_x, sigma_y: centroid σ
    (mm); intensity, sigma; valid: box fully on the image and unmasked.  cog_shift_mm,
    background_residual: MOSFLM's ``C. of G. SHIFTS`` and ``Background residual`` of the average
    spot profile of the image (see :func:`average_profile_stats`; nan when no strong spot).
    """

    image: int
    phi_start: float
    phi_end: float
    hkl: np.ndarray
    phi_c: np.ndarray
    width: np.ndarray
    fraction: np.ndarray
    x_calc: np.ndarray
    y_calc: np.ndarray
    x_obs: np.ndarray
    y_obs: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    valid: np.ndarray
    d: np.ndarray
    cog_shift_mm: tuple[float, float] = (float("nan"), float("nan"))
    background_residual: float = float("nan")

    @property
    def phi_obs(self) -> np.ndarray:
        """φ (°) at the middle of the part of the rocking curve recorded on this image."""
        lo = np.maximum(self.phi_c - 0.5 * self.width, self.phi_start)
        hi = np.minimum(self.phi_c + 0.5 * self.width, self.phi_end)
        return 0.5 * (lo + hi)

    def partials(self) -> PartialObservations:
        """The valid measurements as :class:`PartialObservations` rows."""
        v = self.valid
        n = int(v.sum())
        return PartialObservations(self.hkl[v], np.full(n, self.image), np.full(n, self.phi_start),
                                   np.full(n, self.phi_end), self.intensity[v], self.sigma[v])


def _boxes(img: np.ndarray, ci: np.ndarray, cj: np.ndarray, half: int):
    """(N, 2h+1, 2h+1) pixel stacks around integer centres; ok = fully inside the image."""
    off = np.arange(-half, half + 1)
    ns, nf = img.shape
    ok = (ci - half >= 0) & (ci + half < ns) & (cj - half >= 0) & (cj + half < nf)
    ii = np.clip(ci[:, None, None] + off[None, :, None], 0, ns - 1)
    jj = np.clip(cj[:, None, None] + off[None, None, :], 0, nf - 1)
    return img[ii, jj].astype(float), ok


def _sum_box(stack: np.ndarray, ci: np.ndarray, cj: np.ndarray):
    """Background, intensity, σ, centroid (pixel units) and centroid σ for box stacks."""
    n, b, _ = stack.shape
    rim = np.ones((b, b), bool)
    rim[1:-1, 1:-1] = False
    masked = (stack < 0).reshape(n, b * b).any(axis=1)
    rv = stack[:, rim]
    med = np.median(rv, axis=1)
    clip = med + 4.0 * np.sqrt(np.maximum(med, 1.0))
    good = rv <= clip[:, None]
    bg = np.sum(rv * good, axis=1) / np.maximum(good.sum(axis=1), 1)
    nrim = np.maximum(good.sum(axis=1), 1)
    inner = stack[:, 1:-1, 1:-1]
    nint = inner.shape[1] * inner.shape[2]
    tot = inner.reshape(n, nint).sum(axis=1)
    inten = tot - nint * bg
    var = np.maximum(tot, 0.0) + nint**2 * np.maximum(bg, 1.0) / nrim
    w = np.maximum(inner - bg[:, None, None], 0.0)
    sw = np.maximum(w.sum(axis=(1, 2)), 1e-9)
    h = b // 2
    off = np.arange(-h + 1, h) + 0.5
    pi = (w.sum(axis=2) * off[None, :]).sum(axis=1) / sw
    pj = (w.sum(axis=1) * off[None, :]).sum(axis=1) / sw
    vi = (w.sum(axis=2) * (off[None, :] - pi[:, None]) ** 2).sum(axis=1) / sw
    vj = (w.sum(axis=1) * (off[None, :] - pj[:, None]) ** 2).sum(axis=1) / sw
    npho = np.maximum(inten, 1.0)
    si = np.sqrt(vi / npho + 0.02**2)
    sj = np.sqrt(vj / npho + 0.02**2)
    return bg, inten, np.sqrt(var), ci + pi, cj + pj, si, sj, masked


def average_profile_stats(
    stack: np.ndarray,
    offset_px: np.ndarray,
    use: np.ndarray,
    pixel_slow: float,
    pixel_fast: float,
) -> tuple[tuple[float, float], float]:
    """Centre-of-gravity shift and background residual of the average profile of strong spots.

    MOSFLM prints, per image during cell refinement, the centre-of-gravity shift of the average
    spot profile from the predicted position and the rms of its background pixels with the peak
    scaled to 255 (``C. of G. SHIFTS = ... Background residual= ... (peak scaled to 255)``,
    Leslie 1999).  Cell refinement here forms no standard profiles, so the average profile is
    formed the same way from the summation boxes it measures: each strong spot's box, less its
    rim background, divided by its summation intensity, averaged over the spots.  The rim is the
    background, the interior the peak, as in :func:`_sum_box`.

    Parameters
    ----------
    stack : (N, b, b) box pixels (counts), centred on integer pixels.
    offset_px : (N, 2) prediction minus the centre of the box's central pixel (pixels, slow and
        fast); the shift is reported relative to the prediction.
    use : (N,) bool, the spots to average (strong, valid).
    pixel_slow, pixel_fast : pixel sizes (mm).

    Returns
    -------
    ((dx, dy) mm, residual); nan when no spot is used or the peak has no positive value.
    """
    nan = float("nan")
    use = np.asarray(use, bool)
    if not use.any():
        return (nan, nan), nan
    st = np.asarray(stack, float)[use]
    n, b, _ = st.shape
    rim = np.ones((b, b), bool)
    rim[1:-1, 1:-1] = False
    bg = np.mean(st[:, rim], axis=1)
    net = st - bg[:, None, None]
    inten = net[:, ~rim].sum(axis=1)
    keep = inten > 0
    if not keep.any():
        return (nan, nan), nan
    prof = np.mean(net[keep] / inten[keep, None, None], axis=0)
    peak = np.where(~rim & (prof > 0), prof, 0.0)
    top = float(prof[~rim].max())
    if peak.sum() <= 0 or top <= 0:
        return (nan, nan), nan
    off = np.arange(b) - b // 2
    ci = float((peak.sum(axis=1) * off).sum() / peak.sum())
    cj = float((peak.sum(axis=0) * off).sum() / peak.sum())
    mo = np.mean(np.asarray(offset_px, float)[use][keep], axis=0)
    shift = ((ci - mo[0]) * pixel_slow, (cj - mo[1]) * pixel_fast)
    residual = float(np.sqrt(np.mean((prof[rim] * 255.0 / top) ** 2)))
    return (float(shift[0]), float(shift[1])), residual


def summation_measure(
    image: np.ndarray,
    image_number: int,
    phi_start: float,
    phi_end: float,
    experiment: Experiment,
    params: MeasureParams | None = None,
) -> ImageMeasurements:
    """Measure every reflection predicted on one image by box summation (see module notes).

    Parameters
    ----------
    image : (nslow, nfast) counts (negative = masked).
    image_number : number reported with the measurements.
    phi_start, phi_end : φ range of the image (°).
    experiment : model used for prediction (with a crystal).
    params : :class:`MeasureParams`.
    """
    params = params or MeasureParams()
    img = np.asarray(image)
    det = experiment.detector
    if img.shape != (det.nslow, det.nfast):
        raise IntegrationError(
            f"image {image_number} is {img.shape[0]}x{img.shape[1]} pixels but the detector is "
            f"{det.nslow}x{det.nfast}"
        )
    cr = experiment.crystal
    wide = cr.mosaic * (1.0 + params.mosadd) + params.widen
    exp = experiment.replace(crystal=cr.replace(mosaic=wide))
    pred = predict_cached(exp, phi_start, phi_end, d_min=params.d_min, d_max=params.d_max)
    ball, block = rocking_widths(1.0 / pred.d, pred.zeta, experiment.beam.wavelength, cr.mosaic,
                                 experiment.beam.mean_divergence, experiment.beam.dispersion,
                                 cr.domain_width)
    width = extent(ball, block)
    frac = fraction_on_image(pred.phi, width, phi_start, phi_end, ball)
    half = params.box // 2
    ci0, cj0 = np.floor(pred.x_px).astype(int), np.floor(pred.y_px).astype(int)
    # 1. search for the spot
    sh = half + params.search
    big, okb = _boxes(img, ci0, cj0, sh)
    big = np.where(big < 0, 0.0, big)
    c = np.cumsum(np.cumsum(np.pad(big, ((0, 0), (1, 0), (1, 0))), axis=1), axis=2)
    s3 = c[:, 3:, 3:] - c[:, :-3, 3:] - c[:, 3:, :-3] + c[:, :-3, :-3]
    arg = s3.reshape(len(big), -1).argmax(axis=1) if len(big) else np.zeros(0, int)
    pk_i = ci0 - sh + 1 + arg // s3.shape[2] if len(big) else ci0
    pk_j = cj0 - sh + 1 + arg % s3.shape[2] if len(big) else cj0
    st, ok1 = _boxes(img, pk_i, pk_j, half)
    _, i1, s1, oi, oj, _, _, m1 = _sum_box(st, pk_i, pk_j)
    strong = okb & ok1 & ~m1 & (i1 > params.min_isig_offset * s1)
    # 2. affine offset model (obs - calc) in pixels
    di, dj = np.zeros(len(pred)), np.zeros(len(pred))
    if strong.sum() >= 6:
        dx_o, dy_o = oi[strong] - pred.x_px[strong], oj[strong] - pred.y_px[strong]
        good = (np.abs(dx_o - np.median(dx_o)) < 3) & (np.abs(dy_o - np.median(dy_o)) < 3)
        if good.sum() >= 6:
            a = np.column_stack([np.ones(good.sum()), pred.x_px[strong][good],
                                 pred.y_px[strong][good]])
            cx = np.linalg.lstsq(a, dx_o[good], rcond=None)[0]
            cy = np.linalg.lstsq(a, dy_o[good], rcond=None)[0]
            aa = np.column_stack([np.ones(len(pred)), pred.x_px, pred.y_px])
            di, dj = aa @ cx, aa @ cy
    elif strong.sum() >= 1:
        di[:] = np.median(oi[strong] - pred.x_px[strong])
        dj[:] = np.median(oj[strong] - pred.y_px[strong])
    # 3. measure in boxes at the corrected predictions
    ci, cj = np.floor(pred.x_px + di).astype(int), np.floor(pred.y_px + dj).astype(int)
    st, ok = _boxes(img, ci, cj, half)
    _, inten, sig, oi, oj, si, sj, masked = _sum_box(st, ci, cj)
    xo, yo = det.px_to_mm(oi, oj)
    # pixel k spans [k, k+1): the box's central pixel is centred at ci + 0.5
    offset = np.column_stack([pred.x_px - (ci + 0.5), pred.y_px - (cj + 0.5)])
    # MOSFLM averages the strong fully recorded reflections; on fine-sliced images there may be
    # none, and then the strong partials (same spatial shape on the detector) are averaged
    strong = ok & ~masked & (inten > params.min_isig_offset * sig)
    fulls = strong & (frac > 0.99)
    cog, bgres = average_profile_stats(st, offset, fulls if fulls.any() else strong,
                                       det.pixel_slow, det.pixel_fast)
    return ImageMeasurements(
        image=int(image_number), phi_start=float(phi_start), phi_end=float(phi_end),
        hkl=pred.hkl, phi_c=pred.phi,
        width=width,
        fraction=frac, x_calc=pred.x_mm, y_calc=pred.y_mm, x_obs=xo, y_obs=yo,
        sigma_x=si * det.pixel_slow, sigma_y=sj * det.pixel_fast, intensity=inten, sigma=sig,
        valid=ok & ~masked, d=pred.d, cog_shift_mm=cog, background_residual=bgres,
    )


def make_measure_fn(
    load_image: Callable[[int], np.ndarray],
    phi_range: Callable[[int], tuple[float, float]],
    params: MeasureParams | None = None,
) -> Callable[[Experiment, Sequence[int]], list[ImageMeasurements]]:
    """A ``measure_fn(experiment, image_numbers)`` for :func:`refine_cell_segments`.

    ``load_image(n)`` returns the pixel array of image n, ``phi_range(n)`` its (start, end) φ.
    """

    def measure_fn(experiment: Experiment, image_numbers: Sequence[int]) -> list[ImageMeasurements]:
        out = []
        for n in image_numbers:
            a, b = phi_range(n)
            out.append(summation_measure(load_image(n), n, a, b, experiment, params))
        return out

    return measure_fn
