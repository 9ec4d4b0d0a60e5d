"""Benchmark spot finding on the real Pilatus 6M frames: ms per frame, single core and all cores.

Usage:  python scripts/bench_spotfinding.py [--repeat N] [--data DIR]

Runs each configuration in a fresh subprocess (NUMBA_NUM_THREADS must be set before numba
starts): NUMBA_NUM_THREADS=1, then all cores. Image reading (fabio) is not timed; the first call
(numba cache load / compilation) is excluded. Where ``dials.find_spots`` is on PATH it is run on
the same image and the wall-time ratio is printed (DIALS time includes its start-up and reading).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "real"
IMAGES = {
    "thaum_0500": ("pilatus6m_p3_and_thaumatin/thaum_0500.cbf.gz", (1246.42, 1208.60), 338.10,
                   0.97625),
    "example_009": ("pilatus6m_p3_and_thaumatin/example_009.cbf.gz", (1266.7, 1324.6), 305.0,
                    0.96861),
    "run2_1_00148": ("format_singles_fabio/run2_1_00148.cbf.bz2", (1230.10, 1310.50), 300.0,
                     1.0332),
}

_WORKER = r"""
import json, sys, time
import fabio, numpy as np
from mosflm_py.geometry.detector import Detector
from mosflm_py.spotfinding import SpotFindParams, find_spots
path, bx, by, dist, wl, repeat = sys.argv[1], *map(float, sys.argv[2:6]), int(sys.argv[6])
frame = fabio.open(path).data
det = Detector(beam_x=by * 0.172, beam_y=bx * 0.172, distance=dist, pixel_slow=0.172,
               pixel_fast=0.172, nslow=frame.shape[0], nfast=frame.shape[1])
params = SpotFindParams(overload=1e6)
spots, rep = find_spots(frame, det, wl, params)
times = []
for _ in range(repeat):
    t = time.perf_counter()
    spots, rep = find_spots(frame, det, wl, params)
    times.append(time.perf_counter() - t)
print(json.dumps({"best": min(times), "median": float(np.median(times)), "n": len(spots),
                  "shape": list(frame.shape)}))
"""


def run_ours(path: Path, beam, dist, wl, threads: int | None, repeat: int) -> dict:
    env = dict(os.environ)
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", _WORKER, str(path), str(beam[0]), str(beam[1]),
                          str(dist), str(wl), str(repeat)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dials(path: Path) -> float | None:
    if shutil.which("dials.find_spots") is None or shutil.which("dials.import") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dials.import", str(path)], cwd=tmp, capture_output=True, check=True)
        t = time.perf_counter()
        subprocess.run(["dials.find_spots", "imported.expt", "nproc=1"], cwd=tmp,
                       capture_output=True, check=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    ncores = os.cpu_count() or 1
    print(f"{'image':14s} {'shape':>11s} {'spots':>6s} {'1 core ms':>10s} "
          f"{f'{ncores} cores ms':>12s} {'DIALS s':>8s} {'ratio':>6s}")
    for name, (rel, beam, dist, wl) in IMAGES.items():
        path = args.data / rel
        if not path.exists():
            print(f"{name:14s} missing ({path})")
            continue
        one = run_ours(path, beam, dist, wl, 1, args.repeat)
        allc = run_ours(path, beam, dist, wl, None, args.repeat)
        dials = run_dials(path)
        ratio = f"{dials / one['best']:6.1f}" if dials else "     -"
        dtxt = f"{dials:8.2f}" if dials else "       -"
        shape = "x".join(map(str, one["shape"]))
        print(f"{name:14s} {shape:>11s} {one['n']:6d} {one['best'] * 1e3:10.0f} "
              f"{allc['best'] * 1e3:12.0f} {dtxt} {ratio}")


if __name__ == "__main__":
    main()
