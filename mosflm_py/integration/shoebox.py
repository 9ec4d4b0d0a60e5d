"""Shoebox extraction, background planes and summation intensities for one image.

Validating wrappers around :mod:`mosflm_py.kernels.integrate_shoebox` and
:mod:`mosflm_py.kernels.integrate_background`.  Boxes are stored flat: reflection ``k`` owns
``values[offsets[k]:offsets[k+1]]`` (row-major (NX, NY) box, NX along slow), and ``codes`` hold
``region | status << 2`` (region 0 outside, 1 peak, 2 background; status 0 ok, 1 neighbour peak,
2 overloaded, 3 inactive, 4 off the image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError
from mosflm_py.integration.box import PEAK
from mosflm_py.integration.params import IntegrationParams
from mosflm_py.kernels import integrate_background as _bg
from mosflm_py.kernels import integrate_shoebox as _sb

STATUS_OK, STATUS_NEIGHBOUR, STATUS_OVERLOAD, STATUS_INACTIVE, STATUS_OFFIMAGE = 0, 1, 2, 3, 4
_FRAME_DTYPES = (np.int32, np.uint16, np.uint32, np.int16, np.float32, np.float64, np.int64)


@dataclass(frozen=True)
class Shoeboxes:
    """Flat pixel data of all boxes on one image (values in photons)."""

    nx: int
    ny: int
    ci: np.ndarray  # (N,) int64 centre pixel, slow
    cj: np.ndarray  # (N,) int64 centre pixel, fast
    fx: np.ndarray  # (N,) predicted centre minus centre-pixel centre, slow (px, [-0.5, 0.5))
    fy: np.ndarray  # (N,) same, fast
    mask_id: np.ndarray  # (N,) int64 index into masks
    values: np.ndarray  # (N*NX*NY,) float64 photons
    codes: np.ndarray  # (N*NX*NY,) int8
    offsets: np.ndarray  # (N+1,) int64

    def __len__(self) -> int:
        return int(self.ci.size)

    def box(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, codes) of reflection k as (NX, NY) arrays."""
        sl = slice(int(self.offsets[k]), int(self.offsets[k + 1]))
        return self.values[sl].reshape(self.nx, self.ny), self.codes[sl].reshape(self.nx, self.ny)


@dataclass(frozen=True)
class BoxMeasurement:
    """Background plane and summation results per box (photons)."""

    plane: np.ndarray  # (N, 12): a (per px slow), b (per px fast), c, inverse normal matrix (9)
    n_bg: np.ndarray  # (N,) background pixels used
    bgratio: np.ndarray
    gradient: np.ndarray  # |grad| / max(c, 1 photon)
    sigma_b2: np.ndarray  # Poisson variance of one background pixel (= max(c, 0))
    i_sum: np.ndarray  # over usable peak pixels
    var_sum: np.ndarray
    counts: np.ndarray  # (N, 5): ok peak, peak-overlap, overloaded peak, edge peak, masked bg


def _bias_factor(bgfrac: float) -> float:
    """Bias correction factor f for the lowest-``bgfrac`` plane (as DIALS' MOSFLM rejector)."""
    for limit, f in ((0.999, 0.0), (0.9, 0.05), (0.7, 0.2), (0.5, 0.4), (0.3, 0.6)):
        if bgfrac >= limit:
            return f
    return 0.8


