"""QuickSymm and QuickScale as pure functions: observations in, results out (nothing printed).

``quicksymm``: partials summed, Laue group scored (:mod:`.laue`).
``quickscale``: the same, then the scaling model (:mod:`.model`), outlier rejection
(:mod:`.outliers`), the error model, merging and its statistics (:mod:`.merging`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gemmi
import numpy as np

from mosflm_py.output.mtz_columns import Flag, hkl_to_asu
from mosflm_py.scaling.absorption import LAUE_TOLERANCE, absorption_basis
from mosflm_py.scaling.laue import LaueResult, score_laue_groups
from mosflm_py.scaling.merging import (
    MergedData,
    MergingStatistics,
    merge,
    merging_statistics,
)
from mosflm_py.scaling.model import (
    ScalingResult,
    apply_error_model,
    fit_error_model,
    group_index,
    scale_observations,
)
from mosflm_py.scaling.observations import (
    Observations,
    PartialsSummary,
    QuickScaleError,
    hkl_keys,
    sum_partials,
)
from mosflm_py.scaling.outliers import reject_outliers
from mosflm_py.scaling.reindex import obtuse_monoclinic, symmetrized_cell, to_reference_setting

__all__ = [
    "BatchRow",
    "QuickScaleOptions",
    "QuickScaleResult",
    "QuickSymmResult",
    "quickscale",
    "quicksymm",
]


@dataclass(frozen=True)
class QuickScaleOptions:
    """Choices of a QuickSymm/QuickScale run (defaults as Aimless/Pointless where they exist).

    Attributes
    ----------
    space_group : str or None
        Merge in this space group instead of the one chosen from the intensities.
    frac_min, frac_max : float
        Accepted total fraction of a partial set with a part missing (or no MPART).
    scale_spacing, b_spacing : float
        Knot spacing of the scale and of the B factor along the rotation (deg).
    refine_b : bool
        Refine relative B factors.
    reject : float
        Outlier rejection limit (σ).
    d_min : float or None
        High-resolution limit applied before scaling (Å).
    nbins : int or None
        Number of resolution shells of the statistics.
    cc_half_limit, isig_limit : float
        Criteria of the suggested resolution cut-off.
    max_obliq : float
        Tolerance of the lattice-symmetry search (deg).
    error_model : bool
        Fit SdFac/SdAdd.
    reference_setting : bool
        Re-index into the space group's reference setting (b-unique monoclinic, obtuse β).
    accept_flags : int
        FLAG bits whose observations are kept besides EDGE (Flag values OR-ed; 0: Aimless's
        default, reject every other flag).
    absorption_lmax : int
        Highest order of the absorption surface (spherical harmonics of the beam directions
        in the crystal frame, :mod:`.absorption`); 0: no surface.
    tie_absorption : float
        Restraint of the surface's coefficients towards 0 (standard deviation).
    """

    space_group: str | None = None
    frac_min: float = 0.95
    frac_max: float = 1.05
    scale_spacing: float = 5.0
    b_spacing: float = 20.0
    refine_b: bool = True
    reject: float = 6.0
    d_min: float | None = None
    nbins: int | None = None
    cc_half_limit: float = 0.3
    isig_limit: float = 2.0
    max_obliq: float = 2.0
    error_model: bool = True
    reference_setting: bool = True
    accept_flags: int = 0
    absorption_lmax: int = 0
    tie_absorption: float = 0.05


@dataclass
class QuickSymmResult:
    """Summed observations, the partials' counts and the Laue-group scores."""

    observations: Observations
    partials: PartialsSummary
    laue: LaueResult | None
    space_group: gemmi.SpaceGroup
    notes: list[str] = field(default_factory=list)
    undetermined: str = ""
    """Why the Laue group could not be scored at all ('' when it was)."""


@dataclass
class BatchRow:
    """Per-batch (image) figures after scaling."""

    batch: int
    phi: float
    n_obs: int
    n_rejected: int
    scale: float
    bfactor: float
    r_merge: float
    i_over_sigma: float


