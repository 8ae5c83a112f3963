"""Trip distribution laws: distances, intervening opportunities and the matrix p_ij.

This module follows the semantics of TDLM (Lenormand, Bassolas & Ramasco 2016, *J. Transport
Geography* 51:158-169, reference implementation RTDLM/TDLM and its Python port PyTDLM):

- the diagonal is excluded (p_ii = 0) unless a caller builds its own self pairs;
- the intervening opportunities are TIE-INCLUSIVE::

      s_ij = Σ_{l ≠ i, l ≠ j, d_il ≤ d_ij} m_l

- rows are normalised to the origin mass m_i for every law except ``GravExp``, ``GravPow``
  and ``Rand`` (uniform), exactly as TDLM's ``_proba`` does.

Laws (TDLM names)
-----------------
``NGravExp``  normalised gravity, exponential deterrence: w_ij = m_j exp(-β d_ij)
``NGravPow``  normalised gravity, power deterrence: w_ij = m_j d_ij^(-β)
``GravExp``   gravity (not normalised): w_ij = m_i m_j exp(-β d_ij)
``GravPow``   gravity (not normalised): w_ij = m_i m_j d_ij^(-β)
``Schneider`` intervening opportunities: w_ij = exp(-β s_ij) - exp(-β (s_ij + m_j))
``Rad``       radiation (Simini et al. 2012): w_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij))
``RadExt``    extended radiation (Yang et al. 2014), exponent α = ``param``
``Rand``      uniform: w_ij = 1 / (n² - n)

Everything here is pure numpy: no I/O, no settings.
"""

from __future__ import annotations

import warnings

import numpy as np

from maillage._errors import ModelError

__all__ = [
    "EARTH_RADIUS_KM",
    "LAWS",
    "NEEDS_OPPORTUNITIES",
    "NORMALISED_LAWS",
    "ModelWarning",
    "check_masses",
    "check_points",
    "deterrence",
    "distance_matrix",
    "haversine_km",
    "law_weights",
    "opportunities",
    "project_km",
]

#: Mean Earth radius (km) used for great-circle distances.
EARTH_RADIUS_KM = 6371.0088

LAWS: tuple[str, ...] = (
    "NGravExp",
    "NGravPow",
    "GravExp",
    "GravPow",
    "Schneider",
    "Rad",
    "RadExt",
    "Rand",
)
#: Laws whose rows TDLM normalises to the origin mass m_i.
NORMALISED_LAWS: tuple[str, ...] = ("NGravExp", "NGravPow", "Schneider", "Rad", "RadExt")
#: Laws that need the intervening opportunities s_ij.
NEEDS_OPPORTUNITIES: tuple[str, ...] = ("Schneider", "Rad", "RadExt")


class ModelWarning(UserWarning):
    """A model ran but something deserves attention (non-convergence, zero masses...)."""


# --------------------------------------------------------------------------- validation


def check_masses(mass: np.ndarray, name: str = "mass", *, allow_zero: bool = True) -> np.ndarray:
    """Return ``mass`` as float64 after checking it is finite and non-negative.

    Raises
    ------
    ModelError
        When a value is NaN, infinite or negative (the message names the first positions),
        or when every value is zero.
    """
    m = np.asarray(mass, dtype=float)
    if m.ndim != 1:
        raise ModelError(f"{name}: expected a 1-D array, got shape {m.shape}.")
    bad = ~np.isfinite(m) | (m < 0)
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise ModelError(
            f"{name}: {int(bad.sum())} values are missing, infinite or negative "
            f"(positions {where}). Fill or drop these territories before modelling."
        )
    if m.size and not (m > 0).any():
        raise ModelError(f"{name}: every value is zero; a model needs positive masses.")
    if not allow_zero and (m == 0).any():
        raise ModelError(f"{name}: {int((m == 0).sum())} values are zero.")
    return m


