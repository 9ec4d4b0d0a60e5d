"""Spot finding per image on real Pilatus 6M frames: mosflm-py single core vs dials.find_spots.

Usage::

    python scripts/bench_spotfinding_dials.py [--repeat 5] [--copies 6] [--data DIR]

What is measured (all on one core):

* mosflm-py: ``mosflm_py.spotfinding.find_spots`` on the decoded frame in a fresh process with
  ``NUMBA_NUM_THREADS=1``, after one warm-up call (numba cache load / compilation excluded),
  MINPIX 3 (what AUTOINDEX uses on pixel-array detectors; DIALS sets min_spot_size=3 too);
  best and median of ``--repeat`` calls.  Reading and decompressing the file with fabio is timed
  separately ("read"), since DIALS' numbers include it.
* DIALS (``/usr/bin/dials.find_spots nproc=1``, default dispersion threshold, clean
  environment): (a) the wall time of the whole command on one image (Python start-up, imports,
  loading the experiment, reading, finding, centroids, writing strong.refl); (b) the marginal
  cost of one more image: the same image is linked ``--copies`` times and imported as one sweep
  (``template=``);
  ``(T(copies) - T(1)) / (copies - 1)`` is the per-image cost without the fixed start-up.
  That includes reading/decompressing the image, like our "read + find".
The ratio printed is DIALS' marginal per-image time over ours (read + find), and over find alone,
for wall time and for CPU time (user + system: ``time.process_time`` for ours,
``getrusage(RUSAGE_CHILDREN)`` for DIALS), which is much less sensitive to other work on the
machine than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dials_compare as dc  # noqa: E402
from bench_spotfinding import DATA, IMAGES  # noqa: E402  name: (path, beam (fast, slow) px, mm, A)

_WORKER = r"""
import json, sys, time
import fabio, numpy as np
from mosflm_py.geometry.detector import Detector
from mosflm_py.spotfinding import SpotFindParams, find_spots
path, bx, by, dist, wl, repeat = sys.argv[1], *map(float, sys.argv[2:6]), int(sys.argv[6])
reads, creads = [], []
for _ in range(max(1, repeat // 2)):
    t, c = time.perf_counter(), time.process_time()
    frame = fabio.open(path).data
    reads.append(time.perf_counter() - t)
    creads.append(time.process_time() - c)
det = Detector(beam_x=by * 0.172, beam_y=bx * 0.172, distance=dist, pixel_slow=0.172,
               pixel_fast=0.172, nslow=frame.shape[0], nfast=frame.shape[1])
params = SpotFindParams(overload=1e6, minpix=3)
spots, rep = find_spots(frame, det, wl, params)
times, cpus = [], []
for _ in range(repeat):
    t, c = time.perf_counter(), time.process_time()
    spots, rep = find_spots(frame, det, wl, params)
    times.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c)
print(json.dumps({"best": min(times), "median": float(np.median(times)), "n": len(spots),
                  "read": min(reads), "cpu": min(cpus), "cpu_read": min(creads),
                  "shape": list(frame.shape)}))
"""


def run_ours(path: Path, beam, dist: float, wl: float, repeat: int) -> dict:
    """Single-core timings of our spot finder (fresh process, NUMBA_NUM_THREADS=1)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _WORKER, str(path), str(beam[0]), str(beam[1]),
                          str(dist), str(wl), str(repeat)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _dials_find(tmp: Path, path: Path, count: int) -> tuple[float, float, int]:
    """Link ``path`` ``count`` times as one sweep (template import), time
    ``dials.find_spots nproc=1``; returns (wall s, CPU s, spots found on all images)."""
    env = dc.clean_env(nthreads=1)
    run = tmp / f"n{count}"
    run.mkdir(exist_ok=True)
    suffix = "".join(path.suffixes[-2:]) if path.suffix in (".gz", ".bz2") else path.suffix
    for i in range(1, count + 1):
        link = run / f"copy_{i:05d}{suffix}"
        if not link.exists():
            link.symlink_to(path.resolve())
    if not (run / "imported.expt").exists():
        subprocess.run([dc.dials_bin("dials.import"), f"template=copy_#####{suffix}"], cwd=run,
                       env=env, capture_output=True, check=True)
    m = dc.run_measured([dc.dials_bin("dials.find_spots"), "imported.expt", "nproc=1"], run,
                        env=env)
    if m.returncode != 0:
        raise RuntimeError("dials.find_spots failed: " + "\n".join(s for _, s in m.lines[-10:]))
    n = -1
    for _, line in m.lines:
        if line.startswith("Calculated") and "spot centroids" in line:
            n = int(line.split()[1])
    return m.seconds, m.cpu_seconds, n


def run_dials(path: Path, copies: int) -> dict | None:
    """DIALS single-core wall time on 1 image (best of 2), and the marginal per-image time."""
    if dc.dials_bin("dials.find_spots") is None or dc.dials_bin("dials.import") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench_sf_dials_") as tmpd:
        tmp = Path(tmpd)
        t1, c1, n1 = min(_dials_find(tmp, path, 1) for _ in range(2))
        tk, ck, nk = _dials_find(tmp, path, copies)
    per = (tk - t1) / (copies - 1)
    cper = (ck - c1) / (copies - 1)
    return {"one_image": t1, "spots": n1, "copies": copies, "all_copies": tk,
            "per_image": per, "startup": t1 - per, "cpu_one_image": c1, "cpu_all_copies": ck,
            "cpu_per_image": cper, "cpu_startup": c1 - cper}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--copies", type=int, default=6, help="images in DIALS' marginal-cost run")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    ver = dc.dials_version()
    print(f"mosflm-py find_spots, 1 core (NUMBA_NUM_THREADS=1, after warm-up) vs "
          f"{ver or 'DIALS (not installed)'} dials.find_spots nproc=1; "
          f"load average {dc.load_average():.1f}")
    print("wall ms / s; CPU ms / s in brackets.  ours: read = fabio read+decompress, find = "
          "find_spots (best of repeat);\nDIALS: 1 img = whole dials.find_spots on one image, "
          "start = its fixed cost, /img = marginal per image;\nratio = DIALS /img over ours "
          "(read + find, and find alone)")
    results = {}
    for name, (rel, beam, dist, wl) in IMAGES.items():
        path = a.data / rel
        if not path.exists():
            print(f"{name:13s} missing ({path})")
            continue
        ours = run_ours(path, beam, dist, wl, a.repeat)
        d = run_dials(path, a.copies) if ver else None
        results[name] = {"ours": ours, "dials": d}
        print(f"{name:13s} ours:  {ours['n']:5d} spots  read {ours['read'] * 1e3:6.0f} ms "
              f"[{ours['cpu_read'] * 1e3:6.0f}]  find {ours['best'] * 1e3:6.0f} ms "
              f"[{ours['cpu'] * 1e3:6.0f}] (median {ours['median'] * 1e3:.0f} ms)")
        if d:
            print(f"{'':13s} DIALS: {d['spots']:5d} spots  1 img {d['one_image']:6.2f} s "
                  f"[{d['cpu_one_image']:6.2f}]  start {d['startup']:6.2f} s "
                  f"[{d['cpu_startup']:6.2f}]  /img {d['per_image'] * 1e3:6.0f} ms "
                  f"[{d['cpu_per_image'] * 1e3:6.0f}]")
            rw = d["per_image"] / (ours["read"] + ours["best"])
            print(f"{'':13s} ratio DIALS/ours  wall: {rw:5.1f} "
                  f"(read+find) {d['per_image'] / ours['best']:5.1f} (find)   CPU: "
                  f"{d['cpu_per_image'] / (ours['cpu_read'] + ours['cpu']):5.1f} (read+find) "
                  f"{d['cpu_per_image'] / ours['cpu']:5.1f} (find)", flush=True)
    print(f"load average {dc.load_average():.1f} at the end (other work on the machine inflates "
          f"both programs' times)")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
