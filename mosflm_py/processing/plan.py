"""Images, φ ranges and blocks of a PROCESS run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError


@dataclass(frozen=True)
class ImagePlan:
    """One image to process: number, φ range (degrees) and MTZ batch number."""

    number: int
    phi_start: float
    phi_end: float
    batch: int

    @property
    def width(self) -> float:
        """Oscillation width (degrees)."""
        return self.phi_end - self.phi_start


def plan_images(
    first: int,
    last: int,
    available: Sequence[int],
    phi_of: Callable[[int], tuple[float, float]],
    start: float | None = None,
    angle: float | None = None,
    add: int = 0,
) -> list[ImagePlan]:
    """Images ``first``..``last`` with their φ ranges (PROCESS a b [START φ] [ANGLE Δφ] [ADD k]).

    Raises
    ------
    IntegrationError
        An image of the range does not exist, or the range is empty.
    """
    if last < first:
        raise IntegrationError(f"PROCESS {first} {last}: the last image is before the first")
    have = set(available)
    missing = [n for n in range(first, last + 1) if n not in have]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise IntegrationError(
            f"PROCESS {first} {last}: image(s) {shown} not found; check TEMPLATE/DIRECTORY or "
            "give a range of images that exist"
        )
    out = []
    for k, n in enumerate(range(first, last + 1)):
        if start is not None or angle is not None:
            a0, a1 = phi_of(first)
            width = angle if angle is not None else (a1 - a0)
            s = (start if start is not None else a0) + k * width
            out.append(ImagePlan(n, s, s + width, n + add))
        else:
            a, b = phi_of(n)
            out.append(ImagePlan(n, float(a), float(b), n + add))
    return out


def make_blocks(images: Sequence[ImagePlan], block: int) -> list[list[ImagePlan]]:
    """Split images into consecutive blocks of ``block`` (the last block takes the remainder,
    merged into the previous one when it would be shorter than half a block)."""
    block = max(1, int(block))
    blocks = [list(images[i:i + block]) for i in range(0, len(images), block)]
    if len(blocks) > 1 and len(blocks[-1]) < max(1, block // 2):
        blocks[-2].extend(blocks.pop())
    return blocks


def phi_grid(images: Sequence[ImagePlan]) -> tuple[np.ndarray, np.ndarray]:
    """Start and end φ arrays (degrees) of the images in processing order."""
    return (np.array([im.phi_start for im in images]), np.array([im.phi_end for im in images]))
