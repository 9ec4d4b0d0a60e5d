"""AUTOINDEX action (run by GO): spots on the chosen images -> DPS indexing -> MOSFLM-style log.

Images: ``AUTOINDEX IMAGE n [PHI a TO b]`` (repeatable, accumulating over lines); by default the
first image of the series and the one nearest 90 degrees away from it (iMosflm's choice).  The
chosen solution becomes the current crystal (cell, symmetry, U) and the refined beam position
(and distance with UNFIXDIST) are kept in the experiment model (``session.results``), where the
next steps find them unless BEAM / DISTANCE is typed afterwards; NEWMAT is written when set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.actions.common import experiment_for_image, set_crystal
from mosflm_py.actions.indexspots import indexing_spots
from mosflm_py.errors import ImageError
from mosflm_py.experiment_model import Found
from mosflm_py.geometry.matrix_file import write_matrix_file
from mosflm_py.indexing.autoindex import IndexingResult, autoindex
from mosflm_py.indexing.solutions import IndexingParams
from mosflm_py.output import mosflm_log as ml
from mosflm_py.output.mosflm_log import space_group_short

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session


def default_images(session: Session) -> list[int]:
    """First image and the one nearest 90 degrees away (just the first if only one)."""
    series = session.images()
    numbers = list(series.numbers)
    first = numbers[0]
    if len(numbers) == 1:
        return [first]
    try:
        p0 = np.mean(series.phi_range(first))
        phis = np.array([np.mean(series.phi_range(n)) for n in numbers])
    except ImageError:
        return [first]
    target = np.abs(np.abs(phis - p0) - 90.0)
    other = numbers[int(np.argmin(target))]
    return [first] if other == first else [first, other]


def _images_from_job(job: Job) -> tuple[list[int], dict[int, tuple[float, float]]]:
    numbers: list[int] = []
    phis: dict[int, tuple[float, float]] = {}
    for rec in job.records:
        for img in rec.all("IMAGE"):
            n = int(img.get("n"))
            if n not in numbers:
                numbers.append(n)
            phi = img.sub("PHI") if hasattr(img, "sub") else None
            if phi is not None and phi.get("start") is not None:
                start = float(phi.get("start"))
                end = phi.get("end")
                phis[n] = (start, float(end) if end is not None else start)
    return numbers, phis


def beam_search_from_job(job: Job | None) -> dict:
    """IndexingParams fields of ``BEAMSEARCH [range [step]]`` (last occurrence), or {}."""
    found = None
    for rec in (job.records if job is not None else ()):
        for occ in rec.all("BEAMSEARCH"):
            found = occ
    if found is None:
        return {}
    out: dict = {"beam_search": True}
    if found.get("range") is not None:
        out["beam_range"] = float(found.get("range"))
    if found.get("step") is not None:
        out["beam_step"] = float(found.get("step"))
    elif "beam_range" in out:
        out["beam_step"] = min(0.5, out["beam_range"] / 2)
    return out


def params_from_state(session: Session, job: Job | None = None) -> IndexingParams:
    """IndexingParams from ``state.index``, SYMMETRY and the job's BEAMSEARCH."""
    ix = session.state.index
    sym = session.state.crystal.symmetry
    user_sym = sym if sym and "crystal.symmetry" in session.state.user_set else None
    return IndexingParams(
        **beam_search_from_job(job),
        threshold=float(ix.threshold),
        hkldev=float(ix.hkldev),
        nvect=int(ix.nvect),
        max_cell=ix.maxcell,
        sdcutoff=float(ix.sdcutoff),
        solution=ix.solution,
        symmetry=user_sym,
        unfixdist=bool(ix.unfixdist),
    )


PIXEL_ARRAY_DETECTORS = ("PILATUS", "EIGER", "TIMEPIX")
PIXEL_ARRAY_MINPIX = 3
"""MINPIX used on hybrid pixel-array detectors unless the user set it: their point-spread is
about one pixel, so a weak spot on a 0.172 / 0.075 mm pixel grid has only 3-5 pixels above the
threshold and MOSFLM's default of 6 (chosen for CCDs with spread-out spots) loses most spots
of a thin image (e.g. 23 of ~90 on a 0.1 deg Pilatus 6M image)."""


def pixel_array_defaults(session: Session, image: int) -> None:
    """Use MINPIX 3 on pixel-array detectors (PILATUS, EIGER, TIMEPIX) unless MINPIX was given.

    Kept in the experiment model (``session.results.minpix``), so later FINDSPOTS on the same
    images agree with AUTOINDEX.
    """
    if session.state.is_user_set("spotfind.minpix"):
        return
    dtype = str(session.geometry(image).detector_type).upper()
    if any(k in dtype for k in PIXEL_ARRAY_DETECTORS):
        minpix = min(PIXEL_ARRAY_MINPIX, int(session.state.spotfind.minpix))
        session.results.minpix = Found(minpix, "AUTOINDEX", session.state.clock)


