"""Benchmark of the refinement: seconds per cell-refinement cycle, per positional refinement and
per post-refinement, on simulated segments (two segments of 5 images, 512x512 Pilatus-like).

Usage: python scripts/bench_refinement.py [seed]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_refinement_cellref import simulated_segments  # noqa: E402

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
    print(f"measurement per image        : {1e3 * t_meas:8.1f} ms ({len(meas[0].hkl)} reflections)")
    print(f"positional refinement / image: {1e3 * t_pos:8.1f} ms")
    print(f"post-refinement ({pr.n_used} fractions): {1e3 * t_post:8.1f} ms")
    print(f"cell refinement: {res.cycles} cycles, {t_all:.2f} s, "
          f"{t_all / res.cycles:.2f} s per cycle ({len(images)} images)")
    err = 100 * (np.array(res.final_cell[:3]) / np.array(c[:3]) - 1)
    print("cell error (%)               :", " ".join(f"{e:+.4f}" for e in err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
