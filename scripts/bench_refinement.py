"""Benchmark of the refinement: seconds per cell-refinement cycle, per measurement (first pass,
which computes the prediction cache's Ewald solutions, and a second pass reusing them), per
positional refinement and per post-refinement, on simulated segments (two segments of 5 images,
512x512 Pilatus-like); then the global positional refinement on a simulated small-molecule
sweep (15 x 0.1 deg, too few partials for post-refinement).

Usage: python scripts/bench_refinement.py [seed]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_refinement_cellref import simulated_segments  # noqa: E402
from test_refinement_global import simulated_small_molecule  # noqa: E402

from mosflm_py.refinement import (  # noqa: E402
    PartialObservations,
    make_measure_fn,
    postrefine,
    refine_cell_segments,
    refine_detector,
)


def main() -> int:
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    t0 = time.perf_counter()
    truth, segs, cache, phi = simulated_segments(seed)
    print(f"simulated {sum(map(len, segs))} images in {time.perf_counter() - t0:.2f} s")
    c = truth.crystal.cell
    start = truth.replace(
        crystal=truth.crystal.replace(cell=(c[0] * 1.005, c[1] * 0.995, c[2] * 1.005, 90, 90, 90),
                                      mosaic=0.25),
        detector=truth.detector.replace(distance=101.5, beam_x=45.4, beam_y=43.6),
    )
    mf = make_measure_fn(cache.__getitem__, phi)
    images = [i for s in segs for i in s]
    t = time.perf_counter()
    meas = [mf(truth, [i])[0] for i in images]
    t_meas = (time.perf_counter() - t) / len(images)
    t = time.perf_counter()
    meas = [mf(truth, [i])[0] for i in images]
    t_meas2 = (time.perf_counter() - t) / len(images)
    t = time.perf_counter()
    for m in meas:
        v = m.valid
        refine_detector(truth, m.hkl[v], m.x_obs[v], m.y_obs[v], m.phi_obs[v],
                        np.column_stack([m.sigma_x[v], m.sigma_y[v]]),
                        isig=(m.intensity / m.sigma)[v])
    t_pos = (time.perf_counter() - t) / len(images)
    obs = PartialObservations.concatenate([m.partials() for m in meas])
    t = time.perf_counter()
    pr = postrefine(truth, obs)
    t_post = time.perf_counter() - t
    t = time.perf_counter()
    res = refine_cell_segments(segs, start, mf)
    t_all = time.perf_counter() - t
    print(f"measurement per image        : {1e3 * t_meas:8.1f} ms first pass, "
          f"{1e3 * t_meas2:.1f} ms with cached Ewald solutions ({len(meas[0].hkl)} reflections)")
    print(f"positional refinement / image: {1e3 * t_pos:8.1f} ms")
    print(f"post-refinement ({pr.n_used} fractions): {1e3 * t_post:8.1f} ms")
    print(f"cell refinement: {res.cycles} cycles, {t_all:.2f} s, "
          f"{t_all / res.cycles:.2f} s per cycle ({len(images)} images)")
    err = 100 * (np.array(res.final_cell[:3]) / np.array(c[:3]) - 1)
    print("cell error (%)               :", " ".join(f"{e:+.4f}" for e in err))
    truth, frames, phi = simulated_small_molecule(3)
    c = truth.crystal.cell
    start = truth.replace(
        crystal=truth.crystal.replace(cell=(c[0] * 1.006, c[1] * 1.006, c[2] * 1.006, 90, 90, 90),
                                      missets=(0.1, -0.1, 0.1), mosaic=0.3),
        detector=truth.detector.replace(distance=50.5, beam_x=44.2, beam_y=43.2))
    t = time.perf_counter()
    res = refine_cell_segments([list(range(1, 16))], start,
                               make_measure_fn(frames.__getitem__, phi))
    t_all = time.perf_counter() - t
    g = res.global_refinement
    err = 100 * (np.array(res.final_cell[:3]) / np.array(c[:3]) - 1)
    print(f"small molecule ({res.method}): {res.cycles} cycles, {t_all:.2f} s; {g.n_used} spots, "
          f"rms {g.rms_xy:.4f} mm, {g.rms_phi:.4f} deg; cell error (%) "
          + " ".join(f"{e:+.4f}" for e in err)
          + f"; distance {res.experiment.detector.distance:.3f} mm (true 50)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
