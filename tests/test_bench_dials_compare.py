"""scripts/dials_compare.py: reindexing operator search and truth statistics on synthetic data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import dials_compare as dc  # noqa: E402


@pytest.fixture()
def truth(tmp_path):
    rng = np.random.default_rng(3)
    hkl = np.unique(rng.integers(-20, 21, size=(3000, 3)), axis=0)  # one observation each
    hkl = hkl[rng.permutation(len(hkl))]
    n = len(hkl)
    phi = rng.uniform(0.0, 50.0, n)
    inten = rng.exponential(2000.0, n) + 50.0
    path = tmp_path / "truth.npz"
    np.savez(path, obs_hkl=hkl, obs_phi=phi, obs_intensity=inten,
             obs_fully_recorded=np.ones(n, bool), obs_on_detector=np.ones(n, bool),
             obs_small_zeta=np.zeros(n, bool))
    return path, hkl, phi, inten


def test_best_reindex_recovers_operator_and_cc(truth):
    path, hkl, phi, inten = truth
    op = np.array([[-1, 0, 0], [0, -1, 0], [0, 0, 1]])  # 2-fold about c
    # the "program" reports indices in its own setting: hkl_prog = op^-1 hkl_truth
    prog_hkl = hkl @ np.linalg.inv(op).round().astype(int).T
    rng = np.random.default_rng(4)
    sig = np.sqrt(inten) + 5.0
    meas = inten * 1.1 + rng.normal(0.0, 1.0, len(inten)) * sig
    rec = dc.Integrated(prog_hkl, phi + 0.05, meas, sig, meas, sig)
    m, frac = dc.best_reindex(rec.hkl, rec.rot, path)
    assert np.array_equal(m, op)
    assert frac > 0.99
    res = dc.compare_with_truth(rec, path, m)
    r = res["prf"]
    assert r.n_compared == len(hkl)
    # the expected CC of I_true vs 1.1 I_true + noise is > 0.999 for these intensities
    assert r.cc_strong > 0.999
    assert r.ratio == pytest.approx(1.1, abs=0.01)
    # rms z of (1.1 I - I)/sig is dominated by the 10 % scale: sqrt(mean((0.1 I/sig)^2 + 1))
    expect = np.sqrt(np.mean((0.1 * inten / sig) ** 2 + 1.0))
    assert r.rmsz == pytest.approx(expect, rel=0.05)
    # without the operator almost nothing matches
    assert dc.compare_with_truth(rec, path)["sum"].n_compared < 0.1 * len(hkl)


def test_phi_tolerance_rejects_far_records(truth):
    path, hkl, phi, inten = truth
    rec = dc.Integrated(hkl, phi + 3.0, inten, np.sqrt(inten), None, None)
    res = dc.compare_with_truth(rec, path)
    assert "prf" not in res
    assert res["sum"].n_compared == 0