@dataclass
class QuickScaleResult:
    """Everything QuickScale computed."""

    symm: QuickSymmResult
    scaling: ScalingResult
    g: np.ndarray
    sigma: np.ndarray
    keep: np.ndarray
    n_outliers: int
    stats: MergingStatistics
    merged: MergedData
    batches: list[BatchRow]
    sdfac: float
    sdadd: float

    @property
    def observations(self) -> Observations:
        return self.symm.observations

    @property
    def space_group(self) -> gemmi.SpaceGroup:
        return self.symm.space_group


def space_group_from_text(name: str) -> gemmi.SpaceGroup:
    """Space group from a symbol (``P212121``, ``P 21 21 21``) or number; QuickScaleError if
    unknown."""
    sg = gemmi.find_spacegroup_by_name(name)
    if sg is None:
        try:
            sg = gemmi.find_spacegroup_by_number(int(name))
        except (ValueError, RuntimeError):
            sg = None
    if sg is None:
        raise QuickScaleError(f"unknown space group '{name}'")
    return sg


def quicksymm(
    obs: Observations, options: QuickScaleOptions = QuickScaleOptions(), require: bool = True
) -> QuickSymmResult:
    """Sum partials and choose the Laue group (the scores are computed also when
    ``options.space_group`` forces the group, for the log); re-index to the reference
    setting.

    With ``require=False`` (QUICKSYMM alone) too few observations are not an error: the
    result has ``laue`` None, the file's space group and a note saying why.
    """
    summed, partials = sum_partials(
        obs,
        options.frac_min,
        options.frac_max,
        reject_flags=int(~(Flag.EDGE | options.accept_flags) & 0xFF),
    )
    notes: list[str] = []
    if options.d_min:
        summed = summed.take(summed.d_spacing() >= options.d_min)
    if len(summed) < 10:
        why = (
            f"only {len(summed)} usable observations after summing partials "
            f"({partials.n_incomplete} incomplete partial sets, {partials.n_flagged} flagged)"
        )
        if require:
            raise QuickScaleError(why)
        sg = space_group_from_text(options.space_group) if options.space_group else obs.space_group
        notes.append(f"the data are left in {sg.hm}, the space group of the file")
        return QuickSymmResult(summed, partials, None, sg, notes, undetermined=why)
    laue = score_laue_groups(summed, options.max_obliq)
    if options.space_group:
        sg = space_group_from_text(options.space_group)
    elif laue.undetermined and not require:
        sg = obs.space_group
        notes.append(
            f"the Laue group could not be decided: the data are left in {sg.hm}, "
            "the space group of the file"
        )
    else:
        best = laue.best
        sg = best.space_group
        if sg is None:
            tab = [c for c in laue.candidates if c.space_group is not None]
            sg = tab[0].space_group if tab else gemmi.SpaceGroup("P 1")
            notes.append(
                f"the best Laue group {best.laue} is not in a tabulated setting of "
                f"this cell; the data are merged in {sg.hm}"
            )
    if options.reference_setting:
        moved = to_reference_setting(summed, sg)
        if moved is not None:
            summed, ref, op = moved
            notes.append(
                f"re-indexed from {sg.hm} to the reference setting {ref.hm}: h' k' l' = {op}"
            )
            sg = ref
        flipped = obtuse_monoclinic(summed, sg)
        if flipped is not None:
            summed, op = flipped
            notes.append(f"re-indexed for an obtuse beta: h' k' l' = {op}")

    summed.cell = symmetrized_cell(summed.cell, sg)
    return QuickSymmResult(summed, partials, laue, sg, notes)


