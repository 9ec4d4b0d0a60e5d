"""Predicted reflections on one image, as plain arrays (input of the integration functions)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError


@dataclass(frozen=True)
class Predictions:
    """Predicted reflections on one image.

    x_px, y_px : (N,) float64 continuous pixel coordinates, slow then fast (pixel centres i+0.5).
    hkl : (N, 3) int32.  fraction : (N,) fraction recorded on this image (1 = full).
    flags : (N,) int32 extra FLAG bits from the caller, OR-ed into the output flags.
    """

    x_px: np.ndarray
    y_px: np.ndarray
    hkl: np.ndarray
    fraction: np.ndarray
    flags: np.ndarray

    @classmethod
    def from_arrays(cls, x_px, y_px, hkl=None, fraction=None, flags=None) -> Predictions:
        x = np.ascontiguousarray(x_px, np.float64).reshape(-1)
        y = np.ascontiguousarray(y_px, np.float64).reshape(-1)
        n = x.size
        if y.size != n:
            raise IntegrationError("x_px and y_px must have the same length")
        h = (np.zeros((n, 3), np.int32) if hkl is None
             else np.ascontiguousarray(hkl, np.int32).reshape(n, 3))
        f = np.ones(n) if fraction is None else np.ascontiguousarray(fraction, np.float64)
        g = np.zeros(n, np.int32) if flags is None else np.ascontiguousarray(flags, np.int32)
        if f.shape != (n,) or g.shape != (n,):
            raise IntegrationError("fraction and flags need one value per reflection")
        return cls(x, y, h, f, g)

    def __len__(self) -> int:
        return int(self.x_px.size)
