"""Measurement box: RASTER masks, automatic size, optimisation; BGPKRATIOS; LP factors."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import IntegrationError
from mosflm_py.integration import (
    Polarisation,
    Raster,
    auto_raster,
    lp_factors,
    optimise_raster,
    pack_bgpkratios,
    unpack_bgpkratios,
)
from mosflm_py.integration.box import fraction_outside_peak


def test_raster_17_19_13_6_6_has_31_peak_pixels():
    r = Raster(17, 19, 13, 6, 6)
    m = r.mask()
    assert r.n_peak() == 31
    # peak rows along slow X: widths 5,7,7,7,5 (MOSFLM prints the transpose 3,5,5,5,5,5,3)
    widths = (m == 1).sum(axis=1)
    assert list(widths[widths > 0]) == [5, 7, 7, 7, 5]
    assert list((m == 1).sum(axis=0)[(m == 1).sum(axis=0) > 0]) == [3, 5, 5, 5, 5, 5, 3]
    # box corners cut by |dx|+|dy| <= 13: the 4 corner triangles hold 4*(1+2+3+4) = 40 pixels
    assert np.count_nonzero(m) == 17 * 19 - 4 * 10


def test_raster_validation():
    with pytest.raises(IntegrationError):
        Raster(16, 19, 13, 6, 6)
    with pytest.raises(IntegrationError):
        Raster(17, 19, 13, 9, 6)


def test_auto_raster_from_spot_size():
    from mosflm_py.spotfinding.filters import raster_from_spot_size

    r = auto_raster((3, 5))
    assert r.as_tuple() == (13, 17, 9, 4, 5)  # MOSFLM: "13 17 9 4 5" for a 3 x 5 pixel spot
    assert auto_raster(5.0).as_tuple()[:2] == (17, 17) and auto_raster(5.0).nc == 13
    peak = r.mask() == 1
    assert peak.any(axis=1).sum() == 5  # 5 pixels along slow
    for size in [(1, 1), (2, 2), (2.4, 3.1), (4, 2), (8, 8), (12, 3)]:
        a = auto_raster(size)
        # one rule: the spot finder's proposal is the same box
        assert raster_from_spot_size(*size) == a.as_tuple()
        px, py = (a.nxs - 1) // 2 - a.nrx, (a.nys - 1) // 2 - a.nry
        # the peak holds at least the diamond |dx| + |dy| <= min(px, py), px >= size / 2
        dx, dy = a.offsets()
        assert (a.mask()[np.abs(dx) + np.abs(dy) <= min(px, py)] == 1).all()
        assert 2 * px + 1 >= np.ceil(size[0]) and 2 * py + 1 >= np.ceil(size[1])
        assert min(a.nrx, a.nry) >= 3
    big = auto_raster(8.0)
    assert big.nxs > r.nxs and big.n_peak() > r.n_peak()


def _gauss(r, s):
    dx, dy = r.offsets()
    return np.exp(-0.5 * (dx**2 + dy**2) / s**2)


def test_optimise_raster_meets_tolerance_and_is_minimal():
    base = Raster(21, 21, 20, 3, 3)
    prof = _gauss(base, 1.2)
    new, out = optimise_raster(prof, base, tolerance=0.02, boundary=6, fixbox=True)
    assert out <= 0.02
    assert fraction_outside_peak(prof, new) == pytest.approx(out, abs=1e-9)
    assert new.n_peak() < base.n_peak()
    # one pixel less in any direction breaks the tolerance
    assert fraction_outside_peak(prof, Raster(21, 21, new.nc, new.nrx + 1, new.nry)) > 0.02
    # broader profile -> larger peak
    wide, _ = optimise_raster(_gauss(base, 2.0), base, 0.02, 6, True)
    assert wide.n_peak() > new.n_peak()


def test_bgpkratios_round_trip():
    bg = np.array([0.9, 1.3, 2.7, 12.0])
    pk = np.array([1.07, 0.55, 3.61, 9.99])
    gr = np.array([0.012, 0.0, 0.25, 2.0])
    packed = pack_bgpkratios(bg, pk, gr)
    b2, p2, g2 = unpack_bgpkratios(packed)
    np.testing.assert_allclose(b2, np.minimum(np.round(bg * 10) / 10, 9.9), atol=0.1 + 1e-9)
    np.testing.assert_allclose(p2, pk, atol=0.005 + 1e-9)
    np.testing.assert_allclose(g2, np.minimum(gr, 0.99), atol=1e-9)
    assert packed[0] == pytest.approx(107 * 100 + 9 + 0.012)


def test_lp_factors():
    lam = 1.0
    s0 = np.array([1.0, 0, 0]) / lam
    axis = np.array([0, 0, 1.0])
    tt = np.radians(30.0)
    # s1 in the equatorial (X-Y) plane and along the rotation axis plane (X-Z)
    s1 = np.array([[np.cos(tt), np.sin(tt), 0], [np.cos(tt), 0, np.sin(tt)]]) / lam
    lor, pol, lp = lp_factors(s1, s0, axis, Polarisation("pinhole"))
    assert lor[0] == pytest.approx(1 / np.sin(tt))  # L = 1/sin 2theta in the equatorial plane
    assert np.isinf(lor[1])
    np.testing.assert_allclose(pol, 0.5 * (1 + np.cos(tt) ** 2))
    assert lp[0] == pytest.approx(1 / (lor[0] * pol[0]))
    # tau = 0.95, electric vector along Z (default): scattering in the X-Z plane is reduced
    _, pol, _ = lp_factors(s1, s0, axis, Polarisation("synchrotron", 0.95))
    kahn = 0.5 * (1 + np.cos(tt) ** 2 - 0.95 * np.array([-1, 1]) * np.sin(tt) ** 2)
    np.testing.assert_allclose(pol, kahn, rtol=1e-12)
    # electric vector along Y: scattering in the X-Y plane is reduced
    _, pol, _ = lp_factors(s1, s0, axis, Polarisation("synchrotron", 0.95, e_vector=(0, 1, 0)))
    kahn = 0.5 * (1 + np.cos(tt) ** 2 - 0.95 * np.array([1, -1]) * np.sin(tt) ** 2)
    np.testing.assert_allclose(pol, kahn, rtol=1e-12)
    _, pol, _ = lp_factors(s1, s0, axis, Polarisation("monochromator", mono_2theta_deg=26.6))
    c2m = np.cos(np.radians(26.6)) ** 2
    np.testing.assert_allclose(pol, (1 + c2m * np.cos(tt) ** 2) / (1 + c2m))
