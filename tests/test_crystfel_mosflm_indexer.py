"""CrystFEL's MOSFLM indexer replayed against mosflm-py (issue 10).

CrystFEL (``libcrystfel/src/indexers/mosflm.c``) runs ``mosflm -n`` on a pseudo-terminal, probes
the first ten lines for ``Mosflm version ``, writes the spots of one still as a MOSFLM spot file
(positions projected onto a flat detector at 100 mm, beam at 0 0), then sends one line each time
it reads the prompt ``MOSFLM => ``::

    DETECTOR ADSC
    DETECTOR ROTATION HORIZONTAL ANTICLOCKWISE ORIGIN LL FAST HORIZONTAL RECTANGULAR
    (a blank line: no lattice given)
    DISTANCE 100.000000
    BEAM 0.0 0.0
    WAVELENGTH    1.00000
    NEWMAT xfel.newmat
    IMAGE xfel_001.img phi 0 0
    AUTOINDEX DPS FILE xfel_001.spt IMAGE 1 MAXCELL 1000 REFINE
    GO
    exit

and reads the NEWMAT file back: three lines of the A matrix, six lines skipped, a ``SYMM`` line;
its reciprocal axes in its own frame are ``(-A_Y, -A_Z, A_X) / lambda``.

Here the spots come from a known crystal (pure numpy: reciprocal lattice points within 0.0015
1/A of the Ewald sphere, so the truth does not depend on mosflm-py's geometry code); the test
checks the cell (1 % on lengths, 0.5 deg on angles: one still, positions to 0.01 mm) and that
CrystFEL's conversion of our matrix indexes the true reciprocal lattice (every point with
``|h|, |k|, |l| <= 4`` within 0.1 of integers), which fixes the DETECTOR layout convention.

The IMAGE is CrystFEL's own placeholder (``write_img``: a 512-byte SMV header with
``HEADER_BYTES=512; BYTE_ORDER=little_endian; TYPE=unsigned_short; DIM=2; SIZE1=1; SIZE2=1;``,
no pixel size, distance or beam, then one pixel of value 1): mosflm-py accepts an image too
small to hold data as a header-only placeholder for AUTOINDEX from a spot file, takes the
geometry from the keywords, and refuses it with one message (file, size, what is needed) in
every step that needs pixels.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import gemmi
import numpy as np
import pytest

from mosflm_py.errors import KeywordError, NotImplementedYet
from mosflm_py.geometry.detector_layout import layout_omega

REPO = Path(__file__).resolve().parents[1]
CELL = (61.2, 72.5, 83.1, 90.0, 103.4, 90.0)
WAVELENGTH = 1.0
FAKE_CLEN_MM = 100.0


def _still_spots(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(UB with columns a*, b*, c* in CrystFEL's frame (1/A), spot positions (n, 2) mm)."""
    from scipy.spatial.transform import Rotation

    cell = gemmi.UnitCell(*CELL)
    ub = Rotation.random(random_state=seed).as_matrix() @ np.array(cell.frac.mat.tolist()).T
    n = 40
    h = np.array(np.meshgrid(*[np.arange(-n, n + 1)] * 3, indexing="ij")).reshape(3, -1).T
    r = h @ ub.T
    s1 = r + np.array([0.0, 0.0, 1.0 / WAVELENGTH])
    d = 1.0 / np.maximum(np.linalg.norm(r, axis=1), 1e-9)
    exc = np.abs(np.linalg.norm(s1, axis=1) - 1.0 / WAVELENGTH)
    ok = (d > 2.5) & (exc < 0.0015) & (np.abs(h).sum(1) > 0) & (s1[:, 2] > 0)
    s1 = s1[ok]
    # CrystFEL's write_spt: x = -tan(2theta_x) * clen, y = tan(2theta_y) * clen
    xy = np.column_stack([-FAKE_CLEN_MM * s1[:, 0] / s1[:, 2], FAKE_CLEN_MM * s1[:, 1] / s1[:, 2]])
    return ub, xy[np.hypot(xy[:, 0], xy[:, 1]) < 110.0]


