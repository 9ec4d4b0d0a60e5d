"""QUICKSYMM / QUICKSCALE (issue 13) against known truth and independent computations.

* Synthetic unmerged data (tests/quickscale_synth.py): true Laue group 4/m in a tetragonal cell
  (lattice 4/mmm, so the in-plane 2-folds must be rejected), known smooth scale k(φ) and relative
  B(φ), partials split over 2-3 images with MPART, a known number of incomplete sets.
* Merging statistics recomputed here with plain numpy and gemmi's scalar ASU mapping (no code of
  mosflm_py.scaling), and by cctbx (iotbx.merging_statistics, run in its own process).
* Laue groups on DIALS's unmerged MTZ files of the development sets (truth known) and on real
  MOSFLM MTZ files.
* The keyword path (QUICKSCALE + GO, files written, SUMMARY tables, HTML report), --report after
  PROCESS on the in-package simulator, and clear errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest
from conftest import run_script
from quickscale_synth import make_unmerged, true_b, true_scale

from mosflm_py.cli import parse_argv
from mosflm_py.output.loggraph import parse_loggraph
from mosflm_py.scaling.observations import ROW_FIELDS, read_unmerged, sum_partials
from mosflm_py.scaling.pipeline import QuickScaleOptions, quickscale, quicksymm

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_MTZ = SHARED / "data" / "real" / "mosflm_mtz"
SIM = SHARED / "data" / "sim"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qs_synth")
    syn = make_unmerged(
        str(folder / "syn.mtz"), true_sg="P 4", file_sg="P 1", d_min=2.5, n_images=60
    )
    obs = read_unmerged(syn.path)
    return syn, obs, quickscale(obs)


def test_partials_summed_and_incomplete_sets_rejected(synthetic):
    syn, obs, res = synthetic
    summed, p = sum_partials(obs)
    assert p.n_incomplete == syn.n_incomplete  # every set with a missing part, no other
    assert p.n_summed == syn.n_sets_partial - syn.n_dropped  # every complete set summed
    assert len(summed) == syn.n_observations - syn.n_dropped
    # a summed intensity is the sum of its parts' intensities (checked on one 3-part set)
    three = np.flatnonzero(np.isin(obs.mpart, (31, 301)))  # part 1 of 3 (either MPART code)
    k = three[0]
    same = np.flatnonzero((obs.hkl == obs.hkl[k]).all(axis=1))
    row = np.flatnonzero((summed.hkl == obs.hkl[k]).all(axis=1))
    if len(same) == 3 and len(row) == 1:
        assert summed.intensity[row[0]] == pytest.approx(obs.intensity[same].sum(), rel=1e-6)
        assert summed.sigma[row[0]] == pytest.approx(np.sqrt((obs.sigma[same] ** 2).sum()))


def test_laue_group_found_on_synthetic_data(synthetic):
    syn, _, res = synthetic
    laue = res.symm.laue
    assert laue.lattice == "4/mmm"
    assert laue.best.laue == syn.true_laue == "4/m"
    assert res.space_group.hm == "P 4"
    assert laue.confidence > 0.9
    for e in laue.elements:  # the 4-fold and 2-fold along c present, the in-plane 2-folds not
        if e.axis == "[0 0 1]":
            assert e.likelihood > 0.9, e
        else:
            assert e.likelihood < 0.1, e


def test_scales_recovered(synthetic):
    """Per-image scale within 1.5 % and relative B within 0.5 Å² of the truth (up to the
    overall scale and B, which scaling cannot know)."""
    syn, _, res = synthetic
    phi = np.arange(syn.n_images) + 0.5
    ratio = res.scaling.model.scale(phi) / true_scale(phi)
    assert np.abs(ratio / ratio.mean() - 1).max() < 0.015
    b = res.scaling.model.bfactor(phi)
    bt = true_b(phi)
    assert np.abs((b - b.mean()) - (bt - bt.mean())).max() < 0.5
    # the batch table reports the same model
    assert res.batches[10].scale == pytest.approx(res.scaling.model.scale(10.5)[0], rel=1e-6)
    # the data are internally consistent: the error model stays near 1, few outliers
    assert 0.8 < res.sdfac < 1.3
    assert res.n_outliers < 0.005 * len(res.g)


def _numpy_statistics(hkl, I, sig, cell, sg, d_lo, d_hi):
    """Merging statistics with plain numpy and gemmi's scalar ASU mapping (independent code)."""
    asu = gemmi.ReciprocalAsu(sg)
    ops = sg.operations()
    keys, plus = [], []
    for h in hkl.tolist():
        a, isym = asu.to_asu(h, ops)
        keys.append(tuple(a))
        plus.append(isym % 2 == 1)
    uniq = sorted(set(keys))
    index = {k: i for i, k in enumerate(uniq)}
    g = np.array([index[k] for k in keys])
    n = np.bincount(g)
    w = 1 / sig**2
    mw = np.bincount(g, weights=w * I) / np.bincount(g, weights=w)
    dev = np.abs(I - mw[g])
    multi = n[g] >= 2
    den = I[multi].sum()
    out = {
        "r_merge": dev[multi].sum() / den,
        "r_meas": (np.sqrt(n[g] / np.maximum(n[g] - 1, 1)) * dev)[multi].sum() / den,
        "r_pim": (np.sqrt(1 / np.maximum(n[g] - 1, 1)) * dev)[multi].sum() / den,
        "i_over_sigma": float(np.mean(mw * np.sqrt(np.bincount(g, weights=w)))),
        "n_unique": len(uniq),
        "n_obs": len(I),
        "multiplicity": len(I) / len(uniq),
    }
    # CC1/2, σ-τ method with unit weights (Assmann et al. 2016)
    mu = np.bincount(g, weights=I) / n
    var_mean = np.bincount(g, weights=(I - mu[g]) ** 2) / np.maximum(n - 1, 1) / n
    m2 = n >= 2
    var_y = np.var(mu[m2], ddof=1)
    var_e = 2 * var_mean[m2].mean()
    out["cc_half"] = (var_y - var_e / 2) / (var_y + var_e / 2)
    # completeness: every index in the resolution range, brute force
    hmax = [int(np.ceil(x / d_lo)) for x in (cell.a, cell.b, cell.c)]
    possible = set()
    for h in range(-hmax[0], hmax[0] + 1):
        for k in range(-hmax[1], hmax[1] + 1):
            for m in range(-hmax[2], hmax[2] + 1):
                if (h, k, m) == (0, 0, 0):
                    continue
                d = cell.calculate_d([h, k, m])
                if d_lo * (1 - 1e-9) <= d <= d_hi * (1 + 1e-9):
                    possible.add(tuple(asu.to_asu([h, k, m], ops)[0]))
    out["completeness"] = 100.0 * len(uniq) / len(possible)
    # anomalous completeness: acentric reflections with both I+ and I- measured
    plus = np.array(plus)
    has_p = np.bincount(g, weights=plus.astype(float), minlength=len(uniq)) > 0
    has_m = np.bincount(g, weights=(~plus).astype(float), minlength=len(uniq)) > 0
    centric_u = np.array([ops.is_reflection_centric(list(k)) for k in uniq])
    centric_p = sum(ops.is_reflection_centric(list(k)) for k in possible)
    out["anom_completeness"] = (
        100.0 * np.sum(has_p & has_m & ~centric_u) / (len(possible) - centric_p)
    )
    return out


