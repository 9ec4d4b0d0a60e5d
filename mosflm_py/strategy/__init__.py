"""Data-collection strategy (STRATEGY) and overlap testing (TESTGEN), pure functions.

Public API::

    unique_reflections(cell, space_group, d_min, d_max=None, speedup=1) -> UniqueReflections
    reflection_passages(unique, experiment) -> Passages
    measured(passages, ranges) -> Coverage          (completeness, anomalous, multiplicity)
    coverage_curve(passages, start, rotations, already=None)
    completeness_by_start / best_start / rotation_for_completeness / best_segments
    max_oscillation(experiment, phi_starts, ...) -> list[OscillationRow]   (TESTGEN)
"""

from __future__ import annotations

from mosflm_py.strategy.completeness import (
    Coverage,
    Passages,
    UniqueReflections,
    best_segments,
    best_start,
    completeness,
    completeness_by_start,
    coverage_curve,
    empty_coverage,
    measured,
    reflection_passages,
    rotation_for_completeness,
    symmetry_mates,
    unique_reflections,
)

__all__ = [
    "Coverage",
    "Passages",
    "UniqueReflections",
    "best_segments",
    "best_start",
    "completeness",
    "completeness_by_start",
    "coverage_curve",
    "empty_coverage",
    "measured",
    "reflection_passages",
    "rotation_for_completeness",
    "symmetry_mates",
    "unique_reflections",
]
