"""Cell refinement by post-refinement (POSTREF SEGMENT n, one PROCESS + GO/RUN per segment).

Each segment's images are collected; when the n-th segment arrives the segments are integrated
by summation, the detector refined per image and the crystal (missets, cell under the lattice
symmetry, mosaic) post-refined over all of them, repeating while a cell parameter shifts by more
than SHIFTFAC σ (:func:`mosflm_py.refinement.refine_cell_segments`).  The refined cell and
orientation become current and are written to NEWMAT.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.common import experiment_for_image, resolution_limits, set_crystal
from mosflm_py.actions.integrate import choose_raster, detector_refinement_params, postref_params
from mosflm_py.actions.process import image_plan, starting_experiment
from mosflm_py.geometry.matrix_file import write_matrix_file
from mosflm_py.output import mosflm_log as ml
from mosflm_py.output.mosflm_log import cell_refinement_complete, space_group_short
from mosflm_py.output.summary import (
    DetectorImageResult,
    PostrefImageResult,
    SummaryWriter,
    detector_parameters_table,
    postrefinement_table,
)
from mosflm_py.refinement import (
    MeasureParams,
    auto_segments,
    box_for_raster,
    make_measure_fn,
    refine_cell_segments,
)

if TYPE_CHECKING:
    from mosflm_py.session import Session

def add_segment(session: Session, first: int, last: int) -> None:
    """Record one segment; run the cell refinement when all segments are in."""
    plan = image_plan(session, first, last, None, None, 0)
    segs = session.results.cellref_segments
    segs.append([im.number for im in plan])
    n = int(session.state.postref.segments)
    session.report.line(f" Cell refinement segment {len(segs)} of {n}: images {first} to {last}")
    if len(segs) >= n:
        session.results.cellref_segments = []
        refine_cell(session, segs)


def automatic_segments(session: Session, first: int, last: int) -> None:
    """POSTREF AUTO: choose the segments within first..last (iMosflm's rule) and refine."""
    plan = image_plan(session, first, last, None, None, 0)
    exp = starting_experiment(session, first)
    phis = {im.number: (im.phi_start, im.phi_end) for im in plan}
    segs = auto_segments([im.number for im in plan], phis.__getitem__, exp.crystal.mosaic,
                         exp.crystal.space_group)
    session.report.line(" Automatic choice of segments for cell refinement: "
                        + ", ".join(f"images {s[0]} to {s[-1]} (phi {phis[s[0]][0]:.1f})"
                                    for s in segs))
    if len(segs) < 2:
        session.report.warning(
            f"Images {first} to {last} allow only one segment: the cell will be poorly "
            "determined.", "Refine the cell from segments about 90 degrees apart if possible.")
    refine_cell(session, segs)


def refine_cell(session: Session, segments: list[list[int]]) -> None:
    """Run the segment cell refinement and report it as MOSFLM does."""
    rep = session.report
    first = segments[0][0]
    exp = starting_experiment(session, first)
    d_min, d_max = resolution_limits(session, exp)
    series = session.images()

    def phi_of(n: int) -> tuple[float, float]:
        g = session.geometry(n)
        return g.phi_start, g.phi_end

    pr = session.state.postref
    pp = postref_params(session)
    rp = detector_refinement_params(session)
    if session.effective.integration.raster is None:
        # as MOSFLM: the measurement box (RASTER) and SEPARATION from the spot size on the
        # first image, reported with the refinement ("Final optimised raster parameters")

        choose_raster(session, exp, first)
    raster = session.state.integration.raster
    box = MeasureParams().box
    if raster is not None:
        # the summation box holds the spots (their peak region in the measurement box)
        box = box_for_raster(raster[0], raster[1], raster[3], raster[4], minimum=box)
    measure = make_measure_fn(series.frame, phi_of,
                              MeasureParams(d_min=d_min, d_max=d_max, box=box))
    if d_min > 3.5:
        rep.warning(f"The data extend only to {d_min:.2f} A: the cell from post-refinement may be "
                    "poorly determined.", "Cell refinement works best with data beyond 3.5 A.")
    rep.line("")
    rep.line(" Cell refinement from "
             + ", ".join(f"images {s[0]}-{s[-1]}" for s in segments))
    cr0 = exp.crystal
    rep.line(f" Starting cell {_cell(cr0.cell)}   mosaic {cr0.mosaic:.3f}   space group "
             f"{cr0.space_group}")
    t0 = time.perf_counter()
    res = refine_cell_segments(segments, exp, measure, rp, pp, max_cycles=5 * max(1, pr.repeat))
    elapsed = time.perf_counter() - t0
    rep.line(f" Method: {res.method}")
    g = res.global_refinement
    if g is not None:
        e = g.esds
        what = ("Orientation and detector fitted to the spot positions with the post-refined "
                "cell" if res.method == "post-refinement" else "Global positional refinement")
        rep.line(f" {what}: {g.n_used} spots ({g.n_phi} with a phi "
                 f"centroid), rms {g.rms_xy:.3f} mm"
                 + (f" and {g.rms_phi:.3f} deg" if np.isfinite(g.rms_phi) else "")
                 + "; distance "
                 f"{g.experiment.detector.distance:.2f} "
                 + (f"+- {e.get('DISTANCE', 0.0):.2f} mm, " if "DISTANCE" in g.free
                    else "mm (fixed), ")
                 + f"TILT {g.experiment.detector.tilt:.1f} TWIST {g.experiment.detector.twist:.1f}")
    _log_cycles(session, res)
    wd = res.experiment.crystal.domain_width
    if wd > 0:
        rep.line(f" Refined mosaic block size {1.0 / wd:.0f} A (reciprocal width {wd:.5f} +- "
                 f"{res.postref.esds.get('BLOCKSIZE', 0.0):.5f} /A); post-refinement rms "
                 f"observed - calculated fraction {res.postref.rms_fraction:.3f}")
        if res.postref.n_complete:
            rep.line(f" Reflections recorded completely on the segments: "
                     f"{res.postref.n_complete}, rms observed fraction - FRACTIONCALC "
                     f"{res.postref.rms_fraction_complete:.3f}")
    for w in res.warnings:
        rep.warning(w)
    rep.line(f" Cell refinement: {res.cycles} cycle(s), "
             f"{'converged' if res.converged else 'NOT converged'}; {elapsed:.1f} s, "
             f"{elapsed / max(res.cycles, 1):.1f} s per cycle")
    set_crystal(session, res.experiment.crystal, "cell refinement")
    session.results.refinement = res
    _write_newmat(session, res, first)
    _log_complete(session, res, segments)
    _write_summary(session, res)


def _log_cycles(session: Session, res) -> None:
    """Per cycle and image, MOSFLM's ``Processing Image`` blocks (refined detector, crystal)."""
    rep = session.report
    cycles = sorted({int(r["cycle"]) for r in res.detector_rows})
    post = {(int(r["cycle"]), int(r["Image"])): r for r in res.postref_rows}
    for k, c in enumerate(cycles):
        if k:
            rep.lines(ml.REPEATING_RUN)
        rep.lines(ml.POSTREF_MULTI)
        for r in (r for r in res.detector_rows if int(r["cycle"]) == c):
            n = int(r["IMAGE"])
            g = session.geometry(n)
            rep.lines(ml.image_banner("Processing", n, g.phi_start, g.phi_end))
            rep.lines(ml.positional_refinement(
                r["RESID"], r["WRESID"], r["XCEN"], r["YCEN"], r["DIST"], r["YSCALE"],
                r["TILT"], r["TWIST"], r["CCX"], r["CCY"], r["CCOM"]))
            raster = session.effective.integration.raster
            sep = session.effective.integration.separation
            if n == res.detector_rows[0]["IMAGE"] and raster:
                rep.lines(ml.raster_optimised(raster))
                if sep:
                    rep.lines(ml.separation_updated(sep))
            cog, bgres = res.profile_stats.get((c, n), ((np.nan, np.nan), np.nan))
            if np.all(np.isfinite(cog)) and np.isfinite(bgres):
                # as MOSFLM, per image after the average spot profile (see
                # refinement.measure.average_profile_stats: no standard profiles here)
                rep.lines(ml.centre_of_gravity(cog, bgres))
            p = post.get((c, n))
            if p is not None:
                rep.lines(ml.postref_result((p["PHIX"], p["PHIY"], p["PHIZ"]),
                                            tuple(p[x] for x in ("A", "B", "C", "ALPHA", "BETA",
                                                                 "GAMMA")),
                                            p["MOSAIC"], p["Resid"], p["NR"]))


def _log_complete(session: Session, res, segments: list[list[int]]) -> None:
    """MOSFLM's closing block (``Cell refinement is complete``, tables, mosaic, missets)."""
    first, last = segments[0][0], segments[-1][-1]
    last_cycle = max((int(r["cycle"]) for r in res.postref_rows), default=0)
    mis = {int(r["Image"]): (r["PHIX"], r["PHIY"], r["PHIZ"]) for r in res.postref_rows
           if int(r["cycle"]) == last_cycle}
    m0 = tuple(res.experiment.crystal.missets)
    session.report.lines(cell_refinement_complete(
        res.initial_cell, res.final_cell, res.cell_esds, res.detector_rows, res.mosaic,
        mis.get(first, m0), mis.get(last, m0), first, last))


def _cell(cell) -> str:
    return " ".join(f"{v:.3f}" for v in cell)


def _write_newmat(session: Session, res, first: int) -> None:
    path = session.state.files.newmat
    if not path:
        return

    exp = experiment_for_image(session, first, res.experiment.crystal)
    cr = res.experiment.crystal

    # the refined missets are folded into U (and A = λ·M·U·B), missets 0: the file then gives
    # the refined orientation to any reader of the A matrix (DIALS, the dev-set scorer), and
    # reading it back with MATRIX gives the same crystal
    u = cr.M @ cr.U
    write_matrix_file(path, exp.beam.wavelength * (u @ cr.B), (0.0, 0.0, 0.0), u, cr.cell,
                      space_group_short(cr.space_group)[0])
    session.report.lines([
        "", f" New orientation matrix written to (keyword NEWMAT): {path}",
        " The refined missetting angles of the FIRST image in the post-refinement are folded",
        " into the orientation matrix (the missets in this file are zero).", ""])


def _write_summary(session: Session, res) -> None:
    """SUMMARY with MOSFLM's two tables, from the last cycle of the cell refinement.

    Counts of integrated reflections do not exist here and are written 0; the per-cycle
    tables are in the log ("... as a function of cycle for each image").
    """
    path = session.state.files.summary
    if not path:
        return

    def num(x) -> float:
        return float(x) if x is not None and np.isfinite(x) else 0.0

    last = max((int(r["cycle"]) for r in res.detector_rows), default=0)
    det = [DetectorImageResult(
        image=int(r["IMAGE"]), ccx=num(r["CCX"]), ccy=num(r["CCY"]), ccom=num(r["CCOM"]),
        dist=num(r["DIST"]), yscale=num(r["YSCALE"]), tilt=num(r["TILT"]),
        twist=num(r["TWIST"]), roff=0.0, toff=0.0, resid=num(r["RESID"]),
        wresid=num(r["WRESID"]), full=0, part=0, ovrl=0, neg=0, bad=0, i_sigi=0.0,
        i_sigi_outer=0.0, rsym=0.0, nsym=0, sdrat=0.0)
        for r in res.detector_rows if int(r["cycle"]) == last]
    last_p = max((int(r["cycle"]) for r in res.postref_rows), default=0)
    post = [PostrefImageResult(
        image=int(r["Image"]), phix=num(r["PHIX"]), phiy=num(r["PHIY"]), phiz=num(r["PHIZ"]),
        cell=tuple(num(r[k]) for k in ("A", "B", "C", "ALPHA", "BETA", "GAMMA")),
        mosaic=num(r["MOSAIC"]), divh=num(r["DIVH"]), divv=num(r["DIVV"]),
        resid=num(r["Resid"]), nref=int(r["NR"]))
        for r in res.postref_rows if int(r["cycle"]) == last_p and int(r["NR"]) > 0]
    names = session.state.names
    w = SummaryWriter(path, header=f" Generate File TITLE:   {names.title or '.'}\n"
                                   f" Crystal Identifier:    {names.xname or names.ident or ''}"
                                   "\n\n")
    w.add_table(detector_parameters_table(det))
    w.add_table(postrefinement_table(post))
