"""The national embedded-default commuting estimate (maillage.models.default)."""

from __future__ import annotations

import numpy as np
import pytest

from maillage._errors import ModelError
from maillage.models import ModelWarning, estimate_commute, haversine_km, intra_distance_km


def _toy(n=200, seed=0):
    rng = np.random.default_rng(seed)
    lon = 2.0 + rng.random(n) * 1.5
    lat = 47.0 + rng.random(n)
    pop = rng.lognormal(6, 1.2, n)
    area = rng.uniform(5, 40, n)
    return lon, lat, pop, area


def test_every_origin_keeps_its_workers_and_flows_are_clean():
    lon, lat, pop, area = _toy()
    i, j, v = estimate_commute(lon, lat, pop, area, min_flow=2.0, cutoff_km=40.0)
    assert np.isfinite(v).all() and (v > 0).all()
    np.testing.assert_allclose(np.bincount(i, weights=v, minlength=pop.size), 0.41 * pop)
    i0, j0, _ = estimate_commute(lon, lat, pop, area, min_flow=0.0, cutoff_km=40.0)
    assert (i0 == j0).sum() == pop.size  # every commune has an internal flow before pruning
    assert i.size < i0.size
    assert haversine_km(lon[i], lat[i], lon[j], lat[j]).max() <= 40.0 + 1e-9
    # sorted by origin, destination; no duplicate pair
    key = i.astype(np.int64) * pop.size + j
    assert (np.diff(key) > 0).all()


def test_matches_a_direct_computation_without_truncation():
    lon, lat, pop, area = _toy(n=60, seed=2)
    beta = 0.2
    i, j, v = estimate_commute(lon, lat, pop, area, beta=beta, cutoff_km=1e4, min_flow=0.0)
    d = haversine_km(lon[:, None], lat[:, None], lon[None, :], lat[None, :])
    np.fill_diagonal(d, intra_distance_km(area))
    w = pop[None, :] * np.exp(-beta * d)
    t = 0.41 * pop[:, None] * w / w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(v, t[i, j], rtol=1e-9)
    assert i.size == 60 * 60


def test_min_flow_redistribution_is_proportional():
    lon, lat, pop, area = _toy(n=80, seed=3)
    full = estimate_commute(lon, lat, pop, area, beta=0.2, cutoff_km=1e4, min_flow=0.0)
    cut = estimate_commute(lon, lat, pop, area, beta=0.2, cutoff_km=1e4, min_flow=5.0)
    t_full = np.zeros((80, 80))
    t_full[full[0], full[1]] = full[2]
    i, j, v = cut
    # kept flows of one origin are the full ones scaled by one factor per origin
    ratio = v / t_full[i, j]
    for o in np.unique(i):
        r = ratio[i == o]
        np.testing.assert_allclose(r, r[0])
        assert r[0] >= 1.0


def test_missing_population_area_and_points():
    lon, lat, pop, area = _toy(n=50)
    pop[3], pop[7] = np.nan, 0.0
    area[5] = np.nan
    with pytest.warns(ModelWarning) as rec:
        i, j, v = estimate_commute(lon, lat, pop, area)
    text = " ".join(str(r.message) for r in rec)
    assert "without population" in text and "median area" in text
    assert np.isfinite(v).all()
    assert not np.isin([3, 7], i).any() and not np.isin([3, 7], j).any()
    lon[4] = np.nan
    with pytest.raises(ModelError, match="no point"):
        estimate_commute(lon, lat, np.ones(50), np.ones(50))
    with pytest.raises(ModelError, match="negative"):
        estimate_commute(lon[:3] * 0, lat[:3], [-1.0, 1, 1], [1.0, 1, 1])


def test_islands_far_apart_and_coincident_points():
    # mainland + two DOM-like islands 7,000 km away, and two communes at the same point
    lon = np.array([2.0, 2.01, 2.01, 55.5, 55.6, -61.0])
    lat = np.array([47.0, 47.0, 47.0, -21.1, -21.2, 14.6])
    pop = np.array([1000.0, 500, 500, 800, 200, 300])
    i, j, v = estimate_commute(lon, lat, pop, np.full(6, 10.0), min_flow=0.0)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    assert (1, 2) in pairs and (2, 1) in pairs  # coincident points, d = 0, no NaN
    assert (0, 3) not in pairs  # beyond the cutoff
    assert (5, 5) in pairs and sum(1 for a, _ in pairs if a == 5) == 1  # isolated island
    np.testing.assert_allclose(np.bincount(i, weights=v), 0.41 * pop)


@pytest.mark.slow
def test_national_reference_runs():
    reference = pytest.importorskip("maillage.reference")
    try:
        com = reference.communes()
    except FileNotFoundError:
        pytest.skip("embedded reference not built")
    pop = com["population"].astype("float64").to_numpy()
    i, j, v = estimate_commute(
        com["lon"].to_numpy(), com["lat"].to_numpy(), pop, com["area_km2"].to_numpy()
    )
    assert i.size < 5_000_000
    np.testing.assert_allclose(np.bincount(i, weights=v, minlength=pop.size), 0.41 * pop)
    internal = v[i == j].sum() / v.sum()
    assert 0.1 < internal < 0.9


def test_self_weight_raises_internal_share_and_keeps_margins():
    rng = np.random.default_rng(3)
    lon = rng.uniform(-1, 1, 300)
    lat = rng.uniform(45, 46, 300)
    pop = rng.lognormal(7, 1, 300)
    area = rng.uniform(5, 30, 300)
    shares = []
    for k in (1.0, 2.0):
        i, j, v = estimate_commute(lon, lat, pop, area, self_weight=k)
        out = np.bincount(i, weights=v, minlength=300)
        assert np.allclose(out, 0.41 * pop)
        shares.append(v[i == j].sum() / v.sum())
    assert shares[1] > shares[0]
