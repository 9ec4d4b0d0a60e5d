"""Outputs on a full disk (issue 14): one `` *** `` message naming the file, a non-zero exit,
the earlier file untouched and no temporary file left, for HKLOUT, SUMMARY, NEWMAT, the spot
file and the log.

A full disk is made without root privileges: the temporary file that :mod:`mosflm_py.atomic`
creates next to the target is swapped for a symbolic link to ``/dev/full``, on which every
write fails with ``ENOSPC`` (the log: ``LOGFILE`` names such a link). The program's own writers
(Python, gemmi, numpy) then meet the error exactly as on a full file system.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REPO, run_script

import mosflm_py.atomic as atomic

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")

OLD = b"previous good file\n"


def _full_disk_for(monkeypatch, name: str) -> None:
    """Temporary files of the output *name* are links to /dev/full."""
    real = tempfile.mkstemp

    def mkstemp(*args, **kw):
        fd, tmp = real(*args, **kw)
        if os.path.basename(tmp).startswith(f".{name}."):
            os.close(fd)
            os.unlink(tmp)
            os.symlink("/dev/full", tmp)
            fd = os.open(tmp, os.O_WRONLY)
        return fd, tmp

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    from mosflm_py.simulate import default_params, simulate_dataset

    folder = tmp_path_factory.mktemp("full_sim")
    params = default_params(nslow=512, nfast=512, beam_x=45.1, beam_y=42.3, distance=100.0,
                            cell=(41.3, 47.9, 58.2, 90.0, 90.0, 90.0), n_images=3,
                            resolution=1.8, seed=7)
    simulate_dataset(params, folder, fmt="cbf", name="sim")
    return folder


TEMPLATE = 'TEMPLATE "sim_#####.cbf"'
PROCESS = [TEMPLATE, "MATRIX truth.mat", "SYMMETRY P212121", "MOSAIC 0.3"]
INDEX = [TEMPLATE, "AUTOINDEX DPS IMAGE 1 IMAGE 3"]


@pytest.mark.parametrize(
    ("name", "lines", "argv"),
    [
        ("keep.mtz", [*PROCESS, "HKLOUT keep.mtz", "PROCESS 1 3", "GO"], None),
        ("keep.sum", [*PROCESS, "HKLOUT new.mtz", "SUMMARY keep.sum", "PROCESS 1 3", "GO"],
         None),
        ("keep.mat", [*INDEX, "NEWMAT keep.mat", "GO"], None),
        ("keep.spt", [TEMPLATE, "FINDSPOTS FIND 1", "GO"], ["SPOTOD", "keep.spt"]),
    ],
)
def test_a_full_disk_keeps_the_earlier_output(sim, tmp_path, monkeypatch, name, lines, argv):
    folder = tmp_path / "run"
    shutil.copytree(sim, folder)
    # an existing spot file is read as input (MOSFLM's SPOTOD): there, no file may appear
    old = None if name.endswith(".spt") else OLD
    if old is not None:
        (folder / name).write_bytes(old)
    _full_disk_for(monkeypatch, name)
    rc, out = run_script("\n".join([*lines, "EXIT"]) + "\n", folder, argv)
    assert rc == 1, out
    stars = [x for x in out.splitlines() if x.startswith(" *** ")]
    assert len(stars) == 1, out
    assert name in stars[0] and "No space left on device" in stars[0], stars
    assert "Internal error" not in out and "Traceback" not in out
    if old is None:
        assert not (folder / name).exists()
    else:
        assert (folder / name).read_bytes() == old
    assert not [f for f in os.listdir(folder) if f.endswith(".tmp")], os.listdir(folder)


def test_a_full_disk_for_the_log(tmp_path):
    """LOGFILE on a full disk: one *** line naming it on the terminal, exit 1, no traceback."""
    os.symlink("/dev/full", tmp_path / "full.lp")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "mosflm_py", "LOGFILE", "full.lp"],
                       input="DISTANCE 100\nSHOW\nEXIT\n", capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    text = p.stdout + p.stderr
    assert p.returncode == 1, text
    stars = [x for x in text.splitlines() if x.startswith(" *** ")]
    assert len(stars) == 1 and "full.lp" in stars[0], text
    assert "No space left on device" in stars[0]
    assert "Traceback" not in text
    assert sorted(os.listdir(tmp_path)) == ["full.lp"]


def test_the_log_filling_up_in_the_middle_of_a_run(tmp_path, monkeypatch):
    """The disk fills up after the banner: the next line's log write ends the run with one ***
    line naming the log (not an internal error, not a message per line)."""
    import errno
    import io

    import mosflm_py.cli as cli

    class FillingLog(io.StringIO):
        def write(self, text: str) -> int:
            if self.tell() + len(text) > 1100:  # after the banner
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(text)

    monkeypatch.setattr(cli, "open_new_log", lambda name=None: (FillingLog(), "filling.lp"))
    out = io.StringIO()
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["LOGFILE", "filling.lp"], stdin=io.StringIO("DISTANCE 100\nSHOW\nSHOW\n"
                                                               "SHOW\nEXIT\n"), stdout=out)
    text = out.getvalue()
    assert rc == 1, text
    stars = [x for x in text.splitlines() if x.startswith(" *** ")]
    assert stars == [" *** Cannot write the log file filling.lp: No space left on device."], text
    assert "===> DISTANCE 100" in text  # it failed in the middle, not at the banner
    assert "Internal error" not in text and "Traceback" not in text
