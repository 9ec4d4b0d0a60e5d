"""Helpers shared by the benchmark scripts: run DIALS as a yardstick, measure, compare with truth.

DIALS is never a dependency of mosflm-py.  Where it is installed (Debian: ``apt-get install dials
python3-dials``) its commands run under the *system* Python (``/usr/bin/python3``), so they are
called by absolute path with a clean environment (no PYTHONPATH, no virtualenv, no numba/pyenv
variables) to keep the two Python installations apart.

Contents
--------
``dials_bin(name)``            absolute path of a DIALS command, or None when DIALS is absent.
``dials_version()``            "DIALS 3.12" or None.
``clean_env(nthreads)``        the environment DIALS commands run in.
``run_measured(cmd, ...)``     run a command, wall time + peak memory of its process tree.
``MemoryPoller``               peak summed PSS/RSS of a process tree, polled from /proc.
``read_dials_mtz(path)``       hkl (original setting), ROT, I/SIGI (sum), IPR/SIGIPR (profile).
``compare_with_truth(...)``    CC(I/sig > 10), median I/I_true, rms z against the simulator's
                               truth after finding the reindexing operator (signed permutation)
                               that maps the program's indices onto the simulation's setting.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIALS_DIR = Path("/usr/bin")


# --------------------------------------------------------------------------- DIALS location
def dials_bin(name: str) -> str | None:
    """Absolute path of the DIALS command ``name`` (e.g. ``"dials.import"``), or None."""
    p = DIALS_DIR / name
    if p.is_file() and os.access(p, os.X_OK):
        return str(p)
    found = shutil.which(name)
    return found


def clean_env(nthreads: int | None = None) -> dict[str, str]:
    """A minimal environment for DIALS (system Python; nothing from our virtualenv/pyenv)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if nthreads is not None:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(nthreads)
    return env


def dials_version() -> str | None:
    """``"DIALS 3.12"`` (first line of ``dials.version``), or None when DIALS is absent/broken."""
    exe = dials_bin("dials.version")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], env=clean_env(), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return out.stdout.strip().splitlines()[0]


