"""Run mosflm-py on the nanoBragg development set the way users do, and score the result.

The development set (``../shared/data/sim/``, see its README.md) holds four rotation series made by
the independent simulator nanoBragg, with full truth and DIALS 3.12's figures.  This module is the
one place that knows how to drive the program on it; tests and ``scripts/bench_devset.py`` use it.

Typical use in a test::

    from devset import dev_set, run_job, score_matrix

    ds = dev_set("dev_p1_smallcell")          # skips the test when ../shared is absent
    run = run_job(ds, "index", tmp_path)       # usage_contract.md "Autoindex" command file
    assert run.lattice == ds.lattice
    assert score_matrix(run.matrix, ds)["max_abs_cell_error_percent_abc"] < 0.5

Command files (``command_file``) are exactly the shapes of ``reference/usage_contract.md``
(autoindex + MOSAIC ESTIMATE; cell refinement with POSTREF SEGMENT 2; integrate a whole sweep),
built only from the image template and the number of images: never a dataset-specific keyword.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIM_ROOT = Path(os.environ.get("MOSFLM_PY_SIM", REPO.parent / "shared" / "data" / "sim"))
NAMES = ("dev_hex_twotheta", "dev_c2221_fine_weak", "dev_p21_highmosaic_ccd", "dev_p1_smallcell")
JOBS = ("index", "cellref", "integrate")
SEGMENT_IMAGES = 3
"""Images per POSTREF segment, as in usage_contract.md's example (PROCESS 1 3 / PROCESS 38 40)."""


@dataclass(frozen=True)
class DevSet:
    """One development-set folder and its truth."""

    name: str
    path: Path
    truth: dict = field(repr=False)

    @property
    def n_images(self) -> int:
        return int(self.truth["n_images"])

    @property
    def first_image(self) -> int:
        return int(self.truth.get("first_image_number", 1))

    @property
    def template(self) -> str:
        """File-name template (without folder), e.g. ``hex2t_1_#####.cbf.gz``."""
        return Path(self.truth["image_template"]).name

    @property
    def image_dir(self) -> Path:
        return self.path / Path(self.truth["image_template"]).parent

    @property
    def lattice(self) -> str:
        """True Bravais lattice (``aP``, ``mP``, ``oC``, ``hP``, ...)."""
        return self.dials_summary()["truth_lattice"]

    @property
    def cell(self) -> list[float]:
        return [float(v) for v in self.truth["cell"]]

    @property
    def mosaic(self) -> float:
        """nanoBragg ``-mosaic`` (deg): the spherical-cap maximum rotation, not a Gaussian sigma."""
        return float(self.truth["mosaic_spread_deg"])

    def dials_summary(self) -> dict:
        """``dials_ref/summary.json`` (DIALS 3.12 reference run)."""
        return json.loads((self.path / "dials_ref" / "summary.json").read_text())


def available() -> list[str]:
    """Names of the development sets present on this machine."""
    return [n for n in NAMES if (SIM_ROOT / n / "truth.json").is_file()]


def dev_set(name: str) -> DevSet:
    """The development set ``name``; skips the calling test when it is absent."""
    path = SIM_ROOT / name
    if not (path / "truth.json").is_file():
        import pytest

        pytest.skip(f"development set {name} not found under {SIM_ROOT}")
    return DevSet(name=name, path=path, truth=json.loads((path / "truth.json").read_text()))


def load(name: str) -> DevSet:
    """Like :func:`dev_set` but raises ``FileNotFoundError`` (for scripts)."""
    path = SIM_ROOT / name
    if not (path / "truth.json").is_file():
        raise FileNotFoundError(f"development set {name} not found under {SIM_ROOT}")
    return DevSet(name=name, path=path, truth=json.loads((path / "truth.json").read_text()))


