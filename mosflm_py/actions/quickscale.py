"""QUICKSYMM and QUICKSCALE (+ GO): iMosflm's QuickSymm/QuickScale on the unmerged MTZ.

Thin handlers: options from the keyword record, the computation in :mod:`mosflm_py.scaling`,
results formatted here into the log, the SUMMARY file (loggraph tables), the merged and scaled
MTZ files and (REPORT / ``--report``) an HTML report with PNG graphs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.predict import plot_prediction, predict_image
from mosflm_py.atomic import atomic_write_text
from mosflm_py.errors import MosflmError
from mosflm_py.output.loggraph import Graph, LoggraphTable
from mosflm_py.output.mtz_columns import Flag
from mosflm_py.scaling.laue import MIN_PAIRS
from mosflm_py.scaling.mtzout import write_merged_mtz, write_scaled_unmerged_mtz
from mosflm_py.scaling.observations import QuickScaleError, read_unmerged, sum_partials
from mosflm_py.scaling.pipeline import QuickScaleOptions, QuickScaleResult, space_group_from_text
from mosflm_py.scaling.pipeline import quickscale as run_qs
from mosflm_py.scaling.pipeline import quicksymm as run_qsymm
from mosflm_py.scaling.report import write_report

if TYPE_CHECKING:
    from mosflm_py.registry import Record
    from mosflm_py.scaling.laue import LaueResult
    from mosflm_py.session import Job, Session


def _input_mtz(session: Session, rec: Record | None) -> str:
    if rec is not None and rec.has("HKLIN"):
        return str(rec.sub("HKLIN").get("file"))
    integ = session.results.integration
    if integ is not None and integ.mtz:
        return str(integ.mtz)
    if session.state.files.hklout and Path(session.state.files.hklout).exists():
        return session.state.files.hklout
    raise QuickScaleError(
        "no unmerged MTZ to scale: run PROCESS first or give QUICKSCALE HKLIN <file>"
    )


def _options(rec: Record | None) -> tuple[QuickScaleOptions, str]:
    kw: dict = {}
    kind = "profile"
    if rec is None:
        return QuickScaleOptions(), kind
    if rec.has("SPACEGROUP"):
        kw["space_group"] = str(rec.sub("SPACEGROUP").get("sg"))
        space_group_from_text(kw["space_group"])  # an unknown symbol is an error now
    if rec.has("RESOLUTION"):
        kw["d_min"] = float(rec.sub("RESOLUTION").get("dmin"))
    if rec.has("REJECT"):
        kw["reject"] = float(rec.sub("REJECT").get("s"))
    if rec.has("SPACING"):
        kw["scale_spacing"] = float(rec.sub("SPACING").get("deg"))
    if rec.has("BSPACING"):
        kw["b_spacing"] = float(rec.sub("BSPACING").get("deg"))
    if rec.has("NOBFACTOR"):
        kw["refine_b"] = False
    if rec.has("PARTIALS"):
        p = rec.sub("PARTIALS")
        lo, hi = float(p.get("fmin")), float(p.get("fmax"))
        if not lo < hi:
            raise QuickScaleError(
                f"QUICKSCALE PARTIALS {lo:g} {hi:g}: the lower limit of the "
                "total fraction must be below the upper one"
            )
        kw["frac_min"], kw["frac_max"] = lo, hi
    if rec.has("NBINS"):
        kw["nbins"] = int(rec.sub("NBINS").get("n"))
    if rec.has("INTENSITIES"):
        kind = str(rec.sub("INTENSITIES").get("kind")).lower()
    if rec.has("ACCEPT"):
        kw["accept_flags"] = accepted_flags(rec.sub("ACCEPT").get("flags"))
    if rec.has("ABSORPTION"):
        lmax = rec.sub("ABSORPTION").get("lmax")
        kw["absorption_lmax"] = 4 if lmax is None else int(lmax)
    return QuickScaleOptions(**kw), kind


def accepted_flags(names) -> int:
    """FLAG bits of the ACCEPT subkeyword's names (ALL: every bit)."""

    names = [names] if isinstance(names, str) else list(names or [])
    bits = {
        "GRADIENT": Flag.GRADIENT,
        "BGRATIO": Flag.BGRATIO,
        "PKRATIO": Flag.PKRATIO,
        "NEGATIVE": Flag.NEGATIVE,
        "OVERLOADS": Flag.OVERLOAD,
        "ALL": 0xFF,
    }
    out = 0
    for n in names:
        out |= int(bits[str(n).upper()])
    return out


