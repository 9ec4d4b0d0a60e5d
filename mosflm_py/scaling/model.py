"""Scaling model: a scale and a relative B factor varying smoothly with the rotation angle.

Model (Aimless's default "rotation" scales, Evans 2006, Acta Cryst. D62, 72-82, section 2.3;
Evans & Murshudov 2013, Acta Cryst. D69, 1204-1214): the observed intensity of reflection h in
observation l is I_hl = g_l I_h with

    g_l = exp(a(φ_l) + 2 B(φ_l) s_l²),    s² = (sin θ / λ)² = 1 / (4 d²),

where a(φ) and B(φ) are linear interpolations between values at knots spaced ``scale_spacing``
and ``b_spacing`` degrees along the rotation (Aimless: 5° and 20°). Adjacent knot values are
tied by weak restraints (Aimless's ``TIE``) so that sparse knots stay defined. Fitting follows
Hamilton, Rollett & Sparks (1965, Acta Cryst. 18, 129-130): alternately I_h = Σ w g I / Σ w g²
for fixed g, then the knot values by weighted least squares for fixed I_h (a Gauss-Newton step
on the normal equations of the scipy.sparse analytic Jacobian, solved with scipy.linalg). The
scales are put on a common footing by making the mean of a and of B over the observations zero
(so that scaling does not change the overall level or resolution fall-off of the data).

Error model (Aimless's SdFac/SdAdd, Evans 2006, section 2.5): σ'² = SdFac² (σ² + (SdAdd I)²),
fitted so that the normalised deviations of observations from the mean of the others have unit
variance in bins of intensity.

Written here, on scipy's solver: neither gemmi nor scipy provides a scaling model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve
from scipy.optimize import least_squares

__all__ = [
    "ScaleModel",
    "ScalingResult",
    "apply_error_model",
    "fit_error_model",
    "group_index",
    "scale_observations",
]


@dataclass
class ScaleModel:
    """Knot positions (deg) and values of ln(scale) and relative B (Å²)."""

    phi0: float
    scale_spacing: float
    b_spacing: float
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Absorption-surface coefficients c_lm (l = 1..lmax; empty when not refined)."""
    lmax: int = 0

    def _interp(self, phi: np.ndarray, spacing: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n == 1:
            return np.zeros(len(phi), np.int64), np.zeros(len(phi))
        t = np.clip((np.asarray(phi, float) - self.phi0) / spacing, 0.0, n - 1 - 1e-9)
        k = np.floor(t).astype(np.int64)
        return k, t - k

    def log_scale(self, phi: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """ln g at rotation *phi* (deg) and s² (Å⁻²)."""
        ka, fa = self._interp(phi, self.scale_spacing, len(self.a))
        kb, fb = self._interp(phi, self.b_spacing, len(self.b))
        a = self.a[ka] * (1 - fa) + (self.a[np.minimum(ka + 1, len(self.a) - 1)] * fa)
        b = self.b[kb] * (1 - fb) + (self.b[np.minimum(kb + 1, len(self.b) - 1)] * fb)
        return a + 2.0 * b * s2

    def scale(self, phi: np.ndarray, s2: np.ndarray | float = 0.0) -> np.ndarray:
        """g at *phi* (deg) and s² (default 0: the scale without the B term)."""
        phi = np.atleast_1d(np.asarray(phi, float))
        return np.exp(self.log_scale(phi, np.broadcast_to(np.asarray(s2, float), phi.shape)))

    def bfactor(self, phi: np.ndarray) -> np.ndarray:
        """Relative B (Å²) at *phi* (deg)."""
        phi = np.atleast_1d(np.asarray(phi, float))
        kb, fb = self._interp(phi, self.b_spacing, len(self.b))
        return self.b[kb] * (1 - fb) + self.b[np.minimum(kb + 1, len(self.b) - 1)] * fb


@dataclass
class ScalingResult:
    """The fitted model, the scale of every observation and the fit's figures."""

    model: ScaleModel
    g: np.ndarray
    cycles: int
    rms_residual: float
    converged: bool
    sdfac: float = 1.0
    sdadd: float = 0.0
    history: list[float] = field(default_factory=list)
    ln_absorption: np.ndarray | None = None
    """ln A of every observation (None without an absorption surface)."""


def group_index(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense group number 0..n-1 of each key, and n."""
    _, inv = np.unique(keys, return_inverse=True)
    inv = inv.reshape(-1)
    return inv, int(inv.max()) + 1 if len(inv) else 0


def _knots(span: float, spacing: float) -> int:
    return max(1, int(math.ceil(span / spacing - 1e-9)) + 1) if span > 0 else 1


def _design(phi: np.ndarray, phi0: float, spacing: float, n: int) -> sp.csr_matrix:
    """Sparse linear-interpolation matrix (N × n) from knot values to observations."""
    m = len(phi)
    if n == 1:
        return sp.csr_matrix((np.ones(m), (np.arange(m), np.zeros(m, int))), shape=(m, 1))
    t = np.clip((phi - phi0) / spacing, 0.0, n - 1 - 1e-9)
    k = np.floor(t).astype(np.int64)
    f = t - k
    rows = np.r_[np.arange(m), np.arange(m)]
    cols = np.r_[k, k + 1]
    return sp.csr_matrix((np.r_[1 - f, f], (rows, cols)), shape=(m, n))


def _tie(n: int, weight: float) -> sp.csr_matrix:
    """Restraint rows weight × (p[k+1] − p[k])."""
    if n < 2:
        return sp.csr_matrix((0, n))
    r = np.arange(n - 1)
    return sp.csr_matrix(
        (np.r_[-np.ones(n - 1), np.ones(n - 1)] * weight, (np.r_[r, r], np.r_[r, r + 1])),
        shape=(n - 1, n),
    )


def scale_observations(
    intensity: np.ndarray,
    sigma: np.ndarray,
    group: np.ndarray,
    phi: np.ndarray,
    s2: np.ndarray,
    *,
    scale_spacing: float = 5.0,
    b_spacing: float = 20.0,
    refine_b: bool = True,
    tie_a: float = 0.05,
    tie_b: float = 5.0,
    max_cycles: int = 20,
    tol: float = 1e-4,
    use: np.ndarray | None = None,
    absorption: np.ndarray | None = None,
    lmax: int = 0,
    tie_absorption: float = 0.05,
) -> ScalingResult:
    """Fit the smooth scale and B model to observations of symmetry-equivalent reflections.

    Parameters
    ----------
    intensity, sigma
        Observed intensities and uncertainties (N,).
    group
        Unique-reflection number of each observation (0..M-1), e.g. from :func:`group_index`.
    phi
        Rotation angle of each observation (deg).
    s2
        (sin θ/λ)² of each observation (Å⁻²).
    scale_spacing, b_spacing
        Knot spacings along φ (deg) of ln(scale) and B.
    refine_b
        Refine the B factors (else B = 0).
    tie_a, tie_b
        Standard deviations of the restraints between adjacent knots: ln(scale) (no unit) and
        B (Å²) (Aimless ``TIE ROTATION``/``TIE BROTATION``).
    max_cycles, tol
        Outer HRS cycles; stop when the largest knot shift is below *tol*.
    use
        Observations used for the fit (default: all); g is returned for all.
    absorption
        (N, n) derivatives of ln A with respect to the absorption-surface coefficients
        (:func:`mosflm_py.scaling.absorption.absorption_basis`), or None: no surface.
    lmax
        Highest order of that surface (for the record in the model).
    tie_absorption
        Standard deviation of the restraint of every coefficient towards 0 (Aimless
        ``TIE SURFACE``; the harmonics are orthonormal, so this is about the rms of ln A).

    Returns
    -------
    ScalingResult
    """
    intensity = np.asarray(intensity, float)
    sigma = np.asarray(sigma, float)
    phi = np.asarray(phi, float)
    s2 = np.asarray(s2, float)
    n_obs = len(intensity)
    use = np.ones(n_obs, bool) if use is None else np.asarray(use, bool)
    ng = int(group.max()) + 1 if n_obs else 0
    phi0 = float(phi.min()) if n_obs else 0.0
    span = float(phi.max() - phi0) if n_obs else 0.0
    na = _knots(span, scale_spacing)
    nb = _knots(span, b_spacing) if refine_b else 1
    nc = 0 if absorption is None else int(absorption.shape[1])
    model = ScaleModel(
        phi0, scale_spacing, b_spacing, np.zeros(na), np.zeros(nb), np.zeros(nc), lmax
    )
    # only reflections measured at least twice carry scale information
    cnt = np.bincount(group[use], minlength=ng)
    fit = use & (cnt[group] >= 2)
    if fit.sum() < 3 * (na + nb + nc):
        g = np.ones(n_obs)
        return ScalingResult(model, g, 0, float("nan"), False)
    Da = _design(phi[fit], phi0, scale_spacing, na)
    Db0 = _design(phi[fit], phi0, b_spacing, nb)
    Db = Db0.multiply(2.0 * s2[fit][:, None]).tocsr()
    # mean interpolation weight of each knot over the observations (rows sum to 1)
    wa = np.asarray(Da.mean(axis=0)).ravel()
    wb = np.asarray(Db0.mean(axis=0)).ravel()
    I_f, s_f, g_f = intensity[fit], sigma[fit], group[fit]
    blocks = [_tie(na, 1.0 / tie_a), _tie(nb, 1.0 / tie_b) if refine_b else sp.csr_matrix((0, nb))]
    Dc = None
    if nc:
        Dc = np.ascontiguousarray(absorption[fit])  # dense: every row has all coefficients
        blocks.append(sp.identity(nc, format="csr") / tie_absorption)
    restr = sp.block_diag(blocks).tocsr()
    # weights: σ² plus a small fraction of the intensity, so that the strongest reflections
    # do not dominate while the error model is unknown (Aimless's initial SdAdd)
    var = s_f**2 + (0.03 * np.abs(I_f)) ** 2
    w = 1.0 / var
    sq = np.sqrt(w)
    # group indicator (groups × observations) for the group sums of the projection
    S = sp.csr_matrix((np.ones(len(g_f)), (g_f, np.arange(len(g_f)))), shape=(ng, len(g_f)))
    history = []
    converged = False
    cycles = 0
    p = np.r_[model.a, model.b, model.c]
    for cycles in range(1, max_cycles + 1):  # noqa: B007 (the count is returned)
        lg = Da @ p[:na] + (Db @ p[na : na + nb] if refine_b else 0.0)
        if nc:
            lg = lg + Dc @ p[na + nb :]
        g = np.exp(lg)
        ih = np.bincount(g_f, weights=w * g * I_f, minlength=ng) / np.maximum(
            np.bincount(g_f, weights=w * g * g, minlength=ng), 1e-300
        )
        ihl = ih[g_f]

        # Gauss-Newton step on the normal equations with the I_h profiled out (variable
        # projection, Golub & Pereyra 1973): for fixed g the best I_h is the weighted mean
        # above, and the Jacobian of the residuals at that optimum is the plain Jacobian
        # projected, group by group, off the direction u = ∂r/∂I_h. So JᵀJ loses each group's
        # KᵀK/uᵀu term (K = Σ_group u J). Without the projection (plain alternation of I_h
        # and g, Hamilton, Rollett & Sparks) the coupled scales converge very slowly.
        # J is sparse (two knots of each kind per row) and the parameters few, so JᵀJ is a
        # small dense matrix. (scipy's least_squares with its LSMR solver spent ~1 s per
        # cycle on 10⁵ rows in norms.)
        d = -sq * g * ihl
        J = sp.hstack([Da.multiply(d[:, None]), Db.multiply(d[:, None])]).tocsr()
        r = sq * (I_f - g * ihl)
        u = -sq * g
        K = (S @ J.multiply(u[:, None])).tocsr()
        uu = S @ (u * u)
        iuu = 1.0 / np.maximum(uu, 1e-300)
        Kw = sp.diags(iuu) @ K
        A = np.zeros((na + nb + nc, na + nb + nc))
        A[: na + nb, : na + nb] = (J.T @ J).toarray() - (K.T @ Kw).toarray()
        jtr = J.T @ r
        if nc:
            # the surface's columns are dense: numpy products, not sparse ones
            Jc = Dc * d[:, None]
            Kc = S @ (Jc * u[:, None])  # groups × nc
            cross = np.asarray(J.T @ Jc) - np.asarray(Kw.T @ Kc)
            A[: na + nb, na + nb :] = cross
            A[na + nb :, : na + nb] = cross.T
            A[na + nb :, na + nb :] = Jc.T @ Jc - Kc.T @ (Kc * iuu[:, None])
            jtr = np.r_[jtr, Jc.T @ r]
        A += (restr.T @ restr).toarray()
        # the overall level of the scales (and of B) is not defined by the data once I_h is
        # free: fix it by the means over the observations
        A[:na, :na] += np.outer(wa, wa) * (np.trace(A) / len(A) + 1.0)
        if refine_b:
            A[na : na + nb, na : na + nb] += np.outer(wb, wb) * (np.trace(A) / len(A) + 1.0)
        rhs = -jtr - restr.T @ (restr @ p)
        if not refine_b:
            bs = slice(na, na + nb)
            A[bs, :] = 0.0
            A[:, bs] = 0.0
            A[bs, bs] = np.eye(nb)
            rhs[bs] = 0.0
        # Marquardt damping (scaled diagonal) keeps the first steps from overshooting
        A += 1e-6 * np.diag(np.diag(A) + 1e-12)
        step = solve(A, rhs, assume_a="sym")
        p_new = p + step
        rms = float(np.sqrt(np.mean(r**2)))
        # mean ln g over the observations = 0 (the surface's mean goes into the scales)
        p_new[:na] -= wa @ p_new[:na] + (float(np.mean(Dc @ p_new[na + nb :])) if nc else 0.0)
        if refine_b:
            p_new[na : na + nb] -= wb @ p_new[na : na + nb]  # mean B over the observations = 0
        else:
            p_new[na : na + nb] = 0.0
        shift = float(np.max(np.abs(p_new - p))) if len(p) else 0.0
        p = p_new
        history.append(rms)
        if shift < tol:
            converged = True
            break
    model.a, model.b, model.c = p[:na].copy(), p[na : na + nb].copy(), p[na + nb :].copy()
    lg_all = model.log_scale(phi, s2)
    ln_a = absorption @ model.c if nc else None
    if nc:
        lg_all = lg_all + ln_a
    g_all = np.exp(lg_all)
    return ScalingResult(
        model,
        g_all,
        cycles,
        history[-1] if history else float("nan"),
        converged,
        history=history,
        ln_absorption=ln_a,
    )


CHI2_1_MEDIAN = 0.4549364
"""Median of the χ² distribution with one degree of freedom."""


def fit_error_model(
    intensity: np.ndarray, sigma: np.ndarray, group: np.ndarray, nbins: int = 10
) -> tuple[float, float]:
    """SdFac and SdAdd making the normalised deviations unit-variance (Aimless's error model).

    *intensity* and *sigma* are scaled (I/g, σ/g). For an observation l of a reflection with
    n ≥ 2 observations, δ_l = (I_l − Ī_(others)) / sqrt(σ'_l² + σ'²(Ī_others)) with
    σ'² = SdFac² (σ² + (SdAdd I)²); SdFac and SdAdd are fitted (scipy least squares) so that
    var(δ) = 1 in bins of intensity (variance estimated robustly from the median of δ²).
    Returns (1, 0) when there are too few repeats.
    """
    ng = int(group.max()) + 1 if len(group) else 0
    cnt = np.bincount(group, minlength=ng)
    m = cnt[group] >= 2
    if m.sum() < 50:
        return 1.0, 0.0
    I, s, gi = intensity[m], sigma[m], group[m]
    order = np.argsort(I)
    bins = np.array_split(order, nbins)

    def resid(x):
        sdfac, sdadd = abs(x[0]), abs(x[1])
        v = sdfac**2 * (s**2 + (sdadd * np.abs(I)) ** 2)
        w = 1.0 / v
        sw = np.bincount(gi, weights=w, minlength=ng)
        swi = np.bincount(gi, weights=w * I, minlength=ng)
        sw_o = sw[gi] - w
        mean_o = (swi[gi] - w * I) / np.maximum(sw_o, 1e-300)
        d = (I - mean_o) / np.sqrt(v + 1.0 / np.maximum(sw_o, 1e-300))
        # robust variance: median(δ²)/0.4549 (the median of χ² with one degree of freedom),
        # so that the outliers still in the data do not inflate the error model
        return np.array([np.median(d[b] ** 2) / CHI2_1_MEDIAN - 1.0 for b in bins if len(b) > 5])

    sol = least_squares(resid, np.array([1.0, 0.02]), bounds=([0.1, 0.0], [10.0, 0.5]))
    return float(sol.x[0]), float(sol.x[1])


def apply_error_model(
    intensity: np.ndarray, sigma: np.ndarray, sdfac: float, sdadd: float
) -> np.ndarray:
    """σ' = SdFac sqrt(σ² + (SdAdd I)²)."""
    return sdfac * np.sqrt(sigma**2 + (sdadd * intensity) ** 2)
