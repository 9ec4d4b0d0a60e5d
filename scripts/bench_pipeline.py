"""End-to-end benchmark: simulate a Pilatus sweep, process it with mosflm-py (and DIALS), compare.

Usage::

    python scripts/bench_pipeline.py [--images 100] [--size 6m|2m|1m] [--nproc N] [--keep]
                                     [--workdir DIR] [--osc 0.5] [--mosaic 0.25] [--no-dials]

1. Simulates (``mosflm_py.simulate``) a Pilatus-size sweep with ground truth: P 21 21 21,
   a b c = 51.2 62.8 89.5 A, mosaic 0.25 deg, 0.5 deg images, 250 mm, lambda 0.9795 A,
   Pilatus module gaps, Poisson noise (a dataset already in ``--workdir`` with the same parameters
   is reused).
2. Runs mosflm-py the way users do: a command file piped into ``python -m mosflm_py`` (TEMPLATE,
   DIRECTORY, NPROC, AUTOINDEX DPS REFINE IMAGE 1 IMAGE <~90 deg or last>, MOSAIC ESTIMATE, GO,
   PROCESS 1 N, GO).  Prints images/s, seconds per stage (from the time each log line arrived),
   peak memory of the process tree (summed PSS polled from /proc) and the CC against the truth
   (``mosflm_py.truthcheck.compare``).
3. Where DIALS is installed (``/usr/bin/dials.*``), runs dials.import, find_spots, index
   (known space group and cell), refine, integrate and export (unmerged MTZ, profile + sum)
   on the same images with the same nproc, times each, and computes DIALS' CC against the same
   truth (``scripts/dials_compare.py``: reindexing operator found by matching hkl and phi).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dials_compare as dc  # noqa: E402

SIZES = {  # name: (nslow, nfast) of real Pilatus detectors (DIALS checks the module layout)
    "6m": (2527, 2463),
    "2m": (1679, 1475),
    "1m": (1043, 981),
}
CELL = (51.2, 62.8, 89.5, 90.0, 90.0, 90.0)
SPACE_GROUP = "P 21 21 21"


def sim_params(n_images: int, size: str, osc: float, mosaic: float):
    """The benchmark's :class:`SimulationParams`."""
    from mosflm_py.simulate import default_params

    nslow, nfast = SIZES[size]
    return default_params(
        nslow=nslow, nfast=nfast, pixel_size=0.172,
        beam_x=round(nslow * 0.172 / 2 + 1.3, 2), beam_y=round(nfast * 0.172 / 2 - 0.9, 2),
        distance=250.0 if size == "6m" else (180.0 if size == "2m" else 130.0),
        wavelength=0.9795, cell=CELL, space_group=SPACE_GROUP, mosaic=mosaic,
        osc_width=osc, n_images=n_images, resolution=1.6, module_gaps=True, seed=7,
    )


def simulate(workdir: Path, params) -> float:
    """Write the sweep into ``workdir/images`` unless an identical one is there; seconds taken."""
    from mosflm_py.simulate import simulate_dataset

    imgdir = workdir / "images"
    stamp = imgdir / "params.json"
    desc = json.dumps({k: v for k, v in asdict(params).items() if k != "intensities"},
                      default=str, sort_keys=True)
    if stamp.exists() and stamp.read_text() == desc and (imgdir / "truth.npz").exists():
        return 0.0
    if imgdir.exists():
        shutil.rmtree(imgdir)
    t = time.perf_counter()
    simulate_dataset(params, imgdir, fmt="cbf", name="sim")
    stamp.write_text(desc)
    return time.perf_counter() - t


# --------------------------------------------------------------------------- mosflm-py
COMMANDS = """\
TITLE bench_pipeline
TEMPLATE "sim_#####.cbf"
DIRECTORY "{imgdir}"
HKLOUT bench.mtz
SUMMARY bench.sum
NEWMAT bench.mat
NPROC {nproc}
AUTOINDEX DPS REFINE IMAGE 1 IMAGE {second}
{mosaic}
GO
PROCESS 1 {last}
GO
EXIT
"""


