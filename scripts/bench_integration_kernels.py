"""Benchmark: 5,000 reflections on a Pilatus-6M-size frame, summation + profile fitting.

Usage: python scripts/bench_integration_kernels.py [n_reflections]
Prints the single-image time after numba compilation (target < 0.2 s on one core).
"""

from __future__ import annotations

import sys
import time

import numba  # noqa: TID251  (dev script: thread count control)
import numpy as np

from mosflm_py.integration import (
    IntegrationParams,
    Raster,
    Targets,
    accumulate_profiles,
    integrate_image,
)


def synthetic_frame(rng, n, shape=(2527, 2463), sigma=(1.0, 1.3), bg=2.0):
    """Poisson frame with n Gaussian spots on a grid (no overlaps) and a flat background."""
    side = int(np.ceil(np.sqrt(n)))
    xs = np.linspace(20, shape[0] - 20, side)
    ys = np.linspace(20, shape[1] - 20, side)
    x, y = np.meshgrid(xs, ys, indexing="ij")
    x = x.ravel()[:n] + rng.uniform(-0.5, 0.5, n)
    y = y.ravel()[:n] + rng.uniform(-0.5, 0.5, n)
    inten = rng.exponential(2000.0, n)
    img = np.full(shape, bg)
    h = 6
    for k in range(n):
        i0, j0 = int(x[k]), int(y[k])
        ii = np.arange(i0 - h, i0 + h + 1)[:, None] + 0.5
        jj = np.arange(j0 - h, j0 + h + 1)[None, :] + 0.5
        g = np.exp(-0.5 * (((ii - x[k]) / sigma[0]) ** 2 + ((jj - y[k]) / sigma[1]) ** 2))
        norm = 2 * np.pi * sigma[0] * sigma[1]
        img[i0 - h:i0 + h + 1, j0 - h:j0 + h + 1] += inten[k] * g / norm
    return rng.poisson(img).astype(np.int32), Targets.from_arrays(x, y)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rng = np.random.default_rng(1)
    frame, pred = synthetic_frame(rng, n)
    params = IntegrationParams(raster=Raster(13, 15, 11, 4, 4))
    profiles = accumulate_profiles([(frame, pred)], params)
    integrate_image(frame, pred, params, profiles)  # compile / warm up
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        t = []
        for _ in range(5):
            t0 = time.perf_counter()
            res = integrate_image(frame, pred, params, profiles)
            t.append(time.perf_counter() - t0)
        print(f"{n} reflections, frame {frame.shape}, {threads} thread(s): "
              f"integrate_image {min(t):.3f} s (best of 5)")
    t0 = time.perf_counter()
    accumulate_profiles([(frame, pred)], params)
    print(f"accumulate_profiles (1 image): {time.perf_counter() - t0:.3f} s")
    ok = res.reject == 0
    print(f"accepted {ok.sum()} / {n}; median I/Ipr {np.median(res.I[ok] / res.Ipr[ok]):.4f}")


if __name__ == "__main__":
    main()
