"""Real-data smoke test: integrate a Pilatus3 6M image (thaumatin, DLS) at its strong spots.

Positions are the spot finder's centroids; the box is the automatic RASTER from the median spot
size; standard profiles (3 x 3 regions) come from the same image.  Recorded when written:
390 spots, RASTER 15 15 11 4 4, 347 accepted (33 PKRATIO > 3.5, 10 overlaps), median BGRATIO
0.95, median PKRATIO 1.51 (2.14 for I/sigma > 20), median Ipr/I of strong spots 1.006.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.geometry.detector import Detector
from mosflm_py.integration import (
    IntegrationParams,
    ProfileParams,
    Reject,
    Targets,
    accumulate_profiles,
    auto_raster,
    integrate_image,
)
from mosflm_py.spotfinding import SpotFindParams, find_spots

fabio = pytest.importorskip("fabio")
pytestmark = pytest.mark.realdata
PIX = 0.172


def test_thaumatin_pilatus_image(real_data):
    frame = fabio.open(str(real_data / "pilatus6m_p3_and_thaumatin/thaum_0500.cbf.gz")).data
    # miniCBF Beam_xy (1246.42, 1208.60) is (fast, slow) pixels
    det = Detector(beam_x=1208.60 * PIX, beam_y=1246.42 * PIX, distance=338.10, pixel_slow=PIX,
                   pixel_fast=PIX, nslow=frame.shape[0], nfast=frame.shape[1])
    spots, rep = find_spots(frame, det, 0.97625, SpotFindParams(overload=1e6))
    assert len(spots) > 250
    raster = auto_raster((rep.median_size_x, rep.median_size_y))
    params = IntegrationParams(raster=raster, profile=ProfileParams(nref=5), overload=1e6)
    pred = Targets.from_arrays(spots.x_px, spots.y_px)
    prof = accumulate_profiles([(frame, pred)], params, high_resolution=False)
    assert prof.usable and prof.n_contrib.sum() > 200
    res = integrate_image(frame, pred, params, prof)
    ok = res.accepted
    assert ok.mean() > 0.8
    assert np.mean((res.reject & Reject.PKRATIO) != 0) < 0.15
    # background follows counting statistics (gain 1): BGRATIO ~ 1
    assert 0.85 < np.median(res.bgratio[ok]) < 1.15
    # the profile describes the spots to about twice counting precision at most
    strong = ok & (res.I > 20 * res.sigI)
    assert strong.sum() > 50
    assert 0.8 < np.nanmedian(res.pkratio[ok]) < 2.2
    assert np.nanmedian(res.pkratio[strong]) < 3.0
    # profile fitting agrees with summation for strong spots and is at least as precise
    assert np.median(res.Ipr[strong] / res.I[strong]) == pytest.approx(1.0, abs=0.02)
    assert np.median(res.Ipr[ok] / res.sigIpr[ok]) >= 0.95 * np.median(res.I[ok] / res.sigI[ok])
