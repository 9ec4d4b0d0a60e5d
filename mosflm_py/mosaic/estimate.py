"""MOSFLM's MOSAIC ESTIMATE: the mosaic spread at which the measured intensity stops growing.

Method (algorithms.md §4; MOSFLM log "No gained / Total intensity / SD of intensity"): predict
the image for trial mosaic spreads η = 0, Δ, 2Δ, …, η_max; measure every predicted reflection by
summation; for each trial record the number of reflections newly predicted ("No gained"), the
total intensity of all reflections predicted and its standard deviation.  The total rises while
the trial spread is smaller than the true one (reflections that really reach the image are added)
and then stays flat within the noise (only background is added).  The estimate is the start of
that plateau.

Implementation: the reflections are predicted once for η_max (a superset) and each is measured
once (:func:`mosflm_py.mosaic.summation.box_summation`); a reflection belongs to trial η when its
rocking curve for η (uniform-ball model, help/topics/conventions.txt) overlaps the image's φ
range.  The plateau starts at the first trial after which no later trial adds a significant
intensity: T(η') − T(η) < n_sigma · sqrt(V(η') − V(η)) + tolerance · (T(η_max) − T(0)) for every
η' > η (:func:`plateau_index`).  The estimate is then interpolated within its step.

With the spherical rocking-curve model the last reflections added before the true η are only
grazed (recorded fraction P(q) = 3q² − 2q³ for small q), so the plateau is reached slightly
before the true η on weak images; MOSFLM's method has the same tendency and the value is only a
starting value for post-refinement.

References: Rossmann, M. G. (1979). J. Appl. Cryst. 12, 225–238 (partiality model);
Leslie, A. G. W. (2006). Acta Cryst. D62, 48–57 (MOSFLM).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mosflm_py.errors import GeometryError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import predict, rocking_width
from mosflm_py.mosaic.summation import box_summation


@dataclass(frozen=True)
class MosaicParams:
    """Parameters of the mosaic scan.

    Attributes
    ----------
    step : float or None
        Trial step Δ (deg). None: 0.05° for oscillations up to 1°, else 0.10°.
    max_eta : float
        Largest trial spread (deg).
    half, peak_half : (int, int)
        Box and peak half-widths (pixels, slow and fast) for the summation.
    d_min, d_max : float or None
        Resolution limits (Å); d_min None = the detector corner.
    n_sigma : float
        A later gain must exceed this many σ to be significant.
    tolerance : float
        ... or this fraction of the whole rise T(η_max) − T(0) (guards against slowly rising
        backgrounds on strong images).
    """

    step: float | None = None
    max_eta: float = 2.0
    half: tuple[int, int] = (6, 6)
    peak_half: tuple[int, int] = (2, 2)
    d_min: float | None = None
    d_max: float | None = None
    n_sigma: float = 3.0
    tolerance: float = 0.001

    def __post_init__(self) -> None:
        if self.step is not None and not self.step > 0:
            raise GeometryError(f"mosaic trial step must be positive (got {self.step})")
        if not self.max_eta > 0:
            raise GeometryError(f"largest trial mosaic spread must be positive "
                                f"(got {self.max_eta})")


@dataclass(frozen=True)
class MosaicRow:
    """One trial: spread (deg), reflections predicted, newly predicted, total intensity, SD."""

    eta: float
    n_predicted: int
    n_gained: int
    total: float
    sd: float


@dataclass(frozen=True)
class MosaicEstimate:
    """Result of :func:`estimate_mosaic`.

    Attributes
    ----------
    eta : float or None
        Estimated mosaic spread (deg, full width); None when it could not be estimated.
    rows : list of MosaicRow
        The table MOSFLM prints.
    plateau_reached : bool
        False if the total intensity still rises at the largest trial.
    step : float
        Trial step used (deg).
    n_measured : int
        Reflections measured (of the largest prediction set).
    warnings : list of str
        Problems and advice for the user.
    """

    eta: float | None
    rows: list[MosaicRow] = field(default_factory=list)
    plateau_reached: bool = True
    step: float = 0.05
    n_measured: int = 0
    warnings: list[str] = field(default_factory=list)


def plateau_index(total: np.ndarray, var: np.ndarray, n_sigma: float = 3.0,
                  tolerance: float = 0.01, window: int = 4) -> int:
    """Index of the first trial after which the next ``window`` trials gain no significant
    intensity (the start of the plateau).

    Parameters
    ----------
    total, var : ndarray (K,)
        Total intensity and its variance for trials 0..K-1 (non-decreasing variance).
    n_sigma, tolerance : see :class:`MosaicParams`.
    window : number of following trials that must stay flat.  A local criterion is used
        because at large trial spreads the boxes of many predicted reflections start to pick up
        neighbouring spots and the total rises again (seen on small, fine-sliced detectors).

    Returns
    -------
    int
        k such that total[j] - total[k] < n_sigma sqrt(var[j] - var[k]) + tolerance * rise for
        k < j <= k + window (rise = max(total) - total[0]); K - 1 if the curve never levels off.
    """
    t = np.asarray(total, float)
    v = np.asarray(var, float)
    rise = max(float(t.max() - t[0]), 0.0)
    n = len(t)
    for k in range(n):
        later = slice(k + 1, min(n, k + 1 + window))
        if k + 1 >= n:
            break
        gain = t[later] - t[k]
        noise = n_sigma * np.sqrt(np.maximum(v[later] - v[k], 0.0)) + tolerance * rise
        if np.all(gain < noise) and k + window < n:
            return k
    return n - 1


def estimate_mosaic(
    frame: np.ndarray,
    experiment: Experiment,
    phi_start: float,
    phi_end: float,
    params: MosaicParams = MosaicParams(),  # noqa: B008 - frozen dataclass
    gain: float = 1.0,
    nullpix: float | None = None,
) -> MosaicEstimate:
    """Estimate the mosaic spread from one rotation image (MOSFLM's MOSAIC ESTIMATE).

    Parameters
    ----------
    frame : ndarray (n_slow, n_fast)
        The image (ADU, ADC offset removed).
    experiment : Experiment
        Beam, detector, goniometer and the indexed crystal (its mosaic is ignored).
    phi_start, phi_end : float
        Rotation range of the image (deg); must not be empty (stills cannot be used).
    params : MosaicParams
    gain : float
        ADU per photon.
    nullpix : float, optional
        Inactive-pixel level.

    Returns
    -------
    MosaicEstimate
    """
    cr = experiment.crystal
    if cr is None:
        raise GeometryError("MOSAIC ESTIMATE needs a crystal orientation: index first "
                            "(AUTOINDEX) or give MATRIX")
    osc = float(phi_end - phi_start)
    if not osc > 0:
        raise GeometryError("the mosaic spread cannot be estimated from a still image "
                            "(zero oscillation)")
    step = params.step if params.step is not None else (0.05 if osc <= 1.0 + 1e-9 else 0.10)
    n_trials = int(np.floor(params.max_eta / step + 1e-9)) + 1
    etas = np.arange(n_trials) * step
    big = experiment.replace(crystal=cr.replace(mosaic=float(etas[-1])))
    pred = predict(big, phi_start, phi_end, d_min=params.d_min, d_max=params.d_max)
    if len(pred) == 0:
        return MosaicEstimate(None, step=step, warnings=[
            "no reflections are predicted on this image: check the resolution limits, the "
            "detector geometry and the orientation matrix"])
    intensity, var, ok = box_summation(frame, pred.x_px, pred.y_px, params.half,
                                       params.peak_half, gain=gain, nullpix=nullpix)
    beam = experiment.beam
    # smallest trial at which each reflection's rocking curve reaches the image
    dist = np.maximum(np.maximum(phi_start - pred.phi, pred.phi - phi_end), 0.0)
    w_per_eta = rocking_width(1.0 / pred.d, pred.zeta, beam.wavelength, 1.0, 0.0, 0.0)
    w0 = rocking_width(1.0 / pred.d, pred.zeta, beam.wavelength, 0.0,
                       beam.mean_divergence, beam.dispersion)
    # included at eta when (w0 + eta * w1) / 2 >= dist
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_needed = np.where(dist <= 0.5 * w0 + 1e-12, 0.0,
                              (2.0 * dist - w0) / np.where(w_per_eta > 0, w_per_eta, np.inf))
    eta_needed = np.maximum(eta_needed, 0.0)
    rows: list[MosaicRow] = []
    totals, variances = np.zeros(n_trials), np.zeros(n_trials)
    prev = 0
    for k, eta in enumerate(etas):
        inc = (eta_needed <= eta + 1e-9) & ok
        n_pred = int(np.count_nonzero(eta_needed <= eta + 1e-9))
        totals[k] = float(intensity[inc].sum())
        variances[k] = float(var[inc].sum())
        rows.append(MosaicRow(float(eta), n_pred, n_pred - prev, totals[k],
                              float(np.sqrt(variances[k]))))
        prev = n_pred
    warnings: list[str] = []
    n_meas = int(np.count_nonzero(ok))
    k0 = eta_needed <= 1e-9
    t0, s0 = float(intensity[k0 & ok].sum()), float(np.sqrt(var[k0 & ok].sum()))
    if n_meas < 10 or not t0 > 3.0 * s0:
        warnings.append(
            "the reflections predicted with zero mosaic spread have no significant total "
            f"intensity ({t0:.0f} +- {s0:.0f}): the predictions do not fall on the spots. Check "
            "the indexing (a lattice of too high symmetry gives wrong predictions), the beam "
            "position and the distance")
        return MosaicEstimate(None, rows, False, step, n_meas, warnings)
    kp = plateau_index(totals, variances, params.n_sigma, params.tolerance)
    plateau = kp < n_trials - 1 or n_trials == 1
    if not plateau:
        warnings.append(
            f"the total intensity is still rising at the largest trial spread ({etas[-1]:.2f} "
            "deg): the mosaic spread is very large, or the orientation or cell is wrong (e.g. a "
            "lattice of too high symmetry); the value given is a lower limit")
        eta = float(etas[-1])
    elif kp == 0:
        eta = 0.0
    else:
        # interpolate within the last step that still gained: where T reaches T(kp) - noise
        gain_k = totals[kp] - totals[kp - 1]
        frac = 1.0 if gain_k <= 0 else float(np.clip(
            1.0 - params.n_sigma * np.sqrt(max(variances[kp] - variances[kp - 1], 0.0))
            / gain_k, 0.0, 1.0))
        eta = float(etas[kp - 1] + frac * step)
    if plateau and eta < step:
        warnings.append(
            f"no reflections were gained above a spread of {step:.2f} deg: the mosaic spread is "
            "smaller than the trial step (beam divergence and dispersion account for the spot "
            "widths), or the predictions do not match the image")
    return MosaicEstimate(eta, rows, plateau, step, n_meas, warnings)
