"""Parameter calibration: maximise CPC (grid + golden-section refine), or a published scaling.

Lenormand, Bassolas & Ramasco (2016) calibrate the single parameter of each law by a grid
search on the mean CPC. Here the grid is followed by a golden-section refinement inside the
bracket around the best grid point (deterministic, a few dozen model runs).

Published scaling (TDLM ``calib_param``, from Fig. 8 of the paper), for the normalised
exponential gravity law on commuting data, with S the mean surface of the units in km²::

    β = 0.3028 · S^(-0.1665)  km⁻¹

It gives β ≈ 0.19 km⁻¹ for French communes (S ≈ 15.6 km²) and β ≈ 0.085 km⁻¹ for US counties.
The paper gives similar fits for NGravPow, Schneider and RadExt; their coefficients are not
reproduced here because they could not be checked against the source.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from maillage._errors import ModelError
from maillage.models.constrained import run_model
from maillage.models.fit import cpc
from maillage.models.laws import ModelWarning, law_weights, opportunities

__all__ = ["Calibration", "beta_from_surface", "calibrate_law", "maximise"]

_GOLDEN = (math.sqrt(5) - 1) / 2


def beta_from_surface(mean_area_km2: float) -> float:
    """β of the exponential gravity law from the mean unit surface: 0.3028 · S^(-0.1665)."""
    s = float(mean_area_km2)
    if not math.isfinite(s) or s <= 0:
        raise ModelError(f"beta_from_surface: the mean surface must be positive, got {s!r}.")
    return 0.3028 * s ** (-0.1665)


@dataclass
class Calibration:
    """Best parameter, its objective value, and the grid explored."""

    param: float
    value: float
    grid: np.ndarray = field(repr=False)
    grid_values: np.ndarray = field(repr=False)
    evaluations: int = 0


def _evaluate(objective: Callable[[float], float], x: float) -> float:
    v = float(objective(x))
    if not math.isfinite(v):
        raise ModelError(f"calibration: the objective returned {v!r} at parameter {x!r}.")
    return v


def maximise(
    objective: Callable[[float], float],
    bounds: tuple[float, float],
    *,
    grid: int = 15,
    xtol: float | None = None,
    log: bool = False,
) -> Calibration:
    """Maximise a 1-D objective: grid search, then golden section around the best point.

    Parameters
    ----------
    objective : parameter -> value to maximise (e.g. CPC).
    bounds : (low, high) search interval.
    grid : number of grid points (≥ 3).
    xtol : stop the golden section when the bracket is narrower (default: 1e-3 of the
        grid step).
    log : space the grid logarithmically (for parameters spanning decades).

    A :class:`ModelWarning` is issued when the best point lies on a bound (the optimum may
    be outside the interval).
    """
    lo, hi = map(float, bounds)
    if not (lo < hi) or grid < 3 or (log and lo <= 0):
        raise ModelError(
            f"maximise: need low < high (and low > 0 if log), grid >= 3; got {bounds}."
        )
    xs = np.geomspace(lo, hi, grid) if log else np.linspace(lo, hi, grid)
    vs = np.array([_evaluate(objective, x) for x in xs])
    k = int(np.argmax(vs))
    if k in (0, grid - 1):
        warnings.warn(
            f"calibration: the best value is on the bound {xs[k]:.4g} of {bounds}; widen it.",
            ModelWarning,
            stacklevel=2,
        )
    a, b = xs[max(k - 1, 0)], xs[min(k + 1, grid - 1)]
    tol = xtol if xtol is not None else 1e-3 * (b - a)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = _evaluate(objective, c), _evaluate(objective, d)
    n_eval = grid + 2
    while b - a > tol and n_eval < grid + 200:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = _evaluate(objective, c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = _evaluate(objective, d)
        n_eval += 1
    best_x, best_v = (c, fc) if fc >= fd else (d, fd)
    if vs[k] > best_v:
        best_x, best_v = float(xs[k]), float(vs[k])
    return Calibration(float(best_x), float(best_v), xs, vs, n_eval)


#: Default search intervals per law (parameter units: km⁻¹ for NGravExp with km distances).
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "NGravExp": (0.005, 1.0),
    "GravExp": (0.005, 1.0),
    "NGravPow": (0.1, 8.0),
    "GravPow": (0.1, 8.0),
    "Schneider": (1e-8, 1e-2),
    "RadExt": (0.01, 5.0),
}


def calibrate_law(
    law: str,
    model: str,
    observed,
    mass_origin,
    mass_destination,
    dist,
    *,
    bounds: tuple[float, float] | None = None,
    grid: int = 15,
) -> Calibration:
    """Calibrate a law's parameter by maximising CPC of a dense model (small n).

    The margins O_i and D_j are taken from ``observed`` (n×n). Parameter-free laws (``Rad``,
    ``Rand``) return their CPC with ``param`` = NaN.
    """
    t = np.asarray(observed, dtype=float)
    o, d = t.sum(axis=1), t.sum(axis=0)
    s = opportunities(mass_destination, dist) if law in ("Schneider", "Rad", "RadExt") else None

    def objective(param: float) -> float:
        w = law_weights(law, mass_origin, mass_destination, dist, param=param, opportunity=s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelWarning)
            return cpc(t, run_model(w, model, o, d))

    if law in ("Rad", "Rand"):
        v = objective(1.0)
        return Calibration(float("nan"), v, np.array([]), np.array([]), 1)
    lo_hi = bounds or DEFAULT_BOUNDS.get(law)
    if lo_hi is None:
        raise ModelError(f"calibrate_law: no default bounds for law {law!r}; pass bounds.")
    return maximise(objective, lo_hi, grid=grid, log=law in ("Schneider", "RadExt"))
