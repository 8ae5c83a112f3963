"""Surprising ties: observed flows compared with what distance and size explain.

For every observed pair (A, B) the expected flow T̂_AB comes from a calibrated
doubly-constrained exponential gravity model (same margins as the observation, so the
comparison isolates the effect of distance). Reported per pair (METHODS §5)::

    ratio    I_AB = F_AB / T̂_AB           (> 1: a tie stronger than expected)
    log_ratio      ln I_AB
    pearson        (F_AB - T̂_AB) / sqrt(T̂_AB)

A zero expected value (pair outside the truncated kernel, or zero margins) cannot give a
ratio: the row is flagged ``zero_expected``, its ratio and residual are NaN, and a
:class:`~maillage.models.laws.ModelWarning` says how many rows are concerned.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from maillage._errors import ModelError
from maillage.models.calibrate import beta_from_surface, maximise
from maillage.models.constrained import doubly_constrained, truncated_kernel
from maillage.models.fit import cpc
from maillage.models.laws import ModelWarning, check_points

__all__ = ["surprising_ties", "tie_strength"]

#: The dense kernel exp(-β d) is floored at exp(-50) ≈ 2e-22 (as TDLM floors p_ij at 0.01):
#: far destinations that are observed (weekly commuters) keep a finite weight, and the
#: Furness products a_i w_ij b_j stay clear of underflow (denormals made IPF stall).
_MAX_DECAY = 50.0


def tie_strength(observed, expected) -> pd.DataFrame:
    """Ratio, log-ratio and Pearson residual of observed against expected flows (aligned).

    Returns a DataFrame with columns ``observed, expected, ratio, log_ratio, pearson, flag``
    (``flag`` is ``"ok"`` or ``"zero_expected"``).
    """
    f = np.asarray(observed, dtype=float).ravel()
    e = np.asarray(expected, dtype=float).ravel()
    if f.shape != e.shape:
        raise ModelError("tie_strength: observed and expected must be aligned (same length).")
    if not (np.isfinite(f).all() and np.isfinite(e).all()) or (f < 0).any() or (e < 0).any():
        raise ModelError("tie_strength: values must be finite and non-negative.")
    pos = e > 0
    ratio = np.full(f.shape, np.nan)
    pearson = np.full(f.shape, np.nan)
    ratio[pos] = f[pos] / e[pos]
    pearson[pos] = (f[pos] - e[pos]) / np.sqrt(e[pos])
    with np.errstate(divide="ignore"):
        log_ratio = np.where(pos & (f > 0), np.log(np.where(pos, ratio, 1.0)), np.nan)
    log_ratio[pos & (f == 0)] = -np.inf
    zero = int((~pos).sum())
    if zero:
        warnings.warn(
            f"tie_strength: {zero} pairs have a zero expected flow; they are flagged "
            "'zero_expected' and get no ratio (NaN).",
            ModelWarning,
            stacklevel=2,
        )
    return pd.DataFrame(
        {
            "observed": f,
            "expected": e,
            "ratio": ratio,
            "log_ratio": log_ratio,
            "pearson": pearson,
            "flag": np.where(pos, "ok", "zero_expected"),
        }
    )


def _dcm_at_pairs(x, y, ia, ja, o, d, beta, cutoff, self_distance, tol, maxiter):
    if cutoff is None:  # dense kernel, no truncation, deterrence floored at exp(-50)
        dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        w = np.exp(-np.minimum(beta * dist, _MAX_DECAY))
        if self_distance is None:
            np.fill_diagonal(w, 0.0)
        else:
            np.fill_diagonal(w, np.exp(-beta * np.asarray(self_distance, dtype=float)))
    else:
        w = truncated_kernel(
            x, y, np.ones_like(o), param=beta, cutoff=cutoff, self_distance=self_distance
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        res = doubly_constrained(w, o, d, tol=tol, maxiter=maxiter)
    return res, res.at(ia, ja)


def surprising_ties(
    i,
    j,
    value,
    x,
    y,
    *,
    beta: float | None = None,
    mean_area_km2: float | None = None,
    self_distance=None,
    bounds: tuple[float, float] = (0.01, 1.0),
    cutoff_km: float | None = None,
    tol: float = 1e-3,
    maxiter: int = 1000,
) -> pd.DataFrame:
    """Observed/expected ratios and Pearson residuals against a calibrated DCM.

    Parameters
    ----------
    i, j, value : observed flows as index arrays into the points, and values.
    x, y : planar coordinates in km (see :func:`maillage.models.laws.project_km`).
    beta : deterrence parameter (km⁻¹). When None it is calibrated by maximising CPC over
        ``bounds``, or taken from the published scaling if ``mean_area_km2`` is given.
    self_distance : intra-unit distance per point (km). When None, internal flows (i == j)
        are left out of the model and of the margins; when given, they are modelled.
    cutoff_km : truncate the kernel at this distance (sparse, for large n). Default: no
        truncation (dense) up to 4,000 points, else ln(10¹²)/β. Far pairs beyond a cutoff get
        a zero expected flow and are flagged.
    tol, maxiter : Furness stopping rule (max relative margin error, iterations).

    Returns
    -------
    pandas.DataFrame
        ``origin, destination`` plus the columns of :func:`tie_strength`; ``attrs`` holds
        ``beta``, ``cpc``, ``iterations`` and ``converged``.
    """
    xa, ya = check_points(x, y, "surprising_ties")
    ia, ja = np.asarray(i, np.int64), np.asarray(j, np.int64)
    v = np.asarray(value, float)
    if self_distance is None:
        keep = ia != ja
        ia, ja, v = ia[keep], ja[keep], v[keep]
    n = xa.size
    o = np.bincount(ia, weights=v, minlength=n)
    d = np.bincount(ja, weights=v, minlength=n)
    if o.sum() <= 0:
        raise ModelError("surprising_ties: the observed flows sum to zero.")

    def cutoff_for(b: float) -> float | None:
        if cutoff_km is not None:
            return cutoff_km
        return None if n <= 4000 else -math.log(1e-12) / b

    def run(b: float):
        return _dcm_at_pairs(xa, ya, ia, ja, o, d, b, cutoff_for(b), self_distance, tol, maxiter)

    def objective(b: float) -> float:
        return cpc(v, run(b)[1], modelled_total=o.sum())

    if beta is None and mean_area_km2 is not None:
        beta = beta_from_surface(mean_area_km2)
    if beta is None:
        beta = maximise(objective, bounds, grid=9, log=True).param
    res, e = run(beta)
    out = tie_strength(v, e)
    out.insert(0, "destination", ja)
    out.insert(0, "origin", ia)
    out.attrs.update(
        beta=float(beta),
        cpc=cpc(v, e, modelled_total=o.sum()),
        iterations=res.iterations,
        converged=res.converged,
    )
    return out
