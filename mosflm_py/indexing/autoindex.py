"""MOSFLM-style autoindexing of spots from one or more images (DPS, 44 characters, refinement).

Steps: select spots with I/sigma >= THRESHOLD (lowered automatically when too few), convert to
reciprocal-lattice vectors, DPS basis search (Steller, Bolotovsky & Rossmann 1997), Niggli
reduction, refinement of the triclinic solution against the spot positions (orientation, cell,
beam, optionally distance), the 44 lattice characters with penalties from the refined triclinic
cell, detector-space refinement of the best row of each Bravais lattice with penalty below 200,
and the automatic choice of :func:`mosflm_py.indexing.solutions.choose_solution`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.spatial import cKDTree

from mosflm_py.errors import IndexingError
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.reciprocal import spots_to_rlp
from mosflm_py.indexing.cellparams import cell_to_params
from mosflm_py.indexing.characters import space_groups_for_lattice
from mosflm_py.indexing.detector_refine import DetectorSpots, refine_solution
from mosflm_py.indexing.dps import find_basis, fit_basis
from mosflm_py.indexing.lattice_refine import index_fraction
from mosflm_py.indexing.niggli import cell_from_basis, niggli_reduce
from mosflm_py.indexing.rlp_index import character_rows, conventional_ub
from mosflm_py.indexing.solutions import IndexingParams, SolutionRow, choose_solution

MAX_SIGMA_XY = 1.0
"""mm: a solution fitting the spots worse than this (rms) is not a lattice, whatever its cell."""
MIN_INDEXED = 10
"""A solution must index at least this many spots (and as many as it has free parameters;
each spot gives three observations, X, Y and phi)."""

ADVICE = (
    "Check the direct beam position (it should be correct to better than half the minimum spot "
    "separation), the distance and wavelength; try a different THRESHOLD, other images or single "
    "images, REVERSEPHI if the rotation sense may be reversed, or set MAXCELL."
)


@dataclass(frozen=True, eq=False)
class SecondLattice:
    """A second lattice indexed from the spots the first one leaves unindexed.

    Attributes
    ----------
    lattice : str
        Bravais lattice suggested for it.
    cell : tuple
        Its refined cell (Angstrom, degrees).
    n_spots : int
        Spots it indexes (of ``n_left`` left unindexed by the first lattice).
    n_left : int
    rotation : float
        Smallest rotation (deg) taking the first lattice onto the second
        (:func:`misorientation`; NaN when the reduced cells differ).
    sigma_xy : float
        Its rms positional residual (mm).
    """

    lattice: str
    cell: tuple[float, ...]
    n_spots: int
    n_left: int
    rotation: float
    sigma_xy: float


SECOND_MIN_SPOTS = 30
"""Unindexed spots needed (and indexed by it) before a second lattice is looked for/reported."""
SECOND_MIN_FRACTION = 0.1
"""... and at least this fraction of all the spots."""


def _unimodular_3() -> np.ndarray:
    """All 3x3 matrices with entries -1, 0, 1 and determinant +1 (the changes of basis that
    carry a reduced basis onto an equivalent one include the lattice's rotations)."""
    m = np.array(list(itertools.product((-1, 0, 1), repeat=9)), float).reshape(-1, 3, 3)
    return m[np.abs(np.linalg.det(m) - 1.0) < 1e-6]


def misorientation(basis1: np.ndarray, basis2: np.ndarray) -> float:
    """Smallest rotation (deg) taking lattice 1 onto lattice 2 (reduced bases, rows a, b, c).

    Over the changes of basis M (entries -1, 0, 1, det 1) for which M·basis2 has the metric of
    basis1 within 2 % (the lattice's symmetry), the rotation R with M·basis2 = basis1·Rᵀ; NaN
    when there is none (different cells).
    """
    b1 = np.asarray(basis1, float)
    b2 = np.asarray(basis2, float)
    ms = _unimodular_3()
    cand = ms @ b2  # (K, 3, 3)
    g1 = b1 @ b1.T
    g = cand @ np.transpose(cand, (0, 2, 1))
    scale = np.sqrt(np.outer(np.diag(g1), np.diag(g1)))
    close = np.all(np.abs(g - g1) <= 0.02 * scale, axis=(1, 2))
    best = np.nan
    inv1 = np.linalg.inv(b1)
    for c in cand[close]:
        r = (inv1 @ c).T
        u, _, vt = np.linalg.svd(r)
        rot = u @ vt
        if np.linalg.det(rot) < 0:
            continue
        ang = float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
        best = ang if not np.isfinite(best) else min(best, ang)
    return best


def find_second_lattice(spots: DetectorSpots, result: IndexingResult,
                        params: IndexingParams) -> SecondLattice | None:
    """Index the spots the chosen solution leaves unindexed (Powell, Johnson & Leslie 2013).

    Returns the second lattice when its own indexing succeeds and indexes at least
    :data:`SECOND_MIN_SPOTS` spots and :data:`SECOND_MIN_FRACTION` of all, with an rms
    residual no worse than twice the first lattice's (and it is not the first lattice again).
    """
    exp = result.experiment
    rlp = spots_to_rlp(spots.x_mm, spots.y_mm, spots.phi, exp)
    _, ok = index_fraction(rlp, exp.crystal.UB, params.hkldev)
    left = ~ok
    n_min = max(SECOND_MIN_SPOTS, int(np.ceil(SECOND_MIN_FRACTION * len(spots))))
    if left.sum() < n_min:
        return None
    try:
        second = autoindex(spots.select(left), exp.replace(crystal=None),
                           replace(params, second_lattice=False, solution=None))
    except IndexingError:
        return None
    if second.n_indexed < n_min or second.sigma_xy > 2.0 * max(result.sigma_xy, 0.05):
        return None
    b1 = niggli_reduce(np.linalg.inv(result.crystal.UB)).basis
    b2 = niggli_reduce(np.linalg.inv(second.crystal.UB)).basis
    rot = misorientation(b1, b2)
    if np.isfinite(rot) and rot < 1.0:
        return None  # the first lattice again (spots it missed), not a second crystal
    return SecondLattice(lattice=second.solution.lattice, cell=tuple(second.crystal.cell),
                         n_spots=second.n_indexed, n_left=int(left.sum()), rotation=rot,
                         sigma_xy=second.sigma_xy)


@dataclass(frozen=True, eq=False)
class IndexingResult:
    """Outcome of :func:`autoindex`.

    Attributes
    ----------
    crystal : Crystal
        Chosen solution: refined cell, U (MOSFLM convention), space group (first of the lattice
        or the SYMMETRY one).
    experiment : Experiment
        Input experiment with refined beam position (and distance) and the crystal.
    table : list of SolutionRow
        The 44 rows sorted by penalty.
    chosen : int
        Index into ``table`` of the chosen row.
    beam_start, beam_refined : tuple
        Beam position (mm) before and after refinement.
    distance : float
        Refined (or fixed) distance (mm).
    sigma_xy, sigma_phi : float
        Rms residuals of the chosen solution (mm, deg; phi NaN for stills).
    n_spots, n_used, n_indexed : int
        Spots given, spots passing the I/sigma threshold, spots used in the final refinement.
    threshold : float
        I/sigma threshold actually used.
    max_cell : float
        Maximum cell edge used (Angstrom).
    triclinic_cell : tuple
        Refined reduced triclinic cell (Angstrom, degrees).
    warnings : list of str
    second_lattice : SecondLattice or None
        Another lattice formed by the spots the chosen solution leaves unindexed.
    """

    crystal: Crystal
    experiment: Experiment
    table: list[SolutionRow]
    chosen: int
    beam_start: tuple[float, float]
    beam_refined: tuple[float, float]
    distance: float
    sigma_xy: float
    sigma_phi: float
    n_spots: int
    n_used: int
    n_indexed: int
    threshold: float
    max_cell: float
    triclinic_cell: tuple[float, ...]
    warnings: list[str] = field(default_factory=list)
    second_lattice: SecondLattice | None = None

    @property
    def solution(self) -> SolutionRow:
        """The chosen row."""
        return self.table[self.chosen]


def select_spots(
    spots: DetectorSpots, threshold: float, min_spots: int
) -> tuple[np.ndarray, float]:
    """Mask of spots with I/sigma >= threshold; threshold halved (down to 3) until enough pass."""
    with np.errstate(divide="ignore", invalid="ignore"):
        isig = np.where(spots.sigma > 0, spots.intensity / spots.sigma, np.inf)
    t = float(threshold)
    mask = isig >= t
    while mask.sum() < min_spots and t > 3.0:
        t = max(3.0, t / 2)
        mask = isig >= t
    return mask, t


def estimate_max_cell(rlp: np.ndarray, image: np.ndarray | None = None) -> float:
    """Maximum cell edge (Angstrom) from the closest separations of reciprocal-lattice points.

    Neighbouring spots on one image are ~1/a apart in reciprocal space, but only for the cell
    edges whose reciprocal axes lie across the thin shell recorded on that image (an edge along
    the beam is invisible on a narrow image).  So each image (with at least 8 spots) gives its
    own estimate, 1.5 / (5th percentile of the nearest-neighbour separations), and the largest
    of them is used (MOSFLM estimates it from the minimum spot separation).  Images with fewer
    than 8 spots (sparse small-molecule images) are pooled: the spots are 3D spots (a reflection
    recorded on consecutive images is one spot, :mod:`mosflm_py.actions.indexspots`), so any
    two are different reflections.  Clipped to 10..1000 Angstrom; 100 when nothing can be
    measured.
    """
    rlp = np.asarray(rlp, dtype=float)
    groups = [np.ones(len(rlp), bool)]
    if image is not None and len(np.unique(image)) > 1:
        groups = [image == i for i in np.unique(image) if np.sum(image == i) >= 8] or groups
    estimates = []
    for g in groups:
        pts = rlp[g]
        if len(pts) < 2:
            continue
        d, _ = cKDTree(pts).query(pts, k=2)
        s = d.reshape(len(pts), 2)[:, 1]
        s = s[np.isfinite(s) & (s > 1e-6)]
        if len(s):
            estimates.append(1.5 / np.percentile(s, 5))
    if not estimates:
        return 100.0
    return float(np.clip(max(estimates), 10.0, 1000.0))


def _with_beam(experiment: Experiment, dx: float, dy: float) -> Experiment:
    det = experiment.detector
    return experiment.replace(detector=det.replace(beam_x=det.beam_x + dx, beam_y=det.beam_y + dy))


def _dps_with_retry(rlp: np.ndarray, max_cell: float, params: IndexingParams, fixed: bool):
    """DPS basis search; when it indexes < 85 % of the spots, again with MAXCELL doubled.

    A cell edge along the beam is invisible in the spot separations of a narrow image, so the
    estimated maximum cell can be too short for the longest edge (not when MAXCELL was given).
    Returns the better BasisSearchResult, or None if both searches failed.
    """
    best = None
    tries = [max_cell] if fixed else [max_cell, min(2.0 * max_cell, 1000.0)]
    for mc in dict.fromkeys(tries):
        try:
            search = find_basis(rlp, mc, min_cell=params.min_cell, hkldev=params.hkldev,
                                nvect=params.nvect, spacing=params.spacing)
        except IndexingError:
            continue
        if best is None or search.fraction > best.fraction + 0.02:
            best = search
        if best.fraction >= 0.85:
            break
    return best


def basis_misfit(rlp: np.ndarray, basis: np.ndarray) -> float:
    """Mean over the spots of the largest deviation from integral indices (clipped at 0.5).

    About 0.02-0.1 for the right basis, ~0.35 for a wrong one; unlike the fraction within
    HKLDEV it still separates a nearly-right basis (slightly wrong beam) from the right one.
    """
    h = rlp @ np.asarray(basis).T
    return float(np.mean(np.minimum(np.max(np.abs(h - np.round(h)), axis=1), 0.5)))


def beam_search(
    spots: DetectorSpots, experiment: Experiment, max_cell: float, params: IndexingParams
) -> tuple[Experiment, str]:
    """Grid search of the direct-beam position (BEAMSEARCH).

    Every position on a square grid of +-``params.beam_range`` mm in ``params.beam_step`` mm
    steps about the given beam is scored by a quick DPS search (coarser directions, fewer
    candidates) and :func:`basis_misfit` of the basis it finds; the best position is returned
    (the detector refinement that follows refines it continuously).  A beam error shifts the
    reciprocal-lattice points of each image differently, which ruins the lattice fit of
    several images (or a wide one) once it exceeds ~1/4 of the spot separation.

    Returns
    -------
    (Experiment with the chosen beam, message for the log)
    """
    g = np.arange(-params.beam_range, params.beam_range + 1e-9, params.beam_step)
    best: tuple[float, float, float] | None = None
    for dx in g:
        for dy in g:
            exp_try = _with_beam(experiment, float(dx), float(dy))
            r = spots_to_rlp(spots.x_mm, spots.y_mm, spots.phi, exp_try)
            try:
                search = find_basis(r, max_cell, min_cell=params.min_cell, hkldev=params.hkldev,
                                    nvect=params.nvect, spacing=max(params.spacing, 0.05),
                                    n_candidates=20)
            except IndexingError:
                continue
            basis = fit_basis(r, search.basis, params.hkldev)
            if abs(np.linalg.det(basis)) < 1.0:
                continue
            score = basis_misfit(r, basis)
            if best is None or score < best[0]:
                best = (score, float(dx), float(dy))
    if best is None:
        raise IndexingError(
            f"Autoindexing failed: no lattice found at any beam position within "
            f"+-{params.beam_range:g} mm of the given one. {ADVICE}"
        )
    exp = _with_beam(experiment, best[1], best[2])
    det = exp.detector
    note = (f"Beam search over +-{params.beam_range:g} mm in {params.beam_step:g} mm steps: best "
            f"beam position {det.beam_x:.2f} {det.beam_y:.2f} mm (shift {best[1]:+.2f} "
            f"{best[2]:+.2f} mm)")
    return exp, note


def autoindex(
    spots: DetectorSpots, experiment: Experiment, params: IndexingParams | None = None
) -> IndexingResult:
    """Autoindex spots from one or more images (rotation images or stills).

    Parameters
    ----------
    spots : DetectorSpots
        Spot positions (mm), phi (deg), image widths (deg, 0 for stills), I and sigma.
    experiment : Experiment
        Beam, detector, goniometer (header values plus keyword overrides).
    params : IndexingParams

    Returns
    -------
    IndexingResult

    Raises
    ------
    IndexingError
        With MOSFLM's advice when no solution is found.
    """
    params = params or IndexingParams()
    warnings: list[str] = []
    n_spots = len(spots)
    mask, threshold = select_spots(spots, params.threshold, params.min_spots)
    if threshold < params.threshold:
        warnings.append(
            f"Only {int(mask.sum())} spots with I/sigma(I) >= {params.threshold:g}: threshold "
            f"lowered to {threshold:g}"
        )
    if mask.sum() < 10:
        raise IndexingError(
            f"Autoindexing failed: only {int(mask.sum())} spots with I/sigma(I) >= {threshold:g} "
            f"(at least 10 needed). {ADVICE}"
        )
    use = spots.select(mask)
    rlp = spots_to_rlp(use.x_mm, use.y_mm, use.phi, experiment)
    max_cell = params.max_cell or estimate_max_cell(rlp, use.image)

    # optional grid search of the beam position, then the DPS search at the chosen beam
    exp_start = experiment
    if params.beam_search:
        exp_start, grid_note = beam_search(use, experiment, max_cell, params)
        warnings.append(grid_note)
        rlp = spots_to_rlp(use.x_mm, use.y_mm, use.phi, exp_start)
    search = _dps_with_retry(rlp, max_cell, params, fixed=params.max_cell is not None)
    basis = None if search is None else fit_basis(rlp, search.basis, params.hkldev)
    if basis is None or abs(np.linalg.det(basis)) < 1.0:  # none, or degenerate (< 1 A^3)
        raise IndexingError(f"Autoindexing failed: no lattice found by the DPS search. {ADVICE}")

    red = niggli_reduce(basis).basis
    if np.linalg.det(red) < 0:
        red = -red
    # triclinic refinement in detector space
    ap = refine_solution(use, exp_start, np.linalg.inv(red), cell_from_basis(red), "aP",
                         hkldev=params.hkldev, sdcutoff=params.sdcutoff,
                         refine_distance=params.unfixdist, refine_tilt=params.unfixdist)
    if ap.fraction < 0.25 or ap.n_used < 6:
        raise IndexingError(
            f"Autoindexing failed: the best solution indexes only {100 * ap.fraction:.0f}% of "
            f"the spots. {ADVICE}"
        )
    # repeat from the refined model until the cell settles: the first pass starts from the
    # DPS basis and the unrefined beam and may stop short (rejecting spots it should keep)
    for _ in range(3):
        red_ap = niggli_reduce(np.linalg.inv(ap.ub)).basis
        again = refine_solution(use, ap.experiment, np.linalg.inv(red_ap),
                                cell_from_basis(red_ap), "aP", hkldev=params.hkldev,
                                sdcutoff=params.sdcutoff, refine_distance=params.unfixdist,
                                refine_tilt=params.unfixdist)
        old_cell = np.asarray(cell_from_basis(red_ap))
        new_cell = np.asarray(cell_from_basis(niggli_reduce(np.linalg.inv(again.ub)).basis))
        better = again.n_used >= ap.n_used and again.sigma_xy <= ap.sigma_xy * 1.05
        if better:
            ap = again
        if not better or np.allclose(new_cell, old_cell, rtol=1e-3, atol=0.05):
            break
    exp_ref = ap.experiment.replace(crystal=None)
    red = niggli_reduce(np.linalg.inv(ap.ub)).basis
    rows = character_rows(red)
    done: set[str] = set()
    table: list[SolutionRow] = []
    for row in rows:
        # every row that may be chosen (penalty up to wide_penalty: each setting, e.g. the
        # three unique axes of mP, is a different solution), else the best row of each lattice
        if row.penalty >= params.refine_penalty or (
            row.lattice in done and row.penalty > params.wide_penalty
        ):
            table.append(row)
            continue
        done.add(row.lattice)
        ref = refine_solution(use, exp_ref, conventional_ub(red, row.transform),
                              row.regularized_cell, row.lattice, hkldev=params.hkldev,
                              sdcutoff=params.sdcutoff, refine_distance=params.unfixdist,
                              refine_tilt=params.unfixdist)
        det = ref.experiment.detector
        edges = np.asarray(ref.cell_esd)[: min(3, len(ref.cell_esd))]
        table.append(
            replace(
                row,
                cell=ref.cell,
                refined=True,
                sdcell=float(np.nanmean(edges)) if np.isfinite(edges).any() else float("nan"),
                fracn=ref.fraction,
                sigma_xy=ref.sigma_xy,
                sigma_phi=ref.sigma_phi,
                n_indexed=ref.n_used,
                ub=ref.ub,
                beam=(det.beam_x, det.beam_y),
                distance=det.distance,
                tilt=det.tilt,
                twist=det.twist,
                chi2=ref.chi2,
                used=ref.used,
                n_obs=ref.n_obs,
                n_params=ref.n_params,
            )
        )
    distance_notes: dict[int, str] = {}
    if not params.unfixdist:
        # the distance is refined where the data determine it (see distance_test), first for
        # the triclinic solution, whose value bounds the others'
        order = sorted((i for i, r in enumerate(table) if r.refined and (
            r.penalty <= params.wide_penalty or r.lattice == "aP")),
            key=lambda i: table[i].lattice != "aP")
        triclinic = None
        for i in order:
            new_row, note, found = distance_test(use, exp_ref, table[i], params, triclinic)
            if table[i].lattice == "aP" and triclinic is None:
                triclinic = found
            table[i] = new_row
            distance_notes[i] = note
    chosen = choose_solution(table, params)
    sol = table[chosen]
    if chosen in distance_notes and sol.distance != exp_ref.detector.distance:
        warnings.append(distance_notes[chosen])  # only a refined distance is news
    if not sol.refined:
        ref = refine_solution(use, exp_ref, conventional_ub(red, sol.transform),
                              sol.regularized_cell, sol.lattice, hkldev=params.hkldev,
                              sdcutoff=params.sdcutoff, refine_distance=params.unfixdist,
                              refine_tilt=params.unfixdist)
        det = ref.experiment.detector
        sol = replace(sol, cell=ref.cell, refined=True, fracn=ref.fraction,
                      sigma_xy=ref.sigma_xy, sigma_phi=ref.sigma_phi, n_indexed=ref.n_used,
                      ub=ref.ub, beam=(det.beam_x, det.beam_y), distance=det.distance,
                      tilt=det.tilt, twist=det.twist, chi2=ref.chi2, used=ref.used,
                      n_obs=ref.n_obs, n_params=ref.n_params)
        table[chosen] = sol
    sg = params.symmetry or space_groups_for_lattice(sol.lattice)[0]
    crystal = Crystal.from_ub(sol.ub, space_group=_space_group_name(sg))
    det = experiment.detector.replace(beam_x=sol.beam[0], beam_y=sol.beam[1], distance=sol.distance,
                                      tilt=sol.tilt, twist=sol.twist)
    exp_out = experiment.replace(detector=det, crystal=crystal)
    n_free = 3 + len(cell_to_params(sol.cell, sol.lattice)) + 2
    if not np.isfinite(sol.sigma_xy) or sol.sigma_xy > MAX_SIGMA_XY or (
        sol.n_indexed < max(MIN_INDEXED, n_free)
    ):
        sd = f"{sol.sigma_xy:.2f} mm" if np.isfinite(sol.sigma_xy) else "no residual"
        raise IndexingError(
            f"Autoindexing failed: the best solution ({sol.lattice} "
            f"{' '.join(f'{v:.2f}' for v in sol.cell)}) fits only {sol.n_indexed} of "
            f"{int(mask.sum())} spots (rms {sd}): too few spots or too poor a fit to trust it "
            f"(at least {max(MIN_INDEXED, n_free)} spots within {MAX_SIGMA_XY:g} mm "
            f"needed). Use more images (sparse images: give every image of the sweep). {ADVICE}"
        )
    if sol.sigma_xy > 0.5:
        warnings.append(
            f"The rms positional residual ({sol.sigma_xy:.2f} mm) is large: the solution may be "
            "wrong"
        )
    result = IndexingResult(
        crystal=crystal,
        experiment=exp_out,
        table=table,
        chosen=chosen,
        beam_start=(experiment.detector.beam_x, experiment.detector.beam_y),
        beam_refined=(det.beam_x, det.beam_y),
        distance=det.distance,
        sigma_xy=sol.sigma_xy,
        sigma_phi=sol.sigma_phi,
        n_spots=n_spots,
        n_used=int(mask.sum()),
        n_indexed=sol.n_indexed,
        threshold=threshold,
        max_cell=max_cell,
        triclinic_cell=niggli_reduce(np.linalg.inv(ap.ub)).cell,
        warnings=warnings,
    )
    if params.second_lattice:
        second = find_second_lattice(use, result, params)
        if second is not None:
            result = replace(result, second_lattice=second)
    return result


DISTANCE_SIGNIFICANCE = 5.0
"""The refined distance replaces the header value only when they differ by more than this many
estimated standard deviations (5, not 3: the esd from the fit ignores model errors, and on
simulated images with exact header distances the refined distance is off by up to 4 esd)."""


def distance_test(spots: DetectorSpots, experiment: Experiment, row: SolutionRow,
                  params: IndexingParams, triclinic: tuple[float, float] | None = None
                  ) -> tuple[SolutionRow, str, tuple[float, float] | None]:
    """Refine a solution with the distance free; keep it only if the data contradict the header.

    MOSFLM keeps the distance fixed in AUTOINDEX (UNFIXDIST frees it), so a header distance
    that is off by 0.5-1 % (common on real beamlines) shows as a cell that much off, or, with
    few spots, as a distorted cell and the wrong lattice.  Whether the spots determine the
    distance depends on the data: at low angles a change of distance is absorbed by a change
    of cell (spot radius ~ distance / cell edge; the correlation is ~0.999 on a protein
    image), while high-angle spots (the Ewald sphere's curvature) and phi centroids separate
    them.  The marginal esd of the refined distance (cell free) measures exactly this, so the
    refined value is kept when it differs from the header by more than
    :data:`DISTANCE_SIGNIFICANCE` esd (the data contradict the header), and the header value
    (MOSFLM's default) otherwise.  Refining it unconditionally moved the cell by 2 % on a
    two-image CCD set where the distance is not determined.

    The detector's tilt and twist are refined with it: on a wide-angle image (a small
    molecule's spots in the detector corners) a tilt of the detector against the beam of
    0.1-0.2 deg (common) moves the corner spots by tenths of a mm, which the distance and the
    cell would otherwise absorb.

    The distance belongs to the experiment, not to a lattice: a constrained solution may keep
    its refined distance only if it agrees with the triclinic solution's (``triclinic``: its
    refined distance and esd, whether significant or not) within
    :data:`DISTANCE_SIGNIFICANCE` combined esd; otherwise the lattice is using the distance
    to absorb a misfit of its constraints (a true mP with beta 91 refined as oP moved it by
    1 % and then fitted nearly as well as mP), and the header value is kept.

    Returns
    -------
    (row, note, (distance, esd) or None)
        The row refined with the distance free (or unchanged), a sentence for the log, and the
        refined distance and its esd (None when not determined).
    """
    d0 = experiment.detector.distance
    ref = refine_solution(spots, experiment.replace(
        detector=experiment.detector.replace(beam_x=row.beam[0], beam_y=row.beam[1])),
        row.ub, row.cell, row.lattice, hkldev=params.hkldev, sdcutoff=params.sdcutoff,
        refine_distance=True, refine_tilt=True)
    d = ref.experiment.detector.distance
    esd = ref.distance_esd
    if not (np.isfinite(esd) and esd > 0 and np.isfinite(ref.sigma_xy)):
        return row, f"Distance kept at {d0:.2f} mm: the spots do not determine it", None
    if abs(d - d0) <= DISTANCE_SIGNIFICANCE * esd:
        return row, (f"Distance kept at {d0:.2f} mm: refined {d:.2f} +- {esd:.2f} mm does not "
                     f"differ significantly (> {DISTANCE_SIGNIFICANCE:g} esd)"), (d, esd)
    if triclinic is not None and abs(d - triclinic[0]) > DISTANCE_SIGNIFICANCE * np.hypot(
            esd, triclinic[1]):
        return row, (f"Distance kept at {d0:.2f} mm: this solution's refined {d:.2f} +- "
                     f"{esd:.2f} mm disagrees with the triclinic solution's {triclinic[0]:.2f} "
                     f"+- {triclinic[1]:.2f} mm"), (d, esd)
    det = ref.experiment.detector
    edges = np.asarray(ref.cell_esd)[: min(3, len(ref.cell_esd))]
    new = replace(
        row, cell=ref.cell,
        sdcell=float(np.nanmean(edges)) if np.isfinite(edges).any() else float("nan"),
        fracn=ref.fraction, sigma_xy=ref.sigma_xy, sigma_phi=ref.sigma_phi,
        n_indexed=ref.n_used, ub=ref.ub, beam=(det.beam_x, det.beam_y), distance=det.distance,
        tilt=det.tilt, twist=det.twist,
        chi2=ref.chi2, used=ref.used, n_obs=ref.n_obs, n_params=ref.n_params)
    return new, (f"Distance refined from {d0:.2f} to {d:.2f} +- {esd:.2f} mm (the spots "
                 f"determine it and differ from the header by {abs(d - d0) / esd:.0f} esd)"), (
        d, esd)


def _space_group_name(symbol: str) -> str:
    """Full Hermann-Mauguin name (gemmi) of a space group given by short name or number."""
    import gemmi

    s = str(symbol).strip()
    find = gemmi.find_spacegroup_by_number if s.isdigit() else gemmi.find_spacegroup_by_name
    sg = find(int(s) if s.isdigit() else s)
    if sg is None:
        raise IndexingError(f"unknown space group {symbol!r}")
    return sg.xhm()
