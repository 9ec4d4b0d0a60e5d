"""Small crystal rotations about the laboratory axes at a reference spindle angle.

Refinement parametrises orientation changes as rotations (dx, dy, dz) (degrees) about lab X (the
beam), Y and Z (the spindle) *at the reference angle φ_ref* — there, dx is the rotation about the
beam that only moves spots on the detector, while dy and dz move reflections through the Ewald
sphere (MOSFLM's PSIX versus PSIY/PSIZ).  The change is folded back into the missetting matrix of
conventions.txt (r(φ) = R(φ)·M·U·B·h):  M' = R(φ_ref)ᵀ · Rx(dx)·Ry(dy)·Rz(dz) · R(φ_ref) · M.
"""

from __future__ import annotations

from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.goniometer import Goniometer
from mosflm_py.geometry.rotation import missets_from_matrix, rot_x, rot_y, rot_z


def rotate_crystal(crystal: Crystal, dx: float, dy: float, dz: float, phi_ref: float,
                   goniometer: Goniometer | None = None) -> Crystal:
    """Crystal turned by (dx, dy, dz) degrees about lab X, Y, Z at spindle angle ``phi_ref``.

    U and the cell are unchanged; the rotation goes into the missetting angles.
    """
    if dx == 0.0 and dy == 0.0 and dz == 0.0:
        return crystal
    g = goniometer or Goniometer()
    r = g.rotation(phi_ref)
    m_new = r.T @ rot_x(dx) @ rot_y(dy) @ rot_z(dz) @ r @ crystal.M
    return crystal.replace(missets=missets_from_matrix(m_new))
