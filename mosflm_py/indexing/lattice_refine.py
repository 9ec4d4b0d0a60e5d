"""Symmetry-constrained refinement of an orientation and cell against reciprocal-lattice vectors.

Used to rank the low-penalty lattice characters when only reciprocal-lattice vectors are known
(and as the starting point of the detector-space refinement).  Residuals are r_obs - UB.h
(1/Angstrom); outliers beyond SDCUTOFF times the rms are rejected iteratively.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from mosflm_py.indexing.cellparams import (
    Cell,
    cell_to_params,
    u_from_ub,
    ub_from_params,
)


@dataclass(frozen=True)
class RlpRefinement:
    """Refined constrained lattice in reciprocal space.

    Attributes
    ----------
    ub : ndarray (3, 3)
        Refined U.B (1/Angstrom), conventional setting.
    cell : tuple
        Refined conventional cell (Angstrom, degrees).
    rms : float
        Rms |r_obs - UB h| of the used rlp (1/Angstrom).
    rms_rel : float
        ``rms`` relative to the mean |r| of the used rlp (dimensionless ~ angular error).
    n_used : int
        Number of rlp used in the final cycle.
    fraction : float
        Fraction of all rlp indexed within ``hkldev`` by the refined matrix.
    """

    ub: np.ndarray
    cell: Cell
    rms: float
    rms_rel: float
    n_used: int
    fraction: float


def index_fraction(rlp: np.ndarray, ub: np.ndarray, hkldev: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer indices and the mask of rlp indexed within ``hkldev`` by ``ub``."""
    h = rlp @ np.linalg.inv(ub).T
    hr = np.round(h)
    ok = np.all(np.abs(h - hr) < hkldev, axis=1) & np.any(hr != 0, axis=1)
    return hr.astype(np.int64), ok


def refine_lattice_rlp(
    rlp: np.ndarray,
    ub0: np.ndarray,
    cell0: Cell,
    bravais: str,
    *,
    hkldev: float = 0.3,
    sdcutoff: float = 2.5,
    cycles: int = 3,
) -> RlpRefinement:
    """Refine orientation (3 small angles) and the constrained cell against indexed rlp.

    Parameters
    ----------
    rlp : array (N, 3)
        Reciprocal-lattice vectors at the datum (1/Angstrom).
    ub0 : array (3, 3)
        Starting U.B in the conventional setting of ``bravais`` (1/Angstrom).
    cell0 : tuple
        Starting (regularized) conventional cell (Angstrom, degrees).
    bravais : str
        Bravais symbol, e.g. ``"tP"``; sets the free cell parameters.
    hkldev, sdcutoff : float
        Index tolerance and outlier rejection limit (multiples of the rms residual).
    """
    u0 = u_from_ub(ub0, cell0)
    p0 = cell_to_params(cell0, bravais)
    hkl, ok = index_fraction(rlp, ub0, hkldev)
    use = ok.copy()
    x = np.concatenate([np.zeros(3), p0])
    scale = np.concatenate([np.ones(3), np.maximum(np.abs(p0) * 1e-3, 1e-3)])

    def model(xx: np.ndarray) -> tuple[np.ndarray, Cell]:
        return ub_from_params(u0, xx[:3], xx[3:], bravais)

    rms = np.inf
    for _ in range(cycles):
        if use.sum() < max(len(p0) + 3, 6):
            break
        r_use, h_use = rlp[use], hkl[use].astype(float)

        def resid(xx: np.ndarray, r_use=r_use, h_use=h_use) -> np.ndarray:
            ub, _ = model(xx)
            return (r_use - h_use @ ub.T).ravel()

        sol = least_squares(resid, x, x_scale=scale, method="lm")
        x = sol.x
        ub, _ = model(x)
        hkl, ok = index_fraction(rlp, ub, hkldev)
        dev = np.linalg.norm(rlp - hkl @ ub.T, axis=1)
        rms = float(np.sqrt(np.mean(dev[ok] ** 2))) if ok.any() else np.inf
        new_use = ok & (dev <= sdcutoff * rms)
        if np.array_equal(new_use, use):
            break
        use = new_use
    ub, cell = model(x)
    hkl, ok = index_fraction(rlp, ub, hkldev)
    dev = np.linalg.norm(rlp - hkl @ ub.T, axis=1)
    final = ok & (dev <= sdcutoff * rms) if np.isfinite(rms) else ok
    rms = float(np.sqrt(np.mean(dev[final] ** 2))) if final.any() else np.inf
    mean_r = float(np.mean(np.linalg.norm(rlp[final], axis=1))) if final.any() else 1.0
    return RlpRefinement(
        ub=ub,
        cell=cell,
        rms=rms,
        rms_rel=rms / mean_r,
        n_used=int(final.sum()),
        fraction=float(ok.mean()),
    )
