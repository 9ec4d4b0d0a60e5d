"""Rows of the SUMMARY tables "Refined detector parameters" and "Post refinement" (as data).

Column names follow MOSFLM 6.2.6's SUMMARY file (``mosflm_outputs.md`` §2.2); the loggraph writer
(:mod:`mosflm_py.output.summary`) formats them.  Integration-only columns (FULL, PART, OVRL, NEG,
BAD, I/sigI, Rsym, Nsym, SDRAT) are left for the integration engine to fill in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mosflm_py.geometry.detector import Detector
from mosflm_py.refinement.global_positional import spot_predictions
from mosflm_py.refinement.positional import DetectorRefinement
from mosflm_py.refinement.postref import PostRefinement

if TYPE_CHECKING:
    from mosflm_py.refinement.global_positional import GlobalRefinement
    from mosflm_py.refinement.spots3d import SpotObservations

DETECTOR_COLUMNS = ("IMAGE", "CCX", "CCY", "CCOM", "DIST", "YSCALE", "TILT", "TWIST", "ROFF",
                    "TOFF", "RESID", "WRESID")
POSTREF_COLUMNS = ("Image", "PHIX", "PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA", "GAMMA",
                   "MOSAIC", "DIVH", "DIVV", "Resid", "NR")


def detector_row(cycle: int, image: int, result: DetectorRefinement,
                 reference: Detector) -> dict:
    """One "Refined detector parameters" row; CCX/CCY/CCOM relative to ``reference`` (mm, °)."""
    d = result.experiment.detector
    return {
        "cycle": cycle, "IMAGE": int(image),
        "CCX": d.beam_x - reference.beam_x, "CCY": d.beam_y - reference.beam_y,
        "CCOM": d.ccomega - reference.ccomega, "DIST": d.distance, "YSCALE": d.yscale,
        "TILT": d.tilt, "TWIST": d.twist, "ROFF": 0.0, "TOFF": 0.0,
        "RESID": result.rms, "WRESID": result.wrms,
        "XCEN": d.beam_x, "YCEN": d.beam_y, "NREF": result.n_used,
        "PSIX": result.values.get("PSIX", 0.0),
    }


def global_detector_row(cycle: int, image: int, result: GlobalRefinement,
                        spots: SpotObservations, phi_start: float, phi_end: float,
                        reference: Detector) -> dict:
    """A "Refined detector parameters" row for one image after global positional refinement.

    The detector is the same for all images; RESID is the rms positional residual (mm) of the
    spots whose φ centroid lies on the image (NaN if none), NREF their number.
    """
    d = result.experiment.detector
    on = result.used & (spots.phi >= phi_start) & (spots.phi < phi_end)
    rms = float("nan")
    if on.any():
        xc, yc, _ = spot_predictions(result.experiment, spots.select(on))
        rms = float(np.sqrt(np.mean((spots.x[on] - xc) ** 2 + (spots.y[on] - yc) ** 2)))
    return {
        "cycle": cycle, "IMAGE": int(image),
        "CCX": d.beam_x - reference.beam_x, "CCY": d.beam_y - reference.beam_y,
        "CCOM": d.ccomega - reference.ccomega, "DIST": d.distance, "YSCALE": d.yscale,
        "TILT": d.tilt, "TWIST": d.twist, "ROFF": 0.0, "TOFF": 0.0,
        "RESID": rms, "WRESID": result.wrms,
        "XCEN": d.beam_x, "YCEN": d.beam_y, "NREF": int(on.sum()), "PSIX": 0.0,
    }


def postref_row(cycle: int, image: int, result: PostRefinement) -> dict:
    """One "Post refinement" row (with an ``sds`` dict of the esds, as MOSFLM's sds line)."""
    v, e = result.values, result.esds
    rms, nr = result.per_image.get(int(image), (float("nan"), 0))
    div = result.experiment.beam.divergence
    return {
        "cycle": cycle, "Image": int(image),
        "PHIX": v["PHIX"], "PHIY": v["PHIY"], "PHIZ": v["PHIZ"],
        "A": v["A"], "B": v["B"], "C": v["C"],
        "ALPHA": v["ALPHA"], "BETA": v["BETA"], "GAMMA": v["GAMMA"],
        "MOSAIC": v["MOSAIC"], "DIVH": div[0], "DIVV": div[1], "Resid": rms, "NR": nr,
        "sds": {k: e[k] for k in ("PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA", "GAMMA",
                                  "MOSAIC", "DIVERGENCE")},
    }


def as_table(rows: list[dict], columns: tuple[str, ...]) -> list[list[float]]:
    """Rows as lists in ``columns`` order (for the loggraph writer)."""
    return [[r[c] for c in columns] for r in rows]
