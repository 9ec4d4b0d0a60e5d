#!/usr/bin/env python
"""Merged intensities against the truth: DIALS (dials.scale + dials.merge on DIALS's own
integration) beside QuickScale (on mosflm-py's own integration, and on DIALS's unmerged MTZ).

    python scripts/bench_quickscale_dials.py [--workdir /tmp/qs_dials] [--own /tmp/bench2]
                                             [--sets hex_twotheta ...] [--no-dials]

For every development set (../shared/data/sim/dev_*):

* DIALS, where installed (``dials.import`` on the PATH; a yardstick only, never a dependency of
  mosflm-py): the chain of the set's ``dials_ref`` run (import, find_spots, index with the true
  space group, refine, integrate), then ``dials.scale`` and ``dials.merge`` with their defaults;
  one step at a time, ``nice -n 10``, ``nproc=1`` (a shared 2-core machine). Steps whose output
  exists in the work folder are not run again.
* QuickScale on mosflm-py's integrated MTZ ``<own>/<set>/integrate/integrated.mtz`` (written
  by ``scripts/bench_devset.py --workdir <own>``), and on DIALS's ``dials_ref/integrated.mtz``.

CC of the merged intensities (IMEAN, else I) with the true F², Pearson, over the reflections
both have, after the lattice's re-indexing that fits the truth best (helpers of the set's
``tools/score_mtz.py``). Prints one table; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gemmi
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIM = REPO.parent / "shared" / "data" / "sim"
SETS = ["hex_twotheta", "c2221_fine_weak", "p21_highmosaic_ccd", "p1_smallcell"]


def _score_module():
    spec = importlib.util.spec_from_file_location("score_mtz", SIM / "tools" / "score_mtz.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cc_merged_vs_truth(mtz_path: str, set_dir: Path, matched: dict | None = None) -> dict:
    """Pearson CC of the merged intensities with F_true², best lattice re-indexing.

    *matched*, if given, receives {truth key: (I, F²)} of the matched reflections, for the CC
    over the reflections two programs share."""
    sm = _score_module()
    meta = json.loads((set_dir / "truth.json").read_text())
    sg = gemmi.SpaceGroup(meta.get("space_group_full_symbol") or meta["space_group"])
    th, tF = sm.read_truth(str(set_dir / "truth_F.hkl"))
    rots = sm.laue_rotations(sg)
    tk = sm.canonical_keys(th, rots)
    order = np.argsort(tk)
    tk_s, t2_s = tk[order], (tF**2)[order]
    mtz = gemmi.read_mtz_file(mtz_path)
    labels = mtz.column_labels()
    col = "IMEAN" if "IMEAN" in labels else "I"
    data = np.array(mtz, copy=False)
    hkl = data[:, :3].round().astype(np.int64)
    inten = data[:, labels.index(col)]
    ok = np.isfinite(inten)
    hkl, inten = hkl[ok], inten[ok]
    cands = sm.candidate_reindex_ops(meta["cell"], list(mtz.cell.parameters), 0.05)
    if len(cands) == 0:
        cands = np.eye(3, dtype=np.int64)[None]
    best = {"cc": -2.0}
    for P in cands:
        k = sm.canonical_keys(hkl @ P, rots)
        pos = np.clip(np.searchsorted(tk_s, k), 0, len(tk_s) - 1)
        hit = (tk_s[pos] == k) & (t2_s[pos] > 0)
        if hit.sum() < 10:
            continue
        cc = float(sm.pearson(inten[hit], t2_s[pos][hit]))
        if cc > best["cc"]:
            best = {"cc": cc, "n": int(hit.sum()), "op": sm.op_string(P)}
            if matched is not None:
                matched.clear()
                matched.update(zip(k[hit].tolist(), zip(inten[hit], t2_s[pos][hit])))
    return best


def common_cc(a: dict, b: dict) -> tuple[float, float, int]:
    """CC with the truth of two programs' merged intensities over the reflections both have."""
    keys = sorted(set(a) & set(b))
    if len(keys) < 10:
        return float("nan"), float("nan"), len(keys)
    ia, ta = np.array([a[k] for k in keys]).T
    ib, tb = np.array([b[k] for k in keys]).T
    return float(np.corrcoef(ia, ta)[0, 1]), float(np.corrcoef(ib, tb)[0, 1]), len(keys)


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    with open(log, "w") as fh:
        rc = subprocess.run(["nice", "-n", "10", *cmd], cwd=cwd, stdout=fh, stderr=fh).returncode
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {rc}); see {log}")