def test_statistics_equal_plain_numpy(synthetic):
    _, _, res = synthetic
    o = res.observations
    keep = res.keep
    I = (o.intensity / res.g)[keep]
    sig = res.sigma[keep]
    ov = res.stats.overall
    ref = _numpy_statistics(o.hkl[keep], I, sig, o.cell, res.space_group, ov.d_min, ov.d_max)
    for k in (
        "r_merge",
        "r_meas",
        "r_pim",
        "cc_half",
        "i_over_sigma",
        "completeness",
        "multiplicity",
        "anom_completeness",
    ):
        assert getattr(ov, k) == pytest.approx(ref[k], rel=1e-6), k
    assert (ov.n_unique, ov.n_obs) == (ref["n_unique"], ref["n_obs"])
    assert sum(s.n_obs for s in res.stats.shells) == ov.n_obs
    assert ov.cc_star == pytest.approx(np.sqrt(2 * ov.cc_half / (1 + ov.cc_half)))


def test_forced_space_group_and_no_b(synthetic):
    syn, obs, _ = synthetic
    res = quickscale(obs, QuickScaleOptions(space_group="P422", refine_b=False))
    assert res.space_group.hm == "P 4 2 2"
    assert np.all(res.scaling.model.b == 0)
    # merging 4/m data in 4/mmm is wrong: the statistics say so
    good = quickscale(obs)
    assert res.stats.overall.r_meas > 3 * good.stats.overall.r_meas