def run(session: Session, job: Job) -> None:
    """GO handler of AUTOINDEX (see module docstring)."""
    numbers, phis = _images_from_job(job)
    if not numbers:
        numbers = default_images(session)
    pixel_array_defaults(session, numbers[0])
    spots, spot_lists, notes = indexing_spots(session, numbers, phis)
    for note in notes:
        session.report.line(f" {note}")
    experiment = experiment_for_image(session, numbers[0], crystal=None)
    params = params_from_state(session, job)
    result = autoindex(spots, experiment, params)
    session.results.indexing = result
    report(session, result, spot_lists)
    set_crystal(session, result.crystal, "AUTOINDEX")
    clock = session.state.clock
    session.results.beam = Found(tuple(float(v) for v in result.beam_refined), "AUTOINDEX", clock)
    if params.unfixdist or abs(result.distance - experiment.detector.distance) > 1e-9:
        # refined with UNFIXDIST, or because the spots contradict the header distance
        session.results.distance = Found(float(result.distance), "AUTOINDEX", clock)
        det = result.experiment.detector
        if (det.tilt, det.twist) != (experiment.detector.tilt, experiment.detector.twist):
            # refined with the distance (distance_test): TILT and TWIST in 0.01 deg
            session.results.tilt = Found(float(det.tilt), "AUTOINDEX", clock)
            session.results.twist = Found(float(det.twist), "AUTOINDEX", clock)
    newmat = session.files.newmat
    if newmat:
        wl = result.experiment.beam.wavelength
        cr = result.crystal

        write_matrix_file(newmat, cr.a_matrix(wl), cr.missets, cr.U, cr.cell,
                          space_group_short(cr.space_group)[0])
        session.report.line(f" New matrix written to file {newmat}")


def _fmt_cell(cell) -> str:
    return " ".join(f"{v:7.2f}" for v in cell[:3]) + " " + " ".join(f"{v:6.1f}" for v in cell[3:])


def report(session: Session, res: IndexingResult, spot_lists: dict) -> None:
    """Print the autoindexing log as MOSFLM does (:mod:`mosflm_py.output.mosflm_log`)."""
    out = session.report
    out.line("")
    for n, s in spot_lists.items():
        out.line(f" {len(s.x_mm):5d} spots written for image {n:4d}")
    out.line(f" A total of {sum(len(s.x_mm) for s in spot_lists.values()):5d} spots were "
             "written to file")
    out.line(f"DPS Indexing using {res.n_used:4d} reflections with I >= {res.threshold:3g} "
             "I/sigma(I)")
    out.line(f"DPS Indexing with {res.n_used:4d} reflections. Maximum expected cell edge "
             f"{res.max_cell:7.2f}, Beam position is {res.beam_start[0]:7.2f} "
             f"{res.beam_start[1]:7.2f}")
    out.line("")
    out.line("CELL(start) = " + " ".join(f"{v:7.3f}" for v in res.triclinic_cell[:3]) + " "
             + " ".join(f"{v:6.2f}" for v in res.triclinic_cell[3:]))
    out.line("")
    out.lines(ml.solutions_table(res.table))
    sol = res.solution
    out.lines(ml.suggested_solution(sol, session.state.index.solution is not None))
    sep = session.effective.integration.separation
    out.lines(ml.refined_solution(
        sol.number, res.crystal.space_group, sol.regularized_cell, res.crystal.cell,
        res.n_indexed, res.n_used, float(session.state.index.sdcutoff), res.sigma_xy,
        res.sigma_phi, res.beam_start, res.beam_refined, min(sep) if sep else 0.0))
    for w in res.warnings:
        out.warning(w)
    sec = res.second_lattice
    if sec is not None:
        rot = f"{sec.rotation:.1f} degrees" if np.isfinite(sec.rotation) else "unknown (other cell)"
        out.warning(
            f"A second lattice indexes {sec.n_spots} of the {sec.n_left} spots the chosen "
            f"solution leaves unindexed: {sec.lattice} {_fmt_cell(sec.cell).strip()}, rms "
            f"{sec.sigma_xy:.3f} mm, rotated by {rot} from the first.  More than one crystal "
            "is in the beam: only the first lattice is processed (multi-lattice processing "
            "is not implemented yet); consider a better crystal or a smaller beam."
        )
