"""Unit-cell parameters free under the lattice symmetry (crystal system from gemmi).

Constraints (standard settings): triclinic a b c α β γ; monoclinic a b c and the one non-90°
angle (β unless the cell says otherwise); orthorhombic a b c; tetragonal a c (b = a);
trigonal/hexagonal a c (b = a, γ = 120°); rhombohedral axes a α (b = c = a, β = γ = α);
cubic a.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import KeywordError

CELL_NAMES = ("A", "B", "C", "ALPHA", "BETA", "GAMMA")


def crystal_system(space_group: str) -> str:
    """Crystal system name (gemmi) of a space-group symbol; ``"triclinic"`` if unknown.

    Rhombohedral space groups in the rhombohedral setting return ``"rhombohedral"``.
    """
    import gemmi

    try:
        sg = gemmi.SpaceGroup(space_group)
    except (ValueError, RuntimeError):
        return "triclinic"
    system = sg.crystal_system_str()
    if system == "trigonal" and sg.hm.startswith("R") and sg.ext == "R":
        return "rhombohedral"
    return system


@dataclass(frozen=True)
class CellConstraint:
    """Which cell parameters are free and how the others follow from them.

    ``free`` : names (from :data:`CELL_NAMES`) of the independent parameters, in order.
    """

    system: str
    free: tuple[str, ...]

    def values(self, cell: tuple[float, ...]) -> np.ndarray:
        """Independent parameter values of a cell."""
        return np.array([cell[CELL_NAMES.index(n)] for n in self.free], dtype=float)

    def cell(self, values: np.ndarray, template: tuple[float, ...]) -> tuple[float, ...]:
        """Full cell from independent values (others from ``template`` and the symmetry)."""
        c = list(template)
        for n, v in zip(self.free, values):
            c[CELL_NAMES.index(n)] = float(v)
        s = self.system
        if s in ("tetragonal", "trigonal", "hexagonal"):
            c[1] = c[0]
            c[3] = c[4] = 90.0
            c[5] = 120.0 if s != "tetragonal" else 90.0
        elif s == "cubic":
            c[1] = c[2] = c[0]
            c[3] = c[4] = c[5] = 90.0
        elif s == "rhombohedral":
            c[1] = c[2] = c[0]
            c[4] = c[5] = c[3]
        elif s == "orthorhombic":
            c[3] = c[4] = c[5] = 90.0
        elif s == "monoclinic":
            for i in (3, 4, 5):
                if CELL_NAMES[i] not in self.free:
                    c[i] = 90.0
        return tuple(c)


def cell_constraint(space_group: str, cell: tuple[float, ...],
                    fix: frozenset[str] = frozenset()) -> CellConstraint:
    """Free cell parameters for ``space_group`` minus the user's FIX list.

    A fixed parameter that others depend on (e.g. A in tetragonal) fixes its dependants too.
    """
    system = crystal_system(space_group)
    free = {
        "triclinic": CELL_NAMES,
        "orthorhombic": ("A", "B", "C"),
        "tetragonal": ("A", "C"),
        "trigonal": ("A", "C"),
        "hexagonal": ("A", "C"),
        "rhombohedral": ("A", "ALPHA"),
        "cubic": ("A",),
    }.get(system)
    if system == "monoclinic":
        dev = [abs(cell[i] - 90.0) for i in (3, 4, 5)]
        unique = ("ALPHA", "BETA", "GAMMA")[int(np.argmax(dev))] if max(dev) > 1e-6 else "BETA"
        free = ("A", "B", "C", unique)
    if free is None:
        raise KeywordError(f"unknown crystal system {system!r} for {space_group}")
    return CellConstraint(system=system, free=tuple(n for n in free if n not in fix))
