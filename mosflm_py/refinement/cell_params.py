"""Unit-cell parameters free under the lattice symmetry (crystal system from gemmi).

Constraints (standard settings): triclinic a b c α β γ; monoclinic a b c and the one non-90°
angle (β unless the cell says otherwise); orthorhombic a b c; tetragonal a c (b = a);
trigonal/hexagonal a c (b = a, γ = 120°); rhombohedral axes a α (b = c = a, β = γ = α);
cubic a.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import BadParameter

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
    ``unique`` : monoclinic only, the name of the non-90° angle; it keeps its template value
    when it is fixed (``None``: the angle of the template farthest from 90°).
    """

    system: str
    free: tuple[str, ...]
    unique: str | None = None

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
            # only the two angles other than the unique one are 90°; a fixed unique angle
            # keeps its value (setting it to 90° made β = 90° when the cell was fixed)
            unique = self.unique or _monoclinic_unique(tuple(c))
            for i in (3, 4, 5):
                if CELL_NAMES[i] != unique:
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
    unique = None
    if system == "monoclinic":
        unique = _monoclinic_unique(cell)
        free = ("A", "B", "C", unique)
    if free is None:
        raise BadParameter(f"unknown crystal system {system!r} for {space_group}")
    return CellConstraint(system=system, free=tuple(n for n in free if n not in fix),
                          unique=unique)


def _monoclinic_unique(cell: tuple[float, ...]) -> str:
    """Name of the monoclinic cell's non-90° angle (β when all three are 90°)."""
    dev = [abs(cell[i] - 90.0) for i in (3, 4, 5)]
    return ("ALPHA", "BETA", "GAMMA")[int(np.argmax(dev))] if max(dev) > 1e-6 else "BETA"
