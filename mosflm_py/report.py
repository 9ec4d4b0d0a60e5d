"""MOSFLM-style text output: echoes, ``***`` errors, WARNING/Information banners, tables.

Every user-visible line goes through a :class:`Report`, which writes to the session's terminal
stream and to the log file (flushed per line). Algorithms never print; actions format their
results with these helpers.
"""

from __future__ import annotations

import datetime as _dt
import sys
import textwrap
from collections.abc import Iterable, Sequence
from typing import IO, Any

from mosflm_py.signals import checkpoint

WIDTH = 100
MOSFLM_VERSION = "6.2.6"  # the version of the real logs the output is checked against

CITATIONS = (
    "Leslie, A.G.W. (2006) Acta Cryst. D62, 48-57 (MOSFLM).",
    "Battye, T.G.G., Kontogiannis, L., Johnson, O., Powell, H.R. & Leslie, A.G.W. (2011)",
    "   Acta Cryst. D67, 271-281 (iMosflm).",
    "Steller, I., Bolotovsky, R. & Rossmann, M.G. (1997) J. Appl. Cryst. 30, 1036-1040 (DPS).",
    "Powell, H.R. (1999) Acta Cryst. D55, 1690-1695 (autoindexing in MOSFLM).",
)


class Report:
    """Writes lines to several streams (terminal, log file); each line is flushed.

    Parameters
    ----------
    streams : IO objects with ``write``; ``None`` entries are skipped.
    """

    def __init__(self, *streams: IO[str] | None):
        self.streams: list[IO[str]] = [s for s in streams if s is not None]
        self.log_only: list[IO[str]] = []
        self.warnings: list[str] = []
        self._bar: str | None = None  # progress bar shown on a terminal's stderr

    def add_log(self, stream: IO[str]) -> None:
        """Also write everything to *stream* (the log file)."""
        self.log_only.append(stream)

    def _write(self, text: str, *, terminal: bool = True, log: bool = True) -> None:
        checkpoint()  # a Ctrl-C swallowed inside a library callback stops the run here
        targets = (self.streams if terminal else []) + (self.log_only if log else [])
        bar = self._bar
        if bar is not None and terminal:
            self._draw("")  # take the bar off the terminal line before the text
        for s in targets:
            s.write(text)
            try:
                s.flush()
            except (AttributeError, ValueError):
                pass
        if bar is not None and terminal and text.endswith("\n"):
            self._draw(bar)

    # ------------------------------------------------------------------ progress bar
    def progress(self, done: float, total: int, elapsed: float) -> None:
        """A progress bar on stderr when it is a terminal, redrawn in place.

        Shows the images done (*done* may be fractional: an image half processed), images per
        second and the time left.  Nothing is written when
        stderr is not a terminal (a pipeline's pipe, a file), and the bar never goes to the
        log file or stdout: log lines printed meanwhile erase it first and redraw it after.
        The bar is removed when ``done == total``.
        """
        err = sys.stderr
        if err is None or not getattr(err, "isatty", lambda: False)():
            return
        if done >= total:
            self._draw("")
            self._bar = None
            return
        frac = done / max(total, 1)
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else float("nan")
        eta = f"{left:5.0f} s left" if left == left else "     ? s left"
        width = 30
        self._bar = (f" [{'#' * int(width * frac):<{width}}] {int(done)}/{total} images "
                     f"{rate:5.2f} images/s {eta}")
        self._draw(self._bar)

    def _draw(self, text: str) -> None:
        err = sys.stderr
        try:
            err.write("\r\033[K" + text)
            err.flush()
        except (AttributeError, ValueError, OSError):
            self._bar = None

    def line(self, text: str = "") -> None:
        """One output line (a leading space is MOSFLM's carriage-control column)."""
        self._write(text + "\n")

    def lines(self, texts: Iterable[str]) -> None:
        """Several lines."""
        for t in texts:
            self.line(t)

    def log_only_line(self, text: str) -> None:
        """A line for the log file only (e.g. the typed command in interactive mode)."""
        self._write(text + "\n", terminal=False)

    def raw(self, text: str) -> None:
        """Text without a newline to the terminal only (the prompt)."""
        self._write(text, log=False)

    def echo(self, text: str) -> None:
        """Echo of an input line as MOSFLM prints it: `` ===> line``."""
        self.line(f" ===> {text}")

    def error(self, message: str) -> None:
        """A user-facing error: `` *** message`` (continuation lines indented)."""
        first = True
        for para in message.splitlines() or [""]:
            for piece in textwrap.wrap(para, width=WIDTH - 6, break_on_hyphens=False) or [""]:
                self.line((" *** " if first else "     ") + piece)
                first = False

    def warning(self, text: str, advice: str = "", verbatim: bool = False) -> None:
        """MOSFLM's warning block: blank line, `` ***** WARNING *****``, wrapped text, advice.

        ``verbatim``: *text* is one line as MOSFLM prints it (not wrapped, even when longer
        than the usual width), for lines that drivers match as a whole.
        """
        self.warnings.append(text)
        self.line()
        self.line(" ***** WARNING *****")
        self.lines([" " + text] if verbatim else wrap(text))
        if advice:
            self.lines(wrap(advice))
        self.line()

    def information(self, text: str) -> None:
        """MOSFLM's information block: `` **** Information ****`` and wrapped text."""
        self.line()
        self.line(" **** Information ****")
        self.lines(wrap(text))
        self.line()

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[Any]],
              formats: Sequence[str] | None = None, indent: int = 1) -> None:
        """A fixed-width table; each column as wide as its widest cell (numbers right-aligned)."""
        print_rows = [[_cell(v, formats[i] if formats else "") for i, v in enumerate(r)]
                      for r in rows]
        widths = [len(h) for h in headers]
        for r in print_rows:
            widths = [max(w, len(c)) for w, c in zip(widths, r)]
        pad = " " * indent
        self.line(pad + "  ".join(h.rjust(w) for h, w in zip(headers, widths)))
        for r in print_rows:
            self.line(pad + "  ".join(c.rjust(w) for c, w in zip(r, widths)))

    def banner(self, version: str, now: _dt.datetime | None = None) -> None:
        """The program banner printed at start-up."""
        now = now or _dt.datetime.now()
        stars = " " + "*" * 78
        self.line(stars)
        self.line(" *" + "mosflm-py".center(76) + "*")
        title = f"A Python re-implementation of MOSFLM  version {version}"
        self.line(" *" + title.center(76) + "*")
        # programs that drive ipmosflm probe its first ten lines for "Mosflm version " (CrystFEL's
        # mosflm_probe); the version named is the MOSFLM whose logs the output follows
        self.line(" *" + f"Mosflm version {MOSFLM_VERSION} conventions".center(76) + "*")
        self.line(" *" + f"Run on {now:%d %B %Y} at {now:%H:%M:%S}".center(76) + "*")
        self.line(stars)
        self.line()
        self.line(" Please reference the programs this one re-implements:")
        for c in CITATIONS:
            self.line(f"   {c}")
        self.line()


def wrap(text: str, width: int = WIDTH - 2) -> list[str]:
    """Wrap *text* to MOSFLM-width lines with a leading space; blank lines kept."""
    out: list[str] = []
    for para in text.split("\n"):
        if not para.strip():
            out.append("")
            continue
        out.extend(" " + s for s in textwrap.wrap(para, width=width, break_on_hyphens=False))
    return out


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt:
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def fmt_value(value: Any) -> str:
    """Compact text for a setting value (SHOW): floats with %g, tuples space-separated."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return " ".join(fmt_value(v) if not isinstance(v, tuple) else f"({fmt_value(v)})"
                        for v in value) or "(none)"
    return str(value)