def test_laue_group_in_a_higher_symmetry_file(tmp_path):
    """MOSFLM writes the indexed lattice's group; M/ISYM gives back the original indices."""
    syn = make_unmerged(
        str(tmp_path / "p422.mtz"),
        true_sg="P 4",
        file_sg="P 4 2 2",
        d_min=3.5,
        n_images=40,
        n_incomplete=0,
        seed=3,
    )
    r = quicksymm(read_unmerged(syn.path))
    assert r.laue.best.laue == "4/m"


DEV_LAUE = {
    "dev_hex_twotheta": "6/mmm",
    "dev_c2221_fine_weak": "mmm",
    "dev_p21_highmosaic_ccd": "2/m",
    "dev_p1_smallcell": "-1",
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(DEV_LAUE))
def test_laue_group_on_dials_unmerged_dev_sets(name):
    """DIALS's integrated.mtz of each development set: the true Laue group is chosen."""
    path = SIM / name / "dials_ref" / "integrated.mtz"
    if not path.exists():
        pytest.skip("development set not present")
    r = quicksymm(read_unmerged(str(path)))
    laue = r.laue
    assert laue.best.laue == DEV_LAUE[name], [(c.laue, c.probability) for c in laue.candidates]
    if name != "dev_c2221_fine_weak":  # a 3-degree weak wedge: few related pairs
        assert laue.confidence > 0.9


@pytest.mark.realdata
def test_laue_elements_on_real_mosflm_files():
    """Real MOSFLM MTZ files: elements scored as the intensities show them.

    hypf_unmerged.mtz (R3 in the file): the 3-fold and the three 2-folds correlate (CC 0.79-0.98
    against 0.97 for repeated measurements), so -3m is chosen (the file's R3 is a subgroup).
    brap_ip_6A.mtz (P212121 in the file, a pseudo-cubic cell 81.1 81.5 82.1): the three 2-folds
    of the file's group are present, the cubic 3-folds absent.
    """
    hypf, brap = REAL_MTZ / "hypf_unmerged.mtz", REAL_MTZ / "brap_ip_6A.mtz"
    if not hypf.exists() or not brap.exists():
        pytest.skip("real MOSFLM MTZ files not present")
    r = quicksymm(read_unmerged(str(hypf)))
    assert r.laue.lattice == "-3m"
    assert r.laue.best.laue == "-3m" and r.space_group.xhm() == "R 3 2:H"
    assert all(e.likelihood > 0.9 for e in r.laue.elements)
    r = quicksymm(read_unmerged(str(brap)))
    assert r.laue.lattice == "m-3m"
    el = {e.label: e for e in r.laue.elements}
    for axis in ("[1 0 0]", "[0 1 0]", "[0 0 1]"):
        assert el[f"2-fold {axis}"].likelihood > 0.9
    assert all(e.likelihood < 0.1 for e in r.laue.elements if e.order == 3)
    assert {"mmm"} <= {c.laue for c in r.laue.candidates}
    best = r.laue.best.ops
    assert all(
        any(np.array_equal(m, b) for b in best)
        for e in r.laue.elements
        if e.likelihood > 0.9
        for m in e.ops
    )


@pytest.fixture(scope="module")
def keyword_run(tmp_path_factory):
    path = REAL_MTZ / "hypf_unmerged.mtz"
    if not path.exists():
        pytest.skip("real MOSFLM MTZ files not present")
    folder = tmp_path_factory.mktemp("qs_kw")
    script = (
        f"QUICKSCALE HKLIN {path} HKLOUT merged.mtz SCALED scaled.mtz REPORT r.html\nGO\nEXIT\n"
    )
    rc, log = run_script(script, folder, ["SUMMARY", "qs.sum"])
    return folder, rc, log


