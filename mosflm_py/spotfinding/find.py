"""FINDSPOTS: find the spots on one or several images (MOSFLM's spot search, algorithms.md §1).

Pipeline for one image: active mask -> background (local box or radial) -> pixels above
``threshold`` σ -> 8-connected regions -> split regions with several significant maxima ->
centroids / intensities -> rejection tests (in this order; each spot counted once, by its
first failed test): too many peaks (MAXPEAK), too few pixels (MINPIX), touching inactive pixels,
outside the search radii (RMIN/RMAX), outside the resolution limits, on an ice ring (ICE), size
relative to the median (MINX MAXX MINY MAXY), anisotropy (ANISOMAX), r.m.s. significance
(RMSFACTOR), too close to another spot (SEPARATION), beyond the AUTORESLN limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mosflm_py.errors import BadData, BadParameter
from mosflm_py.geometry.detector import Detector
from mosflm_py.kernels.spotfind import concurrent_calls_safe
from mosflm_py.spotfinding.background import local_background, radial_background
from mosflm_py.spotfinding.candidates import Candidates, find_candidates
from mosflm_py.spotfinding.filters import (
    AUTO_MIN_SPOTS,
    anisotropy,
    autoresln_limit,
    choose_auto_threshold,
    raster_from_spot_size,
    separation_from_spot_size,
    too_close,
)
from mosflm_py.spotfinding.mask import build_mask, on_ice_ring, resolution_at
from mosflm_py.spotfinding.types import (
    FLAG_NEAR_INACTIVE,
    FLAG_OVERLOADED,
    FLAG_SPLIT,
    FindSpotsReport,
    SpotFindParams,
    SpotList,
)

REJECT_REASONS = (
    "too_many_peaks", "too_few_pixels", "inactive_pixels", "outside_radius", "resolution",
    "ice", "too_small_x", "too_large_x", "too_small_y", "too_large_y", "anisotropic",
    "too_weak_rms", "too_close", "autoresln",
)


def find_spots(
    frame: np.ndarray,
    det: Detector,
    wavelength: float,
    params: SpotFindParams = SpotFindParams(),  # noqa: B008 - frozen dataclass
    image: int = 1,
    phi: float | tuple[float, float] = 0.0,
    d_map: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[SpotList, FindSpotsReport]:
    """Find the spots on one image.

    Parameters
    ----------
    frame : ndarray
        Image ``data[slow, fast]`` (counts).
    det : Detector
        The detector model prediction uses (BEAM, DISTANCE, pixel sizes, two-theta, OMEGA,
        TILT/TWIST ...): search radii, resolution limits and ice rings are computed on it.  Its
        image size is taken from ``frame``.
    wavelength : float
        Wavelength (Angstrom).
    params : SpotFindParams
        FINDSPOTS options (with the gain and read noise).
    image : int
        Image number recorded with the spots.
    phi : float or (start, end)
        Spindle angle (deg) of the spots; a range gives its centre.
    d_map : ndarray, optional
        Per-pixel d-spacing (Angstrom) overriding the detector model's.
    mask : ndarray of bool, optional
        Extra active-pixel mask (True = usable), combined with the one built from ``params``.

    Returns
    -------
    (SpotList, FindSpotsReport)
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise BadData(f"an image must be 2-D (got shape {frame.shape})")
    _validate(params, wavelength)
    if (det.nslow, det.nfast) != frame.shape:
        det = det.replace(nslow=frame.shape[0], nfast=frame.shape[1])
    phi_c = 0.5 * (phi[0] + phi[1]) if isinstance(phi, tuple | list) else float(phi)
    active = build_mask(frame.shape, det.pixel_slow, det.pixel_fast, params.nullpix, frame,
                        backstop=params.backstop, excludes=params.excludes,
                        quadrilaterals=params.quadrilaterals)
    if mask is not None:
        if mask.shape != frame.shape:
            raise BadData(f"mask shape {mask.shape} does not match the image {frame.shape}")
        active &= mask.astype(bool)
    data = np.ascontiguousarray(frame, dtype=np.float32)
    act = active.view(np.uint8)
    bg_use = (active & (data < params.overload)).view(np.uint8)
    if params.background == "radial":
        # about the direct beam on the (swung) detector plane
        bx, by = det.beam_hit_mm() or (det.beam_x, det.beam_y)
        bg, _ = radial_background(data, bg_use, bx / det.pixel_slow, by / det.pixel_fast)
    else:
        bg = local_background(data, bg_use, params.box, params.gain, params.read_noise)
    sub = bg[::4, ::4][active[::4, ::4]]  # report value only: a 1-in-16 sample is plenty
    sub = sub[np.isfinite(sub)]
    bg_mean = float(sub.mean()) if sub.size else 0.0

    auto = isinstance(params.threshold, str)
    t = 5.0 if auto else float(params.threshold)
    spots, rep = _find_at(data, act, bg, det, wavelength, params, t, image, phi_c, d_map)
    if auto and len(spots):
        t_auto = choose_auto_threshold(_peak_z(spots, params))
        if t_auto != t:
            s2, r2 = _find_at(data, act, bg, det, wavelength, params, t_auto, image, phi_c,
                              d_map)
            if len(s2) >= max(AUTO_MIN_SPOTS, params.min_spots):
                spots, rep = s2, r2
    warnings = list(rep.warnings)
    if len(spots) < params.min_spots:
        warnings.append(f"only {len(spots)} spots found on image {image} "
                        f"(at least {params.min_spots} wanted); try a lower THRESHOLD")
    return spots, _replace(rep, background_mean=bg_mean, warnings=warnings)


