"""Index reciprocal-lattice vectors: DPS basis, Niggli reduction, 44 characters, refinement."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mosflm_py.indexing.characters import fit_characters, space_groups_for_lattice
from mosflm_py.indexing.dps import BasisSearchResult, find_basis, fit_basis
from mosflm_py.indexing.lattice_refine import refine_lattice_rlp
from mosflm_py.indexing.niggli import cell_from_basis, niggli_reduce
from mosflm_py.indexing.solutions import IndexingParams, SolutionRow, choose_solution


@dataclass(frozen=True, eq=False)
class RlpIndexingResult:
    """Result of :func:`index_rlp`.

    Attributes
    ----------
    rows : list of SolutionRow
        The 44 characters sorted by penalty.
    chosen : int
        Index into ``rows`` of the chosen solution.
    reduced_basis : ndarray (3, 3)
        Niggli-reduced real-space basis (rows, Angstrom) of the triclinic solution.
    basis_search : BasisSearchResult
    """

    rows: list[SolutionRow]
    chosen: int
    reduced_basis: np.ndarray
    basis_search: BasisSearchResult

    @property
    def solution(self) -> SolutionRow:
        """The chosen row."""
        return self.rows[self.chosen]


def triclinic_solution(rlp: np.ndarray, max_cell: float, params: IndexingParams):
    """DPS search and least-squares fit; returns (reduced basis, BasisSearchResult)."""
    search = find_basis(
        rlp,
        max_cell,
        min_cell=params.min_cell,
        hkldev=params.hkldev,
        nvect=params.nvect,
        spacing=params.spacing,
    )
    basis = fit_basis(rlp, search.basis, params.hkldev)
    red = niggli_reduce(basis).basis
    red = fit_basis(rlp, red, params.hkldev)
    if np.linalg.det(red) < 0:
        red = -red
    return red, search


def character_rows(reduced_basis: np.ndarray) -> list[SolutionRow]:
    """The 44 unrefined rows for a reduced basis, sorted by penalty (numbered 1..44)."""
    fits = fit_characters(reduced_basis)
    order = sorted(range(len(fits)), key=lambda i: (round(fits[i].penalty, 6), i))
    rows = []
    for n, i in enumerate(order, start=1):
        f = fits[i]
        rows.append(
            SolutionRow(
                number=n,
                character=f.character.number,
                lattice=f.bravais,
                penalty=f.penalty,
                cell=f.regularized_cell,
                regularized_cell=f.regularized_cell,
                raw_cell=f.cell,
                transform=f.transform,
                space_groups=space_groups_for_lattice(f.bravais),
            )
        )
    return rows


def conventional_ub(reduced_basis: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """U.B (1/Angstrom) of the conventional basis ``transform @ reduced_basis``."""
    return np.linalg.inv(transform @ reduced_basis)


def index_rlp(
    rlp: np.ndarray, max_cell: float, params: IndexingParams | None = None
) -> RlpIndexingResult:
    """Autoindex reciprocal-lattice vectors (no detector model needed).

    The DPS basis is Niggli-reduced, the 44 lattice characters are scored, solutions with
    penalty below ``params.refine_penalty`` are refined in reciprocal space with their symmetry
    constraints, and the automatic choice of :func:`choose_solution` is applied.

    Parameters
    ----------
    rlp : array (N, 3)
        Reciprocal-lattice vectors at the datum (1/Angstrom).
    max_cell : float
        Maximum cell edge (Angstrom).
    params : IndexingParams

    Raises
    ------
    IndexingError
        The basis search failed.
    """
    params = params or IndexingParams()
    rlp = np.asarray(rlp, dtype=float)
    red, search = triclinic_solution(rlp, max_cell, params)
    # refine the triclinic cell first, then recompute the penalties from it
    ap = refine_lattice_rlp(rlp, np.linalg.inv(red), cell_from_basis(red), "aP",
                            hkldev=params.hkldev, sdcutoff=params.sdcutoff)
    red = niggli_reduce(np.linalg.inv(ap.ub)).basis
    rows = character_rows(red)
    refined = []
    for row in rows:
        if row.penalty >= params.refine_penalty:
            refined.append(row)
            continue
        ub0 = conventional_ub(red, row.transform)
        ref = refine_lattice_rlp(rlp, ub0, row.regularized_cell, row.lattice,
                                 hkldev=params.hkldev, sdcutoff=params.sdcutoff)
        refined.append(
            replace(
                row,
                cell=ref.cell,
                refined=True,
                fracn=ref.fraction,
                n_indexed=ref.n_used,
                ub=ref.ub,
                rms_rel=ref.rms_rel,
            )
        )
    chosen = choose_solution(refined, params)
    return RlpIndexingResult(rows=refined, chosen=chosen, reduced_basis=red, basis_search=search)