def _first(lines, pattern, after=0.0):
    rx = re.compile(pattern)
    for t, s in lines:
        if t >= after and rx.search(s):
            return t, s
    return None, None


def stage_times(lines: list[tuple[float, str]], total: float) -> dict[str, float]:
    """Seconds per stage from the arrival time of the log lines (see the module docstring)."""
    go1, _ = _first(lines, r"^\s*===> GO")
    t_idx, _ = _first(lines, r"Maximum expected cell edge|DPS Indexing", go1 or 0)
    # the spot-search summaries are printed as each image's search ends; the indexing table
    # only when AUTOINDEX ends: spot finding ends at the last summary before indexing
    searches = [t for t, s in lines if "Spot search on image" in s and t <= (t_idx or 0)]
    t_idx = searches[-1] if searches else t_idx
    t_mos, _ = _first(lines, r"Estimating the mosaic spread|===> PROCESS", t_idx or 0)
    t_proc, _ = _first(lines, r"^\s*===> PROCESS", t_mos or 0)
    t_integ, s_integ = _first(lines, r"reflections integrated on \d+ images in", t_proc or 0)
    t_end = lines[-1][0] if lines else total
    out = {}
    if go1 is not None:
        out["start-up + parsing"] = go1
    if go1 is not None and t_idx is not None:
        out["spot finding (+ header, image reading)"] = t_idx - go1
    if t_idx is not None and t_mos is not None:
        out["indexing + refinement"] = t_mos - t_idx
    if t_mos is not None and t_proc is not None:
        out["mosaic estimate"] = t_proc - t_mos
    if t_proc is not None and t_integ is not None:
        out["PROCESS (integration, to the summary line)"] = t_integ - t_proc
        m = re.search(r"integrated on (\d+) images in ([\d.]+) s", s_integ)
        if m:
            out["  of which reported by the integration step"] = float(m.group(2))
    if t_integ is not None:
        out["MTZ/SUMMARY output + exit"] = total - t_integ
    out["_log_end"] = t_end
    return out


def run_mosflm(workdir: Path, params, nproc: int, echo: bool, mosaic_given: bool = False) -> dict:
    imgdir = workdir / "images"
    run = workdir / "mosflm"
    if run.exists():
        shutil.rmtree(run)
    run.mkdir()
    n = params.n_images
    second = min(n, 1 + round(90.0 / params.osc_width))
    mosaic = f"MOSAIC {params.mosaic:g}" if mosaic_given else "MOSAIC ESTIMATE"
    script = COMMANDS.format(imgdir=imgdir, nproc=nproc, second=second, last=n, mosaic=mosaic)
    (run / "bench.com").write_text(script)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    load0 = dc.load_average()
    m = dc.run_measured([sys.executable, "-m", "mosflm_py"], run, env=env, stdin_text=script,
                        log_path=run / "bench.log", echo=echo)
    res = {"returncode": m.returncode, "seconds": m.seconds, "cpu_seconds": m.cpu_seconds,
           "load_before": load0, "load_after": dc.load_average(), "peak_pss_mib": m.peak_pss_mib,
           "peak_rss_mib": m.peak_rss_mib, "peak_single_rss_mib": m.peak_single_rss_mib,
           "stages": stage_times(m.lines, m.seconds), "index_images": (1, second),
           "mosaic_keyword": mosaic}
    mtz = run / "bench.mtz"
    if mtz.exists():
        res.update(truth_mosflm(mtz, imgdir / "truth.npz"))
    else:
        res["tail"] = [s for _, s in m.lines[-15:]]
    return res


