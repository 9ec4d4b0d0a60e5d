"""Generate file (GENFILE): the list of reflections predicted and measured on each image.

MOSFLM writes its generate file as a Fortran unformatted scratch file whose record layout is
internal to the program; pipelines (xia2) only name it, in a scratch folder, and never read it.
mosflm-py writes the same information as text that other programs can read:

    # mosflm-py generate file: <title>
    # H K L BATCH M XDET YDET ROT WIDTH FRACTIONCALC
    h k l batch m xdet ydet rot width fraction      (one line per reflection part)

with the observed Miller indices, M = 1 for a part of a partially recorded reflection, XDET and
YDET in pixels (MOSFLM X slow, Y fast), ROT and WIDTH in degrees.  The file is written to a
temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["GenerateFileWriter"]


class GenerateFileWriter:
    """Streams the reflection parts of each image to a generate file (context manager).

    Parameters
    ----------
    path : output file (GENFILE).
    title : text for the first line.
    """

    COLUMNS = "H K L BATCH M XDET YDET ROT WIDTH FRACTIONCALC"

    def __init__(self, path: str | os.PathLike[str], title: str = "") -> None:
        self.path = Path(path)
        if self.path.parent != Path(""):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent or "."
        )
        self._fh = os.fdopen(fd, "w")
        self._fh.write(f"# mosflm-py generate file: {title}\n# {self.COLUMNS}\n")
        self.n = 0

    def add(self, records) -> None:
        """Append the parts of one image (an :class:`~mosflm_py.output.mtz.MtzRecords`)."""
        hkl = np.asarray(records.hkl, int).reshape(-1, 3)
        cols = (
            hkl[:, 0],
            hkl[:, 1],
            hkl[:, 2],
            np.asarray(records.batch, int),
            np.asarray(records.partial, int),
            records.xdet,
            records.ydet,
            records.rot,
            records.width,
            records.fraction,
        )
        for h, k, l_, b, m, x, y, r, w, f in zip(*cols):
            self._fh.write(
                f"{h:4d}{k:4d}{l_:4d}{b:6d}{m:2d}{x:9.2f}{y:9.2f}{r:9.3f}{w:7.3f}{f:7.3f}\n"
            )
        self.n += len(hkl)

    def close(self, keep: bool = True) -> None:
        """Finish the file (rename into place) or, with ``keep=False``, discard it."""
        self._fh.close()
        if keep:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> GenerateFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(keep=exc_type is None)