def _peak_z(spots: SpotList, params: SpotFindParams) -> np.ndarray:
    var = params.gain * np.maximum(spots.background, params.gain) + params.read_noise**2
    return (spots.peak - spots.background) / np.sqrt(var)


def _find_at(data, act, bg, det, wavelength, params, t, image, phi_c, d_map):
    c = find_candidates(data, act, bg, params.gain, params.read_noise, t, params.overload,
                        split=params.split, split_sep=params.split_sep,
                        split_dip=params.split_dip)
    return _filter(c, det, wavelength, params, t, image, phi_c, d_map)


def _filter(c: Candidates, det: Detector, wavelength: float, params: SpotFindParams, t: float,
            image: int, phi_c: float, d_map) -> tuple[SpotList, FindSpotsReport]:
    n = len(c)
    x_mm = c.x_px * det.pixel_slow
    y_mm = c.y_px * det.pixel_fast
    r_mm = det.search_radius(x_mm, y_mm)
    d = resolution_at(x_mm, y_mm, det, wavelength, d_map) if n else np.zeros(0)
    r_in = det.inscribed_radius()
    rmin = 0.05 * r_in if params.rmin is None else abs(params.rmin)
    if params.rmax is not None:
        rmax = abs(params.rmax)
    else:
        # swung detector with the beam off the panel: the whole detector
        rmax = 0.95 * r_in if r_in > 0 else np.inf
    reason = np.full(n, -1, np.int64)

    def reject(code: str, bad: np.ndarray) -> None:
        k = REJECT_REASONS.index(code)
        reason[(reason < 0) & bad] = k

    reject("too_many_peaks", c.npeak > params.maxpeak)
    reject("too_few_pixels", c.n_pixels < params.minpix)
    if params.reject_inactive:
        reject("inactive_pixels", c.touches_inactive)
    reject("outside_radius", (r_mm < rmin) | (r_mm > rmax))
    if params.d_min is not None:
        reject("resolution", d < params.d_min)
    if params.d_max is not None:
        reject("resolution", d > params.d_max)
    if params.ice and n:
        reject("ice", on_ice_ring(d, params.ice_width))
    ok = reason < 0
    med_x = float(np.median(c.size_x[ok])) if ok.any() else 0.0
    med_y = float(np.median(c.size_y[ok])) if ok.any() else 0.0
    if ok.any():
        reject("too_small_x", c.size_x < params.min_size_x * med_x)
        reject("too_large_x", c.size_x > params.max_size_x * med_x)
        reject("too_small_y", c.size_y < params.min_size_y * med_y)
        reject("too_large_y", c.size_y > params.max_size_y * med_y)
    reject("anisotropic", anisotropy(c.mss, c.mff, c.msf) > params.anisomax)
    reject("too_weak_rms", c.rms_significance < params.rmsfactor)
    if params.separation is not None:
        ok = reason < 0
        close = np.zeros(n, bool)
        close[ok] = too_close(x_mm[ok], y_mm[ok], *params.separation)
        reject("too_close", close)
    d_limit = None
    if params.autoresln:
        ok = reason < 0
        d_limit = autoresln_limit(d[ok])
        if d_limit is not None:
            reject("autoresln", d < d_limit)
    keep = reason < 0
    counts = np.bincount(reason[~keep], minlength=len(REJECT_REASONS)) if n else \
        np.zeros(len(REJECT_REASONS), np.int64)
    rejected = {k: int(v) for k, v in zip(REJECT_REASONS, counts)}

    flags = np.zeros(n, np.int32)
    flags[c.n_overloaded > 0] |= FLAG_OVERLOADED
    flags[c.touches_inactive] |= FLAG_NEAR_INACTIVE
    flags[c.split] |= FLAG_SPLIT
    k = np.flatnonzero(keep)
    spots = SpotList(
        x_mm=x_mm[k], y_mm=y_mm[k], x_px=c.x_px[k], y_px=c.y_px[k],
        intensity=c.intensity[k], sigma=np.sqrt(c.variance[k]),
        size_x=c.size_x[k], size_y=c.size_y[k], n_pixels=c.n_pixels[k], peak=c.peak[k],
        background=c.background[k], d_spacing=d[k], flags=flags[k],
        image=np.full(len(k), image, np.int32), phi=np.full(len(k), phi_c),
    )
    rejected["overloaded"] = int(np.count_nonzero(flags[k] & FLAG_OVERLOADED))
    mx = float(np.median(spots.size_x)) if len(spots) else 0.0
    my = float(np.median(spots.size_y)) if len(spots) else 0.0
    report = FindSpotsReport(
        image=image, n_found=len(spots), n_regions=c.n_regions, rejected=rejected,
        n_split=int(np.count_nonzero(flags[k] & FLAG_SPLIT)),
        n_overloaded=rejected["overloaded"], median_size_x=mx, median_size_y=my, threshold=t,
        rmin=float(rmin), rmax=float(rmax),
        d_min_spots=float(spots.d_spacing.min()) if len(spots) else float("inf"),
        d_limit=d_limit,
        separation=separation_from_spot_size(mx, my, det.pixel_slow, det.pixel_fast)
        if len(spots) else (0.0, 0.0),
        raster=raster_from_spot_size(mx, my) if len(spots) else (0, 0, 0, 0, 0),
    )
    return spots, report


