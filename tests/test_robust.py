"""Hostile input (issue 14): physical bounds, consistency checks, output paths, signals, HDF5.

Every bad input gives one clear `` *** `` message naming the line, the value and the allowed
range (or the file), a non-zero exit status, and leaves earlier output files untouched.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_script

from mosflm_py.errors import ImageError

N_IMAGES = 6


def session_output(*lines: str, cwd: Path | None = None) -> tuple[int, str]:
    return run_script("\n".join([*lines, "EXIT"]) + "\n", cwd or Path.cwd())


# ---------------------------------------------------------------------------------------------
# 1. physical bounds of keyword values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("DISTANCE 1e-9", "value 1e-9 is out of range; expected <d> (a number between 1 and 20000)"
                          " (mm)"),
        ("DISTANCE 1E999", "value 1E999 is not a finite number"),
        ("WAVELENGTH 0", "<lambda> (a number between 0.01 and 10) (A)"),
        ("WAVELENGTH nan", "expected <lambda>"),
        ("TWOTHETA 180", "<angle> (a number > -90 and < 90) (deg)"),
        ("PIXEL 0", "<size> (a number between 0.001 and 10) (mm)"),
        ("SIZE 1 1", "<nslow> (a whole number between 32 and 100000)"),
        ("MOSAIC 1E999", "<eta> (a number between 0 and 10) (deg)"),
        ("DIVERGENCE 1E999 1E999", "not a finite number"),
        ("DISPERSION 1E999", "not a finite number"),
        ("NULLPIX 1E999", "not a finite number"),
        ("GAIN 1E999", "<g> (a number > 0 and <= 1000)"),
        ("GAIN 0", "<g> (a number > 0 and <= 1000)"),
        ("NPROC 1E999", "expected <n> (a whole number between 1 and 1024), found '1E999'"),
        ("IMAGE 1 PHI 10 TO 0", "<end> (0) must be at least <start> (10)"),
        ("PROCESS 1 99999999999", "value 99999999999 is out of range; expected <last> (a whole "
                                  "number between 0 and 9999999)"),
        ("PROCESS 1 2 ADD 2147483646", "<offset> (a whole number between 0 and 9999999)"),
        ("PROCESS 5 1", "<last> (1) must be at least <first> (5)"),
        ("RASTER 99999 99999 99999 1 1", "<nxs> (a whole number between 3 and 71)"),
        ("AUTOINDEX DPS THRESHOLD 1E999", "not a finite number"),
        ("AUTOINDEX MAXCELL 1", "<value> (a number between 5 and 5000) (A)"),
        ("AUTOINDEX NVECT 99999999999999", "out of range"),
        ("PROCESS ,,,,", "expected <first> (a whole number between 0 and 9999999), found an "
                         "empty value"),
        ("DIVERGENCE ,,,,", "expected <divh> (a number between 0 and 2) (deg), found an empty "
                            "value"),
        ("PICK ,,,,", "found an empty value"),
        ('HKLOUT ""', "expected <file> (a file name), found an empty name"),
        ("RESOLUTION HIGH 3 LOW 2", "must be smaller than the low-resolution limit"),
        ("RASTER 16 18 13 6 6", "RASTER box 16 x 18 must have odd sizes"),
        ("RASTER 17 19 13 9 10", "RASTER background rim 9 10 leaves no peak in a 17 x 19 box"),
        ("RASTER 17 19 0 6 6", "corner cut-off NC=0 leaves no peak pixels"),
        ("STRATEGY START 0 END 90 PARTS 2147483647", "<n> (a whole number between 1 and 3600)"),
        ("TESTGEN START 0 END 90 STEP 1e-9", "<dphi> (a number between 0.01 and 360) (deg)"),
        ("TESTGEN START 0 END 10 MAXOSC 1e6", "<osc> (a number > 0 and <= 360) (deg)"),
    ],
)
def test_impossible_values_are_refused_with_the_range(tmp_path, line, fragment):
    rc, out = session_output(line, "SHOW", cwd=tmp_path)
    assert rc == 1
    text = " ".join(out.split())
    assert f"*** Error in line 1 ({line}):" in text, out
    assert " ".join(fragment.split()) in text, out
    assert "Internal error" not in out and "Traceback" not in out
    assert "inf" not in out.split("Settings that differ")[-1]


def test_accepted_values_are_finite_in_show(tmp_path):
    rc, out = session_output("DISTANCE 150", "WAVELENGTH 0.9795", "TWOTHETA 30", "MOSAIC 0.4",
                             "CELL 50,,60", "SHOW", cwd=tmp_path)
    assert rc == 0, out
    assert re.search(r"detector.distance\s+150", out)
    assert re.search(r"crystal.cell\s+50 50 60 90 90 90", out)


# ---------------------------------------------------------------------------------------------
# input files and command line
# ---------------------------------------------------------------------------------------------


def test_continuation_at_the_end_of_input_is_an_error(tmp_path):
    rc, out = run_script("DISTANCE 100 -\n", tmp_path)
    assert rc == 1
    assert "*** Error in line 1 (DISTANCE 100)" in out
    assert "ends with a continuation mark" in out


def test_include_errors_are_messages(tmp_path):
    rc, out = session_output("@~nosuchuser_mosflm/x", "@a\x00b", cwd=tmp_path)
    assert rc == 1
    assert "cannot read the command file @~nosuchuser_mosflm/x" in out
    assert "embedded null byte" in out
    assert "Traceback" not in out


def _cli(args: list[str], stdin, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "mosflm_py", *args], stdin=stdin, cwd=cwd,
                          env=env, capture_output=True, timeout=120, **kw)


def test_closed_stdin_full_stdout_and_cr_line_endings(tmp_path):
    closed = _cli(["--nolog"], subprocess.DEVNULL, tmp_path)
    assert closed.returncode == 0  # empty input: nothing to do
    script = tmp_path / "job.com"
    script.write_bytes(b"TITLE x\rDISTANCE 123\rSHOW\r")
    with open(script, "rb") as fh:
        cr = _cli(["--nolog"], fh, tmp_path)
    assert cr.returncode == 0, cr.stdout
    assert re.search(rb"detector.distance\s+123", cr.stdout)
    if os.path.exists("/dev/full"):
        with open(script, "rb") as fh, open("/dev/full", "w") as full:
            env = dict(os.environ, PYTHONPATH=str(REPO))
            res = subprocess.run([sys.executable, "-m", "mosflm_py", "--nolog"], stdin=fh,
                                 stdout=full, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
                                 timeout=120)
        assert res.returncode == 1
        assert b"Traceback" not in res.stderr
        assert b"No space left on device" in res.stderr


def test_closed_stdin_descriptor(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    res = subprocess.run(f"{sys.executable} -m mosflm_py --nolog <&-", shell=True, cwd=tmp_path,
                         env=env, capture_output=True, timeout=120)
    assert res.returncode == 2
    assert b"standard input is closed" in res.stderr
    assert b"Traceback" not in res.stderr


def test_log_names_are_unique_per_run(tmp_path):
    from mosflm_py.cli import open_new_log

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        opened = [open_new_log() for _ in range(3)]
    finally:
        os.chdir(old)
    names = [n for _, n in opened]
    for fh, _ in opened:
        fh.close()
    assert len(set(names)) == 3
    assert names[1] == names[0][:-3] + "_2.lp"


# ---------------------------------------------------------------------------------------------
# 2-3. data sets: header sanity, series consistency, checksums, symmetry, output paths, HDF5
# ---------------------------------------------------------------------------------------------


def _params():
    from mosflm_py.simulate import default_params

    return default_params(nslow=512, nfast=512, beam_x=45.1, beam_y=42.3, distance=100.0,
                          cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=N_IMAGES,
                          resolution=1.8, seed=7)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """The same simulated sweep as CBF files and as an Eiger-style HDF5 master + data pair."""
    from mosflm_py.simulate import simulate_dataset

    folder = tmp_path_factory.mktemp("robust_sim")
    simulate_dataset(_params(), folder, fmt="cbf", name="sim")
    simulate_dataset(_params(), folder, fmt="hdf5", name="sim")
    return folder


def _copy(sim: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in sim.iterdir():
        shutil.copy(f, dest / f.name)
    return dest


PROCESS_LINES = ["MATRIX truth.mat", "SYMMETRY P212121", "MOSAIC 0.3"]


def test_header_values_are_checked_with_the_file_named(sim, tmp_path):
    folder = _copy(sim, tmp_path / "hdr")
    f1 = folder / "sim_00001.cbf"
    text = f1.read_bytes()
    bad = re.sub(rb"# Wavelength [0-9.]+ A", b"# Wavelength 0 A", text)
    assert bad != text
    f1.write_bytes(bad)
    rc, out = session_output('TEMPLATE "sim_#####.cbf"', "IMAGE 1", cwd=folder)
    assert rc == 1
    assert re.search(r"image file \S*sim_00001.cbf: the header gives the wavelength as 0 A",
                     " ".join(out.split()))
    assert "give the WAVELENGTH keyword to override" in " ".join(out.split())
    rc, out = session_output('TEMPLATE "sim_#####.cbf"', "WAVELENGTH 1.0", "IMAGE 1", cwd=folder)
    assert rc == 0, out  # the keyword overrides the impossible header value


def test_a_one_pixel_header_is_a_placeholder_and_an_impossible_size_is_refused():
    """An image too small to hold data (1 pixel wide) is kept as a header-only placeholder whose
    pixels are refused (CrystFEL's 1 x 1 image for AUTOINDEX ... FILE, issue 10); a size of 0 is
    impossible and refused at once."""
    from mosflm_py.imageio.header import ImageHeader
    from mosflm_py.imageio.sanity import check_header

    hdr = ImageHeader(path="x.cbf", frame=None, format="CbfImage", detector_type="PILATUS",
                      nslow=1, nfast=2463, wavelength=1.0, distance=100.0, beam_x=1e9)
    small = check_header(hdr)
    assert small.no_pixels == (
        "image file x.cbf is 1 x 2463 pixels, too small to hold data (a header-only placeholder "
        "image): this step needs the pixel data of an image of at least 32 x 32 pixels. Only "
        "AUTOINDEX from a spot file (AUTOINDEX ... FILE name) works with a placeholder image")
    with pytest.raises(ImageError, match=r"x.cbf: the header gives the number of pixels \(slow\)"
                                         r" as 0, which is out of range"):
        check_header(hdr.with_values(nslow=0))
    ok = check_header(hdr.with_values(nslow=2527))
    assert ok.no_pixels is None
    assert ok.beam_x is None and "beam position X" in ok.rejected["beam_x"]


def test_series_with_an_image_of_another_size_is_refused(sim, tmp_path):
    import fabio

    folder = _copy(sim, tmp_path / "size")
    img = fabio.open(str(folder / "sim_00003.cbf"))
    small = fabio.cbfimage.CbfImage(data=np.ascontiguousarray(img.data[:256, :]),
                                    header=img.header)
    small.write(str(folder / "sim_00003.cbf"))
    from mosflm_py.imageio.series import ImageSeries

    series = ImageSeries.from_template("sim_#####.cbf", [str(folder)])
    assert series.frame(1).shape == (512, 512)
    with pytest.raises(ImageError, match="every image of a series must have the same size"):
        series.header(3)


def test_cbf_checksum_mismatch_names_the_file(sim, tmp_path):
    from mosflm_py.imageio.formats import read_frame

    folder = _copy(sim, tmp_path / "md5")
    path = folder / "sim_00002.cbf"
    raw = bytearray(path.read_bytes())
    raw[raw.find(b"\x0c\x1a\x04\xd5") + 4000] ^= 0x08
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageError, match=r"sim_00002.cbf is corrupt: the MD5 checksum"):
        read_frame(str(path))


def test_smv_file_named_cbf_is_read_by_its_content(tmp_path):
    from mosflm_py.imageio.formats import read_frame, read_header
    from mosflm_py.simulate import default_params, simulate_dataset

    p = default_params(nslow=128, nfast=128, beam_x=11.0, beam_y=10.5, distance=60.0,
                       cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=1, resolution=3.0)
    simulate_dataset(p, tmp_path, fmt="smv", name="s")
    fake = tmp_path / "fake_001.cbf"
    shutil.copy(tmp_path / "s_001.img", fake)
    hdr = read_header(str(fake))
    assert (hdr.nslow, hdr.nfast) == (128, 128)
    assert hdr.format != "CbfImage"
    assert read_frame(str(fake)).shape == (128, 128)


def test_symmetry_incompatible_with_the_cell_lists_compatible_groups(sim, tmp_path):
    folder = _copy(sim, tmp_path / "sym")
    (folder / "old.mtz").write_bytes(b"old")
    rc, out = session_output('TEMPLATE "sim_#####.cbf"', "MATRIX truth.mat", "SYMMETRY 230",
                             "MOSAIC 0.3", "HKLOUT old.mtz", "PROCESS 1 2", "GO", cwd=folder)
    text = " ".join(out.split())
    assert rc == 1
    assert "SYMMETRY I a -3 d (cubic) is not compatible with the cell 41.30 47.90 58.20" in text
    assert "Compatible space groups (highest symmetry first): I212121, I222, F222" in text
    assert "(job PROCESS 1 2 given in input line 6)" in text
    assert (folder / "old.mtz").read_bytes() == b"old"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("HKLOUT /nonexistent_mosflm/x.mtz", "The folder of the HKLOUT file "
                                             "/nonexistent_mosflm/x.mtz (/nonexistent_mosflm) "
                                             "does not exist."),
        ("HKLOUT .", "The HKLOUT file . is a folder, not a file name."),
        ("SUMMARY sub", "The SUMMARY file sub is a folder, not a file name."),
        ("MTZDIRECTORY /nonexistent_mosflm", "The MTZDIRECTORY folder (/nonexistent_mosflm) "
                                             "does not exist."),
    ],
)
def test_output_paths_are_checked_before_processing(sim, tmp_path, line, fragment):
    folder = _copy(sim, tmp_path / "out")
    (folder / "sub").mkdir()
    t0 = time.perf_counter()
    rc, out = session_output('TEMPLATE "sim_#####.cbf"', *PROCESS_LINES, line, "PROCESS 1 6",
                             "GO", cwd=folder)
    assert rc == 1
    assert fragment in " ".join(out.split()), out
    assert "reflections integrated" not in out
    assert time.perf_counter() - t0 < 30


def test_hdf5_process_with_one_and_two_workers(sim, tmp_path):
    """PROCESS on an Eiger master (was 'image file True does not exist'): same MTZ as the CBFs."""
    import gemmi

    folder = _copy(sim, tmp_path / "h5")
    results = {}
    for name, template, nproc in (("cbf", '"sim_#####.cbf"', 1), ("h5_1", "sim_master.h5", 1),
                                  ("h5_2", "sim_master.h5", 2)):
        rc, out = session_output(f"TEMPLATE {template}", *PROCESS_LINES, f"NPROC {nproc}",
                                 f"HKLOUT {name}.mtz", f"PROCESS 1 {N_IMAGES}", "GO",
                                 cwd=folder)
        assert rc == 0, out
        mtz = gemmi.read_mtz_file(str(folder / f"{name}.mtz"))
        results[name] = np.array(mtz, copy=False)
        assert mtz.nreflections > 1000
    # the same pixels give the same reflections, whatever the file format and the workers
    np.testing.assert_array_equal(results["h5_1"], results["h5_2"])
    np.testing.assert_allclose(results["h5_1"], results["cbf"], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# 4. signals
# ---------------------------------------------------------------------------------------------


def _signal_run(folder: Path, sig: int, group: bool, after: str | None, delay: float,
                nproc: int = 2, job: list[str] | None = None,
                second: tuple[int, float] | None = None, env: dict[str, str] | None = None,
                ) -> tuple[int, str, str, list[str]]:
    """Start PROCESS (or *job*) in a new session, send *sig* once *after* appears (plus *delay*
    s); *second* = (signal, delay): another signal to the group that much later; *env*: more
    environment variables."""
    (folder / "keep.mtz").write_bytes(b"previous good file")
    (folder / "keep.mat").write_bytes(b"previous good matrix")
    script = folder / "job.com"
    job = job or [*PROCESS_LINES, f"NPROC {nproc}", "HKLOUT keep.mtz", f"PROCESS 1 {N_IMAGES}"]
    script.write_text("\n".join(["TEMPLATE sim_master.h5", *job, "GO", "EXIT", ""]))
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    with open(script) as fh:
        p = subprocess.Popen([sys.executable, "-m", "mosflm_py", "--nolog"], stdin=fh,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder, env=env,
                             start_new_session=True, text=True)
    lines = []
    deadline = time.monotonic() + 120
    if after is not None:
        for line in p.stdout:
            lines.append(line)
            if after in line or time.monotonic() > deadline:
                break
    time.sleep(delay)
    try:
        if group:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        if second is not None:
            time.sleep(second[1])
            os.killpg(p.pid, second[0])
    except ProcessLookupError:
        pass
    out = p.stdout.read()  # through the same buffer as the lines read above (communicate()
    err = p.stderr.read()  # would read the pipe behind it and lose what the buffer holds)
    p.wait(timeout=120)
    time.sleep(0.3)
    left = subprocess.run(["ps", "-o", "pid=", "-g", str(p.pid)], capture_output=True,
                          text=True).stdout.split()
    return p.returncode, "".join(lines) + out, err, left


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "group", "after", "delay"),
    [
        (signal.SIGINT, True, None, 0.3),  # during the imports
        (signal.SIGINT, True, " ===> GO", 0.1),  # PROCESS starting its workers (Ctrl-C)
        (signal.SIGINT, True, " ===> GO", 0.5),
        (signal.SIGINT, True, " ===> GO", 1.0),
        (signal.SIGINT, True, "Standard profiles", 0.0),  # PROCESS with workers busy
        (signal.SIGTERM, False, " ===> GO", 1.0),  # SIGTERM to the main process only
        (signal.SIGTERM, True, None, 0.5),
    ],
)
def test_signals_stop_cleanly(sim, tmp_path, sig, group, after, delay):
    folder = _copy(sim, tmp_path / "sig")
    rc, out, err, left = _signal_run(folder, sig, group, after, delay)
    if rc == 0:  # the run finished first: then its output must be complete
        import gemmi

        assert gemmi.read_mtz_file(str(folder / "keep.mtz")).nreflections > 0
        return
    assert rc == (130 if sig == signal.SIGINT else 143), out + err
    stars = [line for line in out.splitlines() if line.startswith(" *** ")]
    assert len(stars) == 1, out
    word = "Interrupted (Ctrl-C)" if sig == signal.SIGINT else "Terminated (SIGTERM)"
    assert word in stars[0]
    assert "Traceback" not in out + err and "Exception ignored" not in err, err
    assert (folder / "keep.mtz").read_bytes() == b"previous good file"
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert left == [], f"processes left behind: {left}"


def _assert_stopped_cleanly(rc: int, sig: int, out: str, err: str, folder: Path,
                            left: list[str]) -> None:
    assert rc == (130 if sig == signal.SIGINT else 143), out + err
    stars = [line for line in out.splitlines() if line.startswith(" *** ")]
    assert len(stars) == 1, out
    assert "Traceback" not in out + err and "Exception ignored" not in err, err
    assert "Normal termination" not in out
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert left == [], f"processes left behind: {left}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "after", "delay"),
    [
        (signal.SIGINT, " ===> EXIT", 0.0),  # while EXIT runs
        (signal.SIGINT, "Normal termination", 0.0),  # final flush and close
        (signal.SIGTERM, "Normal termination", 0.003),
        (signal.SIGINT, "Normal termination", 0.02),  # interpreter shutdown
        (signal.SIGTERM, "Normal termination", 0.08),
    ],
)
def test_a_signal_at_the_end_of_a_run_keeps_its_complete_outputs(sim, tmp_path, sig, after,
                                                                  delay):
    """Ctrl-C / SIGTERM in the last moments of a run whose outputs are written: exit 0 and the
    new MTZ complete (or, before EXIT took effect, exit 130/143 with one *** line), never an
    interpreter killed by the signal or a traceback (was: status -2 / -15)."""
    import gemmi

    folder = _copy(sim, tmp_path / "late")
    job = [*PROCESS_LINES, "NPROC 1", "HKLOUT keep.mtz", "PROCESS 1 2"]
    rc, out, err, left = _signal_run(folder, sig, True, after, delay, job=job)
    assert "Traceback" not in out + err and "Exception ignored" not in err, err
    assert left == [] and not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert rc == 0 or (after == " ===> EXIT" and rc == 130), (rc, out[-2000:], err)
    assert ("Normal termination" in out) == (rc == 0)
    assert len([x for x in out.splitlines() if x.startswith(" *** ")]) == (rc != 0)
    assert gemmi.read_mtz_file(str(folder / "keep.mtz")).nreflections > 100  # written by GO


@pytest.mark.slow
def test_a_signal_right_after_start_stops_cleanly(tmp_path):
    """Ctrl-C at several moments of the start (imports, preload): exit 130 and one *** line.
    A signal that reaches the interpreter before the first line of mosflm-py runs (its own
    start-up) is the interpreter's: then there is no output and no mosflm_py frame below
    ``__main__``'s first import."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    seen = set()
    for delay in (0.02, 0.08, 0.15, 0.25, 0.4, 0.7):
        p = subprocess.Popen([sys.executable, "-m", "mosflm_py", "--nolog"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=tmp_path, env=env,
                             start_new_session=True, text=True)
        p.stdin.write("DISTANCE 100\nEXIT\n")
        p.stdin.close()
        p.stdin = None
        time.sleep(delay)
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode != 130 and not out:  # before signals.hold(), the program's first line
            ours = [f for f in re.findall(r'File "([^"]+)"', err)
                    if f.startswith(str(REPO / "mosflm_py"))]
            assert all(f.endswith("__main__.py") for f in ours), err
            continue
        seen.add(p.returncode)
        assert p.returncode in (0, 130), out + err
        assert "Traceback" not in out + err and "Exception ignored" not in err, err
        stars = [x for x in out.splitlines() if x.startswith(" *** ")]
        assert len(stars) == (p.returncode == 130), out
    assert 130 in seen


@pytest.mark.slow
def test_a_second_signal_does_not_cut_the_clean_up_short(sim, tmp_path):
    """Ctrl-C then SIGTERM 10 ms later (the first is still unwinding): one *** line, no
    traceback, no temporary file, no worker left, the old MTZ untouched."""
    folder = _copy(sim, tmp_path / "twice")
    rc, out, err, left = _signal_run(folder, signal.SIGINT, True, "Standard profiles", 0.0,
                                     second=(signal.SIGTERM, 0.01))
    if rc == 0:
        pytest.skip("the run finished before the signals")
    # 143 when the SIGINT was held (workers starting) and the SIGTERM came before it was raised
    _assert_stopped_cleanly(rc, signal.SIGTERM if rc == 143 else signal.SIGINT, out, err,
                            folder, left)
    assert (folder / "keep.mtz").read_bytes() == b"previous good file"


@pytest.mark.slow
@pytest.mark.parametrize(("after", "delay"), [(" ===> GO", 0.05), (" ===> GO", 0.4),
                                              ("Spot search", 0.0), ("spots found", 0.0)])
def test_signals_during_spot_finding_and_indexing_stop_cleanly(sim, tmp_path, after, delay):
    """Ctrl-C while AUTOINDEX reads images, finds spots or indexes: exit 130, one *** line, no
    traceback, NEWMAT's earlier file untouched."""
    folder = _copy(sim, tmp_path / "sigai")
    job = ["NEWMAT keep.mat", f"AUTOINDEX DPS REFINE IMAGE 1 IMAGE {N_IMAGES}",
           "MOSAIC ESTIMATE"]
    rc, out, err, left = _signal_run(folder, signal.SIGINT, True, after, delay, job=job)
    if rc == 0:  # finished first: then the new matrix file is complete
        assert (folder / "keep.mat").read_bytes() != b"previous good matrix"
        return
    assert rc == 130, out + err
    stars = [line for line in out.splitlines() if line.startswith(" *** ")]
    assert len(stars) == 1 and "Interrupted (Ctrl-C)" in stars[0], out
    assert "Traceback" not in out + err and "Exception ignored" not in err, err
    assert (folder / "keep.mat").read_bytes() == b"previous good matrix"
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")]
    assert left == [], f"processes left behind: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 3.0])
def test_ctrl_c_during_numba_compilation_stops_cleanly(sim, tmp_path, delay):
    """Ctrl-C while numba compiles the spot-finding kernels (a fresh, empty NUMBA_CACHE_DIR, so
    the first FINDSPOTS of AUTOINDEX compiles; this takes several seconds). Numba compiles
    through ctypes callbacks that swallow the KeyboardInterrupt (issue 14: the run went on and
    replaced every output): exit 130, one *** line, no traceback, no temporary file, the
    earlier matrix file untouched."""
    folder = _copy(sim, tmp_path / "numba")
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    job = ["NEWMAT keep.mat", "FINDSPOTS FILE keep.spt",
           f"AUTOINDEX DPS REFINE IMAGE 1 IMAGE {N_IMAGES}"]
    rc, out, err, left = _signal_run(folder, signal.SIGINT, True, " ===> GO", delay, job=job,
                                     env={"NUMBA_CACHE_DIR": str(cache)})
    if "Spot search on image 1" in out:  # compiled before the signal (very fast machine)
        pytest.skip(f"compilation ended within {delay} s")
    # numba looked for its cache in the fresh folder, so it was compiling, not loading
    assert [d.name for d in cache.iterdir() if d.name.startswith("kernels")], out
    _assert_stopped_cleanly(rc, signal.SIGINT, out, err, folder, left)
    assert "Interrupted (Ctrl-C)" in out
    assert (folder / "keep.mat").read_bytes() == b"previous good matrix"
    assert not (folder / "keep.spt").exists()
    assert not [f for f in os.listdir(folder) if f.startswith(".") and "tmp" in f]


def test_interrupt_in_a_batch_stops_the_run(sim, tmp_path, monkeypatch):
    """A KeyboardInterrupt inside PROCESS ends a batch run (not just the job): exit 130."""
    folder = _copy(sim, tmp_path / "int")
    (folder / "keep.mtz").write_bytes(b"old")
    import mosflm_py.actions.integrate as integrate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr(integrate, "run_blocks", interrupted)
    out = io.StringIO()
    from mosflm_py.cli import main

    old = os.getcwd()
    os.chdir(folder)
    try:
        script = "\n".join(['TEMPLATE "sim_#####.cbf"', *PROCESS_LINES, "HKLOUT keep.mtz",
                            "PROCESS 1 2", "GO", "DISTANCE 100", ""])
        rc = main(["--nolog"], stdin=io.StringIO(script), stdout=out)
    finally:
        os.chdir(old)
    assert rc == 130
    assert "===> DISTANCE 100" not in out.getvalue()
    assert (folder / "keep.mtz").read_bytes() == b"old"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("DISTANCE 19000", "the detector records nothing finer than 290 A: no Bragg spots would "
                           "be measured"),
        ("BEAM 4000 4000", "The beam position (4000, 4000 mm) is far outside the detector of "
                           "image 1 (0 to 88.1 mm by 0 to 88.1 mm)"),
    ],
)
def test_geometry_without_a_pattern_is_refused_before_work(sim, tmp_path, line, fragment):
    folder = _copy(sim, tmp_path / "geom")
    (folder / "old.mtz").write_bytes(b"old")
    rc, out = session_output("TEMPLATE sim_master.h5", *PROCESS_LINES, "HKLOUT old.mtz", line,
                             "PROCESS 1 2", "GO", cwd=folder)
    assert rc == 1
    assert fragment in " ".join(out.split()), out
    assert "Internal error" not in out
    assert (folder / "old.mtz").read_bytes() == b"old"