def centre_pixels(x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre pixel (slow, fast) containing each position and sub-pixel offsets from its centre."""
    x = np.asarray(x_px, np.float64)
    y = np.asarray(y_px, np.float64)
    ci, cj = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    return ci, cj, x - (ci + 0.5), y - (cj + 0.5)


def extract_shoeboxes(
    frame: np.ndarray,
    x_px: np.ndarray,
    y_px: np.ndarray,
    masks: np.ndarray,
    params: IntegrationParams,
    mask_id: np.ndarray | None = None,
) -> Shoeboxes:
    """Classify and copy the box pixels of every predicted reflection on one image.

    Parameters
    ----------
    frame : ndarray (n_slow, n_fast)
        Raw image (ADU).
    x_px, y_px : ndarray (N,)
        Predicted positions in continuous pixel coordinates (slow, fast; pixel centres at i+0.5).
    masks : ndarray (M, NX, NY) int8
        OUTSIDE / PEAK / BACKGROUND codes of each mask (e.g. one per standard-profile region).
    params : IntegrationParams
        GAIN, ADCOFFSET, NULLPIX, OVERLOAD and SEPARATION (TRIM, NOVERLAP).
    mask_id : ndarray (N,), optional
        Mask used by each reflection (default 0).
    """
    frame = np.asarray(frame)
    if frame.ndim != 2:
        raise IntegrationError(f"image must be 2-D, got shape {frame.shape}")
    if frame.dtype not in _FRAME_DTYPES:
        frame = frame.astype(np.float64)
    frame = np.ascontiguousarray(frame)
    masks = np.ascontiguousarray(masks, dtype=np.int8)
    if masks.ndim != 3 or masks.shape[1] % 2 == 0 or masks.shape[2] % 2 == 0:
        raise IntegrationError("masks must have shape (M, NX, NY) with odd NX, NY")
    x_px, y_px = np.asarray(x_px, np.float64), np.asarray(y_px, np.float64)
    if x_px.shape != y_px.shape or x_px.ndim != 1:
        raise IntegrationError("x_px and y_px must be 1-D arrays of equal length")
    if not (np.all(np.isfinite(x_px)) and np.all(np.isfinite(y_px))):
        raise IntegrationError("predicted positions contain NaN or infinity")
    n = x_px.size
    mask_id = (np.zeros(n, np.int64) if mask_id is None
               else np.ascontiguousarray(mask_id, dtype=np.int64))
    if mask_id.shape != (n,) or (n and (mask_id.min() < 0 or mask_id.max() >= masks.shape[0])):
        raise IntegrationError("mask_id must give a valid mask for every reflection")
    ci, cj, fx, fy = centre_pixels(x_px, y_px)
    _, nx, ny = masks.shape
    peak = masks == PEAK
    trim = params.separation.trim
    if trim:
        hx, hy = nx // 2, ny // 2
        dx = np.abs(np.arange(-hx, hx + 1))[:, None]
        dy = np.abs(np.arange(-hy, hy + 1))[None, :]
        px = np.array([np.abs(dx)[m.any(axis=1)].max(initial=0) for m in peak])
        py = np.array([np.abs(dy)[:, m.any(axis=0)].max(initial=0) for m in peak])
        shrunk = ((dx[None] <= (px - trim)[:, None, None])
                  & (dy[None] <= (py - trim)[:, None, None]))
        peak = peak & shrunk
    peak_u8 = np.ascontiguousarray(peak, dtype=np.uint8)
    overlap = np.zeros(frame.shape, np.int16)
    _sb.paint_peaks(frame.shape[0], frame.shape[1], ci, cj, mask_id, peak_u8, overlap)
    values = np.empty(n * nx * ny, np.float64)
    codes = np.empty(n * nx * ny, np.int8)
    _sb.extract_boxes(frame, ci, cj, mask_id, masks, peak_u8, overlap,
                      int(params.separation.noverlap), float(params.gain),
                      float(params.adcoffset), float(params.nullpix), float(params.overload),
                      values, codes)
    offsets = np.arange(n + 1, dtype=np.int64) * (nx * ny)
    return Shoeboxes(nx, ny, ci, cj, fx, fy, mask_id, values, codes, offsets)


def measure_boxes(boxes: Shoeboxes, params: IntegrationParams) -> BoxMeasurement:
    """Background plane with outlier rejection and summation intensity for every box.

    Background: Leslie (1999); lowest BGFRAC pixels, bias correction, BGSIG rejection, refit.
    Summation: I = sum_peak (rho - b); var = sum_peak rho + sigma_b^2 s^T (G^T G)^-1 s, with s the
    sum of (dx, dy, 1) over the peak pixels (the m B (1 + m/n) term for a flat plane).
    """
    n = len(boxes)
    bgp = params.background
    plane = np.zeros((n, 12))
    n_bg = np.zeros(n, np.int64)
    bgratio, gradient, sigma_b2 = np.zeros(n), np.zeros(n), np.zeros(n)
    i_sum, var_sum = np.zeros(n), np.zeros(n)
    counts = np.zeros((n, 5), np.int64)
    target = int(round(bgp.reclevel * params.rejection.nbgmin))
    _bg.background_and_sum(boxes.values, boxes.codes, boxes.nx, boxes.ny, float(bgp.bgfrac),
                           _bias_factor(bgp.bgfrac), float(bgp.bgsig), bool(bgp.recover), target,
                           plane, n_bg, bgratio, gradient, sigma_b2, i_sum, var_sum, counts)
    return BoxMeasurement(plane, n_bg, bgratio, gradient, sigma_b2, i_sum, var_sum, counts)
