"""Lorentz and polarisation factors for the rotation method (algorithms.md section 7).

Polarisation convention (agreed with the simulator): a synchrotron beam is partially polarised
with degree tau (POLARISATION SYNCHROTRON tau, default 0.95; tau = 2p - 1 with p the XDS/DIALS
fraction), its electric vector along lab +Z by default: horizontal, i.e. along the usual horizontal
spindle (the plane of polarisation is the lab X-Z plane, normal along lab Y).  With e the
electric-vector direction and e' = s0^ x e::

    P = (1 + tau)/2 * (1 - (e . s1^)^2) + (1 - tau)/2 * (1 - (e' . s1^)^2)

which is Kahn et al. (1982), J. Appl. Cryst. 15, 330-337:
P = 1/2 [1 + cos^2 2theta - tau cos 2rho sin^2 2theta].  PINHOLE is unpolarised (tau = 0);
MONOCHROMATOR 2theta_m (perpendicular geometry) gives
P = (1 + cos^2 2theta_m cos^2 2theta) / (1 + cos^2 2theta_m).

Lorentz factor L = 1/|zeta|, zeta = m . (s1^ x s0^) (m the unit rotation axis).  Output
intensities are I = I_raw / (L P); the MTZ LP column holds the multiplier 1/(L P) that was applied
(Pointless: "I_raw = I / LP").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import IntegrationError


@dataclass(frozen=True)
class Polarisation:
    """POLARISATION: kind 'synchrotron' (degree tau), 'pinhole' or 'monochromator' (2theta_m)."""

    kind: str = "synchrotron"
    degree: float = 0.95
    mono_2theta_deg: float = 0.0
    e_vector: tuple[float, float, float] = (0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        if self.kind not in ("synchrotron", "pinhole", "monochromator"):
            raise IntegrationError(f"unknown POLARISATION type {self.kind!r}")
        if not -1.0 <= self.degree <= 1.0:
            raise IntegrationError(f"POLARISATION degree {self.degree} must lie in [-1, 1]")


def lp_factors(
    s1: np.ndarray,
    s0: np.ndarray,
    axis: np.ndarray,
    polarisation: Polarisation | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lorentz factor, polarisation factor and the LP multiplier 1/(L P) per reflection.

    Parameters
    ----------
    s1 : ndarray (N, 3)
        Diffracted-beam vectors (1/Angstrom, any length; only directions are used).
    s0 : ndarray (3,)
        Incident-beam vector.
    axis : ndarray (3,)
        Rotation axis (sense irrelevant).
    polarisation : Polarisation, optional
        Default: synchrotron, tau = 0.95, electric vector along lab Z (horizontal).

    Returns
    -------
    lorentz, polarisation, lp_multiplier : ndarray (N,)
        ``L = 1/|zeta|`` (inf on the rotation axis), ``P`` and ``1/(L P)``.
    """
    pol = polarisation or Polarisation()
    s1 = np.atleast_2d(np.asarray(s1, np.float64))
    if s1.shape[1] != 3:
        raise IntegrationError("s1 must have shape (N, 3)")
    s0h = np.asarray(s0, np.float64) / np.linalg.norm(s0)
    m = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    s1h = s1 / np.linalg.norm(s1, axis=1)[:, None]
    zeta = np.cross(s1h, s0h) @ m
    with np.errstate(divide="ignore"):
        lorentz = 1.0 / np.abs(zeta)
    cos2t = s1h @ s0h
    if pol.kind == "pinhole":
        p = 0.5 * (1.0 + cos2t**2)
    elif pol.kind == "monochromator":
        c2m = np.cos(np.radians(pol.mono_2theta_deg)) ** 2
        p = (1.0 + c2m * cos2t**2) / (1.0 + c2m)
    else:
        e = np.asarray(pol.e_vector, np.float64)
        e = e - (e @ s0h) * s0h
        e /= np.linalg.norm(e)
        e_perp = np.cross(s0h, e)
        tau = pol.degree
        p = 0.5 * (1 + tau) * (1 - (s1h @ e) ** 2) + 0.5 * (1 - tau) * (1 - (s1h @ e_perp) ** 2)
    return lorentz, p, np.abs(zeta) / p
