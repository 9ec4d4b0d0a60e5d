"""The MOSFLM command session: keyword lines in, state changes, queued jobs and output.

``Session(out=sys.stdout, interactive=False).execute(line)`` takes one physical input line and
returns :class:`Outcome` (``CONTINUE`` or ``EXIT``). Settings take effect immediately; action
keywords queue a :class:`Job` that ``GO`` (or ``RUN``) executes.

Handler protocol (for the engineers writing ``mosflm_py/actions/*.py``)
--------------------------------------------------------------------------
An action keyword's TOML names its handler, e.g. ``handler = "mosflm_py.actions.autoindex:run"``
(a subkeyword may name its own: ``MOSAIC ESTIMATE`` -> ``mosflm_py.actions.mosaic:estimate``).
At ``GO``/``RUN`` the session calls, in queue order::

    handler(session: Session, job: Job) -> None

``job`` (:class:`Job`) contains

* ``job.keyword`` - canonical keyword name (``"AUTOINDEX"``),
* ``job.records`` - the parsed :class:`~mosflm_py.registry.Record` of every input line that
  built the job (several ``AUTOINDEX ... IMAGE n`` lines accumulate into one job; ``job.record``
  is the first). A record offers ``rec.get("first")`` (positional values by name, defaults
  applied), ``rec.has("REFINE")``, ``rec.sub("THRESHOLD").get("value")``, ``rec.all("IMAGE")``
  (each a :class:`~mosflm_py.registry.SubValue` with ``.values`` and nested ``.subs``, e.g.
  ``img.get("n")``, ``img.sub("PHI").get("start")``),
* ``job.state`` - the :class:`~mosflm_py.state.State` when the job was queued (settings given
  after the action line but before GO are in ``session.state``; use that normally).

``session`` offers

* ``session.state`` - the user's settings (:mod:`mosflm_py.state`), as typed: a result is never
  written into them (``session.set(path, value)`` is for the user's own input only, e.g. a
  TEMPLATE file name split into TEMPLATE and DIRECTORY);
* ``session.results`` - the experiment model
  (:class:`mosflm_py.experiment_model.ExperimentModel`): everything the program found, typed
  (image sectors, spots, indexing, the current crystal, refined beam and distance, RASTER,
  SEPARATION, ...), each value found with its step and the settings' clock then;
* ``session.effective`` - the settings a step works with: the user's settings with the values
  found applied by MOSFLM's precedence (:func:`mosflm_py.experiment_model.effective`: a keyword
  typed after a value was found wins over it);
* ``session.report`` - :class:`~mosflm_py.report.Report` (``line``, ``lines``, ``warning``,
  ``information``, ``table``, ``error``); all output goes there (terminal + log file);
* ``session.images()`` - the current :class:`mosflm_py.imageio.series.ImageSeries` (resolved
  from TEMPLATE/DIRECTORY/EXTENSION on first use, with the summary printed);
  ``session.geometry(n)`` - :class:`mosflm_py.image_geometry.EffectiveGeometry` for image *n*
  (header merged with the effective settings, keywords win, WARNING on disagreement; its
  ``beam``, ``detector`` and ``goniometer`` are the models every algorithm uses);
* ``session.files`` - shortcut for ``session.state.files`` (HKLOUT, SUMMARY, NEWMAT, ...);
* ``session.nproc`` - number of worker processes to use (NPROC keyword / ``--nproc``).

A handler reports a user-caused failure by raising a :class:`~mosflm_py.errors.MosflmError`
subclass with a complete message; the session prints it as `` *** message``, counts a failure and
abandons the remaining queued jobs. Any other exception is caught too and reported as an internal
error with a request to report the bug. A handler whose module or function does not exist yet
gives `` *** AUTOINDEX is not implemented yet in mosflm-py``.

Control keywords (GO, EXIT, HELP, SHOW, HEADER ...) run immediately with
``handler(session, record) -> Outcome | None``. Setting keywords may name ``effect`` hooks with the
same signature, run right after the state update (e.g. reading a MATRIX file).
"""

from __future__ import annotations