def _write_spt(path: Path, xy: np.ndarray) -> None:
    lines = ["1 1 0.0 1.0 0.0", "0 1", "0.0 0.0"]
    lines += [f"{x:10.2f} {y:10.2f} 0.0 0.0 1000.0 10.0" for x, y in xy]
    lines.append("-999.0 -999.0 -999.0 -999.0 -999.0 -999.0")
    path.write_text("\n".join(lines) + "\n")


def _drive(cwd: Path, commands: list[str], timeout: float = 600.0) -> str:
    """Run ``mosflm-py -n`` on a pty as CrystFEL does: one command per ``MOSFLM => `` prompt."""
    import pty
    import termios

    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosflm_py", "-n"],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    pending = list(commands)
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the program closed the terminal
                    break
                if not data:
                    break
                out += data
            while out.count(b"MOSFLM => ") > seen:
                seen += 1
                if pending:
                    os.write(master, (pending.pop(0) + "\n").encode())
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(master)
    assert not pending, f"the program stopped prompting; unsent: {pending}\n{out.decode()}"
    return out.decode(errors="replace")


def _read_newmat_as_crystfel(path: Path) -> tuple[np.ndarray, str]:
    """CrystFEL's read_newmat: 3 matrix lines, 6 lines skipped, the SYMM line."""
    lines = path.read_text().splitlines()
    a = np.array([[float(v) for v in ln.split()[:3]] for ln in lines[:3]])
    symm = lines[9]
    assert symm.startswith("SYMM "), symm
    return np.array([-a[1], -a[2], a[0]]) / WAVELENGTH, symm[5:]


def _write_placeholder(path: Path) -> None:
    """CrystFEL's write_img: the SMV header padded with spaces to 512 bytes, one pixel = 1."""
    head = ("{\nHEADER_BYTES=512;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\nDIM=2;\n"
            "SIZE1=1;\nSIZE2=1;\n}\n")
    path.write_bytes(head.encode().ljust(512, b" ") + (1).to_bytes(2, "little"))


@pytest.fixture(scope="module")
def crystfel_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crystfel")
    ub, xy = _still_spots()
    _write_spt(folder / "xfel_001.spt", xy)
    _write_placeholder(folder / "xfel_001.img")
    commands = [
        "DETECTOR ADSC",
        "DETECTOR ROTATION HORIZONTAL ANTICLOCKWISE ORIGIN LL FAST HORIZONTAL RECTANGULAR",
        "",
        f"DISTANCE {FAKE_CLEN_MM:f}",
        "BEAM 0.0 0.0",
        f"WAVELENGTH {WAVELENGTH:10.5f}",
        "NEWMAT xfel.newmat",
        "IMAGE xfel_001.img phi 0 0",
        "AUTOINDEX DPS FILE xfel_001.spt IMAGE 1 MAXCELL 1000 REFINE",
        "GO",
        "exit",
    ]
    return folder, ub, len(xy), _drive(folder, commands)


@pytest.mark.slow
def test_crystfel_sequence_gives_the_true_cell_and_orientation(crystfel_run):
    folder, ub, n_spots, out = crystfel_run
    first = out.replace("\r", "").splitlines()[:10]
    assert any("Mosflm version " in ln for ln in first), first  # CrystFEL's mosflm_probe
    assert " *** " not in out, out
    assert f"Spot file xfel_001.spt read: {n_spots} spots" in out
    assert "A header-only placeholder image (too small to hold data):" in out
    m, symm = _read_newmat_as_crystfel(folder / "xfel.newmat")
    assert symm.split()[0] == "P2", symm
    a, b, c = np.linalg.inv(m)  # rows: the real axes (M's columns are a*, b*, c*)

    def angle(u, v):
        return float(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))))

    got = (*np.linalg.norm([a, b, c], axis=1), angle(b, c), angle(c, a), angle(a, b))
    for k in range(3):
        assert abs(got[k] / CELL[k] - 1) < 0.01, (got, CELL)
    for k in range(3, 6):
        assert abs(got[k] - CELL[k]) < 0.5, (got, CELL)
    h = np.array(np.meshgrid(*[np.arange(-4, 5)] * 3, indexing="ij")).reshape(3, -1).T
    hk = np.linalg.solve(m, (h @ ub.T).T).T
    assert np.abs(hk - np.round(hk)).max() < 0.1


