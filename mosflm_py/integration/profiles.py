"""Standard profiles: detector regions, accumulation over a BLOCK, optimisation, averaging.

MOSFLM 2D profile fitting (Leslie 1999, Acta Cryst. D55, 1696-1702; Leslie 2006, Acta D62, 48):
background-subtracted boxes of strong fully recorded reflections are summed per detector region
(5 x 5 grid minus the corners = 21 regions when data extend beyond 2.5 A, else 3 x 3;
XLINES/YLINES override) on a sub-pixel grid (PROFILE ``subpixel`` bins per pixel), each pixel
placed at its offset from the predicted position (INTERPOLATE), so that sharp spots are
re-centred without the broadening of interpolating twice between whole pixels (see
:mod:`mosflm_py.kernels.integrate_profile`).  Each profile bin is the ratio sum(Delta) / sum(I)
over the contributors that reached it; bins no contributor reached are filled from their
neighbours.  The whole-pixel profile of a centred spot (optimisation, RMSBG, maps) is the
sub-pixel profile sampled at pixel centres.  Regions with fewer than NREF contributors or a
background rms above RMSBG are replaced by a contributor-weighted average of their neighbours.
A reflection's profile is the bilinear (VARIABLE) blend of the profiles of the region centres
around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mosflm_py.errors import IntegrationError
from mosflm_py.integration.box import (
    BACKGROUND,
    PEAK,
    Raster,
    gaussian_spot,
    nc_for_peak,
    optimise_raster,
    spot_covariance,
)
from mosflm_py.integration.params import IntegrationParams
from mosflm_py.integration.predictions import Targets
from mosflm_py.integration.shoebox import extract_shoeboxes, measure_boxes
from mosflm_py.kernels import integrate_profile as _kp


@dataclass(frozen=True)
class RegionGrid:
    """Detector regions: boundaries along slow (xlines) and fast (ylines), pixels; valid cells."""

    xlines: np.ndarray
    ylines: np.ndarray
    valid: np.ndarray  # (gx, gy) bool

    @property
    def shape(self) -> tuple[int, int]:
        return (self.xlines.size - 1, self.ylines.size - 1)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        cx = 0.5 * (self.xlines[1:] + self.xlines[:-1])
        return cx, 0.5 * (self.ylines[1:] + self.ylines[:-1])

    def central_region(self) -> int:
        gx, gy = self.shape
        return (gx // 2) * gy + gy // 2


def region_grid(
    frame_shape: tuple[int, int],
    high_resolution: bool = True,
    circular: bool = False,
    xlines: Sequence[float] | None = None,
    ylines: Sequence[float] | None = None,
) -> RegionGrid:
    """Standard-profile regions: 5 x 5 minus corners (21) when ``high_resolution`` (data beyond
    2.5 A) else 3 x 3 (no corners on circular detectors); XLINES / YLINES (pixels) override."""
    n = 5 if high_resolution else 3
    xl = (np.linspace(0.0, frame_shape[0], n + 1) if xlines is None
          else np.asarray(sorted(xlines), np.float64))
    yl = (np.linspace(0.0, frame_shape[1], n + 1) if ylines is None
          else np.asarray(sorted(ylines), np.float64))
    if xl.size < 2 or yl.size < 2:
        raise IntegrationError("PROFILE XLINES / YLINES need at least two boundaries each")
    valid = np.ones((xl.size - 1, yl.size - 1), bool)
    if (xlines is None and ylines is None) and (n == 5 or circular):
        valid[0, 0] = valid[0, -1] = valid[-1, 0] = valid[-1, -1] = False
    return RegionGrid(xl, yl, valid)


def blend_weights(grid: RegionGrid, x_px: np.ndarray, y_px: np.ndarray,
                  variable: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Profile indices (N, 4) and weights (N, 4) of each reflection's blended profile.

    VARIABLE: bilinear weights between the four surrounding region centres, invalid regions
    dropped and the rest renormalised; otherwise weight 1 on the containing (or nearest valid)
    region.
    """
    gx, gy = grid.shape
    x, y = np.asarray(x_px, np.float64), np.asarray(y_px, np.float64)
    n = x.size
    cx, cy = grid.centres()
    flat_valid = grid.valid.reshape(-1)
    # nearest valid region (fallback and non-variable choice)
    ix = np.clip(np.searchsorted(grid.xlines, x, side="right") - 1, 0, gx - 1)
    iy = np.clip(np.searchsorted(grid.ylines, y, side="right") - 1, 0, gy - 1)
    vcx = np.repeat(cx, gy)[flat_valid]
    vcy = np.tile(cy, gx)[flat_valid]
    vidx = np.flatnonzero(flat_valid)
    nearest = vidx[np.argmin((x[:, None] - vcx) ** 2 + (y[:, None] - vcy) ** 2, axis=1)]
    own = ix * gy + iy
    own = np.where(flat_valid[own], own, nearest)
    idx = np.zeros((n, 4), np.int64)
    w = np.zeros((n, 4))
    if not variable or (gx == 1 and gy == 1):
        idx[:, 0], w[:, 0] = own, 1.0
        return idx, w

    def frac(c, v, g):
        if g == 1:
            return np.zeros(v.size, np.int64), np.zeros(v.size)
        u = np.interp(v, c, np.arange(g, dtype=np.float64))
        i0 = np.clip(np.floor(u).astype(np.int64), 0, g - 2)
        return i0, np.clip(u - i0, 0.0, 1.0)

    i0, tx = frac(cx, x, gx)
    j0, ty = frac(cy, y, gy)
    corners = [(0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)),
               (0, 1, (1 - tx) * ty), (1, 1, tx * ty)]
    for q, (da, db, wq) in enumerate(corners):
        a = np.minimum(i0 + da, gx - 1)
        b = np.minimum(j0 + db, gy - 1)
        r = a * gy + b
        idx[:, q] = r
        w[:, q] = np.where(flat_valid[r], wq, 0.0)
    tot = w.sum(axis=1)
    bad = tot <= 1e-12
    w[~bad] /= tot[~bad, None]
    idx[bad, 0], w[bad, 0] = nearest[bad], 1.0
    w[bad, 1:] = 0.0
    return idx, w


