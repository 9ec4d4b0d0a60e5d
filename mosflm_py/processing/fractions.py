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
programs reject as incomplete partials.  A reflection wholly inside the range whose parts were
not all written (a part rejected, e.g. one mostly in a detector gap) is treated the same way:
its recorded share is the sum of the written parts' fractions, and it is completed when that
share is at least :data:`MIN_RECORDED` (otherwise its written fractions add up to less than
one and scaling rejects it as incomplete), provided the missing parts are ones the detector
could not record (off the image, mostly in a gap: ``ImageParts.unmeasurable``) and the
completion lowers its expected error (I_w² (1 − f) > V (1 + f) for the written sum I_w and its
variance V: weak reflections stay incomplete); one with a part rejected for its measurement
(an overlap, a bad profile) is left incomplete.

σ of a completed reflection.  The unrecorded share 1 − f of a completed reflection comes from
the rocking-curve model, not from the images: it is known only to within about its own size
(the rocking curves of real crystals are not the model's, and the rejected part held an
unknown amount).  The variance of the completed intensity I_c therefore gains
((1 − f) · I_c)², spread over the written parts in proportion to their intensities (each part
gets (1 − f)² · I_part · ΣI_parts before the scaling by 1/f), so that the summed
reflection carries it.

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
    accepted (N,) bool: the part is one of the image's MTZ records (in the same order);
    unmeasurable (N,) bool, optional: a part not written because the detector could not record
    it (off the image, or mostly on inactive pixels), as opposed to one rejected for its
    measurement (an overlap, a bad profile).
    """

    hkl: np.ndarray
    fraction: np.ndarray
    phi: np.ndarray
    width: np.ndarray
    accepted: np.ndarray
    unmeasurable: np.ndarray | None = None


@dataclass
class _Pending:
    position: int
    records: Any
    payload: Any
    parts: ImageParts
    done: np.ndarray
    scale: np.ndarray | None = None
    # variance (raw units of the written columns, before ``scale``) added for completion
    extra_var: np.ndarray | None = None
    extra_var_pr: np.ndarray | None = None


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
            _Pending(self._next, records, payload, parts, np.zeros(n, bool), np.ones(n),
                     np.zeros(n), np.zeros(n))
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
        # recorded share: the written parts' fractions (after the normalisation above)
        acc = np.concatenate([np.asarray(it.parts.accepted, bool) for it in items])
        # (a cut reflection's fractions are shares of the whole reflection as they stand)
        norm = np.where(complete, inv, 1.0)
        lost = np.concatenate([
            np.zeros(len(it.parts.fraction), bool) if it.parts.unmeasurable is None
            else np.asarray(it.parts.unmeasurable, bool) for it in items])
        f_rec = np.add.reduceat(np.where(acc, frac, 0.0)[order], starts) * norm
        # parts rejected for their measurement (overlaps, bad profiles) leave the reflection
        # incomplete: its share there is the model's, and on crowded or weak images scaling
        # up by it adds more error than it removes; parts the detector could not record (a
        # gap, the edge) are completed as the parts beyond the run are
        rejected = np.add.reduceat(np.where(~acc & ~lost, frac, 0.0)[order], starts) * norm
        i_sum, i_pr, v_sum = self._part_intensities(items)
        # a reflection missing parts the detector could not record is completed only when that
        # lowers its expected error: scaling by 1/f removes the bias (1 - f) I but multiplies
        # the variance V of the written sum by 1/f², so with I_w the written sum it pays when
        # ((1 - f)/f)² I_w² + V > V / f², i.e. I_w² (1 - f) > V (1 + f) (weak reflections on a
        # crowded or noisy detector stay incomplete)
        i_w = np.add.reduceat(np.nan_to_num(i_sum)[order], starts)
        v_w = np.add.reduceat(np.nan_to_num(v_sum)[order], starts)
        pays = i_w**2 * (1.0 - f_rec) > v_w * (1.0 + f_rec)
        partly = complete & (f_rec < 1.0 - 1e-3) & pays
        # completed: cut by the run limits, or missing unrecordable parts, enough recorded
        fill = (cut | partly) & (f_rec >= MIN_RECORDED) & (rejected < 1e-3)
        share = np.where(fill, f_rec, 1.0)
        new_frac = frac.copy()
        mult = np.where(fill, norm / share, np.where(complete, inv, 1.0))
        new_frac[order] = frac[order] * mult[gid]
        iscale = np.ones(len(frac))
        iscale[order] = (1.0 / share)[gid]
        # the unrecorded share (1 - f) of a completed reflection is known to about its size
        q = (1.0 - share) ** 2  # before the scaling by 1/f: ((1 - f) I_c)^2 after it
        extra = np.zeros(len(frac))
        extra_pr = np.zeros(len(frac))
        for col, out in ((i_sum, extra), (i_pr, extra_pr)):
            pos_i = np.maximum(np.nan_to_num(col), 0.0)
            tot = np.add.reduceat(pos_i[order], starts)
            out[order] = q[gid] * pos_i[order] * tot[gid]
        new_done = done.copy()
        new_done[order] = done[order] | closed[gid]
        act_part = np.empty(len(frac), bool)
        act_part[order] = act[gid]
        k = 0
        for it in items:
            n = len(it.parts.fraction)
            sl = slice(k, k + n)
            act_here = act_part[sl]
            it.parts.fraction = new_frac[sl]
            it.done = new_done[sl]
            it.scale = it.scale * iscale[sl]
            it.extra_var = np.where(act_here, extra[sl], it.extra_var)
            it.extra_var_pr = np.where(act_here, extra_pr[sl], it.extra_var_pr)
            k += n

    @staticmethod
    def _part_intensities(items: list[_Pending]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Summation and profile-fitted intensity and summation variance of every predicted
        part (0 where not written), in the order of the parts of ``items``."""
        out: dict[str, list] = {"I": [], "Ipr": [], "sigI": []}
        for it in items:
            n = len(it.parts.fraction)
            rec = it.records
            acc = np.asarray(it.parts.accepted, bool)
            for name, power in (("I", 1), ("Ipr", 1), ("sigI", 2)):
                v = np.zeros(n)
                if rec is not None and n and hasattr(rec, name):
                    v[acc] = (np.asarray(getattr(rec, name), float) / it.scale[acc]) ** power
                out[name].append(v)
        return (np.concatenate(out["I"]), np.concatenate(out["Ipr"]),
                np.concatenate(out["sigI"]))

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
                    for name, extra in (("I", None), ("sigI", it.extra_var),
                                        ("Ipr", None), ("sigIpr", it.extra_var_pr)):
                        if hasattr(rec, name):
                            v = np.asarray(getattr(rec, name))
                            if extra is not None:
                                # sigma before the scaling, with the completion variance
                                w = np.sqrt(v.astype(float) ** 2 + extra[acc]) * sc
                            else:
                                w = v * sc
                            changes[name] = w.astype(v.dtype)
                rec = replace(rec, **changes)
            out.append((rec, it.payload))
        return out


__all__ = ["FractionNormaliser", "ImageParts"]