@pytest.mark.realdata
def test_quickscale_keyword_writes_everything(keyword_run):
    folder, rc, log = keyword_run
    assert rc == 0, log
    assert "Best Laue group: -3m" in log and "Merging statistics in R 3 2" in log
    merged = gemmi.read_mtz_file(str(folder / "merged.mtz"))
    assert merged.column_labels() == [
        "H",
        "K",
        "L",
        "IMEAN",
        "SIGIMEAN",
        "I(+)",
        "SIGI(+)",
        "I(-)",
        "SIGI(-)",
    ]
    assert [c.type for c in merged.columns][3:] == ["J", "Q", "K", "M", "K", "M"]
    assert merged.spacegroup.xhm() == "R 3 2:H" and merged.nreflections > 4000
    scaled = gemmi.read_mtz_file(str(folder / "scaled.mtz"))
    assert len(scaled.batches) == 84 and "SCALEUSED" in scaled.column_labels()
    tables = {t.title: t for t in parse_loggraph((folder / "qs.sum").read_text())}
    shells = tables["QuickScale statistics against resolution"]
    assert len(shells.rows) >= 5
    assert "QuickScale scales against batch" in tables
    html = (folder / "r.html").read_text()
    for section in (
        "Summary",
        "Laue group (QuickSymm)",
        "Merging statistics",
        "Scaling",
        "Warnings and advice",
    ):
        assert section in html
    assert "<script" not in html and "http://" not in html and "https://" not in html
    pngs = sorted(folder.glob("r_*.png"))
    assert len(pngs) == 8
    from PIL import Image

    with Image.open(pngs[0]) as im:
        assert im.size == (560, 340)


@pytest.mark.realdata
def test_statistics_agree_with_cctbx(keyword_run):
    """iotbx.merging_statistics on our scaled unmerged MTZ agrees in every shell: R factors,
    ⟨I/σ⟩, completeness and multiplicity to 2 %, CC1/2 to 0.02."""
    folder, rc, log = keyword_run
    pytest.importorskip("iotbx", reason="cctbx-base not installed")
    obs = read_unmerged(str(folder / "scaled.mtz"), intensities="summation")
    from mosflm_py.scaling.merging import merging_statistics

    keep = read_flag(folder / "scaled.mtz") == 0
    st = merging_statistics(
        obs.hkl[keep], obs.intensity[keep], obs.sigma[keep], obs.cell, obs.space_group
    )
    shells = [*st.shells, st.overall]
    arg = json.dumps([[s.d_max * (1 + 1e-6), s.d_min * (1 - 1e-6)] for s in shells])
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "cctbx_merging_stats.py"),
            str(folder / "scaled.mtz"),
            arg,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    ref = json.loads(out.stdout)
    for s, c in zip(shells, ref):
        assert (s.n_obs, s.n_unique) == (c["n_obs"], c["n_uniq"])
        for k in ("r_merge", "r_meas", "r_pim", "i_over_sigma", "completeness", "multiplicity"):
            assert getattr(s, k) == pytest.approx(c[k], rel=0.02), (k, s.d_min)
        assert abs(s.cc_half - c["cc_half"]) < 0.02, s.d_min


def read_flag(path: Path) -> np.ndarray:
    m = gemmi.read_mtz_file(str(path))
    return np.asarray(m.column_with_label("FLAG").array)


def test_missing_input_is_a_clear_error(tmp_path):
    rc, log = run_script("QUICKSCALE\nGO\nEXIT\n", tmp_path)
    assert rc == 1 and "no unmerged MTZ to scale: run PROCESS first" in log
    rc, log = run_script("QUICKSYMM HKLIN nothing.mtz\nGO\nEXIT\n", tmp_path)
    assert rc == 1 and "cannot read the MTZ file nothing.mtz" in log
    assert "Traceback" not in log


def test_report_option_parsed():
    assert parse_argv(["--report"])["report"] == ""
    assert parse_argv(["--report=x.html"])["report"] == "x.html"
    assert parse_argv([])["report"] is None


@pytest.fixture(scope="module")
def simulated_process(tmp_path_factory):
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("qs_process")
    params = default_params(
        nslow=512,
        nfast=512,
        beam_x=45.1,
        beam_y=42.3,
        distance=100.0,
        cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0),
        n_images=12,
        resolution=1.8,
        seed=7,
    )
    simulate_dataset(params, folder, fmt="cbf", name="sim")
    script = (
        "\n".join(
            [
                'TEMPLATE "sim_#####.cbf"',
                f'DIRECTORY "{folder}"',
                "MATRIX truth.mat",
                "SYMMETRY P212121",
                "MOSAIC 0.3",
                "HKLOUT p.mtz",
                "SUMMARY p.sum",
                "PROCESS 1 12",
                "GO",
                "EXIT",
            ]
        )
        + "\n"
    )
    rc, log = run_script(script, folder, ["--report"])
    return folder, rc, log


