"""Simulator writers round-trip through fabio and mosflm_py.imageio; determinism; truth files."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import MosflmError
from mosflm_py.simulate import default_params, load_truth, simulate_dataset
from mosflm_py.simulate.__main__ import main
from mosflm_py.simulate.detector import dead_pixel_mask, module_gap_mask

TINY = dict(nslow=130, nfast=120, beam_x=12.1, beam_y=10.2, distance=80.0, resolution=3.0,
            n_images=2, phi_start=30.0, osc_width=1.0)


def _frames(ds):
    import fabio

    if ds.fmt == "hdf5":
        im = fabio.open(str(ds.paths[0]))
        return np.stack([im.getframe(i).data for i in range(im.nframes)])
    return np.stack([fabio.open(str(f)).data for f in ds.paths])


@pytest.mark.parametrize("fmt", ["cbf", "smv", "hdf5"])
def test_writer_round_trip(tmp_path, fmt):
    p = default_params(**TINY, pixel_size_fast=0.175)
    ds = simulate_dataset(p, tmp_path, fmt=fmt)
    names = sorted(f.name for f in tmp_path.iterdir())
    if fmt == "cbf":
        assert names[:2] == ["sim_00001.cbf", "sim_00002.cbf"] and ds.template == "sim_#####.cbf"
    elif fmt == "smv":
        assert names[:2] == ["sim_001.img", "sim_002.img"] and ds.template == "sim_###.img"
    else:
        assert {"sim_master.h5", "sim_data_000001.h5"} <= set(names)
    frames = _frames(ds)
    assert frames.shape == (2, 130, 120)
    assert frames.max() > 100  # spots are there
    try:
        from mosflm_py.imageio.formats import read_header
    except ImportError:  # pragma: no cover - reader not yet available
        pytest.skip("mosflm_py.imageio.formats not importable")
    for k in range(2):
        if fmt == "hdf5":
            h = read_header(str(ds.paths[0]), frame=k + 1)
        else:
            h = read_header(str(ds.paths[k]))
        assert (h.nslow, h.nfast) == (130, 120)
        assert h.wavelength == pytest.approx(p.wavelength, abs=1e-5)
        assert h.distance == pytest.approx(p.distance, abs=1e-3)
        assert h.beam_x == pytest.approx(p.beam_x, abs=1e-3)
        assert h.beam_y == pytest.approx(p.beam_y, abs=1e-3)
        assert h.pixel_slow == pytest.approx(0.172, abs=1e-6)
        if fmt != "smv":  # SMV has one PIXEL_SIZE
            assert h.pixel_fast == pytest.approx(0.175, abs=1e-6)
        assert h.phi_start == pytest.approx(30.0 + k, abs=1e-4)
        assert h.phi_end == pytest.approx(31.0 + k, abs=1e-4)
        assert not h.reverse_phi


def test_same_seed_identical_and_formats_agree(tmp_path):
    p = default_params(**TINY)
    a = simulate_dataset(p, tmp_path / "a", fmt="cbf")
    b = simulate_dataset(p, tmp_path / "b", fmt="cbf", batch=1)  # batching must not matter
    c = simulate_dataset(p, tmp_path / "c", fmt="smv")
    fa, fb, fc = _frames(a), _frames(b), _frames(c)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(np.clip(fa, 0, 65535), fc)
    d = simulate_dataset(p.replace(seed=2), tmp_path / "d", fmt="cbf")
    assert not np.array_equal(_frames(d), fa)


def test_masks_overload_gain(tmp_path):
    p = default_params(nslow=520, nfast=500, beam_x=45.0, beam_y=43.0, resolution=3.0,
                       n_images=1, module_gaps=True, n_dead_pixels=25, backstop_radius=2.0,
                       overload=3000, gain=2.0, adc_offset=10.0, background=20.0)
    ds = simulate_dataset(p, tmp_path, fmt="cbf")
    f = _frames(ds)[0]
    assert np.all(f[:, 487:494] == -1) and np.all(f[195:212, :] == -1)
    dead = dead_pixel_mask(p)
    assert dead.sum() == 25
    np.testing.assert_array_equal(f == -1, dead | module_gap_mask(520, 500))
    assert f.max() == 3000
    bs = int(45.0 / 0.172), int(43.0 / 0.172)
    assert f[bs[0] - 2:bs[0] + 3, bs[1] - 2:bs[1] + 3].mean() < 20
    open_area = f[5:150, 5:150][~dead[5:150, 5:150]]
    assert open_area.min() >= 10 and np.median(open_area) > 2 * 20


def test_truth_files(tmp_path):
    p = default_params(**TINY, missets=(0.1, -0.2, 0.3))
    ds = simulate_dataset(p, tmp_path, fmt="cbf")
    t = load_truth(ds.truth_path)
    assert set(t) == set(ds.truth)
    np.testing.assert_allclose(t["A"], p.wavelength * t["U"] @ t["B"], rtol=1e-12)
    assert t["obs_hkl"].shape[1] == 3 and t["obs_hkl"].shape[0] == t["obs_phi"].shape[0] > 0
    assert set(np.unique(t["part_image"])) <= {1, 2}
    assert "space group" in ds.truth_text_path.read_text()
    lines = ds.matrix_path.read_text().splitlines()
    assert len(lines) == 9
    assert np.allclose([float(v) for v in lines[0].split()], t["A"][0], atol=1e-8)
    assert [float(v) for v in lines[3].split()] == [0.1, -0.2, 0.3]
    try:
        from mosflm_py.geometry.matrix_file import read_matrix_file
    except ImportError:  # pragma: no cover
        return
    mf = read_matrix_file(ds.matrix_path)
    np.testing.assert_allclose(mf.A, t["A"], atol=1e-8)
    np.testing.assert_allclose(mf.U, t["U"], atol=1e-8)
    assert mf.wavelength == pytest.approx(p.wavelength, rel=1e-5)


def test_cli(tmp_path, capsys):
    rc = main([str(tmp_path), "--format", "smv", "--images", "1", "--size", "100", "100",
               "--beam", "8", "8", "--resolution", "3.5", "--no-noise"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "sim_###.img" in out and (tmp_path / "sim_001.img").exists()


def test_bad_parameters_raise_user_errors(tmp_path):
    with pytest.raises(MosflmError, match="distance"):
        default_params(distance=-1.0)
    with pytest.raises(MosflmError, match="format"):
        simulate_dataset(default_params(**TINY), tmp_path, fmt="tiff")
    with pytest.raises(MosflmError, match="space group"):
        simulate_dataset(default_params(**TINY, space_group="Q 9"), tmp_path)


def test_mar345_round_trip_with_overflow_pixels(tmp_path):
    """The simulator's mar345 files (fabio's PCK writer) read back, with fabio and with our
    reader, as the same counts as the CBF of the same sweep, including counts above 65535
    (the format's overflow records), and the header gives the geometry back (CENTER in pixels
    to 0.001 px, PIXEL in whole micrometres)."""
    import fabio

    from mosflm_py.imageio.formats import read_frame, read_header
    from mosflm_py.simulate.writers import write_mar345

    p = default_params(**{**TINY, "nfast": 130})
    ds = simulate_dataset(p, tmp_path / "mar", fmt="mar345")
    cbf = simulate_dataset(p, tmp_path / "cbf", fmt="cbf")
    assert ds.template == "sim_###.mar130"
    assert [f.name for f in ds.paths] == ["sim_001.mar130", "sim_002.mar130"]
    ref = _frames(cbf)
    assert ref.max() > 100
    for k, path in enumerate(ds.paths):
        assert type(fabio.open(str(path))).__name__ == "Mar345Image"
        np.testing.assert_array_equal(fabio.open(str(path)).data, np.clip(ref[k], 0, None))
        np.testing.assert_array_equal(read_frame(str(path)), np.clip(ref[k], 0, None))
        h = read_header(str(path))
        assert (h.nslow, h.nfast, h.format) == (130, 130, "Mar345Image")
        assert h.wavelength == pytest.approx(p.wavelength, abs=1e-5)
        assert h.distance == pytest.approx(p.distance, abs=1e-3)
        assert (h.beam_x, h.beam_y) == pytest.approx((p.beam_x, p.beam_y), abs=1e-3 * 0.172)
        assert (h.pixel_slow, h.pixel_fast) == pytest.approx((0.172, 0.172), abs=1e-9)
        assert (h.phi_start, h.phi_end) == pytest.approx((30.0 + k, 31.0 + k), abs=1e-3)
    hot = np.clip(ref[0], 0, None).astype(np.int32)
    hot[5, 7], hot[60, 100] = 70000, 2_000_000  # above 16 bits: overflow records
    write_mar345(tmp_path / "hot.mar130", hot, p, 1)
    np.testing.assert_array_equal(read_frame(str(tmp_path / "hot.mar130")), hot)
    with pytest.raises(MosflmError, match="square"):
        simulate_dataset(default_params(**TINY), tmp_path / "rect", fmt="mar345")


def test_mar345_structure_checks_refuse_what_would_crash_fabio(tmp_path):
    """A packed-image line that disagrees with the header, bytes inserted in or cut from the
    bit stream: fabio's C decoder writes outside its buffer on these (the interpreter aborts,
    "malloc(): invalid size"); our reader refuses them with an ImageError naming the file.
    The numba chunk walk agrees with the plain-Python reference on sound and damaged data."""
    import re
    import sys
    from pathlib import Path

    from mosflm_py.errors import ImageError
    from mosflm_py.imageio.formats import read_frame
    from mosflm_py.kernels.pck import BITDECODE, pck_walk

    sys.path.insert(0, str(Path(__file__).parent / "reference"))
    from pck_ref import pck_walk_ref

    p = default_params(**{**TINY, "nfast": 130, "n_images": 1})
    ds = simulate_dataset(p, tmp_path / "mar", fmt="mar345")
    raw = ds.paths[0].read_bytes()
    m = re.search(rb"CCP4 packed image, X: (\d+), Y: (\d+)\n", raw)
    assert m is not None and int(m.group(1)) == 130
    stream = raw[m.end():]
    for s in (stream, stream[: len(stream) // 2], stream[:100] + b"1e-320" + stream[101:]):
        assert pck_walk(np.frombuffer(s, np.uint8), 130 * 130, BITDECODE) == \
            pck_walk_ref(s, 130 * 130)
    pixels, bits = pck_walk(np.frombuffer(stream, np.uint8), 130 * 130, BITDECODE)
    assert pixels == 130 * 130 and len(stream) * 8 - 8 < bits <= len(stream) * 8
    bad = {
        "x_line": raw.replace(b"X: 0130", b"X: 0129"),
        "inserted": raw[: m.end() + 60] + b"1e-320" + raw[m.end() + 61:],
        "truncated": raw[: m.end() + len(stream) // 2],
        "size": raw[:4] + (999999).to_bytes(4, "little") + raw[8:],
    }
    for name, data in bad.items():
        f = tmp_path / f"{name}.mar130"
        f.write_bytes(data)
        with pytest.raises(ImageError, match=re.escape(str(f))):
            read_frame(str(f))
