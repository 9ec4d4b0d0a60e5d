"""Ground truth of a simulated sweep: reflection observations, partialities, files.

Intensity definition (the project's decision): for a reflection whose whole rocking width lies
inside the sweep, the expected photons above background summed over all images are
``I_true * P * L``, with ``P`` the polarisation factor (Kahn et al. 1982,
``P = 1/2 [1 + cos^2 2theta - tau cos 2rho sin^2 2theta]``, ``rho`` the azimuth of the diffracted
ray from the electric vector) and ``L = 1/|zeta|``, ``zeta = m . (s1^ x s0^)`` the rotation Lorentz
factor, both at the reflecting position.  An integrator that divides by ``P L`` recovers
``I_true`` (MOSFLM's I is Lorentz-polarisation corrected).  Per-image expected counts are
``I_true P L fraction``; ``fraction`` is what the simulator actually swept on each image, so the
fractions of a fully recorded reflection sum to 1 within the sub-step integration error
(< 0.5 %, tested).

The reflecting angles here come from the closed-form solution of ``|s0 + r(phi)| = |s0|``; the
images themselves are made by sub-stepping phi (:mod:`mosflm_py.kernels.simulate`), so comparing
the two is a real check.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from mosflm_py.simulate.detector import DetectorFrame, detector_frame
from mosflm_py.simulate.params import SimulationParams
from mosflm_py.simulate.render import CrystalModel, e_vector

SMALL_ZETA = 0.05
"""Observations with |zeta| below this are flagged ``small_zeta`` (Lorentz factor > 20)."""


@dataclass(frozen=True)
class Observations:
    """One row per reflection crossing of the Ewald sphere near the sweep.

    Attributes (all arrays of length ``n``)
    -------------------------------------
    refl : index into the crystal model.  hkl : (n, 3) int32.  intensity : I_true.
    phi : reflecting angle (deg, continuous: may lie outside [0, 360)).
    x_mm, y_mm : detector X (slow), Y (fast) in mm; slow_px, fast_px : pixels (continuous).
    zeta, lorentz (1/|zeta|), polarisation, width (full rocking width W, deg), dstar (1/A).
    entering : True if the reflection enters the Ewald sphere at ``phi`` (moving outwards).
    fully_recorded : whole width inside the sweep.  small_zeta : |zeta| < 0.05.
    on_detector : centre position inside the pixel array.
    image : number of the image containing ``phi`` (0 if outside the sweep).
    """

    refl: np.ndarray
    hkl: np.ndarray
    intensity: np.ndarray
    phi: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    slow_px: np.ndarray
    fast_px: np.ndarray
    zeta: np.ndarray
    lorentz: np.ndarray
    polarisation: np.ndarray
    width: np.ndarray
    dstar: np.ndarray
    entering: np.ndarray
    fully_recorded: np.ndarray
    small_zeta: np.ndarray
    on_detector: np.ndarray
    image: np.ndarray

    def __len__(self) -> int:
        return int(self.refl.size)


def polarisation_factor(s1: np.ndarray, e_vec: np.ndarray, tau: float) -> np.ndarray:
    """Kahn et al. (1982) polarisation factor for unit diffracted directions ``s1`` (N, 3)."""
    cos2t = s1[:, 0]
    sin2 = np.clip(1.0 - cos2t**2, 0.0, None)
    perp = np.hypot(s1[:, 1], s1[:, 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        cr = np.where(perp > 0, (s1[:, 1] * e_vec[1] + s1[:, 2] * e_vec[2]) / perp, 0.0)
    cos2rho = np.where(perp > 0, 2.0 * cr**2 - 1.0, 0.0)
    return 0.5 * (1.0 + cos2t**2 - tau * cos2rho * sin2)


def reflecting_angles(r0: np.ndarray, wavelength: float, reverse: bool) -> np.ndarray:
    """Both spindle angles (deg, (N, 2), NaN in the blind region) where ``r`` meets the sphere.

    ``|s0 + Rz(psi) r0|^2 = |s0|^2``  <=>  ``r_x(psi) = -|r|^2 lambda / 2``, with
    ``r_x(psi) = R cos(psi + alpha)``, ``R = hypot(r0x, r0y)``, ``alpha = atan2(r0y, r0x)``;
    ``phi = psi`` (``-psi`` with REVERSEPHI).
    """
    rr = np.hypot(r0[:, 0], r0[:, 1])
    c = -0.5 * wavelength * np.sum(r0 * r0, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = c / rr
    alpha = np.arctan2(r0[:, 1], r0[:, 0])
    ok = np.abs(ratio) <= 1.0
    ac = np.arccos(np.clip(ratio, -1.0, 1.0))
    psi = np.stack([-alpha + ac, -alpha - ac], axis=1)
    psi[~ok] = np.nan
    phi = -psi if reverse else psi
    return np.degrees(phi)


def observations(model: CrystalModel, p: SimulationParams,
                 det: DetectorFrame | None = None) -> Observations:
    """All crossings with reflecting angle within a rocking width (+1 image) of the sweep."""
    det = detector_frame(p) if det is None else det
    s0 = 1.0 / p.wavelength
    sign = -1.0 if p.reverse_phi else 1.0
    start = p.phi_start
    end = p.phi_start + p.n_images * p.osc_width
    ang = reflecting_angles(model.r0, p.wavelength, p.reverse_phi)  # (N, 2)
    ok = np.isfinite(ang)
    refl = np.nonzero(ok)[0]  # row-major: reflection, then solution
    phi = ang[ok]
    # properties at the reflecting position (the same for every copy phi + 360 k)
    pr = np.radians(sign * phi)
    c, s = np.cos(pr), np.sin(pr)
    r0 = model.r0[refl]
    r = np.stack([c * r0[:, 0] - s * r0[:, 1], s * r0[:, 0] + c * r0[:, 1], r0[:, 2]], axis=1)
    s1 = r + np.array([s0, 0.0, 0.0])
    s1 /= np.linalg.norm(s1, axis=1)[:, None]
    zeta = -sign * s1[:, 1]
    with np.errstate(divide="ignore"):
        width = np.degrees(2.0 * model.rho[refl] / (s0 * np.abs(zeta)))
    # copies within a rocking width (+1 image) of the sweep
    margin = np.minimum(0.5 * width + p.osc_width, 720.0)
    base = start + np.mod(phi - start, 360.0)  # first copy >= start
    rows, phis = [], []
    for k in range(-int(np.ceil(np.nanmax(margin, initial=0.0) / 360.0)) - 1,
                   int(np.ceil((end - start) / 360.0)) + 1):
        ph = base + 360.0 * k
        sel = np.nonzero((ph + margin > start) & (ph - margin < end))[0]
        rows.append(sel)
        phis.append(ph[sel])
    rows = np.concatenate(rows)
    phi = np.concatenate(phis)
    refl, s1, zeta, width, r = (x[rows] for x in (refl, s1, zeta, width, r))
    order = np.lexsort((phi, refl))
    refl, phi, s1, zeta, width, r = (x[order] for x in (refl, phi, s1, zeta, width, r))
    # entering: d|s0 + r|/dphi > 0 ; dr/dphi = m x r with m = sign * z
    drdphi = sign * np.stack([-r[:, 1], r[:, 0], np.zeros(len(r))], axis=1)
    entering = np.sum(s1 * drdphi, axis=1) > 0
    x_mm, y_mm = det.project(s1)
    slow_px = x_mm / det.pixel[0]
    fast_px = y_mm / det.pixel[1]
    on_det = (slow_px >= 0) & (slow_px < p.nslow) & (fast_px >= 0) & (fast_px < p.nfast)
    inside = (phi - 0.5 * width >= start) & (phi + 0.5 * width <= end)
    image = np.where((phi >= start) & (phi < end),
                     p.first_image + np.floor((phi - start) / p.osc_width).astype(int), 0)
    with np.errstate(divide="ignore"):
        lorentz = 1.0 / np.abs(zeta)
    return Observations(
        refl=refl.astype(np.int64),
        hkl=model.hkl[refl],
        intensity=model.intensity[refl],
        phi=phi,
        x_mm=x_mm,
        y_mm=y_mm,
        slow_px=slow_px,
        fast_px=fast_px,
        zeta=zeta,
        lorentz=lorentz,
        polarisation=polarisation_factor(s1, e_vector(p), p.polarisation),
        width=width,
        dstar=model.dstar[refl],
        entering=entering,
        fully_recorded=inside,
        small_zeta=np.abs(zeta) < SMALL_ZETA,
        on_detector=on_det,
        image=image.astype(np.int64),
    )


def assign_partials(
    obs: Observations,
    refl: np.ndarray,
    img: np.ndarray,
    g: np.ndarray,
    counts: np.ndarray,
    p: SimulationParams,
) -> dict[str, np.ndarray]:
    """Attribute per-(reflection, image) sums to the observation nearest in phi.

    ``refl``, ``img`` (0-based image index), ``g`` (sum of Lorentz-weighted fractions) and
    ``counts`` (expected photons) are one row per (reflection, image).  Returns the sparse partial
    table ``obs`` (row into ``obs``), ``image`` (image number), ``fraction`` (= g |zeta|) and
    ``counts``.  Rows whose reflection has no observation are dropped.
    """
    first = np.searchsorted(obs.refl, refl, side="left")
    last = np.searchsorted(obs.refl, refl, side="right")
    phi_mid = p.phi_start + (img + 0.5) * p.osc_width
    best = np.full(refl.size, -1, dtype=np.int64)
    best_d = np.full(refl.size, np.inf)
    max_n = int(np.max(last - first)) if refl.size else 0
    for m in range(max_n):
        cand = first + m
        ok = cand < last
        candc = np.where(ok, cand, 0)
        d = np.where(ok, np.abs(obs.phi[candc] - phi_mid) if obs.phi.size else np.inf, np.inf)
        better = d < best_d
        best = np.where(better, candc, best)
        best_d = np.where(better, d, best_d)
    keep = best >= 0
    best = best[keep]
    return {
        "obs": best,
        "image": (img[keep] + p.first_image).astype(np.int64),
        "fraction": g[keep] * np.abs(obs.zeta[best]),
        "counts": counts[keep],
    }


def params_summary(p: SimulationParams, model: CrystalModel) -> dict[str, np.ndarray]:
    """Scalar geometry/crystal fields stored in ``truth.npz`` (``p_`` prefix)."""
    out = {}
    for f in fields(p):
        v = getattr(p, f.name)
        if f.name == "intensities":
            continue
        if v is None:
            v = np.nan
        out[f"p_{f.name}"] = np.asarray(v)
    out.update({"U": model.U, "B": model.B, "A": model.A, "M": model.M,
                "e_vector_unit": e_vector(p)})
    if p.U is None:
        out["p_U"] = model.U
    return out


def save_truth(path: Path, p: SimulationParams, model: CrystalModel, obs: Observations,
               partials: dict[str, np.ndarray]) -> None:
    """Write ``truth.npz`` (observations as ``obs_*``, partials as ``part_*``, all reflections)."""
    data = {f"obs_{f.name}": getattr(obs, f.name) for f in fields(obs)}
    data.update({f"part_{k}": v for k, v in partials.items()})
    data.update({"all_hkl": model.hkl, "all_intensity": model.intensity,
                 "all_dstar": model.dstar, "all_rho": model.rho})
    data.update(params_summary(p, model))
    np.savez_compressed(path, **data)


def load_truth(path) -> dict[str, np.ndarray]:
    """Load a ``truth.npz`` into a plain dict of arrays."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def mosflm_matrix_text(p: SimulationParams, model: CrystalModel) -> str:
    """MOSFLM matrix file: A rows (3F12.8), missets (3F12.3), U rows (3F12.8), cell (6F12.4),
    missets (3F12.3)."""
    lines = ["".join(f"{v:12.8f}" for v in row) for row in model.A]
    lines.append("".join(f"{v:12.3f}" for v in p.missets))
    lines += ["".join(f"{v:12.8f}" for v in row) for row in model.U]
    lines.append("".join(f"{v:12.4f}" for v in p.cell))
    lines.append("".join(f"{v:12.3f}" for v in p.missets))
    return "\n".join(lines) + "\n"


