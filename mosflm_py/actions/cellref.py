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

from mosflm_py.actions.common import experiment_for_image, resolution_limits, set_crystal
from mosflm_py.actions.process import image_plan, starting_experiment

if TYPE_CHECKING:
    from mosflm_py.session import Session

SEGMENTS_KEY = "cellref_segments"
CELL_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")


def add_segment(session: Session, first: int, last: int) -> None:
    """Record one segment; run the cell refinement when all segments are in."""
    plan = image_plan(session, first, last, None, None, 0)
    segs: list[list[int]] = session.results.extra.setdefault(SEGMENTS_KEY, [])
    segs.append([im.number for im in plan])
    n = int(session.state.postref.segments)
    session.report.line(f" Cell refinement segment {len(segs)} of {n}: images {first} to {last}")
    if len(segs) >= n:
        session.results.extra[SEGMENTS_KEY] = []
        refine_cell(session, segs)


def automatic_segments(session: Session, first: int, last: int) -> None:
    """POSTREF AUTO: choose the segments within first..last (iMosflm's rule) and refine."""
    from mosflm_py.refinement import auto_segments

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
    from mosflm_py.actions.integrate import detector_refinement_params, postref_params
    from mosflm_py.refinement import MeasureParams, make_measure_fn, refine_cell_segments

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
    measure = make_measure_fn(series.frame, phi_of, MeasureParams(d_min=d_min, d_max=d_max))
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
    phi_name = "post-refinement" if res.method == "post-refinement" else "phi"
    for row in res.cycle_rows:
        rep.line(f" Cycle {row['cycle']}: rms positional residual {row['rms_mm']:.3f} mm, "
                 f"{phi_name} rms {row['postref_rms_deg']:.3f} deg, distance spread "
                 f"{row['dist_spread']:.2f} mm, YSCALE spread {row['yscale_spread']:.4f}, "
                 f"largest cell shift {row['max_shift_sds']:.1f} sds")
    g = res.global_refinement
    if g is not None:
        e = g.esds
        rep.line(f" Global positional refinement: {g.n_used} spots ({g.n_phi} with a phi "
                 f"centroid), rms {g.rms_xy:.3f} mm and {g.rms_phi:.3f} deg; distance "
                 f"{g.experiment.detector.distance:.2f} +- {e.get('DISTANCE', 0.0):.2f} mm, "
                 f"TILT {g.experiment.detector.tilt:.1f} TWIST {g.experiment.detector.twist:.1f}")
    rep.table(["", *CELL_NAMES], [
        ["Initial cell", *[f"{v:.4f}" for v in res.initial_cell]],
        ["Refined cell", *[f"{v:.4f}" for v in res.final_cell]],
        ["esd", *[f"{v:.4f}" for v in res.cell_esds]],
    ])
    if res.mosaic > 0:
        rep.line(f" Refined mosaic spread (without safety factor) {res.mosaic:.3f} +- "
                 f"{res.mosaic_esd:.3f} deg")
    wd = res.experiment.crystal.domain_width
    if wd > 0:
        rep.line(f" Refined mosaic block size {1.0 / wd:.0f} A (reciprocal width {wd:.5f} +- "
                 f"{res.postref.esds.get('BLOCKSIZE', 0.0):.5f} /A); post-refinement rms "
                 f"observed - calculated fraction {res.postref.rms_fraction:.3f}")
        if res.postref.n_complete:
            rep.line(f" Reflections recorded completely on the segments: "
                     f"{res.postref.n_complete}, rms observed fraction - FRACTIONCALC "
                     f"{res.postref.rms_fraction_complete:.3f}")
    d = res.experiment.detector
    rep.line(f" Refined detector: beam {d.beam_x:.3f} {d.beam_y:.3f} mm, distance "
             f"{d.distance:.2f} mm, YSCALE {d.yscale:.4f}, TILT {d.tilt:.1f}, TWIST {d.twist:.1f}")
    for w in res.warnings:
        rep.warning(w)
    rep.line(f" Cell refinement is complete ({res.cycles} cycle(s), "
             f"{'converged' if res.converged else 'NOT converged'}; {elapsed:.1f} s, "
             f"{elapsed / max(res.cycles, 1):.1f} s per cycle)")
    set_crystal(session, res.experiment.crystal)
    session.results.refinement = res
    _write_newmat(session, res, first)
    _write_summary(session, res)


def _cell(cell) -> str:
    return " ".join(f"{v:.3f}" for v in cell)


def _write_newmat(session: Session, res, first: int) -> None:
    path = session.state.files.newmat
    if not path:
        return
    from mosflm_py.geometry.matrix_file import write_matrix_file

    exp = experiment_for_image(session, first, res.experiment.crystal)
    cr = res.experiment.crystal
    # the refined missets are folded into U (and A = λ·M·U·B), missets 0: the file then gives
    # the refined orientation to any reader of the A matrix (DIALS, the dev-set scorer), and
    # reading it back with MATRIX gives the same crystal
    u = cr.M @ cr.U
    write_matrix_file(path, exp.beam.wavelength * (u @ cr.B), (0.0, 0.0, 0.0), u, cr.cell)
    session.report.line(f" Refined matrix written to {path} (refined missets folded into the "
                        "orientation matrix)")


def _write_summary(session: Session, res) -> None:
    path = session.state.files.summary
    if not path:
        return
    from mosflm_py.output.summary import (
        CellCycle,
        CellImageCycle,
        SummaryWriter,
        cell_refinement_images_table,
        cell_refinement_table,
    )

    cycles = [CellCycle(cycle=r["cycle"], cell=tuple(res.final_cell), rms_resid=r["rms_mm"],
                        rms_phi_resid=r["postref_rms_deg"], nref=res.postref.n_used)
              for r in res.cycle_rows]
    images = [CellImageCycle(cycle=r["cycle"], image=r["IMAGE"], rms_resid=r["RESID"],
                             yscale=r["YSCALE"], distance=r["DIST"]) for r in res.detector_rows]
    w = SummaryWriter(path, header="mosflm-py cell refinement summary")
    w.add_table(cell_refinement_table(cycles))
    w.add_table(cell_refinement_images_table(images))
