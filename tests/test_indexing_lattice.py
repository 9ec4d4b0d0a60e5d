"""Niggli reduction, the 44 lattice characters, penalties and space-group lists."""

from __future__ import annotations

import numpy as np
import pytest

from mosflm_py.indexing.characters import (
    CENTRING_MULTIPLICITY,
    _metric_from_g,
    fit_characters,
    lattice_characters,
    space_groups_for_lattice,
)
from mosflm_py.indexing.niggli import (
    basis_from_cell,
    cell_from_metric,
    g6_from_basis,
    is_niggli_reduced,
    niggli_reduce,
)


def _random_unimodular(rng: np.random.Generator, span: int = 3) -> np.ndarray:
    while True:
        m = rng.integers(-span, span + 1, size=(3, 3))
        if round(np.linalg.det(m)) == 1:
            return m


def test_niggli_random_unimodular_transforms_give_same_reduced_cell():
    rng = np.random.default_rng(7)
    n = 0
    while n < 60:
        cell = (*rng.uniform(5, 150, 3), *rng.uniform(65, 115, 3))
        try:
            basis = basis_from_cell(cell)
        except np.linalg.LinAlgError:
            continue
        n += 1
        ref = niggli_reduce(basis)
        assert is_niggli_reduced(ref.g6)
        for _ in range(3):
            m = _random_unimodular(rng)
            red = niggli_reduce(m @ basis)
            # same reduced form (relative 1e-6), transform is integral, unimodular and exact
            scale = ref.g6[:3].max()
            np.testing.assert_allclose(red.g6, ref.g6, rtol=1e-6, atol=1e-6 * scale)
            assert round(np.linalg.det(red.transform)) == 1
            np.testing.assert_allclose(red.transform @ m @ basis, red.basis, atol=1e-9 * scale)


@pytest.mark.parametrize(
    ("basis", "step"),
    [
        (np.diag([3.0, 2.0, 4.0]), 1),  # A > B
        (np.diag([2.0, 4.0, 3.0]), 2),  # B > C
        (np.array([[2.0, 0, 0], [-0.3, 2.5, 0], [-0.4, 0.2, 3]]), 3),  # product > 0, not all +
        (np.array([[2.0, 0, 0], [-0.3, 2.5, 0], [0.4, 0.2, 3]]), 4),  # product <= 0
        (np.array([[2.0, 0, 0], [0.0, 2.5, 0], [0.0, 2.0, 3]]), 5),  # |xi| > B
        (np.array([[2.0, 0, 0], [0.0, 2.5, 0], [1.7, 0.0, 3]]), 6),  # |eta| > A
        (np.array([[2.0, 0, 0], [1.6, 2.5, 0], [0.0, 0.0, 3]]), 7),  # |zeta| > A
    ],
)
def test_niggli_each_step_is_exercised(basis, step):
    res = niggli_reduce(basis)
    assert step in res.steps
    assert is_niggli_reduced(res.g6)
    # reduction never increases the sum of squared edges
    assert res.g6[:3].sum() <= g6_from_basis(basis)[:3].sum() + 1e-9


def test_niggli_step8():
    # a, b, c with a + b + c much shorter than c: type II with xi+eta+zeta+A+B < 0
    g = np.full((3, 3), -0.45) + 1.45 * np.eye(3)  # unit edges, all dot products -0.45
    res = niggli_reduce(np.linalg.cholesky(g))
    assert 8 in res.steps
    assert is_niggli_reduced(res.g6)


def test_niggli_known_fcc_and_bcc():
    # F-centred cubic a=10: primitive reduced cell is rhombohedral 7.0711, 60 deg
    f = 10.0 * np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]) @ np.diag([1, 1, 1])
    red = niggli_reduce(_random_unimodular(np.random.default_rng(1)) @ f)
    np.testing.assert_allclose(red.cell, (7.0710678,) * 3 + (60.0,) * 3, rtol=1e-6)
    # I-centred cubic a=10: 8.6603, 109.47 deg
    i = 10.0 * np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]])
    red = niggli_reduce(_random_unimodular(np.random.default_rng(2)) @ i)
    np.testing.assert_allclose(red.cell, (8.660254,) * 3 + (109.4712206,) * 3, rtol=1e-6)


def _example_metric(ch, rng):
    """A Niggli-reduced metric satisfying the character's conditions exactly."""
    for _ in range(50000):
        A, B, C = np.sort(rng.uniform(50, 150, 3))
        dd = rng.uniform(0.02, 0.5, 3) * np.sqrt([B * C, A * C, A * B])
        g = np.array([A, B, C, *(dd if ch.type == "I" else -dd)])
        k = ch.constraints
        if len(k):
            g = g - k.T @ np.linalg.solve(k @ k.T, k @ g)
        if np.any(np.linalg.eigvalsh(_metric_from_g(g)) <= 1e-3 * g[:3].max()):
            continue
        if (ch.type == "I" and np.any(g[3:] <= 0)) or (ch.type == "II" and np.any(g[3:] > 0)):
            continue
        if is_niggli_reduced(np.r_[g[:3], 2 * g[3:]], 1e-7):
            return _metric_from_g(g)
    raise AssertionError(f"no example for character {ch.number}")


