"""Crystal of the simulator: B, U, missets, reflection list, absences and Wilson intensities.

Implemented independently of :mod:`mosflm_py.geometry` (from conventions.txt) so that tests
comparing the processing code with simulated truth cannot pass by sharing a bug.
"""

from __future__ import annotations

import numpy as np

from mosflm_py.errors import BadParameter


def b_matrix(cell) -> np.ndarray:
    """Busing & Levy (1967) B matrix (1/Angstrom) of a cell (a, b, c in A, angles in deg).

    ``B = [[a*, b* cos(gamma*), c* cos(beta*)], [0, b* sin(gamma*), -c* sin(beta*) cos(alpha)],
    [0, 0, 1/c]]`` (conventions.txt).
    """
    a, b, c = (float(x) for x in cell[:3])
    al, be, ga = np.radians(np.asarray(cell[3:], dtype=float))
    ca, cb, cg = np.cos([al, be, ga])
    sa, sb, sg = np.sin([al, be, ga])
    v2 = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    if v2 <= 0:
        raise BadParameter(f"Cell angles {tuple(cell[3:])} do not form a valid cell.")
    vol = a * b * c * np.sqrt(v2)
    ast, bst, cst = b * c * sa / vol, a * c * sb / vol, a * b * sg / vol
    cos_bst = (ca * cg - cb) / (sa * sg)
    cos_gst = (ca * cb - cg) / (sa * sb)
    sin_bst = np.sqrt(1.0 - cos_bst**2)
    sin_gst = np.sqrt(1.0 - cos_gst**2)
    return np.array(
        [
            [ast, bst * cos_gst, cst * cos_bst],
            [0.0, bst * sin_gst, -cst * sin_bst * ca],
            [0.0, 0.0, 1.0 / c],
        ]
    )


def rot_x(deg: float) -> np.ndarray:
    """Right-handed rotation about lab X by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Right-handed rotation about lab Y by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    """Right-handed rotation about lab Z by ``deg`` degrees."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def misset_matrix(missets) -> np.ndarray:
    """``M = Rz(PHIZ) Ry(PHIY) Rx(PHIX)`` for missets (PHIX, PHIY, PHIZ) in degrees."""
    px, py, pz = (float(v) for v in missets)
    return rot_z(pz) @ rot_y(py) @ rot_x(px)


def random_rotation(seed: int) -> np.ndarray:
    """A uniformly distributed random rotation (unit quaternion from 4 normal deviates)."""
    rng = np.random.default_rng([int(seed), 7919])
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def space_group(symbol: str):
    """gemmi space group from a symbol (``BadParameter`` if unknown)."""
    import gemmi

    try:
        sg = gemmi.SpaceGroup(symbol)
    except (ValueError, RuntimeError) as exc:
        raise BadParameter(f"Unknown space group '{symbol}' for the simulation.") from exc
    return sg


def generate_hkl(cell, symbol: str, d_min: float) -> np.ndarray:
    """All reflections with d >= ``d_min`` not systematically absent in ``symbol`` (int32 (N, 3)).

    Excludes (0, 0, 0).  Order: lexicographic in (h, k, l).
    """
    b = b_matrix(cell)
    dstar_max = 1.0 / d_min
    # |h| = |a . r| <= |a| d*max
    hmax = [int(np.floor(float(cell[i]) * dstar_max)) + 1 for i in range(3)]
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in hmax], indexing="ij")
    hkl = np.stack([g.ravel() for g in grids], axis=1).astype(np.int32)
    dstar = np.linalg.norm(hkl @ b.T, axis=1)
    keep = (dstar <= dstar_max) & (dstar > 0)
    hkl = hkl[keep]
    ops = space_group(symbol).operations()
    absent = np.asarray(ops.systematic_absences(hkl), dtype=bool)
    return np.ascontiguousarray(hkl[~absent])


def asu_keys(hkl: np.ndarray, symbol: str) -> np.ndarray:
    """One int64 key per reflection, equal for symmetry equivalents and Friedel mates."""
    ops = space_group(symbol).operations()
    best = None
    for op in ops.sym_ops:
        rot = np.array(op.rot, dtype=np.int64) // 24
        for sgn in (1, -1):
            h2 = sgn * (hkl.astype(np.int64) @ rot)
            key = ((h2[:, 0] + 1024) << 22) | ((h2[:, 1] + 1024) << 11) | (h2[:, 2] + 1024)
            best = key if best is None else np.maximum(best, key)
    return best


def wilson_intensities(
    hkl: np.ndarray, cell, symbol: str, mean_intensity: float, b_factor: float, seed: int
) -> np.ndarray:
    """Random Wilson intensities, equal for equivalents (no anomalous signal).

    ``<I> = mean_intensity * epsilon * exp(-B d*^2 / 2)`` (``s = sin(theta)/lambda = d*/2``,
    Wilson 1949); acentric reflections are exponentially distributed, centric ones as
    ``<I> chi^2_1``.
    """
    import gemmi  # noqa: F401  (space_group imports it)

    ops = space_group(symbol).operations()
    dstar2 = np.sum((hkl @ b_matrix(cell).T) ** 2, axis=1)
    eps = np.asarray(ops.epsilon_factor_array(hkl), dtype=float)
    centric = np.asarray(ops.centric_flag_array(hkl), dtype=bool)
    keys = asu_keys(hkl, symbol)
    uniq, inverse = np.unique(keys, return_inverse=True)
    rng = np.random.default_rng([int(seed), 104729])
    expo = rng.exponential(size=uniq.size)[inverse]
    gauss2 = rng.normal(size=uniq.size)[inverse] ** 2
    mean = mean_intensity * eps * np.exp(-0.5 * b_factor * dstar2)
    return np.where(centric, mean * gauss2, mean * expo)
