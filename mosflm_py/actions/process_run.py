"""PROCESS a b [START φ] [ANGLE Δφ] [BLOCK n] [ADD k] + GO/RUN: integrate a range of images.

With ``POSTREF SEGMENT n`` each PROCESS + GO is one segment of a cell refinement: the images are
collected and, once n segments are in, the cell is refined (:mod:`mosflm_py.actions.cellref`).
Otherwise the images are integrated in blocks (:mod:`mosflm_py.actions.integrate`) and the
unmerged MTZ (HKLOUT) and the SUMMARY file are written. The setup both share is in
:mod:`mosflm_py.actions.process`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mosflm_py.actions.cellref import add_segment, automatic_segments
from mosflm_py.actions.integrate import integrate_sweep
from mosflm_py.actions.process import process_range
from mosflm_py.actions.quickscale import auto_after_process

if TYPE_CHECKING:
    from mosflm_py.session import Job, Session


def run(session: Session, job: Job) -> None:
    """GO handler of PROCESS."""
    first, last, start, angle, block, add = process_range(session, job)
    segments = session.state.postref.segments
    if segments and segments < 0:
        automatic_segments(session, first, last)
        return
    if segments:
        add_segment(session, first, last)
        return
    integrate_sweep(session, first, last, start, angle, block, add)
    auto_after_process(session)  # QUICKSCALE AUTO / --report


__all__ = ["run"]
