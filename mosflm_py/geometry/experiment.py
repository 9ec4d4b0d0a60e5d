"""An experiment bundles beam, detector, goniometer and (after indexing) the crystal."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mosflm_py.geometry.beam import Beam
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.detector import Detector
from mosflm_py.geometry.goniometer import Goniometer


@dataclass(frozen=True, eq=False)
class Experiment:
    """Beam + detector + goniometer + optional crystal (all in the MOSFLM frame)."""

    beam: Beam
    detector: Detector
    goniometer: Goniometer = Goniometer()
    crystal: Crystal | None = None

    def replace(self, **changes: object) -> Experiment:
        """Copy with some models replaced."""
        return replace(self, **changes)
