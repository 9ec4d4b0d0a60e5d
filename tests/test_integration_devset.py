"""Integration accuracy on the small-cell nanoBragg development set (../shared; skipped if absent).

dev_p1_smallcell through the usage-contract "integrate a whole sweep" command file (AUTOINDEX,
MOSAIC ESTIMATE, PROCESS 1 30; no dataset keywords), scored against the true amplitudes with
../shared/data/sim/tools/score_mtz.py (partials summed) and the sigma calibration of
tests/devset.py.  Tolerances, from what was measured when the test was written (CC 0.9990,
rms z 5.9, outer/overall scale 0.98) and DIALS 3.12 on the same images (CC 0.9966, rms z 19.9):
- CC(IPR, F_true^2) at least DIALS's figure (the set's README);
- rms of (I - k F^2)/sigma(I) below 4 (measured 2.73 with the tail-scatter term and the
  completion of reflections cut by the detector edge or a gap; 6.4 before them; DIALS 19.9;
  the issue asks 0.8-1.5, not reached here: most of the rest is intensity on the images just
  beyond each reflection's predicted parts, the rocking-width model having no domain-size term);
- no intensity lost at high angles: the scale k of the outermost tenth of the reflections within
  10 % of the overall one (a fixed box set from the central spots lost 27 % there);
- reflections cut by the start or end of the sweep with >= 0.4 recorded are completed
  (their parts add up to FRACTIONCALC 1).
"""

from __future__ import annotations

import devset
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    "dev_p1_smallcell" not in devset.available(), reason="development set absent (../shared)"
)


@pytest.fixture(scope="module")
def p1_run(tmp_path_factory):
    ds = devset.dev_set("dev_p1_smallcell")
    run = devset.run_job(ds, "integrate", tmp_path_factory.mktemp("p1int"))
    return ds, run


def test_run_succeeds(p1_run):
    _, run = p1_run
    assert run.returncode == 0, run.log[-3000:]
    assert run.mtz is not None


def test_profile_fitted_cc_at_least_dials(p1_run):
    ds, run = p1_run
    score = devset.score_mtz(run.mtz, ds)
    dials = ds.dials_summary()
    ref = 0.9966  # README table: CC(IPR, F^2) all
    assert score["pearson_all"] >= ref, (score, dials.get("mtz_score"))
    assert score["n_scored"] >= 540


def test_sigma_calibration(p1_run):
    ds, run = p1_run
    cal = devset.sigma_calibration(run.mtz, ds)
    assert cal["IPR"] < 4.0, cal


def test_no_intensity_lost_at_high_angle(p1_run):
    import gemmi

    ds, run = p1_run
    sm = devset._import_score_mtz(ds)
    m = gemmi.read_mtz_file(str(run.mtz))
    grp = devset.partial_groups(m)
    inten, frac, g = grp["ipr"], grp["frac"], grp["hkl"]
    # cut reflections recorded >= 0.4 are completed: (almost) no sum between 0.4 and 0.95
    assert np.mean((frac >= 0.4) & (frac < 0.95 - 1e-3)) < 0.02
    sg = gemmi.SpaceGroup(ds.truth["space_group_full_symbol"])
    th, tf = sm.read_truth(str(ds.path / "truth_F.hkl"))
    rots = sm.laue_rotations(sg)
    tk = sm.canonical_keys(th, rots)
    order = np.argsort(tk)
    tk, tf2 = tk[order], (tf**2)[order]
    best = None
    for p in sm.candidate_reindex_ops(ds.cell, list(m.cell.parameters), 0.05):
        k = sm.canonical_keys(g @ p, rots)
        pos = np.clip(np.searchsorted(tk, k), 0, len(tk) - 1)
        f2 = np.where(tk[pos] == k, tf2[pos], 0.0)
        ok = (f2 > 0) & (frac >= 0.95)
        cc = np.corrcoef(inten[ok], f2[ok])[0, 1]
        if best is None or cc > best[0]:
            best = (cc, f2, ok)
    _, f2, ok = best
    d = np.array([m.cell.calculate_d(list(map(int, h))) for h in g])
    outer = ok & (d <= np.quantile(d[ok], 0.1))
    k_all = np.sum(inten[ok]) / np.sum(f2[ok])
    k_out = np.sum(inten[outer]) / np.sum(f2[outer])
    assert k_out / k_all == pytest.approx(1.0, abs=0.1), (k_out, k_all)