@pytest.mark.slow
def test_report_after_process_on_simulated_images(simulated_process):
    """PROCESS of 12 simulator images (6°) with --report: QuickScale runs, finds the true Laue
    group (mmm, P212121 simulated) and writes the report with the integration graphs. (With
    3° the 2-folds along a and c relate only 2-3 pairs and the choice is, rightly, uncertain.)"""
    folder, rc, log = simulated_process
    assert rc == 0, log
    assert "QUICKSCALE on p.mtz" in log
    assert "Best Laue group: mmm (P 2 2 2)" in log
    html = (folder / "p_report.html").read_text()
    assert "Integration" in html and "12 images integrated" in html
    assert (folder / "p_report_missets_image.png").exists()
    assert "Image 1 with the predictions" in html and (folder / "p_report_image_1.png").exists()
    assert (folder / "p_merged.mtz").exists() and (folder / "p_scaled.mtz").exists()
    # the standard profiles grid of PROCESS's blocks, embedded and as PNG
    assert "<h2 id=profiles>Standard profiles</h2>" in html
    grids = sorted(folder.glob("p_report_profiles_*.png"))
    assert grids, sorted(p.name for p in folder.iterdir())
    assert "alt='Standard profiles, images 1-" in html


def _chromium(url: str, *flags: str) -> subprocess.CompletedProcess:
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    # no network: every host name resolves to nothing, so a fetch would fail and show
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *flags,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _console_errors(stderr: str) -> list[str]:
    return [
        ln
        for ln in stderr.splitlines()
        if ":CONSOLE" in ln and ("Uncaught" in ln or "Error" in ln or "Failed to load" in ln)
    ]


@pytest.mark.realdata
def test_report_renders_in_headless_chromium(keyword_run, tmp_path):
    """The report opens offline in a real browser: its content is in the DOM, no script error,
    and a screenshot is not blank. The error check is shown to work on a page with a bad
    script."""
    folder, rc, _ = keyword_run
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefined_function();</script></body></html>")
    assert _console_errors(_chromium(bad.as_uri(), "--dump-dom").stderr)
    run = _chromium((folder / "r.html").as_uri(), "--dump-dom")
    assert run.returncode == 0
    assert not _console_errors(run.stderr), _console_errors(run.stderr)
    dom = run.stdout
    assert "mosflm-py QuickScale report" in dom and "Merging statistics" in dom
    assert dom.count("<img") == 8 and "data:image/png;base64," in dom
    shot = tmp_path / "shot.png"
    _chromium((folder / "r.html").as_uri(), f"--screenshot={shot}", "--window-size=1200,1600")
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 1600)
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100  # text and graphs, not a blank page


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(DEV_LAUE))
def test_scaled_merged_data_against_truth(name):
    """DIALS's unmerged data of each development set, scaled and merged by QuickScale,
    correlate with the true F² at least as well as a plain unscaled average of the same
    observations (within 0.002): scaling must not distort the data (a wrongly anchored
    relative B once cost 0.011 on dev_p21_highmosaic_ccd)."""
    base = SIM / name
    if not (base / "dials_ref" / "integrated.mtz").exists():
        pytest.skip("development set not present")
    from mosflm_py.output.mtz_columns import hkl_to_asu
    from mosflm_py.scaling.merging import merge
    from mosflm_py.scaling.observations import hkl_keys

    res = quickscale(read_unmerged(str(base / "dials_ref" / "integrated.mtz")))
    truth = np.loadtxt(base / "truth_F.hkl")
    t_asu, _ = hkl_to_asu(truth[:, :3].astype(int), res.space_group)
    f2 = dict(zip(hkl_keys(t_asu).tolist(), truth[:, 3] ** 2))

    def cc(m):
        keys = hkl_keys(m.hkl).tolist()
        sel = [i for i, k in enumerate(keys) if k in f2]
        return np.corrcoef(m.imean[sel], [f2[keys[i]] for i in sel])[0, 1]

    o = res.observations
    plain = merge(o.hkl, o.intensity, np.ones(len(o)), res.space_group)
    assert cc(res.merged) >= cc(plain) - 0.002


