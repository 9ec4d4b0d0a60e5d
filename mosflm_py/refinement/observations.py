"""Partially recorded reflections measured on consecutive images, grouped for post-refinement.

Each row of :class:`PartialObservations` is one part: the intensity of reflection ``hkl`` recorded
on one image (φ range ``phi_start``..``phi_end``).  Parts of the same reflection on contiguous
images form a *group*; the sum over a complete group is the total intensity (POSTREF MULTI), and the
running sum over the first k parts divided by the total is the observed cumulative fraction at the
k-th image boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import RefinementError


@dataclass(frozen=True, eq=False)
class PartialObservations:
    """Measured parts of reflections (struct of arrays, one row per reflection per image).

    hkl : (N, 3) int.  image : (N,) image numbers.  phi_start, phi_end : φ range of the image (°).
    intensity, sigma : summation intensity and its σ (any consistent scale).
    """

    hkl: np.ndarray
    image: np.ndarray
    phi_start: np.ndarray
    phi_end: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray

    def __post_init__(self) -> None:
        hkl = np.asarray(self.hkl, dtype=np.int32).reshape(-1, 3)
        object.__setattr__(self, "hkl", hkl)
        n = len(hkl)
        for name in ("image", "phi_start", "phi_end", "intensity", "sigma"):
            v = np.asarray(getattr(self, name))
            v = v.astype(np.int64 if name == "image" else float)
            if v.shape != (n,):
                raise RefinementError(
                    f"partial observations: {name} has shape {v.shape}, expected ({n},)"
                )
            object.__setattr__(self, name, v)

    def __len__(self) -> int:
        return len(self.hkl)

    @classmethod
    def concatenate(cls, parts: list[PartialObservations]) -> PartialObservations:
        """Join several sets (e.g. one per image)."""
        if not parts:
            return cls(np.zeros((0, 3), np.int32), *(np.zeros(0) for _ in range(5)))
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("hkl", "image", "phi_start", "phi_end", "intensity", "sigma")))

    def select(self, mask: np.ndarray) -> PartialObservations:
        """Rows selected by ``mask``."""
        return PartialObservations(*(getattr(self, f)[mask] for f in
                                     ("hkl", "image", "phi_start", "phi_end", "intensity",
                                      "sigma")))


@dataclass(frozen=True, eq=False)
class Groups:
    """Contiguous parts of the same reflection.

    order : row order of the observations sorted by group then φ.
    start, count : first position (in ``order``) and number of parts of each group.
    """

    order: np.ndarray
    start: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return len(self.start)


def group_parts(obs: PartialObservations, tol: float = 1e-3) -> Groups:
    """Group the parts of each reflection that lie on contiguous images.

    Two parts belong together when their hkl agree and one image starts where the previous one
    ended (within ``tol`` degrees).
    """
    n = len(obs)
    if n == 0:
        z = np.zeros(0, np.int64)
        return Groups(z, z, z)
    h = obs.hkl
    order = np.lexsort((obs.phi_start, h[:, 2], h[:, 1], h[:, 0]))
    hs = h[order]
    new = np.ones(n, bool)
    same = np.all(hs[1:] == hs[:-1], axis=1)
    contiguous = np.abs(obs.phi_start[order][1:] - obs.phi_end[order][:-1]) <= tol
    new[1:] = ~(same & contiguous)
    start = np.nonzero(new)[0]
    count = np.diff(np.append(start, n))
    return Groups(order=order, start=start, count=count)