@pytest.mark.parametrize("kind", ["gzip", "hdf5", "mar345"])
def test_corrupt_files_in_a_session_fail_clearly_and_keep_the_old_mtz(sim, tmp_path, kind):
    """A truncated gzip CBF, a truncated HDF5 master and a mar345 file whose packed data are cut
    short, given to PROCESS: one *** message naming the file, exit 1, the old MTZ untouched."""
    import gzip

    folder = _copy(sim, tmp_path / f"bad_{kind}")
    (folder / "old.mtz").write_bytes(b"old")
    if kind == "gzip":
        raw = gzip.compress((folder / "sim_00001.cbf").read_bytes())
        (folder / "gz_00001.cbf.gz").write_bytes(raw[: len(raw) // 2])
        template, name = '"gz_#####.cbf.gz"', "gz_00001.cbf.gz"
    elif kind == "hdf5":
        raw = (folder / "sim_master.h5").read_bytes()
        (folder / "bad_master.h5").write_bytes(raw[: len(raw) // 3])
        template, name = "bad_master.h5", "bad_master.h5"
    else:
        from mosflm_py.imageio.formats import read_frame
        from mosflm_py.simulate.writers import write_mar345

        write_mar345(folder / "m_001.mar512", read_frame(str(folder / "sim_00001.cbf")),
                     _params(), 1)
        raw = (folder / "m_001.mar512").read_bytes()
        (folder / "m_001.mar512").write_bytes(raw[: len(raw) - 2000])
        template, name = '"m_###.mar512"', "m_001.mar512"
    rc, out = session_output(f"TEMPLATE {template}", *PROCESS_LINES, "HKLOUT old.mtz",
                             "PROCESS 1 1", "GO", cwd=folder)
    text = " ".join(out.split())
    assert rc == 1, out
    assert "Internal error" not in out and "Traceback" not in out
    assert name in text, out
    assert (folder / "old.mtz").read_bytes() == b"old"


def test_exit_in_a_library_session_leaves_the_signal_handlers_alone():
    """EXIT ignores late signals only in the program (its own handlers installed): a Session
    used as a library (or in a test) keeps its SIGINT disposition, and so do its children."""
    from mosflm_py.session import Session

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    session = Session(out=io.StringIO(), interactive=False)
    session.execute("EXIT")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
