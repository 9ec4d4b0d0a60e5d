"""The rocking width measured from the partials on a few consecutive images.

MOSFLM's MOSAIC ESTIMATE (:mod:`mosflm_py.mosaic.estimate`) reads the mosaic spread off the
plateau of the total intensity on one image.  That single number has to stand for the whole
rocking width, which also has a part that does not grow with resolution (small mosaic blocks,
:mod:`mosflm_py.geometry.rocking_curve`), so on crystals with small domains it
comes out several times the post-refined spread.  Here the same quantities post-refinement uses
are fitted: the share of each reflection's intensity recorded on each of the images
(:func:`mosflm_py.refinement.postrefine` on these images alone, MOSAIC and BLOCKSIZE free with
the crystal rotations and the cell; an orientation a few tenths of a degree or a cell a few
tenths of a per cent off would otherwise be taken for a wider rocking curve).  The estimate
and post-refinement therefore measure one thing: η, the full width of the uniform-ball rocking
curve (MOSFLM's mosaicity) and the block width w_d (≈ 1/block size, 1/Å).

Definition of η, for comparisons: a rocking curve of full width W in the uniform-ball model has
the density 6q(1−q) (q = fraction of W traversed), whose FWHM is 0.71·W and whose rms is
W/√20 = 0.22·W.  A Gaussian rocking curve with DIALS/XDS σ_m has the same FWHM when
η ≈ 3.3·σ_m.  nanoBragg's ``-mosaic`` value m is the largest rotation of a domain (spherical
cap, rms rotation 0.497·m about any axis), so the uniform-ball width with the same rms is
η = 0.497·√20·m ≈ 2.2·m.  The domains are nearly a shell (angle m·(1 − r²)^(1/3)), whose spread
projected on an axis is flatter than the ball's, so the fitted ball comes out narrower than that
rms equivalent (the development sets give 1.6–2.1·m: hex 0.64, c2221 0.18, P21 1.43, P1 0.58).
"""

from __future__ import annotations

from dataclasses import dataclass

from mosflm_py.geometry.experiment import Experiment
from mosflm_py.refinement.observations import PartialObservations
from mosflm_py.refinement.params import PostrefParams
from mosflm_py.refinement.postref import postrefine


@dataclass(frozen=True)
class RockingWidth:
    """Mosaic spread η (°, full width) and block width (1/Å) with esds, from ``n_used`` parts of
    ``n_reflections`` reflections; ``rms_fraction`` = rms(observed − calculated share)."""

    mosaic: float
    mosaic_esd: float
    domain_width: float
    domain_width_esd: float
    n_used: int
    n_reflections: int
    rms_fraction: float


def rocking_width_from_partials(
    experiment: Experiment,
    observations: PartialObservations,
    params: PostrefParams | None = None,
) -> RockingWidth:
    """Fit η and the block width (with the crystal rotations and cell) to the observed shares.

    Parameters
    ----------
    experiment : model with the crystal (its mosaic and domain width are the start values).
    observations : summation measurements of the parts on consecutive images.
    params : POSTREF parameters (SDFAC, NREF, rejection); only the beam divergence is fixed.

    Raises
    ------
    RefinementError
        Too few reflections on more than one image.
    """
    base = params or PostrefParams()
    fix = frozenset({"DIVERGENCE"})
    p = PostrefParams(fix=fix, nref=base.nref, sdfac=base.sdfac, maxresidual=1e9,
                      maxshift=base.maxshift, shiftfac=base.shiftfac, mossmooth=base.mossmooth,
                      mosadd=base.mosadd, frmin=base.frmin, frmax=base.frmax, multi=True,
                      max_cycles=base.max_cycles, reject_sigma=base.reject_sigma)
    res = postrefine(experiment, observations, p)
    return RockingWidth(res.values["MOSAIC"], res.esds["MOSAIC"], res.values["BLOCKSIZE"],
                        res.esds["BLOCKSIZE"], res.n_used, res.n_reflections, res.rms_fraction)


__all__ = ["RockingWidth", "rocking_width_from_partials"]
