"""Glue shared by the action handlers: the experiment of an image and the current crystal.

The current crystal (orientation, cell, space group, mosaic, missets) is kept in one place,
``session.results.extra["crystal"]``; :func:`current_crystal` falls back to a MATRIX file and the
CELL/SYMMETRY/MOSAIC/MISSETS keywords.  :func:`set_crystal` stores a new one and mirrors its
cell, symmetry, mosaic and missets into the state (as derived, not user, values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.crystal import Crystal
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.matrix_file import wavelength_from_matrix

if TYPE_CHECKING:
    from mosflm_py.session import Session

CRYSTAL_KEY = "crystal"


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


def current_crystal(session: Session, wavelength: float | None = None) -> Crystal | None:
    """The current crystal model, or None before indexing / MATRIX."""
    st = session.state.crystal
    cr = session.results.extra.get(CRYSTAL_KEY)
    if cr is None and session.results.matrix is not None:
        mat = session.results.matrix
        if wavelength is None:
            wavelength = wavelength_from_matrix(mat.A, mat.cell)
        cr = Crystal.from_a_matrix(np.asarray(mat.A), wavelength,
                                   missets=tuple(mat.missets))
        # a CELL given by the user replaces the matrix file's cell (the orientation U is kept)
        if st.cell is not None and (st.cell_keep or session.state.is_user_set("crystal.cell")):
            cr = cr.replace(cell=tuple(st.cell))
    if cr is None:
        return None
    changes: dict[str, Any] = {}
    if st.symmetry is not None:
        changes["space_group"] = space_group_name(st.symmetry)
    if st.mosaic is not None:
        changes["mosaic"] = float(st.mosaic)
    if st.blocksize is not None:
        changes["domain_width"] = domain_width_from_blocksize(st.blocksize)
    if st.missets is not None:
        changes["missets"] = tuple(st.missets)
    return cr.replace(**changes) if changes else cr


def set_crystal(session: Session, crystal: Crystal) -> None:
    """Make ``crystal`` the current crystal and mirror it into the state (derived values)."""
    session.results.extra[CRYSTAL_KEY] = crystal
    session.set("crystal.cell", tuple(float(c) for c in crystal.cell))
    session.set("crystal.symmetry", crystal.space_group)
    session.set("crystal.missets", tuple(float(m) for m in crystal.missets))
    if crystal.mosaic > 0:
        session.set("crystal.mosaic", float(crystal.mosaic))
    if crystal.domain_width > 0:
        session.set("crystal.blocksize", blocksize_from_domain_width(crystal.domain_width))


def domain_width_from_blocksize(blocksize_um: float) -> float:
    """MOSAIC ... BLOCKSIZE (µm, as iMosflm) → reciprocal-space width 1/t (1/Å); 0 for t <= 0."""
    return 1.0 / (float(blocksize_um) * 1.0e4) if blocksize_um > 0 else 0.0


def blocksize_from_domain_width(width: float) -> float:
    """Inverse of :func:`domain_width_from_blocksize` (µm)."""
    return 1.0 / (float(width) * 1.0e4)


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
