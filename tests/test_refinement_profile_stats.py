"""The C. of G. shift and background residual of the average spot profile in cell refinement.

MOSFLM prints them per image (``C. of G. SHIFTS = ... Background residual= ...``); cell
refinement forms them from its summation boxes (mosflm_py.refinement.measure).
"""

import numpy as np

from mosflm_py.refinement.measure import average_profile_stats


def _spots(centre_px, n=40, b=11, bg=10.0, peak=5000.0, sigma=1.0, seed=1):
    """Gaussian spots on a flat background, the true centre at ``centre_px`` (slow, fast) from
    the centre of the box's central pixel; Poisson noise."""
    rng = np.random.default_rng(seed)
    off = np.arange(b) - b // 2
    ii, jj = np.meshgrid(off, off, indexing="ij")
    g = np.exp(-((ii - centre_px[0]) ** 2 + (jj - centre_px[1]) ** 2) / (2 * sigma**2))
    mean = bg + peak * g / g.sum()
    return rng.poisson(mean, size=(n, b, b)).astype(float)


def test_shift_of_the_spots_from_the_prediction_is_recovered():
    # spots 0.3 px (slow) and -0.2 px (fast) from the central pixel; predictions 0.1 px and
    # 0.1 px from it, so the spots lie 0.2 and -0.3 px from the predictions
    stack = _spots((0.3, -0.2))
    offset = np.tile([0.1, 0.1], (len(stack), 1))
    (dx, dy), resid = average_profile_stats(stack, offset, np.ones(len(stack), bool), 0.1, 0.2)
    # a 5 % tolerance on the shift: the peak mask (interior, positive values) truncates
    # the Gaussian tails a little and the background noise adds scatter
    assert abs(dx - 0.2 * 0.1) < 0.002 and abs(dy - (-0.3) * 0.2) < 0.003
    # flat background subtracted: the residual (peak scaled to 255) is the noise left, small
    assert 0.0 < resid < 3.0


def test_structured_background_gives_a_large_residual_and_no_spots_give_nan():
    stack = _spots((0.0, 0.0))
    use = np.ones(len(stack), bool)
    _, clean = average_profile_stats(stack, np.zeros((len(stack), 2)), use, 0.1, 0.1)
    stack[:, 0, :] += 200.0  # a streak along one edge of every box
    _, resid = average_profile_stats(stack, np.zeros((len(stack), 2)), use, 0.1, 0.1)
    # rim pixels 145 above / 55 below the mean rim of 65 against a peak of ~750 net: ~29
    assert resid > 20.0 and resid > 5 * clean
    (dx, dy), resid = average_profile_stats(
        stack, np.zeros((len(stack), 2)), np.zeros(len(stack), bool), 0.1, 0.1
    )
    assert np.isnan(dx) and np.isnan(dy) and np.isnan(resid)