def _fmt(x: float, f: str = ".3f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, f)


def log_laue(session: Session, laue: LaueResult, chosen: str) -> None:
    """The symmetry-element and Laue-group tables (as POINTLESS prints them)."""
    rep = session.report
    rep.line("")
    rep.line(
        f" Laue group from the intensities (lattice symmetry {laue.lattice}, "
        f"tolerance {laue.max_obliq:g} deg; {laue.n_reflections} reflections in P-1)"
    )
    rep.line(
        f" CC of repeated measurements (identity): {_fmt(laue.cc_identity)} from "
        f"{laue.n_identity} pairs; CC expected for symmetry-related reflections "
        f"{laue.expected_cc:.2f}"
    )
    for note in laue.notes:
        rep.line(f"   Note: {note}")
    rep.line("")
    rep.line(" Scores of the symmetry elements of the lattice")
    rep.table(
        ["Element", "N pairs", "CC", "Z(CC)", "Likelihood"],
        [
            [e.label, e.n_pairs, _fmt(e.cc), _fmt(e.z_cc, ".1f"), _fmt(e.likelihood)]
            for e in laue.elements
        ],
    )
    rep.line("")
    rep.line(" Candidate Laue groups")
    rep.table(
        ["#", "Laue group", "Space group (symmorphic)", "Probability", "CC for", "CC against"],
        [
            [k + 1, c.laue, c.name, _fmt(c.probability), _fmt(c.cc_in), _fmt(c.cc_out)]
            for k, c in enumerate(laue.candidates)
        ],
    )
    rep.line("")
    best = laue.best
    if laue.undetermined:
        unscored = laue.unscored
        if len(unscored) == len(laue.elements):
            most = max(e.n_pairs for e in laue.elements)
            rep.line(" Best Laue group: none (no symmetry element could be scored)")
            why = (f"no symmetry element of the lattice {laue.lattice} has {MIN_PAIRS} pairs of "
                   f"related reflections to score (at most {most})")
        else:
            rep.line(" Best Laue group: none (groups with and without the unscored elements "
                     "score alike)")
            why = (f"{len(unscored)} of the {len(laue.elements)} symmetry elements of the "
                   f"lattice {laue.lattice} have fewer than {MIN_PAIRS} pairs of related "
                   "reflections, and the groups with and without them score alike")
        warn_undetermined(session, why)
        return
    rep.line(
        f" Best Laue group: {best.laue} ({best.name}), probability "
        f"{best.probability:.3f}, confidence {laue.confidence:.3f}"
    )
    if chosen != best.name:
        rep.line(f" The data are merged in {chosen}")
    if laue.confidence < 0.5:
        rep.warning(
            f"The Laue group {best.laue} is chosen with low confidence ({laue.confidence:.2f}).",
            "Integrate more images (a wider rotation range) and run QUICKSYMM again, or "
            "give QUICKSCALE SPACEGROUP to merge in a known group.",
        )


def warn_undetermined(session: Session, why: str) -> None:
    """The warning, with advice, that the data cannot decide the Laue group."""
    session.report.warning(
        f"The Laue group cannot be determined from these data: {why}.",
        "Symmetry-related reflections are usually tens of degrees of rotation apart: "
        "integrate a wider rotation range and run QUICKSYMM again, or give QUICKSCALE "
        "SPACEGROUP <sg> if the space group is known from elsewhere.",
    )


def _read_input(session: Session, rec, name: str) -> tuple:
    """Options, path and observations of the unmerged MTZ a QUICKSYMM/QUICKSCALE line names
    (bad options are reported before a missing input); logs what was read."""
    options, kind = _options(rec)
    path = _input_mtz(session, rec)
    obs = read_unmerged(path, intensities=kind)
    session.report.line("")
    session.report.line(
        f" {name} on {path}: {len(obs)} records, space group in the file "
        f"{obs.space_group.hm}, cell {' '.join(f'{c:.2f}' for c in obs.cell.parameters)}"
    )
    return options, path, obs


def quicksymm(session: Session, job: Job) -> None:
    """GO handler of QUICKSYMM: sum partials, score the Laue group, print the tables."""
    rec = job.record
    options, _, obs = _read_input(session, rec, "QUICKSYMM")
    rep = session.report
    res = run_qsymm(obs, options, require=False)
    _log_partials(session, res.partials, res.observations, obs)
    if res.laue is not None:
        log_laue(session, res.laue, res.space_group.hm)
    else:
        warn_undetermined(session, res.undetermined)
    for note in res.notes:
        rep.line(f" Note: {note}")
    session.results.quicksymm = res


def _log_partials(session: Session, p, obs, raw=None) -> None:
    rep = session.report
    if raw is not None and p.n_flagged > 0.3 * max(p.n_flagged + len(obs), 1):
        _warn_flagged(session, p, obs, raw)
    rep.line(
        f" {p.n_records} records: {p.n_fulls} fulls, {p.n_partial_records} partial parts; "
        f"{p.n_summed} partial sets summed, {p.n_incomplete} incomplete sets rejected, "
        f"{p.n_flagged} reflections rejected by FLAG or a bad sigma; {len(obs)} observations "
        f"used ({obs.intensity_kind} intensities)"
    )


def _summed_for_message(obs, options: QuickScaleOptions):

    return sum_partials(
        obs,
        options.frac_min,
        options.frac_max,
        reject_flags=int(~(Flag.EDGE | options.accept_flags) & 0xFF),
    )


def _warn_flagged(session: Session, p, obs, raw) -> None:
    """Most reflections rejected by the integration's flags: say which flags, and the way out."""

    counts = {f.name: int(((raw.flag & int(f)) != 0).sum()) for f in Flag if f is not Flag.EDGE}
    names = [k for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v]
    share = 100.0 * p.n_flagged / max(p.n_flagged + len(obs), 1)
    detail = ", ".join(f"{k} {counts[k]}" for k in names)
    name = "OVERLOADS" if names and names[0] == "OVERLOAD" else (names[0] if names else "ALL")
    session.report.warning(
        f"{share:.0f}% of the reflections are rejected because a record of theirs is flagged "
        f"by the integration (records flagged: {detail}).",
        f"Check the integration (e.g. the REJECTION GRADMAX limit for weak, fine-sliced data), "
        f"or keep them with ACCEPT {name} (as Aimless's flag options).",
    )


def quickscale(session: Session, job: Job | None) -> None:
    """GO handler of QUICKSCALE (also run after PROCESS when QUICKSCALE AUTO / ``--report``)."""
    rec = job.record if job is not None else None
    if rec is not None and rec.has("AUTO") and not _has_input(session, rec):
        session.report.line("")
        session.report.line(" QuickScale will run at the end of every PROCESS run.")
        return
    options, path, obs = _read_input(session, rec, "QUICKSCALE")
    rep = session.report
    try:
        res = run_qs(obs, options)
    except QuickScaleError:
        summed, p = _summed_for_message(obs, options)
        _log_partials(session, p, summed, obs)
        raise
    _log_partials(session, res.symm.partials, res.observations, obs)
    if res.symm.laue is not None:
        log_laue(session, res.symm.laue, res.space_group.hm)
    for note in res.symm.notes:
        rep.line(f" Note: {note}")
    log_scaling(session, res, options)
    stem = os.path.splitext(path)[0]
    merged = (
        str(rec.sub("HKLOUT").get("file"))
        if rec is not None and rec.has("HKLOUT")
        else f"{stem}_merged.mtz"
    )
    scaled = (
        str(rec.sub("SCALED").get("file"))
        if rec is not None and rec.has("SCALED")
        else f"{stem}_scaled.mtz"
    )

    write_merged_mtz(merged, res.merged, res.observations, res.space_group)
    write_scaled_unmerged_mtz(scaled, res.observations, res.space_group, res.g, res.sigma, res.keep)
    rep.line("")
    rep.line(
        f" Merged MTZ file written: {merged} ({len(res.merged.hkl)} reflections, "
        f"{res.space_group.hm})"
    )
    rep.line(f" Scaled unmerged MTZ file written: {scaled}")
    summary = session.state.files.summary
    if summary:
        append_summary(summary, res)
        rep.line(f" QuickScale tables added to the SUMMARY file {summary}")
    session.results.quickscale = res
    report = (
        str(rec.sub("REPORT").get("file"))
        if rec is not None and rec.has("REPORT")
        else session.state.quickscale.report
    )
    if report == "":  # --report without a file name
        report = f"{stem}_report.html"
    if report:
        files = write_report(
            report,
            res,
            session_summary(session, os.path.splitext(report)[0]),
            warnings=list(session.report.warnings),
        )
        rep.line(f" HTML report written: {report} (and {len(files)} PNG graphs)")


def _has_input(session: Session, rec: Record) -> bool:
    try:
        _input_mtz(session, rec)
    except QuickScaleError:
        return False
    return True


def _indexing_rows(session: Session) -> dict:
    idx = session.results.indexing
    table = getattr(idx, "table", None)
    if not table:
        return {}
    rows = [
        [
            r.number,
            r.lattice,
            float(r.penalty),
            " ".join(f"{c:.2f}" for c in r.cell),
            float(r.sdcell),
            float(r.fracn),
            float(r.sigma_xy),
            bool(r.refined),
        ]
        for r in table
    ]
    return {"indexing": {"rows": rows, "chosen": int(getattr(idx, "chosen", -1))}}


def _picture(session: Session, stem: str) -> dict:
    """The first integrated image with the final predictions (PNG), as iMosflm shows it."""
    integ = session.results.integration

    try:
        first = int(integ.images[0][0].image)
        path = f"{stem}_image_{first}.png"
        plot_prediction(session, predict_image(session, first), path)
    except (MosflmError, OSError, KeyError, IndexError, TypeError, AttributeError):
        return {}
    return {"picture": path, "picture_image": first}


def session_summary(session: Session, stem: str | None = None) -> dict:
    """Plain data of the earlier steps for the report: indexing solutions, per-image data of
    the last PROCESS run and a picture of its first image with predictions (when known)."""
    out = _indexing_rows(session)
    integ = session.results.integration
    if integ is None or not integ.images:
        return out
    cols: dict[str, list] = {
        k: []
        for k in (
            "image",
            "beam_x",
            "beam_y",
            "distance",
            "tilt",
            "twist",
            "yscale",
            "phix",
            "phiy",
            "phiz",
            "mosaic",
            "rms",
            "full",
            "partial",
            "overlap",
            "overload",
            "bad",
            "isig",
            "isig_outer",
        )
    }
    try:
        for st, ref in integ.images:
            e = ref.experiment
            d, cr = e.detector, e.crystal
            vals = (
                st.image,
                d.beam_x,
                d.beam_y,
                d.distance,
                d.tilt,
                d.twist,
                d.yscale,
                cr.missets[0],
                cr.missets[1],
                cr.missets[2],
                cr.mosaic,
                ref.rms,
                st.n_full,
                st.n_partial,
                st.n_overlap,
                st.n_overload,
                st.n_bad,
                st.isig_prf,
                st.isig_prf_outer,
            )
            for k, v in zip(cols, vals):
                cols[k].append(float("nan") if v is None else float(v))
    except (AttributeError, TypeError, ValueError, IndexError):
        # PROCESS's per-image records changed shape: the report goes without these graphs
        return out
    out["images"] = cols
    if integ.profiles:
        out["profiles"] = integ.profiles
    if stem is not None:
        out.update(_picture(session, stem))
    return out


def log_scaling(session: Session, res: QuickScaleResult, options: QuickScaleOptions) -> None:
    """Scaling model, per-batch table, statistics by shell and overall, suggested cut-off."""
    rep = session.report
    sc = res.scaling
    st = res.stats
    rep.line("")
    rep.line(
        f" Scaling: scale every {options.scale_spacing:g} deg"
        + (f", relative B every {options.b_spacing:g} deg" if options.refine_b else "")
        + f" along the rotation; {sc.cycles} cycles"
        + ("" if sc.converged else " (not converged)")
        + f"; error model SdFac {res.sdfac:.3f} SdAdd {res.sdadd:.4f}; "
        f"{res.n_outliers} outliers rejected (> {options.reject:g} sigma)"
    )
    if sc.ln_absorption is not None:
        a = np.exp(sc.ln_absorption)
        rep.line(
            f" Scaling: absorption surface to order {sc.model.lmax} "
            f"({len(sc.model.c)} coefficients, restrained): correction factor "
            f"{a.min():.3f} to {a.max():.3f}, rms {100 * np.std(sc.ln_absorption):.1f} %"
        )
    rows = res.batches
    step = max(1, len(rows) // 40)
    rep.line("")
    rep.line(
        " Scales and statistics against batch"
        + (f" (every {step}th batch; all in SUMMARY)" if step > 1 else "")
    )
    rep.table(
        ["Batch", "Phi", "N", "Rejected", "Scale", "B", "Rmerge", "<I/sig>"],
        [
            [
                b.batch,
                f"{b.phi:.2f}",
                b.n_obs,
                b.n_rejected,
                f"{b.scale:.3f}",
                f"{b.bfactor:.2f}",
                _fmt(b.r_merge),
                _fmt(b.i_over_sigma, ".1f"),
            ]
            for b in rows[::step]
        ],
    )
    rep.line("")
    rep.line(
        f" Merging statistics in {res.space_group.hm} (Laue group {res.space_group.laue_str()})"
    )
    hdr = [
        "Dmax",
        "Dmin",
        "Nobs",
        "Nuniq",
        "Compl%",
        "Mult",
        "Rmerge",
        "Rmeas",
        "Rpim",
        "CC1/2",
        "CC*",
        "<I/sig>",
        "AnoCmp%",
        "AnoMlt",
        "CCanom",
    ]

    rep.table(
        hdr,
        [s.table_cells() for s in st.shells] + [["Overall", *st.overall.table_cells()[1:]]],
    )
    rep.line("")
    rep.line(
        " Suggested resolution cut-off: "
        + (
            f"CC1/2 > {st.cc_half_limit:g} at {st.cutoff_cc_half:.2f} A"
            if st.cutoff_cc_half
            else f"CC1/2 stays above {st.cc_half_limit:g} to the edge ({st.overall.d_min:.2f} A)"
        )
        + "; "
        + (
            f"<I/sig> > {st.isig_limit:g} at {st.cutoff_isig:.2f} A"
            if st.cutoff_isig
            else f"<I/sig> stays above {st.isig_limit:g} to the edge"
        )
    )


def summary_tables(res: QuickScaleResult) -> list[LoggraphTable]:
    """QuickScale's loggraph tables for the SUMMARY file."""
    st = res.stats
    shells = LoggraphTable(
        title="QuickScale statistics against resolution",
        graphs=[
            Graph("Rmerge Rmeas Rpim v resolution", (1, 7, 8, 9)),
            Graph("CC1/2 CC* CCanom v resolution", (1, 10, 11, 14)),
            Graph("I/sigma v resolution", (1, 12)),
            Graph("Completeness v resolution", (1, 5, 13)),
            Graph("Multiplicity v resolution", (1, 6)),
        ],
        columns=[
            "1/d^2",
            "Dmin",
            "Nobs",
            "Nuniq",
            "Compl",
            "Mult",
            "Rmerge",
            "Rmeas",
            "Rpim",
            "CC1/2",
            "CC*",
            "I/sigI",
            "AnoCmp",
            "CCanom",
        ],
        rows=[
            [
                1 / s.d_min**2,
                s.d_min,
                s.n_obs,
                s.n_unique,
                s.completeness,
                s.multiplicity,
                s.r_merge,
                s.r_meas,
                s.r_pim,
                s.cc_half,
                s.cc_star,
                s.i_over_sigma,
                s.anom_completeness,
                s.cc_anom,
            ]
            for s in st.shells
        ],
        formats=[
            ".4f",
            ".2f",
            "d",
            "d",
            ".1f",
            ".2f",
            ".3f",
            ".3f",
            ".3f",
            ".3f",
            ".3f",
            ".1f",
            ".1f",
            ".3f",
        ],
    )
    batches = LoggraphTable(
        title="QuickScale scales against batch",
        graphs=[
            Graph("Scale v batch", (1, 5)),
            Graph("Relative B v batch", (1, 6)),
            Graph("Rmerge v batch", (1, 7)),
            Graph("I/sigma v batch", (1, 8)),
        ],
        columns=["Batch", "Phi", "N", "Nrej", "Scale", "Bfactor", "Rmerge", "I/sigI"],
        rows=[
            [b.batch, b.phi, b.n_obs, b.n_rejected, b.scale, b.bfactor, b.r_merge, b.i_over_sigma]
            for b in res.batches
        ],
        formats=["d", ".2f", "d", "d", ".4f", ".2f", ".3f", ".1f"],
    )
    return [shells, batches]


def append_summary(path: str, res: QuickScaleResult) -> None:
    """Add (or replace) the QuickScale tables at the end of the SUMMARY file."""
    p = Path(path)
    text = p.read_text(encoding="utf-8", errors="replace") if p.exists() else ""
    marker = "\n$TABLE: QuickScale"
    if marker in text:
        text = text[: text.index(marker)] + "\n"
    text += "".join("\n" + t.format() for t in summary_tables(res))
    atomic_write_text(p, text)


def auto_after_process(session: Session) -> None:
    """QuickScale at the end of a PROCESS run when QUICKSCALE AUTO or ``--report`` asked for it.

    A failure is reported with ``***`` and counted (the run exits non-zero: the report that was
    asked for is missing), but does not undo the integration, whose MTZ is written.
    """
    if not session.state.quickscale.auto:
        return

    try:
        quickscale(session, None)
    except MosflmError as err:
        session.failures += 1
        session.report.error(
            f"QuickScale after PROCESS failed: {err}\nThe integration's MTZ "
            "file is written; run QUICKSCALE (then GO) with other options, "
            "e.g. SPACEGROUP or RESOLUTION."
        )