def test_reindexed_to_the_reference_setting(tmp_path):
    """A c-unique monoclinic crystal (as indexed, gamma 80°) is merged in P 1 2 1 with an
    obtuse beta, and the re-indexing keeps every reflection's d-spacing and equivalences."""
    cell = (50.0, 60.0, 70.0, 90.0, 90.0, 80.0)
    syn = make_unmerged(
        str(tmp_path / "mono.mtz"),
        true_sg="P 1 1 2",
        file_sg="P 1",
        cell=cell,
        d_min=3.0,
        n_images=60,
        n_incomplete=0,
        seed=5,
    )
    res = quickscale(read_unmerged(syn.path))
    assert res.symm.laue.best.laue == "2/m"
    assert res.space_group.hm == "P 1 2 1"
    a, b, c, al, be, ga = res.observations.cell.parameters
    assert (al, ga) == (90.0, 90.0) and be == pytest.approx(100.0, abs=1e-3)
    assert sorted((a, b, c)) == pytest.approx([50.0, 60.0, 70.0]) and b == pytest.approx(70.0)
    assert any("reference setting P 1 2 1" in n for n in res.symm.notes)
    # equivalent reflections still agree after re-indexing
    assert res.stats.overall.cc_half > 0.99 and res.stats.overall.r_meas < 0.1


def test_automatic_quickscale_failure_is_reported(tmp_path):
    """With --report, a QuickScale that cannot run after PROCESS is a counted *** failure."""
    import io

    from mosflm_py.actions.quickscale import auto_after_process
    from mosflm_py.experiment_model import IntegrationRun
    from mosflm_py.session import Session
    from mosflm_py.state import State, apply_setting

    out = io.StringIO()
    state = apply_setting(State(), "quickscale.auto", True)
    session = Session(out=out, state=state)
    session.results.integration = IntegrationRun(n_records=0, mtz=str(tmp_path / "gone.mtz"))
    auto_after_process(session)
    assert session.failures == 1
    assert "*** QuickScale after PROCESS failed: cannot read the MTZ file" in out.getvalue()
    quiet = Session(out=io.StringIO())
    quiet.results.integration = session.results.integration
    auto_after_process(quiet)  # not asked for: nothing happens
    assert quiet.failures == 0 and quiet.report.streams[0].getvalue() == ""


def test_bad_options_are_clear_errors(tmp_path):
    rc, log = run_script("QUICKSCALE PARTIALS 1.1 0.9\nGO\nEXIT\n", tmp_path)
    assert rc == 1 and "lower limit of the total fraction must be below the upper one" in log
    rc, log = run_script("QUICKSCALE SPACEGROUP Q99 HKLIN x.mtz\nGO\nEXIT\n", tmp_path)
    assert rc == 1 and "unknown space group 'Q99'" in log
    rc, log = run_script("QUICKSCALE NBINS 0\nEXIT\n", tmp_path)
    assert rc == 1 and "QUICKSCALE NBINS 0" in log
    assert "Traceback" not in log


def test_two_runs_over_the_same_rotation_get_their_own_scales(synthetic):
    """A second run over the same φ range (batches + 1000, half the intensity, as a second
    sweep or inverse beam) is scaled with its own curve: the runs' scales differ by 2."""
    from dataclasses import replace

    syn, obs, single = synthetic
    second = replace(
        obs,
        batch=obs.batch + 1000,
        intensity=obs.intensity * 0.5,
        sigma=obs.sigma * 0.5,
        batch_numbers=obs.batch_numbers + 1000,
    )
    both = replace(
        obs,
        **{
            k: np.concatenate([getattr(obs, k), getattr(second, k)])
            for k in (*ROW_FIELDS, "s0c", "s1c")
        },
        batch_numbers=np.r_[obs.batch_numbers, second.batch_numbers],
        batch_phi=np.r_[obs.batch_phi, obs.batch_phi],
    )
    res = quickscale(both)
    by_batch = {b.batch: b.scale for b in res.batches}
    ratios = [by_batch[b + 1000] / by_batch[b] for b in range(1, syn.n_images + 1)]
    assert np.allclose(ratios, 0.5, rtol=0.01)
    # the merged data are as consistent as one run's (the noise is shared, so Rmeas is lower)
    assert res.stats.overall.r_meas < 1.1 * single.stats.overall.r_meas
