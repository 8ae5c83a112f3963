"""Radiation at given pairs: the grid of prefix sums against the float64 brute force.

The brute force is TDLM's definition, s_ij = Σ_{l≠i,j, d_il ≤ d_ij} m_l, on the dense float64
Euclidean distance matrix (``np.hypot``), row by row. Integer masses make every sum exact, so
the comparisons are bit-for-bit.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from maillage._errors import ModelError
from maillage.models import (
    distance_matrix,
    opportunities_at_pairs,
    radiation_at_pairs,
    radiation_dense,
)


def _brute_rows(origins, x, y, m) -> dict[int, np.ndarray]:
    out = {}
    idx = np.arange(m.size)
    for o in np.unique(origins):
        d = np.hypot(x - x[o], y - y[o])
        within = d[None, :] <= d[:, None]  # [j, l]: l counts for j
        within &= idx[None, :] != o
        within &= idx[None, :] != idx[:, None]
        row = within.astype(float) @ m
        row[o] = 0.0
        out[int(o)] = row
    return out


def _brute(i, j, x, y, m) -> np.ndarray:
    rows = _brute_rows(i, x, y, m)
    return np.array([rows[int(a)][b] for a, b in zip(i, j, strict=True)])


def test_float32_would_merge_these_distances_float64_does_not():
    # Lambert-93-like metres: an origin and points at 500 km + 0 / 1 / 2 cm along the axes,
    # exact ties at 500 km (3-4-5 triangles), and three near points (two duplicated).
    x0, y0 = 700_000.0, 6_600_000.0
    dx = np.array([500_000.0, 0.0, -500_000.02, 0.0, 300_000.0, -300_000.0, 1e3, 1e3, -1e3])
    dy = np.array([0.0, 500_000.01, 0.0, -500_000.0, 400_000.0, 400_000.0, 0.0, 0.0, 0.0])
    x, y = np.r_[x0, x0 + dx], np.r_[y0, y0 + dy]
    m = np.arange(1.0, x.size + 1.0) * 7.0
    d2 = (x - x0) ** 2 + (y - y0) ** 2
    # the test is meaningful: float32 squares of distinct float64 distances coincide
    assert np.unique(d2[1:4].astype(np.float32)).size < np.unique(d2[1:4]).size
    n = x.size
    i, j = np.nonzero(np.ones((n, n)))
    got = opportunities_at_pairs(x, y, m, i, j)
    np.testing.assert_array_equal(got, _brute(i, j, x, y, m))
    # from the origin: 1, 4, 5, 6 tie at exactly 500 km; 2 is 1 cm farther, 3 is 2 cm farther
    s0 = dict(zip(j[i == 0].tolist(), got[i == 0].tolist(), strict=True))
    near = m[7] + m[8] + m[9]
    assert s0[1] == near + m[4] + m[5] + m[6]
    assert s0[2] == near + m[1] + m[4] + m[5] + m[6]
    assert s0[3] == near + m[1] + m[2] + m[4] + m[5] + m[6]


@pytest.mark.parametrize("seed", [0, 1])
def test_grid_equals_brute_force_on_1000_clustered_points_with_far_links(seed):
    rng = np.random.default_rng(seed)
    n = 1000
    centres = rng.random((8, 2)) * 900_000
    k = rng.integers(0, 8, n)
    xy = centres[k] + rng.normal(size=(n, 2)) * rng.uniform(2_000, 40_000, 8)[k, None]
    xy[:50] = np.round(xy[:50] / 5000) * 5000  # snapped points: exact ties and duplicates
    xy[-3:] = [[8e6, -2e6], [8e6 + 5, -2e6], [-6e6, 1e6]]  # far islands
    x, y = xy[:, 0], xy[:, 1]
    m = rng.integers(1, 5000, n).astype(float)
    origins = np.r_[rng.choice(n, 40, replace=False), 0, 1, 2, n - 1]
    i = np.repeat(origins, 60)
    j = rng.integers(0, n, i.size)  # near and far destinations, islands included
    np.testing.assert_array_equal(opportunities_at_pairs(x, y, m, i, j), _brute(i, j, x, y, m))


def test_points_on_a_line_and_all_coincident():
    x = np.r_[np.arange(200.0), np.arange(50.0)]
    y = np.zeros(x.size)
    m = np.ones(x.size) * 3.0
    i, j = np.nonzero(np.ones((x.size, x.size)))
    np.testing.assert_array_equal(opportunities_at_pairs(x, y, m, i, j), _brute(i, j, x, y, m))
    z = np.zeros(5)
    s = opportunities_at_pairs(z, z, np.arange(1.0, 6.0), [0, 1, 4], [1, 2, 4])
    np.testing.assert_array_equal(s, [15.0 - 1 - 2, 15.0 - 2 - 3, 0.0])


def test_workers_give_the_same_result():
    rng = np.random.default_rng(5)
    n = 3000
    x, y = rng.random(n) * 1e5, rng.random(n) * 1e5
    m = rng.integers(1, 100, n).astype(float)
    i, j = rng.integers(0, n, 120_000), rng.integers(0, n, 120_000)  # above the parallel floor
    one = opportunities_at_pairs(x, y, m, i, j)
    two = opportunities_at_pairs(x, y, m, i, j, workers=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(
        radiation_at_pairs(x, y, m, i[:500], j[:500], workers=2),
        radiation_at_pairs(x, y, m, i[:500], j[:500]),
    )
    sub = np.isin(i, np.unique(i)[:20])
    np.testing.assert_array_equal(one[sub], _brute(i[sub], j[sub], x, y, m))
    with pytest.raises(ModelError, match="workers"):
        opportunities_at_pairs(x, y, m, i, j, workers=0)


def test_radiation_against_dense_definition():
    rng = np.random.default_rng(9)
    n = 150
    x, y = rng.random(n) * 10, rng.random(n) * 10
    m = rng.integers(1, 50, n).astype(float)
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    s = _brute(i, j, x, y, m)
    want = m[i] * m[j] / ((m[i] + s) * (m[i] + m[j] + s)) / (1 - m[i] / m.sum())
    np.testing.assert_allclose(radiation_at_pairs(x, y, m, i, j), want, rtol=1e-12)
    assert distance_matrix(x, y).shape == (n, n)


def test_global_random_state_untouched_by_workers_and_grid():
    random.seed(3)
    a = random.random()
    random.seed(3)
    opportunities_at_pairs([0.0, 1.0], [0.0, 0.0], [1.0, 2.0], [0], [1])
    assert random.random() == a


def test_dense_equals_brute_force_on_near_ties():
    """Distances one ulp apart and exact ties: the packed-key sort must fall back to an exact
    comparison. The brute force compares squared float64 distances, as both fast paths do (at
    one ulp, hypot and squared distances may order two points differently: the definition
    d_il ≤ d_ij is then taken on squared distances)."""
    rng = np.random.default_rng(11)
    n = 200
    x = rng.integers(0, 12, n).astype(float)
    y = rng.integers(0, 12, n).astype(float)
    nudge = rng.random(n) < 0.33  # a third of the points moved by one ulp
    x[nudge] = np.nextafter(x[nudge], np.inf)
    m = rng.integers(1, 60, n).astype(float)
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    idx = np.arange(n)
    s = np.zeros((n, n))
    for o in range(n):
        within = d2[o][None, :] <= d2[o][:, None]  # [j, l]: l is not farther than j
        within &= (idx[None, :] != o) & (idx[None, :] != idx[:, None])
        s[o] = within.astype(float) @ m
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    sij = s[i, j]
    want = m[i] * m[j] / ((m[i] + sij) * (m[i] + m[j] + sij)) / (1 - m[i] / m.sum())
    np.testing.assert_allclose(radiation_dense(x, y, m)[i, j], want, rtol=1e-12)
    np.testing.assert_allclose(radiation_at_pairs(x, y, m, i, j), want, rtol=1e-12)
