"""Completeness of rotation data before collection: which unique reflections a rotation records.

The calculation behind STRATEGY (iMosflm's Strategy task; Battye et al. 2011, Acta Cryst. D67,
271-281), as pure, vectorised functions on plain data:

1. :func:`unique_reflections` - the unique reflections to the resolution limit in the reciprocal
   asymmetric unit of the Laue class (gemmi ``make_miller_array``; systematic absences removed)
   with their centric flags.
2. :func:`reflection_passages` - every symmetry mate of every unique reflection (and, apart from
   centric ones, its Bijvoet mate) is put at r0 = M·U·B·h and the φ at which it crosses the Ewald
   sphere on rotation about the spindle is solved in closed form
   (:func:`mosflm_py.geometry.prediction.phi_solutions`, the same code that predicts spots).
   A passage is kept when the diffracted ray meets the detector inside its extent.  Mates that
   never reach the sphere lie in the blind region (the cusp about the rotation axis) or beyond
   the limiting sphere.
3. :func:`measured`, :func:`completeness`, :func:`coverage_curve`, :func:`completeness_by_start`,
   :func:`best_start`, :func:`rotation_for_completeness` and :func:`best_segments` count what a
   set of φ ranges records.

Counting (the definitions the log prints): a unique reflection is *measured* when any of its
passages (any symmetry mate, either Bijvoet half) lies in a collected range; *completeness* is
measured / all unique reflections to the limit.  With ANOMALOUS the two Bijvoet halves (I+: h and
its point-group mates, I-: -h and its mates) are separate targets, centric reflections being one;
the *anomalous* completeness is the fraction of unique reflections with both halves measured
(centric ones: measured at all).  *Multiplicity* is passages in the collected ranges / measured
unique reflections (Dauter 1999, Acta Cryst. D55, 1703-1717 for the geometry of completeness,
the blind region and the cusp).

Best start for a rotation R (:func:`completeness_by_start`): a target whose passages are
φ1 < ... < φk (circular) is missed by the window [s, s+R) only when the window fits inside one of
its gaps (φj, φj+1), i.e. for s in (φj, φj+1 - R].  Adding +1/-1 for these intervals on a grid of
starts and summing gives the number missed for every start at once, in O(passages + starts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import ewald_terms, phi_solutions, rotate_about_axis

Range = tuple[float, float]

__all__ = [
    "Coverage",
    "Passages",
    "UniqueReflections",
    "best_segments",
    "best_start",
    "completeness",
    "completeness_by_start",
    "coverage_curve",
    "measured",
    "reflection_passages",
    "rotation_for_completeness",
    "symmetry_mates",
    "unique_reflections",
]


# ---------------------------------------------------------------------------------- reflections
@dataclass(frozen=True, eq=False)
class UniqueReflections:
    """Unique reflections of a space group to a resolution limit.

    Attributes
    ----------
    hkl : (N, 3) int32, in gemmi's reciprocal asymmetric unit of the Laue class.
    centric : (N,) bool, centric reflections (Bijvoet mates equivalent).
    space_group : Hermann-Mauguin symbol.
    d_min, d_max : resolution limits (Å); d_max None for no low-resolution limit.
    """

    hkl: np.ndarray
    centric: np.ndarray
    space_group: str
    d_min: float
    d_max: float | None

    def __len__(self) -> int:
        return len(self.hkl)


def _space_group(symbol: str):
    import gemmi

    try:
        return gemmi.SpaceGroup(symbol)
    except (ValueError, RuntimeError) as err:
        raise GeometryError(f"unknown space group {symbol!r}") from err


def unique_reflections(
    cell: Sequence[float],
    space_group: str,
    d_min: float,
    d_max: float | None = None,
    speedup: int = 1,
) -> UniqueReflections:
    """Unique reflections (Laue-class asymmetric unit, absences removed) with d_min ≤ d ≤ d_max.

    Parameters
    ----------
    cell : (a, b, c, α, β, γ) in Å and degrees.
    space_group : space-group symbol known to gemmi.
    d_min, d_max : resolution limits (Å).
    speedup : keep every ``speedup``-th unique reflection (MOSFLM's SPEEDUP: a faster, sampled
        estimate of the same percentages).
    """
    import gemmi

    if not d_min > 0:
        raise GeometryError(f"resolution limit must be positive, got {d_min}")
    if d_max is not None and d_max <= d_min:
        raise GeometryError(f"low resolution limit {d_max} Å is not above the high one {d_min} Å")
    sg = _space_group(space_group)
    uc = gemmi.UnitCell(*[float(c) for c in cell])
    hkl = gemmi.make_miller_array(uc, sg, float(d_min), float(d_max or 0.0), unique=True)
    hkl = np.ascontiguousarray(hkl, dtype=np.int32)
    if speedup > 1:
        hkl = np.ascontiguousarray(hkl[:: int(speedup)])
    centric = np.asarray(sg.operations().centric_flag_array(hkl), dtype=bool)
    return UniqueReflections(
        hkl, centric, sg.hm, float(d_min), None if d_max is None else float(d_max)
    )


def _point_group_rotations(space_group: str) -> np.ndarray:
    """Integer rotation parts (n, 3, 3) of the space group's operations (centring dropped)."""
    sg = _space_group(space_group)
    ops = sg.operations()
    rots = {tuple(np.asarray(op.rot, dtype=np.int64).ravel() // op.DEN) for op in ops.sym_ops}
    return np.array(sorted(rots), dtype=np.int64).reshape(-1, 3, 3)


def symmetry_mates(unique: UniqueReflections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All distinct symmetry mates of every unique reflection, with their Bijvoet half.

    Mates are h·R for the point-group rotations R (the I+ half, sign +1) and -h·R (I-, sign -1);
    a mate that occurs twice for one reflection (special positions, centric reflections) is kept
    once.  Together the mates of all unique reflections are every reflection in the sphere.

    Returns
    -------
    hkl : (M, 3) int32 mates; index : (M,) int64 unique-reflection index; sign : (M,) int8.
    """
    h = unique.hkl.astype(np.int64)
    n = len(h)
    rots = _point_group_rotations(unique.space_group)
    plus = np.einsum("nj,rjk->nrk", h, rots)  # h·R
    mates = np.concatenate([plus, -plus], axis=1)  # (n, 2r, 3)
    nm = mates.shape[1]
    sign = np.concatenate([np.ones(len(rots), np.int8), -np.ones(len(rots), np.int8)])
    off = 1 << 20
    key = ((mates[..., 0] + 1024) * off + (mates[..., 1] + 1024)) * off + (mates[..., 2] + 1024)
    order = np.argsort(key, axis=1, kind="stable")
    ks = np.take_along_axis(key, order, axis=1)
    first = np.ones_like(ks, dtype=bool)
    first[:, 1:] = ks[:, 1:] != ks[:, :-1]
    keep = np.zeros_like(first)
    np.put_along_axis(keep, order, first, axis=1)
    index = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], (n, nm))[keep]
    out = mates[keep].astype(np.int32)
    sg_sign = np.broadcast_to(sign[None, :], (n, nm))[keep]
    return out, index, sg_sign


# ------------------------------------------------------------------------------------ passages
@dataclass(frozen=True, eq=False)
class Passages:
    """Recorded passages through the Ewald sphere of the mates of a set of unique reflections.

    Attributes
    ----------
    index : (K,) int64 unique-reflection index of each passage.
    sign : (K,) int8 Bijvoet half (+1 I+, -1 I-) of each passage.
    phi : (K,) float64 spindle angle of the passage (degrees, 0 ≤ φ < 360).
    centric : (N,) bool centric flag of each unique reflection.
    n_blind : unique reflections none of whose mates ever reach the Ewald sphere (blind region /
        cusp about the rotation axis).
    n_off_detector : unique reflections that do reach the sphere but always off the detector.
    n_missed_passages : passages that fall off the detector.

    The searches keep their sorted copies of the passages in the instance (``_cache``), so
    several searches on one Passages sort only once.
    """

    index: np.ndarray
    sign: np.ndarray
    phi: np.ndarray
    centric: np.ndarray
    n_blind: int
    n_off_detector: int
    n_missed_passages: int

    @property
    def n_unique(self) -> int:
        """Number of unique reflections to the resolution limit."""
        return len(self.centric)

    def __len__(self) -> int:
        return len(self.phi)

    def targets(self, anomalous: bool) -> tuple[np.ndarray, np.ndarray]:
        """(target id of each passage, bool mask of the valid target ids).

        Without ``anomalous`` the targets are the unique reflections (id = index); with it, the
        Bijvoet halves: id = 2·index (I+ or centric) or 2·index + 1 (I- of an acentric one).
        """
        if not anomalous:
            return self.index, np.ones(self.n_unique, bool)
        minus = (self.sign < 0) & ~self.centric[self.index]
        valid = np.ones(2 * self.n_unique, bool)
        valid[1::2] = ~self.centric
        return 2 * self.index + minus, valid


def reflection_passages(unique: UniqueReflections, experiment: Experiment) -> Passages:
    """Where every mate of ``unique`` crosses the Ewald sphere in a full turn, and whether it is
    recorded on the detector.

    Parameters
    ----------
    unique : from :func:`unique_reflections` (the crystal's cell and space group).
    experiment : beam (wavelength), detector (distance, extent, orientation), goniometer (axis)
        and crystal (orientation UB = M·U·B, Å⁻¹) in the MOSFLM frame.

    Returns
    -------
    Passages (φ in degrees as PREDICT and PROCESS use it).
    """
    cr = experiment.crystal
    if cr is None:
        raise GeometryError("no crystal orientation: index first (AUTOINDEX) or give MATRIX")
    hkl, index, sign = symmetry_mates(unique)
    s0 = experiment.beam.s0
    m = experiment.goniometer.axis
    det = experiment.detector
    sx, sy = det.size_mm
    r0 = hkl.astype(float) @ cr.UB.T
    p1, p2 = phi_solutions(*ewald_terms(r0, s0, m))
    reaches = np.isfinite(p1)
    n = len(unique)
    reach_any = np.zeros(n, bool)
    reach_any[index[reaches]] = True
    rows = np.nonzero(reaches)[0]
    idx_out, sign_out, phi_out = [], [], []
    missed = 0
    for p in (p1, p2):
        phi = np.mod(np.degrees(p[rows]), 360.0)
        s1 = rotate_about_axis(r0[rows], m, phi) + s0[None, :]
        x, y, ok = det.lab_to_mm(s1)
        with np.errstate(invalid="ignore"):
            on = ok & (x >= 0) & (x < sx) & (y >= 0) & (y < sy)
        missed += int(np.count_nonzero(~on))
        idx_out.append(index[rows[on]])
        sign_out.append(sign[rows[on]])
        phi_out.append(phi[on])
    idx = np.concatenate(idx_out)
    rec_any = np.zeros(n, bool)
    rec_any[idx] = True
    return Passages(
        index=idx,
        sign=np.concatenate(sign_out),
        phi=np.concatenate(phi_out),
        centric=unique.centric,
        n_blind=int(np.count_nonzero(~reach_any)),
        n_off_detector=int(np.count_nonzero(reach_any & ~rec_any)),
        n_missed_passages=missed,
    )


# ----------------------------------------------------------------------------------- counting
def _in_ranges(phi: np.ndarray, ranges: Sequence[Range]) -> np.ndarray:
    inside = np.zeros(len(phi), bool)
    for start, end in ranges:
        span = float(end) - float(start)
        if span <= 0:
            raise GeometryError(f"rotation range {start} to {end} is empty")
        if span >= 360.0:
            inside[:] = True
            break
        inside |= np.mod(phi - float(start), 360.0) < span
    return inside


def _in_ranges_sorted(passages: Passages, ranges: Sequence[Range]) -> np.ndarray:
    """Indices of the passages inside the φ ranges (each passage once)."""
    srt = _sorted(passages, False)
    phis, order = srt.phi_sorted, srt.phi_order
    pieces = []
    for start, end in ranges:
        span = float(end) - float(start)
        if span <= 0:
            raise GeometryError(f"rotation range {start} to {end} is empty")
        if span >= 360.0:
            return order
        lo = float(start) % 360.0
        hi = lo + span
        i0, i1 = np.searchsorted(phis, [lo, min(hi, 360.0)], "left")
        pieces.append(order[i0:i1])
        if hi > 360.0:
            pieces.append(order[: np.searchsorted(phis, hi - 360.0, "left")])
    if not pieces:
        return order[:0]
    sel = np.concatenate(pieces)
    return np.unique(sel) if len(ranges) > 1 else sel


@dataclass(frozen=True, eq=False)
class Coverage:
    """What a set of φ ranges records.

    plus, minus : (N,) bool - each Bijvoet half measured (for centric reflections both equal
    "measured at all"); n_passages : passages in the ranges.
    """

    plus: np.ndarray
    minus: np.ndarray
    n_passages: int

    @property
    def n_unique(self) -> int:
        return len(self.plus)

    @property
    def unique(self) -> np.ndarray:
        """(N,) bool: unique reflection measured (either half)."""
        return self.plus | self.minus

    @property
    def completeness(self) -> float:
        """Percentage of unique reflections measured."""
        return 100.0 * np.count_nonzero(self.unique) / max(self.n_unique, 1)

    @property
    def anomalous_completeness(self) -> float:
        """Percentage of unique reflections with both Bijvoet halves measured."""
        return 100.0 * np.count_nonzero(self.plus & self.minus) / max(self.n_unique, 1)

    @property
    def multiplicity(self) -> float:
        """Passages per measured unique reflection (0 when nothing is measured)."""
        n = np.count_nonzero(self.unique)
        return self.n_passages / n if n else 0.0

    def __or__(self, other: Coverage) -> Coverage:
        return Coverage(
            self.plus | other.plus, self.minus | other.minus, self.n_passages + other.n_passages
        )

    def covered_targets(self, anomalous: bool) -> np.ndarray:
        """Bool mask over the target ids of :meth:`Passages.targets`."""
        if not anomalous:
            return self.unique.copy()
        out = np.empty(2 * self.n_unique, bool)
        out[0::2] = self.plus
        out[1::2] = self.minus
        return out


def measured(passages: Passages, ranges: Sequence[Range]) -> Coverage:
    """Coverage of the φ ranges ``[(start, end), ...]`` (degrees, any number of turns apart)."""
    sel = _in_ranges_sorted(passages, ranges)
    n = passages.n_unique
    plus = np.zeros(n, bool)
    minus = np.zeros(n, bool)
    idx, sg = passages.index[sel], passages.sign[sel]
    plus[idx[sg > 0]] = True
    minus[idx[sg < 0]] = True
    c = passages.centric
    both = (plus | minus) & c
    plus |= both
    minus |= both
    return Coverage(plus, minus, len(sel))


def completeness(passages: Passages, ranges: Sequence[Range]) -> Coverage:
    """Alias of :func:`measured` (the completeness of a set of φ ranges)."""
    return measured(passages, ranges)


def empty_coverage(n_unique: int) -> Coverage:
    """Coverage of no data."""
    return Coverage(np.zeros(n_unique, bool), np.zeros(n_unique, bool), 0)


def _count_below(values: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Number of ``values`` < each limit: a histogram when the limits are whole degrees
    (exact: v < m ⟺ floor(v) < m for an integer m), else a sort."""
    if len(limits) and np.all(limits == np.round(limits)) and np.all(limits >= 0):
        fin = values[np.isfinite(values)]
        hist = np.bincount(np.floor(np.maximum(fin, -1.0)).astype(np.int64) + 1, minlength=362)
        cum = np.cumsum(hist)  # cum[m + 1] = number of values with floor(v) <= m
        return cum[np.minimum(limits.astype(np.int64), 361)]
    return np.searchsorted(np.sort(values), limits, "left")


def coverage_curve(
    passages: Passages,
    start: float,
    rotations: Sequence[float] | np.ndarray,
    already: Coverage | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Completeness as the rotation from ``start`` grows.

    Returns
    -------
    (unique %, anomalous %, multiplicity) arrays, one value per rotation in ``rotations``.
    ``already`` adds data recorded before to the percentages (the multiplicity is that of the
    new rotation alone: its passages per unique reflection measured in all).
    """
    rot = np.asarray(rotations, float)
    n = passages.n_unique
    srt = _sorted(passages, True)
    first_t = np.full(2 * n, np.inf)
    if len(srt.phi):
        off = np.mod(srt.phi - float(start), 360.0)
        first_t[srt.group_tid] = np.minimum.reduceat(off, srt.group_start)
    first_p, first_m = first_t[0::2], first_t[1::2]
    first_m = np.where(passages.centric, first_p, first_m)
    if already is not None:
        first_p = np.where(already.plus, -1.0, first_p)
        first_m = np.where(already.minus, -1.0, first_m)
    full = rot >= 360.0
    nu = np.where(full, 0, _count_below(np.minimum(first_p, first_m), rot))
    na = np.where(full, 0, _count_below(np.maximum(first_p, first_m), rot))
    nu = np.where(full, np.count_nonzero(np.isfinite(np.minimum(first_p, first_m))), nu)
    na = np.where(full, np.count_nonzero(np.isfinite(np.maximum(first_p, first_m))), na)
    phis = srt.phi_sorted  # passages in [start, start + R), with the wrap past 360
    lo = np.searchsorted(phis, float(start) % 360.0, "left")
    hi_angle = float(start) % 360.0 + np.minimum(rot, 360.0)
    hi = np.searchsorted(phis, np.minimum(hi_angle, 360.0), "left") + np.searchsorted(
        phis, np.maximum(hi_angle - 360.0, 0.0), "left"
    )
    npass = np.where(full, len(phis), hi - lo)
    denom = max(n, 1)
    mult = np.where(nu > 0, npass / np.maximum(nu, 1), 0.0)
    return 100.0 * nu / denom, 100.0 * na / denom, mult


# ------------------------------------------------------------------------------------- search
@dataclass(frozen=True, eq=False)
class _Sorted:
    """Passages sorted by (target, φ), the groups of each target, the gaps between consecutive
    passages of a target (including the wrap-around gap; longest first) and the passages in φ
    order, computed once per Passages."""

    valid: np.ndarray
    phi: np.ndarray
    group_start: np.ndarray
    group_tid: np.ndarray
    gap_tid: np.ndarray
    gap_a: np.ndarray
    gap_len: np.ndarray
    phi_sorted: np.ndarray
    phi_order: np.ndarray


def _sorted(passages: Passages, anomalous: bool) -> _Sorted:
    cache = passages.__dict__.setdefault("_cache", {})
    hit = cache.get(anomalous)
    if hit is not None:
        return hit
    tid, valid = passages.targets(anomalous)
    order = np.argsort(tid * 1000.0 + passages.phi, kind="stable")  # by target, then phi
    tid, phi = tid[order], passages.phi[order]
    new = np.ones(len(tid), bool)
    new[1:] = tid[1:] != tid[:-1]
    first = np.nonzero(new)[0]
    last = np.append(first[1:], len(tid)) - 1
    inner = ~new[1:]
    gap_a = np.concatenate([phi[:-1][inner], phi[last]])
    gap_b = np.concatenate([phi[1:][inner], phi[first] + 360.0])
    gap_tid = np.concatenate([tid[:-1][inner], tid[last]])
    gap_len = gap_b - gap_a
    by_len = np.argsort(-gap_len, kind="stable")  # longest first: "longer than R" is a prefix
    phi_order = np.argsort(passages.phi, kind="stable")
    hit = _Sorted(
        valid,
        phi,
        first,
        tid[first],
        gap_tid[by_len],
        gap_a[by_len],
        gap_len[by_len],
        passages.phi[phi_order],
        phi_order,
    )
    cache[anomalous] = hit
    return hit


def completeness_by_start(
    passages: Passages,
    rotation: float,
    step: float = 1.0,
    anomalous: bool = False,
    covered: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Targets measured by one window [s, s + rotation) for every start s on a grid.

    Parameters
    ----------
    passages : from :func:`reflection_passages`.
    rotation : total rotation of the window (degrees).
    step : grid of starts 0, step, 2·step ... < 360 (degrees); must divide 360.
    anomalous : count Bijvoet halves separately (see :meth:`Passages.targets`).
    covered : bool mask over target ids already measured by other data (always counted).

    Returns
    -------
    starts (S,) degrees and the number of targets measured (S,) including ``covered`` (targets:
    the valid ids of :meth:`Passages.targets`).
    """
    nstep = int(round(360.0 / step))
    if nstep < 1 or abs(nstep * step - 360.0) > 1e-6:
        raise GeometryError(f"the step of starting angles {step} does not divide 360 degrees")
    srt = _sorted(passages, anomalous)
    starts = np.arange(nstep) * step
    n_long = int(np.searchsorted(-srt.gap_len, -rotation, "left"))  # gaps longer than R
    a, glen = srt.gap_a[:n_long], srt.gap_len[:n_long]
    if covered is not None:
        n_pre = int(np.count_nonzero(covered & srt.valid))
        n_with = int(np.count_nonzero(~covered[srt.group_tid]))
        keep = ~covered[srt.gap_tid[:n_long]]
        a, glen = a[keep], glen[keep]
    else:
        n_pre, n_with = 0, len(srt.group_tid)
    if rotation >= 360.0:
        return starts, np.full(nstep, n_pre + n_with, dtype=np.int64)
    b = a + glen - rotation
    k_lo = np.floor(a / step + 1e-9).astype(np.int64) + 1
    k_hi = np.floor(b / step + 1e-9).astype(np.int64)
    ok = k_hi >= k_lo
    size = 3 * nstep
    diff = (
        np.bincount(k_lo[ok], minlength=size + 1)[: size + 1]
        - np.bincount(k_hi[ok] + 1, minlength=size + 1)[: size + 1]
    )
    missed = np.cumsum(diff)[:size].reshape(3, nstep).sum(axis=0)
    return starts, n_pre + n_with - missed


def best_start(
    passages: Passages,
    rotation: float,
    step: float = 1.0,
    anomalous: bool = False,
    covered: np.ndarray | None = None,
) -> tuple[float, int]:
    """(start in degrees, targets measured) of the best single window of ``rotation`` degrees.

    Ties go to the smallest start.
    """
    starts, n = completeness_by_start(passages, rotation, step, anomalous, covered)
    k = int(np.argmax(n))
    return float(starts[k]), int(n[k])


def rotation_for_completeness(
    passages: Passages,
    fraction: float,
    step: float = 1.0,
    anomalous: bool = False,
    covered: np.ndarray | None = None,
    resolution: float = 1.0,
    memo: dict | None = None,
) -> tuple[float, float, int]:
    """Smallest rotation (to ``resolution`` degrees) whose best start measures ``fraction`` of
    what a full 360° turn measures.

    ``memo`` (a dict) keeps best starts between calls with the same passages, step,
    anomalous and covered (several fractions).

    Returns
    -------
    (rotation, start, targets measured), degrees.
    """
    memo = {} if memo is None else memo

    def best(rot: float) -> tuple[float, int]:
        if rot not in memo:
            memo[rot] = best_start(passages, rot, step, anomalous, covered)
        return memo[rot]

    _, full = best(360.0)
    need = int(np.ceil(fraction * full - 1e-9))
    lo, hi = 0, int(np.ceil(360.0 / resolution))
    while hi - lo > 1:  # the best completeness never falls as the rotation grows: bisect
        mid = (lo + hi) // 2
        _, n = best(mid * resolution)
        if n >= need:
            hi = mid
        else:
            lo = mid
    rot = min(hi * resolution, 360.0)
    s, n = best(rot)
    return rot, s, n


def best_segments(
    passages: Passages,
    sizes: Sequence[float],
    step: float = 1.0,
    anomalous: bool = False,
    covered: np.ndarray | None = None,
    passes: int = 3,
) -> list[Range]:
    """Starts of ``len(sizes)`` separate windows that together measure the most targets.

    Greedy (each segment, largest first, placed where it adds most to what is measured already)
    then coordinate ascent (each segment moved to its best place given the others) until no
    segment moves or ``passes`` rounds are done.  Returns [(start, end), ...] sorted by start.
    """
    if not sizes:
        return []
    tid, valid = passages.targets(anomalous)
    base = np.zeros(len(valid), bool) if covered is None else covered.copy()
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    starts: dict[int, float] = {}

    def cover_of(i_skip: int | None) -> np.ndarray:
        cov = base.copy()
        for j, s in starts.items():
            if j == i_skip:
                continue
            sel = _in_ranges(passages.phi, [(s, s + sizes[j])])
            cov[tid[sel]] = True
        return cov

    for i in order:
        starts[i], _ = best_start(passages, sizes[i], step, anomalous, cover_of(None))
    for _ in range(passes):
        moved = False
        for i in order:
            s, _ = best_start(passages, sizes[i], step, anomalous, cover_of(i))
            if s != starts[i]:
                old = _count(passages, tid, base, starts, sizes, i, starts[i])
                new = _count(passages, tid, base, starts, sizes, i, s)
                if new > old:
                    starts[i], moved = s, True
        if not moved:
            break
    return sorted((starts[i], starts[i] + sizes[i]) for i in range(len(sizes)))


def _count(passages, tid, base, starts, sizes, i, s) -> int:
    ranges = [(starts[j], starts[j] + sizes[j]) for j in starts if j != i] + [(s, s + sizes[i])]
    cov = base.copy()
    cov[tid[_in_ranges(passages.phi, ranges)]] = True
    return int(np.count_nonzero(cov))
