"""Integration of a sweep (PROCESS without SEGMENT): settings → blocks → MTZ, SUMMARY, log."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mosflm_py import __version__
from mosflm_py.actions.common import resolution_limits
from mosflm_py.actions.findspots import spotfind_params, spots_for_images
from mosflm_py.actions.process import (
    exclude_shells,
    image_plan,
    progress,
    series_source,
    starting_experiment,
)
from mosflm_py.errors import IntegrationError, NotImplementedYet
from mosflm_py.experiment_model import IntegrationRun
from mosflm_py.geometry.crystal import b_matrix
from mosflm_py.integration import (
    BackgroundParams,
    IntegrationParams,
    Polarisation,
    ProfileParams,
    Raster,
    RejectionParams,
    SeparationParams,
)
from mosflm_py.output.genfile import GenerateFileWriter
from mosflm_py.output.harvest import HarvestImage, HarvestRun, harvest_path, write_harvest
from mosflm_py.output.mosflm_log import (
    END_OF_PROCESSING,
    centre_of_gravity,
    image_banner,
    integrated_image,
    mtz_written,
    positional_refinement,
    postref_result,
    raster_optimised,
    resolution_analysis,
    separation_updated,
    space_group_short,
)
from mosflm_py.output.mtz import BatchHeader, MtzMeta, default_mtz_name
from mosflm_py.output.mtz_columns import hkl_to_asu
from mosflm_py.output.mtz_stream import UnmergedMtzWriter
from mosflm_py.output.summary import (
    DetectorImageResult,
    PostrefImageResult,
    SummaryWriter,
    detector_parameters_table,
    postrefinement_table,
    symmetry_agreement,
)
from mosflm_py.processing.block import BlockJob
from mosflm_py.processing.fractions import FractionNormaliser
from mosflm_py.processing.params import ProcessParams
from mosflm_py.processing.plan import make_blocks, phi_grid
from mosflm_py.processing.runner import run_blocks
from mosflm_py.refinement import PostrefParams, RefinementParams
from mosflm_py.spotfinding import build_mask

if TYPE_CHECKING:
    from mosflm_py.geometry.experiment import Experiment
    from mosflm_py.session import Session

CELL_PARAMS = ("A", "B", "C", "ALPHA", "BETA", "GAMMA")


def choose_raster(session: Session, exp: Experiment, first: int) -> Raster:
    """RASTER keyword, else from the median spot size on the first image (MOSFLM).

    The spots come from FINDSPOTS' own search (cached when AUTOINDEX already looked at the
    image), which also sets RASTER and SEPARATION from the median spot size and says so.
    """
    r = session.effective.integration.raster
    if r is None:
        spots_for_images(session, [first])
        r = session.effective.integration.raster
    if r is not None:
        return Raster(*r)
    session.report.warning(
        f"Too few spots found on image {first}: the measurement box cannot be set from the "
        "spot size; RASTER 17 19 13 6 6 will be used.",
        "Give RASTER explicitly if the spots are much larger or smaller.")
    return Raster(17, 19, 13, 6, 6)


def _geometric_mask(session: Session, g) -> np.ndarray | None:
    """Active-pixel mask from BACKSTOP and LIMITS EXCLUDE / QUADRILATERAL (None if none)."""
    sp = spotfind_params(session, g)
    if sp.backstop is None and not sp.excludes and not sp.quadrilaterals:
        return None
    det = g.detector
    return build_mask((det.nslow, det.nfast), det.pixel_slow, det.pixel_fast, None,
                      backstop=sp.backstop, excludes=sp.excludes,
                      quadrilaterals=sp.quadrilaterals)


def integration_params(session: Session, raster: Raster, first: int) -> IntegrationParams:
    """IntegrationParams from the PROFILE, BACKGROUND, REJECTION, SEPARATION, ... settings."""
    st = session.state
    g = session.geometry(first)
    pr, bg, rj, it = st.profile, st.background, st.rejection, st.integration
    return IntegrationParams(
        raster=raster,
        background=BackgroundParams(bgfrac=bg.bgfrac, bgsig=bg.bgsig, recover=bg.recover),
        rejection=RejectionParams(gradmax=rj.gradmax, nbgmin=rj.minbg, bgratio=rj.bgratio,
                                  pkratio=rj.pkratio, pkratio_accept=rj.pkratio_accept),
        profile=ProfileParams(enabled=pr.enabled, tolerance=tuple(pr.tolerance),
                              boundary=pr.boundary, fixbox=pr.fixbox, optimise=pr.optimise,
                              isdr=pr.isdr, nref=pr.nref, rmsbg=pr.rmsbg,
                              partials=True if pr.partials else None, variable=pr.variable,
                              interpolate=pr.interpolate, wdlim1=pr.wdlim1, wdlim2=pr.wdlim2,
                              xlines=tuple(pr.xlines) or None, ylines=tuple(pr.ylines) or None,
                              grow_box=not st.is_user_set("integration.raster")),
        # per-spot overlap masks (SEPARATION CLOSE) unless the user chose otherwise
        separation=SeparationParams(
            close=(it.separation_close if st.is_user_set("integration.separation_close")
                   else True), trim=it.trim, noverlap=it.noverlap),
        gain=g.gain, adcoffset=g.adcoffset, nullpix=g.nullpix, overload=g.overload,
    )


def polarisation_model(session: Session, g) -> Polarisation:
    """POLARISATION SYNCHROTRON p / MONOCHROMATOR 2θm / PINHOLE (or the wavelength default)."""
    b = session.state.beam
    mode = (b.polarisation_mode or "").upper()
    if mode.startswith("MONO"):
        return Polarisation(kind="monochromator", degree=0.0,
                            mono_2theta_deg=float(b.monochromator_angle or 0.0))
    if mode.startswith("PIN") or g.beam.polarisation <= 0:
        return Polarisation(kind="pinhole", degree=0.0)
    return Polarisation(kind="synchrotron", degree=g.beam.polarisation)


DEFAULT_MAXRESIDUAL = 2.0
"""Post-refinement is abandoned above this rms residual (deg) unless MAXRESIDUAL is given.

