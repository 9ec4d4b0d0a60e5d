"""Image writers of the simulator: Pilatus miniCBF, ADSC SMV, mar345, Eiger-style NeXus HDF5.

All take frames as ``data[slow, fast]`` and the :class:`SimulationParams` describing them, and write
headers from which readers recover the geometry:

* miniCBF ``Beam_xy (fast, slow) pixels``, ``Detector_distance`` in m, ``Pixel_size`` in m,
  ``Start_angle``/``Angle_increment`` in deg, ``Count_cutoff`` (byte-offset compression by fabio);
* SMV ``BEAM_CENTER_X`` = MOSFLM X (slow, mm), ``BEAM_CENTER_Y`` = Y (fast, mm), ``SIZE1`` = fast
  size, ``SIZE2`` = slow size, unsigned 16-bit little-endian, counts clipped to 0..65535;
* mar345 (image plate, ``NAME_###.marNNNN``): square frames only (the format stores one size),
  ``CENTER X``/``Y`` in pixels (X fast, Y slow), ``PIXEL LENGTH``/``HEIGHT`` in micrometres,
  ``DISTANCE`` in mm; 16-bit counts with overflow records, PCK-compressed by fabio;
* HDF5: ``NAME_master.h5`` (NXmx metadata; ``/entry/data/data_000001`` is an external link to
  ``/entry/data/data`` in ``NAME_data_000001.h5``, bitshuffle-LZ4 compressed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mosflm_py.errors import ImageError
from mosflm_py.simulate.params import SimulationParams


def image_phi(p: SimulationParams, number: int) -> float:
    """Start phi (deg) of image ``number`` (file number)."""
    return p.phi_start + (number - p.first_image) * p.osc_width


def pilatus_header(p: SimulationParams, number: int) -> str:
    """PILATUS_1.2 header contents (``\\r\\n`` separated) for image ``number``."""
    bx = p.beam_y / p.pixel_fast  # fast, pixels
    by = p.beam_x / p.pixel_size  # slow, pixels
    lines = [
        "# Detector: PILATUS simulated by mosflm-py, S/N 00-0000",
        "# 2024-01-01T00:00:00.000",
        f"# Pixel_size {p.pixel_fast * 1e-3:.6g} m x {p.pixel_size * 1e-3:.6g} m",
        "# Silicon sensor, thickness 0.000450 m",
        f"# Exposure_time {p.exposure_time:.7f} s",
        f"# Exposure_period {p.exposure_time:.7f} s",
        "# Tau = 0 s",
        f"# Count_cutoff {int(p.overload)} counts",
        f"# Wavelength {p.wavelength:.5f} A",
        f"# Detector_distance {p.distance * 1e-3:.6f} m",
        f"# Beam_xy ({bx:.4f}, {by:.4f}) pixels",
        f"# Start_angle {image_phi(p, number):.4f} deg.",
        f"# Angle_increment {p.osc_width:.4f} deg.",
        f"# Detector_2theta {p.two_theta:.4f} deg.",
        f"# Polarization {p.polarisation:.3f}",
        "# Alpha 0.0000 deg.",
        "# Kappa 0.0000 deg.",
        f"# Phi {image_phi(p, number):.4f} deg.",
        f"# Phi_increment {p.osc_width:.4f} deg.",
        "# Oscillation_axis X, CW",
        "# N_oscillations 1",
    ]
    return "\r\n".join(lines) + "\r\n"


def write_cbf(path: Path, data: np.ndarray, p: SimulationParams, number: int) -> None:
    """Write one Pilatus miniCBF (int32, byte-offset) with a PILATUS_1.2 header."""
    import fabio.cbfimage

    header = {
        "_array_data.header_convention": "PILATUS_1.2",
        "_array_data.header_contents": pilatus_header(p, number),
    }
    img = fabio.cbfimage.CbfImage(data=np.ascontiguousarray(data, dtype=np.int32), header=header)
    try:
        img.write(str(path))
    except OSError as exc:
        raise ImageError(f"Cannot write image {path}: {exc}") from exc


def smv_header(p: SimulationParams, number: int) -> str:
    """ADSC SMV header text (without padding)."""
    fields = [
        ("HEADER_BYTES", "512"),
        ("DIM", "2"),
        ("BYTE_ORDER", "little_endian"),
        ("TYPE", "unsigned_short"),
        ("SIZE1", str(p.nfast)),
        ("SIZE2", str(p.nslow)),
        ("PIXEL_SIZE", f"{p.pixel_size:.6f}"),
        ("BIN", "none"),
        ("ADC", "slow"),
        ("DETECTOR_SN", "0"),
        ("DATE", "Mon Jan  1 00:00:00 2024"),
        ("TIME", f"{p.exposure_time:.4f}"),
        ("DISTANCE", f"{p.distance:.4f}"),
        ("TWOTHETA", f"{p.two_theta:.4f}"),
        ("PHI", f"{image_phi(p, number):.4f}"),
        ("OSC_START", f"{image_phi(p, number):.4f}"),
        ("OSC_RANGE", f"{p.osc_width:.4f}"),
        ("WAVELENGTH", f"{p.wavelength:.6f}"),
        ("BEAM_CENTER_X", f"{p.beam_x:.4f}"),
        ("BEAM_CENTER_Y", f"{p.beam_y:.4f}"),
        ("DENZO_X_BEAM", f"{p.beam_x:.4f}"),
        ("DENZO_Y_BEAM", f"{p.beam_y:.4f}"),
        ("GAIN", f"{p.gain:.4f}"),
        ("CCD_IMAGE_SATURATION", str(int(min(p.overload, 65535)))),
    ]
    if p.adc_offset:  # CCD-like data (as the development set's ADSC images)
        fields.append(("IMAGE_PEDESTAL", f"{p.adc_offset:g}"))
    return "{\n" + "".join(f"{k}={v};\n" for k, v in fields) + "}\n"


def write_smv(path: Path, data: np.ndarray, p: SimulationParams, number: int) -> None:
    """Write one ADSC SMV image (512-byte header, uint16 little-endian, clipped to 0..65535)."""
    text = smv_header(p, number).encode("ascii")
    if len(text) > 512:
        raise ImageError("SMV header longer than 512 bytes")  # pragma: no cover
    arr = np.clip(np.asarray(data), 0, 65535).astype("<u2")
    try:
        with open(path, "wb") as fh:
            fh.write(text + b"\0" * (512 - len(text)))
            fh.write(arr.tobytes())
    except OSError as exc:
        raise ImageError(f"Cannot write image {path}: {exc}") from exc


def mar345_header(p: SimulationParams, number: int) -> dict[str, str]:
    """mar345 header fields (fabio's ``mar345image`` keys) for image ``number``."""
    phi = image_phi(p, number)
    return {
        "PROGRAM": "mosflm-py simulator",
        "DATE": "Mon Jan  1 00:00:00 2024",
        "SCANNER": "0",
        "FORMAT_TYPE": "PCK",
        "PIXEL_LENGTH": f"{p.pixel_fast * 1000:.0f}",
        "PIXEL_HEIGHT": f"{p.pixel_size * 1000:.0f}",
        "GAIN": f"{p.gain:.3f}",
        "WAVELENGTH": f"{p.wavelength:.5f}",
        "DISTANCE": f"{p.distance:.3f}",
        "PHI_START": f"{phi:.3f}",
        "PHI_END": f"{phi + p.osc_width:.3f}",
        "PHI_OSC": "1",
        "OMEGA_START": "0.000",
        "OMEGA_END": "0.000",
        "OMEGA_OSC": "0",
        "CHI": "0.000",
        "TWOTHETA": f"{p.two_theta:.3f}",
        "CENTER_X": f"{p.beam_y / p.pixel_fast:.3f}",  # fast, pixels
        "CENTER_Y": f"{p.beam_x / p.pixel_size:.3f}",  # slow, pixels
        "MODE": "TIME",
        "TIME": f"{p.exposure_time:.2f}",
    }


def mar345_suffix(p: SimulationParams) -> str:
    """The file extension mar345 gives its images: ``mar`` and the frame size (``mar2300``)."""
    return f"mar{p.nfast}"


def write_mar345(path: Path, data: np.ndarray, p: SimulationParams, number: int) -> None:
    """Write one mar345 image plate frame (PCK compression, fabio's ``mar345image.write``).

    Raises
    ------
    ImageError
        The frame is not square or its pixels are not square (the format cannot say so), or the
        file cannot be written.
    """
    import fabio.mar345image

    if p.nslow != p.nfast or abs(p.pixel_fast - p.pixel_size) > 1e-9:
        raise ImageError(f"mar345 images are square with square pixels, not {p.nslow} x "
                         f"{p.nfast} pixels of {p.pixel_size} x {p.pixel_fast} mm")
    arr = np.clip(np.asarray(data), 0, 2**31 - 1).astype(np.int32)  # counts are never negative
    img = fabio.mar345image.mar345image(data=arr, header=mar345_header(p, number))
    img.byteorder = "<"  # a new image has none (fabio 2026.6 then fails in binary_header)
    try:
        img.write(str(path))
    except OSError as exc:
        raise ImageError(f"Cannot write image {path}: {exc}") from exc


class Hdf5Writer:
    """Incremental writer of an Eiger-style master + one data file.

    Use ``w = Hdf5Writer(out_dir, name, p); w.write(k, frame) ...; w.close()``; ``k`` is the
    0-based frame index within the sweep.
    """

    def __init__(self, out_dir: Path, name: str, p: SimulationParams) -> None:
        import h5py
        import hdf5plugin

        self.p = p
        self.master_path = Path(out_dir) / f"{name}_master.h5"
        self.data_name = f"{name}_data_000001.h5"
        self.data_path = Path(out_dir) / self.data_name
        self._data_file = h5py.File(self.data_path, "w")
        g = self._data_file.create_group("entry/data")
        g.attrs["NX_class"] = "NXdata"
        self._dset = g.create_dataset(
            "data",
            shape=(p.n_images, p.nslow, p.nfast),
            dtype=np.int32,
            chunks=(1, p.nslow, p.nfast),
            **hdf5plugin.Bitshuffle(cname="lz4"),
        )
        self._dset.attrs["image_nr_low"] = np.int32(p.first_image)
        self._dset.attrs["image_nr_high"] = np.int32(p.first_image + p.n_images - 1)

    def write(self, index: int, frame: np.ndarray) -> None:
        """Store frame ``index`` (0-based)."""
        self._dset[index] = np.asarray(frame, dtype=np.int32)

    def close(self) -> None:
        """Close the data file and write the master file."""
        import h5py

        self._data_file.close()
        p = self.p
        with h5py.File(self.master_path, "w") as f:
            entry = f.create_group("entry")
            entry.attrs["NX_class"] = "NXentry"
            entry.create_dataset("definition", data="NXmx")
            data = entry.create_group("data")
            data.attrs["NX_class"] = "NXdata"
            data["data_000001"] = h5py.ExternalLink(self.data_name, "/entry/data/data")
            inst = entry.create_group("instrument")
            inst.attrs["NX_class"] = "NXinstrument"
            beam = inst.create_group("beam")
            beam.attrs["NX_class"] = "NXbeam"
            _ds(beam, "incident_wavelength", p.wavelength, "angstrom")
            det = inst.create_group("detector")
            det.attrs["NX_class"] = "NXdetector"
            _ds(det, "beam_center_x", p.beam_y / p.pixel_fast, "pixel")  # fast
            _ds(det, "beam_center_y", p.beam_x / p.pixel_size, "pixel")  # slow
            _ds(det, "detector_distance", p.distance * 1e-3, "m")
            _ds(det, "x_pixel_size", p.pixel_fast * 1e-3, "m")
            _ds(det, "y_pixel_size", p.pixel_size * 1e-3, "m")
            _ds(det, "count_time", p.exposure_time, "s")
            _ds(det, "frame_time", p.exposure_time, "s")
            _ds(det, "saturation_value", int(p.overload), "counts")
            _ds(det, "sensor_thickness", 450e-6, "m")
            det.create_dataset("description", data="Simulated PILATUS-like (mosflm-py)")
            spec = det.create_group("detectorSpecific")
            _ds(spec, "x_pixels_in_detector", p.nfast, "")
            _ds(spec, "y_pixels_in_detector", p.nslow, "")
            _ds(spec, "nimages", p.n_images, "")
            _ds(spec, "ntrigger", 1, "")
            sample = entry.create_group("sample")
            sample.attrs["NX_class"] = "NXsample"
            gon = sample.create_group("goniometer")
            gon.attrs["NX_class"] = "NXtransformations"
            starts = p.phi_start + np.arange(p.n_images) * p.osc_width
            for axis in ("omega", "phi"):
                vals = starts if axis == "omega" else np.zeros_like(starts)
                d = gon.create_dataset(axis, data=vals)
                d.attrs["units"] = "deg"
                d.attrs["transformation_type"] = "rotation"
                d.attrs["vector"] = np.array([-1.0 if p.reverse_phi else 1.0, 0.0, 0.0])
                inc = p.osc_width if axis == "omega" else 0.0
                _ds(gon, f"{axis}_range_average", inc, "deg")
                _ds(gon, f"{axis}_increment", inc, "deg")
                _ds(gon, f"{axis}_range_total", inc * p.n_images, "deg")
            sample.create_dataset("depends_on", data="/entry/sample/goniometer/omega")


def _ds(group, name: str, value, units: str) -> None:
    d = group.create_dataset(name, data=value)
    if units:
        d.attrs["units"] = units
