"""Benchmark: ms per frame at Pilatus 6M size (2527 x 2463 int32), our reader vs fabio.open.

Writes synthetic frames (miniCBF byte-offset, SMV, EDF, HDF5 bitshuffle/LZ4) to a temp dir and
times ``mosflm_py.imageio.read_frame`` against ``fabio.open(path).data`` (HDF5: h5py slice).
Run: ``python scripts/bench_imageio.py [repeats]``. Not a test.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import fabio
import h5py
import hdf5plugin
import numpy as np
from fabio.cbfimage import CbfImage
from fabio.dtrekimage import DtrekImage
from fabio.edfimage import EdfImage

from mosflm_py.imageio import read_frame, read_header
from mosflm_py.imageio.hdf5 import close_all

NSLOW, NFAST = 2527, 2463


def _frame(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.poisson(2.0, size=(NSLOW, NFAST)).astype(np.int32)
    data[::50, :] = -1
    return data


def _write(tmp: Path) -> dict[str, Path]:
    data = _frame()
    paths = {}
    cbf = CbfImage(data=data)
    cbf.header["_array_data.header_convention"] = "PILATUS_1.2"
    cbf.header["_array_data.header_contents"] = (
        "# Detector: PILATUS 6M, S/N 60-0000\n# Pixel_size 172e-6 m x 172e-6 m\n"
        "# Wavelength 1.0 A\n# Detector_distance 0.3 m\n# Beam_xy (1231.5, 1263.5) pixels\n"
        "# Start_angle 0.0 deg.\n# Angle_increment 0.1 deg.\n"
    )
    paths["miniCBF"] = tmp / "bench_00001.cbf"
    cbf.write(str(paths["miniCBF"]))
    smv = DtrekImage(data=np.clip(data, 0, 65535).astype(np.uint16))
    smv.header.update({"PIXEL_SIZE": "0.172", "DISTANCE": "300", "WAVELENGTH": "1.0",
                       "BEAM_CENTER_X": "217.3", "BEAM_CENTER_Y": "211.8",
                       "OSC_START": "0", "OSC_RANGE": "0.1"})
    paths["SMV"] = tmp / "bench_00001.img"
    smv.write(str(paths["SMV"]))
    paths["EDF"] = tmp / "bench_00001.edf"
    EdfImage(data=data).write(str(paths["EDF"]))
    paths["HDF5 bslz4"] = tmp / "bench_master.h5"
    with h5py.File(paths["HDF5 bslz4"], "w") as f:
        f.create_dataset("entry/data/data", data=np.stack([data, data]),
                         chunks=(1, NSLOW, NFAST), **hdf5plugin.Bitshuffle(cname="lz4"))
    return paths


def _time(fn, repeats: int) -> float:
    fn()  # warm up (imports, caches)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def main(repeats: int = 10) -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        paths = _write(Path(tmpdir))
        print(f"{'format':12s} {'ours ms':>9s} {'fabio ms':>9s} {'header ms':>10s}  equal")
        for name, p in paths.items():
            frame = 1 if name.startswith("HDF5") else None
            ours = _time(lambda p=p, frame=frame: read_frame(p, frame), repeats)
            hdr = _time(lambda p=p: read_header(p), repeats)
            if name.startswith("HDF5"):
                def ref(p=p):
                    with h5py.File(p, "r") as f:
                        return f["entry/data/data"][0]
            else:
                def ref(p=p):
                    return fabio.open(str(p)).data
            theirs = _time(ref, repeats)
            equal = np.array_equal(read_frame(p, frame), ref())
            print(f"{name:12s} {ours:9.1f} {theirs:9.1f} {hdr:10.1f}  {equal}")
        close_all()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