import enum
import logging
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mosflm_py.atomic import check_output_folder, check_output_path
from mosflm_py.errors import (
    GeometryError,
    KeywordError,
    LogFileError,
    MosflmError,
    NotImplementedYet,
)
from mosflm_py.experiment_model import ExperimentModel, effective_settings
from mosflm_py.image_geometry import EffectiveGeometry, experiment_from, header_warnings
from mosflm_py.lexer import LineJoiner, Token, UnterminatedQuote, include_path
from mosflm_py.output.mosflm_log import FAILURE
from mosflm_py.registry import Record, Registry, default_registry, resolve_hook
from mosflm_py.report import Report
from mosflm_py.setters import apply_record
from mosflm_py.signals import checkpoint, clear_interrupt, pending
from mosflm_py.state import State, apply_setting, get_setting

log = logging.getLogger(__name__)

MAX_INCLUDE_DEPTH = 10
SERIES_HOOK = "mosflm_py.actions.images:current_series"
"""Resolves TEMPLATE/DIRECTORY/EXTENSION into the current image series (printing its summary)."""
PROMPT = "MOSFLM => "


class Outcome(enum.Enum):
    """What the caller should do after a line: read more input or stop."""

    CONTINUE = "continue"
    EXIT = "exit"


@dataclass
class Job:
    """A queued action: the keyword, its handler and the records (input lines) that built it."""

    keyword: str
    handler: str
    records: list[Record]
    state: State

    @property
    def record(self) -> Record:
        """The first record of the job."""
        return self.records[0]


Results = ExperimentModel
"""What the program found (the experiment model); the name the handlers have always used."""


