"""Control keywords that run immediately: GO/RUN, EXIT/END, HELP, SHOW/STATUS, WAIT, ...

Each handler has the control signature ``handler(session, record) -> Outcome | None``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from mosflm_py import signals
from mosflm_py.actions.common import current_crystal
from mosflm_py.helptext import help_lines
from mosflm_py.report import fmt_value
from mosflm_py.session import Outcome
from mosflm_py.state import diff_from_default

if TYPE_CHECKING:
    from mosflm_py.registry import Record, Registry
    from mosflm_py.session import Session


def go(session: Session, record: Record) -> None:
    """GO / RUN: execute the queued actions in order."""
    session.run_pending()


def exit_(session: Session, record: Record) -> Outcome:
    """EXIT / END: finish the session."""
    signals.ignore()  # the run is over: a late Ctrl-C / SIGTERM must not contradict this line
    session.report.line(" Normal termination of mosflm-py.")
    return Outcome.EXIT


def help_(session: Session, record: Record) -> None:
    """HELP [keyword|topic]."""
    session.report.lines(help_lines(session.registry, record.get("topic")))


def keyword_names(registry: Registry) -> dict[str, str]:
    """Setting path → the keyword (and subkeyword) that sets it, from ``keywords/*.toml``."""
    names: dict[str, str] = {}

    def note(path: str | None, name: str) -> None:
        if path:
            names.setdefault(path, name)

    for spec in registry.specs.values():
        note(spec.target, spec.name)
        for form in spec.forms:
            for arg in form:
                note(arg.target, spec.name)
        for sub in spec.subkeywords.values():
            note(sub.target, f"{spec.name} {sub.name}")
            for form in sub.forms:
                for arg in form:
                    note(arg.target, f"{spec.name} {sub.name}")
    return names


def show(session: Session, record: Record) -> None:
    """SHOW / STATUS: the settings given (with their keywords) and what the program found.

    Settings the user gave that differ from MOSFLM's defaults come first, each with the keyword
    that sets it; values the program derived (refined beam, cell, mosaic, RASTER, ...) follow
    separately, then the current crystal when there is one.
    """
    diff = diff_from_default(session.state)
    names = keyword_names(session.registry)
    if not diff:
        session.report.line(" All settings have their default values.")
    else:
        session.report.line(" Settings that differ from the defaults:")
        width = max(len(p) for p, _, _ in diff)
        kw_width = max(len(names.get(p, "")) for p, _, _ in diff)
        given = [d for d in diff if d[0] in session.state.user_set]
        derived = [d for d in diff if d[0] not in session.state.user_set]
        for path, value, default in given:
            session.report.line(f"   {names.get(path, ''):<{kw_width}}  {path:<{width}}"
                                f"  {fmt_value(value)}   (default {fmt_value(default)})")
        if derived:
            session.report.line(" Found by the program (not given as keywords):")
        for path, value, default in derived:
            session.report.line(f"   {names.get(path, ''):<{kw_width}}  {path:<{width}}"
                                f"  {fmt_value(value)}   (default {fmt_value(default)})"
                                "   (derived)")
    crystal = current_crystal(session)
    if crystal is not None:
        cell = " ".join(f"{c:.2f}" for c in crystal.cell)
        session.report.line(f" Current crystal: cell {cell}  space group {crystal.space_group}"
                            f"  mosaic {crystal.mosaic:.2f} deg")
    pending = ", ".join(j.keyword for j in session.pending)
    if pending:
        session.report.line(f" Queued for the next GO: {pending}")


def wait(session: Session, record: Record) -> None:
    """WAIT s: pause for s seconds (at most 60; used by GUIs)."""
    time.sleep(min(float(record.get("seconds", 0.0)), 60.0))


def noop_gui(session: Session, record: Record) -> None:
    """GUI protocol keywords (RETURN, LOAD ...) that need no action in a text session."""
    session.report.line(f" {record.keyword} accepted (no effect outside the iMosflm GUI).")
