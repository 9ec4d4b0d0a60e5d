"""FRACTIONCALC of the parts of a reflection add up to one across blocks with different models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.geometry.prediction import fraction_on_image
from mosflm_py.processing.fractions import FractionNormaliser, ImageParts


@dataclass(frozen=True)
class _Rec:
    hkl: np.ndarray
    fraction: np.ndarray


def test_parts_add_up_to_one_across_blocks_with_different_widths():
    rng = np.random.default_rng(1)
    n_img, osc, n = 40, 0.1, 300
    starts = np.arange(n_img) * osc
    ends = starts + osc
    hkl = rng.integers(-30, 30, (n, 3))
    phi = rng.uniform(-0.3, 4.3, n)
    norm = FractionNormaliser(0.0, float(ends[-1]))
    released = []
    for i in range(n_img):
        w = np.full(n, 0.5 + 0.15 * (i // 10))  # each block of 10 images has its own width
        f = fraction_on_image(phi, w, starts[i], ends[i])
        on = f >= 1e-3
        acc = rng.random(on.sum()) > 0.1  # some parts rejected: not written, still counted
        parts = ImageParts(hkl[on], f[on], phi[on], w[on], acc)
        released += norm.add(_Rec(hkl[on][acc], f[on][acc]), parts, ends[i], i)
        # images are released only once all their reflections are complete
        assert len(released) <= i + 1
    released += norm.finish()
    assert [p for _, p in released] == list(range(n_img))
    total = {}
    for rec, _ in released:
        for h, f in zip(map(tuple, rec.hkl), rec.fraction):
            total[h] = total.get(h, 0.0) + f
    # reflections wholly inside the run and spread over two blocks: written parts sum to <= 1
    # and, with nothing rejected, exactly 1
    inside = {tuple(h) for h, p in zip(hkl, phi) if 0.6 < p < 3.4}
    sums = np.array([total[h] for h in inside if h in total])
    assert (sums <= 1.0 + 1e-9).all()
    # without the normaliser the block widths would give sums up to ~1.1 or down to ~0.9;
    # with it, a reflection whose parts were all written sums to 1 exactly
    norm2 = FractionNormaliser(0.0, float(ends[-1]))
    out = []
    for i in range(n_img):
        w = np.full(n, 0.5 + 0.15 * (i // 10))
        f = fraction_on_image(phi, w, starts[i], ends[i])
        on = f >= 1e-3
        parts = ImageParts(hkl[on], f[on], phi[on], w[on], np.ones(on.sum(), bool))
        out += norm2.add(_Rec(hkl[on], f[on]), parts, ends[i], i)
    out += norm2.finish()
    tot2: dict = {}
    for rec, _ in out:
        for h, f in zip(map(tuple, rec.hkl), rec.fraction):
            tot2[h] = tot2.get(h, 0.0) + f
    s2 = np.array([tot2[h] for h in inside if h in tot2])
    np.testing.assert_allclose(s2, 1.0, atol=1e-9)
    # reflections cut by the end of the run keep their recorded share (< 1)
    cut = [tot2[tuple(h)] for h, p in zip(hkl, phi) if p > 4.1 and tuple(h) in tot2]
    assert cut and max(cut) < 0.9