MOSFLM's scaled default (0.55 × (η + divergence)) rejected good blocks of simulated Pilatus data
whose few outlying partials (module gaps, overlaps) inflate the rms; the refined missets and
mosaic were right, so a lenient limit is used by default."""


def postref_params(session: Session, extra_fix: set[str] = frozenset()) -> PostrefParams:
    """PostrefParams from the POSTREF settings (divergence fixed, plus ``extra_fix``)."""
    pr = session.state.postref
    fix = set(pr.fixed) | {"DIVERGENCE"} | set(extra_fix)
    if pr.fix_all:
        fix |= set(CELL_PARAMS) | {"MOSAIC", "PHIX", "PHIY", "PHIZ"}
    extra = {"maxresidual": DEFAULT_MAXRESIDUAL}
    if session.state.is_user_set("postref.maxresidual"):
        extra["maxresidual"] = pr.maxresidual
    if pr.frmin is not None:
        extra["frmin"] = pr.frmin
    if pr.frmax is not None:
        extra["frmax"] = pr.frmax
    return PostrefParams(fix=frozenset(fix), nref=pr.nref, sdfac=pr.sdfac,
                         maxshift=pr.maxshift, shiftfac=pr.shiftfac, mossmooth=pr.mossmooth,
                         mosadd=pr.mosadd, multi=True if pr.multi is None else pr.multi,
                         **extra)


def detector_refinement_params(session: Session) -> RefinementParams:
    """RefinementParams (per-image positional refinement) from the REFINEMENT settings."""
    rf = session.state.refinement
    fix = {f.upper() for f in rf.fixed if f.upper() in
           ("XCEN", "YCEN", "DISTANCE", "YSCALE", "TILT", "TWIST", "CCOMEGA")}
    return RefinementParams(fix=frozenset(fix | {"CCOMEGA"}), nref=rf.nref, limit=rf.limit,
                            cycles=rf.cycles, residual=rf.residual,
                            include_partials=rf.partial_fraction if rf.include_partials else None,
                            fullfrac=rf.fullfrac, weight=rf.weight, raise_on_residual=False)


def refinement_params(session: Session) -> tuple[RefinementParams, PostrefParams]:
    """REFINEMENT and POSTREF settings (cell fixed during integration unless UNFIXed)."""
    # during integration the cell is fixed unless POSTREF FIX/UNFIX said otherwise
    pfix = set() if session.state.is_user_set("postref.fixed") else set(CELL_PARAMS)
    return detector_refinement_params(session), postref_params(session, extra_fix=pfix)


def integrate_sweep(session: Session, first: int, last: int, start: float | None,
                    angle: float | None, block: int, add: int) -> None:
    """Integrate images first..last and write the MTZ and SUMMARY files."""
    rep = session.report
    plan = image_plan(session, first, last, start, angle, add)
    exp = starting_experiment(session, first)
    d_min, d_max = resolution_limits(session, exp)
    raster = choose_raster(session, exp, first)
    ip = integration_params(session, raster, first)
    rp, pp = refinement_params(session)
    g = session.geometry(first)
    pol = polarisation_model(session, g)
    st = session.state
    params = ProcessParams(
        d_min=d_min, d_max=d_max, maxwidth=st.integration.maxwidth, integration=ip,
        refinement=rp, postrefinement=pp, refine_detector=st.refinement.enabled,
        postref=st.postref.enabled and not st.postref.fix_all, mossmooth=st.postref.mossmooth,
        mosadd=st.postref.mosadd, polarisation=pol, high_resolution=d_min < 2.5,
        exclude_shells=exclude_shells(session), mask=_geometric_mask(session, g),
    )
    blocks = make_blocks(plan, block)
    starts, ends = phi_grid(plan)
    jobs = []
    pos = 0
    for k, b in enumerate(blocks):
        jobs.append(BlockJob(k, tuple(b), starts, ends, pos, exp, params))
        pos += len(b)
    cr = exp.crystal
    rep.line("")
    rep.line(f" Processing images {first} to {last} ({len(plan)} images, {len(blocks)} blocks "
             f"of up to {block}; profiles accumulated over {block} images (BLOCK))")
    rep.line(f" Cell {' '.join(f'{c:.3f}' for c in cr.cell)}  space group {cr.space_group}  "
             f"mosaic {cr.mosaic:.2f} deg")
    rep.line(f" Resolution {d_min:.2f} A{'' if d_max is None else f' to {d_max:.2f} A'};"
             f" RASTER {raster.nxs} {raster.nys} {raster.nc} {raster.nrx} {raster.nry};"
             f" {session.nproc} worker process(es)")
    if st.files.coords:
        raise NotImplementedYet(f"COORDS {st.files.coords}: writing MOSFLM's spot coordinates "
                                "file is not implemented yet (its layout is not documented); "
                                "remove COORDS (GENFILE writes the positions of the integrated "
                                "reflections as text)")
    series = session.images()
    mtz_path = _mtz_path(session, plan)
    t0 = time.perf_counter()
    image_rows = []
    profile_blocks = []  # each block's standard-profile table, for QuickScale's report
    n_records = 0
    done = 0

    fractions = FractionNormaliser(plan[0].phi_start, plan[-1].phi_end)

    progress(session, 0, len(plan), t0)
    steps = {"refined": 0, "integrated": 0}

    def on_image(number: int, stage: str) -> None:
        # half an image when refined, the other half when integrated: the bar moves per image
        # through both passes of a block
        steps[stage] = steps.get(stage, 0) + 1
        progress(session, 0.5 * (steps["refined"] + steps["integrated"]), len(plan), t0)

    try:
        with ExitStack() as stack:
            writer = stack.enter_context(UnmergedMtzWriter(mtz_path, _mtz_meta(session, exp)))
            gen = (stack.enter_context(GenerateFileWriter(st.files.genfile,
                                                          st.names.title or ""))
                   if st.files.genfile else None)
            for res in run_blocks(jobs, series_source(series), session.nproc, on_image):
                for w in res.warnings:
                    rep.warning(w)
                ims = plan[done:done + len(res.stats)]
                for k, (im, ref) in enumerate(zip(ims, res.refinement)):
                    _log_image(session, im, ref, res.profiles_report if k == 0 else None)
                _log_profiles(session, res)
                if res.stats:
                    profile_blocks.append({"first": res.stats[0].image,
                                           "last": res.stats[-1].image,
                                           "regions": res.profiles_report})
                for st_img, ref, rec, parts in zip(res.stats, res.refinement, res.records,
                                                   res.parts):
                    im = plan[done]
                    for r, hdr in fractions.add(rec, parts, im.phi_end,
                                                _batch_header(session, im, ref)):
                        writer.add(r, [hdr])
                        if gen is not None:
                            gen.add(r)
                    n_records += len(rec)
                    image_rows.append((st_img, ref, _agreement(rec, ref)))
                    _log_integrated(session, im, st_img, rec, ref)
                    done += 1
            for r, hdr in fractions.finish():
                writer.add(r, [hdr])
                if gen is not None:
                    gen.add(r)
            # honest failure: raising inside the writer discards the new file (an earlier
            # file of the same name is untouched)
            _check_outcome(session, first, last, image_rows, n_records,
                           st.refinement.enabled)
    except KeyboardInterrupt:
        raise IntegrationError("PROCESS interrupted: no MTZ file was written (any earlier file "
                               "is untouched).") from None
    finally:
        rep.progress(len(plan), len(plan), 0.0)  # take the bar off the terminal
    elapsed = time.perf_counter() - t0

    rep.line("")
    rep.line(f" {n_records} reflections integrated on {len(plan)} images in {elapsed:.1f} s "
             f"({len(plan) / max(elapsed, 1e-9):.2f} images/s)")
    _log_image_statistics(session, image_rows)
    rep.lines(END_OF_PROCESSING)
    import gemmi

    mtz = gemmi.read_mtz_file(str(mtz_path))
    rep.lines(mtz_written(mtz_path, mtz))
    if st.files.genfile:
        rep.line(f" Generate file written: {st.files.genfile}")
    if st.files.harvest:
        _write_harvest(session, plan, image_rows, mtz)
    summary = _write_summary(session, image_rows)
    if summary:
        rep.line(f" SUMMARY file written: {summary}")
    session.results.integration = IntegrationRun(
        n_records=n_records, mtz=str(mtz_path), images=[(s, r) for s, r, _ in image_rows],
        profiles=profile_blocks, seconds=elapsed)


def _check_outcome(session: Session, first: int, last: int, image_rows, n_records: int,
                   refine: bool) -> None:
    """Raise :class:`IntegrationError` when the run integrated nothing or refinement failed.

    A PROCESS that wrote no reflection, or whose positional refinement failed on more than half
    of its images, has not produced usable data: it must say why and exit non-zero, and no MTZ
    file is written (issue 8, item 8).
    """
    n_img = len(image_rows)
    predicted = sum(s.n_predicted for s, _, _ in image_rows)
    too_wide = sum(s.n_too_wide for s, _, _ in image_rows)
    overlap = sum(s.n_overlap for s, _, _ in image_rows)
    maxwidth = session.state.integration.maxwidth
    if n_records == 0:
        why = [f"{predicted} reflection parts were predicted"]
        if too_wide:
            why.append(f"{too_wide} were too wide in phi (rocking width above MAXWIDTH "
                       f"{maxwidth:g} degrees)")
        if overlap:
            why.append(f"{overlap} overlapped a neighbour")
        raise IntegrationError(
            f"PROCESS {first} {last}: no reflection was integrated on any of the {n_img} images "
            f"({'; '.join(why)}). No MTZ file was written (an earlier file is untouched). "
            "Check the orientation matrix, beam position and distance against the images "
            "(PREDICT_SPOTS shows the predictions), the mosaic spread (MOSAIC or MOSAIC "
            f"ESTIMATE) and the resolution limits; raise MAXWIDTH (now {maxwidth:g} degrees) if "
            "the reflections are wider than that.")
    if not refine:
        return
    failed = [ref.number for _, ref, _ in image_rows if not ref.refined]
    if 2 * len(failed) > n_img:
        shown = ", ".join(str(n) for n in failed[:8]) + (" ..." if len(failed) > 8 else "")
        raise IntegrationError(
            f"PROCESS {first} {last}: positional refinement failed on {len(failed)} of the "
            f"{n_img} images (images {shown}), even with the reflections of neighbouring images "
            "pooled: the predictions do not match the spots, or the images are too weak. "
            "No MTZ file was written (an earlier file is untouched). Check the orientation "
            "matrix, beam position and distance (PREDICT_SPOTS), and the mosaic spread; for "
            "very weak images integrate with the detector parameters as they are (NOREFINE).")
def _write_harvest(session: Session, plan, image_rows, mtz) -> None:
    """HARVEST ON: the CCP4 harvest file of this run (:mod:`mosflm_py.output.harvest`)."""
    st = session.state
    names = st.names
    pname, dname = names.pname or "Unspecified", names.dname or "Unspecified"
    first, last = plan[0].number, plan[-1].number
    exp = image_rows[-1][1].experiment if image_rows else None
    if exp is None:
        return
    g = session.geometry(first)
    sg_name, sg_num = space_group_short(exp.crystal.space_group)
    images = [HarvestImage(s.image, _f0(ref.rms), _f0(ref.wrms), _f0(s.isig_prf),
                           _f0(s.isig_prf_outer), rsym, nsym, sdrat)
              for s, ref, (rsym, nsym, sdrat) in image_rows]
    run = HarvestRun(
        pname=pname, dname=dname, first=first, last=last, cell=tuple(mtz.cell.parameters),
        space_group_number=sg_num, space_group_name=sg_name, distance=exp.detector.distance,
        wavelength=exp.beam.wavelength, synchrotron=g.beam.polarisation > 0.5,
        detector=str(g.detector_type), polarisation=float(g.beam.polarisation),
        mosaics=[r.experiment.crystal.mosaic for _, r, _ in image_rows],
        divergence=tuple(exp.beam.divergence), d_high=mtz.resolution_high(),
        d_low=mtz.resolution_low(), images=images, version=__version__)
    path = write_harvest(harvest_path(pname, dname, first, last, bool(st.files.ucwd)), run)
    session.report.line(f" Harvest file written: {path}")


def _agreement(rec, ref) -> tuple[float, int, float]:
    """Rsym, Nsym, SDRAT of the fully recorded reflections of one image (SUMMARY Table 1)."""
    full = ~np.asarray(rec.partial, bool)
    if full.sum() < 2:
        return 0.0, 0, 0.0
    hkl, _ = hkl_to_asu(np.asarray(rec.hkl)[full], ref.experiment.crystal.space_group)
    return symmetry_agreement(hkl, np.asarray(rec.Ipr)[full], np.asarray(rec.sigIpr)[full])


def _log_image_statistics(session: Session, image_rows) -> None:
    """Per-image counts and <I/sigma(I)> (kept out of SUMMARY, which has MOSFLM's two tables)."""
    rep = session.report
    rep.line("")
    rep.line(" Reflection counts and <I/sigma(I)> per image (profile fitted and summation, "
             "overall and in the outer shell)")
    rep.table(["Image", "FULL", "PART", "OVRLAP", "OVRLOAD", "BADSPOT", "IsigI_prf",
               "IsigI_prf_out", "IsigI_sum", "IsigI_sum_out"],
              [[s.image, s.n_full, s.n_partial, s.n_overlap, s.n_overload, s.n_bad,
                _f0(s.isig_prf), _f0(s.isig_prf_outer), _f0(s.isig_sum),
                _f0(s.isig_sum_outer)] for s, _, _ in image_rows],
              ["d", "d", "d", "d", "d", "d", ".1f", ".1f", ".1f", ".1f"])


def _log_profiles(session: Session, res) -> None:
    """The standard-profile table of a block and the map of its central profile."""
    rows = res.profiles_report
    if not rows:
        return
    rep = session.report
    first, last = res.stats[0].image, res.stats[-1].image
    rep.line("")
    rep.line(f" Standard profiles for images {first} to {last}")
    rep.table(["BOX", "NXS NYS NC NRX NRY", "RMSBG", "NO", "CORRLN", "AVERAGED"],
              [[r["region"], " ".join(str(v) for v in r["raster"]), f"{r['rmsbg']:.1f}",
                r["n_contrib"], f"{r['corrln']:.2f}", "yes" if r["averaged"] else ""]
               for r in rows])
    centre = max(rows, key=lambda r: r["n_contrib"])
    rep.line(f" Profile of box {centre['region']} ({centre['n_contrib']} reflections; peak "
             "pixels 0-9, background '.')")
    for line in centre["map"]:
        rep.line("   " + line)


def _log_integrated(session: Session, im, s, rec, ref) -> None:
    """MOSFLM's ``Integrating Image`` block: counts and the analysis by resolution."""
    rep = session.report
    rep.lines(image_banner("Integrating", s.image, im.phi_start, im.phi_end))
    rep.line("")
    rep.lines(integrated_image(s.n_full + s.n_partial, s.n_full, s.n_overload, s.n_edge,
                               s.n_bad, len(rec), im.batch))
    if len(rec) >= 10:
        hkl = np.asarray(rec.hkl, float)
        dstar2 = np.sum((hkl @ b_matrix(ref.experiment.crystal.cell).T) ** 2, axis=1)
        rep.line("")
        rep.lines(resolution_analysis(dstar2, rec.Ipr, rec.sigIpr, rec.I, rec.sigI,
                                      ~np.asarray(rec.partial, bool)))
    rep.line("")
    rep.line(" " + "@" * 60)


def _log_image(session: Session, im, ref, profiles: list[dict] | None = None) -> None:
    """MOSFLM's ``Processing Image`` block: positional and post-refinement results.

    On the first image of a block also the measurement box of the central standard profile
    and the SEPARATION in use (MOSFLM's "Final optimised raster parameters").
    """
    rep = session.report
    det = ref.experiment.detector
    cr = ref.experiment.crystal
    rep.lines(image_banner("Processing", ref.number, im.phi_start, im.phi_end))
    rep.lines(positional_refinement(ref.rms, ref.wrms, det.beam_x, det.beam_y, det.distance,
                                    det.yscale, det.tilt, det.twist, ref.ccx, ref.ccy,
                                    ref.ccom))
    if profiles:
        centre = max(profiles, key=lambda r: r["n_contrib"])
        rep.line("")
        rep.lines(raster_optimised(centre["raster"]))
        sep = session.effective.integration.separation
        if sep:
            rep.lines(separation_updated(sep))
        cog = centre.get("cog_mm", (float("nan"),) * 2)
        if np.all(np.isfinite(cog)) and np.isfinite(centre["rmsbg"]):
            rep.lines(centre_of_gravity(cog, centre["rmsbg"]))
    rep.lines(postref_result(cr.missets, cr.cell, cr.mosaic, ref.postref_resid,
                             ref.postref_n))
    if ref.pooled is not None:
        rep.line(f" Positional refinement used the reflections of images {ref.pooled[0]} to "
                 f"{ref.pooled[1]} (too few on this image alone)")
    for w in ref.warnings:
        rep.line(f"   Warning: {w}")


def _mtz_path(session: Session, plan) -> str:
    st = session.state
    path = st.files.hklout or default_mtz_name(session.images().template, plan[0].number)
    if st.files.mtzdirectory:
        path = str(Path(st.files.mtzdirectory) / Path(path).name)
    return str(path)


def _batch_header(session: Session, im, ref):
    e = ref.experiment
    cr = e.crystal
    return BatchHeader(
        number=im.batch, phi_start=im.phi_start, phi_end=im.phi_end, cell=cr.cell, U=cr.U,
        missets_start=cr.missets, missets_end=cr.missets, mosaic=cr.mosaic,
        wavelength=e.beam.wavelength, distance=e.detector.distance,
        detector_limits=(0.0, float(e.detector.nslow), 0.0, float(e.detector.nfast)),
        two_theta=e.detector.two_theta, divergence=e.beam.divergence,
        dispersion=e.beam.dispersion, reverse_phi=e.goniometer.reverse_phi,
        title=session.state.names.title or "",
    )


def _mtz_meta(session: Session, exp):
    names = session.state.names
    series = session.images()
    ident = names.xname or names.ident or Path(series.template).name.split("#")[0].rstrip("_")
    cr = exp.crystal
    return MtzMeta(cell=cr.cell, wavelength=exp.beam.wavelength, space_group=cr.space_group,
                   title=names.title or "", pname=names.pname or "Unspecified",
                   xname=ident or "Unspecified", dname=names.dname or "Unspecified",
                   history=("From mosflm-py PROCESS",))


def _write_summary(session: Session, image_rows) -> str | None:
    """SUMMARY with MOSFLM's two tables ("Refined detector parameters", "Post refinement").

    Numbers wherever MOSFLM has numbers (a value that could not be determined is written 0, as
    MOSFLM does); images that were not post-refined are left out of Table 2, as in MOSFLM.
    """
    path = session.state.files.summary
    if not path:
        return None
    det_rows, post_rows = [], []
    for s, ref, (rsym, nsym, sdrat) in image_rows:
        e = ref.experiment
        d = e.detector
        cr = e.crystal
        det_rows.append(DetectorImageResult(
            image=s.image, ccx=_f0(ref.ccx), ccy=_f0(ref.ccy), ccom=_f0(ref.ccom),
            dist=d.distance, yscale=d.yscale, tilt=d.tilt, twist=d.twist, roff=0.0, toff=0.0,
            resid=_f0(ref.rms), wresid=_f0(ref.wrms), full=s.n_full, part=s.n_partial,
            ovrl=s.n_overload, neg=s.n_negative, bad=s.n_bad, i_sigi=_f0(s.isig_prf),
            i_sigi_outer=_f0(s.isig_prf_outer), rsym=rsym, nsym=nsym, sdrat=sdrat))
        if _f(ref.postref_resid) is not None and ref.postref_n > 0:
            post_rows.append(PostrefImageResult(
                image=s.image, phix=cr.missets[0], phiy=cr.missets[1], phiz=cr.missets[2],
                cell=cr.cell, mosaic=cr.mosaic, divh=e.beam.divergence[0],
                divv=e.beam.divergence[1], resid=float(ref.postref_resid),
                nref=ref.postref_n))
    w = SummaryWriter(path, header=_summary_header(session))
    w.add_table(detector_parameters_table(det_rows))
    w.add_table(postrefinement_table(post_rows))
    return str(path)


def _summary_header(session: Session) -> str:
    """MOSFLM's SUMMARY header: title and crystal identifier."""
    names = session.state.names
    ident = names.xname or names.ident or ""
    return (f" Generate File TITLE:   {names.title or '.'}\n"
            f" Crystal Identifier:    {ident}\n\n")


def _f0(x: float | None) -> float:
    """A number for SUMMARY and the log: 0 for a value that could not be determined."""
    return 0.0 if x is None or not np.isfinite(x) else float(x)


def _f(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