def truth_mosflm(mtz: Path, truth: Path) -> dict:
    """``truthcheck.compare`` on the MTZ, reindexed first when mosflm-py chose another setting.

    Autoindexing may pick any of the settings of the lattice that are equivalent under its
    point group (e.g. h,k,l -> -h,-k,l in 222); the simulation's setting is found by matching
    hkl and phi (:func:`dials_compare.best_reindex`) and a reindexed copy is compared.
    """
    import gemmi
    import numpy as np

    from mosflm_py.output.mtz import read_unmerged_mtz
    from mosflm_py.truthcheck import compare

    m = read_unmerged_mtz(mtz)
    op, frac = dc.best_reindex(np.asarray(m.hkl_original, np.int64),
                               np.asarray(m.columns["ROT"], float), truth)
    out = {"reindex": op.tolist(), "reindex_matched_fraction": frac}
    if not np.array_equal(op, np.eye(3, dtype=int)):
        g = gemmi.read_mtz_file(str(mtz))
        g.switch_to_original_hkl()
        data = np.array(g.array, copy=True)
        data[:, :3] = np.rint(data[:, :3]) @ op.T
        g.set_data(data)
        g.switch_to_asu_hkl()
        mtz = mtz.with_name(mtz.stem + "_reindexed.mtz")
        g.write_to_file(str(mtz))
    out["truth"] = asdict(compare(mtz, truth))
    return out


# --------------------------------------------------------------------------- DIALS
def run_dials(workdir: Path, params, nproc: int) -> dict | None:
    if dc.dials_bin("dials.import") is None:
        return None
    imgdir = workdir / "images"
    run = workdir / "dials"
    if run.exists():
        shutil.rmtree(run)
    run.mkdir()
    env = dc.clean_env(nthreads=1)
    cell = ",".join(f"{x:g}" for x in params.cell)
    sg = params.space_group.replace(" ", "")
    steps = [
        ("import", ["dials.import", f"template={imgdir}/sim_#####.cbf"]),
        ("find_spots", ["dials.find_spots", "imported.expt", f"nproc={nproc}"]),
        ("index", ["dials.index", "imported.expt", "strong.refl", f"space_group={sg}",
                   f"unit_cell={cell}", f"nproc={nproc}"]),
        ("refine", ["dials.refine", "indexed.expt", "indexed.refl", f"nproc={nproc}"]),
        ("integrate", ["dials.integrate", "refined.expt", "refined.refl", f"nproc={nproc}"]),
        ("export", ["dials.export", "integrated.expt", "integrated.refl",
                    "intensity=profile+sum", "mtz.hklout=integrated.mtz"]),
    ]
    res: dict = {"version": dc.dials_version(), "steps": {}}
    total = cpu = peak = 0.0
    load0 = dc.load_average()
    for name, cmd in steps:
        exe = dc.dials_bin(cmd[0])
        m = dc.run_measured([exe, *cmd[1:]], run, env=env, log_path=run / f"{name}.out")
        res["steps"][name] = {"seconds": m.seconds, "cpu_seconds": m.cpu_seconds,
                              "peak_pss_mib": m.peak_pss_mib, "returncode": m.returncode}
        total += m.seconds
        cpu += m.cpu_seconds
        peak = max(peak, m.peak_pss_mib)
        if m.returncode != 0:
            res["failed"] = name
            res["tail"] = [s for _, s in m.lines[-15:]]
            break
    res["seconds"] = total
    res["cpu_seconds"] = cpu
    res["load_before"], res["load_after"] = load0, dc.load_average()
    res["peak_pss_mib"] = peak
    mtz = run / "integrated.mtz"
    if mtz.exists():
        rec = dc.read_dials_mtz(mtz)
        op, frac = dc.best_reindex(rec.hkl, rec.rot, imgdir / "truth.npz")
        res["reindex"] = op.tolist()
        res["reindex_matched_fraction"] = frac
        res["truth"] = {k: asdict(v) for k, v in
                        dc.compare_with_truth(rec, imgdir / "truth.npz", op).items()}
        res["n_records"] = len(rec.hkl)
    return res


