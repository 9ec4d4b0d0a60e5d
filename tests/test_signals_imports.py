"""A signal while the program imports its own modules (gemmi, numba ...) is held until the
imports are done: a C++ extension (gemmi's nanobind) interrupted while it initialises aborts the
interpreter ("terminate called after throwing an instance of 'nanobind::python_error'", status
-6), which a loaded machine hit with SIGTERM 0.5 s after start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import builtins, io, os, signal, sys
from mosflm_py import signals
signals.hold()
from mosflm_py import cli
assert "gemmi" not in sys.modules
real_import = builtins.__import__
sent = []
def hooked(name, *args, **kwargs):
    if name == "gemmi" and not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, before gemmi loads
    return real_import(name, *args, **kwargs)
builtins.__import__ = hooked
out = io.StringIO()
status = cli.main([], io.StringIO("TITLE signal test\nEND\n"), out)
builtins.__import__ = real_import
print("STATUS", status, "SENT", len(sent), "GEMMI", "gemmi" in sys.modules
      and hasattr(sys.modules["gemmi"], "Mtz"))
print(out.getvalue())
"""


def test_sigterm_during_the_program_imports_waits_for_them():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=env, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    first = r.stdout.splitlines()[0]
    # the signal was sent at the gemmi import, gemmi was still imported whole, and the run
    # then stopped with SIGTERM's status and its one *** line
    assert first == "STATUS 143 SENT 1 GEMMI True", r.stdout + r.stderr
    assert "*** Terminated (SIGTERM)" in r.stdout
