"""Ctrl-C (SIGINT) and SIGTERM: stop the run cleanly, never half-way through an import.

:func:`install` (called first thing by the command line) replaces Python's handlers:

* SIGINT raises :class:`KeyboardInterrupt` and SIGTERM raises :class:`Terminated` in the main
  thread, so every ``with`` block unwinds: temporary files of atomic writes are removed, worker
  pools are shut down, earlier outputs are left untouched. The command line turns them into one
  `` *** `` line and exit status 130 / 143.
* Inside :func:`deferred` (heavy imports: a C++ extension interrupted while it initialises
  aborts the interpreter) the signal is only recorded and raised when the block ends.
* A signal whose exception was swallowed (numba compiles through ctypes callbacks, which print
  "Exception ignored" and carry on) stays recorded; :func:`checkpoint`, called before outputs
  are written and at every line of output, raises it again.
* Worker processes (``spawn``) call :func:`worker_init`: they ignore SIGINT (the terminal sends
  it to the whole process group; the main process decides) and die quietly on SIGTERM. The main
  process terminates its live workers as soon as it is interrupted, so none is left behind.
* One signal stops the run; a second one (Ctrl-C pressed twice, SIGINT to the group then
  SIGTERM) while the first is unwinding is only recorded, so it cannot cut short the clean-up
  (temporary files removed, workers stopped, the `` *** `` line and the log written).
* When the run is over (end of input, EXIT, or stopped), :func:`ignore` sets both signals to
  ``SIG_IGN`` for the final flush and close and for interpreter shutdown: a signal there would
  otherwise raise in the console-script wrapper or an atexit handler (a traceback) or, once
  CPython has reset Python-level handlers during finalisation, kill the process by the signal.
  ``SIG_IGN`` is the one disposition CPython keeps through finalisation, and nothing is left to
  stop by then: every output is complete.
* After a run stopped by a signal the program leaves with :func:`exit_after_signal`
  (``os._exit``), see there why.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Terminated(BaseException):  # noqa: N818 - named like KeyboardInterrupt
    """SIGTERM received (a BaseException, so ``except Exception`` never swallows it)."""


_main_pid: int | None = None
_pending: int | None = None
_received = False  # a real signal arrived during this run (cleared by install())
_swallowed = False  # the exception of the pending signal was swallowed (ctypes callback ...)
_defer_depth = 0
_held = False  # hold() called, install() not yet


def hold() -> None:
    """Record SIGINT/SIGTERM from the first line of the program until :func:`install`.

    Called by the program's entry module before it imports the command line, so that a Ctrl-C
    while the program loads is not a KeyboardInterrupt traceback from an import: it is kept and
    raised at the first :func:`checkpoint` after :func:`install` (the end of :func:`preload`),
    where the command line turns it into its `` *** `` line. Main thread only.
    """
    global _held, _defer_depth, _main_pid
    if _held:
        return
    _main_pid = os.getpid()
    _held = True
    _defer_depth += 1
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def install() -> None:
    """Install the handlers and the unraisable-exception hook in the main process (idempotent).

    Must be called from the main thread. A signal recorded since :func:`hold` stays pending.
    """
    global _main_pid, _previous_hook, _received, _swallowed, _pending, _held, _defer_depth
    if _held:
        _held = False
        _defer_depth -= 1
    else:
        _pending = None
        _received = False
        _swallowed = False
    _main_pid = os.getpid()
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    if sys.unraisablehook is not _unraisable:
        _previous_hook = sys.unraisablehook
        sys.unraisablehook = _unraisable


def uninstall() -> None:
    """Give back the unraisable-exception hook (the caller restores its signal handlers)."""
    if sys.unraisablehook is _unraisable:
        sys.unraisablehook = _previous_hook


def ignore() -> None:
    """The run is over: ignore SIGINT and SIGTERM from now on (main thread, our handlers only).

    Called when the end of input is reached and when a signal has stopped the run, so that the
    final flush and close of the terminal output and the log, and interpreter shutdown, cannot be
    interrupted (see the module documentation). Every output file is complete or untouched by
    then; the exit status is the run's.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not _handler:  # not run by the command line (a
        return  # library or test using Session): its handlers and its children's are its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def exit_after_signal(status: int, streams=()) -> None:
    """Leave the program at once after a run stopped by a signal: flush *streams* and the
    standard streams, then ``os._exit(status)``.

    Why not a normal interpreter exit: CPython records a KeyboardInterrupt that left code run
    through ``PyRun_*`` (every ``exec`` of a string: dataclasses and namedtuple building their
    methods, numba's generated wrappers), even when our handler caught it further up, and after
    ``python -m mosflm_py`` finalises it then ends the process by SIGINT instead of exiting
    with *status* (``_Py_UnhandledKeyboardInterrupt`` in pythonrun.c/main.c). Which code the
    signal happened to cross is chance, so the status would be too. ``os._exit`` is safe here
    because everything that matters is done before it is called: the interrupted action has
    unwound (temporary files removed by their ``with`` blocks, atomic outputs either renamed
    complete or never), worker processes are terminated and joined (:func:`stop_workers`), the
    `` *** `` line is written and the log is flushed and closed by the command line. mosflm-py
    registers no ``atexit`` handler; the ones libraries register (concurrent.futures and
    multiprocessing joining their workers) have nothing left to join.
    """
    for stream in (*streams, sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    stop_workers()
    os._exit(status)


_previous_hook = sys.unraisablehook


def _unraisable(info) -> None:
    """Our interrupt raised where Python cannot propagate it (weakref and ctypes callbacks,
    ``__del__``): it stays recorded for :func:`checkpoint`; print nothing."""
    global _swallowed
    if _pending is not None and issubclass(info.exc_type, (KeyboardInterrupt, Terminated)):
        _swallowed = True
        return
    _previous_hook(info)


def worker_init() -> None:
    """Signal dispositions for a worker process: ignore SIGINT, default SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(AttributeError, OSError):  # started with SIGINT blocked
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT while worker processes are started.

    A child inherits the blocked mask across fork and exec, so a Ctrl-C that reaches the
    process group while a worker is still importing stays pending in it and is discarded when
    :func:`worker_init` ignores SIGINT (instead of a KeyboardInterrupt traceback from the
    worker's bootstrap). In this process the signal is delivered when the block ends.
    """
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, set())  # the current mask
    except (AttributeError, OSError, ValueError):  # no POSIX masks
        yield
        return
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _exception(signum: int) -> BaseException:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum: int, frame) -> None:
    global _pending, _received, _swallowed
    if _main_pid is not None and os.getpid() != _main_pid:  # a forked child: just stop
        os._exit(EXIT_STATUS.get(signum, 1))
    _received = True
    unwinding = _pending is not None and not _swallowed
    if _pending is None or signum == signal.SIGTERM:
        _pending = signum
    if unwinding:  # the first signal's exception is unwinding: let its clean-up finish
        return
    _swallowed = False
    stop_workers()
    if _defer_depth:
        return
    raise _exception(signum)


