"""Weighted non-linear least squares (Levenberg–Marquardt damped Gauss–Newton) with esds.

The residual function returns *weighted* residuals ``(obs − calc)/σ``; derivatives are central
finite differences with a per-parameter step (parameters are few, the residual vector is cheap
and vectorised, so 2p evaluations per iteration cost little).  Esds come from the inverse normal
matrix scaled by the weighted residual, ``cov = (JᵀJ)⁻¹ · Σr²/(n − p)`` (the convention of
MOSFLM and most crystallographic least-squares programs).

References
----------
Marquardt, D. W. (1963). J. Soc. Ind. Appl. Math. 11, 431–441.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mosflm_py.errors import RefinementError


@dataclass(frozen=True, eq=False)
class LsqResult:
    """Outcome of :func:`least_squares`.

    x : refined parameters; esd : their standard deviations; cov : covariance (scaled);
    chi2 : Σ r² at the solution; n_obs, n_par; iterations; residuals : weighted residuals.
    """

    x: np.ndarray
    esd: np.ndarray
    cov: np.ndarray
    chi2: float
    n_obs: int
    n_par: int
    iterations: int
    residuals: np.ndarray

    @property
    def weighted_rms(self) -> float:
        """sqrt(Σr²/(n − p)), the "weighted residual" (≈ 1 for correct σ)."""
        return float(np.sqrt(self.chi2 / max(self.n_obs - self.n_par, 1)))


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
             steps: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian (n_obs, n_par) of ``fun`` at ``x``."""
    cols = []
    for j, h in enumerate(steps):
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        cols.append((fun(xp) - fun(xm)) / (2.0 * h))
    return np.column_stack(cols) if cols else np.zeros((len(fun(x)), 0))


def least_squares(
    fun: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    steps: np.ndarray,
    max_iter: int = 20,
    tol: float = 1e-4,
) -> LsqResult:
    """Minimise Σ fun(x)² by damped Gauss–Newton.

    Parameters
    ----------
    fun : weighted residuals (n_obs,) as a function of the parameters.
    x0 : starting parameters (p,).
    steps : finite-difference steps (p,), also the natural scale of each parameter.
    max_iter : iteration limit.
    tol : stop when every shift is below ``tol``·esd (relative convergence test).

    Raises
    ------
    RefinementError
        When there are fewer observations than parameters or residuals are not finite.
    """
    x = np.asarray(x0, dtype=float).copy()
    steps = np.asarray(steps, dtype=float)
    p = len(x)
    r = fun(x)
    n = len(r)
    if n <= p:
        raise RefinementError(
            f"only {n} observations for {p} parameters: too few reflections to refine"
        )
    if not np.all(np.isfinite(r)):
        raise RefinementError("refinement residuals are not finite (reflections lost?)")
    chi2 = float(r @ r)
    lam = 1e-3
    it = 0
    jac = np.zeros((n, p))
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count reported
        jac = jacobian(fun, x, steps)
        a = jac.T @ jac
        g = jac.T @ r
        d = np.sqrt(np.maximum(np.diag(a), 1e-300))
        an = a / np.outer(d, d)
        improved = False
        for _ in range(12):
            try:
                dx = -np.linalg.solve(an + lam * np.eye(p), g / d) / d
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            rn = fun(x + dx)
            cn = float(rn @ rn) if np.all(np.isfinite(rn)) else np.inf
            if cn <= chi2:
                x, r, old, chi2 = x + dx, rn, chi2, cn
                lam = max(lam / 10.0, 1e-7)
                improved = True
                break
            lam *= 10.0
        if not improved:
            break
        scale = np.sqrt(chi2 / max(n - p, 1))
        esd_now = scale / d
        if np.all(np.abs(dx) <= tol * np.maximum(esd_now, 1e-12)) or old - chi2 < 1e-10 * old:
            break
    jac = jacobian(fun, x, steps)
    a = jac.T @ jac
    # invert the column-scaled normal matrix: parameters in different units (mm, Å, °) give the
    # raw matrix a condition number far beyond rcond, and pinv would then drop the direction of
    # two strongly correlated parameters (distance and cell scale) and report esds near zero
    d = np.sqrt(np.maximum(np.diag(a), 1e-300))
    try:
        inv = np.linalg.pinv(a / np.outer(d, d), rcond=1e-12) / np.outer(d, d)
    except np.linalg.LinAlgError as exc:  # pragma: no cover - pinv rarely fails
        raise RefinementError("normal matrix is singular: parameters are not determined") from exc
    cov = inv * (chi2 / max(n - p, 1))
    esd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return LsqResult(x=x, esd=esd, cov=cov, chi2=chi2, n_obs=n, n_par=p, iterations=it,
                     residuals=r)


def robust_outliers(values: np.ndarray, nsigma: float, floor: float = 0.0) -> np.ndarray:
    """Boolean mask of outliers: |v − median| > nsigma · max(1.4826·MAD, floor)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return np.zeros(0, bool)
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    return np.abs(v - med) > nsigma * max(mad, floor)
