"""Control keywords that run immediately: GO/RUN, EXIT/END, HELP, SHOW/STATUS, WAIT, ...

Each handler has the control signature ``handler(session, record) -> Outcome | None``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mosflm_py import signals
from mosflm_py.actions.common import current_crystal, known_crystal
from mosflm_py.experiment_model import (
    CRYSTAL_PARTS,
    Found,
    blocksize_from_domain_width,
    keyword_wins,
)
from mosflm_py.helptext import help_lines
from mosflm_py.report import fmt_value
from mosflm_py.session import Outcome
from mosflm_py.state import diff_from_default, get_setting

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
    for path, name in SET_BY_FUNCTIONS.items():  # keywords whose setter is a function
        if name in registry.specs:
            note(path, name)
    return names


SET_BY_FUNCTIONS = {"crystal.cell": "CELL", "integration.separation": "SEPARATION",
                    "detector.beam": "BEAM"}
"""Settings set by a function in ``setters.py`` (``apply``) rather than a ``target``."""


def show(session: Session, record: Record) -> None:
    """SHOW / STATUS: the settings given (with their keywords) and what the program found.

    First the settings the user gave that differ from MOSFLM's defaults, each with the keyword
    that sets it; then, side by side, each value the program found (refined beam and distance,
    RASTER, SEPARATION, MINPIX, the crystal's cell, space group, mosaic spread, missets and
    block size) with the user's setting of the same keyword, the step that found it, and which
    of the two the next step uses (:func:`mosflm_py.experiment_model.effective`).
    """
    diff = diff_from_default(session.state)
    names = keyword_names(session.registry)
    if not diff:
        session.report.line(" All settings have their default values.")
    else:
        session.report.line(" Settings that differ from the defaults:")
        width = max(len(p) for p, _, _ in diff)
        kw_width = max(len(names.get(p, "")) for p, _, _ in diff)
        for path, value, default in diff:
            session.report.line(f"   {names.get(path, ''):<{kw_width}}  {path:<{width}}"
                                f"  {fmt_value(value)}   (default {fmt_value(default)})")
    rows = found_rows(session, names)
    if rows:
        session.report.line(" Found by the program, beside your settings:")
        session.report.table(["Keyword", "Your setting", "Found", "By", "In use"], rows,
                             ["s", "s", "s", "s", "s"])
    crystal = current_crystal(session)
    if crystal is not None:
        cell = " ".join(f"{c:.2f}" for c in crystal.cell)
        session.report.line(f" Current crystal: cell {cell}  space group {crystal.space_group}"
                            f"  mosaic {crystal.mosaic:.2f} deg")
    pending = ", ".join(j.keyword for j in session.pending)
    if pending:
        session.report.line(f" Queued for the next GO: {pending}")


def _fmt_found(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(_fmt_found(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return fmt_value(value)


def found_rows(session: Session, names: dict[str, str]) -> list[tuple[str, ...]]:
    """SHOW's rows: (keyword, your setting, found, by, in use) for every value found."""
    st = session.state
    items: list[tuple[str, Found[Any]]] = list(session.results.found_settings().items())
    known = known_crystal(session)
    if known is not None:
        for part, path in CRYSTAL_PARTS.items():
            found = known.found(part)
            if path is None or found is None:
                continue
            if part == "blocksize":
                if found.value <= 0:
                    continue
                found = Found(blocksize_from_domain_width(found.value), found.source,
                              found.serial)
            items.append((path, found))
    rows = []
    for path, found in items:
        user = get_setting(st, path)
        given = st.when_given(path)
        mine = fmt_value(user) if given is not None else "(not given)"
        used = "yours" if keyword_wins(user if given is not None else None, given, found) \
            else "found"
        rows.append((names.get(path, path), mine, _fmt_found(found.value), found.source, used))
    return rows


def wait(session: Session, record: Record) -> None:
    """WAIT s: pause for s seconds (at most 60; used by GUIs)."""
    time.sleep(min(float(record.get("seconds", 0.0)), 60.0))


def noop_gui(session: Session, record: Record) -> None:
    """GUI protocol keywords (RETURN, LOAD ...) that need no action in a text session."""
    session.report.line(f" {record.keyword} accepted (no effect outside the iMosflm GUI).")
