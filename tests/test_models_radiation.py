"""Radiation at given pairs and for all pairs, against the float64 brute force.

The brute force is TDLM's definition, s_ij = Σ_{l≠i,j, d_il ≤ d_ij} m_l, on the dense float64
Euclidean distance matrix (``np.hypot``), row by row, or on float64 squared distances where
the test is about ties one ulp apart. Integer masses make every sum exact, so the comparisons
of s_ij are bit-for-bit. The all-pairs outputs (dense float64/float32, row blocks, sparse
top-k / threshold) are checked against the brute-force p_ij and against each other.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maillage._errors import ModelError
from maillage.models import (
    distance_matrix,
    opportunities_at_pairs,
    radiation_at_pairs,
    radiation_dense,
)
from maillage.models.radiation import radiation_row_blocks, radiation_sparse


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


def _brute_dense(x, y, m, *, finite_size: bool = True) -> np.ndarray:
    """p_ij from the brute-force s_ij on float64 squared distances (the fast paths' test)."""
    n = m.size
    idx = np.arange(n)
    p = np.zeros((n, n))
    total = m.sum()
    for o in range(n):
        with np.errstate(over="ignore"):  # the overflow case: inf, as in the kernels
            d2 = (x - x[o]) ** 2 + (y - y[o]) ** 2
        within = d2[None, :] <= d2[:, None]  # [j, l]: l is not farther than j
        within &= (idx[None, :] != o) & (idx[None, :] != idx[:, None])
        s = within.astype(float) @ m
        with np.errstate(divide="ignore", invalid="ignore"):
            row = m[o] * m / ((m[o] + s) * (m[o] + m + s))
        if finite_size and m[o] < total:
            row /= 1 - m[o] / total
        row[~np.isfinite(row)] = 0.0
        row[o] = 0.0
        p[o] = row
    return p


def _clustered(n: int, seed: int):
    """Clustered metre coordinates, snapped duplicates (exact ties), far islands, zero masses."""
    rng = np.random.default_rng(seed)
    centres = rng.random((6, 2)) * 900_000
    k = rng.integers(0, 6, n)
    xy = centres[k] + rng.normal(size=(n, 2)) * rng.uniform(2_000, 40_000, 6)[k, None]
    xy[: n // 8] = np.round(xy[: n // 8] / 5000) * 5000
    xy[-2:] = [[9e6, -2e6], [-7e6, 1e6]]  # islands: most points share the first buckets
    m = rng.integers(1, 5000, n).astype(float)
    m[::37] = 0.0
    return xy[:, 0].copy(), xy[:, 1].copy(), m


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_equals_brute_force_on_clustered_points_with_ties_and_islands(seed):
    x, y, m = _clustered(500, seed)
    want = _brute_dense(x, y, m)
    np.testing.assert_allclose(radiation_dense(x, y, m), want, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        radiation_dense(x, y, m, finite_size=False),
        _brute_dense(x, y, m, finite_size=False),
        rtol=1e-12,
        atol=0,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 40)),
        min_size=1,
        max_size=40,
    )
)
def test_dense_property_on_small_integer_grids(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    m = np.array([p[2] for p in points], dtype=float)
    if not (m > 0).any():
        m[0] = 1.0
    np.testing.assert_allclose(radiation_dense(x, y, m), _brute_dense(x, y, m), rtol=1e-12)


def test_dense_outputs_agree_float32_blocks_and_workers():
    x, y, m = _clustered(300, 4)
    p = radiation_dense(x, y, m)
    np.testing.assert_array_equal(radiation_dense(x, y, m, workers=3), p)
    p32 = radiation_dense(x, y, m, dtype=np.float32)
    assert p32.dtype == np.float32
    np.testing.assert_array_equal(p32, p.astype(np.float32))
    starts, blocks = zip(*radiation_row_blocks(x, y, m, rows=7), strict=True)
    assert starts[:3] == (0, 7, 14)
    assert [b.shape[0] for b in blocks][-1] == 300 % 7
    np.testing.assert_array_equal(np.vstack(blocks), p)


def test_dense_edge_cases():
    assert radiation_dense([], [], []).shape == (0, 0)
    np.testing.assert_array_equal(radiation_dense([1.0], [2.0], [3.0]), [[0.0]])
    # all coincident: every other point ties with j, s_ij = M - m_i - m_j
    z = np.zeros(4)
    m = np.array([1.0, 2.0, 3.0, 4.0])
    p = radiation_dense(z, z, m, finite_size=False)
    s = m.sum() - m[:, None] - m[None, :]
    want = m[:, None] * m[None, :] / ((m[:, None] + s) * (m[:, None] + m[None, :] + s))
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(p, want, rtol=1e-15)
    # squared distances overflow to inf: the two far points tie from the origin
    x = np.array([0.0, 1e200, -1e200, 1.0])
    y = np.zeros(4)
    np.testing.assert_allclose(radiation_dense(x, y, m), _brute_dense(x, y, m), rtol=1e-15)


def _top_k_rows(p: np.ndarray, k: int | None, lim) -> np.ndarray:
    keep = (p > 0) & (p >= np.broadcast_to(lim, (p.shape[0],))[:, None])
    out = np.where(keep, p, 0.0)
    if k is None:
        return out
    for r in range(p.shape[0]):
        cols = np.flatnonzero(keep[r])
        drop = cols[np.argsort(-p[r, cols], kind="stable")][k:]  # ties: lower column first
        out[r, drop] = 0.0
    return out


@pytest.mark.parametrize("top_k", [None, 1, 7, 299, 1000])
@pytest.mark.parametrize("min_prob", [0.0, 2e-3, "per-origin"])
def test_sparse_is_the_dense_matrix_filtered(top_k, min_prob):
    x, y, m = _clustered(300, 5)
    p = radiation_dense(x, y, m)
    lim = np.linspace(0.0, 0.02, 300) if min_prob == "per-origin" else min_prob
    want = _top_k_rows(p, top_k, lim)
    for workers in (1, 2):
        got = radiation_sparse(x, y, m, min_prob=lim, top_k=top_k, workers=workers)
        assert got.shape == (300, 300)
        assert got.has_sorted_indices
        np.testing.assert_array_equal(got.toarray(), want)
        assert got.nnz == np.count_nonzero(want)


def test_sparse_top_k_breaks_ties_by_lower_destination():
    # from the centre, four points at the same distance with the same mass: equal p
    x = np.array([0.0, 1.0, -1.0, 0.0, 0.0, 5.0])
    y = np.array([0.0, 0.0, 0.0, 1.0, -1.0, 0.0])
    m = np.array([10.0, 3.0, 3.0, 3.0, 3.0, 50.0])
    p = radiation_dense(x, y, m)
    assert p[0, 1] == p[0, 2] == p[0, 3] == p[0, 4]
    row = radiation_sparse(x, y, m, top_k=3)[[0], :].toarray()[0]
    assert np.flatnonzero(row).tolist() == [1, 2, 5]  # 5 is the largest, then 1 and 2
    assert p[0, 5] > p[0, 1]


def test_all_pairs_bad_arguments():
    x, y, m = np.arange(3.0), np.zeros(3), np.ones(3)
    with pytest.raises(ModelError, match="dtype"):
        radiation_dense(x, y, m, dtype=np.int64)
    with pytest.raises(ModelError, match="workers"):
        radiation_dense(x, y, m, workers=0)
    with pytest.raises(ModelError, match="differ in length"):
        radiation_dense(x, y, np.ones(4))
    with pytest.raises(ModelError, match="top_k"):
        radiation_sparse(x, y, m, top_k=0)
    with pytest.raises(ModelError, match="min_prob"):
        radiation_sparse(x, y, m, min_prob=[0.1, 0.2])
    with pytest.raises(ModelError, match="min_prob"):
        radiation_sparse(x, y, m, min_prob=-1.0)
    with pytest.raises(ModelError, match="rows"):
        next(radiation_row_blocks(x, y, m, rows=0))


def test_large_bucket_merge_sort_orders_a_span():
    """The O(k log k) guard for crowded buckets (the insertion pass would hide a bug in it)."""
    from maillage.models import _radiation_kernels as kernels

    rng = np.random.default_rng(3)
    sd = rng.integers(0, 30, 200).astype(float)
    sp = np.arange(200, dtype=np.int64)
    before = sd.copy()
    kernels._merge_sort_span(sd, sp, 20, 180)
    np.testing.assert_array_equal(sd[20:180], np.sort(before[20:180]))
    np.testing.assert_array_equal(before[sp], sd)  # columns moved along
    np.testing.assert_array_equal(sd[:20], before[:20])
    np.testing.assert_array_equal(sd[180:], before[180:])
