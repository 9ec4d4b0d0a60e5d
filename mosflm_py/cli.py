"""Command line, CCP4 style: ``mosflm-py [LOGICAL file ...] [options] < commands``.

Logical names (any case): HKLOUT, SUMMARY, SPOTOD, COORDS, GENFILE, NEWMAT, MATRIX and LOGFILE
(mosflm-py: name of the ``.lp`` log). CCP4 flags ``-n``, ``-nohtml``, ``-nosummary``, ``-i`` and
``-v <level>`` are accepted. mosflm-py options: ``--nproc N`` (worker processes, same as the
NPROC keyword), ``--nolog`` (no ``.lp`` file), ``--batch`` / ``--interactive`` (force the mode),
``--report[=file.html]`` (QuickScale and an HTML report at the end of every PROCESS run; the
default name is the MTZ's with ``_report.html``).

Keyword input is read from stdin: piped input runs as a batch job (each line echoed as
`` ===> line``, exit status 1 if any line failed); a terminal gives the interactive
``MOSFLM => `` prompt. The whole output is also written, line by line, to
``mosflm_YYYYMMDD_HHMMSS.lp`` in the current directory (as iMosflm's date-stamped log; ``_2``,
``_3`` ... are added when another run of the same second has the name). Ctrl-C and SIGTERM end
the run with one `` *** `` line and exit status 130 / 143 (:mod:`mosflm_py.signals`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from mosflm_py import __version__
from mosflm_py.errors import LogFileError

LOGICAL_NAMES = {
    "HKLOUT": "hklout",
    "SUMMARY": "summary",
    "SPOTOD": "spotod",
    "COORDS": "coords",
    "GENFILE": "genfile",
    "NEWMAT": "newmat",
    "MATRIX": "matrix",
    "LOGFILE": "logfile",
}
CCP4_FLAGS = {"-N", "-NOHTML", "-NOSUMMARY", "-I", "-H"}

USAGE = f"""\
mosflm-py {__version__} - a Python re-implementation of MOSFLM

usage: mosflm-py [HKLOUT file] [SUMMARY file] [SPOTOD file] [COORDS file] [GENFILE file]
                 [NEWMAT file] [MATRIX file] [LOGFILE file]
                 [-n] [-nohtml] [-nosummary] [-i] [-v level] [--nproc N] [--nolog]
                 [--report[=file.html]] [--batch | --interactive] [--help] [--version]
                 < keywords