def check_points(x: np.ndarray, y: np.ndarray, name: str = "points") -> tuple[np.ndarray, ...]:
    """Return coordinates as float64 after checking they are finite and of equal length.

    Raises
    ------
    ModelError
        When a territory has no point (NaN coordinate) or the arrays differ in length.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ModelError(f"{name}: x and y must be 1-D arrays of the same length.")
    bad = ~(np.isfinite(xa) & np.isfinite(ya))
    if bad.any():
        where = np.flatnonzero(bad)[:5].tolist()
        raise ModelError(
            f"{name}: {int(bad.sum())} territories have no point (NaN coordinates, "
            f"positions {where}). Give every territory a representative point first."
        )
    return xa, ya


# --------------------------------------------------------------------------- distances


def haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in km (haversine formula, spherical Earth of radius 6371.0088 km).

    d = 2 R asin( sqrt( sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2) ) )
    """
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def project_km(lon, lat, *, lon0: float | None = None, lat0: float | None = None):
    """Project lon/lat to a local equal-area plane in km (Lambert cylindrical at ``lat0``).

    x = R (λ - λ0) cos φ0,  y = R sin(φ) / cos φ0  (areas are exact; distances are accurate
    to a few per mille within ±300 km of the reference latitude). Use it for one region;
    for far-apart islands use :func:`haversine_km` or 3-D unit vectors instead.
    """
    lon_a, lat_a = check_points(lon, lat, "project_km")
    lon0 = float(np.mean(lon_a)) if lon0 is None else lon0
    lat0 = float(np.mean(lat_a)) if lat0 is None else lat0
    c0 = np.cos(np.radians(lat0))
    x = EARTH_RADIUS_KM * np.radians(lon_a - lon0) * c0
    y = EARTH_RADIUS_KM * (np.sin(np.radians(lat_a)) - np.sin(np.radians(lat0))) / c0
    return x, y


def distance_matrix(x, y, *, geographic: bool = False) -> np.ndarray:
    """Dense n×n distance matrix: Euclidean on planar (x, y), or haversine on (lon, lat)."""
    xa, ya = check_points(x, y, "distance_matrix")
    if geographic:
        return haversine_km(xa[:, None], ya[:, None], xa[None, :], ya[None, :])
    return np.hypot(xa[:, None] - xa[None, :], ya[:, None] - ya[None, :])


# --------------------------------------------------------------------------- opportunities


def opportunities(mass, dist) -> np.ndarray:
    """Dense TIE-INCLUSIVE intervening opportunities s_ij (TDLM ``Sij.java`` semantics).

    s_ij = Σ_{l ≠ i, l ≠ j, d_il ≤ d_ij} m_l, and s_ii = 0.

    Computed per origin by sorting the row of distances, a prefix sum of the masses in that
    order, and ``searchsorted(..., side="right")`` so that every l at exactly d_ij is counted.
    Cost O(n² log n), memory O(n²) for the output only.
    """
    m = check_masses(mass, "opportunities: mass")
    d = np.asarray(dist, dtype=float)
    n = m.size
    if d.shape != (n, n):
        raise ModelError(f"opportunities: distance matrix must be {n}×{n}, got {d.shape}.")
    s = np.empty((n, n))
    for i in range(n):
        row = d[i]
        order = np.argsort(row, kind="stable")
        sorted_d = row[order]
        cum = np.cumsum(m[order])
        # the cumulated mass of every l with d_il <= d_ij (ties included)
        last = np.searchsorted(sorted_d, row, side="right") - 1
        s[i] = cum[last] - m[i] - m
        s[i, i] = 0.0
    np.maximum(s, 0.0, out=s)  # rounding of the subtraction, never below zero
    return s


# --------------------------------------------------------------------------- laws


def deterrence(dist, law: str, param: float) -> np.ndarray:
    """Deterrence f(d): ``exp`` → exp(-β d), ``pow`` → d^(-β).

    Raises
    ------
    ModelError
        For the power law when a distance is zero (coincident points): d^(-β) is infinite.
    """
    d = np.asarray(dist, dtype=float)
    if law == "exp":
        return np.exp(-param * d)
    if law == "pow":
        if (d <= 0).any():
            raise ModelError(
                "power deterrence: some distances are zero (coincident or duplicated points); "
                "d^(-β) is infinite. Use exponential deterrence or separate the points."
            )
        return d ** (-param)
    raise ModelError(f"deterrence: unknown law {law!r}; expected 'exp' or 'pow'.")