# --------------------------------------------------------------------------- memory / timing
def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        # field 4 (ppid) follows the command name in parentheses
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _tree(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _mem_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB (0, 0 if it has gone)."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class MemoryPoller:
    """Poll the memory of a process tree from /proc every ``interval`` s in a thread.

    ``peak_pss_mib``: peak of the summed proportional set size of the tree (shared pages split
    between the processes that map them, so worker processes are not double counted);
    ``peak_rss_mib``: peak of the summed resident set size (counts shared pages once per process,
    an upper bound); ``peak_single_rss_mib``: largest single process (what ``time -v`` reports);
    ``cpu_seconds``: user + system CPU summed over every process seen in the tree (last value
    polled for each; catches worker processes that are never waited for, which
    ``getrusage(RUSAGE_CHILDREN)`` misses).
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_pss_mib = 0.0
        self.peak_rss_mib = 0.0
        self.peak_single_rss_mib = 0.0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pss = rss = single = 0
            for p in _tree(self.pid):
                c = _cpu_s(p)
                if c > 0:
                    self._cpu[p] = max(self._cpu.get(p, 0.0), c)
                a, b = _mem_kib(p)
                pss += a
                rss += b
                single = max(single, b)
            self.peak_pss_mib = max(self.peak_pss_mib, pss / 1024)
            self.peak_rss_mib = max(self.peak_rss_mib, rss / 1024)
            self.peak_single_rss_mib = max(self.peak_single_rss_mib, single / 1024)
            self._stop.wait(self.interval)

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of all processes seen in the tree."""
        return float(sum(self._cpu.values()))


def load_average() -> float:
    """1-minute load average (other work on the machine makes wall times longer)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class Measured:
    """Result of :func:`run_measured`: exit code, wall seconds, CPU seconds (user + system of
    the whole process tree: the larger of ``getrusage(RUSAGE_CHILDREN)`` and the sum polled
    from /proc by :class:`MemoryPoller`), peak memory (MiB), output
    lines with the wall time (s since start) at which each arrived, and the log file written."""

    returncode: int
    seconds: float
    cpu_seconds: float
    peak_pss_mib: float
    peak_rss_mib: float
    peak_single_rss_mib: float
    lines: list[tuple[float, str]]
    log_path: Path | None = None


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
                 stdin_text: str | None = None, log_path: Path | None = None,
                 echo: bool = False) -> Measured:
    """Run ``cmd`` in ``cwd``; time stamp each line of its stdout+stderr, poll its memory."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, bufsize=1,
                            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[tuple[float, str]] = []
    with MemoryPoller(proc.pid) as mem:
        if stdin_text is not None:
            def feed() -> None:
                try:
                    proc.stdin.write(stdin_text)
                    proc.stdin.close()
                except OSError:
                    pass
            threading.Thread(target=feed, daemon=True).start()
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            if echo:
                print(line, end="", flush=True)
        rc = proc.wait()
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    cpu = max(cpu, mem.cpu_seconds)
    if log_path is not None:
        log_path.write_text("".join(f"[{t:8.2f}] {s}\n" for t, s in lines))
    return Measured(rc, seconds, cpu, mem.peak_pss_mib, mem.peak_rss_mib, mem.peak_single_rss_mib,
                    lines, log_path)


# --------------------------------------------------------------------------- MTZ + truth
@dataclass(frozen=True)
class Integrated:
    """Integrated reflections of one program, one row per (possibly summed) record."""

    hkl: np.ndarray          # (n, 3) int, the program's own setting (original, not ASU)
    rot: np.ndarray          # (n,) deg, rotation angle of the centroid
    i_sum: np.ndarray
    sig_sum: np.ndarray
    i_prf: np.ndarray | None
    sig_prf: np.ndarray | None


def read_dials_mtz(path: str | Path) -> Integrated:
    """Read ``dials.export`` unmerged MTZ: original hkl (via M/ISYM), ROT, I/SIGI, IPR/SIGIPR."""
    import gemmi

    mtz = gemmi.read_mtz_file(str(path))
    mtz.switch_to_original_hkl()
    labels = [c.label for c in mtz.columns]
    data = np.array(mtz, copy=False) if hasattr(mtz, "__array__") else np.asarray(mtz.array)

    def col(name):
        return data[:, labels.index(name)] if name in labels else None

    hkl = np.rint(data[:, :3]).astype(np.int64)
    rot = col("ROT")
    if rot is None:
        raise ValueError(f"{path}: no ROT column")
    return Integrated(hkl, rot.astype(float), col("I"), col("SIGI"), col("IPR"), col("SIGIPR"))


def _keys(hkl: np.ndarray) -> np.ndarray:
    h = np.asarray(hkl, np.int64) + 1024
    return (h[:, 0] * 4096 + h[:, 1]) * 4096 + h[:, 2]


SIGNED_PERMUTATIONS = [
    np.array([[s[i] if perm[i] == j else 0 for j in range(3)] for i in range(3)], np.int64)
    for perm in itertools.permutations(range(3)) for s in itertools.product((1, -1), repeat=3)
]
"""The 48 signed permutation matrices (rows: new h, k, l from old)."""


def _truth_table(truth_path: str | Path):
    t = np.load(truth_path)
    ok = t["obs_fully_recorded"] & t["obs_on_detector"] & ~t["obs_small_zeta"]
    tk = _keys(t["obs_hkl"][ok])
    tphi, tI = t["obs_phi"][ok].astype(float), t["obs_intensity"][ok].astype(float)
    order = np.argsort(tk, kind="stable")
    return tk[order], tphi[order], tI[order]


def _match(hkl, rot, table, tol_deg=2.0) -> np.ndarray:
    """Index into the truth table of each record (same hkl, nearest phi within tol), or -1."""
    tk, tphi, _ = table
    key = _keys(hkl)
    lo = np.searchsorted(tk, key, "left")
    hi = np.searchsorted(tk, key, "right")
    match = np.full(len(key), -1)
    width = hi - lo
    for w in np.unique(width[width > 0]):
        sel = np.nonzero(width == w)[0]
        cand = lo[sel, None] + np.arange(w)[None, :]
        d = np.abs(tphi[cand] - rot[sel, None])
        j = np.argmin(d, axis=1)
        best = cand[np.arange(len(sel)), j]
        good = d[np.arange(len(sel)), j] < tol_deg
        match[sel[good]] = best[good]
    return match


def best_reindex(hkl: np.ndarray, rot: np.ndarray, truth_path: str | Path,
                 sample: int = 20000) -> tuple[np.ndarray, float]:
    """Signed permutation ``M`` (hkl_truth = M @ hkl) giving the most (hkl, phi) matches.

    Returns ``(M, matched_fraction)``.  DIALS (or any program) may index in another setting
    of the same lattice; the simulation's setting is recovered by trying all 48 operators.
    """
    table = _truth_table(truth_path)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(hkl), min(sample, len(hkl)), replace=False) if len(hkl) else []
    best, best_n = SIGNED_PERMUTATIONS[0], -1
    for m in SIGNED_PERMUTATIONS:
        n = int((_match(hkl[idx] @ m.T, rot[idx], table) >= 0).sum())
        if n > best_n:
            best, best_n = m, n
    return best, best_n / max(1, len(idx))