class Session:
    """One MOSFLM run: state, results, pending jobs and output.

    Parameters
    ----------
    out : text stream for terminal output (default: none, log only).
    interactive : True when a person types at the ``MOSFLM => `` prompt.
    log : optional extra stream receiving all output (the ``.lp`` log file); in interactive mode
        the typed line is written to it as ``MOSFLM => line``.
    registry : keyword registry (default: the installed ``keywords/``).
    state : initial state (e.g. with command-line file names).
    """

    def __init__(self, out: IO[str] | None = None, interactive: bool = False,
                 log: IO[str] | None = None, registry: Registry | None = None,
                 state: State | None = None):
        self.report = Report(out)
        if log is not None:
            self.report.add_log(log)
        self.interactive = interactive
        self.registry = registry or default_registry()
        self.state = state or State()
        self.results = ExperimentModel()
        self._effective: tuple[tuple[Any, ...], State] | None = None
        self.pending: list[Job] = []
        self.failures = 0
        self.finished = False
        self._joiner = LineJoiner()
        self._lineno: dict[str, int] = {}
        self._include_depth = 0
        self._warned: set[Any] = set()

    # ---------------------------------------------------------------- conveniences for handlers
    @property
    def files(self):
        """The file-name settings (``state.files``)."""
        return self.state.files

    @property
    def nproc(self) -> int:
        """Worker processes to use: NPROC keyword, else the number of CPUs."""
        return self.state.integration.nproc or max(1, os.cpu_count() or 1)

    def set(self, path: str, value: Any) -> None:
        """Store the user's own *value* at dotted *path* of the settings (never a result)."""
        self.state = apply_setting(self.state, path, value)

    def get(self, path: str) -> Any:
        """The user's setting at dotted *path*."""
        return get_setting(self.state, path)

    @property
    def effective(self) -> State:
        """The settings a step works with: the user's, with the values the program found
        applied (:func:`mosflm_py.experiment_model.effective_settings`)."""
        found = tuple(self.results.found_settings().values())
        key = (self.state, *found)
        if self._effective is None or len(self._effective[0]) != len(key) or any(
                a is not b for a, b in zip(self._effective[0], key)):
            self._effective = (key, effective_settings(self.state, self.results))
        return self._effective[1]

    def warn_once(self, key: Any, text: str, advice: str = "", verbatim: bool = False) -> None:
        """Print a WARNING block unless one with the same *key* was already printed."""
        if key in self._warned:
            return
        self._warned.add(key)
        self.report.warning(text, advice, verbatim=verbatim)

    def images(self):
        """The current image series (resolved on first use); see :mod:`mosflm_py.actions.images`.

        The series and its sectors are the image keywords' business: the session reaches that
        code through its hook name, as it reaches every keyword's handler.
        """
        return resolve_hook(SERIES_HOOK)(self)

    def geometry(self, image_number: int, header: Any = None) -> EffectiveGeometry:
        """Effective geometry of image *image_number* (header merged with keywords).

        :func:`mosflm_py.image_geometry.experiment_from` does the merge; its warnings (a keyword
        disagreeing with the header, no beam position) are printed once each.

        Raises
        ------
        ImageError
            The image cannot be read.
        GeometryError
            A value needed is neither in the header nor given by a keyword.
        """
        if header is None:
            header = self.images().header(image_number)
        try:
            geometry, notices = experiment_from(self.effective, header, image_number,
                                                user=self.state)
        except GeometryError:
            self.warn_header(header)  # printed before the error
            raise
        self._warn_notices(notices)
        return geometry

    def warn_header(self, header: Any) -> None:
        """Print MOSFLM's WARNING (once) for every user keyword that disagrees with *header*."""
        self._warn_notices(header_warnings(self.state, header))

    def _warn_notices(self, notices: Iterable[Any]) -> None:
        for notice in notices:
            self.warn_once(notice.key, notice.text, notice.advice, verbatim=notice.verbatim)

    # ---------------------------------------------------------------- input
    def run_lines(self, lines: Iterable[str], source: str = "stdin") -> Outcome:
        """Execute lines until EXIT or the end; returns the last outcome."""
        for line in lines:
            if self.execute(line, source=source) is Outcome.EXIT:
                return Outcome.EXIT
        return Outcome.CONTINUE

    def execute(self, line: str, source: str = "stdin") -> Outcome:
        """Process one physical input line (echo, continuation, ``@file``, keyword).

        Never raises for user errors: they are printed as `` *** ...`` and counted in
        ``self.failures``.
        """
        checkpoint()
        line = line.rstrip("\r\n")
        lineno = self._lineno[source] = self._lineno.get(source, 0) + 1
        if self.interactive and self._include_depth == 0:
            self.report.log_only_line(PROMPT + line)
        else:
            self.report.echo(line)
        try:
            assembled = self._joiner.feed(line)
        except UnterminatedQuote as err:
            self._joiner.reset()
            return self._fail(KeywordError(str(err)), line, lineno, source)
        if assembled is None:
            return Outcome.CONTINUE
        tokens, text = assembled
        if not tokens:
            return Outcome.CONTINUE
        inc = include_path(tokens)
        if inc is not None:
            return self._include(inc, line, lineno, source)
        return self.execute_tokens(tokens, text, lineno, source)

    def _include(self, path: str, line: str, lineno: int, source: str) -> Outcome:
        if not path:
            err = KeywordError("@ must be followed by a file name")
            return self._fail(err, line, lineno, source)
        if self._include_depth >= MAX_INCLUDE_DEPTH:
            return self._fail(KeywordError(f"@{path}: includes nested more than "
                                           f"{MAX_INCLUDE_DEPTH} deep"), line, lineno, source)
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
        except (OSError, RuntimeError, ValueError) as err:  # no such user (~x), NUL byte
            reason = getattr(err, "strerror", None) or str(err)
            return self._fail(KeywordError(f"cannot read the command file @{path}: {reason}"),
                              line, lineno, source)
        self._include_depth += 1
        try:
            for sub in text.splitlines():
                if self.execute(sub, source=path) is Outcome.EXIT:
                    return Outcome.EXIT
            self._unfinished(path)
        finally:
            self._include_depth -= 1
            self._lineno.pop(path, None)
        return Outcome.CONTINUE

    def execute_tokens(self, tokens: list[Token], text: str, lineno: int | None = None,
                       source: str = "stdin") -> Outcome:
        """Parse and execute one logical record."""
        try:
            record = self.registry.parse(tokens, text, lineno, source)
            return self._dispatch(record) or Outcome.CONTINUE
        except MosflmError as err:
            return self._fail(err, text, lineno, source)
        except LogFileError:  # the log cannot be written: the run ends (cli reports it)
            raise
        except Exception as err:  # noqa: BLE001 - never a traceback for the user
            checkpoint()
            log.debug("internal error", exc_info=True)
            self._debug_traceback()
            msg = (f"Internal error in mosflm-py ({type(err).__name__}: {err}).\n"
                   "Please report this bug with your input to the mosflm-py developers.")
            return self._fail(MosflmError(msg), text, lineno, source)

    def _debug_traceback(self) -> None:
        for s in self.report.log_only:
            s.write("".join(traceback.format_exc()))

    def _fail(self, err: MosflmError, text: str, lineno: int | None, source: str) -> Outcome:
        self.failures += 1
        if self.interactive and self._include_depth == 0:
            self.report.error(str(err))
        else:
            where = f"line {lineno}" if lineno is not None else "input"
            if source not in ("stdin", "", None):
                where += f" of {source}"
            self.report.error(f"Error in {where} ({text.strip()}):\n{err}")
        return Outcome.CONTINUE

    # ---------------------------------------------------------------- dispatch
    def _dispatch(self, record: Record) -> Outcome | None:
        spec = record.spec
        if spec.kind == "control":
            assert spec.handler, f"{spec.name}: control keyword without handler"
            return self._call(spec.name, spec.handler, record)
        if spec.kind == "setting" and not spec.implemented:
            # nothing would read the value: say so rather than accept it silently
            raise NotImplementedYet(f"{spec.name} is not implemented yet in mosflm-py")
        before = self.state
        self.state = apply_record(self.state, record)
        if record.is_action:
            self._queue(record)
        elif spec.effect:
            try:
                return self._call(spec.name, spec.effect, record)
            except BaseException:
                self.state = before  # a failed line leaves the settings as they were
                raise
        return None

    def _queue(self, record: Record) -> None:
        handler = record.handler
        assert handler is not None
        keyword = record.keyword
        if record.spec.kind == "setting":  # e.g. MOSAIC ESTIMATE, FINDSPOTS FIND
            keyword = f"{keyword} {next(s.name for s in record.subs if _sub_handler(record, s))}"
        last = self.pending[-1] if self.pending else None
        if last and record.spec.accumulate and last.keyword == keyword:
            last.records.append(record)
        else:
            self.pending.append(Job(keyword, handler, [record], self.state))

    def _call(self, name: str, hook: str, arg: Any) -> Outcome | None:
        spec = getattr(arg, "spec", None)
        func = _resolve_handler(name, hook, getattr(spec, "implemented", True))
        return func(self, arg)

    def run_pending(self) -> None:
        """Execute the queued jobs in order (GO / RUN). Stops at the first failure."""
        jobs, self.pending = self.pending, []
        if not jobs:
            self.report.line(" No action is pending: GO/RUN has nothing to do "
                             "(give AUTOINDEX, PROCESS, ... first).")
            return
        for k, job in enumerate(jobs):
            try:
                for check in job.record.spec.checks:
                    resolve_hook(check)(self, job)
                self._check_outputs(job)
                func = _resolve_handler(job.keyword, job.handler,
                                        job.record.spec.implemented)
                func(self, job)
            except MosflmError as err:
                if pending() and not self.interactive:
                    checkpoint()
                if isinstance(err.__context__, KeyboardInterrupt) or pending():
                    if not self.interactive:  # a batch run stops: one *** line, exit 130/143
                        checkpoint()
                        raise KeyboardInterrupt from None
                    clear_interrupt()

                self.failures += 1
                self.report.lines(FAILURE)  # MOSFLM's words, which drivers look for
                self.report.error(f"{err}{_origin(job)}")
                if rest := jobs[k + 1:]:
                    names = ", ".join(j.keyword for j in rest)
                    self.report.error(f"Because {job.keyword} failed, {names} was not run.")
                return
            except LogFileError:  # the log cannot be written: the run ends (cli reports it)
                raise
            except OSError as err:  # the system refused: disk full, permissions, I/O error
                checkpoint()  # workers stopped by an interrupt: report the interrupt only
                self.failures += 1
                name = f" ({err.filename})" if getattr(err, "filename", None) else ""
                self.report.error(f"{job.keyword} failed: {err.strerror or err}{name}; no output "
                                  f"file was replaced.{_origin(job)}")
                return
            except Exception as err:  # noqa: BLE001
                checkpoint()  # e.g. BrokenProcessPool after an interrupt stopped the workers
                log.debug("internal error in %s", job.keyword, exc_info=True)
                self._debug_traceback()
                self.failures += 1
                self.report.error(
                    f"Internal error in mosflm-py while running {job.keyword} "
                    f"({type(err).__name__}: {err}).{_origin(job)}\n"
                    "Please report this bug with your input to the mosflm-py developers.")
                return

    def _check_outputs(self, job: Job) -> None:
        """Every output file the job writes (``writes`` in its keyword file) can be written."""
        named: list[tuple[str, str]] = []
        for rec in job.records:
            for path in rec.writes:
                if path[0].isupper():  # SUB.arg: a file named on the action line itself
                    sub, _, arg = path.partition(".")
                    named += [(path, sv.get(arg)) for sv in rec.all(sub) if sv.get(arg)]
                else:  # a setting (state path)
                    named.append((path, get_setting(self.state, path)))
        for path, name in dict.fromkeys(named):
            if name is None:
                continue
            what = path.split(".")[0] if path[0].isupper() else path.rsplit(".", 1)[-1].upper()
            if path.endswith("directory"):
                check_output_folder(str(name), f"{what} folder")
            else:
                check_output_path(str(name), f"{what} file")

    def _unfinished(self, source: str) -> None:
        """The input ended inside a continued record: an error, the record is not run."""
        if self._joiner.pending:
            lineno = self._lineno.get(source, 0)
            text = self._joiner.pending_text
            self._joiner.reset()
            self._fail(KeywordError("the input ends with a continuation mark (-, & or \\): the "
                                    "last record is incomplete and was not run"),
                       text, lineno, source)

    def finish(self) -> int:
        """End of input: warn about jobs never started; return the exit status (0 = no errors)."""
        if not self.finished:
            self._unfinished("stdin")
            self.finished = True
            if self.pending:
                names = ", ".join(j.keyword for j in self.pending)
                self.report.warning(f"{names} was given but never run: GO or RUN is needed to "
                                    "start queued actions.")
                self.pending = []
            if self.failures:
                self.report.line(f" mosflm-py: {self.failures} input error(s) or failure(s); "
                                 "see the *** messages above.")
        return 1 if self.failures else 0