# --------------------------------------------------------------------------- report
def _fmt_truth_mosflm(t: dict) -> list[str]:
    return [
        f"  vs truth: {t['n_compared']} complete reflections, {t['n_strong']} with I/sig > 10",
        f"    profile fitted: CC(I/sig>10) {t['cc_strong_prf']:.4f}  CC(all) {t['cc_all_prf']:.4f}"
        f"  <I/Itrue> {t['ratio_prf']:.3f}  rms z {t['rmsz_prf']:.2f}",
        f"    summation:      CC(I/sig>10) {t['cc_strong_sum']:.4f}  CC(all) {t['cc_all_sum']:.4f}"
        f"  <I/Itrue> {t['ratio_sum']:.3f}  rms z {t['rmsz_sum']:.2f}",
    ]


def _fmt_truth_dials(t: dict) -> list[str]:
    out = []
    for k, label in (("prf", "profile fitted"), ("sum", "summation")):
        if k in t:
            r = t[k]
            out.append(f"    {label + ':':16s}CC(I/sig>10) {r['cc_strong']:.4f}  CC(all) "
                       f"{r['cc_all']:.4f}  <I/Itrue> {r['ratio']:.3f}  rms z {r['rmsz']:.2f}"
                       f"  ({r['n_compared']} compared, {r['n_strong']} I/sig>10)")
    return out


