"""Development-set benchmark: mosflm-py on the nanoBragg sets beside DIALS 3.12's figures.

Usage::

    python scripts/bench_devset.py [--sets p1,hex] [--jobs index,cellref,integrate]
                                   [--workdir DIR] [--json OUT.json] [--timeout 1800]

Runs every development set (``../shared/data/sim/dev_*``, README.md there) through the command
files of ``reference/usage_contract.md`` with no dataset-specific keyword (``tests/devset.py``
writes them):

``index``      AUTOINDEX DPS REFINE IMAGE first IMAGE last / MOSAIC ESTIMATE / GO  (NEWMAT)
``cellref``    the same, then POSTREF SEGMENT 2 with PROCESS first..first+2 and last-2..last
``integrate``  the same indexing, then PROCESS first last / GO  (HKLOUT)

and prints, per set, ours beside DIALS's (``dials_ref/summary.json``): Bravais lattice
(truth in brackets), cell error a, b, c (%) and orientation error (deg) from the set's
``tools/score_matrix.py``, mosaic (MOSAIC ESTIMATE and the last post-refined value against DIALS's
sigma_m and the nanoBragg cap), CC against the truth from ``tools/score_mtz.py`` (profile-fitted
and summation, partials summed), sigma calibration (rms of (I - k I_true)/sigma, computed here
for both programs' MTZ files) and wall time (ours: sum of the jobs run; DIALS: typical pipeline).
Failures (non-zero exit, missing matrix or MTZ) are shown as such; the benchmark never stops on
them.  ``--json`` writes every figure, including the scorers' full output.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import devset  # noqa: E402


def pick_sets(spec: str | None) -> list[str]:
    """Development-set names matching a comma-separated list of substrings (all when empty)."""
    names = devset.available()
    if not spec:
        return names
    keys = [s.strip() for s in spec.split(",") if s.strip()]
    out = [n for n in names if any(k in n for k in keys)]
    if not out:
        raise SystemExit(f"no development set matches {spec!r} (have: {', '.join(names)})")
    return out


def dials_figures(ds: devset.DevSet) -> dict:
    """DIALS 3.12's figures for ``ds`` from its summary.json (and its MTZ's sigma calibration)."""
    s = ds.dials_summary()
    ref = s.get("matrix_score_refined", {}).get("static", {})
    mtz = s.get("mtz_score", {})
    return {
        "lattice": (s.get("bravais_recommended_highest_symmetry") or {}).get("bravais"),
        "cell_error_percent_abc": ref.get("cell_error_percent_abc"),
        "orientation_error_deg": ref.get("orientation_error_deg"),
        "sigma_m_deg": s.get("dials_profile_sigma_m_deg"),
        "cc_profile": mtz.get("pearson_all"),
        "cc_summation": mtz.get("summation_pearson_all"),
        "sigma_calibration": devset.sigma_calibration(ds.path / "dials_ref" / "integrated.mtz", ds),
        "seconds": s.get("total_wall_s_typical_pipeline"),
    }


def run_set(ds: devset.DevSet, jobs: list[str], workdir: Path, timeout: float) -> dict:
    """Run ``jobs`` on ``ds`` in ``workdir/<set>/<job>/`` and score them."""
    res: dict = {
        "set": ds.name,
        "truth_lattice": ds.lattice,
        "truth_mosaic_cap": ds.mosaic,
        "jobs": {},
    }
    for kind in jobs:
        run = devset.run_job(ds, kind, workdir / ds.name / kind, timeout=timeout)
        job = {
            "returncode": run.returncode,
            "seconds": round(run.seconds, 1),
            "lattice": run.lattice,
            "mosaic_estimate": run.mosaic_estimate,
            "mosaic_refined": run.mosaic_refined,
            "failure": _failure(run.log) if run.returncode != 0 else None,
            "matrix": devset.score_matrix(run.matrix, ds),
        }
        if kind == "integrate":
            job["mtz"] = devset.score_mtz(run.mtz, ds)
            job["sigma_calibration"] = devset.sigma_calibration(run.mtz, ds)
        res["jobs"][kind] = job
        print(f"  {ds.name} {kind}: exit {run.returncode}, {run.seconds:.1f} s", flush=True)
    res["dials"] = dials_figures(ds)
    return res


def _failure(log: str) -> str:
    """The last ``***`` line of a failed run (what the program said), else its last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    bad = [ln for ln in lines if "***" in ln and set(ln) != {"*"}]
    return (bad or lines or ["(no output)"])[-1][:160]


