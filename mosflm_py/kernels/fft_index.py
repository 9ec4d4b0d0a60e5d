"""Numba kernels for the DPS basis search: projection histograms over many directions."""

from __future__ import annotations

import numba
import numpy as np

from mosflm_py.kernels._jit import jit


@jit(parallel=True)
def project_histograms(rlp, dirs, span, out):  # pragma: no cover - compiled
    """Cloud-in-cell histograms of the projections r . t for every direction t.

    rlp (N, 3) float64, dirs (M, 3) float64, span float, out (M, nbins) float64 zeroed by the
    caller.  Projection p maps to the continuous bin u = p / span * nbins + nbins / 2; the unit
    weight is split linearly between bins floor(u) and floor(u) + 1 (clipped to the array).
    Parallel over directions (for the full hemisphere).
    """
    m = dirs.shape[0]
    for j in numba.prange(m):
        _one_direction(rlp, dirs, span, out, j)


@jit
def project_histograms_serial(rlp, dirs, span, out):  # pragma: no cover - compiled
    """Serial :func:`project_histograms` for small problems.

    Launching a parallel region costs up to a scheduler time slice (~10-20 ms) on a loaded
    machine, far more than histogramming a few thousand projections.
    """
    for j in range(dirs.shape[0]):
        _one_direction(rlp, dirs, span, out, j)


@jit
def _one_direction(rlp, dirs, span, out, j):  # pragma: no cover - compiled
    n = rlp.shape[0]
    nbins = out.shape[1]
    scale = nbins / span
    half = nbins / 2.0
    tx = dirs[j, 0]
    ty = dirs[j, 1]
    tz = dirs[j, 2]
    for i in range(n):
        u = (rlp[i, 0] * tx + rlp[i, 1] * ty + rlp[i, 2] * tz) * scale + half
        i0 = int(np.floor(u))
        f = u - i0
        if i0 < 0:
            i0 = 0
        elif i0 > nbins - 2:
            i0 = nbins - 2
        out[j, i0] += 1.0 - f
        out[j, i0 + 1] += f