def find_spots_many(
    frames: Sequence[np.ndarray],
    det: Detector,
    wavelength: float,
    params: SpotFindParams = SpotFindParams(),  # noqa: B008 - frozen dataclass
    phis: Sequence[float | tuple[float, float]] | None = None,
    images: Sequence[int] | None = None,
    d_map: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    n_threads: int = 1,
) -> tuple[SpotList, list[FindSpotsReport]]:
    """Find spots on several images and join them into one list (image numbers kept).

    ``phis`` gives each image's φ (or φ range); ``images`` their numbers (default 1..N).
    ``n_threads`` > 1 processes images concurrently (the kernels release the GIL) when numba's
    threading layer allows concurrent calls (omp, tbb); otherwise images run one after another.
    """
    n = len(frames)
    phis = [0.0] * n if phis is None else list(phis)
    images = list(range(1, n + 1)) if images is None else list(images)
    if len(phis) != n or len(images) != n:
        raise BadData(f"{n} images but {len(phis)} phi values and {len(images)} numbers")

    def one(k: int) -> tuple[SpotList, FindSpotsReport]:
        return find_spots(frames[k], det, wavelength, params, images[k], phis[k], d_map, mask)

    if n_threads > 1 and n > 1 and concurrent_calls_safe():
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            results = list(pool.map(one, range(n)))
    else:
        results = [one(k) for k in range(n)]
    return SpotList.concatenate([r[0] for r in results]), [r[1] for r in results]


def _validate(params: SpotFindParams, wavelength: float) -> None:
    if isinstance(params.threshold, str):
        if params.threshold.lower() != "auto":
            raise BadParameter(f"FINDSPOTS THRESHOLD must be a number or AUTO "
                               f"(got {params.threshold!r})")
    elif not params.threshold > 0:
        raise BadParameter(f"FINDSPOTS THRESHOLD must be positive (got {params.threshold})")
    if params.background not in ("local", "radial"):
        raise BadParameter(f"spot-finding background must be LOCAL or RADIAL "
                           f"(got {params.background!r})")
    if params.minpix < 1:
        raise BadParameter(f"FINDSPOTS MINPIX must be at least 1 (got {params.minpix})")
    if params.gain <= 0:
        raise BadParameter(f"GAIN must be positive (got {params.gain})")
    if not wavelength > 0:
        raise BadParameter(f"WAVELENGTH must be positive (got {wavelength})")
    if params.separation is not None and min(params.separation) < 0:
        raise BadParameter("SEPARATION must not be negative")


def _replace(rep: FindSpotsReport, **kw) -> FindSpotsReport:
    return dataclasses.replace(rep, **kw)
