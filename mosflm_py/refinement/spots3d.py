"""Three-dimensional spot observations (X, Y, φ centroids) from per-image measurements.

The summation measurements of a reflection on consecutive images (:class:`ImageMeasurements`) are
joined into one observation: the intensity-weighted centroid of the per-image detector centroids
(X, Y, mm) and the intensity-weighted mean of the image mid-φ values (φ, °), as the 3D centroids
of DIALS or XDS; parts below 1σ(I) get no weight, so empty boxes on images far from the spot do
not pull the centroids.  The φ centroid of a reflection cut by the first or last image of a
segment is biased, so it is flagged ``complete = False`` (its X, Y are still good) — judged as in
post-refinement: the first and last parts of the group hold less than 5 % of the total or are
within 2σ of zero.

The spread of the intensities over the images also gives the rocking width of each complete
reflection: for the uniform-ball model (conventions.txt) the φ profile is P'(q)/W with q ~
Beta(2, 2), whose variance is W²/20, so W² = 20·(var_φ − Δφ²/12) (Sheppard's correction for the
image width Δφ).  Inverting W = 2ρ/(|s0||ζ|), ρ = ½ d* (η + δ) + ½ d* tanθ Δλ/λ gives η per
reflection; :func:`mosaic_from_spots` returns the median.

References
----------
Kabsch, W. (2010). Acta Cryst. D66, 125–132 (3D centroids of spots on rotation images).
Rossmann, M. G. (1979). J. Appl. Cryst. 12, 225–238 (partiality model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import RefinementError
from mosflm_py.geometry.experiment import Experiment
from mosflm_py.geometry.prediction import nearest_phi
from mosflm_py.refinement.measure import ImageMeasurements
from mosflm_py.refinement.observations import PartialObservations, group_parts


@dataclass(frozen=True, eq=False)
class SpotObservations:
    """Observed 3D centroids of reflections (struct of arrays, one row per reflection passage).

    hkl (N, 3) int32; x, y : centroid (mm, MOSFLM detector X slow, Y fast); phi : φ centroid (°);
    sigma_x, sigma_y (mm), sigma_phi (°) : centroid σ (counting statistics and the image width);
    complete : the whole rocking curve lies within the images (φ centroid unbiased);
    intensity, sigma : summed intensity and σ; n_images : images the reflection was measured on;
    var_phi : intensity-weighted variance of the image mid-φ values (°², for the mosaic spread);
    osc : image width (°); first_image : image of the first part.
    """

    hkl: np.ndarray
    x: np.ndarray
    y: np.ndarray
    phi: np.ndarray
    sigma_x: np.ndarray
    sigma_y: np.ndarray
    sigma_phi: np.ndarray
    complete: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    n_images: np.ndarray
    var_phi: np.ndarray
    osc: np.ndarray
    first_image: np.ndarray

    def __len__(self) -> int:
        return len(self.hkl)

    def select(self, mask: np.ndarray) -> SpotObservations:
        """Rows selected by ``mask`` (bool or index array)."""
        return SpotObservations(**{k: getattr(self, k)[mask] for k in self.__dataclass_fields__})


def spots_from_measurements(
    measurements: Sequence[ImageMeasurements],
    min_isig: float = 5.0,
) -> SpotObservations:
    """Join the per-image measurements of each reflection into 3D centroids.

    Parameters
    ----------
    measurements : summation measurements of (usually consecutive) images.
    min_isig : only reflections whose summed I/σ(I) exceeds this are returned.

    Returns
    -------
    SpotObservations
    """
    ms = [m for m in measurements if int(m.valid.sum())]
    if not ms:
        return _empty()
    cat = {}
    for name in ("hkl", "intensity", "sigma", "x_obs", "y_obs", "sigma_x", "sigma_y"):
        cat[name] = np.concatenate([getattr(m, name)[m.valid] for m in ms])
    n_of = [int(m.valid.sum()) for m in ms]
    cat["image"] = np.repeat([m.image for m in ms], n_of)
    cat["phi_start"] = np.repeat([m.phi_start for m in ms], n_of)
    cat["phi_end"] = np.repeat([m.phi_end for m in ms], n_of)
    obs = PartialObservations(cat["hkl"], cat["image"], cat["phi_start"], cat["phi_end"],
                              cat["intensity"], cat["sigma"])
    g = group_parts(obs)
    o = g.order
    gid = np.repeat(np.arange(len(g)), g.count)
    inten, var = cat["intensity"][o], cat["sigma"][o] ** 2
    w = np.where(inten > np.sqrt(var), inten, 0.0)  # parts above 1σ: noise adds no weight
    mid = 0.5 * (cat["phi_start"][o] + cat["phi_end"][o])
    osc = (cat["phi_end"] - cat["phi_start"])[o]

    def gsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(gid, weights=v, minlength=len(g))

    tot, totv = gsum(inten), gsum(var)
    sw = np.maximum(gsum(w), 1e-12)
    x = gsum(w * cat["x_obs"][o]) / sw
    y = gsum(w * cat["y_obs"][o]) / sw
    phi = gsum(w * mid) / sw
    sx = np.sqrt(gsum((w * cat["sigma_x"][o]) ** 2)) / sw
    sy = np.sqrt(gsum((w * cat["sigma_y"][o]) ** 2)) / sw
    dphi = mid - phi[gid]
    var_phi = gsum(w * dphi**2) / sw
    osc_g = gsum(osc) / g.count
    # σ(φ): counting statistics of the weights plus the quantisation of φ to image centres
    neff = sw**2 / np.maximum(gsum(w**2), 1e-12)
    sphi = np.sqrt(gsum(dphi**2 * var) / sw**2 + osc_g**2 / 12.0 / np.maximum(neff, 1.0))
    first, last = g.start, g.start + g.count - 1
    edge_tol = np.maximum(0.05 * tot, 2.0 * np.sqrt(np.maximum(var[first], var[last])))
    complete = (g.count >= 2) & (inten[first] < edge_tol) & (inten[last] < edge_tol)
    strong = (tot > 0) & (tot > min_isig * np.sqrt(totv))
    keep = np.nonzero(strong)[0]
    return SpotObservations(
        hkl=cat["hkl"][o[first]][keep].astype(np.int32), x=x[keep], y=y[keep], phi=phi[keep],
        sigma_x=sx[keep], sigma_y=sy[keep], sigma_phi=sphi[keep], complete=complete[keep],
        intensity=tot[keep], sigma=np.sqrt(totv[keep]), n_images=g.count[keep],
        var_phi=var_phi[keep], osc=osc_g[keep], first_image=cat["image"][o[first]][keep],
    )


def _empty() -> SpotObservations:
    z = np.zeros(0)
    return SpotObservations(np.zeros((0, 3), np.int32), z, z, z, z, z, z, np.zeros(0, bool), z, z,
                            np.zeros(0, np.int64), z, z, np.zeros(0, np.int64))


def mosaic_from_spots(experiment: Experiment, spots: SpotObservations,
                      min_isig: float = 20.0) -> tuple[float, float, int]:
    """Mosaic spread η (°, full width) from the φ spread of complete strong reflections.

    Returns (median η, its esd 1.4826·MAD/√n, number of reflections used).  η is clipped at 0.

    Raises
    ------
    RefinementError
        When fewer than 5 complete reflections with I/σ ≥ ``min_isig`` are available.
    """
    cr = experiment.crystal
    if cr is None:
        raise RefinementError("mosaic spread from spot widths needs a crystal orientation")
    use = spots.complete & (spots.intensity >= min_isig * spots.sigma)
    if use.sum() < 5:
        raise RefinementError(
            f"only {int(use.sum())} strong fully recorded reflections: too few to estimate the "
            "mosaic spread from the spot widths"
        )
    s = spots.select(use)
    w2 = np.maximum(20.0 * (s.var_phi - s.osc**2 / 12.0), 0.0)
    width = np.radians(np.sqrt(w2))
    beam = experiment.beam
    phic, _, _ = nearest_phi(experiment, s.hkl, s.phi)
    ok = np.isfinite(phic)
    r0 = s.hkl.astype(float) @ cr.UB.T
    r = np.einsum("nij,nj->ni", experiment.goniometer.rotations(np.nan_to_num(phic)), r0)
    s1 = r + beam.s0[None, :]
    s1n = s1 / np.linalg.norm(s1, axis=1)[:, None]
    zeta = np.abs(np.cross(s1n, np.array([1.0, 0.0, 0.0])[None, :]) @ experiment.goniometer.axis)
    dstar = np.linalg.norm(r0, axis=1)
    sin_t = np.clip(dstar * beam.wavelength / 2.0, 0.0, 0.999999)
    tan_t = sin_t / np.sqrt(1.0 - sin_t**2)
    # W = 2ρλ/|ζ| (ρ = ½ d*(η + δ) + ½ d* tanθ Δλ/λ)  →  η
    eta = width * zeta / (beam.wavelength * dstar) - tan_t * beam.dispersion
    eta = np.degrees(eta) - beam.mean_divergence
    eta = eta[ok & (zeta > 0.05)]
    if len(eta) < 5:
        raise RefinementError("too few reflections away from the rotation axis to estimate the "
                              "mosaic spread from the spot widths")
    med = float(np.median(eta))
    esd = 1.4826 * float(np.median(np.abs(eta - med))) / np.sqrt(len(eta))
    return max(med, 0.0), esd, int(len(eta))
