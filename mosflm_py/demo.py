"""The README's first command: simulate a small rotation dataset and process it end to end.

``python -m mosflm_py.demo [FOLDER]`` (default ``./mosflm_demo``) writes a simulated Pilatus-like
sweep with ground truth, then runs mosflm-py on it with the command file a crystallographer would
pipe in (AUTOINDEX, MOSAIC ESTIMATE, PROCESS), prints the MOSFLM-style log, lists the files
written, and compares the integrated intensities with the simulated truth.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

from mosflm_py.cli import main as mosflm_main
from mosflm_py.simulate import default_params, simulate_dataset
from mosflm_py.truthcheck import compare_mtz_with_truth

COMMANDS = """\
TITLE mosflm-py demonstration on simulated data
TEMPLATE "sim_#####.cbf"
DIRECTORY "{folder}"
NEWMAT index.mat
SUMMARY demo.sum
HKLOUT demo.mtz
AUTOINDEX DPS REFINE IMAGE 1 IMAGE {last}
MOSAIC ESTIMATE
GO
PROCESS 1 {last}
GO
EXIT
"""


def main(argv: list[str] | None = None) -> int:
    """Simulate, process, report; returns the program's exit status."""
    ap = argparse.ArgumentParser(prog="python -m mosflm_py.demo", description=__doc__)
    ap.add_argument("folder", nargs="?", default="mosflm_demo", help="working folder")
    ap.add_argument("--images", type=int, default=20, help="number of images to simulate")
    ap.add_argument("--nproc", type=int, default=None, help="worker processes (default all)")
    args = ap.parse_args(argv)
    folder = Path(args.folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    if not (folder / "truth.npz").exists() or not (folder / f"sim_{args.images:05d}.cbf").exists():
        print(f" Simulating {args.images} rotation images into {folder} ...", flush=True)
        simulate_dataset(default_params(n_images=args.images), folder, fmt="cbf", name="sim")
    print(f" Simulated data ready ({time.perf_counter() - t0:.1f} s)", flush=True)
    script = COMMANDS.format(folder=folder, last=args.images)
    (folder / "demo.com").write_text(script)
    print(f" Command file {folder / 'demo.com'}:\n")
    print("".join(f"    {line}\n" for line in script.splitlines()))

    before = {p.name for p in folder.iterdir()}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        argv_m = ["--nproc", str(args.nproc)] if args.nproc else []
        rc = mosflm_main(argv_m, stdin=io.StringIO(script), stdout=sys.stdout)
    finally:
        os.chdir(cwd)
    written = sorted(p.name for p in folder.iterdir() if p.name not in before)
    print("\n Files written in", folder)
    for name in written:
        print(f"    {name}  ({(folder / name).stat().st_size} bytes)")
    if (folder / "demo.mtz").exists():
        for line in compare_mtz_with_truth(folder / "demo.mtz", folder / "truth.npz"):
            print(" " + line)
    print(f"\n Total time {time.perf_counter() - t0:.1f} s; exit status {rc}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
