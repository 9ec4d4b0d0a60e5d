"""The interactive ``MOSFLM => `` shell: a thin line reader around :class:`Session`.

``cmd.Cmd`` provides readline editing and history on a terminal; ``onecmd`` is overridden so that
there is no ``do_*`` dispatch (MOSFLM abbreviations), no ``?``/``!`` aliases and no repetition of
the last command on an empty line. Tab completes keywords, then the keyword's subkeywords.
"""

from __future__ import annotations

import cmd
from pathlib import Path
from typing import IO

from mosflm_py import signals
from mosflm_py.registry import KeywordSpec, match_name
from mosflm_py.session import PROMPT, Outcome, Session

HISTORY_FILE = Path("~/.mosflm_py_history").expanduser()


class MosflmShell(cmd.Cmd):
    """Reads lines at the ``MOSFLM => `` prompt (exactly 10 characters) and hands them on."""

    prompt = PROMPT
    identchars = cmd.Cmd.identchars + "_"

    def __init__(self, session: Session, stdin: IO[str] | None = None,
                 stdout: IO[str] | None = None):
        super().__init__(completekey="tab", stdin=stdin, stdout=stdout)
        self.session = session
        self.use_rawinput = stdin is None

    # no banner, no '?'/'!' aliases, no empty-line repetition
    def emptyline(self) -> bool:
        return False

    def onecmd(self, line: str) -> bool:
        if line == "EOF":
            if self.use_rawinput:
                self.stdout.write("\n")
            return True
        return self.session.execute(line) is Outcome.EXIT

    def precmd(self, line: str) -> str:
        return line

    # ------------------------------------------------------------------ completion
    def completenames(self, text: str, *ignored) -> list[str]:
        t = text.upper()
        return [a + " " for a in self.session.registry.aliases() if a.startswith(t)]

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        words = line.split()
        if not words:
            return []
        try:
            spec: KeywordSpec = self.session.registry.lookup(words[0])
        except Exception:  # noqa: BLE001 - completion must never fail
            return []
        subs = dict(spec.subkeywords)
        # nested subkeywords of the last subkeyword typed (e.g. AUTOINDEX IMAGE 1 PHI)
        for w in words[1:]:
            try:
                _, sub = match_name(w, {**spec.subkeywords}, "subkeyword")
                subs = {**spec.subkeywords, **sub.subkeywords}
            except LookupError:
                continue
        t = text.upper()
        names = sorted({n for s in subs.values() for n in (s.name, *s.synonyms)})
        if spec.name == "HELP":
            names = self.session.registry.aliases()
        return [n + " " for n in names if n.startswith(t)]


def run_interactive(session: Session) -> int:
    """Run the prompt loop on the terminal until EXIT/END/EOF; returns the exit status."""
    try:
        import readline
    except ImportError:  # pragma: no cover - no readline on this platform
        readline = None
    if readline is not None:
        try:
            readline.read_history_file(HISTORY_FILE)
        except OSError:
            pass
        readline.set_completer_delims(" \t,=")
    shell = MosflmShell(session)
    try:
        while True:
            try:
                shell.cmdloop()
                break
            except KeyboardInterrupt:
                signals.clear()
                shell.stdout.write("^C\n")
                session.report.error("Interrupted (type EXIT to leave).")
    finally:
        if readline is not None:
            try:
                readline.set_history_length(1000)
                readline.write_history_file(HISTORY_FILE)
            except OSError:
                pass
    return session.finish()


__all__ = ["MosflmShell", "run_interactive"]