def quickscale(
    obs: Observations, options: QuickScaleOptions = QuickScaleOptions()
) -> QuickScaleResult:
    """QuickSymm, then scale, reject outliers, fit the error model, merge and analyse."""
    symm = quicksymm(obs, options)
    o = symm.observations
    sg = symm.space_group
    asu, _ = hkl_to_asu(o.hkl, sg)
    group, _ = group_index(hkl_keys(asu))
    s2 = 1.0 / (4.0 * o.d_spacing() ** 2)
    kw = dict(
        scale_spacing=options.scale_spacing, b_spacing=options.b_spacing, refine_b=options.refine_b
    )
    if options.absorption_lmax > 0:
        kw.update(
            absorption=_absorption_basis(o, options.absorption_lmax),
            lmax=options.absorption_lmax,
            tie_absorption=options.tie_absorption,
        )
    runs = Runs.of(o, gap=10 * max(options.scale_spacing, options.b_spacing))
    vphi = runs.virtual(o.batch, o.rot)
    res = scale_observations(o.intensity, o.sigma, group, vphi, s2, **kw)
    keep = np.ones(len(o), bool)
    sdfac, sdadd = 1.0, 0.0
    # Aimless's order: scale, fit the error model, reject outliers with the corrected σ,
    # rescale without them, refit the error model, final rejection
    for final in (False, True):
        Is, ss = o.intensity / res.g, o.sigma / res.g
        if options.error_model:
            sdfac, sdadd = fit_error_model(Is[keep], ss[keep], group[keep])
        sig = apply_error_model(Is, ss, sdfac, sdadd)
        new_keep = reject_outliers(Is, sig, group, options.reject, keep=keep)
        if final:
            keep = new_keep
            break
        if (new_keep != keep).any():
            keep = new_keep
            res = scale_observations(o.intensity, o.sigma, group, vphi, s2, use=keep, **kw)
    g = res.g
    res.sdfac, res.sdadd = sdfac, sdadd
    stats = merging_statistics(
        o.hkl[keep],
        Is[keep],
        sig[keep],
        o.cell,
        sg,
        nbins=options.nbins,
        cc_half_limit=options.cc_half_limit,
        isig_limit=options.isig_limit,
    )
    merged = merge(o.hkl[keep], Is[keep], sig[keep], sg)
    batches = batch_table(o, group, Is, sig, keep, res, runs)
    return QuickScaleResult(
        symm=symm,
        scaling=res,
        g=g,
        sigma=sig,
        keep=keep,
        n_outliers=int((~keep).sum()),
        stats=stats,
        merged=merged,
        batches=batches,
        sdfac=sdfac,
        sdadd=sdadd,
    )


def _absorption_basis(o: Observations, lmax: int) -> np.ndarray:
    """The surface's design matrix; QuickScaleError when the file's orientation is unusable."""
    if o.s0c is None or o.s1c is None:
        raise QuickScaleError(
            "QUICKSCALE ABSORPTION needs the crystal orientation (U, rotation axis, beam) in "
            "the MTZ batch headers; this file has none"
        )
    if not o.direction_error < LAUE_TOLERANCE:
        raise QuickScaleError(
            "QUICKSCALE ABSORPTION: the orientation in the MTZ batch headers does not fit the "
            f"observations (median Laue-condition error {o.direction_error:.3f}, more than "
            f"{LAUE_TOLERANCE:g}); run without ABSORPTION"
        )
    return absorption_basis(o.s0c, o.s1c, lmax)


