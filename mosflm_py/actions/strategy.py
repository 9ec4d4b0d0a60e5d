"""STRATEGY and TESTGEN (queued, run by GO): data-collection strategy for the current crystal.

STRATEGY (:mod:`mosflm_py.strategy.plan`): completeness and multiplicity against total rotation,
the best start for a rotation, the rotation that records all reachable data, the best set of
segments, and several crystals combined.  Each ``STRATEGY START a END b`` is remembered with the
crystal orientation of that moment (MATRIX file or AUTOINDEX); later STRATEGY runs count those
ranges as already collected and place new segments to fill what is missing (iMosflm's
multi-crystal strategy: give ``MATRIX xtal1.mat`` / ``STRATEGY START 0 END 40`` / GO, then
``MATRIX xtal2.mat`` / ``STRATEGY ROTATE 40`` / GO).

TESTGEN (:mod:`mosflm_py.strategy.overlaps`): the largest oscillation angle with at most OVERLAP %
spatially overlapped reflections for each start φ, or the overlaps at given ANGLEs, using the
current SEPARATION and mosaic spread.

Geometry (wavelength, distance, beam, detector extent) is that of the current image (IMAGE, else
the first of the series), or of the keywords alone when no TEMPLATE is given; resolution from
RESOLUTION, else (STRATEGY) the nearest detector edge or (TESTGEN) the detector corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.common import (
    MATRIX_SOURCE,
    current_crystal,
    experiment_for_image,
    resolution_limits,
)
from mosflm_py.errors import GeometryError, KeywordError, NotImplementedYet
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.image_geometry import experiment_from
from mosflm_py.imageio.header import ImageHeader
from mosflm_py.output.plot import Curve, render_line_plot, write_line_plot
from mosflm_py.output.summary import SummaryWriter
from mosflm_py.spotfinding.filters import separation_from_spot_size
from mosflm_py.strategy import measured, reflection_passages, unique_reflections
from mosflm_py.strategy import tables as tb
from mosflm_py.strategy.completeness import empty_coverage
from mosflm_py.strategy.overlaps import max_oscillation, overlaps_at
from mosflm_py.strategy.plan import StrategyOptions, plan_strategy

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session

DEFAULT_SPOT_SIZE_PX = 5.0
"""Spot size assumed for the default SEPARATION when no spots were found and none was given."""


@dataclass(frozen=True, eq=False)
class RecordedSegment:
    """A rotation range given with STRATEGY START/END, with the crystal setting of that run."""

    label: str
    experiment: Experiment
    start: float
    end: float


# ------------------------------------------------------------------------------------ helpers
def _image(session: Session) -> int:
    n = session.state.images.image
    return int(n) if n is not None else int(session.images().numbers[0])


def _experiment(session: Session, keyword: str) -> Experiment:
    """The current crystal with the geometry of the current image, or of the keywords alone
    (DISTANCE, BEAM, WAVELENGTH, PIXEL, SIZE ...) when no TEMPLATE or IMAGE is given: a strategy
    is often wanted before any image exists."""
    st = session.state
    if st.images.template is None and st.images.image is None:
        return _keyword_experiment(session, keyword)
    n = _image(session)
    g = session.geometry(n)
    crystal = current_crystal(session, g.beam.wavelength)
    if crystal is None:
        raise GeometryError(
            f"{keyword} needs the crystal orientation: run AUTOINDEX first or "
            "give the MATRIX keyword (and SYMMETRY)"
        )
    return experiment_for_image(session, n, crystal=crystal)


def _keyword_experiment(session: Session, keyword: str) -> Experiment:
    st = session.effective
    det, beam = st.detector, st.beam
    need = {
        "WAVELENGTH": beam.wavelength,
        "DISTANCE": det.distance,
        "BEAM": det.beam,
        "PIXEL": det.pixel,
        "SIZE": det.size,
    }
    missing = [k for k, v in need.items() if v is None]
    if missing:
        raise GeometryError(
            f"{keyword} without images needs the detector and beam from keywords: give "
            + ", ".join(missing)
            + " (or TEMPLATE and an image for its header)"
        )
    crystal = current_crystal(session, beam.wavelength)
    if crystal is None:
        raise GeometryError(
            f"{keyword} needs the crystal orientation: run AUTOINDEX first or "
            "give the MATRIX keyword (and SYMMETRY)"
        )
    # the keywords onto an empty header: the same models (and defaults) as with an image
    blank = ImageHeader(path="", frame=None, format="keywords", detector_type="UNKNOWN",
                        nslow=int(det.size[0]), nfast=int(det.size[1]))
    g, _ = experiment_from(st, blank, 1)
    return Experiment(g.beam, g.detector, g.goniometer, crystal)


def _space_group_unknown(session: Session) -> bool:
    """No SYMMETRY given and none found by indexing (a MATRIX file's crystal is P1)."""
    known = session.results.crystal
    found = known.origins.get("space_group") if known is not None else None
    by_step = found is not None and found.source != MATRIX_SOURCE
    return session.state.crystal.symmetry is None and not by_step


def _crystal_label(session: Session) -> str:
    if session.results.crystal is None and session.results.matrix is not None:
        return f"MATRIX {session.state.files.matrix}"
    return "AUTOINDEX"


def _options(job: Job) -> tuple[StrategyOptions, int, str | None]:
    rec = job.record
    if rec.has("ALTERNATE"):
        raise NotImplementedYet("STRATEGY ALTERNATE is not implemented yet in mosflm-py")
    start = rec.sub("START").get("phi") if rec.has("START") else None
    end = rec.sub("END").get("phi") if rec.has("END") else None
    if (start is None) != (end is None):
        raise KeywordError(
            f"STRATEGY START and END must be given together (line: {rec.text.strip()})"
        )
    ranged = start is not None
    for word in ("AUTO", "ROTATE", "SEGMENTS", "SIZES"):
        if ranged and rec.has(word):
            raise KeywordError(
                f"STRATEGY {word} cannot be combined with START/END: START/END "
                "evaluates a given range, the others search for the best one "
                f"(line: {rec.text.strip()})"
            )
    if rec.has("ANOMALOUS") and rec.has("NOTANOM"):
        raise KeywordError(
            f"STRATEGY ANOMALOUS and NOTANOM contradict each other (line: {rec.text.strip()})"
        )
    if rec.has("PARTS") and not ranged:
        raise KeywordError(f"STRATEGY PARTS needs START and END (line: {rec.text.strip()})")
    sizes = tuple(rec.sub("SIZES").get("sizes")) if rec.has("SIZES") else ()
    nseg = int(rec.sub("SEGMENTS").get("n")) if rec.has("SEGMENTS") else 1
    if sizes and rec.has("SEGMENTS") and nseg != len(sizes):
        raise KeywordError(
            f"STRATEGY SEGMENTS {nseg} but {len(sizes)} SIZES given (line: {rec.text.strip()})"
        )
    opts = StrategyOptions(
        start=start,
        end=end,
        parts=int(rec.sub("PARTS").get("n")) if rec.has("PARTS") else 1,
        rotation=float(rec.sub("ROTATE").get("r")) if rec.has("ROTATE") else None,
        segments=nseg,
        sizes=sizes,
        anomalous=rec.has("ANOMALOUS"),
    )
    speedup = int(rec.sub("SPEEDUP").get("k")) if rec.has("SPEEDUP") else 1
    plot = None
    if rec.has("PLOT"):
        plot = rec.sub("PLOT").get("file") or "strategy.png"
    return opts, speedup, plot


def strategy_resolution(session: Session, exp: Experiment) -> tuple[float, float | None]:
    """(d_min, d_max) in Å: RESOLUTION, else the largest resolution circle wholly on the
    detector (the nearest edge), so that every reflection inside it is recorded whenever it
    diffracts; the detector corner when the direct beam misses the detector."""
    if session.state.resolution.dmin is not None:
        return resolution_limits(session, exp)
    det, wl = exp.detector, exp.beam.wavelength
    hit = det.beam_hit_mm()
    sx, sy = det.size_mm
    if hit is None or not (0 < hit[0] < sx and 0 < hit[1] < sy):
        return resolution_limits(session, exp)
    bx, by = hit
    xs = np.array([0.0, sx, bx, bx])
    ys = np.array([by, by, 0.0, sy])
    d_max = session.state.resolution.dmax
    return float(np.max(det.resolution_of(xs, ys, wl))), (float(d_max) if d_max else None)


def _append_summary(session: Session, tables) -> str | None:
    path = session.state.files.summary
    if not path:
        return None
    p = Path(path)
    old = p.read_text(errors="replace") if p.is_file() else ""
    w = SummaryWriter(p, header=old)
    for t in tables:
        w.add_table(t, replace=False)
    return str(p)


# ----------------------------------------------------------------------------------- STRATEGY
def run(session: Session, job: Job) -> None:
    """GO handler of STRATEGY (see the module docstring)."""
    opts, speedup, plot = _options(job)
    exp = _experiment(session, "STRATEGY")
    cr = exp.crystal
    out = session.report
    if _space_group_unknown(session) and cr.space_group.replace(" ", "") == "P1":
        session.warn_once(
            "strategy-p1",
            "STRATEGY: no SYMMETRY given, so the strategy is for space group P1 (Laue group -1).",
            "Give SYMMETRY with the space group to get the strategy for it.",
        )
    d_min, d_max = strategy_resolution(session, exp)
    unique = unique_reflections(cr.cell, cr.space_group, d_min, d_max, speedup)
    if len(unique) == 0:
        raise GeometryError(f"no reflections between {d_max or 'infinite'} and {d_min:.2f} Å")
    passages = reflection_passages(unique, exp)

    recorded: list[RecordedSegment] = session.results.strategy_segments
    already = empty_coverage(len(unique))
    for seg in recorded:
        p = reflection_passages(unique, seg.experiment)
        already = already | measured(p, [(seg.start, seg.end)])
    res = plan_strategy(passages, opts, already if recorded else None)

    import gemmi

    sg = gemmi.SpaceGroup(cr.space_group)
    group = (
        f"point group {sg.point_group_hm()}" if opts.anomalous else f"Laue group {sg.laue_str()}"
    )
    out.line()
    out.line(" ===== Data collection strategy =====")
    out.line()
    out.line(
        f" Crystal ({_crystal_label(session)}): cell "
        + " ".join(f"{c:.2f}" for c in cr.cell)
        + f", space group {cr.space_group}"
        f" ({group})"
    )
    limit = (
        "RESOLUTION" if session.state.resolution.dmin is not None else "the nearest detector edge"
    )
    low = f"{d_max:.2f}" if d_max else "infinite"
    out.line(
        f" Resolution {low} to {d_min:.2f} Å "
        f"({limit}), "
        f"wavelength {exp.beam.wavelength:.5f} Å, distance {exp.detector.distance:.2f} mm"
        + (f", SPEEDUP {speedup} (every {speedup}th unique reflection)" if speedup > 1 else "")
    )
    out.lines(tb.axis_angle_lines(cr.UB, exp.goniometer.axis, exp.beam.s0))
    n = len(unique)
    out.line()
    out.line(
        f" {n} unique reflections to {d_min:.2f} Å."
        f" {passages.n_blind} ({100.0 * passages.n_blind / n:.1f}%) lie in the blind region "
        "(they never reach the Ewald sphere on rotation about this axis: the cusp);"
        f" {passages.n_off_detector} ({100.0 * passages.n_off_detector / n:.1f}%) reach it "
        "only off the detector."
    )
    out.line(
        " Completeness from a full 360 degree turn of this crystal setting"
        + (" with the data already collected" if recorded else "")
        + f": {res.reachable.completeness:.1f}% "
        f"(anomalous {res.reachable.anomalous_completeness:.1f}%)"
    )
    if passages.n_blind > 0.02 * n:
        out.warning(
            f"{100.0 * passages.n_blind / n:.1f}% of the unique reflections lie in the "
            "cusp about the rotation axis and cannot be recorded in this setting.",
            "Recollect them with the crystal reoriented (a second crystal setting, "
            "several MATRIX + STRATEGY runs combine).",
        )
    if recorded:
        out.line()
        out.line(" Data already collected (STRATEGY START/END runs):")
        for seg in recorded:
            out.line(f"   phi {seg.start:8.1f} to {seg.end:8.1f}   {seg.label}")
        out.line(
            f" together: completeness {res.already.completeness:.1f}%, anomalous "
            f"{res.already.anomalous_completeness:.1f}%"
        )
    target = "anomalous data (I+ and I- separately)" if opts.anomalous else "unique data"
    tables = []
    out.line()
    if opts.start is not None:
        title = (
            f"Completeness for phi {opts.start:g} to {opts.end:g}"
            + (f" in {opts.parts} parts (cumulative)" if opts.parts > 1 else "")
            + (" added to the data already collected" if recorded else "")
            + ":"
        )
        out.lines(tb.segment_lines(title, res.segments))
    else:
        out.line(f" Optimising the completeness of {target}.")
        out.lines(tb.best_rotation_lines(res.rotation_rows))
        out.line()
        out.line(
            f" A total rotation of {res.full_rotation:.0f} degrees from phi "
            f"{res.full_start:.0f} to {res.full_start + res.full_rotation:.0f} records all "
            f"the reachable {target} ({res.reachable.completeness:.1f}% of the unique data"
            + (", with the data already collected" if recorded else "")
            + ")."
        )
        for f, r, s0 in res.levels:
            out.line(
                f" {100 * f:5.1f}% of the reachable {target}: {r:5.0f} degrees from phi {s0:.0f}"
            )
        out.line()
        total = sum(b - a for a, b in ((r.start, r.end) for r in res.segments))
        title = (
            f"Optimum {'segment' if len(res.segments) == 1 else 'set of segments'} for a "
            f"total rotation of {total:.1f} degrees"
            + (" added to the data already collected" if recorded else "")
            + ":"
        )
        out.lines(tb.segment_lines(title, res.segments))
        tables.append(tb.best_rotation_table(res.rotation_rows))
    c = res.combined
    out.line(
        f" Completeness {c.completeness:.1f}%, anomalous completeness "
        f"{c.anomalous_completeness:.1f}%, multiplicity {res.segments[-1].multiplicity:.2f}"
    )
    out.line()
    out.lines(
        tb.curve_lines(
            res.curve_rotations[_rows_to_print(res.curve_rotations)],
            res.curve_starts,
            res.curve_unique[:, _rows_to_print(res.curve_rotations)],
            res.best_index if opts.start is None else None,
            res.curve_multiplicity[:, _rows_to_print(res.curve_rotations)],
        )
    )
    tables.append(
        tb.curve_table(
            res.curve_rotations,
            res.curve_starts,
            res.curve_unique,
            res.curve_anomalous,
            res.curve_multiplicity,
        )
    )
    path = _append_summary(session, tables)
    if path:
        out.line(f" Strategy loggraph tables added to {path}")
    if plot:
        _plot_strategy(session, res, plot, opts.anomalous)
    if opts.start is not None:
        recorded.append(
            RecordedSegment(_crystal_label(session), exp, float(opts.start), float(opts.end))
        )
    session.results.strategy = res


def _rows_to_print(rot: np.ndarray) -> np.ndarray:
    """Indices of at most ~36 evenly spaced rotations for the log table."""
    k = max(1, int(np.ceil(len(rot) / 36)))
    idx = np.arange(k - 1, len(rot), k)
    if len(rot) and idx[-1] != len(rot) - 1:
        idx = np.append(idx, len(rot) - 1)
    return idx


def _plot_strategy(session: Session, res, path: str, anomalous: bool) -> None:
    curves = tb.curves_for_plot(
        res.curve_rotations,
        res.curve_starts,
        res.curve_unique,
        res.curve_anomalous,
        anomalous,
        res.best_index,
    )
    img = render_line_plot(
        curves,
        "Completeness against total rotation",
        "total rotation (degrees)",
        "completeness (%)",
        xlim=(0.0, float(res.curve_rotations[-1])),
        ylim=(0.0, 100.0),
        legend="lower right",
    )
    w, h = write_line_plot(path, img)
    session.report.line(
        f" Plot of completeness against total rotation written to {path} "
        f"({w} x {h} pixels; anomalous completeness dashed)"
    )


# ------------------------------------------------------------------------------------ TESTGEN
def _separation(session: Session, exp: Experiment) -> tuple[float, float]:
    sep = session.effective.integration.separation
    if sep is not None:
        return float(sep[0]), float(sep[1])
    det = exp.detector
    sizes = [s for s in session.results.spots.values() if s is not None and len(s)]
    if sizes:
        sx = float(np.median(np.concatenate([s.size_x for s in sizes])))
        sy = float(np.median(np.concatenate([s.size_y for s in sizes])))
        return separation_from_spot_size(sx, sy, det.pixel_slow, det.pixel_fast)
    return separation_from_spot_size(
        DEFAULT_SPOT_SIZE_PX, DEFAULT_SPOT_SIZE_PX, det.pixel_slow, det.pixel_fast
    )


def testgen(session: Session, job: Job) -> None:
    """GO handler of TESTGEN (see the module docstring)."""
    rec = job.record
    if not (rec.has("START") and rec.has("END")):
        raise KeywordError(f"TESTGEN needs START and END (line: {rec.text.strip()})")
    a, b = float(rec.sub("START").get("phi")), float(rec.sub("END").get("phi"))
    step = float(rec.sub("STEP").get("dphi")) if rec.has("STEP") else 5.0
    minosc = float(rec.sub("MINOSC").get("osc")) if rec.has("MINOSC") else 0.2
    maxosc = float(rec.sub("MAXOSC").get("osc")) if rec.has("MAXOSC") else 5.0
    if b < a:
        raise KeywordError(f"TESTGEN END {b:g} is before START {a:g}")
    if maxosc < minosc:
        raise KeywordError(f"TESTGEN MAXOSC {maxosc:g} is below MINOSC {minosc:g}")
    if (b - a) / step > 36000:  # a tenth of a degree over a hundred turns: no real question
        raise KeywordError(f"TESTGEN START {a:g} END {b:g} STEP {step:g} would test "
                           f"{(b - a) / step:.0f} start angles (at most 36000)")
    angles = tuple(rec.sub("ANGLE").get("osc")) if rec.has("ANGLE") else ()
    pct = float(job.state.strategy.overlap)
    exp = _experiment(session, "TESTGEN")
    d_min, d_max = resolution_limits(session, exp)
    sep = _separation(session, exp)
    phis = np.arange(a, b + 1e-6, step)
    out = session.report
    mosaic = exp.crystal.mosaic
    if mosaic <= 0:
        session.warn_once(
            "testgen-mosaic",
            "TESTGEN: the mosaic spread is zero, so the oscillation angles are upper limits.",
            "Give MOSAIC or run MOSAIC ESTIMATE first.",
        )
    out.line()
    out.line(" ===== Spatial overlaps against oscillation angle (TESTGEN) =====")
    out.line(
        f" SEPARATION {sep[0]:.2f} {sep[1]:.2f} mm, mosaic spread {mosaic:.2f} deg, "
        f"resolution {d_min:.2f} Å, phi {a:g} to {b:g} in steps of {step:g} deg"
    )
    plot = (rec.sub("PLOT").get("file") or "testgen.png") if rec.has("PLOT") else None
    if angles:
        counts = [overlaps_at(exp, float(p), angles, sep, d_min, d_max) for p in phis]
        out.lines(tb.overlap_lines(phis, angles, counts))
        table = tb.overlap_table(phis, angles, counts)
        curves = [
            Curve(
                phis,
                [100.0 * o / n if n else 0.0 for n, o in (c[k] for c in counts)],
                f"oscillation {ang:g} deg",
                colour=k,
            )
            for k, ang in enumerate(angles)
        ]
        ylabel, title = "overlapped (%)", "Spatially overlapped reflections against phi"
    else:
        rows = max_oscillation(exp, phis, sep, d_min, d_max, pct, minosc, maxosc)
        out.line(f" Oscillations from {minosc:g} to {maxosc:g} deg tested in steps of 0.05 deg.")
        out.lines(tb.oscillation_lines(rows, pct))
        allowed = [r.oscillation for r in rows if r.oscillation is not None]
        if allowed and len(allowed) == len(rows):
            out.line(
                f" The largest oscillation angle safe at every phi tested: {min(allowed):.2f} "
                "degrees"
            )
        elif allowed:
            bad = " ".join(f"{r.phi:g}" for r in rows if r.oscillation is None)
            out.line(f" At phi {bad} even {minosc:g} degrees gives more than {pct:g}% overlaps.")
        else:
            out.line(f" Even {minosc:g} degrees gives more than {pct:g}% overlaps everywhere.")
        table = tb.oscillation_table(rows)
        curves = [
            Curve(
                phis,
                [r.oscillation if r.oscillation is not None else np.nan for r in rows],
                "maximum oscillation",
                markers=True,
            )
        ]
        ylabel, title = "maximum oscillation (degrees)", "Largest oscillation without overlaps"
    session.results.testgen = table
    path = _append_summary(session, [table])
    if path:
        out.line(f" TESTGEN loggraph table added to {path}")
    if plot:
        img = render_line_plot(
            curves,
            title,
            "phi (degrees)",
            ylabel,
            xlim=(a, b if b > a else a + 1.0),
            ylim=(0.0, maxosc if not angles else 100.0),
        )
        w, h = write_line_plot(plot, img)
        out.line(f" Plot written to {plot} ({w} x {h} pixels)")


__all__ = ["RecordedSegment", "run", "testgen"]