_CENTRING_VECTORS = {
    "P": [(0, 0, 0)],
    "C": [(0, 0, 0), (0.5, 0.5, 0)],
    "I": [(0, 0, 0), (0.5, 0.5, 0.5)],
    "F": [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)],
    "R": [(0, 0, 0), (2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)],
}


@pytest.mark.parametrize("number", range(1, 45))
def test_character_table_is_consistent(number):
    """Exact example of each character: penalty 0, conventional cell symmetric, centring right."""
    ch = lattice_characters()[number - 1]
    rng = np.random.default_rng(100 + number)
    g = _example_metric(ch, rng)
    fit = fit_characters(np.linalg.cholesky(g))[number - 1]
    assert fit.character.number == number
    assert fit.penalty < 1e-3
    t = fit.transform
    det = round(np.linalg.det(t))
    centring = fit.bravais[1]
    assert det == CENTRING_MULTIPLICITY[centring]
    # every primitive basis vector is a conventional lattice vector plus a centring vector
    frac = np.linalg.solve(t.T.astype(float), np.eye(3)).T  # rows: reduced a,b,c in conv. coords
    for row in frac:
        rem = row - np.floor(row + 1e-9)
        allowed = _CENTRING_VECTORS[centring]
        assert any(np.allclose(rem, c, atol=1e-9) for c in allowed), (row, centring)
    cell = cell_from_metric(t @ g @ t.T)
    np.testing.assert_allclose(cell, fit.regularized_cell, atol=1e-6)
    a, b, c, al, be, ga = cell
    s = fit.bravais[0]
    if s in "otc":
        np.testing.assert_allclose([al, be, ga], 90, atol=1e-6)
    if s == "m":
        np.testing.assert_allclose([al, ga], 90, atol=1e-6)
        assert be >= 90 - 1e-9
    if s in "tc":
        assert abs(a - b) < 1e-6
    if s == "c":
        assert abs(a - c) < 1e-6
    if s == "h":
        np.testing.assert_allclose([a, al, be, ga], [b, 90, 90, 120], atol=1e-6)


def test_penalties_small_distortion_and_wrong_lattices():
    # tetragonal P cell with 0.1 % noise: tP penalty small, cubic large
    rng = np.random.default_rng(3)
    cell = (50.0, 50.0, 80.0, 90.0, 90.0, 90.0)
    basis = basis_from_cell(cell) * (1 + 1e-3 * rng.standard_normal((3, 3)))
    fits = fit_characters(niggli_reduce(basis).basis)
    best = {}
    for f in fits:
        best[f.bravais] = min(best.get(f.bravais, 999.0), f.penalty)
    assert best["aP"] < 1e-6
    assert best["tP"] < 5
    assert best["oP"] < 5
    assert best["cP"] > 200
    assert best["hP"] > 100
    # 1 degree off 90: penalty ~ 1000*cos(89 deg) = 17.5
    basis = basis_from_cell((40.0, 60.0, 80.0, 90.0, 91.0, 90.0))
    fits = fit_characters(niggli_reduce(basis).basis)
    op = min(f.penalty for f in fits if f.bravais == "oP")
    mp = min(f.penalty for f in fits if f.bravais == "mP")
    assert mp < 1e-6
    assert 15 < op < 20


def test_penalty_robust_to_sign_of_near_zero_angle():
    # monoclinic-like cell with alpha = 90.02 and gamma = 89.99: reduction flips sign types
    basis = basis_from_cell((30.0, 45.0, 60.0, 90.02, 100.0, 89.99))
    fits = fit_characters(niggli_reduce(basis).basis)
    mp = min(f.penalty for f in fits if f.bravais == "mP")
    assert mp < 1.0


def test_space_groups_for_lattice():
    assert space_groups_for_lattice("aP") == ("P1",)
    assert space_groups_for_lattice("mC") == ("C2",)
    assert space_groups_for_lattice("oP")[:4] == ("P222", "P2221", "P21212", "P212121")
    assert space_groups_for_lattice("tP")[0] == "P4"
    assert space_groups_for_lattice("hP")[0] == "P3"
    assert space_groups_for_lattice("hR") == ("H3", "H32")
    assert space_groups_for_lattice("cF")[0] == "F23"
    assert len(space_groups_for_lattice("tP")) == 12
