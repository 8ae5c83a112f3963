"""The national embedded-default commuting estimate (flows shown as *modelled*).

When no MOBPRO file has been imported, the observatory still needs plausible home-work flows
between the ≈35,000 communes (DOM included). :func:`estimate_commute` produces them with a
production-constrained, normalised exponential gravity model (Lenormand et al. 2016's best
law at fine scale)::

    O_i   = employment_rate · population_i                     (employed residents)
    w_ij  = population_j · exp(-β d_ij)                         for d_ij ≤ cutoff, and j = i
    T_ij  = O_i · w_ij / Σ_k w_ik

- β defaults to the published scaling β = 0.3028 · S^(-0.1665) km⁻¹ with S the mean commune
  surface (≈ 0.19 km⁻¹ for French communes), see :mod:`maillage.models.calibrate`.
- d_ij is the great-circle distance between the communes' points, computed from 3-D unit
  vectors (chord → arc), so that far-apart islands (DOM) need no projection.
- **Self pair.** Internal flows are essential (most people work in their commune of
  residence in rural France), so the pair (i, i) is included with an intra-commune distance
  d_ii = ½ · sqrt(area_i / π), half the radius of the disc of the same area. This is a
  convention, not an estimate of the mean trip length inside the commune (that would be
  ≈ 0.905 r for two uniform points in a disc of radius r); the shorter distance gives internal
  flows a weight comparable to that of the nearest neighbours, which are typically
  1.5-2 r away.
- **Truncation.** Pairs farther than ``cutoff_km`` are not considered; then flows below
  ``min_flow`` are dropped and each origin's dropped mass is given back to its kept flows in
  proportion (so Σ_j T_ij = O_i exactly). An origin whose flows are all below ``min_flow``
  keeps its internal flow only.

Missing or zero populations give zero outflow and zero attraction, with a warning; a
commune without a point raises :class:`~maillage._errors.ModelError`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial import cKDTree

from maillage._errors import ModelError
from maillage.models.calibrate import beta_from_surface
from maillage.models.laws import EARTH_RADIUS_KM, ModelWarning, check_points

__all__ = ["DEFAULT_SELF_WEIGHT", "estimate_commute", "intra_distance_km"]

#: Self-pair weight of the embedded default (see :func:`estimate_commute`).
DEFAULT_SELF_WEIGHT = 2.0  # 33 % of workers in their own commune nationally (measured)


def intra_distance_km(area_km2) -> np.ndarray:
    """Intra-commune distance d_ii = ½ · sqrt(area / π) (km)."""
    return 0.5 * np.sqrt(np.asarray(area_km2, dtype=float) / np.pi)


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _clean_population(population) -> np.ndarray:
    pop = np.asarray(population, dtype=float)
    if (pop < 0).any():
        raise ModelError(
            f"estimate_commute: {int((pop < 0).sum())} negative populations "
            f"(positions {np.flatnonzero(pop < 0)[:5].tolist()})."
        )
    missing = ~np.isfinite(pop)
    zero = np.isfinite(pop) & (pop == 0)
    if missing.any() or zero.any():
        warnings.warn(
            f"estimate_commute: {int(missing.sum())} communes without population and "
            f"{int(zero.sum())} with zero population (e.g. positions "
            f"{np.flatnonzero(missing | zero)[:5].tolist()}); they get no flow.",
            ModelWarning,
            stacklevel=3,
        )
    return np.where(missing, 0.0, pop)


def _clean_area(area_km2, n: int) -> np.ndarray:
    area = np.asarray(area_km2, dtype=float)
    if area.shape != (n,):
        raise ModelError(f"estimate_commute: area_km2 must have length {n}.")
    bad = ~np.isfinite(area) | (area <= 0)
    if bad.all():
        raise ModelError("estimate_commute: no commune has a positive area.")
    if bad.any():
        fill = float(np.median(area[~bad]))
        warnings.warn(
            f"estimate_commute: {int(bad.sum())} communes have a missing or non-positive "
            f"area (e.g. positions {np.flatnonzero(bad)[:5].tolist()}); the median area "
            f"{fill:.3g} km² is used for their intra-commune distance.",
            ModelWarning,
            stacklevel=3,
        )
        area = np.where(bad, fill, area)
    return area


def _candidate_pairs(lon, lat, cutoff_km: float):
    xyz = _unit_vectors(lon, lat)
    chord = 2.0 * np.sin(min(cutoff_km / (2.0 * EARTH_RADIUS_KM), np.pi / 2))
    pairs = cKDTree(xyz).query_pairs(chord, output_type="ndarray").astype(np.int32)
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    del pairs
    diff = xyz[i] - xyz[j]
    c = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    del diff
    d = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(c / 2.0, 0.0, 1.0))
    return i, j, d


def _redistribute(i, j, flow, origin_totals, min_flow: float, n: int):
    keep = flow >= min_flow
    # an origin with nothing above min_flow keeps its internal flow (always present)
    kept_by_origin = np.bincount(i[keep], minlength=n)
    lost = (kept_by_origin == 0) & (origin_totals > 0)
    if lost.any():
        keep |= (i == j) & lost[i]
    kept_sum = np.bincount(i[keep], weights=flow[keep], minlength=n)
    scale = np.zeros(n)
    np.divide(origin_totals, kept_sum, out=scale, where=kept_sum > 0)
    return keep, flow * scale[i]


def estimate_commute(
    lon,
    lat,
    population,
    area_km2,
    *,
    beta: float | None = None,
    employment_rate: float = 0.41,
    cutoff_km: float = 60.0,
    min_flow: float = 1.0,
    self_weight: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Modelled home-work flows between communes (production-constrained exp. gravity).

    Parameters
    ----------
    lon, lat : commune points (degrees, WGS84); DOM islands may be far apart.
    population : population of each commune (NaN or 0 → no flows, with a warning).
    area_km2 : commune surface, for the intra-commune distance and the default β.
    beta : deterrence (km⁻¹); default 0.3028 · mean(area)^(-0.1665).
    employment_rate : O_i = employment_rate · population_i (0.41 ≈ employed residents per
        inhabitant in France).
    cutoff_km : pairs farther apart are not modelled (exp(-0.19·60) ≈ 1e-5).
    min_flow : flows below it are dropped and their mass given back to the origin's other
        flows.
    self_weight : multiplies the weight of the self pair (i, i). Local jobs that the
        population alone does not explain (farms, shops, schools, town halls) keep more
        residents at home than a pure gravity law predicts; the observatory's default uses
        :data:`DEFAULT_SELF_WEIGHT`, chosen so that about one worker in three works in their
        commune of residence, the national figure of the census.

    Returns
    -------
    (i_idx, j_idx, value)
        Origin and destination positions (int32) and flows (float64) with Σ_j value = O_i
        for every origin of positive population. Sorted by origin then destination.
    """
    lon_a, lat_a = check_points(lon, lat, "estimate_commute")
    n = lon_a.size
    pop = _clean_population(population)
    if pop.shape != (n,):
        raise ModelError(f"estimate_commute: population must have length {n}.")
    area = _clean_area(area_km2, n)
    if self_weight <= 0:
        raise ModelError("estimate_commute: self_weight must be positive.")
    if not (0 < employment_rate <= 1) or cutoff_km <= 0 or min_flow < 0:
        raise ModelError(
            "estimate_commute: need 0 < employment_rate ≤ 1, cutoff_km > 0, min_flow ≥ 0."
        )
    if beta is None:
        beta = beta_from_surface(float(area.mean()))

    i, j, d = _candidate_pairs(lon_a, lat_a, cutoff_km)
    self_idx = np.arange(n, dtype=np.int32)
    i = np.concatenate([i, self_idx])
    j = np.concatenate([j, self_idx])
    d = np.concatenate([d, intra_distance_km(area)])
    w = pop[j] * np.exp(-beta * d)
    w[-n:] *= self_weight  # the self pairs were appended last
    del d
    live = (w > 0) & (pop[i] > 0)
    i, j, w = i[live], j[live], w[live]
    origin_totals = employment_rate * pop
    rows = np.bincount(i, weights=w, minlength=n)
    flow = origin_totals[i] * w / rows[i]
    keep, flow = _redistribute(i, j, flow, origin_totals, min_flow, n)
    i, j, flow = i[keep], j[keep], flow[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], flow[order]
