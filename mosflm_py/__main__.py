"""The program: ``mosflm-py`` / ``ipmosflm`` (console scripts) and ``python -m mosflm_py``.

The first line records Ctrl-C and SIGTERM (:func:`mosflm_py.signals.hold`) so that a signal
while the program loads ends the run with the command line's `` *** `` line and exit status
130 / 143, not a KeyboardInterrupt traceback from an import. Only a signal during the
interpreter's own start-up, before this line, is handled by Python's defaults.
"""

from mosflm_py import signals

signals.hold()

from mosflm_py.cli import main  # noqa: E402 - after hold(), on purpose

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