def stop_workers() -> None:
    """Terminate the live worker processes of this process (multiprocessing children)."""
    multiprocessing = sys.modules.get("multiprocessing")  # not imported: no workers (and no
    if multiprocessing is None:  # import from a signal handler, which may be inside an import)
        return
    try:
        children = multiprocessing.active_children()
    except Exception:  # noqa: BLE001 - best effort while stopping
        return
    for p in children:
        with contextlib.suppress(Exception):
            p.terminate()
    for p in children:
        with contextlib.suppress(Exception):
            p.join(timeout=2.0)
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.kill()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Record SIGINT/SIGTERM during the block; raise it when the block ends."""
    global _defer_depth
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
    if _defer_depth == 0:
        checkpoint()


def checkpoint() -> None:
    """Raise a recorded signal whose exception has not reached the main loop yet."""
    if _pending is not None and not _defer_depth and os.getpid() == _main_pid:
        raise _exception(_pending)


def received() -> bool:
    """True when SIGINT or SIGTERM reached this process since :func:`install`."""
    return _received


def pending() -> int | None:
    """The signal received (SIGINT or SIGTERM), or None."""
    return _pending


def clear() -> None:
    """Forget a handled SIGINT (interactive prompt: the session goes on)."""
    global _pending, _swallowed
    _pending = None
    _swallowed = False


clear_interrupt = clear


def preload() -> None:
    """Import the heavy extension modules now, where an interrupt is safe (deferred).

    gemmi (nanobind) aborts the interpreter when SIGINT arrives during its initialisation;
    numpy, scipy, h5py and numba are imported here too so that later imports cost nothing.
    """
    with deferred():
        for name in ("numpy", "scipy.optimize", "gemmi", "h5py", "hdf5plugin", "fabio",
                     "numba"):
            with contextlib.suppress(ImportError):
                __import__(name)
