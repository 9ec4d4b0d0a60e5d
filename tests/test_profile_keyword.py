"""PROFILE NOFIXBOX is refused at its line (not implemented yet), never silently ignored."""

from __future__ import annotations

from conftest import run_script


def test_nofixbox_refused_and_the_run_goes_on(tmp_path):
    rc, log = run_script("PROFILE NOFIXBOX\nPROFILE TOLERANCE 0.03 0.04\nSHOW\nEXIT\n", tmp_path)
    assert rc != 0
    assert "*** Error in line 1 (PROFILE NOFIXBOX)" in log
    assert "not implemented yet" in log
    assert "Traceback" not in log
    # the next line is still read and applied
    assert "0.03" in log.split("===> SHOW", 1)[1]