def summary_text(p: SimulationParams, model: CrystalModel, obs: Observations,
                 partials: dict[str, np.ndarray], template: str) -> str:
    """Human-readable ``truth.txt``."""
    det = detector_frame(p)
    full = obs.fully_recorded & obs.on_detector
    fr_sum = np.bincount(partials["obs"], weights=partials["fraction"], minlength=len(obs))
    lines = [
        "mosflm-py simulated rotation sweep: ground truth",
        f"template            {template}",
        f"images              {p.first_image}..{p.first_image + p.n_images - 1}"
        f"  phi {p.phi_start:.3f} + n*{p.osc_width:.3f} deg"
        f"{'  (REVERSEPHI)' if p.reverse_phi else ''}",
        f"wavelength          {p.wavelength:.5f} A",
        f"distance            {p.distance:.3f} mm",
        f"beam (X slow, Y fast) {p.beam_x:.3f} {p.beam_y:.3f} mm"
        f"  = ({p.beam_x / det.pixel[0]:.3f}, {p.beam_y / det.pixel[1]:.3f}) px",
        f"pixel               {det.pixel[0]:.5f} x {det.pixel[1]:.5f} mm,"
        f" {p.nslow} slow x {p.nfast} fast",
        f"two-theta, omega    {p.two_theta:.3f} {p.detector_omega:.3f} deg",
        f"cell                {' '.join(f'{v:.4f}' for v in p.cell)}",
        f"space group         {p.space_group}",
        f"missets PHIX PHIY PHIZ {' '.join(f'{v:.3f}' for v in p.missets)} deg",
        "U                   " + "  ".join(" ".join(f"{v:10.7f}" for v in r) for r in model.U),
        "A = lambda U B      " + "  ".join(" ".join(f"{v:10.7f}" for v in r) for r in model.A),
        f"mosaic (full width) {p.mosaic:.4f} deg;"
        f" divergence h/v {p.divergence_h:.4f} {p.divergence_v:.4f} deg;"
        f" dispersion {p.dispersion:g}",
        (f"crystal model       nanoBragg-like domains: {p.mosaic_domains} domains within a"
         f" {p.mosaic:g} deg spherical cap, Gaussian domains of"
         f" {' x '.join(str(n) for n in p.domain_size)} cells, {p.phi_steps} phi steps per"
         f" image, oversample {p.oversample}, read noise {p.read_noise:g} ADU"
         if p.model == "domains" else "crystal model       uniform mosaic ball"),
        f"polarisation        tau {p.polarisation:.3f}, E vector"
        f" ({' '.join(f'{v:.4f}' for v in e_vector(p))})",
        f"point spread sigma  {p.psf_sigma:.3f} px"
        + (f" (fast {p.psf_sigma_fast:.3f})" if p.psf_sigma_fast is not None else ""),
        f"background          {p.background:g} + radial {p.background_radial:g}"
        f" + water ring {p.water_ring:g} photons/px; gain {p.gain:g} ADU/photon,"
        f" offset {p.adc_offset:g}, overload {p.overload:g}, Poisson {p.poisson}",
        f"reflections         {model.hkl.shape[0]} generated,"
        f" {len(obs)} observations, {int(full.sum())} fully recorded on the detector",
        "fraction sums (fully recorded, |zeta|>0.05): "
        + (f"mean {np.mean(fr_sum[full & ~obs.small_zeta]):.5f}"
           if np.any(full & ~obs.small_zeta) else "n/a"),
        "",
        "I_true is the LP-corrected full intensity: the expected photons above background summed",
        "over all images = I_true * P * L, P = Kahn polarisation, L = 1/|zeta|.",
        "truth.npz: obs_* per observation, part_* sparse per-image fractions/counts,",
        "all_* per generated hkl, p_* simulation parameters.",
    ]
    return "\n".join(lines) + "\n"
