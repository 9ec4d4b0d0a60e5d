"""Benchmark the simulator on a Pilatus 6M-size detector (2527 x 2463 pixels of 0.172 mm).

Usage: ``python scripts/bench_simulate.py [--images N] [--format cbf|smv|hdf5|none]``.
Prints the time of each stage and images/s (kernels are compiled/loaded before timing).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from mosflm_py.simulate import default_params, simulate_dataset
from mosflm_py.simulate.dataset import static_masks, to_detector_counts
from mosflm_py.simulate.detector import background_map
from mosflm_py.simulate.render import crystal_model, render, sweep
from mosflm_py.simulate.truth import observations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--format", default="cbf", choices=["cbf", "smv", "hdf5", "none"])
    a = ap.parse_args()
    p = default_params(nslow=2527, nfast=2463, beam_x=217.3, beam_y=211.8, distance=250.0,
                       resolution=1.6, n_images=a.images, osc_width=0.2, mosaic=0.2,
                       cell=(78.0, 78.0, 37.0, 90.0, 90.0, 90.0), space_group="P 43 21 2")
    T = time.perf_counter
    warm = p.replace(n_images=1, nslow=64, nfast=64, resolution=4.0)
    m = crystal_model(warm)
    rec = sweep(m, warm, 0, 1)
    img = render(rec, m.intensity[rec.refl] * rec.pol * rec.g, warm, 1)
    to_detector_counts(img[0], warm, 1, *static_masks(warm))

    t = T()
    model = crystal_model(p)
    t_model = T() - t
    t = T()
    obs = observations(model, p)
    t_obs = T() - t
    t = T()
    rec = sweep(model, p, 0, p.n_images)
    t_sweep = T() - t
    counts = model.intensity[rec.refl] * rec.pol * rec.g
    t = T()
    bg = background_map(p)
    spots = render(rec, counts, p, p.n_images, base=bg)
    t_render = T() - t
    invalid, shadow = static_masks(p)
    t = T()
    for k in range(p.n_images):
        to_detector_counts(spots[k], p, k + 1, invalid, shadow)
    t_noise = T() - t
    n = p.n_images
    print(f"Pilatus 6M size {p.nslow} x {p.nfast}, {n} images of {p.osc_width} deg, "
          f"{model.hkl.shape[0]} reflections, {len(obs)} observations, {rec.g.size} sub-steps")
    print(f"  crystal model      {t_model:7.3f} s")
    print(f"  truth observations {t_obs:7.3f} s")
    print(f"  sweep kernel       {t_sweep:7.3f} s  ({n / t_sweep:8.1f} images/s)")
    print(f"  background+render  {t_render:7.3f} s  ({n / t_render:8.1f} images/s)")
    print(f"  noise + counts     {t_noise:7.3f} s  ({n / t_noise:8.1f} images/s)")
    core = t_sweep + t_render + t_noise
    print(f"  images in memory   {core:7.3f} s  ({n / core:8.1f} images/s)")
    if a.format != "none":
        with tempfile.TemporaryDirectory() as tmp:
            t = T()
            simulate_dataset(p, tmp, fmt=a.format)
            tot = T() - t
        print(f"  simulate_dataset   {tot:7.3f} s  ({n / tot:8.1f} images/s,"
              f" {a.format} files + truth)")


if __name__ == "__main__":
    main()
