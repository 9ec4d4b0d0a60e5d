"""Glue shared by the action handlers: the experiment of an image and the current crystal.

The current crystal (orientation, cell, space group, mosaic, missets, block width) is kept in
one place, the experiment model's ``session.results.crystal``
(:class:`mosflm_py.experiment_model.KnownCrystal`, each part with the step that found it);
before AUTOINDEX a MATRIX file read stands in for it.  :func:`current_crystal` applies the
CELL/SYMMETRY/MOSAIC/MISSETS/BLOCKSIZE keywords by MOSFLM's precedence (a keyword typed after the
value was found wins); :func:`set_crystal` records what a step found.  The user's settings are
never changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.experiment_model import (
    MATRIX_SERIAL,
    KnownCrystal,
    Origin,
    crystal_in_use,
    merge_crystal,
)
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.matrix_file import wavelength_from_matrix

if TYPE_CHECKING:
    from mosflm_py.session import Session

MATRIX_SOURCE = "MATRIX file"
CRYSTAL_PARTS_FOUND = ("cell", "orientation", "space_group", "missets")
"""What AUTOINDEX and cell refinement determine (mosaic and block width when they are > 0)."""


def space_group_name(symmetry: str | int | None) -> str:
    """Hermann–Mauguin symbol for a SYMMETRY value (number or name); "P 1" when unknown."""
    if symmetry is None:
        return "P 1"
    import gemmi

    try:
        sg = gemmi.find_spacegroup_by_number(int(symmetry))
    except (TypeError, ValueError):
        sg = gemmi.find_spacegroup_by_name(str(symmetry))
    if sg is None:
        raise GeometryError(f"unknown space group {symmetry!r} (give a number 1-230 or a symbol)")
    return sg.hm


def known_crystal(session: Session, wavelength: float | None = None) -> KnownCrystal | None:
    """The crystal the program holds (each part with its origin), or None before indexing.

    Before AUTOINDEX a MATRIX file read stands in, with every part from the file (a crystal
    keyword given at any time replaces it, as MOSFLM's CELL after MATRIX).
    """
    known = session.results.crystal
    if known is not None:
        return known
    mat = session.results.matrix
    if mat is None:
        return None
    if wavelength is None:
        wavelength = wavelength_from_matrix(mat.A, mat.cell)
    cr = Crystal.from_a_matrix(np.asarray(mat.A), wavelength, missets=tuple(mat.missets))
    return merge_crystal(None, cr, MATRIX_SOURCE, MATRIX_SERIAL, ())


def current_crystal(session: Session, wavelength: float | None = None) -> Crystal | None:
    """The crystal a step uses, or None before indexing / MATRIX.

    The crystal found (or the MATRIX file's) with the crystal keywords applied by
    :func:`mosflm_py.experiment_model.crystal_in_use`.
    """
    known = known_crystal(session, wavelength)
    if known is None:
        return None
    return crystal_in_use(known, session.state, space_group_name)


def set_crystal(session: Session, crystal: Crystal, source: str,
                parts: tuple[str, ...] | None = None) -> None:
    """Record that step *source* found *parts* of *crystal* (default: cell, orientation, space
    group and missets, and mosaic spread and block width when > 0).

    The other parts keep their values and origins (before AUTOINDEX, *crystal*'s values from a
    MATRIX file); the user's settings are not touched.
    """
    if parts is None:
        parts = CRYSTAL_PARTS_FOUND
        if crystal.mosaic > 0:
            parts += ("mosaic",)
        if crystal.domain_width > 0:
            parts += ("blocksize",)
    session.results.crystal = merge_crystal(
        session.results.crystal, crystal, source, session.state.clock, parts,
        base=Origin(MATRIX_SOURCE, MATRIX_SERIAL) if session.results.matrix is not None
        else None)


def experiment_for_image(session: Session, image_number: int,
                         crystal: Crystal | None = None) -> Experiment:
    """Experiment (beam, detector, goniometer, current crystal) for image ``image_number``."""
    g = session.geometry(image_number)
    if crystal is None:
        crystal = current_crystal(session, g.beam.wavelength)
    return Experiment(beam=g.beam, detector=g.detector, goniometer=g.goniometer, crystal=crystal)


def resolution_limits(session: Session, experiment: Experiment) -> tuple[float, float | None]:
    """(d_min, d_max) in Å: RESOLUTION keyword or the detector's corner resolution."""
    res = session.state.resolution
    dmin = res.dmin if res.dmin is not None else experiment.detector.max_resolution(
        experiment.beam.wavelength)
    return float(dmin), (float(res.dmax) if res.dmax is not None else None)
