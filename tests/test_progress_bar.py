"""Progress bar of PROCESS (issue 10 item 9): stderr of a terminal only, redrawn in place."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mosflm_py.report import Report

REPO = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_terminal_stderr_only(monkeypatch):
    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    out, log = io.StringIO(), io.StringIO()
    rep = Report(out)
    rep.add_log(log)
    rep.progress(0, 4, 0.0)
    rep.line(" Processing Image    1")
    rep.progress(1, 4, 2.0)
    rep.progress(2, 4, 4.0)
    rep.line(" Integrating Image    2")
    rep.progress(4, 4, 8.0)
    text = err.getvalue()
    # per image, with the rate and the time left, redrawn in place (carriage return + erase)
    assert "1/4 images  0.50 images/s     6 s left" in text
    assert "2/4 images  0.50 images/s     4 s left" in text
    assert text.count("\r\033[K") >= 6 and "\n" not in text
    assert text.endswith("\r\033[K")  # removed at the end
    # the log file and stdout never see it
    for s in (out.getvalue(), log.getvalue()):
        assert "images/s" not in s and "\r" not in s and "\033" not in s
    assert log.getvalue() == " Processing Image    1\n Integrating Image    2\n"


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    err = io.StringIO()  # a pipe or a file, as when a pipeline runs mosflm-py
    monkeypatch.setattr(sys, "stderr", err)
    rep = Report(io.StringIO())
    rep.progress(1, 3, 1.0)
    rep.line("x")
    rep.progress(3, 3, 3.0)
    assert err.getvalue() == ""


# --------------------------------------------------------------------------- PROCESS, end to end
N_IMAGES = 6


@pytest.fixture(scope="module")
def small_series(tmp_path_factory):
    """Six 0.5° images of a small simulated crystal (with its true matrix file)."""
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("progress_sim")
    params = default_params(nslow=384, nfast=384, beam_x=33.1, beam_y=32.4, distance=90.0,
                            cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=N_IMAGES,
                            resolution=2.2, seed=3)
    simulate_dataset(params, folder, fmt="cbf", name="sim")
    return folder


def _script(folder, nproc: int, mtz: str) -> str:
    return "\n".join(['TEMPLATE "sim_#####.cbf"', f'DIRECTORY "{folder}"',
                      f"MATRIX {folder}/truth.mat", "SYMMETRY P212121", "MOSAIC 0.3",
                      f"NPROC {nproc}", f"HKLOUT {mtz}",
                      f"PROCESS 1 {N_IMAGES} BLOCK 3", "GO", "EXIT", ""])


_BAR = re.compile(r"\] (\d+)/(\d+) images +([0-9.]+) images/s +(\S+) s left")


def _bar_states(text: str) -> list[int]:
    """Images done in each drawing of the bar, in order."""
    return [int(m.group(1)) for m in _BAR.finditer(text)]


def test_process_bar_advances_per_image_log_clean(small_series, tmp_path, monkeypatch):
    """Serial PROCESS with a fake terminal on stderr: the bar passes through every image count;
    the log file and stdout carry no bar."""
    from mosflm_py.cli import main as mosflm_main

    err = _Tty()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    rc = mosflm_main([], stdin=io.StringIO(_script(small_series, 1, "serial.mtz")), stdout=out)
    assert rc == 0, out.getvalue()
    states = _bar_states(err.getvalue())
    # per image: every count 0..N-1 is drawn (a block of 3 images gives 3+ drawings, not 1);
    # the bar is taken off at the end and never scrolls (no newline on stderr)
    assert set(range(N_IMAGES)) <= set(states), states
    assert states == sorted(states)
    assert len(states) >= 2 * N_IMAGES
    assert "\n" not in err.getvalue() and err.getvalue().endswith("\r\033[K")
    logs = list(tmp_path.glob("*.lp"))
    assert len(logs) == 1
    for text in (out.getvalue(), logs[0].read_text()):
        assert "images/s " not in text.replace("images/s)", "")  # the final summary line only
        assert "\r" not in text and "\033" not in text
        assert "Integrating Image" in text or "Processing Image" in text


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_process_bar_on_a_real_pty_with_workers(small_series, tmp_path):
    """mosflm-py as a pipeline runs it (stdin and stdout pipes) but with stderr on a real
    pseudo-terminal and two worker processes: the bar advances per image on the terminal;
    stdout (the pipe) and the log file stay clean."""
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "mosflm_py"], cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave,
                            env=env, text=True)
    os.close(slave)
    chunks: list[bytes] = []

    def reader() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        stdout, _ = proc.communicate(_script(small_series, 2, "workers.mtz"), timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        t.join(timeout=10)
        os.close(master)
    assert proc.returncode == 0, stdout
    term = b"".join(chunks).decode(errors="replace")
    states = _bar_states(term)
    assert set(range(1, N_IMAGES)) <= set(states), states
    assert states == sorted(states)
    logs = list(tmp_path.glob("*.lp"))
    assert len(logs) == 1
    for text in (stdout, logs[0].read_text()):
        assert not _BAR.search(text) and "\r" not in text and "\033" not in text
    assert "WRITTEN OUTPUT MTZ FILE" in stdout