@dataclass(frozen=True)
class CCResult:
    """Agreement with the truth for one intensity kind (profile or summation)."""

    n_compared: int
    n_strong: int
    cc_strong: float
    cc_all: float
    ratio: float
    rmsz: float


def compare_with_truth(rec: Integrated, truth_path: str | Path,
                       reindex: np.ndarray | None = None) -> dict[str, CCResult]:
    """CC(I/sig > 10), CC(all), median I/I_true (I/sig > 10), rms (I − I_true)/sig.

    Same definitions as :func:`mosflm_py.truthcheck.compare`: only reflections whose whole
    rocking curve lies inside the sweep (truth ``obs_fully_recorded``) and that match a truth
    observation (same hkl after ``reindex``, phi within 2 deg) are compared.  Records are
    assumed whole (DIALS integrates 3D shoeboxes; ``dials.export`` combines partials).
    """
    table = _truth_table(truth_path)
    hkl = rec.hkl if reindex is None else rec.hkl @ np.asarray(reindex).T
    match = _match(hkl, rec.rot, table)
    out: dict[str, CCResult] = {}
    for name, i, s in (("prf", rec.i_prf, rec.sig_prf), ("sum", rec.i_sum, rec.sig_sum)):
        if i is None or s is None:
            continue
        ok = (match >= 0) & np.isfinite(i) & np.isfinite(s)
        # one record per truth observation (keep the first)
        _, first = np.unique(match[ok], return_index=True)
        sel = np.nonzero(ok)[0][first]
        ii, ss, tr = i[sel].astype(float), s[sel].astype(float), table[2][match[sel]]
        strong = (ss > 0) & (ii / np.where(ss > 0, ss, 1) > 10)
        cc_s = float(np.corrcoef(tr[strong], ii[strong])[0, 1]) if strong.sum() > 2 else np.nan
        cc_a = float(np.corrcoef(tr, ii)[0, 1]) if len(ii) > 2 else np.nan
        ratio = float(np.median(ii[strong] / tr[strong])) if strong.any() else np.nan
        pos = ss > 0
        rmsz = float(np.sqrt(np.mean(((ii[pos] - tr[pos]) / ss[pos]) ** 2))) if pos.any() \
            else np.nan
        out[name] = CCResult(len(sel), int(strong.sum()), cc_s, cc_a, ratio, rmsz)
    return out
