"""Benchmark: a full 360 degree STRATEGY (AUTO) for a 100 Å cubic cell at 1.5 Å, one core.

Times the calculation behind ``STRATEGY AUTO``: the unique reflections (gemmi), the Ewald
passages of all their symmetry mates (:func:`mosflm_py.strategy.reflection_passages`) and the
search (:func:`mosflm_py.strategy.plan.plan_strategy`: best start for every rotation, rotation
for all reachable data and 90/95/99/99.9 %, candidate-start curves), for P 1 2 3 and P 1 (the
same ~1.2 million reflections in the sphere).  Target (issue 12): under 10 s on one core.
Times are CPU seconds of this process (wall time in brackets: larger on a busy machine).
Run: ``OMP_NUM_THREADS=1 python scripts/bench_strategy.py``.  Not a test.
"""

from __future__ import annotations

import time

import numpy as np

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.rotation import rot_axis
from mosflm_py.strategy import reflection_passages, unique_reflections
from mosflm_py.strategy.plan import StrategyOptions, plan_strategy

CELL = (100.0, 100.0, 100.0, 90.0, 90.0, 90.0)


def main() -> None:
    u = rot_axis(np.array([1.0, 2.0, 3.0]), 37.0)
    det = Detector(
        distance=100.0,
        beam_x=150.0,
        beam_y=150.0,
        pixel_slow=0.1,
        pixel_fast=0.1,
        nslow=3000,
        nfast=3000,
    )  # 1.5 Å at the edge for λ = 1 Å
    for sg in ("P 2 3", "P 1"):
        exp = Experiment(beam=Beam(1.0), detector=det, crystal=Crystal(CELL, U=u, space_group=sg))
        w0, t0 = time.perf_counter(), time.process_time()
        uniq = unique_reflections(CELL, sg, 1.5)
        t1 = time.process_time()
        p = reflection_passages(uniq, exp)
        t2 = time.process_time()
        res = plan_strategy(p, StrategyOptions())
        t3, w3 = time.process_time(), time.perf_counter()
        print(
            f"{sg:6s} {len(uniq):7d} unique, {len(p):8d} passages: unique {t1 - t0:5.2f} s, "
            f"passages {t2 - t1:5.2f} s, search {t3 - t2:5.2f} s, total {t3 - t0:5.2f} s CPU "
            f"({w3 - w0:5.2f} s wall); "
            f"all reachable ({res.reachable.completeness:.1f}%) in {res.full_rotation:.0f} deg"
        )


if __name__ == "__main__":
    main()