def command_file(
    kind: str, template: str, directory: Path | str, n_images: int, first: int = 1
) -> str:
    """A usage_contract.md command file.

    ``kind``: ``"index"`` (AUTOINDEX DPS REFINE over all images, MOSAIC ESTIMATE, NEWMAT
    index.mat), ``"cellref"`` (the same, then POSTREF SEGMENT 2 with the first and last
    :data:`SEGMENT_IMAGES` images, NEWMAT refined.mat) or ``"integrate"`` (the same indexing, then
    PROCESS over the whole sweep, HKLOUT integrated.mtz, NEWMAT index.mat).
    """
    last = first + n_images - 1
    head = [f'TEMPLATE "{template}"', f'DIRECTORY "{directory}"']
    index = [f"AUTOINDEX DPS REFINE IMAGE {first} IMAGE {last}", "MOSAIC ESTIMATE", "GO"]
    if kind == "index":
        body = ["NEWMAT index.mat", *index]
    elif kind == "cellref":
        seg = min(SEGMENT_IMAGES, max(1, n_images // 2))
        body = [
            "NEWMAT refined.mat",
            *index,
            "POSTREF SEGMENT 2",
            f"PROCESS {first} {first + seg - 1}",
            "GO",
            f"PROCESS {last - seg + 1} {last}",
            "GO",
        ]
    elif kind == "integrate":
        body = [
            "HKLOUT integrated.mtz",
            "NEWMAT index.mat",
            *index,
            f"PROCESS {first} {last}",
            "GO",
        ]
    else:
        raise ValueError(f"unknown job kind {kind!r} (choose one of {', '.join(JOBS)})")
    return "\n".join([*head, *body, "EXIT"]) + "\n"


@dataclass
class Run:
    """One program run: exit status, log text, wall time and the files it left."""

    kind: str
    workdir: Path
    returncode: int
    log: str
    seconds: float

    @property
    def matrix(self) -> Path | None:
        """The NEWMAT file, if written."""
        name = "refined.mat" if self.kind == "cellref" else "index.mat"
        p = self.workdir / name
        return p if p.is_file() else None

    @property
    def mtz(self) -> Path | None:
        p = self.workdir / "integrated.mtz"
        return p if p.is_file() and self.kind == "integrate" else None

    @property
    def lattice(self) -> str | None:
        """Bravais lattice of AUTOINDEX's suggested solution: MOSFLM's ``Symmetry: oP (...)``
        line after ``Suggested Solution: n``."""
        m = re.search(r"Suggested\s+Solution:.*?Symmetry:\s+([amothcrRiIF][PCIFRS])", self.log,
                      re.S)
        return m.group(1) if m else None

    @property
    def autoindex_cell(self) -> list[float] | None:
        """AUTOINDEX's refined cell (the first ``Final cell (after refinement) is a b c al be ga``
        line, as MOSFLM prints it)."""
        m = re.search(r"Final cell \(after refinement\) is\s+" + r"\s+".join([r"([\d.]+)"] * 6),
                      self.log)
        return [float(v) for v in m.groups()] if m else None

    @property
    def mosaic_estimate(self) -> float | None:
        """MOSAIC ESTIMATE's value (deg): ``The mosaicity has been estimated as ---> x <---``."""
        m = re.search(r"mosaicity has been estimated as\s*-*>\s*([-+\d.]+)", self.log)
        return float(m.group(1)) if m else None

    @property
    def mosaic_refined(self) -> float | None:
        """Last refined mosaic spread (deg): cell refinement's ``Refined mosaic spread ... x``,
        else the last per-image PROCESS line's ``mosaic x``."""
        vals = re.findall(r"Refined mosaic spread[^\d\n]*([-+]?\d+\.\d+)", self.log)
        if not vals:
            vals = re.findall(r"Smoothed value for refined mosaic spread[^:]*:\s*([-+\d.]+)",
                              self.log)
        return float(vals[-1]) if vals else None


def run_job(
    ds: DevSet, kind: str, workdir: Path, timeout: float = 1800.0, extra_env: dict | None = None
) -> Run:
    """Write the ``kind`` command file for ``ds`` in ``workdir`` and pipe it into mosflm-py.

    The program runs as ``python -m mosflm_py`` in a subprocess with this repository first on
    ``PYTHONPATH``; its terminal output is returned in :class:`Run` (and written to
    ``workdir/<kind>.log``).
    """
    return run_command_file(
        command_file(kind, ds.template, ds.image_dir, ds.n_images, ds.first_image),
        kind,
        workdir,
        timeout,
        extra_env,
    )


def run_command_file(
    text: str, kind: str, workdir: Path, timeout: float = 1800.0, extra_env: dict | None = None
) -> Run:
    """Pipe command-file ``text`` into ``python -m mosflm_py`` in ``workdir``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{kind}.com").write_text(text)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra_env or {})
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mosflm_py"],
            input=text,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code, log = -9, out + f"\n*** timed out after {timeout:.0f} s\n"
    seconds = time.perf_counter() - t0
    (workdir / f"{kind}.log").write_text(log)
    return Run(kind=kind, workdir=workdir, returncode=code, log=log, seconds=seconds)


def _tool(ds: DevSet, name: str) -> Path:
    """The development set's scorer ``name`` (``tools/`` beside the sets)."""
    return SIM_ROOT / "tools" / name


def score_matrix(mat: Path | None, ds: DevSet) -> dict:
    """``tools/score_matrix.py`` on a MOSFLM matrix file: its ``static`` block (cell error in
    ``cell_error_percent_abc`` / ``max_abs_cell_error_percent_abc``, ``orientation_error_deg``),
    or ``{"error": ...}``."""
    if mat is None or not Path(mat).is_file():
        return {"error": "no matrix file"}
    proc = subprocess.run(
        [sys.executable, str(_tool(ds, "score_matrix.py")), str(mat), str(ds.path / "truth.json")],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["score_matrix failed"])[-1]}
    return json.loads(proc.stdout)["static"]


def score_mtz(mtz: Path | None, ds: DevSet) -> dict:
    """``tools/score_mtz.py`` (CC against the truth, partials summed), or ``{"error": ...}``."""
    if mtz is None or not Path(mtz).is_file():
        return {"error": "no MTZ file"}
    proc = subprocess.run(
        [sys.executable, str(_tool(ds, "score_mtz.py")), str(mtz), str(ds.path / "truth_F.hkl")],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["score_mtz failed"])[-1]}
    return json.loads(proc.stdout)


