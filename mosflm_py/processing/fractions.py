"""Make the calculated fractions (FRACTIONCALC) of the parts of each reflection add up to one.

Each block of images is predicted with its own post-refined crystal (missets, mosaic spread), so
a reflection whose parts fall in two or three blocks gets the fractions of its early parts from
one rocking curve and those of its late parts from another: they no longer add up to one.
:class:`FractionNormaliser` sits between the blocks and the MTZ writer.  It keeps the images
whose reflections may still receive parts; once every part of a reflection has been predicted
(the reflection's rocking curve ends half its width before the end of the last processed
image), the fractions of all its predicted parts — measured or rejected — are divided by their
sum, so that the parts of a reflection wholly inside the processed range add up to exactly
one.  Reflections cut by the start or the end of the range whose recorded share (the sum of
their parts' fractions) is at least :data:`MIN_RECORDED` are completed as XDS's CORRECT and
DIALS do: their parts' intensities and sigmas are divided by the recorded share and
their fractions too, so that the written parts add up to the whole reflection (FRACTIONCALC
sum one, as Aimless expects of a complete reflection); those recorded less keep their
fractions (their sum is the recorded share, below one) and intensities, which scaling
programs reject as incomplete partials.

Memory: images are held only until their reflections are complete (the widest accepted
reflection, at most MAXWIDTH degrees, bounds this).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

_EPS = 1e-6

MIN_RECORDED = 0.4
"""Smallest recorded share of a reflection cut by the start or end of the run that is completed
(scaled up by its inverse): DIALS's partiality cut-off (dials.scale ``partiality_cutoff`` and
dials.export ``partiality_threshold``, 0.4); XDS's stricter MINPK is 75 %."""


@dataclass
class ImageParts:
    """All reflection parts predicted on one image (measured or not), for the bookkeeping.

    hkl (N, 3); fraction (N,); phi, width (N,) rocking-curve centre and full width (degrees);
    accepted (N,) bool: the part is one of the image's MTZ records (in the same order).
    """

    hkl: np.ndarray
    fraction: np.ndarray
    phi: np.ndarray
    width: np.ndarray
    accepted: np.ndarray


@dataclass
class _Pending:
    position: int
    records: Any
    payload: Any
    parts: ImageParts
    done: np.ndarray
    scale: np.ndarray | None = None


class FractionNormaliser:
    """Buffer images in run order and release them with consistent FRACTIONCALC.

    Parameters
    ----------
    run_start, run_end : φ range of the whole PROCESS run (degrees).

    Usage: ``for ready in norm.add(records, parts, phi_end, payload)`` in image order, then
    ``norm.finish()``; each released item is ``(records, payload)`` with ``records.fraction``
    updated.
    """

    def __init__(self, run_start: float, run_end: float) -> None:
        self.run_start = float(run_start)
        self.run_end = float(run_end)
        self._pending: list[_Pending] = []
        self._next = 0

    def add(self, records, parts: ImageParts, phi_end: float, payload=None) -> list[tuple]:
        """Add the next image of the run (processed up to ``phi_end``); release what is final."""
        n = len(parts.fraction)
        self._pending.append(
            _Pending(self._next, records, payload, parts, np.zeros(n, bool), np.ones(n))
        )
        self._next += 1
        self._normalise(float(phi_end), final=False)
        return self._release()

    def finish(self) -> list[tuple]:
        """Release every remaining image (end of the run)."""
        self._normalise(self.run_end, final=True)
        out = self._release()
        assert not self._pending
        return out

    def _normalise(self, processed_end: float, final: bool) -> None:
        items = self._pending
        if not items:
            return
        hkl = np.concatenate([it.parts.hkl for it in items]).astype(np.int64).reshape(-1, 3)
        if len(hkl) == 0:
            for it in items:
                it.done[:] = True
            return
        pos = np.concatenate([np.full(len(it.parts.fraction), it.position) for it in items])
        frac = np.concatenate([it.parts.fraction for it in items]).astype(np.float64)
        phi = np.concatenate([it.parts.phi for it in items]).astype(np.float64)
        width = np.nan_to_num(
            np.concatenate([it.parts.width for it in items]).astype(float), posinf=360.0
        )
        done = np.concatenate([it.done for it in items])
        order = np.lexsort((pos, hkl[:, 2], hkl[:, 1], hkl[:, 0]))
        hs, ps = hkl[order], pos[order]
        new = np.ones(len(order), bool)
        new[1:] = np.any(hs[1:] != hs[:-1], axis=1) | (ps[1:] - ps[:-1] > 1)
        starts = np.flatnonzero(new)
        gid = np.cumsum(new) - 1
        lo = np.minimum.reduceat((phi - 0.5 * width)[order], starts)
        hi = np.maximum.reduceat((phi + 0.5 * width)[order], starts)
        fsum = np.add.reduceat(frac[order], starts)
        any_done = np.maximum.reduceat(done[order].astype(np.int8), starts) > 0
        # wait half a rocking width beyond the end of the reflection: the next block's model
        # (wider mosaic spread) may still predict a part on the following image
        closed = final | (hi + 0.5 * (hi - lo) <= processed_end + _EPS)
        act = closed & ~any_done
        # only small inconsistencies between the blocks' rocking curves are corrected: a sum
        # far from one means the group is not a whole reflection (a stray part predicted by
        # one block next to a reflection already released), which is left as it is
        complete = (
            act
            & (lo >= self.run_start - _EPS)
            & (hi <= self.run_end + _EPS)
            & (fsum > 0.5)
            & (fsum < 1.5)
        )
        # cut by the start or the end of the run, recorded share known and large enough:
        # completed (intensities and fractions scaled by the inverse of the share)
        cut = (
            act
            & ~((lo >= self.run_start - _EPS) & (hi <= self.run_end + _EPS))
            & (fsum >= MIN_RECORDED)
            & (fsum < 1.0 - _EPS)
        )
        inv = 1.0 / np.where(fsum > 0, fsum, 1.0)
        factor = np.where(complete | cut, inv, 1.0)
        new_frac = frac.copy()
        new_frac[order] = frac[order] * factor[gid]
        iscale = np.ones(len(frac))
        iscale[order] = np.where(cut, inv, 1.0)[gid]
        new_done = done.copy()
        new_done[order] = done[order] | closed[gid]
        k = 0
        for it in items:
            n = len(it.parts.fraction)
            it.parts.fraction = new_frac[k : k + n]
            it.done = new_done[k : k + n]
            it.scale = it.scale * iscale[k : k + n]
            k += n

    def _release(self) -> list[tuple]:
        out = []
        while self._pending and self._pending[0].done.all():
            it = self._pending.pop(0)
            rec = it.records
            if rec is not None and len(it.parts.fraction):
                acc = it.parts.accepted
                changes = {
                    "fraction": it.parts.fraction[acc].astype(np.asarray(rec.fraction).dtype)
                }
                sc = it.scale[acc]
                if np.any(sc != 1.0):
                    for name in ("I", "sigI", "Ipr", "sigIpr"):
                        if hasattr(rec, name):
                            v = np.asarray(getattr(rec, name))
                            changes[name] = (v * sc).astype(v.dtype)
                rec = replace(rec, **changes)
            out.append((rec, it.payload))
        return out


__all__ = ["FractionNormaliser", "ImageParts"]
