"""Re-indexing into the reference setting of the chosen space group (as POINTLESS does).

The Laue group is found in the cell MOSFLM indexed (e.g. a 2-fold along c: ``P 1 1 2``); the
merged data are written in the space group's reference setting (``P 1 2 1``, b unique). gemmi's
``SpaceGroup.basisop`` gives the change of basis; which way it applies to row-vector Miller
indices and to the cell is not left to convention here but checked: the new indices must be
integers, the group's rotations must become the reference group's, and every reflection must
keep its d-spacing.
"""

from __future__ import annotations

from dataclasses import replace

import gemmi
import numpy as np

from mosflm_py.scaling.observations import Observations, d_spacing

__all__ = ["to_reference_setting"]


def _rot_set(sg: gemmi.SpaceGroup) -> set[tuple]:
    return {
        tuple((np.array(o.rot) // gemmi.Op.DEN).ravel().tolist()) for o in sg.operations().sym_ops
    }


def to_reference_setting(
    obs: Observations, sg: gemmi.SpaceGroup
) -> tuple[Observations, gemmi.SpaceGroup, str] | None:
    """(observations re-indexed, reference space group, operator text), or None when *sg* is
    already the reference setting or no consistent transformation is found."""
    if sg.is_reference_setting():
        return None
    ref = gemmi.find_spacegroup_by_number(sg.number)
    op = sg.basisop
    m = np.array(op.rot, dtype=float) / gemmi.Op.DEN
    ref_rots = _rot_set(ref)
    rots = [np.array(o.rot, float) // gemmi.Op.DEN for o in sg.operations().sym_ops]
    h = obs.hkl.astype(float)
    d_old = obs.d_spacing()
    for M in (m, np.linalg.inv(m), m.T, np.linalg.inv(m).T):
        h_new = h @ M
        if not np.allclose(h_new, np.rint(h_new), atol=1e-6):
            continue
        Minv = np.linalg.inv(M)
        # h' = h M, h' R' = (h R) M  ->  R' = M^-1 R M
        new = {tuple(np.rint(Minv @ r @ M).astype(int).ravel().tolist()) for r in rots}
        if new != ref_rots:
            continue
        for cell in (
            obs.cell.changed_basis_forward(op, False),
            obs.cell.changed_basis_backward(op, False),
        ):
            hi = np.rint(h_new).astype(np.int64)
            if np.allclose(d_spacing(cell, hi), d_old, rtol=1e-5):
                text = _op_text(M)
                return replace(obs, hkl=hi, cell=cell), ref, text
    return None


def _op_text(M: np.ndarray) -> str:
    """The re-indexing as h' k' l' in terms of h k l (e.g. ``k,l,h``)."""
    names = "hkl"
    out = []
    for col in range(3):
        terms = []
        for row in range(3):
            c = M[row, col]
            if abs(c) < 1e-9:
                continue
            coef = "" if abs(abs(c) - 1) < 1e-9 else f"{abs(c):g}*"
            terms.append(("-" if c < 0 else "+") + coef + names[row])
        out.append("".join(terms).lstrip("+") or "0")
    return ",".join(out)


def obtuse_monoclinic(obs: Observations, sg: gemmi.SpaceGroup) -> tuple[Observations, str] | None:
    """b-unique monoclinic with β < 90°: (a, b, c) -> (-a, -b, c) makes β obtuse (the
    convention), keeping the basis right-handed; None when nothing is to be done."""
    if (
        sg.crystal_system_str() != "monoclinic"
        or obs.cell.beta >= 90.0
        or not sg.is_reference_setting()
    ):
        return None
    a, b, c, al, be, ga = obs.cell.parameters
    cell = gemmi.UnitCell(a, b, c, 180.0 - al, 180.0 - be, ga)
    hkl = obs.hkl * np.array([-1, -1, 1])
    return replace(obs, hkl=hkl, cell=cell), "-h,-k,l"


def symmetrized_cell(cell: gemmi.UnitCell, sg: gemmi.SpaceGroup) -> gemmi.UnitCell:
    """The cell with the constraints of the space group's crystal system imposed (lengths
    averaged, angles set), as the merged data's cell."""
    a, b, c, al, be, ga = cell.parameters
    system = sg.crystal_system_str()
    if system == "monoclinic":
        return gemmi.UnitCell(a, b, c, 90.0, be, 90.0)
    if system == "orthorhombic":
        return gemmi.UnitCell(a, b, c, 90.0, 90.0, 90.0)
    if system == "tetragonal":
        m = (a + b) / 2
        return gemmi.UnitCell(m, m, c, 90.0, 90.0, 90.0)
    if system in ("hexagonal", "trigonal"):
        if sg.ext == "R":  # rhombohedral axes
            m = (a + b + c) / 3
            ang = (al + be + ga) / 3
            return gemmi.UnitCell(m, m, m, ang, ang, ang)
        m = (a + b) / 2
        return gemmi.UnitCell(m, m, c, 90.0, 90.0, 120.0)
    if system == "cubic":
        m = (a + b + c) / 3
        return gemmi.UnitCell(m, m, m, 90.0, 90.0, 90.0)
    return cell
