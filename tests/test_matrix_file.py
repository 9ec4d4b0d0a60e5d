"""Tests of the MOSFLM matrix-file reader/writer (mosflm_py.geometry.matrix_file)."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.errors import MosflmError
from mosflm_py.geometry.matrix_file import (
    MatrixFileError,
    format_matrix_file,
    parse_matrix_text,
    read_matrix_file,
    wavelength_from_matrix,
    write_matrix_file,
)


def busing_levy_b(cell):
    """B of conventions.txt, written out independently of mosflm_py.geometry.crystal."""
    a, b, c, al, be, ga = cell
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    sa, sb, sg = np.sin(np.radians([al, be, ga]))
    vol = a * b * c * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg)
    ast, bst, cst = b * c * sa / vol, a * c * sb / vol, a * b * sg / vol
    cos_bst = (ca * cg - cb) / (sa * sg)
    cos_gst = (ca * cb - cg) / (sa * sb)
    sin_bst, sin_gst = np.sqrt(1 - cos_bst**2), np.sqrt(1 - cos_gst**2)
    return np.array(
        [
            [ast, bst * cos_gst, cst * cos_bst],
            [0.0, bst * sin_gst, -cst * sin_bst * ca],
            [0.0, 0.0, 1.0 / c],
        ]
    )


def random_rotation(seed):
    q = np.random.default_rng(seed).normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


TRICLINIC = (41.3, 52.7, 63.1, 77.2, 82.9, 71.4)


def test_busing_levy_b_matches_package_b_matrix():
    crystal = pytest.importorskip("mosflm_py.geometry.crystal")
    np.testing.assert_allclose(crystal.b_matrix(TRICLINIC), busing_levy_b(TRICLINIC), atol=1e-14)


def test_round_trip_triclinic_consistent_with_lambda_u_b(tmp_path):
    wavelength = 0.97966
    U = random_rotation(3)
    A = wavelength * U @ busing_levy_b(TRICLINIC)
    missets = (0.125, -0.333, 1.5)
    path = tmp_path / "NEWMAT"
    write_matrix_file(path, A, missets, U, TRICLINIC)
    lines = path.read_text().splitlines()
    assert len(lines) == 9
    assert all(len(line) == 36 for line in lines[:7] + lines[8:])  # 3 fields of 12
    assert len(lines[7]) == 72  # 6F12.4
    assert lines[3] == lines[8] == "       0.125      -0.333       1.500"

    m = read_matrix_file(path)
    np.testing.assert_allclose(m.A, A, atol=5e-9)  # F12.8 rounding
    np.testing.assert_allclose(m.U, U, atol=5e-9)
    np.testing.assert_allclose(m.missets, missets, atol=5e-4)
    np.testing.assert_allclose(m.missets_end, missets, atol=5e-4)
    np.testing.assert_allclose(m.cell, TRICLINIC, atol=5e-5)
    # A = lambda U B holds for what was read back, and the wavelength is recovered.
    np.testing.assert_allclose(m.A, wavelength * m.U @ busing_levy_b(m.cell), atol=2e-8)
    assert m.wavelength == pytest.approx(wavelength, abs=1e-6)
    assert wavelength_from_matrix(A, TRICLINIC) == pytest.approx(wavelength, rel=1e-12)
    assert not m.A.flags.writeable


def _cctbx_example_text():
    """A file shaped like the cctbx example: line 1, missets and cell as published.

    The rest of A and U is completed consistently: U row 1 = (A11 a, A12 b, A13 c)/lambda must be a
    unit vector, which fixes lambda; rows 2-3 of U complete an orthonormal basis.
    """
    a, c = 57.9032, 150.2768
    cell = (a, a, c, 90.0, 90.0, 90.0)
    row0 = np.array([-0.00433169 * a, 0.01503544 * a, 0.00095474 * c])
    lam = np.linalg.norm(row0)
    u0 = row0 / lam
    u1 = np.cross(u0, [0.0, 0.0, 1.0])
    u1 /= np.linalg.norm(u1)
    U = np.array([u0, u1, np.cross(u0, u1)])
    A = lam * U @ busing_levy_b(cell)
    text = format_matrix_file(A, (-0.082, 0.191, 0.037), U, cell)
    return text, lam, A, U


def test_cctbx_example_reads():
    text, lam, A, U = _cctbx_example_text()
    first = text.splitlines()[0]
    assert first.split() == ["-0.00433169", "0.01503544", "0.00095474"]
    m = parse_matrix_text(text)
    np.testing.assert_array_equal(m.A[0], [-0.00433169, 0.01503544, 0.00095474])
    np.testing.assert_array_equal(m.missets, [-0.082, 0.191, 0.037])
    assert m.cell == (57.9032, 57.9032, 150.2768, 90.0, 90.0, 90.0)
    # for an orthogonal cell lambda = |a*_A| . a on each axis
    for i, edge in enumerate(m.cell[:3]):
        assert np.linalg.norm(m.A[:, i]) * edge == pytest.approx(lam, abs=2e-6)
    assert m.wavelength == pytest.approx(lam, abs=1e-6)
    assert 0.9 < m.wavelength < 0.95


def test_tolerant_parsing_run_together_missing_trailer_and_extra_text():
    text, _, A, U = _cctbx_example_text()
    lines = text.splitlines()
    squeezed = [line.replace(" -", "-").replace("  ", " ") for line in lines]
    squeezed[0] = "-0.00433169 0.01503544-0.00095474"  # numbers run together at the sign
    body = "\n\n".join(squeezed[:8]) + "\nSYMM P43212\n"  # no trailing missets, blank lines, text
    m = parse_matrix_text(body)
    assert m.A[0].tolist() == [-0.00433169, 0.01503544, -0.00095474]
    assert m.missets_end is None
    np.testing.assert_allclose(m.U, U, atol=5e-9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "found 0 numbers"),
        ("0.1 0.2 0.3\n0.1 0.2\n", "needs at least 27"),
        ("hello world\n", "line 1 is not a line of numbers"),
        ("0.1 0.2 0.3\n0.1 abc 0.3\n" + "1 " * 25, "line 2"),
    ],
)
def test_bad_files_give_clear_errors(text, message):
    with pytest.raises(MatrixFileError, match=message):
        parse_matrix_text(text)


def test_non_rotation_u_and_bad_cell_rejected():
    text, *_ = _cctbx_example_text()
    lines = text.splitlines()
    bad_u = lines[:4] + ["  2.0 0.0 0.0"] + lines[5:]
    with pytest.raises(MatrixFileError, match="not a rotation"):
        parse_matrix_text("\n".join(bad_u))
    bad_cell = lines[:7] + ["10 10 10 90 90 200"] + lines[8:]
    with pytest.raises(MatrixFileError, match="angles"):
        parse_matrix_text("\n".join(bad_cell))
    flat_cell = lines[:7] + ["10 10 10 120 120 120"] + lines[8:]
    with pytest.raises(MatrixFileError, match="real cell"):
        parse_matrix_text("\n".join(flat_cell))


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(MosflmError, match="does not exist"):
        read_matrix_file(tmp_path / "nothere.mat")
