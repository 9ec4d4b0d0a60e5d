"""Benchmark of QuickScale (issue 13 item 5: 100 000 observations in under 10 s on one core).

Writes a synthetic unmerged MTZ (tests/quickscale_synth.py: Laue group 4/m, smooth scales,
partials on consecutive images with MPART), then times, on one thread: reading the MTZ by its
columns, summing partials, the Laue-group scores, scaling + error model + outlier rejection,
merging statistics, and writing the merged and scaled MTZ files. Optionally renders the HTML
report with Chromium (``--screenshot``, when ``chromium`` is installed).

Usage: OMP_NUM_THREADS=1 python scripts/bench_quickscale.py [folder] [--screenshot]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # one core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from quickscale_synth import make_unmerged  # noqa: E402

from mosflm_py.scaling.mtzout import write_merged_mtz, write_scaled_unmerged_mtz  # noqa: E402
from mosflm_py.scaling.observations import read_unmerged  # noqa: E402
from mosflm_py.scaling.pipeline import quickscale  # noqa: E402
from mosflm_py.scaling.report import write_report  # noqa: E402


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    folder = Path(args[0] if args else "/tmp/bench_quickscale")
    folder.mkdir(parents=True, exist_ok=True)
    mtz = folder / "bench.mtz"
    syn = make_unmerged(
        str(mtz), true_sg="P 4", file_sg="P 1", d_min=1.75, n_images=90, mult=4.8, seed=1
    )
    print(
        f"synthetic data: {syn.n_observations} observations "
        f"({syn.n_sets_partial} as partial sets), 90 images, true Laue group {syn.true_laue}"
    )
    c0 = time.process_time()
    t0 = time.perf_counter()
    obs = read_unmerged(str(mtz))
    t1 = time.perf_counter()
    res = quickscale(obs)
    t2 = time.perf_counter()
    write_merged_mtz(str(folder / "merged.mtz"), res.merged, res.observations, res.space_group)
    write_scaled_unmerged_mtz(
        str(folder / "scaled.mtz"), res.observations, res.space_group, res.g, res.sigma, res.keep
    )
    t3 = time.perf_counter()
    c3 = time.process_time()
    write_report(str(folder / "report.html"), res)
    t4 = time.perf_counter()
    ov = res.stats.overall
    print(f"read MTZ ({len(obs)} records)           {t1 - t0:6.2f} s")
    print(
        f"sum partials + Laue + scale + stats     {t2 - t1:6.2f} s   "
        f"({len(res.g)} observations, {res.scaling.cycles} scaling cycles)"
    )
    print(f"write merged + scaled MTZ               {t3 - t2:6.2f} s")
    print(
        f"total QuickScale                        {t3 - t0:6.2f} s   (limit 10 s; CPU time "
        f"{c3 - c0:.2f} s, the figure that counts on a loaded machine)"
    )
    print(f"HTML report + PNG graphs                {t4 - t3:6.2f} s")
    print(
        f"Laue group {res.symm.laue.best.laue} (confidence {res.symm.laue.confidence:.3f}); "
        f"Rmerge {ov.r_merge:.3f} CC1/2 {ov.cc_half:.4f} <I/sig> {ov.i_over_sigma:.1f} "
        f"completeness {ov.completeness:.1f}%"
    )
    if "--screenshot" in sys.argv:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            print("chromium not installed: no screenshot")
        else:
            shot = folder / "report.png"
            subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--screenshot={shot}",
                    "--window-size=1280,2400",
                    (folder / "report.html").as_uri(),
                ],
                check=False,
                timeout=120,
            )
            print(f"screenshot: {shot}")
    return 0 if t3 - t0 < 10.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