def _import_score_mtz(ds: DevSet):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_devset_score_mtz", _tool(ds, "score_mtz.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sigma_calibration(mtz: Path | None, ds: DevSet, min_fraction: float = 0.4) -> dict:
    """rms of ``(I - k F_true^2) / sigma(I)`` for the profile-fitted and summation columns.

    Partials of one reflection (same original hkl, consecutive batches) are summed (variances
    added) as ``score_mtz.py`` does, sums with total FRACTIONCALC below ``min_fraction`` are
    dropped, the re-indexing operator with the best Pearson CC is used, and ``k`` is the
    weighted least-squares scale ``sum(I F2 / s^2) / sum(F2^2 / s^2)``.  Well-calibrated sigmas
    give an rms near 1 (issue 8 asks for 0.8-1.5).  Returns ``{"IPR": rms, "I": rms, "n": ...}``
    or ``{"error": ...}``.
    """
    if mtz is None or not Path(mtz).is_file():
        return {"error": "no MTZ file"}
    import gemmi

    sm = _import_score_mtz(ds)
    try:
        m = gemmi.read_mtz_file(str(mtz))
    except (RuntimeError, ValueError) as exc:
        return {"error": f"gemmi cannot read the MTZ: {exc}"}
    sg = gemmi.SpaceGroup(ds.truth.get("space_group_full_symbol") or ds.truth["space_group"])
    labels = m.column_labels()
    m.switch_to_original_hkl()
    data = np.array(m, copy=False)
    col = {lab: data[:, i] for i, lab in enumerate(labels)}
    if "H" not in col or len(data) == 0:
        return {"error": "empty MTZ"}
    hkl = np.stack([col["H"], col["K"], col["L"]], axis=1).round().astype(np.int64)
    batch = col["BATCH"].round().astype(np.int64) if "BATCH" in col else np.zeros(len(hkl), int)
    o = np.lexsort((batch, hkl[:, 2], hkl[:, 1], hkl[:, 0]))
    hs, bs = hkl[o], batch[o]
    new = np.ones(len(o), bool)
    new[1:] = np.any(hs[1:] != hs[:-1], axis=1) | (bs[1:] - bs[:-1] > 1)
    gid = np.cumsum(new) - 1
    ng = int(gid[-1]) + 1

    def gsum(v):
        return np.bincount(gid, weights=np.asarray(v, float)[o], minlength=ng)

    keep = np.ones(ng, bool)
    if "FRACTIONCALC" in col and min_fraction > 0:
        keep &= gsum(col["FRACTIONCALC"]) >= min_fraction
    th, tf = sm.read_truth(str(ds.path / "truth_F.hkl"))
    rots = sm.laue_rotations(sg)
    tkeys = sm.canonical_keys(th, rots)
    order = np.argsort(tkeys)
    tk, tf2 = tkeys[order], (tf**2)[order]
    g_hkl = hs[new]
    cands = sm.candidate_reindex_ops(ds.cell, list(m.cell.parameters), 0.05)
    if len(cands) == 0:
        cands = np.eye(3, dtype=np.int64)[None]
    out: dict = {}
    for icol, scol in (("IPR", "SIGIPR"), ("I", "SIGI")):
        if icol not in col or scol not in col:
            continue
        ok_rows = np.isfinite(col[icol]) & np.isfinite(col[scol])
        g_ok = np.bincount(gid, weights=(~ok_rows[o]).astype(float), minlength=ng) == 0
        inten = gsum(np.nan_to_num(col[icol]))
        var = gsum(np.nan_to_num(col[scol]) ** 2)
        sel = keep & g_ok & (var > 0)
        best = None
        for p in cands:
            k = sm.canonical_keys(g_hkl[sel] @ p, rots)
            pos = np.clip(np.searchsorted(tk, k), 0, len(tk) - 1)
            f2 = np.where(tk[pos] == k, tf2[pos], 0.0)
            mm = f2 > 0
            cc = sm.pearson(inten[sel][mm], f2[mm]) if mm.sum() > 2 else float("nan")
            if best is None or (not math.isnan(cc) and (math.isnan(best[0]) or cc > best[0])):
                best = (cc, f2, mm)
        _, f2, mm = best
        i_obs, s2, f2 = inten[sel][mm], var[sel][mm], f2[mm]
        if i_obs.size < 3:
            out[icol] = None
            continue
        scale = float(np.sum(i_obs * f2 / s2) / np.sum(f2 * f2 / s2))
        z = (i_obs - scale * f2) / np.sqrt(s2)
        out[icol] = round(float(np.sqrt(np.mean(z * z))), 4)
        out[f"n_{icol}"] = int(i_obs.size)
    return out or {"error": "no intensity columns"}


