"""Command line (CCP4 logical names, flags, exit status, log file) and the interactive prompt."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mosflm_py import __version__
from mosflm_py.cli import default_logfile, main, parse_argv
from mosflm_py.repl import MosflmShell
from mosflm_py.session import PROMPT, Session


def run_main(argv, script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    rc = main(argv, stdin=io.StringIO(script), stdout=out)
    return rc, out.getvalue()


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mosflm-py {__version__}"
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "HKLOUT" in text and "SUMMARY" in text and "MOSFLM => " in text


@pytest.mark.parametrize("argv", [["--bogus"], ["HKLOUT"], ["--nproc", "zero"]])
def test_bad_command_line(argv, capsys):
    assert main(argv, stdin=io.StringIO("")) == 2
    assert "mosflm-py:" in capsys.readouterr().err


def test_logical_names_any_case_and_ccp4_flags():
    opts = parse_argv(["hklout", "x.mtz", "SUMMARY", "s.sum", "Spotod", "a.spt", "COORDS", "c",
                       "GENFILE", "g.gen", "newmat", "n.mat", "MATRIX=m.mat", "-n", "-nohtml",
                       "-nosummary", "-i", "-v", "3", "--nproc", "2"])
    assert opts["files"] == {"hklout": "x.mtz", "summary": "s.sum", "spotod": "a.spt",
                             "coords": "c", "genfile": "g.gen", "newmat": "n.mat",
                             "matrix": "m.mat"}
    assert opts["nproc"] == 2


def test_batch_run_with_logical_names_and_log_file(tmp_path, monkeypatch):
    rc, text = run_main(["HKLOUT", "x.mtz", "summary", "s.sum", "--nproc", "2"],
                        "SHOW\nDISTANCE 100\nEXIT\n", tmp_path, monkeypatch)
    assert rc == 0
    assert " Logical name: HKLOUT, Filename: x.mtz" in text
    assert "files.hklout" in text and "files.summary" in text and "integration.nproc" in text
    assert "Leslie" in text and "Steller" in text and "Battye" in text  # banner citations
    logs = list(tmp_path.glob("mosflm_*.lp"))
    assert len(logs) == 1
    assert logs[0].read_text() == text  # the log holds the whole output
    assert len(logs[0].name) == len(default_logfile())


def test_batch_errors_give_nonzero_exit_but_run_on(tmp_path, monkeypatch):
    rc, text = run_main(["--nolog"], "DISTANCE abc\nDISTANCE 100\nSHOW\n", tmp_path,
                        monkeypatch)
    assert rc == 1
    assert " *** Error in line 1 (DISTANCE abc):" in text
    assert "detector.distance  100" in text
    assert not list(tmp_path.glob("*.lp"))


def test_logfile_logical_name(tmp_path, monkeypatch):
    rc, _ = run_main(["LOGFILE", "run1.lp"], "EXIT\n", tmp_path, monkeypatch)
    assert rc == 0 and "Normal termination" in (tmp_path / "run1.lp").read_text()


def test_missing_matrix_on_command_line(tmp_path, monkeypatch):
    rc, text = run_main(["MATRIX", "none.mat", "--nolog"], "EXIT\n", tmp_path, monkeypatch)
    assert rc == 1 and "none.mat does not exist" in text


def test_python_dash_m_piped(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "mosflm_py", "--nolog"], input="DIST 100\nbad\n",
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert p.returncode == 1
    assert " ===> DIST 100" in p.stdout and "unknown keyword bad" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-m", "mosflm_py", "--nolog"], input="DIST 100\nEND\n",
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert p.returncode == 0


def test_shell_with_injected_streams():
    out = io.StringIO()
    s = Session(out=out, interactive=True)
    shell = MosflmShell(s, stdin=io.StringIO("DIST 100\n\nbogus\nEXIT\nDIST 1\n"), stdout=out)
    shell.cmdloop()
    assert s.state.detector.distance == 100.0 and s.failures == 1
    assert " *** unknown keyword bogus" in out.getvalue()
    assert shell.completenames("DIST") == ["DISTANCE ", "DISTORTION "]
    assert shell.completedefault("RE", "AUTOINDEX DPS RE", 14, 16) == ["REFINE ", "REFIX "]
    assert "PHI " in shell.completedefault("P", "AUTOINDEX IMAGE 1 P", 18, 19)


def _read_until(fd, needle: bytes, timeout: float = 30.0) -> bytes:
    buf = b""
    end = time.monotonic() + timeout
    while needle not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; got {buf[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_interactive_prompt_through_a_pty(tmp_path):
    master, slave = pty.openpty()
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "dumb"}
    proc = subprocess.Popen([sys.executable, "-m", "mosflm_py"], stdin=slave, stdout=slave,
                            stderr=slave, cwd=tmp_path, env=env, close_fds=True)
    os.close(slave)
    try:
        _read_until(master, PROMPT.encode())
        os.write(master, b"HELP BEAM\n")
        out = _read_until(master, PROMPT.encode())
        assert b"SWUNGOUT" in out
        os.write(master, b"DISTANCE abc\n")
        out = _read_until(master, PROMPT.encode())
        assert b"*** DISTANCE: expected <d>" in out
        os.write(master, b"dist 150\n")
        _read_until(master, PROMPT.encode())
        os.write(master, b"exit\n")
        _read_until(master, b"Normal termination")
        assert proc.wait(timeout=30) == 1  # one input error in the session
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    log = next(Path(tmp_path).glob("mosflm_*.lp")).read_text()
    assert "MOSFLM => dist 150" in log and "MOSFLM => DISTANCE abc" in log
