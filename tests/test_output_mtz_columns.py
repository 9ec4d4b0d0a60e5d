"""Tests of the packed MTZ columns: ASU/ISYM, M/ISYM, MPART, FLAG, BGPKRATIOS."""

from __future__ import annotations

import gemmi
import numpy as np
import pytest

from mosflm_py.output.mtz_columns import (
    Flag,
    decode_bgpkratios,
    decode_misym,
    decode_mpart,
    encode_bgpkratios,
    encode_misym,
    encode_mpart,
    hkl_from_asu,
    hkl_to_asu,
)

SPACE_GROUPS = [
    "P 1", "P 1 2 1", "C 1 2 1", "P 1 1 2", "P 21 21 21", "C 2 2 21", "P 4", "P 43 21 2",
    "I 41/a", "P 3", "P 31 2 1", "P 3 1 2", "R 3 :H", "R 3 2 :R", "P 61", "P 6 2 2",
    "P 2 3", "I 4 3 2", "F m -3 m",
]  # fmt: skip


@pytest.mark.parametrize("name", SPACE_GROUPS)
def test_hkl_to_asu_matches_gemmi_scalar(name):
    sg = gemmi.find_spacegroup_by_name(name)
    hkl = np.random.default_rng(7).integers(-9, 10, size=(600, 3))
    asu_hkl, isym = hkl_to_asu(hkl, sg)
    asu, ops = gemmi.ReciprocalAsu(sg), sg.operations()
    expected = [asu.to_asu(h, ops) for h in hkl.tolist()]
    np.testing.assert_array_equal(asu_hkl, [e[0] for e in expected])
    np.testing.assert_array_equal(isym, [e[1] for e in expected])
    assert all(asu.is_in(h) for h in asu_hkl.tolist())
    np.testing.assert_array_equal(hkl_from_asu(asu_hkl, isym, sg), hkl)


def test_isym_parity_friedel_mates():
    hkl = np.array([[1, 2, 3], [3, 1, 5], [2, 0, 7]])
    a_plus, i_plus = hkl_to_asu(hkl, "P 43 21 2")
    a_minus, i_minus = hkl_to_asu(-hkl, "P 43 21 2")
    np.testing.assert_array_equal(a_plus, a_minus)  # same ASU index (Laue group)
    # the mate is reached by the same operator with the other sign: ISYM 2k-1 <-> 2k
    np.testing.assert_array_equal((i_plus + 1) // 2, (i_minus + 1) // 2)
    assert np.all(i_plus % 2 != i_minus % 2)
    assert i_plus[0] == 12  # (1 2 3) -> ASU (2 1 3) via -op6 (a Friedel-mate ISYM)


def test_hkl_to_asu_is_fast_on_many_records():
    import time

    hkl = np.random.default_rng(0).integers(-40, 41, size=(300_000, 3))
    t0 = time.perf_counter()
    hkl_to_asu(hkl, "P 6 2 2")
    assert time.perf_counter() - t0 < 3.0  # ~0.2 s measured on 2 cores


def test_misym_round_trip():
    isym = np.array([1, 2, 15, 16])
    partial = np.array([False, True, True, False])
    m = encode_misym(isym, partial)
    np.testing.assert_array_equal(m, [1, 258, 271, 16])
    back_isym, back_partial = decode_misym(m)
    np.testing.assert_array_equal(back_isym, isym)
    np.testing.assert_array_equal(back_partial, partial)


def test_mpart_encoding_decodes_as_aimless_does():
    npart = np.array([1, 2, 2, 9, 10, 12, 40, -1, 3])
    ipart = np.array([1, 1, 2, 9, 1, 12, 40, 1, 4])
    m = encode_mpart(npart, ipart)
    # MOSFLM's packing, 100 * Npart + Ipart for every partial (as in the real MOSFLM MTZ files)
    np.testing.assert_array_equal(m, [0, 201, 202, 909, 1001, 1212, 4040, 0, 304])
    partial = npart != 1
    got_n, got_i = decode_mpart(m, partial)
    np.testing.assert_array_equal(got_n, [1, 2, 2, 9, 10, 12, 40, -1, 3])
    np.testing.assert_array_equal(got_i, [1, 1, 2, 9, 1, 12, 40, 1, 4])
    # MPART = 10 marks an already summed partial (treated as full); fulls ignore MPART.
    n10, i10 = decode_mpart(np.array([10, 35]), np.array([True, False]))
    np.testing.assert_array_equal(n10, [1, 1])
    np.testing.assert_array_equal(i10, [1, 1])


def test_flag_bits():
    assert [int(f) for f in Flag] == [1, 2, 4, 8, 16, 32]
    assert Flag(Flag.OVERLOAD | Flag.EDGE) == 48


def test_bgpkratios_packing_and_decoding():
    bg = np.array([1.03, 0.0, 12.0, np.nan, np.nan, 2.5])
    pk = np.array([1.234, 0.5, 3.0, np.nan, 2.0, 0.0])
    gr = np.array([0.012, 0.0, 5.0, np.nan, np.nan, 0.5])
    packed = encode_bgpkratios(bg, pk, gr)
    np.testing.assert_allclose(packed[:3], [12310.012, 5000.0, 30099.99], atol=1e-9)
    assert np.isnan(packed[3])
    assert packed[4] == 20000.0  # partially missing: missing parts count as 0
    stored = packed.astype(np.float32)  # what the MTZ keeps
    dbg, dpk, dgr = decode_bgpkratios(stored)
    np.testing.assert_allclose(dbg[[0, 1, 2, 5]], [1.0, 0.0, 9.9, 2.5], atol=1e-9)
    np.testing.assert_allclose(dpk[[0, 1, 2, 5]], [1.23, 0.5, 3.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(dgr[[0, 1, 2, 5]], [0.012, 0.0, 0.99, 0.5], atol=4e-3)
    assert np.isnan(dbg[3]) and np.isnan(dpk[3]) and np.isnan(dgr[3])