def _origin(job: Job) -> str:
    """`` (PROCESS 1 10, input line 7)``: where the failed job was given."""
    rec = job.record
    if rec.lineno is None:
        return ""
    where = f"line {rec.lineno}" + (f" of {rec.source}" if rec.source not in
                                    ("stdin", "", None) else "")
    return f"\n(job {rec.text.strip()} given in input {where})"


def _sub_handler(record: Record, sub) -> bool:
    spec = record.spec.subkeywords.get(sub.name)
    return bool(spec and spec.handler)


def _resolve_handler(keyword: str, hook: str, implemented: bool = True):
    """The handler function of *hook*, or :class:`NotImplementedYet` for a keyword that its
    ``keywords/*.toml`` declares ``implemented = false``.

    A hook that does not resolve for a keyword declared implemented is a bug, not a missing
    feature: the ImportError/AttributeError propagates (``tests/test_handlers.py`` imports
    every declared hook, so such a typo fails the suite).
    """
    if not implemented:
        raise NotImplementedYet(f"{keyword} is not implemented yet in mosflm-py")
    return resolve_hook(hook)


def replace_files(state: State, **files: str | None) -> State:
    """State with file names set (command-line logical names); None values are skipped."""
    for name, value in files.items():
        if value is not None:
            state = apply_setting(state, f"files.{name}", value)
    return state


__all__ = ["Job", "Outcome", "PROMPT", "Results", "Session", "apply_record", "replace_files"]
