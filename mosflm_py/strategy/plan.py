"""A STRATEGY run as one pure function: the tables of completeness against rotation, the best
start, the rotation for all reachable data and the best segments, given the passages of the
current crystal and what earlier crystals (or segments) recorded already.

Definitions (what the log prints):

* *reachable*: what a full 360° turn of this crystal setting records (together with the data
  already recorded); the blind region (cusp) and reflections that only ever fall off the detector
  are not reachable.
* *rotation for complete data* (AUTO): the smallest total rotation (to 1°) whose best start
  records every reachable target (unique reflections, or Bijvoet halves with ANOMALOUS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.strategy.completeness import (
    Coverage,
    Passages,
    best_segments,
    best_start,
    coverage_curve,
    empty_coverage,
    measured,
    rotation_for_completeness,
)
from mosflm_py.strategy.tables import RotationRow, SegmentRow

__all__ = ["StrategyOptions", "StrategyResult", "plan_strategy"]

START_STEP = 1.0
"""Grid of starting angles searched (deg)."""
LEVELS = (0.9, 0.95, 0.99, 0.999)
"""Fractions of the reachable data for which AUTO also gives the rotation needed."""
CANDIDATE_STARTS = (0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0)
"""Starts shown in the completeness-against-rotation table besides the optimum (deg)."""


@dataclass(frozen=True)
class StrategyOptions:
    """What one STRATEGY line asks for.

    start/end : evaluate this range (with ``parts`` equal parts); rotation : total rotation to
    place (None: AUTO finds it); sizes : explicit segment sizes (deg); segments : number of
    equal segments; anomalous : optimise Bijvoet halves.
    """

    start: float | None = None
    end: float | None = None
    parts: int = 1
    rotation: float | None = None
    segments: int = 1
    sizes: tuple[float, ...] = ()
    anomalous: bool = False


@dataclass(frozen=True, eq=False)
class StrategyResult:
    """Everything a STRATEGY run reports (see :func:`plan_strategy`)."""

    reachable: Coverage
    already: Coverage
    segments: list[SegmentRow]
    combined: Coverage
    rotation_rows: list[RotationRow] = field(default_factory=list)
    full_rotation: float | None = None
    full_start: float | None = None
    curve_rotations: np.ndarray = field(default_factory=lambda: np.zeros(0))
    curve_starts: tuple[float, ...] = ()
    curve_unique: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    curve_anomalous: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    curve_multiplicity: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    best_index: int | None = None
    levels: list[tuple[float, float, float]] = field(default_factory=list)
    """(fraction of the reachable targets, rotation, start) for LEVELS."""


def _segment_rows(
    passages: Passages,
    ranges: Sequence[tuple[float, float]],
    already: Coverage,
    labels: Sequence[str] = (),
) -> tuple[list[SegmentRow], Coverage]:
    rows, cov = [], already
    for k, (a, b) in enumerate(ranges):
        cov = cov | measured(passages, [(a, b)])
        new_passages = cov.n_passages - already.n_passages
        n_meas = np.count_nonzero(cov.unique)
        rows.append(
            SegmentRow(
                a,
                b,
                cov.completeness,
                cov.anomalous_completeness,
                new_passages / n_meas if n_meas else 0.0,
                labels[k] if k < len(labels) else "",
            )
        )
    return rows, cov


def plan_strategy(
    passages: Passages, options: StrategyOptions, already: Coverage | None = None
) -> StrategyResult:
    """Run one STRATEGY request on the passages of the current crystal.

    Parameters
    ----------
    passages : :func:`~mosflm_py.strategy.completeness.reflection_passages` of this crystal.
    options : the request.
    already : data recorded before (other crystals or segments), on the same unique reflections.
    """
    n = passages.n_unique
    if already is None:
        already = empty_coverage(n)
    anom = options.anomalous
    covered = already.covered_targets(anom)
    reachable = already | measured(passages, [(0.0, 360.0)])

    if options.start is not None:
        if options.end is None:
            raise GeometryError("STRATEGY START needs END as well")
        a, b = float(options.start), float(options.end)
        if not b > a:
            raise GeometryError(f"STRATEGY END {b:g} must be greater than START {a:g}")
        if b - a > 360.0 + 1e-9:
            raise GeometryError(f"STRATEGY START {a:g} END {b:g} is more than a full turn")
        edges = np.linspace(a, b, options.parts + 1)
        ranges = [(float(edges[k]), float(edges[k + 1])) for k in range(options.parts)]
        rows, combined = _segment_rows(passages, ranges, already)
        rot = np.arange(1, int(np.ceil(b - a)) + 1, dtype=float)
        u, an, m = coverage_curve(passages, a, np.minimum(rot, b - a), already)
        return StrategyResult(
            reachable,
            already,
            rows,
            combined,
            curve_rotations=rot,
            curve_starts=(a,),
            curve_unique=u[None],
            curve_anomalous=an[None],
            curve_multiplicity=m[None],
            best_index=0,
        )

    memo: dict = {}
    full_rot, full_start, _ = rotation_for_completeness(
        passages, 1.0, START_STEP, anom, covered, memo=memo
    )
    levels = []
    for f in LEVELS:
        r, s0, _ = rotation_for_completeness(passages, f, START_STEP, anom, covered, memo=memo)
        levels.append((f, r, s0))
    sizes = [float(s) for s in options.sizes]
    if not sizes:
        total = options.rotation if options.rotation is not None else full_rot
        nseg = max(1, int(options.segments))
        sizes = [total / nseg] * nseg
    total = float(sum(sizes))
    if total > 360.0 + 1e-9:
        raise GeometryError(f"the segments add up to {total:g} degrees, more than a full turn")

    # best single segment for each total rotation, up to the rotation for complete data
    top = max(full_rot, total)
    step = 5.0 if top <= 60 else (10.0 if top <= 180 else 20.0)
    rot_grid = sorted(set(np.arange(step, top, step).tolist()) | {full_rot, total})
    rotation_rows = []
    for r in rot_grid:
        s, _ = memo[r] if r in memo else best_start(passages, r, START_STEP, anom, covered)
        cov = already | measured(passages, [(s, s + r)])
        new = cov.n_passages - already.n_passages
        nm = np.count_nonzero(cov.unique)
        rotation_rows.append(
            RotationRow(
                float(r), s, cov.completeness, cov.anomalous_completeness, new / nm if nm else 0.0
            )
        )

    if len(sizes) == 1:
        s, _ = best_start(passages, sizes[0], START_STEP, anom, covered)
        ranges = [(s, s + sizes[0])]
    else:
        ranges = best_segments(passages, sizes, START_STEP, anom, covered)
    rows, combined = _segment_rows(passages, ranges, already)

    best = ranges[0][0]
    starts = tuple(sorted(set(CANDIDATE_STARTS) | {best}))
    cstep = 1.0 if top <= 60 else 5.0
    crot = np.arange(cstep, min(360.0, max(top * 1.5, top + 30.0)) + 1e-9, cstep)
    curves = [coverage_curve(passages, s0, crot, already) for s0 in starts]
    return StrategyResult(
        reachable,
        already,
        rows,
        combined,
        rotation_rows,
        full_rot,
        full_start,
        crot,
        starts,
        np.array([c[0] for c in curves]),
        np.array([c[1] for c in curves]),
        np.array([c[2] for c in curves]),
        starts.index(best),
        levels,
    )
