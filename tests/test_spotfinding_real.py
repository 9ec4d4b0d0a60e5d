"""find_spots on real images (../shared/data/real): spot counts in ranges around the numbers
recorded when this was written (MOSFLM defaults: THRESHOLD auto -> 5, MINPIX 6, BOX 16 16).

Recorded (2026-11, this implementation):
  thaum_0500 (Pilatus3 6M still):        390 spots (MINPIX 3: 566), median 4 x 4 px, to 1.88 A
  example_009 (Pilatus3 6M, 0.1 deg):     23 spots (MINPIX 3: 86; a weak fine-sliced image)
  run2_1_00148 (Pilatus 6M insulin):     153 spots (MINPIX 3: 226)
  l-cysteine sweep 04 (Pilatus 2M, 15 x 0.1 deg): 41 spots over 15 images, 14 after merging
  across images (MINPIX 3: 66 / 17); the source's crude blob count is ~120 over the sweep.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.geometry.detector import Detector
from mosflm_py.spotfinding import (
    SpotFindParams,
    find_spots,
    find_spots_many,
    merge_across_images,
)

fabio = pytest.importorskip("fabio")
pytestmark = pytest.mark.realdata
PIX = 0.172


def _det(beam_xy_px, distance, shape):
    """miniCBF Beam_xy is (fast, slow) pixels: BEAM x = slow * pixel, y = fast * pixel."""
    return Detector(beam_x=beam_xy_px[1] * PIX, beam_y=beam_xy_px[0] * PIX, distance=distance,
                    pixel_slow=PIX, pixel_fast=PIX, nslow=shape[0], nfast=shape[1])


CASES = {
    "thaum": ("pilatus6m_p3_and_thaumatin/thaum_0500.cbf.gz", (1246.42, 1208.60), 338.10,
              0.97625, (250, 600), (400, 800)),
    "p3": ("pilatus6m_p3_and_thaumatin/example_009.cbf.gz", (1266.7, 1324.6), 305.0, 0.96861,
           (10, 60), (50, 150)),
    "insulin": ("format_singles_fabio/run2_1_00148.cbf.bz2", (1230.10, 1310.50), 300.0, 1.0332,
                (100, 250), (150, 350)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pilatus_6m_counts(real_data, case):
    path, beam, dist, wl, rng6, rng3 = CASES[case]
    frame = fabio.open(str(real_data / path)).data
    det = _det(beam, dist, frame.shape)
    spots, rep = find_spots(frame, det, wl, SpotFindParams(overload=1e6))
    assert rng6[0] <= len(spots) <= rng6[1]
    assert rep.threshold == 5.0 and rep.n_found == len(spots)
    # spots lie inside the search annulus, away from gaps, with sensible shapes
    r = np.hypot(spots.x_mm - det.beam_x, spots.y_mm - det.beam_y)
    assert r.min() >= rep.rmin and r.max() <= rep.rmax
    assert (frame[spots.x_px.astype(int), spots.y_px.astype(int)] >= 0).all()
    assert 2 <= rep.median_size_x <= 6 and 2 <= rep.median_size_y <= 6
    assert np.median(spots.i_over_sigma) > 8
    assert 1.5 < rep.d_min_spots < 4.0
    more, _ = find_spots(frame, det, wl, SpotFindParams(overload=1e6, minpix=3))
    assert rng3[0] <= len(more) <= rng3[1] and len(more) > len(spots)


def test_l_cysteine_sweep_many_and_merge(real_data):
    files = sorted((real_data / "l_cysteine_sweep04").glob("l-cyst_04_*.cbf"))
    assert len(files) == 15
    frames = [fabio.open(str(f)).data for f in files]
    det = _det((730.0, 865.0), 160.0, frames[0].shape)
    phis = [(0.1 * k, 0.1 * k + 0.1) for k in range(15)]
    spots, reps = find_spots_many(frames, det, 0.6889, SpotFindParams(overload=1e6),
                                  phis=phis, images=list(range(1, 16)), n_threads=2)
    assert 20 <= len(spots) <= 90
    assert sum(r.n_found for r in reps) == len(spots)
    merged = merge_across_images(spots)
    assert 8 <= len(merged) <= 40 and len(merged) < len(spots)
    assert (merged.phi >= 0).all() and (merged.phi <= 1.5).all()
    assert merged.intensity.sum() == pytest.approx(spots.intensity.sum())