def _f(v, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def _cell(score: dict) -> str:
    if "error" in score:
        return score["error"][:26]
    return " ".join(f"{v:+.3f}" for v in score["cell_error_percent_abc"])


def _orient(score: dict) -> str:
    return "-" if "error" in score else f"{score['orientation_error_deg']:.3f}"


def table(results: list[dict]) -> str:
    """Side-by-side text table of :func:`run_set` results."""
    rows = []
    for r in results:
        d, jobs = r["dials"], r["jobs"]
        rows.append(
            f"=== {r['set']}  (truth lattice {r['truth_lattice']}, nanoBragg mosaic cap "
            f"{r['truth_mosaic_cap']} deg)"
        )
        rows.append(f"  {'':34s} {'mosflm-py':>28s}   {'DIALS 3.12':>28s}")
        idx = jobs.get("index") or jobs.get("cellref") or jobs.get("integrate")
        if idx:
            rows.append(f"  {'lattice':34s} {str(idx['lattice']):>28s}   {str(d['lattice']):>28s}")
        dcell = (
            "-"
            if d["cell_error_percent_abc"] is None
            else " ".join(f"{v:+.3f}" for v in d["cell_error_percent_abc"])
        )
        for kind, label in (
            ("index", "AUTOINDEX"),
            ("cellref", "POSTREF SEGMENT 2"),
            ("integrate", "after PROCESS (NEWMAT)"),
        ):
            if kind in jobs:
                j = jobs[kind]
                rows.append(
                    f"  {'cell error a b c % ' + label:34s} {_cell(j['matrix']):>28s}   "
                    f"{dcell:>28s}"
                )
                rows.append(
                    f"  {'orientation error deg ' + label:34s} "
                    f"{_orient(j['matrix']):>28s}   "
                    f"{_f(d['orientation_error_deg']):>28s}"
                )
        if idx:
            est = _f(idx["mosaic_estimate"], "{:.2f}")
            ref = [
                _f(jobs[k]["mosaic_refined"], "{:.2f}")
                for k in ("cellref", "integrate")
                if k in jobs
            ]
            rows.append(
                f"  {'mosaic deg estimate / refined':34s} "
                f"{est + ' / ' + ' '.join(ref or ['-']):>28s}   "
                f"{'sigma_m ' + _f(d['sigma_m_deg']):>28s}"
            )
        if "integrate" in jobs:
            j = jobs["integrate"]
            m = j["mtz"]
            ours = (
                "MTZ: " + m["error"][:23]
                if "error" in m
                else f"{_f(m.get('pearson_all'), '{:.4f}')} / "
                f"{_f(m.get('summation_pearson_all'), '{:.4f}')}"
            )
            rows.append(
                f"  {'CC(I, F^2) profile / summation':34s} {ours:>28s}   "
                f"{_f(d['cc_profile'], '{:.4f}') + ' / ' + _f(d['cc_summation'], '{:.4f}'):>28s}"
            )
            s, ds_ = j["sigma_calibration"], d["sigma_calibration"]

            def sc(x):
                if "error" in x:
                    return x["error"][:28]
                return f"{_f(x.get('IPR'), '{:.2f}')} / {_f(x.get('I'), '{:.2f}')}"

            rows.append(f"  {'sigma calib. rms z prf / sum':34s} {sc(s):>28s}   {sc(ds_):>28s}")
        secs = sum(j["seconds"] for j in jobs.values())
        rows.append(
            f"  {'time s (' + '+'.join(jobs) + ')':34s} {secs:>28.1f}   "
            f"{_f(d['seconds'], '{:.1f}'):>28s}"
        )
        for kind, j in jobs.items():
            if j["returncode"] != 0:
                rows.append(f"  ! {kind} exited {j['returncode']}: {j['failure']}")
        rows.append("")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", help="comma-separated substrings of set names (default: all)")
    ap.add_argument(
        "--jobs",
        default=",".join(devset.JOBS),
        help="comma-separated subset of index,cellref,integrate (default: all)",
    )
    ap.add_argument("--workdir", help="folder for the runs (default: a temporary folder, removed)")
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per program run")
    a = ap.parse_args(argv)
    jobs = [j.strip() for j in a.jobs.split(",") if j.strip()]
    bad = [j for j in jobs if j not in devset.JOBS]
    if bad:
        ap.error(f"unknown job(s) {', '.join(bad)}; choose from {', '.join(devset.JOBS)}")
    names = pick_sets(a.sets)
    if not names:
        print(f"No development set found under {devset.SIM_ROOT}", file=sys.stderr)
        return 1
    tmp = None
    if a.workdir:
        work = Path(a.workdir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_devset_")
        work = Path(tmp.name)
    try:
        results = [run_set(devset.load(n), jobs, work, a.timeout) for n in names]
    finally:
        if tmp is not None:
            tmp.cleanup()
    print()
    print(table(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
        print(f"Figures written to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
