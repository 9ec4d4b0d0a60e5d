"""Partials bookkeeping: fractions over the images of a sweep add up to one; MPART parts."""

from __future__ import annotations

import numpy as np

from mosflm_py.processing.parts import spread_over_images
from mosflm_py.processing.plan import ImagePlan, make_blocks, phi_grid, plan_images


def test_fractions_over_images_sum_to_one_and_parts_count():
    rng = np.random.default_rng(3)
    osc = 0.25
    n_img = 40
    starts = np.arange(n_img) * osc + 10.0
    ends = starts + osc
    phi_c = rng.uniform(11.5, 18.5, 500)
    width = rng.uniform(0.05, 1.2, 500)
    total = np.zeros(500)
    seen = np.zeros(500, int)
    for k in range(n_img):
        f, npart, ipart = spread_over_images(phi_c, width, starts, ends, k)
        on = f >= 1e-3
        total += f
        seen += on
        # ipart runs 1..npart over the images where the reflection is recorded
        assert (ipart[on] >= 1).all() and (ipart[on] <= npart[on]).all()
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    # npart counts images with at least 0.1 % of the reflection
    f0, npart, _ = spread_over_images(phi_c, width, starts, ends, n_img // 2)
    assert (npart >= 1).all()
    np.testing.assert_array_less(np.abs(npart - seen)[f0 >= 1e-3], 1)


def test_plan_start_angle_add_and_blocks():
    plan = plan_images(3, 14, list(range(1, 20)), lambda n: (0.5 * (n - 1), 0.5 * n),
                       start=100.0, angle=0.2, add=1000)
    assert plan[0] == ImagePlan(3, 100.0, 100.2, 1003)
    assert abs(plan[-1].phi_end - (100.0 + 12 * 0.2)) < 1e-9
    assert [len(b) for b in make_blocks(plan, 5)] == [5, 5, 2]
    # a last block shorter than half a block joins the previous one
    assert [len(b) for b in make_blocks(plan[:11], 5)] == [5, 6]
    s, e = phi_grid(plan)
    assert len(s) == 12 and (e > s).all()


def test_many_parts_on_fine_slices_are_all_counted():
    """A 1.25 deg wide reflection on 0.05 deg images touches ~25 images: every part is counted
    (no cap on the number of parts), ipart runs 1..npart and the fractions add up to one."""
    osc, n_img = 0.05, 80
    starts = np.arange(n_img) * osc
    ends = starts + osc
    phi_c, width = np.array([2.0]), np.array([1.25])
    fr, ip = [], []
    for k in range(n_img):
        f, npart, ipart = spread_over_images(phi_c, width, starts, ends, k)
        if f[0] >= 1e-3:
            fr.append(f[0])
            ip.append(int(ipart[0]))
            n = int(npart[0])
    assert n == len(fr) >= 24
    assert ip == list(range(1, n + 1))
    assert abs(sum(fr) - 1.0) < 2e-3


def test_maxwidth_is_an_angle_in_degrees():
    import io

    from mosflm_py.session import Session

    s = Session(out=io.StringIO())
    s.execute("MAXWIDTH 0.4")
    assert s.state.integration.maxwidth == 0.4  # degrees: less than one image of many sweeps
    s.execute("MAXWIDTH 12.5")  # more than the old limit of "10 images"
    assert s.state.integration.maxwidth == 12.5
