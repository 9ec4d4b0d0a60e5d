"""mosflm_py.mosaic.fraction_misfit: observed share of each part against FRACTIONCALC.

Synthetic records with known shares: exact shares give rms 0; shares computed for a rocking
curve 30 % wider than the FRACTIONCALC model give the rms calculated here independently; a set
with a part missing, weak sets and fulls are not used; the sign of the centre bias says whether
the observed curves are narrower or wider than the model.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import MosflmError
from mosflm_py.geometry.prediction import fraction_on_image
from mosflm_py.mosaic import fraction_misfit


def _records(
    width_obs: float, width_calc: float, n: int = 200, seed: int = 1, noise=0.0, sigma=5.0
):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        phic = rng.uniform(3.0, 7.0)
        edges = np.arange(0.0, 11.0, 1.0)
        fo = fraction_on_image(np.full(10, phic), np.full(10, width_obs), edges[:-1], edges[1:])
        fc = fraction_on_image(np.full(10, phic), np.full(10, width_calc), edges[:-1], edges[1:])
        on = np.ones(10, bool)  # every image, empty parts too: the shares add up to 1
        total = 1e4
        for k in np.flatnonzero(on):
            rows.append(
                (i, 0, 0, k + 1, total * fo[k] + noise * rng.normal(), sigma, fc[k], int(on.sum()))
            )
    a = np.array(rows, dtype=float)
    return dict(
        hkl=a[:, :3].astype(int),
        batch=a[:, 3].astype(int),
        intensity=a[:, 4],
        sigma=a[:, 5],
        fraction=a[:, 6],
        partial=np.ones(len(a), bool),
        n_parts=a[:, 7].astype(int),
    )


def test_exact_model_gives_zero():
    r = fraction_misfit(**_records(2.0, 2.0))
    assert r.rms == pytest.approx(0.0, abs=1e-12)
    assert r.n_reflections == 200


def test_wider_observed_curves():
    rec = _records(2.6, 2.0)
    r = fraction_misfit(**rec)
    g = rec["intensity"] / 1e4
    sel = rec["n_parts"] >= 2
    expect = np.sqrt(np.mean((g - rec["fraction"])[sel] ** 2))
    assert r.rms == pytest.approx(expect, rel=1e-9)
    assert r.mean_signed_centre < -0.02  # observed centre share below the model: wider
    assert fraction_misfit(**_records(1.5, 2.0)).mean_signed_centre > 0.02


def test_incomplete_weak_and_full_sets_are_not_used():
    rec = _records(2.0, 2.0, n=50)
    first = np.flatnonzero(rec["hkl"][:, 0] == 0)
    drop = np.ones(len(rec["batch"]), bool)
    drop[first[len(first) // 2]] = False  # reflection 0 loses a middle part
    sub = {k: v[drop] for k, v in rec.items()}
    assert fraction_misfit(**sub).n_reflections == 49
    weak = dict(rec, intensity=rec["intensity"] * 1e-3, sigma=rec["sigma"] * 10)
    assert fraction_misfit(**weak).n_reflections == 0
    full = dict(rec, partial=np.zeros(len(rec["batch"]), bool))
    assert np.isnan(fraction_misfit(**full).rms)


def test_noise_excess_and_bad_input():
    rec = _records(2.0, 2.0, noise=20.0, sigma=20.0)
    r = fraction_misfit(**rec)
    assert 0.0 < r.rms < 0.01
    assert r.rms_excess < 0.5 * r.rms  # the misfit is counting noise only
    with pytest.raises(MosflmError):
        fraction_misfit(
            rec["hkl"],
            rec["batch"][:-1],
            rec["intensity"],
            rec["sigma"],
            rec["fraction"],
            rec["partial"],
        )
