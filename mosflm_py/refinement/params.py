"""Control parameters of positional refinement (REFINEMENT) and post-refinement (POSTREF).

Defaults are MOSFLM 6.2.6's (``mosflm_keywords.md`` §2.6, §2.7).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mosflm_py.errors import BadParameter

#: Parameters of the per-image detector model, in MOSFLM's names.
DETECTOR_PARAMETERS = ("XCEN", "YCEN", "DISTANCE", "YSCALE", "TILT", "TWIST", "CCOMEGA", "PSIX")
"""PSIX here is the crystal rotation about the beam at the image's φ (MOSFLM refines it in the
positional refinement: "PSIX changed by ..."); it is exactly degenerate with CCOMEGA for an untilted
detector, so CCOMEGA is fixed by default."""

#: Crystal parameters known to post-refinement (cell names are resolved under the symmetry).
POSTREF_PARAMETERS = ("PHIX", "PHIY", "PHIZ", "A", "B", "C", "ALPHA", "BETA", "GAMMA", "MOSAIC",
                      "BLOCKSIZE", "DIVERGENCE")

_ALIASES = {"XTOFRA": "DISTANCE", "XTOFD": "DISTANCE", "DIST": "DISTANCE", "CCOM": "CCOMEGA",
            "PSIX": "PHIX", "PSIY": "PHIY", "PSIZ": "PHIZ", "BEAM": "DIVERGENCE",
            "DIVH": "DIVERGENCE", "DIVV": "DIVERGENCE", "ETA": "MOSAIC"}


def canonical_names(names: object, allowed: tuple[str, ...]) -> frozenset[str]:
    """Upper-case, alias-resolved parameter names; ``ALL`` expands to ``allowed``.

    Raises
    ------
    BadParameter
        For a name that is not a parameter of this refinement.
    """
    out = set()
    for n in names or ():
        u = str(n).upper()
        u = u if u in allowed else _ALIASES.get(u, u)
        if u == "ALL":
            out.update(allowed)
        elif u == "CELL":
            out.update(p for p in ("A", "B", "C", "ALPHA", "BETA", "GAMMA") if p in allowed)
        elif u in allowed:
            out.add(u)
        else:
            raise BadParameter(
                f"{n} is not a refinable parameter here; choose from {' '.join(allowed)}"
            )
    return frozenset(out)


@dataclass(frozen=True)
class RefinementParams:
    """REFINEMENT keyword: per-image positional refinement of the detector.

    Parameters
    ----------
    fix : names of fixed parameters (:data:`DETECTOR_PARAMETERS`, aliases XTOFRA, CCOM).
        CCOMEGA is fixed by default when the crystal rotation about the beam is refined elsewhere.
    nref : number of strong central reflections used in the first pass (NREF, 20).
    limit : radius (mm) of the central region for the first pass (LIMIT, 45).
    cycles : least-squares cycles per pass (CYCLES, 2; each cycle is a full Gauss–Newton solve).
    residual : abandon if the weighted residual exceeds this (RESIDUAL, 5.0).
    include_partials : minimum calculated fraction of a partial to be used; ``None`` = fulls only
        (INCLUDE PARTIALS [frac], default 0.5 when switched on).
    fullfrac : partials are switched on automatically when fewer than this fraction of the
        reflections are fully recorded (FULLFRAC, 0.33).
    weight : weight by centroid σ (WEIGHT, on).
    reject_sigma : outliers beyond this many robust σ (1.4826·MAD) are rejected.
    min_isig : minimum I/σ of a reflection to be used.
    raise_on_residual : raise :class:`RefinementError` (True) or only warn when the weighted
        residual exceeds ``residual``.
    """

    fix: frozenset[str] = frozenset({"CCOMEGA"})
    nref: int = 20
    limit: float = 45.0
    cycles: int = 2
    residual: float = 5.0
    include_partials: float | None = None
    fullfrac: float = 0.33
    weight: bool = True
    reject_sigma: float = 4.0
    min_isig: float = 5.0
    raise_on_residual: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "fix", canonical_names(self.fix, DETECTOR_PARAMETERS))
        if self.nref < 3:
            raise BadParameter(f"REFINEMENT NREF must be at least 3 (got {self.nref})")
        if self.cycles < 1:
            raise BadParameter(f"REFINEMENT CYCLES must be at least 1 (got {self.cycles})")
        if not self.residual > 0:
            raise BadParameter(f"REFINEMENT RESIDUAL must be positive (got {self.residual})")

    @property
    def free(self) -> tuple[str, ...]:
        """Refined parameters in :data:`DETECTOR_PARAMETERS` order."""
        return tuple(p for p in DETECTOR_PARAMETERS if p not in self.fix)

    def replace(self, **changes: object) -> RefinementParams:
        """Copy with fields replaced."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PostrefParams:
    """POSTREF keyword: post-refinement of missets, cell and mosaic spread.

    Parameters
    ----------
    fix : fixed parameters (:data:`POSTREF_PARAMETERS`; ``CELL`` and ``ALL`` accepted).  By
        default the beam divergence is fixed (it is fully correlated with η in the uniform-ball
        model of conventions.txt).  PHIX (rotation about the beam) is left to positional
        refinement automatically when the data span less than 20° in φ.
    nref : minimum number of reflections (NREF, 20).
    sdfac : only reflections with I > sdfac·σ(I) are used (SDFAC, 3).
    maxresidual : abandon if the rms residual (degrees) exceeds this (MAXRESIDUAL); ``None`` uses
        0.55·(η + mean divergence), MOSFLM's scaled default, with a floor of 0.1°.
    maxshift : missets shifting more than this (degrees) ask for re-processing (MAXSHIFT, 0.05).
    shiftfac : cell refinement repeats while a cell parameter shifts by more than this many σ
        (SHIFTFAC, 2.5).
    mossmooth : images in the running mean of per-image mosaic (MOSSMOOTH, 10).
    mosadd : safety factor added to the mosaic for prediction (MOSADD, 0.05 = 5 %).
    frmin, frmax : only observed cumulative fractions in this range are used (FRMIN, FRMAX).
    multi : use partials spread over several images (MULTI; default on).
    max_cycles : Gauss–Newton iterations.
    reject_sigma : robust outlier rejection (multiples of 1.4826·MAD of the φ residual).
    """

    fix: frozenset[str] = frozenset({"DIVERGENCE"})
    nref: int = 20
    sdfac: float = 3.0
    maxresidual: float | None = None
    maxshift: float = 0.05
    shiftfac: float = 2.5
    mossmooth: int = 10
    mosadd: float = 0.05
    frmin: float = 0.05
    frmax: float = 0.95
    multi: bool = True
    max_cycles: int = 20
    reject_sigma: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fix", canonical_names(self.fix, POSTREF_PARAMETERS))
        if not 0.0 <= self.frmin < self.frmax <= 1.0:
            raise BadParameter(
                f"POSTREF FRMIN {self.frmin} / FRMAX {self.frmax}: need 0 <= FRMIN < FRMAX <= 1"
            )
        if self.nref < 1:
            raise BadParameter(f"POSTREF NREF must be positive (got {self.nref})")
        if self.shiftfac <= 0:
            raise BadParameter(f"POSTREF SHIFTFAC must be positive (got {self.shiftfac})")

    def replace(self, **changes: object) -> PostrefParams:
        """Copy with fields replaced."""
        return dataclasses.replace(self, **changes)
