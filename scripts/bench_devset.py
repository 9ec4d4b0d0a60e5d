"""Development-set benchmark: mosflm-py on the nanoBragg sets beside DIALS 3.12's figures.

Usage::

    python scripts/bench_devset.py [--sets p1,hex] [--jobs index,cellref,integrate]
                                   [--workdir DIR] [--json OUT.json] [--timeout 1800]
    python scripts/bench_devset.py --from-json OUT.json     # re-print an earlier run's table

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
for both programs' MTZ files), the rms difference between each part's observed share of its
reflection's summed intensity and its FRACTIONCALC (complete partials with I > 10 sigma;
``devset.fraction_misfit``, issue 8 asks for <= 0.1) and wall time (ours: sum of the jobs run;
DIALS: typical pipeline).
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
        "mtz": {"n_scored": mtz.get("n_scored")},
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
            job["fraction_misfit"] = devset.fraction_misfit(run.mtz)
        res["jobs"][kind] = job
        print(f"  {ds.name} {kind}: exit {run.returncode}, {run.seconds:.1f} s", flush=True)
    res["dials"] = dials_figures(ds)
    return res


def _failure(log: str) -> str:
    """The first ``***`` message of a failed run (what the program said), else its last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    bad = [ln for ln in lines if ln.startswith("***") and set(ln) != {"*"}]
    return (bad or lines or ["(no output)"])[0][:150]


def _f(v, fmt: str = "{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def _cell(score: dict) -> str:
    if "error" in score:
        return score["error"][:30]
    return " ".join(f"{v:+.3f}" for v in score["cell_error_percent_abc"])


def _orient(score: dict) -> str:
    return "-" if "error" in score else f"{score['orientation_error_deg']:.3f}"


def _sigma(x: dict) -> str:
    if "error" in x:
        return x["error"][:30]
    return f"{_f(x.get('IPR'), '{:.2f}')} / {_f(x.get('I'), '{:.2f}')}"


LABEL = 46
COL = 26


def table(results: list[dict]) -> str:
    """Side-by-side text table of :func:`run_set` results (mosflm-py | DIALS 3.12)."""
    rows = []

    def row(label: str, ours: str, dials: str) -> None:
        rows.append(f"  {label:{LABEL}s} {ours:>{COL}s}   {dials:>{COL}s}")

    for r in results:
        d, jobs = r["dials"], r["jobs"]
        rows.append(
            f"=== {r['set']}  (truth: lattice {r['truth_lattice']}, nanoBragg mosaic cap "
            f"{r['truth_mosaic_cap']} deg)"
        )
        row("", "mosflm-py", "DIALS 3.12")
        first = next(iter(jobs.values()), None)
        if first:
            row("lattice (AUTOINDEX suggested)", str(first["lattice"]), str(d["lattice"]))
        dcell = (
            "-"
            if d["cell_error_percent_abc"] is None
            else " ".join(f"{v:+.3f}" for v in d["cell_error_percent_abc"])
        )
        for kind, label in (("index", "AUTOINDEX"), ("cellref", "POSTREF SEGMENT 2")):
            if kind in jobs:
                row(f"cell error a b c (%), {label}", _cell(jobs[kind]["matrix"]), dcell)
                row(
                    f"orientation error (deg), {label}",
                    _orient(jobs[kind]["matrix"]),
                    _f(d["orientation_error_deg"]),
                )
        if first:
            row(
                "mosaic (deg): MOSAIC ESTIMATE",
                _f(first["mosaic_estimate"], "{:.2f}"),
                "sigma_m " + _f(d["sigma_m_deg"]),
            )
            for kind, label in (
                ("cellref", "after cell refinement"),
                ("integrate", "PROCESS, last image (+MOSADD)"),
            ):
                if kind in jobs:
                    row(f"mosaic (deg): {label}", _f(jobs[kind]["mosaic_refined"], "{:.2f}"), "")
        if "integrate" in jobs:
            j = jobs["integrate"]
            m, dm = j["mtz"], d.get("mtz", {})
            if "error" in m:
                row(
                    "CC(I, F_true^2) profile / summation",
                    "MTZ: " + m["error"][:20],
                    f"{_f(d['cc_profile'], '{:.4f}')} / {_f(d['cc_summation'], '{:.4f}')}",
                )
            else:
                row(
                    "CC(I, F_true^2) profile / summation",
                    f"{_f(m.get('pearson_all'), '{:.4f}')} / "
                    f"{_f(m.get('summation_pearson_all'), '{:.4f}')}",
                    f"{_f(d['cc_profile'], '{:.4f}')} / {_f(d['cc_summation'], '{:.4f}')}",
                )
                row(
                    "reflections scored (partials summed)",
                    str(m.get("n_scored")),
                    str(dm.get("n_scored", "-")),
                )
            row(
                "sigma calibration rms((I-kI_true)/sig) prf/sum",
                _sigma(j["sigma_calibration"]),
                _sigma(d["sigma_calibration"]),
            )
            fm = j.get("fraction_misfit") or {"error": "not measured"}
            row(
                "rms obs. share - FRACTIONCALC (I>10sig) / n",
                fm["error"][:26] if "error" in fm else f"{_f(fm['rms'])} / {fm['n_reflections']}",
                "",
            )
        for kind, j in jobs.items():
            row(
                f"wall time (s), {kind} job",
                f"{j['seconds']:.1f}",
                _f(d["seconds"], "{:.1f}") + " (typical pipeline)" if kind == "integrate" else "",
            )
        for kind, j in jobs.items():
            if j["returncode"] != 0:
                rows.append(f"  ! {kind} job exited {j['returncode']}: {j['failure']}")
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
    ap.add_argument("--from-json", metavar="JSON", help="only print the table of an earlier --json")
    a = ap.parse_args(argv)
    if a.from_json:
        print(table(json.loads(Path(a.from_json).read_text())))
        return 0
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
