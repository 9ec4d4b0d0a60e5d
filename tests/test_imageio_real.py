"""Header geometry of every real image against its SOURCE.txt, and frames against fabio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mosflm_py.imageio import read_frame, read_header

pytestmark = pytest.mark.realdata

# Tolerances: wavelength 1e-5 A, distance 0.01 mm, beam 0.01 mm, pixel 1e-4 mm, phi 1e-4 deg.
# Beam values are MOSFLM (X along slow, Y along fast) in mm; Beam_xy (a, b) px -> (b*p, a*p).
EXPECTED = {
    "format_singles_dials/DLS_I03_smargon_0001.cbf.gz": dict(
        detector_type="PILATUS", nslow=2527, nfast=2463, pixel=0.172, wavelength=0.97625,
        distance=291.47, beam=(1200.48 * 0.172, 1229.30 * 0.172), phi=(45.0, 0.1)),
    "format_singles_dials/DLS_I23_P12M_thau_00001.cbf.gz": dict(
        detector_type="PILATUS", nslow=5071, nfast=2463, pixel=0.172, wavelength=2.75520,
        distance=10.0, beam=(2595 * 0.172, 1080 * 0.172), phi=(-210.0, 0.05)),
    "format_singles_dials/dlsnxs2cbf_therm_0001.cbf.gz": dict(
        detector_type="EIGER", nslow=4362, nfast=4148, pixel=0.075, wavelength=0.98027,
        distance=213.96, beam=(2300.41 * 0.075, 2216.06 * 0.075), phi=(174.0, 0.25)),
    "format_singles_dials/TIMEPIX_SU_512-stdgoni_0001.img": dict(
        detector_type="TIMEPIX", nslow=512, nfast=512, pixel=0.055, wavelength=0.0251,
        distance=531.85, beam=(13.53, 13.20), phi=(65.4, 0.23)),
    "format_singles_dials/TIMEPIX_SU_516-stdgoni_0001.img": dict(
        detector_type="TIMEPIX", nslow=516, nfast=516, pixel=0.055, wavelength=0.0251,
        distance=531.85, beam=(246.14 * 0.055, 240.35 * 0.055), phi=(-65.40, 0.23)),
    "format_singles_fabio/run2_1_00148.cbf.bz2": dict(
        detector_type="PILATUS", nslow=2527, nfast=2463, pixel=0.172, wavelength=1.0332,
        distance=300.0, beam=(1310.50 * 0.172, 1230.10 * 0.172), phi=(74.3999, 0.2)),
    "format_singles_fabio/example.mar2300.bz2": dict(
        detector_type="MAR345", nslow=2300, nfast=2300, pixel=0.15, wavelength=1.08,
        distance=240.0, beam=(1150 * 0.15, 1150 * 0.15), phi=(0.0, 1.0)),
    "format_singles_fabio/b191_1_9_1.img.bz2": dict(
        detector_type="OXFORD", nslow=512, nfast=512, pixel=0.11984945, wavelength=0.71073,
        distance=49.82849, beam=(523.0701 / 2 * 0.11984945, 492.88815 / 2 * 0.11984945),
        phi=(6.0, 0.8)),
    # Bruker: START 84.8, INCREME -0.2 (phi decreasing) -> REVERSEPHI with negated angles
    "format_singles_fabio/Cr8F8140k103.0026.bz2": dict(
        detector_type="BRUKER", nslow=512, nfast=512, pixel=0.3125, wavelength=0.5166,
        distance=89.0, beam=(240.85 * 0.3125, 260.61 * 0.3125), phi=(-84.8, 0.2), reverse=True),
    "format_singles_fabio/i01f0001.kcd.bz2": dict(
        detector_type="NONIUS", nslow=576, nfast=625, pixel=0.110, wavelength=0.7093,
        distance=40.0, beam=None, phi=(0.0, 1.0)),
    "format_singles_fabio/F2K_Seb_Lyso0675.edf.bz2": dict(
        detector_type="EDF", nslow=2048, nfast=2048, pixel=None, wavelength=None,
        distance=None, beam=None, phi=None),
    "format_singles_fabio/format_only_nonMX/somedata_0001.mccd.bz2": dict(
        detector_type="MARCCD", nslow=1024, nfast=1024),
    "format_singles_fabio/format_only_nonMX/corkcont2_H_0089.mccd.bz2": dict(
        detector_type="MARCCD", nslow=2048, nfast=2048),
    "pilatus6m_p3_and_thaumatin/example_009.cbf.gz": dict(
        detector_type="PILATUS", nslow=2527, nfast=2463, pixel=0.172, wavelength=0.96861,
        distance=305.0, beam=(1324.6 * 0.172, 1266.7 * 0.172), phi=(1191.9, 0.1), omega=90.0),
    "pilatus6m_p3_and_thaumatin/thaum_0500.cbf.gz": dict(
        detector_type="PILATUS", nslow=2527, nfast=2463, pixel=0.172, wavelength=0.97625,
        distance=338.10, beam=(1208.60 * 0.172, 1246.42 * 0.172), phi=(-0.0002, 0.0)),
}


def _check(h, exp):
    assert h.detector_type == exp["detector_type"]
    assert (h.nslow, h.nfast) == (exp["nslow"], exp["nfast"])
    if "pixel" not in exp:
        return
    if exp["pixel"] is None:
        assert h.pixel_slow is None and h.pixel_fast is None
    else:
        assert h.pixel_slow == pytest.approx(exp["pixel"], abs=1e-4)
        assert h.pixel_fast == pytest.approx(exp["pixel"], abs=1e-4)
    if exp["wavelength"] is None:
        assert h.wavelength is None
    else:
        assert h.wavelength == pytest.approx(exp["wavelength"], abs=1e-5)
    if exp["distance"] is None:
        assert h.distance is None
    else:
        assert h.distance == pytest.approx(exp["distance"], abs=0.01)
    if exp["beam"] is None:
        assert h.beam_x is None and h.beam_y is None
    else:
        assert h.beam_x == pytest.approx(exp["beam"][0], abs=0.01)
        assert h.beam_y == pytest.approx(exp["beam"][1], abs=0.01)
    if exp["phi"] is None:
        assert h.phi_start is None
    else:
        assert h.phi_start == pytest.approx(exp["phi"][0], abs=1e-4)
        assert h.osc_width == pytest.approx(exp["phi"][1], abs=1e-4)
    assert h.reverse_phi == exp.get("reverse", False)
    if "omega" in exp:
        assert h.detector_omega == pytest.approx(exp["omega"], abs=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_header_geometry_matches_source(real_data, name):
    h = read_header(real_data / name)
    _check(h, EXPECTED[name])
    assert all(isinstance(line, str) for line in h.describe())


# our own byte-offset CBF decoder (all CBFs) and the fabio pass-through for two other formats
FRAME_CHECK = sorted(n for n in EXPECTED if ".cbf" in n) + [
    "format_singles_dials/TIMEPIX_SU_512-stdgoni_0001.img",
    "format_singles_fabio/i01f0001.kcd.bz2",
]


@pytest.mark.parametrize("name", FRAME_CHECK)
def test_frame_matches_fabio(real_data, name):
    import fabio

    ref = fabio.open(str(real_data / name)).data
    data = read_frame(real_data / name)
    assert data.dtype == ref.dtype
    assert data.shape == ref.shape
    np.testing.assert_array_equal(data, ref)


def test_every_real_image_is_covered(real_data):
    """No image in the real-data folder escapes the table above (except the l-cysteine sweep)."""
    files = {
        str(p.relative_to(real_data))
        for p in real_data.rglob("*")
        if p.is_file() and p.suffix not in (".txt", ".json", ".md", ".MD", ".expt")
        and "l_cysteine" not in str(p)
        # MOSFLM's own logs, SUMMARY, harvest and MTZ files are output references, not images
        and p.relative_to(real_data).parts[0] not in ("mosflm_logs", "mosflm_mtz")
    }
    assert files == set(EXPECTED)


def test_l_cysteine_sweep_all_images(real_data):
    """15 full-CBF images: imgCIF axes give the header geometry; phi advances by 0.1 deg."""
    for n in range(1, 16):
        path = real_data / "l_cysteine_sweep04" / f"l-cyst_04_{n:05d}.cbf"
        h = read_header(path)
        assert (h.nslow, h.nfast) == (1679, 1475)
        assert h.wavelength == pytest.approx(0.68890, abs=1e-5)
        assert h.distance == pytest.approx(160.0, abs=0.01)
        assert h.beam_x == pytest.approx(865.0 * 0.172, abs=0.01)
        assert h.beam_y == pytest.approx(730.0 * 0.172, abs=0.01)
        assert h.pixel_slow == pytest.approx(0.172, abs=1e-6)
        assert h.two_theta == pytest.approx(0.0, abs=1e-9)
        assert h.phi_start == pytest.approx(0.1 * (n - 1), abs=1e-4)
        assert h.osc_width == pytest.approx(0.1, abs=1e-6)
        assert h.overload == 388705 and h.nullpix == -1
        # the phi axis (0.5774, -0.8165, 0) is 54.7 deg from the fast axis (0, 1, 0):
        # described as Z = -axis (REVERSEPHI) with the detector turned 35.26 deg in its plane
        assert h.reverse_phi is True
        assert h.detector_omega == pytest.approx(math.degrees(math.atan2(0.5774, 0.8165)), abs=1e-3)
    data = read_frame(path)
    assert data.dtype == np.int32 and data.shape == (1679, 1475)
    assert data.min() == -2 or data.min() == -1
