"""Tiny synthetic-image generator for the integration tests (Gaussian spots, sloping background)."""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from mosflm_py.integration import Targets


def gaussian_pixels(shape, x, y, intensity, sigma):
    """Expected counts of pixel-integrated 2D Gaussians (slow sigma[0], fast sigma[1])."""
    img = np.zeros(shape)
    h = int(np.ceil(6 * max(sigma)))
    for xk, yk, ik in zip(x, y, intensity):
        i0, j0 = int(xk), int(yk)
        ii = np.arange(max(i0 - h, 0), min(i0 + h + 1, shape[0]))
        jj = np.arange(max(j0 - h, 0), min(j0 + h + 1, shape[1]))
        ex = erf((ii + 1 - xk) / (np.sqrt(2) * sigma[0])) - erf((ii - xk) / (np.sqrt(2) * sigma[0]))
        ey = erf((jj + 1 - yk) / (np.sqrt(2) * sigma[1])) - erf((jj - yk) / (np.sqrt(2) * sigma[1]))
        img[np.ix_(ii, jj)] += ik * 0.25 * np.outer(ex, ey)
    return img


def spot_grid(rng, n_side, spacing=24, intensity=1000.0, sigma=(1.5, 1.8), bg=10.0,
              slope=(0.004, -0.003)):
    """Frame with n_side**2 spots on a jittered grid; returns (frame, predictions, spots_only)."""
    size = spacing * (n_side + 1)
    shape = (size, size)
    c = spacing * (1 + np.arange(n_side))
    x, y = np.meshgrid(c, c, indexing="ij")
    x = x.ravel() + rng.uniform(-0.5, 0.5, x.size)
    y = y.ravel() + rng.uniform(-0.5, 0.5, y.size)
    inten = np.broadcast_to(np.asarray(intensity, float), x.shape)
    spots = gaussian_pixels(shape, x, y, inten, sigma)
    ii, jj = np.indices(shape)
    background = bg + slope[0] * (ii - size / 2) + slope[1] * (jj - size / 2)
    frame = rng.poisson(spots + background).astype(np.int32)
    return frame, Targets.from_arrays(x, y), spots


def peak_truth(spots, pred, mask):
    """Expected spot counts inside each reflection's peak region (mask == 1)."""
    nx, ny = mask.shape
    hx, hy = nx // 2, ny // 2
    out = np.zeros(len(pred))
    for k in range(len(pred)):
        i0, j0 = int(pred.x_px[k]), int(pred.y_px[k])
        out[k] = spots[i0 - hx:i0 + hx + 1, j0 - hy:j0 + hy + 1][mask == 1].sum()
    return out