Keywords are read from standard input: piped input runs as a batch job, a terminal gives
the interactive 'MOSFLM => ' prompt. Type HELP at the prompt for the keywords.
--report: after every PROCESS run, QuickScale (Laue group, scaling, merging statistics,
merged MTZ) and an HTML report with PNG graphs (see HELP QUICKSCALE).
Also installed as 'ipmosflm'; 'python -m mosflm_py' is the same program.
"""


class UsageError(Exception):
    """Bad command line."""


def parse_argv(argv: Sequence[str]) -> dict:
    """Parse the command line into a dict of options and file names.

    Raises
    ------
    UsageError
        Unknown argument, or a logical name/option without its value.
    """
    opts: dict = {"files": {}, "nproc": None, "log": True, "mode": None, "help": False,
                  "version": False, "report": None}
    args = list(argv)
    i = 0
    while i < len(args):
        a = args[i]
        up = a.upper()
        if "=" in a and up.split("=", 1)[0] in LOGICAL_NAMES:
            name, value = a.split("=", 1)
            opts["files"][LOGICAL_NAMES[name.upper()]] = value
        elif up in LOGICAL_NAMES:
            if i + 1 >= len(args):
                raise UsageError(f"logical name {up} needs a file name after it")
            opts["files"][LOGICAL_NAMES[up]] = args[i + 1]
            i += 1
        elif a in ("--help", "-help", "-h"):
            opts["help"] = True
        elif a in ("--version", "-version", "-V"):
            opts["version"] = True
        elif up in CCP4_FLAGS:
            pass
        elif a == "-v":
            i += 1  # CCP4 verbosity level: accepted, ignored
        elif a == "--nproc" or a.startswith("--nproc="):
            value = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            if "=" not in a:
                i += 1
            try:
                opts["nproc"] = int(value)
                if opts["nproc"] < 1:
                    raise ValueError
            except ValueError:
                raise UsageError(f"--nproc needs a positive whole number, not '{value}'") from None
        elif a == "--report" or a.startswith("--report="):
            opts["report"] = a.split("=", 1)[1] if "=" in a else ""
        elif a == "--nolog":
            opts["log"] = False
        elif a in ("--batch", "--interactive"):
            opts["mode"] = a[2:]
        else:
            raise UsageError(f"unknown argument '{a}' (logical names are "
                             f"{', '.join(LOGICAL_NAMES)}; see --help)")
        i += 1
    return opts


def default_logfile(now: _dt.datetime | None = None) -> str:
    """Date-stamped log name in the current directory: ``mosflm_YYYYMMDD_HHMMSS.lp``."""
    now = now or _dt.datetime.now()
    return f"mosflm_{now:%Y%m%d_%H%M%S}.lp"


def open_new_log(name: str | None = None) -> tuple[IO[str], str]:
    """Open the log file; a date-stamped name is never shared by two runs.

    With no *name*, ``mosflm_YYYYMMDD_HHMMSS.lp`` is created exclusively; when another run of
    the same second has it, ``mosflm_YYYYMMDD_HHMMSS_2.lp``, ``_3`` ... are tried. A name given
    with LOGFILE is opened as given (truncated).

    Raises
    ------
    OSError
        The file cannot be created.
    """
    if name is not None:
        if "\0" in name or not name.strip():
            raise OSError(f"invalid file name {name!r}")
        if os.path.isdir(name):
            raise IsADirectoryError(21, "it is a folder", name)
        return open(name, "w", encoding="utf-8", buffering=1), name  # noqa: SIM115
    stem = default_logfile()[:-3]
    for k in range(1, 1000):
        candidate = f"{stem}.lp" if k == 1 else f"{stem}_{k}.lp"
        try:
            return open(candidate, "x", encoding="utf-8", buffering=1), candidate  # noqa: SIM115
        except FileExistsError:
            continue
    raise FileExistsError(17, "too many logs with the same time stamp", f"{stem}.lp")


class _LogFile:
    """The log file, whose write errors (disk full) name the file.

    A write error of a plain file object does not say which file failed; the terminal and the
    log are written line by line side by side, so the message must tell them apart.
    """

    def __init__(self, fh: IO[str], name: str) -> None:
        self._fh = fh
        self.name = name

    def _failed(self, err: OSError) -> LogFileError:
        return LogFileError(err.errno, err.strerror or str(err), self.name)

    def write(self, text: str) -> int:
        try:
            return self._fh.write(text)
        except OSError as err:
            raise self._failed(err) from None

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as err:
            raise self._failed(err) from None

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as err:
            raise self._failed(err) from None

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._fh, attr)


def main(argv: Sequence[str] | None = None, stdin: IO[str] | None = None,
         stdout: IO[str] | None = None) -> int:
    """Entry point of ``mosflm-py`` / ``ipmosflm`` / ``python -m mosflm_py``.

    Returns
    -------
    int
        0 when every input line and action succeeded, 1 otherwise, 2 for a bad command line,
        130 after Ctrl-C (SIGINT), 143 after SIGTERM.
    """
    import signal
    import threading

    from mosflm_py import signals

    handlers = None
    if threading.current_thread() is threading.main_thread():
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        signals.install()
    program = argv is None and stdout is None  # the command itself, not a caller or a test
    status = 1
    try:
        status = _main(argv, stdin, stdout)
        return status
    finally:
        if handlers is not None:
            stopped = signals.received()
            if program:
                # The run is over: a late signal must not interrupt interpreter shutdown
                # (see signals.ignore); the exit status is the run's.
                signals.ignore()
            else:
                signal.signal(signal.SIGINT, handlers[0])
                signal.signal(signal.SIGTERM, handlers[1])
                signals.uninstall()
            signals.clear()
            if stopped and program:
                signals.exit_after_signal(status)


def _interrupted(exc: BaseException, report_stream: IO[str] | None, log: IO[str] | None) -> int:
    """One ` *** ` line for Ctrl-C / SIGTERM; the exit status (130 / 143)."""
    from mosflm_py import signals

    signals.ignore()  # one *** line: a further signal must not interrupt writing it
    signals.clear()
    signals.stop_workers()
    term = isinstance(exc, signals.Terminated)
    what = "Terminated (SIGTERM): the run was terminated" if term else \
        "Interrupted (Ctrl-C): the run was interrupted"
    text = f" *** {what}; earlier output files are untouched.\n"
    for stream in (report_stream, log):
        if stream is None:
            continue
        try:
            stream.write("\n" + text)
            stream.flush()
        except (OSError, ValueError):
            pass
    return 143 if term else 130


def _main(argv: Sequence[str] | None, stdin: IO[str] | None, stdout: IO[str] | None) -> int:
    from mosflm_py import signals

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    logs: list[IO[str]] = []  # the log file, once _run has opened it
    try:
        return _run(argv, stdin, stdout, logs)
    except (KeyboardInterrupt, signals.Terminated) as exc:
        return _interrupted(exc, stdout, logs[0] if logs else None)
    except BrokenPipeError:  # output piped into e.g. head
        _silence_stdout()
        return 1
    except LogFileError as err:  # the log cannot be written (disk full): say so on the terminal
        text = f" *** Cannot write the log file {err.filename}: {err.strerror or err}.\n"
        try:
            stdout.write("\n" + text)
            stdout.flush()
        except (OSError, ValueError):
            _silence_stdout()
            with contextlib.suppress(Exception):
                sys.stderr.write(text)
        return 1
    except OSError as err:  # terminal output cannot be written (disk full)
        _silence_stdout()
        with contextlib.suppress(Exception):
            sys.stderr.write(f"mosflm-py: cannot write the output: {err.strerror or err}\n")
        return 1
    finally:
        for log in logs:
            with contextlib.suppress(OSError):
                log.close()
        try:
            stdout.flush()
        except (OSError, ValueError):
            _silence_stdout()


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null so the interpreter's final flush cannot fail."""
    if sys.stdout is not sys.__stdout__:  # called from a test or an embedding program
        return
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def _run(argv: Sequence[str] | None, stdin: IO[str] | None, stdout: IO[str],
         logs: list[IO[str]]) -> int:
    from mosflm_py import signals

    # the program's own modules import gemmi, numpy and numba: a signal there is only recorded
    # (a C++ extension interrupted while it initialises aborts the interpreter) and raised
    # when the imports are done
    with signals.deferred():
        from mosflm_py.errors import MosflmError
        from mosflm_py.session import Outcome, Session, replace_files
        from mosflm_py.state import State, apply_setting

    if stdin is None or getattr(stdin, "closed", False):
        sys.stderr.write("mosflm-py: standard input is closed: there are no keywords to read "
                         "(pipe a command file into mosflm-py, or run it in a terminal)\n")
        return 2
    if hasattr(stdin, "reconfigure"):
        try:  # a stray non-UTF-8 byte must not stop the run; CR-only lines are lines too
            stdin.reconfigure(errors="replace", newline=None)
        except (ValueError, OSError):  # pragma: no cover
            pass
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = parse_argv(argv)
    except UsageError as err:
        sys.stderr.write(f"mosflm-py: {err}\n")
        return 2
    if opts["help"]:
        stdout.write(USAGE)
        return 0
    if opts["version"]:
        stdout.write(f"mosflm-py {__version__}\n")
        return 0
    for name, value in opts["files"].items():
        if "\0" in value or not value.strip():
            sys.stderr.write(f"mosflm-py: logical name {name.upper()} needs a file name, not "
                             f"{value!r}\n")
            return 2
    if opts["mode"] is None:
        try:
            interactive = stdin.isatty() if hasattr(stdin, "isatty") else False
        except (ValueError, OSError):
            interactive = False
    else:
        interactive = opts["mode"] == "interactive"
    signals.preload()

    state = replace_files(State(), **opts["files"])
    if opts["nproc"]:
        state = apply_setting(state, "integration.nproc", opts["nproc"])
    if opts["report"] is not None:
        state = apply_setting(state, "quickscale.auto", True)
        state = apply_setting(state, "quickscale.report", opts["report"])
    log = None
    if opts["log"]:
        try:
            log, logname = open_new_log(opts["files"].get("logfile"))
        except OSError as err:
            name = opts["files"].get("logfile") or default_logfile()
            sys.stderr.write(f"mosflm-py: cannot write the log file {name}: "
                             f"{err.strerror or err}\n")
            return 2
        log = _LogFile(log, logname)
        logs.append(log)
        state = apply_setting(state, "files.logfile", logname)
    session = Session(out=stdout, interactive=interactive, log=log, state=state)
    session.report.banner(__version__)
    for name, value in opts["files"].items():
        session.report.line(f" Logical name: {name.upper()}, Filename: {value}")
    if state.files.matrix:
        try:
            from mosflm_py.actions.images import on_matrix

            on_matrix(session, None)  # type: ignore[arg-type]
        except MosflmError as err:
            session.failures += 1
            session.report.error(str(err))
    if interactive:
        from mosflm_py.repl import MosflmShell, run_interactive

        if stdin is sys.stdin:
            status = run_interactive(session)
            signals.ignore()
            return status
        shell = MosflmShell(session, stdin=stdin, stdout=stdout)
        shell.cmdloop()
        signals.ignore()  # the end of input: what is left cannot be interrupted (signals.ignore)
        return session.finish()
    for line in stdin:
        if session.execute(line) is Outcome.EXIT:
            break
    signals.ignore()  # the end of input: what is left cannot be interrupted (signals.ignore)
    return session.finish()
