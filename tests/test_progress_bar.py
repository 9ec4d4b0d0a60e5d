"""Progress bar of PROCESS (issue 10 item 9): stderr of a terminal only, redrawn in place."""

from __future__ import annotations

import io
import sys

from mosflm_py.report import Report


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
