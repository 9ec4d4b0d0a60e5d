"""Eiger/NeXus master + data files written with h5py (bitshuffle/LZ4) read back exactly."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np
import pytest

from mosflm_py.errors import ImageError
from mosflm_py.imageio import ImageSeries, read_frame, read_header
from mosflm_py.imageio.hdf5 import close_all

NSLOW, NFAST, NPER, NFILES = 40, 32, 3, 2


def _write_eiger(tmp_path, axis_vector=(1.0, 0.0, 0.0), width=0.1, direct=False):
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 5000, size=(NPER * NFILES, NSLOW, NFAST)).astype(np.uint32)
    frames[:, 5, :] = 0xFFFFFFFF  # module gap rows as Eiger writes them
    master = tmp_path / "prot_1_master.h5"
    with h5py.File(master, "w") as f:
        data = f.create_group("entry/data")
        if direct:
            data.create_dataset(
                "data", data=frames, chunks=(1, NSLOW, NFAST),
                **hdf5plugin.Bitshuffle(cname="lz4"),
            )
        else:
            for i in range(NFILES):
                name = f"prot_1_data_{i + 1:06d}.h5"
                with h5py.File(tmp_path / name, "w") as g:
                    g.create_dataset(
                        "entry/data/data", data=frames[i * NPER : (i + 1) * NPER],
                        chunks=(1, NSLOW, NFAST), **hdf5plugin.Bitshuffle(cname="lz4"),
                    )
                data[f"data_{i + 1:06d}"] = h5py.ExternalLink(name, "entry/data/data")
        det = f.create_group("entry/instrument/detector")
        for key, value, unit in (
            ("beam_center_x", 15.5, "pixel"), ("beam_center_y", 20.25, "pixel"),
            ("detector_distance", 0.2, "m"), ("x_pixel_size", 75e-6, "m"),
            ("y_pixel_size", 75e-6, "m"), ("count_time", 0.01, "s"),
        ):
            det.create_dataset(key, data=value).attrs["units"] = unit
        det.create_dataset("description", data=b"Dectris EIGER2 X 9M")
        det.create_dataset("detectorSpecific/countrate_correction_count_cutoff", data=12345)
        mod = det.create_group("module")
        mod.create_dataset("fast_pixel_direction", data=0.075).attrs["vector"] = [1.0, 0.0, 0.0]
        beam = f.create_group("entry/instrument/beam")
        beam.create_dataset("incident_wavelength", data=0.9795).attrs["units"] = "angstrom"
        gon = f.create_group("entry/sample/goniometer")
        omega = 10.0 + width * np.arange(NPER * NFILES)
        gon.create_dataset("omega", data=omega).attrs["vector"] = list(axis_vector)
        gon.create_dataset("omega_range_average", data=width)
    return master, frames


@pytest.fixture(autouse=True)
def _close():
    yield
    close_all()


def test_master_with_external_links_reads_back_exactly(tmp_path):
    master, frames = _write_eiger(tmp_path)
    for n in range(1, NPER * NFILES + 1):
        got = read_frame(master, n)
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, frames[n - 1])
    h = read_header(master, 4)
    assert h.format == "HDF5" and h.detector_type == "EIGER" and h.frame == 4
    assert (h.nslow, h.nfast) == (NSLOW, NFAST)
    assert h.pixel_fast == pytest.approx(0.075, abs=1e-9)
    assert h.distance == pytest.approx(200.0, abs=1e-9)
    assert h.wavelength == pytest.approx(0.9795, abs=1e-9)
    # beam_center_x/y are (fast, slow) pixels -> MOSFLM X = slow * pixel, Y = fast * pixel
    assert h.beam_x == pytest.approx(20.25 * 0.075, abs=1e-9)
    assert h.beam_y == pytest.approx(15.5 * 0.075, abs=1e-9)
    assert h.phi_start == pytest.approx(10.3, abs=1e-9)
    assert h.osc_width == pytest.approx(0.1, abs=1e-9)
    assert h.overload == 12345
    assert h.detector_omega == 0.0 and h.reverse_phi is False


def test_series_from_master(tmp_path):
    master, frames = _write_eiger(tmp_path)
    s = ImageSeries.from_filename(str(master))
    assert s.hdf5_master and s.numbers == list(range(1, NPER * NFILES + 1))
    assert s.phi_range(6) == pytest.approx((10.5, 10.6), abs=1e-9)
    np.testing.assert_array_equal(s.frame(5), frames[4])


def test_direct_dataset_and_reversed_axis(tmp_path):
    master, frames = _write_eiger(tmp_path, axis_vector=(-1.0, 0.0, 0.0), direct=True)
    np.testing.assert_array_equal(read_frame(master, 2), frames[1])
    h = read_header(master, 1)
    # spindle along -fast: described as REVERSEPHI with the detector in its default orientation
    assert h.reverse_phi is True and h.detector_omega == pytest.approx(0.0, abs=1e-9)


def test_frame_out_of_range_and_missing_data_file(tmp_path):
    master, _ = _write_eiger(tmp_path)
    with pytest.raises(ImageError, match="frame 99"):
        read_frame(master, 99)
    close_all()
    (tmp_path / "prot_1_data_000002.h5").unlink()
    with pytest.raises(ImageError, match="missing data file|no image datasets"):
        read_frame(master, 5)