def fraction_misfit(mtz: Path | None, min_i_sigma: float = 10.0) -> dict:
    """Observed share of each part of a partial against its FRACTIONCALC in a PROCESS MTZ.

    Reads the unmerged file (original indices from M/ISYM, summation I/SIGI, FRACTIONCALC,
    MPART) and applies :func:`mosflm_py.mosaic.fraction_misfit` to the complete partial sets
    with ΣI ≥ ``min_i_sigma``·σ.  Issue 8 asks for ``rms`` ≤ 0.1 on every development set.
    Returns ``{"rms", "rms_excess", "centre_bias", "n_parts", "n_reflections", "by_parts"}`` or
    ``{"error": ...}``.
    """
    if mtz is None or not Path(mtz).is_file():
        return {"error": "no MTZ file"}
    from mosflm_py.mosaic import fraction_misfit as misfit
    from mosflm_py.output.mtz_columns import decode_mpart
    from mosflm_py.scaling.observations import QuickScaleError, read_unmerged

    try:
        obs = read_unmerged(str(mtz), intensities="summation")
    except QuickScaleError as exc:
        return {"error": str(exc)[:60]}
    npart, _ = decode_mpart(obs.mpart, obs.partial)
    r = misfit(obs.hkl, obs.batch, obs.intensity, obs.sigma, obs.fraction, obs.partial,
               np.where(obs.mpart > 0, npart, -1), min_i_sigma=min_i_sigma)
    return {"rms": r.rms, "rms_excess": r.rms_excess, "centre_bias": r.mean_signed_centre,
            "n_parts": r.n_parts, "n_reflections": r.n_reflections,
            "by_parts": {str(k): v for k, v in r.by_parts.items()}}


def partial_groups(mtz) -> dict[str, np.ndarray]:
    """Rows of an unmerged MTZ summed per reflection (same original hkl, consecutive batches),
    as ../shared/data/sim/tools/score_mtz.py does."""
    mtz.switch_to_original_hkl()
    a = np.array(mtz, copy=False)
    c = {lab: a[:, i] for i, lab in enumerate(mtz.column_labels())}
    hkl = np.stack([c["H"], c["K"], c["L"]], axis=1).round().astype(np.int64)
    b = c["BATCH"].round().astype(np.int64)
    o = np.lexsort((b, hkl[:, 2], hkl[:, 1], hkl[:, 0]))
    new = np.ones(len(o), bool)
    new[1:] = np.any(hkl[o][1:] != hkl[o][:-1], axis=1) | (b[o][1:] - b[o][:-1] > 1)
    gid = np.cumsum(new) - 1
    ng = int(gid[-1]) + 1

    def gsum(v):
        return np.bincount(gid, weights=np.asarray(v, float)[o], minlength=ng)

    rot, width = c["ROT"][o], c["WIDTH"][o]
    return {
        "hkl": hkl[o][new],
        "n": np.bincount(gid, minlength=ng),
        "frac": gsum(c["FRACTIONCALC"]),
        "ipr": gsum(np.nan_to_num(c["IPR"])),
        "isum": gsum(np.nan_to_num(c["I"])),
        "var": gsum(np.nan_to_num(c["SIGIPR"]) ** 2),
        "lo": np.minimum.reduceat(rot - 0.5 * width, np.flatnonzero(new)),
        "hi": np.maximum.reduceat(rot + 0.5 * width, np.flatnonzero(new)),
        "bmin": np.minimum.reduceat(b[o], np.flatnonzero(new)),
        "bmax": np.maximum.reduceat(b[o], np.flatnonzero(new)),
    }
