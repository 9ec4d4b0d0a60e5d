"""FRACTIONCALC of the parts of a reflection add up to one across blocks with different models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

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


@dataclass(frozen=True)
class _RecI:
    hkl: np.ndarray
    fraction: np.ndarray
    I: np.ndarray  # noqa: E741
    sigI: np.ndarray


def test_cut_reflections_recorded_mostly_are_completed():
    """A reflection cut by the end of the run with >= MIN_RECORDED of it recorded: its parts'
    intensities, sigmas and fractions are divided by the recorded share (whole reflection,
    FRACTIONCALC sum 1, as XDS/DIALS correct partiality); one recorded less stays as it is."""
    from mosflm_py.processing.fractions import MIN_RECORDED

    n_img, osc = 10, 0.2
    starts = np.arange(n_img) * osc
    ends = starts + osc
    hkl = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    phi = np.array([1.0, 1.95, 2.15])  # inside, cut by half, cut by most
    w = np.full(3, 0.5)
    full_i = np.array([1000.0, 2000.0, 3000.0])
    norm = FractionNormaliser(0.0, float(ends[-1]))
    out = []
    for i in range(n_img):
        f = fraction_on_image(phi, w, starts[i], ends[i])
        on = f >= 1e-3
        parts = ImageParts(hkl[on], f[on], phi[on], w[on], np.ones(on.sum(), bool))
        rec = _RecI(hkl[on], f[on], full_i[on] * f[on], np.sqrt(full_i[on] * f[on]))
        out += norm.add(rec, parts, ends[i], i)
    out += norm.finish()
    tot_f, tot_i = np.zeros(3), np.zeros(3)
    for rec, _ in out:
        for h, f, inten in zip(rec.hkl, rec.fraction, rec.I):
            k = int(np.flatnonzero((hkl == h).all(axis=1))[0])
            tot_f[k] += f
            tot_i[k] += inten
    share = [
        float(fraction_on_image(phi[k : k + 1], w[k : k + 1], 0.0, ends[-1])[0]) for k in range(3)
    ]
    assert share[1] >= MIN_RECORDED > share[2]
    np.testing.assert_allclose(tot_f[:2], 1.0, atol=1e-9)
    np.testing.assert_allclose(tot_i[:2], full_i[:2], rtol=1e-9)
    assert tot_f[2] == pytest.approx(share[2]) and tot_i[2] == pytest.approx(full_i[2] * share[2])