def report(params, nproc: int, t_sim: float, mos: dict, dials: dict | None) -> str:
    n = params.n_images
    lines = [
        "",
        f"Benchmark: {params.nslow} x {params.nfast} px ({params.pixel_size} mm), {n} images of "
        f"{params.osc_width} deg, mosaic {params.mosaic} deg, cell {params.cell} "
        f"{params.space_group}; nproc {nproc} on {os.cpu_count()} cores",
        f"Simulation: {t_sim:.1f} s" + (" (reused)" if t_sim == 0 else ""),
        "",
        f"mosflm-py: {mos['seconds']:.1f} s wall, {n / mos['seconds']:.2f} images/s, "
        f"CPU {mos.get('cpu_seconds', 0):.1f} s, exit {mos['returncode']}, "
        f"{mos.get('mosaic_keyword', '')}",
        f"  peak memory {mos['peak_pss_mib']:.0f} MiB (PSS of tree; RSS sum "
        f"{mos['peak_rss_mib']:.0f}, largest process {mos['peak_single_rss_mib']:.0f}); "
        f"load average {mos.get('load_before', 0):.1f} before, "
        f"{mos.get('load_after', 0):.1f} after",
    ]
    for k, v in mos["stages"].items():
        if not k.startswith("_"):
            lines.append(f"  {k:45s} {v:8.1f} s")
    if "truth" in mos:
        lines.append(f"  setting: reindex {mos['reindex']} "
                     f"({100 * mos['reindex_matched_fraction']:.0f}% of records matched)")
        lines += _fmt_truth_mosflm(mos["truth"])
    elif "tail" in mos:
        lines += ["  no MTZ written; last lines:"] + ["    " + s for s in mos["tail"]]
    if dials is None:
        lines += ["", "DIALS: not run (skipped, or /usr/bin/dials.* not installed)"]
        return "\n".join(lines)
    lines += ["", f"{dials.get('version') or 'DIALS'}: {dials['seconds']:.1f} s wall, "
              f"{n / dials['seconds']:.2f} images/s, CPU {dials['cpu_seconds']:.1f} s",
              f"  peak memory {dials['peak_pss_mib']:.0f} MiB (largest step, PSS of tree); "
              f"load average {dials['load_before']:.1f} before, {dials['load_after']:.1f} after"]
    for k, v in dials["steps"].items():
        lines.append(f"  dials.{k:39s} {v['seconds']:8.1f} s  (CPU {v['cpu_seconds']:6.1f} s, "
                     f"{v['peak_pss_mib']:.0f} MiB)")
    if "failed" in dials:
        lines += [f"  dials.{dials['failed']} failed; last lines:"] + \
                 ["    " + s for s in dials["tail"]]
    if "truth" in dials:
        lines.append(f"  vs truth: {dials['n_records']} records; reindex {dials['reindex']} "
                     f"({100 * dials['reindex_matched_fraction']:.0f}% of records matched)")
        lines += _fmt_truth_dials(dials["truth"])
    lines += ["", "Comparison (wall time, same images, same nproc):",
              f"  DIALS / mosflm-py time ratio: {dials['seconds'] / mos['seconds']:.2f} wall, "
              f"{dials['cpu_seconds'] / max(mos.get('cpu_seconds', 0), 1e-9):.2f} CPU"]
    st = mos["stages"]
    pairs = [("spot finding", "spot finding (+ header, image reading)", ["import", "find_spots"]),
             ("indexing", "indexing + refinement", ["index", "refine"]),
             ("integration", "PROCESS (integration, to the summary line)", ["integrate"])]
    for label, ours, theirs in pairs:
        if ours in st and all(s in dials["steps"] for s in theirs):
            d = sum(dials["steps"][s]["seconds"] for s in theirs)
            lines.append(f"  {label:13s} mosflm-py {st[ours]:7.1f} s   DIALS "
                         f"({'+'.join(theirs)}) {d:7.1f} s")
    if "truth" in mos and "truth" in dials and "prf" in dials["truth"]:
        lines.append(f"  CC(I/sig>10) profile: mosflm-py {mos['truth']['cc_strong_prf']:.4f}   "
                     f"DIALS {dials['truth']['prf']['cc_strong']:.4f}")
        lines.append(f"  CC(I/sig>10) sum:     mosflm-py {mos['truth']['cc_strong_sum']:.4f}   "
                     f"DIALS {dials['truth']['sum']['cc_strong']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--size", choices=sorted(SIZES), default="6m")
    ap.add_argument("--nproc", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--osc", type=float, default=0.5, help="degrees per image")
    ap.add_argument("--mosaic", type=float, default=0.25, help="full mosaic spread, deg")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="working folder (default: a temporary one, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep images and outputs")
    ap.add_argument("--no-dials", action="store_true", help="skip DIALS even if installed")
    ap.add_argument("--no-mosflm", action="store_true", help="skip mosflm-py (DIALS only)")
    ap.add_argument("--mosaic-given", action="store_true",
                    help="give mosflm-py the true mosaic spread (MOSAIC x) instead of "
                         "MOSAIC ESTIMATE")
    ap.add_argument("--echo", action="store_true", help="echo the mosflm-py log while it runs")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    a = ap.parse_args(argv)

    params = sim_params(a.images, a.size, a.osc, a.mosaic)
    tmp = None
    if a.workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
        workdir = tmp
    else:
        workdir = a.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"Working folder {workdir}", flush=True)
        t_sim = simulate(workdir, params)
        print(f"Simulated {a.images} images in {t_sim:.1f} s", flush=True)
        mos = {"seconds": float("nan"), "returncode": -1, "peak_pss_mib": 0, "peak_rss_mib": 0,
               "peak_single_rss_mib": 0, "stages": {}}
        if not a.no_mosflm:
            mos = run_mosflm(workdir, params, a.nproc, a.echo, a.mosaic_given)
            print(f"mosflm-py done in {mos['seconds']:.1f} s", flush=True)
        dials = None
        if not a.no_dials:
            if dc.dials_version() is None:
                print("DIALS not found (/usr/bin/dials.*); mosflm-py only", flush=True)
            else:
                dials = run_dials(workdir, params, a.nproc)
                print(f"DIALS done in {dials['seconds']:.1f} s", flush=True)
        print(report(params, a.nproc, t_sim, mos, dials))
        if a.json:
            a.json.write_text(json.dumps({"params": {"images": a.images, "size": a.size,
                                                     "nproc": a.nproc, "osc": a.osc,
                                                     "mosaic": a.mosaic},
                                          "simulate_s": t_sim, "mosflm": mos, "dials": dials},
                                         indent=1, default=str))
    finally:
        if tmp is not None and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif a.keep or a.workdir is not None:
            print(f"Outputs kept in {workdir}")
    return 0 if mos.get("returncode", 1) == 0 or a.no_mosflm else 1


if __name__ == "__main__":
    raise SystemExit(main())