def run_dials(name: str, work: Path) -> tuple[str, dict]:
    """The DIALS chain for one set; returns the merged MTZ and the step times (s)."""
    set_dir = SIM / f"dev_{name}"
    meta = json.loads((set_dir / "truth.json").read_text())
    sg = (meta.get("space_group_full_symbol") or meta["space_group"]).replace(" ", "")
    images = sorted((set_dir / "images").glob("*"))
    m = re.match(r"^(.*_)(\d+)(\..*)$", images[0].name)
    template = str(images[0].parent / (m.group(1) + "#" * len(m.group(2)) + m.group(3)))
    work.mkdir(parents=True, exist_ok=True)
    steps = [
        ("import", ["dials.import", f"template={template}"], "imported.expt"),
        ("find_spots", ["dials.find_spots", "imported.expt", "nproc=1"], "strong.refl"),
        (
            "index",
            ["dials.index", "imported.expt", "strong.refl", f"space_group={sg}"],
            "indexed.refl",
        ),
        ("refine", ["dials.refine", "indexed.expt", "indexed.refl"], "refined.refl"),
        (
            "integrate",
            ["dials.integrate", "refined.expt", "refined.refl", "nproc=1"],
            "integrated.refl",
        ),
        ("scale", ["dials.scale", "integrated.expt", "integrated.refl"], "scaled.refl"),
        ("merge", ["dials.merge", "scaled.expt", "scaled.refl"], "merged.mtz"),
    ]
    times = {}
    for step, cmd, out in steps:
        if (work / out).exists():
            continue
        t = time.time()
        _run(cmd, work, work / f"{step}.stdout")
        times[step] = round(time.time() - t, 1)
    return str(work / "merged.mtz"), times


def run_quickscale(mtz: str, out: Path) -> dict:
    """QuickScale (library call, defaults) on an unmerged MTZ; the merged MTZ's CC later."""
    from mosflm_py.output.mtz_columns import Flag
    from mosflm_py.scaling.mtzout import write_merged_mtz
    from mosflm_py.scaling.observations import QuickScaleError, read_unmerged
    from mosflm_py.scaling.pipeline import QuickScaleOptions, quickscale

    t = time.time()
    obs = read_unmerged(mtz)
    accepted = ""
    try:
        res = quickscale(obs)
    except QuickScaleError:
        # the integration flagged (nearly) everything: as a user would, keep GRADIENT-flagged
        # observations (QUICKSCALE ACCEPT GRADIENT), and say so in the table
        res = quickscale(obs, QuickScaleOptions(accept_flags=int(Flag.GRADIENT)))
        accepted = "GRADIENT"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_merged_mtz(str(out), res.merged, res.observations, res.space_group)
    return {
        "merged": str(out),
        "seconds": round(time.time() - t, 1),
        "space_group": res.space_group.hm,
        "n_obs": len(res.observations),
        "cc_half": res.stats.overall.cc_half,
        "r_merge": res.stats.overall.r_merge,
        "accepted": accepted,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/qs_dials")
    ap.add_argument("--own", default="/tmp/bench2", help="bench_devset.py's work folder")
    ap.add_argument("--sets", nargs="*", default=SETS)
    ap.add_argument("--no-dials", action="store_true", help="do not run DIALS")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not SIM.exists():
        print(f"no development set at {SIM}")
        return 1
    have_dials = shutil.which("dials.import") is not None and not args.no_dials
    work = Path(args.workdir)
    rows = {}
    for name in args.sets:
        set_dir = SIM / f"dev_{name}"
        row: dict = {}
        matched: dict[str, dict] = {"dials": {}, "qs_own": {}}
        if have_dials:
            try:
                merged, times = run_dials(name, work / name / "dials")
                row["dials"] = {
                    **cc_merged_vs_truth(merged, set_dir, matched["dials"]),
                    "times": times,
                }
            except RuntimeError as err:
                row["dials"] = {"error": str(err)}
        for label, mtz in (
            ("qs_own", Path(args.own) / f"dev_{name}" / "integrate" / "integrated.mtz"),
            ("qs_dials_mtz", set_dir / "dials_ref" / "integrated.mtz"),
        ):
            if not mtz.exists():
                row[label] = {"error": f"{mtz} missing"}
                continue
            try:
                q = run_quickscale(str(mtz), work / name / f"{label}_merged.mtz")
                row[label] = {**q, **cc_merged_vs_truth(q["merged"], set_dir, matched.get(label))}
            except Exception as err:  # noqa: BLE001 (a benchmark reports and goes on)
                row[label] = {"error": f"{type(err).__name__}: {err}"}
        if matched["dials"] and matched["qs_own"]:
            cd, cq, n = common_cc(matched["dials"], matched["qs_own"])
            row["common"] = {"dials": cd, "qs_own": cq, "n": n}
        rows[name] = row
        print(json.dumps({name: row}), flush=True)

    def cell(d: dict | None) -> str:
        if not d:
            return "-"
        if "error" in d:
            return "error"
        return f"{d['cc']:.4f} ({d['n']})" + ("*" if d.get("accepted") else "")

    print()
    print(f"CC(merged I, F_true^2) (reflections)   DIALS {'on' if have_dials else 'not run'}")
    print(
        f"{'set':22s} {'DIALS scale+merge':>20s} {'QuickScale own int.':>20s} "
        f"{'QuickScale DIALS MTZ':>21s}"
    )
    for name, row in rows.items():
        print(
            f"{name:22s} {cell(row.get('dials')):>20s} {cell(row.get('qs_own')):>20s} "
            f"{cell(row.get('qs_dials_mtz')):>21s}"
        )
        if "common" in row:
            c = row["common"]
            print(
                f"{'  same reflections':22s} {c['dials']:>11.4f} ({c['n']}) "
                f"{c['qs_own']:>11.4f} ({c['n']})"
            )
        for k in ("dials", "qs_own", "qs_dials_mtz"):
            if row.get(k, {}).get("error"):
                print(f"    {k}: {row[k]['error']}")
    if any(r.get("qs_own", {}).get("accepted") for r in rows.values()):
        print("* with ACCEPT GRADIENT: the integration flagged a part of every reflection")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(REPO))
    sys.exit(main())
