"""FINDSPOTS FIND / PICK action handlers and :func:`spots_for_images` (used by AUTOINDEX).

``FINDSPOTS FIND n [PHI a [TO b]]`` (queued, run by GO) finds the spots on image *n* with the
settings in ``state.spotfind`` (THRESHOLD, MINPIX, BOX, RMIN/RMAX, ICE, LOCAL/RADIAL, ...), masks
from BACKSTOP, LIMITS EXCLUDE/QUADRILATERAL, NULLPIX and OVERLOAD, and the RESOLUTION limits
(MOSFLM's spot search, algorithms.md §1).  It prints, per image, the threshold used, the number of
spots, the rejections by reason, the median spot size, and then the SEPARATION and RASTER implied
by the median spot size of all images searched::

    Based on a median spot size of 3 by 5 pixels, the measurement box parameters
    (RASTER) have been set to 13 17 9 4 5 and the minimum spot separation to 0.51 0.71 mm

Those are kept in the experiment model (``session.results.raster`` / ``.separation``, found
by FINDSPOTS) unless the user gave RASTER / SEPARATION (or SEPARATION NOUPDATE); the user's
settings are not changed.  Spots are kept in ``session.results.spots[n]`` (a :class:`SpotList`),
cached (``session.results.spot_cache``) with the parameters that made them so a second request
with the same settings costs nothing.

Spot file: ``FINDSPOTS FILE name`` (or the SPOTOD logical name) is written after every search
with all the spots found so far; if it exists before any search in this session, images whose
φ range contains spots from it use those spots instead of searching (so a spot list made by an
earlier run, or edited by hand, can be re-used).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from mosflm_py.errors import KeywordError
from mosflm_py.experiment_model import Found
from mosflm_py.output.mosflm_log import raster_set, separation_set, spot_search_summary
from mosflm_py.spotfinding import (
    FindSpotsReport,
    SpotFindParams,
    SpotList,
    find_spots,
    raster_from_spot_size,
    read_spot_file,
    separation_from_spot_size,
    write_spot_file,
)
from mosflm_py.spotfinding.spotfile import SpotFileError

if TYPE_CHECKING:
    from mosflm_py.image_geometry import EffectiveGeometry
    from mosflm_py.session import Job, Session


MIN_SPOTS_FOR_BOX = 10
"""RASTER and SEPARATION are only derived from the median size of at least this many spots."""

REASON_TEXT = {
    "too_many_peaks": "too many unresolved peaks (MAXPEAK)",
    "too_few_pixels": "too few pixels (MINPIX)",
    "inactive_pixels": "touching inactive pixels or the edge",
    "outside_radius": "outside the search radii (RMIN/RMAX)",
    "resolution": "outside the resolution limits",
    "ice": "on ice rings",
    "too_small_x": "too small in X (MINX)",
    "too_large_x": "too large in X (MAXX)",
    "too_small_y": "too small in Y (MINY)",
    "too_large_y": "too large in Y (MAXY)",
    "anisotropic": "too anisotropic (ANISOMAX)",
    "too_weak_rms": "too weak r.m.s. variation (RMSFACTOR)",
    "too_close": "too close to another spot (SEPARATION)",
    "autoresln": "beyond the automatic resolution limit",
}


# -------------------------------------------------------------------------------------------
# Settings -> spot-finder inputs
# -------------------------------------------------------------------------------------------


def spotfind_params(session: Session, g: EffectiveGeometry) -> SpotFindParams:
    """SpotFindParams from the FINDSPOTS, LIMITS, BACKSTOP, RESOLUTION, NULLPIX, OVERLOAD settings.

    THRESHOLD not given by the user means MOSFLM's automatic choice (``"auto"``, 5 σ raised on
    strong images); SEPARATION is only used to reject close spots when the user gave it.
    """
    st = session.state
    sf = session.effective.spotfind  # MINPIX: AUTOINDEX's choice on pixel detectors
    lim = st.detector.limits
    threshold: float | str = (float(sf.threshold) if st.is_user_set("spotfind.threshold")
                              else "auto")
    backstop = None
    if lim.backstop_centre is not None and lim.backstop_radius:
        backstop = (float(lim.backstop_centre[0]), float(lim.backstop_centre[1]),
                    float(lim.backstop_radius))
    quads = []
    for q in lim.quadrilaterals:
        q = tuple(float(v) for v in q)
        if len(q) != 8:
            raise KeywordError("LIMITS QUADRILATERAL needs 8 numbers x1 y1 x2 y2 x3 y3 x4 y4 (mm)")
        quads.append(tuple((q[2 * k], q[2 * k + 1]) for k in range(4)))
    sep = st.integration.separation if st.is_user_set("integration.separation") else None
    return SpotFindParams(
        threshold=threshold,
        background="local" if sf.local else "radial",
        box=(int(sf.box[0]), int(sf.box[1])),
        minpix=int(sf.minpix),
        min_size_x=float(sf.minx), max_size_x=float(sf.maxx),
        min_size_y=float(sf.miny), max_size_y=float(sf.maxy),
        rmsfactor=float(sf.rmsfactor),
        anisomax=float(sf.anisomax),
        maxpeak=int(sf.maxpeak),
        split_sep=(float(sf.split[0]), float(sf.split[1])),
        separation=(float(sep[0]), float(sep[1])) if sep is not None else None,
        rmin=sf.rmin, rmax=sf.rmax,
        d_min=st.resolution.dmin, d_max=st.resolution.dmax,
        ice=bool(sf.ice or st.resolution.exclude_ice),
        autoresln=bool(sf.autoresln),
        nullpix=g.nullpix,
        overload=g.overload,
        gain=g.gain if g.gain > 0 else 1.0,
        backstop=backstop,
        excludes=tuple(tuple(float(v) for v in r) for r in lim.exclude),
        quadrilaterals=tuple(quads),
    )


def spot_file_name(session: Session) -> str | None:
    """FINDSPOTS FILE, else the SPOTOD logical name, else None."""
    st = session.state
    return st.spotfind.file or st.files.spotod or None


# -------------------------------------------------------------------------------------------
# Finding (cached)
# -------------------------------------------------------------------------------------------


def _cache(session: Session) -> dict[int, tuple[Any, SpotList, FindSpotsReport | None]]:
    return session.results.spot_cache


def find_on_image(session: Session, n: int, phi: tuple[float, float] | None = None
                  ) -> tuple[SpotList, FindSpotsReport | None, bool]:
    """Spots on image *n* (cached): (spots, report or None if read from a file, fresh?)."""
    g = session.geometry(n)
    if phi is None:
        phi = (g.phi_start, g.phi_end)
    params = spotfind_params(session, g)
    det = g.detector
    key = (params, det, g.beam.wavelength, (float(phi[0]), float(phi[1])), g.adcoffset)
    cache = _cache(session)
    if n in cache and cache[n][0] == key:
        return session.results.spots.get(n, cache[n][1]), cache[n][2], False
    from_file = _spots_from_file(session, phi)
    if from_file is not None:
        spots = from_file.replace(image=np.full(len(from_file), n, np.int32))
        cache[n] = (key, spots, None)
        session.results.spots[n] = spots
        return spots, None, True
    frame = session.images().frame(n)
    if g.adcoffset:
        frame = np.asarray(frame, np.float64) - g.adcoffset
    spots, rep = find_spots(frame, det, g.beam.wavelength, params, image=n,
                            phi=(float(phi[0]), float(phi[1])))
    cache[n] = (key, spots, rep)
    session.results.spots[n] = spots
    return spots, rep, True


def _spots_from_file(session: Session, phi: tuple[float, float]) -> SpotList | None:
    """Spots of an existing spot file (not written by this session) within the φ range.

    ``AUTOINDEX ... FILE name`` names a spot file that must be read (a clear error when it does
    not exist), as CrystFEL's MOSFLM indexer hands its spots over; otherwise the FINDSPOTS FILE /
    SPOTOD file is read when it exists.
    """
    given = session.state.index.file
    if given:
        if not os.path.exists(given):
            raise SpotFileError(f"AUTOINDEX FILE {given}: no such spot file")
        name = given
    else:
        name = spot_file_name(session)
        if not name or not os.path.exists(name):
            return None
        if os.path.abspath(name) in session.results.spot_files_written:
            return None
    all_spots = session.results.spot_files.get(name)
    if all_spots is None:
        all_spots = read_spot_file(name)
        session.results.spot_files[name] = all_spots
        session.report.line(f" Spot file {name} read: {len(all_spots)} spots")
    lo, hi = min(phi), max(phi)
    sel = (all_spots.phi >= lo - 1e-6) & (all_spots.phi <= hi + 1e-6)
    if not sel.any():
        return None
    return all_spots.select(sel)


def spots_for_images(session: Session, numbers, report: bool = True,
                     phis: dict[int, tuple[float, float]] | None = None
                     ) -> dict[int, SpotList]:
    """Find (or take from the cache / spot file) the spots on each image of *numbers*.

    Parameters
    ----------
    session : Session
    numbers : iterable of int
        Image numbers of the current sector.
    report : bool
        Print the MOSFLM spot-search summary per image and the implied RASTER / SEPARATION
        (those are kept in the experiment model whatever *report* is).
    phis : dict, optional
        φ range (deg) per image overriding the header (FINDSPOTS FIND n PHI a TO b).

    Returns
    -------
    dict[int, SpotList]
        Spots per image (also stored in ``session.results.spots``).
    """
    numbers = [int(n) for n in numbers]
    if not numbers:
        raise KeywordError("no images given to search for spots")
    out: dict[int, SpotList] = {}
    fresh_reports = []
    for n in numbers:
        spots, rep, fresh = find_on_image(session, n, (phis or {}).get(n))
        out[n] = spots
        if report:
            _report_image(session, n, spots, rep, fresh)
        for w in (rep.warnings if rep is not None and fresh else []):
            session.report.warning(w[0].upper() + w[1:] + ".")
        if fresh:
            fresh_reports.append(rep)
    if fresh_reports:
        _write_spot_file(session)
    _set_box_and_separation(session, numbers, report)
    return out


def _write_spot_file(session: Session) -> None:
    name = spot_file_name(session)
    if not name or not session.results.spots:
        return
    numbers = sorted(session.results.spots)
    g = session.geometry(numbers[0])
    spots = SpotList.concatenate([session.results.spots[n] for n in numbers])
    det = g.detector
    write_spot_file(name, spots, (det.nslow, det.nfast), det.pixel_slow, det.pixel_fast,
                    (det.beam_x, det.beam_y))
    session.results.spot_files_written.add(os.path.abspath(name))
    session.report.line(f" {len(spots)} spots written to the spot file {name}")


def median_spot_size(spot_lists) -> tuple[float, float]:
    """Median spot extent (pixels) in X (slow) and Y (fast) over several spot lists."""
    sx = np.concatenate([np.asarray(s.size_x, float) for s in spot_lists]) if spot_lists else []
    sy = np.concatenate([np.asarray(s.size_y, float) for s in spot_lists]) if spot_lists else []
    if len(sx) == 0:
        return 0.0, 0.0
    return float(np.median(sx)), float(np.median(sy))


def _set_box_and_separation(session: Session, numbers: list[int], report: bool) -> None:
    lists = [session.results.spots[n] for n in numbers if n in session.results.spots]
    mx, my = median_spot_size([s for s in lists if len(s)])
    n_spots = sum(len(s) for s in lists)
    if n_spots < MIN_SPOTS_FOR_BOX or mx <= 0 or my <= 0:
        if report:
            if n_spots >= MIN_SPOTS_FOR_BOX:  # e.g. a spot file without spot sizes
                session.report.line(" The spots carry no spot size: the measurement box "
                                    "(RASTER) and SEPARATION are not set from them")
            else:
                session.report.line(f" Only {n_spots} spots: too few to set the measurement box "
                                    f"(RASTER) and SEPARATION from the spot size (at least "
                                    f"{MIN_SPOTS_FOR_BOX} needed)")
        return
    g = session.geometry(numbers[0])
    raster = raster_from_spot_size(mx, my)
    sep = separation_from_spot_size(mx, my, g.detector.pixel_slow, g.detector.pixel_fast)
    st = session.state
    set_raster = not st.is_user_set("integration.raster")
    set_sep = not (st.is_user_set("integration.separation")
                   or not st.integration.separation_update)
    if set_raster:
        session.results.raster = Found(tuple(int(v) for v in raster), "FINDSPOTS", st.clock)
    if set_sep:
        session.results.separation = Found((float(sep[0]), float(sep[1])), "FINDSPOTS",
                                           st.clock)
    if not report:
        return

    ix, iy = int(np.ceil(mx)), int(np.ceil(my))
    r = " ".join(str(v) for v in raster)
    session.report.line()
    if set_raster:
        session.report.lines(raster_set(ix, iy, raster))
    else:
        session.report.line(f" Median spot size {ix} by {iy} pixels (would imply RASTER {r}; "
                            "the RASTER given is kept)")
    if set_sep:
        session.report.lines(separation_set(ix, iy, sep))
    else:
        cur = session.effective.integration.separation
        kept = f"{cur[0]:.2f} {cur[1]:.2f} mm" if cur else "as given"
        session.report.line(f" (would imply SEPARATION {sep[0]:.2f} {sep[1]:.2f} mm; "
                            f"the separation {kept} is kept)")
    session.report.line()


def _report_image(session: Session, n: int, spots: SpotList, rep: FindSpotsReport | None,
                  fresh: bool) -> None:
    out = session.report
    g = session.geometry(n)
    out.line()
    out.line(f" Spot search on image {n}  (phi {g.phi_start:.2f} to {g.phi_end:.2f} degrees)")
    if rep is None:
        name = session.state.index.file or spot_file_name(session)
        out.line(f" {len(spots)} spots taken from the spot file {name}")
        return
    if not fresh:
        out.line(f" (spots already found with these parameters: {len(spots)} spots)")
        return
    out.line(f" Threshold used: {rep.threshold:.1f} sigma above background "
             f"(mean background {rep.background_mean:.1f} counts)")
    rmax = f"{rep.rmax:.1f} mm" if np.isfinite(rep.rmax) else "the whole detector"
    out.line(f" Search radius: minimum {rep.rmin:.1f} mm, maximum {rmax}")
    out.line(f" {rep.n_regions} regions above threshold, {rep.n_split} spots split off; "
             f"{rep.n_found} spots accepted ({rep.n_overloaded} with overloaded pixels)")
    rej = [(REASON_TEXT.get(k, k), v) for k, v in rep.rejected.items()
           if v and k != "overloaded"]
    if rej:
        out.line(" Spots rejected:")
        for text, v in rej:
            out.line(f"   {v:7d}  {text}")
    if rep.n_found:
        out.line(f" Median spot size {rep.median_size_x:.0f} by {rep.median_size_y:.0f} pixels; "
                 f"spots found to {rep.d_min_spots:.2f} A resolution")
        if rep.d_limit is not None:
            out.line(f" Weak image: spots beyond {rep.d_limit:.2f} A ignored (AUTORESLN)")

    sep = session.effective.integration.separation or rep.separation
    out.line()
    out.lines(spot_search_summary(rep.n_regions, rep.rejected, rep.n_found, sep,
                                  np.asarray(spots.d_spacing, float)))


# -------------------------------------------------------------------------------------------
# Handlers
# -------------------------------------------------------------------------------------------


def run(session: Session, job: Job) -> None:
    """FINDSPOTS FIND n [PHI a [TO b]] (one job may hold several FIND lines)."""
    numbers: list[int] = []
    phis: dict[int, tuple[float, float]] = {}
    for rec in job.records:
        for find in rec.all("FIND"):
            n = find.get("image")
            if n is None:
                raise KeywordError("FINDSPOTS FIND needs an image number")
            n = int(n)
            phi = find.sub("PHI")
            if phi is not None:
                a = float(phi.get("start"))
                b = phi.get("end")
                if b is None:
                    g = session.geometry(n)
                    b = a + (g.osc_width if g.osc_width > 0 else 0.0)
                phis[n] = (a, float(b))
            if n not in numbers:
                numbers.append(n)
    if not numbers:
        raise KeywordError("FINDSPOTS FIND needs an image number")
    out = spots_for_images(session, numbers, report=True, phis=phis)
    total = sum(len(s) for s in out.values())
    session.report.line(f" Total of {total} spots found on {len(out)} image(s)")


def pick(session: Session, job: Job) -> None:
    """PICK n x y: add a spot picked by hand on image n at detector position (x, y) mm."""
    for rec in job.records:
        n, x, y = int(rec.get("n")), float(rec.get("x")), float(rec.get("y"))
        g = session.geometry(n)
        det = g.detector
        xmax, ymax = det.size_mm
        if not (0 <= x <= xmax and 0 <= y <= ymax):
            raise KeywordError(f"PICK {n} {x} {y}: the position is off the detector "
                               f"(X 0-{xmax:.1f}, Y 0-{ymax:.1f} mm)")
        one = SpotList(
            x_mm=np.array([x]), y_mm=np.array([y]),
            x_px=np.array([x / det.pixel_slow]), y_px=np.array([y / det.pixel_fast]),
            intensity=np.array([0.0]), sigma=np.array([1.0]),
            size_x=np.array([0], np.int32), size_y=np.array([0], np.int32),
            n_pixels=np.array([0], np.int32), peak=np.array([0.0]),
            background=np.array([0.0]), d_spacing=np.array([np.inf]),
            flags=np.array([0], np.int32), image=np.array([n], np.int32),
            phi=np.array([0.5 * (g.phi_start + g.phi_end)]),
        )
        old = session.results.spots.get(n)
        session.results.spots[n] = one if old is None else SpotList.concatenate([old, one])
        session.report.line(f" Spot picked on image {n} at X {x:.2f} Y {y:.2f} mm "
                            f"({len(session.results.spots[n])} spots on this image)")


__all__ = ["find_on_image", "median_spot_size", "pick", "run",
           "spot_file_name", "spotfind_params", "spots_for_images"]
