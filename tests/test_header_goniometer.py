"""HEADER shows two-theta, the goniometer axes and the scan axis, each header line once
(issue 9.7).  Real full-CBF images; skipped when ../shared is absent."""

from __future__ import annotations

import io

import pytest

from mosflm_py.session import Session


@pytest.mark.realdata
def test_header_shows_goniometer_axes_and_scan_axis_once(real_data):
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [f"DIRECTORY {real_data / 'l_cysteine_sweep04'}", "TEMPLATE l-cyst_04_#####.cbf", "IMAGE 1"]
    )
    log = out.getvalue()
    gon = [ln for ln in log.splitlines() if ln.startswith(" Goniometer:")]
    assert len(gon) == 1, log  # printed once when the image is opened
    assert "GON_OMEGA 0.00" in gon[0] and "scan axis GON_PHI" in gon[0]
    assert "imgCIF vector 0.577" in gon[0]  # the phi axis as the fixed chi setting places it
    body = [ln for ln in log.splitlines()
            if ln.startswith((" Wavelength ", " Beam (X, Y)")) and "taken from" not in ln]
    assert len(body) == len(set(body)) == 2
    # MOSFLM's own "... taken from image header" lines, once each
    taken = [ln for ln in log.splitlines() if "taken from image header" in ln]
    assert len(taken) == len(set(taken)) >= 1
    assert "two-theta 0.00 deg" in body[0]


@pytest.mark.realdata
def test_minicbf_header_goniometer_and_moving_scan_axis(real_data):
    out = io.StringIO()
    s = Session(out=out)
    s.run_lines(
        [
            f"DIRECTORY {real_data / 'pilatus6m_p3_and_thaumatin'}",
            "TEMPLATE example_###.cbf.gz",
            "IMAGE 9",
        ]
    )
    gon = [ln for ln in out.getvalue().splitlines() if ln.startswith(" Goniometer:")]
    assert gon == [
        " Goniometer: OMEGA 26549.10, CHI 0.00, KAPPA 0.00, PHI 0.00   scan axis OMEGA (X.CW +SLOW)"
    ]