@dataclass(frozen=True)
class Runs:
    """Runs of consecutive batches (a run: batch numbers and φ ranges contiguous), as Aimless
    scales each run with its own smooth curve.

    Each run's φ is mapped onto one "virtual" rotation axis, the runs placed one after the
    other with an empty gap of *gap* degrees between them, so that one knot series serves all
    runs and no knot interpolates across two runs (the weak ties across the gap's empty knots
    let the runs' scales differ freely).
    """

    first: np.ndarray  # first batch number of each run
    last: np.ndarray
    phi_min: np.ndarray  # smallest φ of each run (deg)
    offset: np.ndarray  # where each run starts on the virtual axis (deg)

    @staticmethod
    def of(o: Observations, gap: float) -> Runs:
        numbers = np.unique(o.batch)
        pos = np.searchsorted(numbers, o.batch)
        nb = len(numbers)
        lo = np.full(nb, np.inf)
        hi = np.full(nb, -np.inf)
        np.minimum.at(lo, pos, o.rot)
        np.maximum.at(hi, pos, o.rot)
        known = dict(zip(np.asarray(o.batch_numbers).tolist(), o.batch_phi.tolist()))
        for k, b in enumerate(numbers.tolist()):
            if b in known:  # the batch header's φ range when the file has it
                lo[k], hi[k] = min(lo[k], known[b][0]), max(hi[k], known[b][1])
        new = np.ones(nb, bool)
        if nb > 1:
            width = np.maximum(hi - lo, 0.0)
            jump = np.abs(lo[1:] - hi[:-1]) > np.maximum(width[1:], width[:-1]) + 0.01
            new[1:] = (np.diff(numbers) != 1) | jump
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], nb] - 1
        phi_min = np.array([lo[a : b + 1].min() for a, b in zip(starts, ends)])
        span = np.array([hi[a : b + 1].max() for a, b in zip(starts, ends)]) - phi_min
        offset = np.r_[0.0, np.cumsum(span + gap)[:-1]]
        return Runs(numbers[starts], numbers[ends], phi_min, offset)

    def __len__(self) -> int:
        return len(self.first)

    def index(self, batch: np.ndarray) -> np.ndarray:
        """Run number of each batch."""
        return np.clip(np.searchsorted(self.first, batch, "right") - 1, 0, len(self.first) - 1)

    def virtual(self, batch: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """φ on the virtual axis (deg)."""
        r = self.index(np.asarray(batch))
        return np.asarray(phi, float) - self.phi_min[r] + self.offset[r]


def batch_table(
    o: Observations,
    group: np.ndarray,
    Is: np.ndarray,
    sig: np.ndarray,
    keep: np.ndarray,
    res: ScalingResult,
    runs: Runs | None = None,
) -> list[BatchRow]:
    """Scale, B, Rmerge and ⟨I/σ⟩ per batch (Aimless's "analysis against batch")."""
    ng = int(group.max()) + 1 if len(group) else 0
    w = np.where(keep, 1.0 / sig**2, 0.0)
    sw = np.bincount(group, weights=w, minlength=ng)
    mean = np.bincount(group, weights=w * Is, minlength=ng) / np.maximum(sw, 1e-300)
    n = np.bincount(group, weights=keep.astype(float), minlength=ng)
    multi = keep & (n[group] >= 2)
    numbers = np.unique(o.batch)
    pos = np.searchsorted(numbers, o.batch)
    nb = len(numbers)
    num = np.bincount(pos[multi], weights=np.abs(Is - mean[group])[multi], minlength=nb)
    den = np.bincount(pos[multi], weights=mean[group][multi], minlength=nb)
    n_obs = np.bincount(pos, weights=keep.astype(float), minlength=nb)
    n_rej = np.bincount(pos, weights=(~keep).astype(float), minlength=nb)
    isig = np.bincount(pos[keep], weights=(Is / sig)[keep], minlength=nb) / np.maximum(n_obs, 1)
    phi = np.bincount(pos, weights=o.rot, minlength=nb) / np.maximum(
        np.bincount(pos, minlength=nb), 1
    )
    if len(o.batch_numbers):
        bn = np.asarray(o.batch_numbers)
        k = np.searchsorted(bn, numbers) if np.all(np.diff(bn) > 0) else None
        if (
            k is not None
            and np.all(k < len(bn))
            and np.all(bn[np.minimum(k, len(bn) - 1)] == numbers)
        ):
            phi = o.batch_phi[k].mean(axis=1)
    vphi = runs.virtual(numbers, phi) if runs is not None else phi
    scale = res.model.scale(vphi)
    bfac = res.model.bfactor(vphi)
    rows = []
    for i, b in enumerate(numbers):
        rows.append(
            BatchRow(
                int(b),
                float(phi[i]),
                int(n_obs[i]),
                int(n_rej[i]),
                float(scale[i]),
                float(bfac[i]),
                float(num[i] / den[i]) if den[i] > 0 else float("nan"),
                float(isig[i]) if n_obs[i] else float("nan"),
            )
        )
    return rows