@dataclass(frozen=True)
class StandardProfiles:
    """Standard profiles of one BLOCK (picklable).

    profiles : (R, NX, NY), each normalised to sum 1 over its region's peak (R = gx*gy cells);
        a centred spot (the sub-pixel profile ``fine`` sampled at pixel centres).
    masks : (R, NX, NY) int8 OUTSIDE / PEAK / BACKGROUND per region (optimised).
    rasters : optimised RASTER per region.  raw : profiles before averaging (unnormalised ratio).
    n_contrib, rmsbg, corrln, averaged, fraction_outside : per region.  usable : any profile.
    """

    raster: Raster
    grid: RegionGrid
    profiles: np.ndarray
    masks: np.ndarray
    rasters: tuple[Raster, ...]
    raw: np.ndarray
    n_contrib: np.ndarray
    rmsbg: np.ndarray
    corrln: np.ndarray
    averaged: np.ndarray
    fraction_outside: np.ndarray
    usable: bool
    warnings: tuple[str, ...]
    fine: np.ndarray | None = None  # (R, NX*k, NY*k) sub-pixel profiles, same scale as profiles
    subpixel: int = 1
    overlap_fraction: float = 0.0  # share of the block's predictions whose peak overlaps another
    spot_cov: np.ndarray | None = None  # (R, 2, 2) spot covariance per region (px²), NaN: none

    def fit_profiles(self) -> tuple[np.ndarray, int]:
        """Profiles used by the fit and their sub-pixel factor (fine grid, else whole pixels)."""
        if self.fine is None:
            return self.profiles, 1
        return self.fine, self.subpixel

    def report(self) -> list[dict]:
        """Per valid region: box, NX NY, RMSBG, contributors, CORRLN, averaged, character map."""
        gx, gy = self.grid.shape
        rows = []
        for r in np.flatnonzero(self.grid.valid.reshape(-1)):
            rows.append({
                "region": int(r) + 1, "ix": int(r // gy) + 1, "iy": int(r % gy) + 1,
                "raster": self.rasters[r].as_tuple(), "nx": self.raster.nxs,
                "ny": self.raster.nys, "rmsbg": float(self.rmsbg[r]),
                "n_contrib": int(self.n_contrib[r]), "corrln": float(self.corrln[r]),
                "averaged": bool(self.averaged[r]),
                "map": profile_map(self.profiles[r], self.masks[r]),
            })
        return rows


def profile_map(profile: np.ndarray, mask: np.ndarray, masked: np.ndarray | None = None
                ) -> list[str]:
    """MOSFLM-style character map: one line per fast-direction row... values scaled 0-9.

    Lines run along the fast direction (one line per slow row X); peak pixels show a digit
    0-9 (value / max * 9), background pixels a digit in lower contrast ('.' when < 0.5),
    pixels outside the box a blank and masked (overlap) pixels '*'.
    """
    p = np.asarray(profile, np.float64)
    top = p[mask != 0].max(initial=0.0)
    scale = 9.0 / top if top > 0 else 0.0
    lines = []
    for a in range(p.shape[0]):
        chars = []
        for b in range(p.shape[1]):
            if masked is not None and masked[a, b]:
                chars.append("*")
            elif mask[a, b] == 0:
                chars.append(" ")
            else:
                v = int(round(max(p[a, b], 0.0) * scale))
                chars.append("." if (mask[a, b] == BACKGROUND and v == 0) else str(min(v, 9)))
        lines.append("".join(chars).rstrip())
    return lines


def _rmsbg(p: np.ndarray, mask: np.ndarray) -> float:
    top = p[mask == PEAK].max(initial=0.0)
    bgp = p[mask == BACKGROUND]
    if top <= 0 or bgp.size == 0:
        return np.inf
    return float(np.sqrt(np.mean((bgp * 255.0 / top) ** 2)))


BOX_GROWTH = 1.3
"""Factor on the half-widths of the box when a well-determined profile does not fit in it on
its own pixels (MOSFLM's test) but its size is not measured by the model."""
MAX_BOX_GROWTHS = 3
"""At most this many enlargements of the automatic box per block (each re-measures the spots
in the larger box, whose rim no longer holds their tails, and sizes the box again)."""
MAX_BOX_FACTOR = 2.0
"""The enlarged box's half-widths are at most twice those of the box first set (a noisy size
estimate of weak high-resolution regions cannot make the box absurd)."""
MAX_EXTRA_OVERLAP = 0.05
"""An enlargement is not kept when it makes this much larger a share of the block's predicted
reflections overlap a neighbour (they would be rejected)."""


def peak_half_widths(cov: np.ndarray, tolerance: float, boundary: int) -> tuple[int, int]:
    """Half-widths (slow, fast; pixels) of the smallest octagonal peak that holds all but
    ``tolerance`` of a Gaussian spot of covariance ``cov`` (pixels²)."""
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    hx, hy = (int(np.ceil(4.0 * v)) + 1 for v in sd)
    rim = max(int(boundary), 1)
    big = Raster(2 * (hx + rim) + 1, 2 * (hy + rim) + 1, hx + hy + 2 * rim, rim, rim)
    new, _ = optimise_raster(gaussian_spot(cov, big), big, tolerance, rim, fixbox=True,
                             total=1.0)
    return new.hx - new.nrx, new.hy - new.nry


def box_needed(profiles: StandardProfiles, params: IntegrationParams,
               first: Raster | None = None) -> tuple[int, int] | None:
    """Box half-widths (slow, fast) that the measured spots need, or None when they fit.

    A region with at least NREF contributors whose own spots (the adaptive second moments of
    the region's standard profile before any averaging, :func:`optimise_peak`) need a peak
    that, with a BOUNDARY rim, is larger than the box: the spots there are larger than the box
    was made for (high-angle spots on a flat detector are stretched by 1/cos of the incidence
    angle and broadened by the crystal's domain size, mosaicity and dispersion, and by the
    detector's point spread), so their tails lie in the background rim, the background is
    overestimated and the intensity underestimated.  The largest such peak plus the rim is
    returned.  A well-determined (not averaged) profile with more than its TOLERANCE outside
    the largest peak the box allows, measured on its own pixels (MOSFLM's test), asks for
    :data:`BOX_GROWTH` times the box.  At most :data:`MAX_BOX_FACTOR` times the half-widths
    of ``first`` (the box first set; default the profiles' own box).
    """
    pp = params.profile
    if not (pp.optimise and profiles.usable and profiles.spot_cov is not None):
        return None
    raster = profiles.raster
    centre = profiles.grid.central_region()
    valid = profiles.grid.valid.reshape(-1)
    rim = max(int(pp.boundary), 1)
    need_x, need_y = raster.hx, raster.hy
    for r in np.flatnonzero(valid & (profiles.n_contrib >= pp.nref)):
        tol = pp.tolerance[0] if r == centre else pp.tolerance[1]
        cov = profiles.spot_cov[r]
        if not np.all(np.isfinite(cov)):
            continue
        px, py = peak_half_widths(cov, tol, rim)
        need_x, need_y = max(need_x, px + rim), max(need_y, py + rim)
    # MOSFLM's own test on the pixels of well-determined (not averaged) profiles: more than
    # TOLERANCE outside the largest peak the box allows
    for r in np.flatnonzero(valid & ~profiles.averaged & (profiles.n_contrib >= pp.nref)):
        tol = pp.tolerance[0] if r == centre else pp.tolerance[1]
        out = profiles.fraction_outside[r]
        if np.isfinite(out) and out > tol + 1e-9:
            need_x = max(need_x, int(np.ceil(raster.hx * BOX_GROWTH)))
            need_y = max(need_y, int(np.ceil(raster.hy * BOX_GROWTH)))
    first = raster if first is None else first
    need_x = min(need_x, max(int(np.floor(MAX_BOX_FACTOR * first.hx)), raster.hx))
    need_y = min(need_y, max(int(np.floor(MAX_BOX_FACTOR * first.hy)), raster.hy))
    if need_x <= raster.hx and need_y <= raster.hy:
        return None
    return need_x, need_y


def enlarged_raster(raster: Raster, hx: int, hy: int) -> Raster:
    """The measurement box with half-widths ``hx``, ``hy`` around the same peak.

    Only the background rims grow (``NRX``, ``NRY`` take up the extra width); the peak region
    and hence which spots overlap a neighbour's peak while the profiles are formed stay the
    same, so the larger box keeps its contributors.  The tails that lay in the old rim are then
    part of the standard profile, and PROFILE OPTIMISE draws each region's peak from it.
    """
    px, py = raster.hx - raster.nrx, raster.hy - raster.nry
    hx, hy = max(int(hx), raster.hx), max(int(hy), raster.hy)
    nrx, nry = hx - px, hy - py
    pc = int(np.floor(raster.nc - np.sqrt(2.0) * 0.5 * (raster.nrx + raster.nry) + 1e-9))
    return Raster(2 * hx + 1, 2 * hy + 1, nc_for_peak(pc, nrx, nry), nrx, nry)


def accumulate_profiles(
    block: Sequence[tuple[np.ndarray, Targets]],
    params: IntegrationParams,
    high_resolution: bool = True,
    circular: bool = False,
) -> StandardProfiles:
    """Standard profiles from the images of one BLOCK.

    With PROFILE ``grow_box`` (an automatically set box), when the spots of a well-determined
    region do not fit in the box with a BOUNDARY rim (:func:`box_needed`) the box is enlarged
    to the size they need (:func:`enlarged_raster`) and the profiles formed again, at most
    :data:`MAX_BOX_GROWTHS` times; the returned profiles carry the box they were made with
    (``raster``), which integration then uses, and each region's peak is drawn for its own
    spots (:func:`optimise_peak`).  MOSFLM sets one box from the median spot size of the
    strong (low-resolution) spots; spots grow with resolution (on a small-cell crystal with
    data to high angles the outer spots are two or three times larger; on a CCD with high
    mosaicity the 1.5 Å spots are twice the size of the 4 Å ones), and a fixed box loses their
    tails (a quarter of the intensity at the edge of the development set's P1 images).
    """
    prof = _accumulate_once(block, params, high_resolution, circular)
    first = params.raster
    for _ in range(MAX_BOX_GROWTHS):
        need = box_needed(prof, params, first) if params.profile.grow_box else None
        if need is None:
            break
        params = replace(params, raster=enlarged_raster(params.raster, *need))
        bigger = _accumulate_once(block, params, high_resolution, circular)
        # crowded images (high mosaicity, large cells): a box that makes more spots overlap
        # would lose whole reflections (and parts of partials) to buy back a few per cent of
        # every spot's tail, a loss common to all reflections that scaling absorbs
        if bigger.overlap_fraction > prof.overlap_fraction + MAX_EXTRA_OVERLAP:
            break
        prof = bigger
    return prof


def _accumulate_once(
    block: Sequence[tuple[np.ndarray, Targets]],
    params: IntegrationParams,
    high_resolution: bool = True,
    circular: bool = False,
) -> StandardProfiles:
    """Standard profiles from the images of one BLOCK with the box ``params.raster``.

    Parameters
    ----------
    block : sequence of (frame, Targets)
        Images of the block with their predicted reflections.
    params : IntegrationParams
        RASTER, PROFILE (ISDR, NREF, RMSBG, TOLERANCE, BOUNDARY, PARTIALS, XLINES/YLINES, ...).
    high_resolution : bool
        Data extend beyond 2.5 A (21 regions) or not (9 regions).
    circular : bool
        Circular detector (no corner regions).
    """
    if not block:
        raise IntegrationError("no images given to accumulate standard profiles")
    pp = params.profile
    raster = params.raster
    nx, ny = raster.nxs, raster.nys
    shape = np.asarray(block[0][0]).shape
    grid = region_grid(shape, high_resolution, circular, pp.xlines, pp.ylines)
    gx, gy = grid.shape
    nreg = gx * gy
    base_mask = raster.mask()
    per_image = []
    for frame, pred in block:
        boxes = extract_shoeboxes(frame, pred.x_px, pred.y_px, base_mask[None], params)
        meas = measure_boxes(boxes, params)
        clean = ((meas.counts[:, 1:4].sum(axis=1) == 0) & (meas.counts[:, 0] > 0)
                 & (meas.n_bg >= params.rejection.nbgmin))
        sig = np.sqrt(np.maximum(meas.var_sum, 1e-12))
        per_image.append((boxes, meas, pred, clean, meas.i_sum > pp.isdr * sig,
                          meas.i_sum > sig))
    strong_refl = _strong_over_block(per_image, pp.isdr)
    n_full = sum(int(np.count_nonzero(c & s & (p.fraction >= 0.999)))
                 for _, _, p, c, s, _ in per_image)
    use_partials = pp.partials if pp.partials is not None else n_full < pp.nref * grid.valid.sum()
    k = int(pp.subpixel) if pp.interpolate else 1
    sums = np.zeros((nreg, nx * k, ny * k))
    norms = np.zeros((nreg, nx * k, ny * k))
    count = np.zeros(nreg, np.int64)
    for (boxes, meas, pred, clean, strong, above1), pooled in zip(per_image, strong_refl):
        # fulls strong on their own; partial parts strong on their own (fraction >= 0.3) or,
        # on finely sliced weak images, parts (>= 1 sigma) of reflections whose parts added
        # over the block are strong (MOSFLM's fine-slicing logic: the block, not the image,
        # holds the strong reflections)
        part_ok = (strong & (pred.fraction >= 0.3)) | (pooled & above1)
        good = clean & ((strong & (pred.fraction >= 0.999)) | (use_partials & part_ok))
        sel = np.flatnonzero(good)
        if sel.size == 0:
            continue
        idx, _ = blend_weights(grid, pred.x_px[sel], pred.y_px[sel], variable=False)
        fx = boxes.fx[sel] if pp.interpolate else np.zeros(sel.size)
        fy = boxes.fy[sel] if pp.interpolate else np.zeros(sel.size)
        _kp.accumulate(boxes.values, boxes.codes, meas.plane, nx, ny, k, sel,
                       idx[:, 0].copy(), meas.i_sum[sel].copy(), np.ascontiguousarray(fx),
                       np.ascontiguousarray(fy), sums, norms, count)
    fine = fill_ratio(sums, norms)
    prof = finish_profiles(fine_to_pixels(fine, k), count, raster, grid, params, fine, k)
    n_pred = sum(len(p) for _, _, p, _, _, _ in per_image)
    n_over = sum(int(np.count_nonzero(m.counts[:, 1] > 0)) for _, m, _, _, _, _ in per_image)
    return replace(prof, overlap_fraction=n_over / max(n_pred, 1))


def _strong_over_block(per_image: list, isdr: float) -> list[np.ndarray]:
    """Per image, whether each reflection is stronger than ``isdr`` σ with its clean parts on
    all images of the block added (hkl as the key; a block spans far less than 180°)."""
    if not per_image:
        return []
    hkl = np.concatenate([p.hkl for _, _, p, _, _, _ in per_image]).astype(np.int64)
    if len(hkl) == 0:
        return [np.zeros(0, bool) for _ in per_image]
    clean = np.concatenate([c for _, _, _, c, _, _ in per_image])
    i_sum = np.concatenate([m.i_sum for _, m, _, _, _, _ in per_image])
    var = np.concatenate([m.var_sum for _, m, _, _, _, _ in per_image])
    _, inv = np.unique(hkl, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    tot = np.bincount(inv, np.where(clean, i_sum, 0.0))
    tvar = np.bincount(inv, np.where(clean, np.maximum(var, 0.0), 0.0))
    strong = (tot > isdr * np.sqrt(np.maximum(tvar, 1e-12)))[inv]
    own = np.concatenate([s for _, _, _, _, s, _ in per_image])
    unknown = ~hkl.any(axis=1)  # no Miller indices given: each part stands alone
    strong = np.where(unknown, own, strong)
    out, pos = [], 0
    for _, _, p, _, _, _ in per_image:
        out.append(strong[pos:pos + len(p)])
        pos += len(p)
    return out


def fill_ratio(sums: np.ndarray, norms: np.ndarray, rel: float = 0.05) -> np.ndarray:
    """Ratio ``sums / norms`` per sub-pixel bin; thin or empty bins from their neighbours.

    Bins whose norm is below ``rel`` times the region's median positive norm take the
    normalised-convolution estimate over their 3 x 3 neighbourhood (weights 1-2-1), repeated
    until every bin of a region that has any contributor is filled.

    Parameters
    ----------
    sums, norms : ndarray (R, NXf, NYf)
        Accumulated background-subtracted counts and contributor intensities.
    """
    from scipy.ndimage import correlate

    out = np.zeros_like(sums)
    kern = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    for r in range(sums.shape[0]):
        n = norms[r]
        if not (n > 0).any():
            continue
        thin = n < rel * np.median(n[n > 0])
        out[r] = np.where(thin, 0.0, sums[r] / np.where(thin, 1.0, n))
        s, w = sums[r].copy(), n.copy()
        for _ in range(max(sums.shape[1:])):
            if not thin.any():
                break
            s = correlate(s, kern, mode="constant")
            w = correlate(w, kern, mode="constant")
            ok = thin & (w > 1e-12 * n.max())
            out[r][ok] = s[ok] / w[ok]
            thin &= ~ok
    return out


def fine_to_pixels(fine: np.ndarray, k: int) -> np.ndarray:
    """Sub-pixel profiles (R, NX*k, NY*k) sampled at the pixel centres: (R, NX, NY)."""
    r, nfx, nfy = fine.shape
    blocks = fine.reshape(r, nfx // k, k, nfy // k, k)
    mid = slice((k - 1) // 2, k // 2 + 1)
    return blocks[:, :, mid, :, mid].mean(axis=(2, 4))


def optimise_peak(profile: np.ndarray, raster: Raster, tolerance: float, boundary: int
                  ) -> tuple[Raster, float, np.ndarray]:
    """PROFILE OPTIMISE for one standard profile: the peak region that holds all but
    ``tolerance`` of the spot, within the box and leaving a BOUNDARY rim (FIXBOX).

    First as MOSFLM, on the profile's own pixels (:func:`optimise_raster`).  When no peak meets
    the tolerance there, the peak is drawn on a model of the spot: a Gaussian
    (:func:`~mosflm_py.integration.box.gaussian_spot`, whose total is known) with the profile's
    adaptive second moments (:func:`~mosflm_py.integration.box.spot_covariance`).  On weak
    data the rim of a profile is noise (and a small pedestal from neighbours' tails) whose sum
    over hundreds of pixels is as large as the tolerance itself, so the fraction outside a peak
    measured on the pixels says more about the noise than about the spot, and the direct
    optimisation finds no peak at all; the moments are insensitive to it.  Spots grow with
    resolution (detector obliquity, mosaic spread and dispersion, point spread), so each region
    gets its own peak, never smaller than the box's own.  When the model spot does not fit
    either, the largest peak the box allows is used.  Returns the raster, the fraction of the
    profile outside its peak (measured on the pixels; above ``tolerance`` when the spot does
    not fit) and the spot's covariance (NaN if none), from which :func:`box_needed` sizes the
    box.
    """
    cov = spot_covariance(profile, raster)
    if cov is None:
        cov = np.full((2, 2), np.nan)
    direct, outside = optimise_raster(profile, raster, tolerance, boundary, fixbox=True)
    if outside <= tolerance or not np.all(np.isfinite(cov)):
        return direct, outside, cov  # MOSFLM's optimisation on the profile's own pixels
    # no peak holds the tolerance on the pixels (a spot larger than the box, or a profile
    # whose rim noise, clipped at 0, adds up to more than the tolerance): the model spot decides
    new, model_outside = optimise_raster(gaussian_spot(cov, raster), raster, tolerance,
                                         boundary, fixbox=True, total=1.0)
    if model_outside > tolerance:
        new = _largest_peak(raster, boundary)
    elif new.n_peak() < raster.n_peak():
        # the Gaussian has shorter tails than real spots (pixel-integrated, smeared by the
        # rotation): a model peak never shrinks the box's own peak, only grows it
        new = raster
    return new, outside, cov


def _largest_peak(raster: Raster, boundary: int) -> Raster:
    """The largest peak FIXBOX allows: rims of BOUNDARY (or the box's own if narrower)."""
    px = raster.hx - min(boundary, raster.nrx)
    py = raster.hy - min(boundary, raster.nry)
    nrx, nry = raster.hx - px, raster.hy - py
    return Raster(raster.nxs, raster.nys, nc_for_peak(px + py, nrx, nry), nrx, nry)


def finish_profiles(raw: np.ndarray, count: np.ndarray, raster: Raster, grid: RegionGrid,
                    params: IntegrationParams, fine: np.ndarray | None = None,
                    subpixel: int = 1) -> StandardProfiles:
    """Optimise masks, average poor regions, normalise and compute CORRLN (see module doc).

    ``fine`` (R, NX*subpixel, NY*subpixel), the sub-pixel profiles whose pixel-centre samples are
    ``raw``, is averaged and scaled alongside.
    """
    pp = params.profile
    gx, gy = grid.shape
    nreg = gx * gy
    valid = grid.valid.reshape(-1)
    centre = grid.central_region()
    warnings: list[str] = []

    spot_cov = np.full((nreg, 2, 2), np.nan)

    def optimise(p: np.ndarray, r: int) -> tuple[Raster, float, np.ndarray]:
        tol = pp.tolerance[0] if r == centre else pp.tolerance[1]
        if not pp.optimise:
            return raster, float("nan"), np.full((2, 2), np.nan)
        return optimise_peak(p, raster, tol, pp.boundary)

    rasters = [raster] * nreg
    outside = np.full(nreg, np.nan)
    rmsbg = np.full(nreg, np.inf)
    for r in np.flatnonzero(valid & (count > 0)):
        # the region's own spots (kept even when the profile is replaced by its neighbours'
        # average below: a profile whose tails lie in a too-small box's rim fails RMSBG)
        rasters[r], outside[r], spot_cov[r] = optimise(raw[r], r)
        rmsbg[r] = _rmsbg(raw[r], rasters[r].mask())
    good = valid & (count >= pp.nref) & (rmsbg <= pp.rmsbg)
    final = raw.copy()
    final_fine = None if fine is None else fine.copy()
    averaged = np.zeros(nreg, bool)
    if not good.any():
        warnings.append("too few strong reflections to form any standard profile: "
                        "profile fitting is not possible for this block")
    else:
        for r in np.flatnonzero(valid & ~good):
            a, b = divmod(int(r), gy)
            neigh = [i * gy + j for i in range(max(a - 1, 0), min(a + 2, gx))
                     for j in range(max(b - 1, 0), min(b + 2, gy)) if good[i * gy + j]]
            if not neigh:
                neigh = list(np.flatnonzero(good))
            wts = count[neigh].astype(np.float64)
            final[r] = np.tensordot(wts / wts.sum(), raw[neigh], axes=1)
            if final_fine is not None:
                final_fine[r] = np.tensordot(wts / wts.sum(), fine[neigh], axes=1)
            averaged[r] = True
            rasters[r], outside[r], _ = optimise(final[r], r)
            rmsbg[r] = _rmsbg(final[r], rasters[r].mask())
        if averaged.any():
            warnings.append(
                "AVERAGING OF STANDARD PROFILES: regions "
                + " ".join(str(int(r) + 1) for r in np.flatnonzero(averaged))
                + f" have fewer than NREF={pp.nref} reflections or RMSBG > {pp.rmsbg:g}"
            )
    masks = np.stack([rs.mask() for rs in rasters])
    profiles = np.zeros_like(final)
    scaled_fine = None if final_fine is None else np.zeros_like(final_fine)
    for r in range(nreg):
        s = final[r][masks[r] == PEAK].sum()
        if s > 0:
            profiles[r] = final[r] / s
            if scaled_fine is not None:
                scaled_fine[r] = final_fine[r] / s
    corrln = np.full(nreg, np.nan)
    cref = profiles[centre] if valid[centre] else profiles[np.flatnonzero(valid)[0]]
    box = raster.box_mask()
    for r in np.flatnonzero(valid):
        a, b = profiles[r][box], cref[box]
        if a.std() > 0 and b.std() > 0:
            corrln[r] = float(np.corrcoef(a, b)[0, 1])
    return StandardProfiles(raster, grid, profiles, masks, tuple(rasters), raw, count, rmsbg,
                            corrln, averaged, outside, bool(good.any()), tuple(warnings),
                            scaled_fine, int(subpixel), spot_cov=spot_cov)
