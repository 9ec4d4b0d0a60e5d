"""Control keywords that run immediately: GO/RUN, EXIT/END, HELP, SHOW/STATUS, WAIT, ...

Each handler has the control signature ``handler(session, record) -> Outcome | None``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mosflm_py.report import fmt_value
from mosflm_py.state import diff_from_default

if TYPE_CHECKING:
    from mosflm_py.registry import Record
    from mosflm_py.session import Outcome, Session


def go(session: Session, record: Record) -> None:
    """GO / RUN: execute the queued actions in order."""
    session.run_pending()


def exit_(session: Session, record: Record) -> Outcome:
    """EXIT / END: finish the session."""
    from mosflm_py import signals
    from mosflm_py.session import Outcome

    signals.ignore()  # the run is over: a late Ctrl-C / SIGTERM must not contradict this line
    session.report.line(" Normal termination of mosflm-py.")
    return Outcome.EXIT


def help_(session: Session, record: Record) -> None:
    """HELP [keyword|topic]."""
    from mosflm_py.helptext import help_lines

    session.report.lines(help_lines(session.registry, record.get("topic")))


def show(session: Session, record: Record) -> None:
    """SHOW / STATUS: print the settings that differ from MOSFLM's defaults."""
    diff = diff_from_default(session.state)
    if not diff:
        session.report.line(" All settings have their default values.")
        return
    session.report.line(" Settings that differ from the defaults:")
    width = max(len(p) for p, _, _ in diff)
    for path, value, default in diff:
        src = "" if path in session.state.user_set else "   (derived)"
        session.report.line(f"   {path:<{width}}  {fmt_value(value)}"
                            f"   (default {fmt_value(default)}){src}")
    pending = ", ".join(j.keyword for j in session.pending)
    if pending:
        session.report.line(f" Queued for the next GO: {pending}")


def wait(session: Session, record: Record) -> None:
    """WAIT s: pause for s seconds (at most 60; used by GUIs)."""
    time.sleep(min(float(record.get("seconds", 0.0)), 60.0))


def noop_gui(session: Session, record: Record) -> None:
    """GUI protocol keywords (RETURN, LOAD ...) that need no action in a text session."""
    session.report.line(f" {record.keyword} accepted (no effect outside the iMosflm GUI).")