def _offdiag_pow(d: np.ndarray, param: float) -> np.ndarray:
    off = ~np.eye(d.shape[0], dtype=bool)
    if (d[off] <= 0).any():
        raise ModelError(
            "power deterrence: some off-diagonal distances are zero (coincident points); "
            "d^(-β) is infinite. Use exponential deterrence or separate the points."
        )
    out = np.zeros_like(d)
    out[off] = d[off] ** (-param)
    return out


def _raw_weights(law, mi, mj, d, s, param) -> np.ndarray:
    n = mi.size
    if law == "NGravExp":
        return mj[None, :] * np.exp(-param * d)
    if law == "GravExp":
        return np.outer(mi, mj) * np.exp(-param * d)
    if law == "NGravPow":
        return mj[None, :] * _offdiag_pow(d, param)
    if law == "GravPow":
        return np.outer(mi, mj) * _offdiag_pow(d, param)
    if law == "Schneider":
        return np.exp(-param * s) - np.exp(-param * (s + mj[None, :]))
    if law == "Rand":
        return np.full((n, n), 1.0 / max(n * n - n, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = mi[:, None] + s
        if law == "Rad":
            return np.outer(mi, mj) / (a * (a + mj[None, :]))
        if law == "RadExt":
            b = a + mj[None, :]
            num = (b**param - a**param) * (mi**param + 1)[:, None]
            return num / ((b**param + 1) * (a**param + 1))
    raise ModelError(f"unknown law {law!r}; expected one of {', '.join(LAWS)}.")


def law_weights(
    law: str,
    mass_origin,
    mass_destination,
    dist,
    *,
    param: float = 1.0,
    opportunity=None,
) -> np.ndarray:
    """The TDLM matrix p_ij of a law (dense, diagonal zero).

    Parameters
    ----------
    law : one of :data:`LAWS` (TDLM names).
    mass_origin, mass_destination : m_i and m_j (length n, non-negative).
    dist : n×n distance matrix (km).
    param : β for gravity laws (km⁻¹ or exponent), γ for ``Schneider``, α for ``RadExt``;
        ignored by ``Rad`` and ``Rand``.
    opportunity : optional precomputed s_ij (from :func:`opportunities` with the destination
        masses); computed when a law needs it and it is not given.

    Returns
    -------
    numpy.ndarray
        p_ij with p_ii = 0. For :data:`NORMALISED_LAWS` each row sums to m_i
        (p_ij = m_i w_ij / Σ_k w_ik); rows whose weights are all zero stay zero.
    """
    if law not in LAWS:
        raise ModelError(f"unknown law {law!r}; expected one of {', '.join(LAWS)}.")
    mi = check_masses(mass_origin, "mass_origin")
    mj = check_masses(mass_destination, "mass_destination")
    d = np.asarray(dist, dtype=float)
    n = mi.size
    if mj.size != n or d.shape != (n, n):
        raise ModelError(f"law_weights: masses of length {n} need a {n}×{n} distance matrix.")
    if not np.isfinite(d).all():
        raise ModelError("law_weights: the distance matrix has NaN or infinite values.")
    s = None
    if law in NEEDS_OPPORTUNITIES:
        s = opportunities(mj, d) if opportunity is None else np.asarray(opportunity, float)
    w = _raw_weights(law, mi, mj, d, s, param)
    w[~np.isfinite(w)] = 0.0  # 0/0 of zero masses (TDLM sets NaN to 0 as well)
    np.fill_diagonal(w, 0.0)
    if law in NORMALISED_LAWS:
        rows = w.sum(axis=1)
        ok = rows > 0
        w[ok] = mi[ok, None] * w[ok] / rows[ok, None]
        empty = np.flatnonzero(~ok & (mi > 0))
        if empty.size:
            warnings.warn(
                f"law_weights({law}): {empty.size} origins with positive mass have no "
                f"reachable destination (all weights zero), e.g. positions "
                f"{empty[:5].tolist()}; their rows stay zero.",
                ModelWarning,
                stacklevel=2,
            )
    return w