def test_detector_layout_rules():
    assert layout_omega("HORIZONTAL", "ANTICLOCKWISE", "LL", "HORIZONTAL") == 180.0
    assert layout_omega("HORIZONTAL", "ANTICLOCKWISE", "UR", "HORIZONTAL") == 0.0
    assert layout_omega("HORIZONTAL", "ANTICLOCKWISE", None, None) is None
    assert layout_omega(None, None, "LL", "HORIZONTAL") == 180.0
    with pytest.raises(KeywordError, match="ORIGIN and FAST must be given together"):
        layout_omega(None, None, "LL", None)
    with pytest.raises(NotImplementedYet, match="mirror-image"):
        layout_omega("HORIZONTAL", "ANTICLOCKWISE", "UL", "HORIZONTAL")
    with pytest.raises(NotImplementedYet, match="turned by 90 degrees"):
        layout_omega("HORIZONTAL", "ANTICLOCKWISE", "UL", "VERTICAL")
    with pytest.raises(NotImplementedYet, match="horizontal spindle"):
        layout_omega("VERTICAL", "ANTICLOCKWISE", "LL", "HORIZONTAL")


def test_detector_keyword_sets_omega_or_refuses():
    import io

    from mosflm_py.session import Session

    s = Session(io.StringIO())
    s.run_lines(
        ["DETECTOR ROTATION HORIZONTAL ANTICLOCKWISE ORIGIN LL FAST HORIZONTAL RECTANGULAR"]
    )
    assert s.state.detector.omega == 180.0
    s.run_lines(["DETECTOR ORIGIN UR FAST HORIZONTAL"])
    assert s.state.detector.omega == 0.0
    out = io.StringIO()
    s = Session(out)
    s.run_lines(["DETECTOR ROTATION HORIZONTAL ANTICLOCKWISE ORIGIN LR FAST HORIZONTAL"])
    s.run_lines(["DETECTOR CIRCULAR"])
    text = " ".join(out.getvalue().split())
    assert "mirror-image pixel layout is not implemented yet" in text
    assert "DETECTOR CIRCULAR: only rectangular detectors" in text
    assert s.state.detector.omega is None


PIXEL_JOBS = [
    ("FINDSPOTS FIND 1", "GO"),
    ("AUTOINDEX DPS IMAGE 1", "GO"),  # spot search: no FILE
    ("MOSAIC ESTIMATE 1", "GO"),
    ("MATRIX m.mat", "MOSAIC 0.3", "PROCESS 1 1 START 0 ANGLE 1", "GO"),
]


@pytest.mark.parametrize("job", PIXEL_JOBS, ids=lambda j: j[-2])
def test_placeholder_is_refused_where_pixels_are_needed(tmp_path, job):
    import io

    from mosflm_py.cli import main as mosflm_main

    _write_placeholder(tmp_path / "xfel_001.img")
    ub, _ = _still_spots()
    a = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]) @ ub * WAVELENGTH
    rows = [" ".join(f"{v:12.8f}" for v in r) for r in a]
    (tmp_path / "m.mat").write_text("\n".join(
        rows + ["0 0 0"] + ["1 0 0", "0 1 0", "0 0 1"] + [" ".join(map(str, CELL)), "0 0 0"]
    ) + "\n")
    script = "\n".join(["DISTANCE 100", "BEAM 0 0", "WAVELENGTH 1", "IMAGE xfel_001.img phi 0 0",
                        *job, "exit"]) + "\n"
    out = io.StringIO()
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        rc = mosflm_main(["--nolog"], stdin=io.StringIO(script), stdout=out)
    finally:
        os.chdir(old)
    text = " ".join(out.getvalue().split())
    assert rc == 1
    assert (f"*** image file {tmp_path / 'xfel_001.img'} is 1 x 1 pixels, too small to hold "
            "data (a header-only placeholder image): this step needs the pixel data of an image "
            "of at least 32 x 32 pixels.") in text, text
    assert "Traceback" not in text
