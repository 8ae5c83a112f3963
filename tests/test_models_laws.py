"""Laws, intervening opportunities, radiation and constrained models (maillage.models)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from maillage._errors import ModelError
from maillage.models import (
    ModelWarning,
    attraction_constrained,
    calibrate_law,
    cpc,
    distance_matrix,
    doubly_constrained,
    law_weights,
    opportunities,
    opportunities_at_pairs,
    production_constrained,
    radiation_at_pairs,
    radiation_dense,
    run_model,
    truncated_kernel,
)

MTQ = Path("/work/shared/data/mapsf_martinique")


def brute_force_row(i: int, mass: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """TDLM Sij.java / PyTDLM brute force: s_ij = Σ_{l≠i,j, d_il ≤ d_ij} m_l for one i."""
    idx = np.arange(mass.size)
    within = dist[i][None, :] <= dist[i][:, None]  # [j, l]
    within &= idx[None, :] != i
    within &= idx[None, :] != idx[:, None]
    row = within.astype(float) @ mass
    row[i] = 0.0
    return row


def brute_force_opportunities(mass: np.ndarray, dist: np.ndarray) -> np.ndarray:
    return np.array([brute_force_row(i, mass, dist) for i in range(mass.size)])


# --------------------------------------------------------------------------- s_ij by hand


def test_opportunities_hand_example_with_ties():
    # four points on a line at -1, 0, 1, 2 (indices 1, 0, 2, 3): ties at distance 1 from 0
    x = np.array([0.0, -1.0, 1.0, 2.0])
    y = np.zeros(4)
    m = np.array([10.0, 20.0, 30.0, 40.0])
    expected = np.array(
        [
            [0, 30, 20, 50],  # from 0: 1 and 2 tie at d=1, each counts the other
            [0, 0, 10, 40],
            [40, 50, 0, 10],  # from 2: 0 and 3 tie at d=1
            [30, 40, 0, 0],
        ],
        dtype=float,
    )
    got = opportunities(m, distance_matrix(x, y))
    np.testing.assert_array_equal(got, expected)
    i, j = np.nonzero(np.ones((4, 4)))
    np.testing.assert_array_equal(opportunities_at_pairs(x, y, m, i, j), expected[i, j])


def test_radiation_hand_value():
    # two points: s = 0, p_01 = m0 m1 / (m0 (m0 + m1)) = m1/(m0+m1) = 3/4, /(1 - m0/M) = 1
    x, y, m = np.array([0.0, 1.0]), np.zeros(2), np.array([1.0, 3.0])
    p = radiation_at_pairs(x, y, m, [0], [1], finite_size=False)
    assert p[0] == pytest.approx(0.75)
    assert radiation_at_pairs(x, y, m, [0], [1])[0] == pytest.approx(1.0)


def test_radiation_rows_telescope_without_ties():
    rng = np.random.default_rng(1)
    n = 300
    x, y = rng.random(n), rng.random(n)  # continuous: no distance ties
    m = rng.lognormal(5, 1, n)
    p = radiation_dense(x, y, m, finite_size=False)
    np.testing.assert_allclose(p.sum(axis=1), 1 - m / m.sum(), rtol=1e-10)
    np.testing.assert_allclose(radiation_dense(x, y, m).sum(axis=1), 1.0, rtol=1e-10)
    # TDLM's law rows are normalised to m_i
    w = law_weights("Rad", m, m, distance_matrix(x, y))
    np.testing.assert_allclose(w.sum(axis=1), m, rtol=1e-10)


@pytest.mark.parametrize("n", [300, 1000])
def test_pair_only_equals_brute_force_with_ties(n):
    rng = np.random.default_rng(n)
    # integer grid with duplicates: many exactly equal distances and coincident points
    x = rng.integers(0, 25, n).astype(float)
    y = rng.integers(0, 25, n).astype(float)
    m = rng.integers(1, 1000, n).astype(float)
    dist = distance_matrix(x, y)
    k = 20_000
    i, j = rng.integers(0, n, k), rng.integers(0, n, k)
    if n > 300:  # brute force (O(n²) per origin) on 60 origins only
        keep = np.isin(i, np.unique(i)[:60])
        i, j = i[keep], j[keep]
    brute = np.zeros((n, n))
    for o in np.unique(i):
        brute[o] = brute_force_row(o, m, dist)
    got = opportunities_at_pairs(x, y, m, i, j)
    np.testing.assert_array_equal(got, brute[i, j])
    if n <= 300:
        np.testing.assert_array_equal(opportunities(m, dist)[i, j], brute[i, j])
    s = brute[i, j]
    want = m[i] * m[j] / ((m[i] + s) * (m[i] + m[j] + s))
    want[i == j] = 0
    np.testing.assert_allclose(radiation_at_pairs(x, y, m, i, j, finite_size=False), want)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 50)),
        min_size=2,
        max_size=25,
    )
)
def test_pair_only_property(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    m = np.array([p[2] for p in points], dtype=float)
    n = m.size
    i, j = np.nonzero(np.ones((n, n)))
    brute = brute_force_opportunities(m, distance_matrix(x, y))
    np.testing.assert_array_equal(opportunities_at_pairs(x, y, m, i, j), brute[i, j])


# --------------------------------------------------------------------------- laws


def test_normalised_gravity_hand_example():
    d = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]], dtype=float)
    m = np.array([1.0, 2.0, 3.0])
    w = law_weights("NGravExp", m, m, d, param=np.log(2))  # f(1) = 1/2, f(2) = 1/4
    # row 0: raw 2·1/2 = 1 and 3·1/4 = 0.75 → ×m0/1.75
    np.testing.assert_allclose(w[0], [0, 1 / 1.75, 0.75 / 1.75])
    np.testing.assert_allclose(w.sum(axis=1), m)
    g = law_weights("GravPow", m, m, d, param=2.0)  # not normalised: m_i m_j d^-2
    np.testing.assert_allclose(g[0], [0, 2.0, 3.0 / 4])


def test_bad_inputs_raise():
    d = np.array([[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ModelError, match="coincident"):
        law_weights("NGravPow", [1.0, 1.0], [1.0, 1.0], d, param=2)
    with pytest.raises(ModelError, match="no point"):
        distance_matrix([0.0, np.nan], [0.0, 1.0])
    with pytest.raises(ModelError, match="missing, infinite or negative"):
        law_weights("NGravExp", [1.0, -1.0], [1.0, 1.0], d + 1, param=1)
    with pytest.raises(ModelError, match="unknown law"):
        law_weights("Gravity", [1.0, 1.0], [1.0, 1.0], d + 1)


def test_zero_mass_rows_do_not_spread_nan():
    d = distance_matrix(np.array([0.0, 1.0, 2.0]), np.zeros(3))
    m = np.array([0.0, 5.0, 5.0])
    for law in ("Rad", "RadExt", "Schneider", "NGravExp"):
        w = law_weights(law, m, m, d, param=0.5)
        assert np.isfinite(w).all()
        assert w[0].sum() == 0


# --------------------------------------------------------------------------- models


def _random_problem(n=60, seed=3):
    rng = np.random.default_rng(seed)
    x, y = rng.random(n) * 50, rng.random(n) * 50
    m = rng.lognormal(6, 1, n)
    o = rng.random(n) * 100 + 1
    dj = rng.random(n) * 100 + 1
    dj *= o.sum() / dj.sum()
    return x, y, m, o, dj


def test_pcm_acm_margins_exact():
    x, y, m, o, dj = _random_problem()
    w = law_weights("NGravExp", m, m, distance_matrix(x, y), param=0.1)
    np.testing.assert_allclose(production_constrained(w, o).sum(axis=1), o)
    np.testing.assert_allclose(attraction_constrained(w, dj).sum(axis=0), dj)
    assert run_model(w, "UM", o).sum() == pytest.approx(o.sum())


@pytest.mark.parametrize("sparse", [False, True])
def test_dcm_reproduces_margins(sparse):
    x, y, _, o, dj = _random_problem()
    w = np.exp(-0.1 * distance_matrix(x, y))
    if sparse:
        w = sp.csr_array(w)
    res = doubly_constrained(w, o, dj, tol=1e-9, maxiter=2000)
    t = res.flows.toarray() if sparse else res.flows
    assert res.converged
    np.testing.assert_allclose(t.sum(axis=1), o, rtol=1e-8)
    np.testing.assert_allclose(t.sum(axis=0), dj, rtol=1e-8)
    # the factorised form: T = diag(a) W diag(b)
    dense_w = w.toarray() if sparse else w
    np.testing.assert_allclose(t, res.a[:, None] * dense_w * res.b[None, :])
    # TDLM default tolerance: max relative margin error ≤ 0.01
    loose = doubly_constrained(w, o, dj)
    tl = loose.flows.toarray() if sparse else loose.flows
    err = max(np.abs(tl.sum(axis=1) / o - 1).max(), np.abs(tl.sum(axis=0) / dj - 1).max())
    assert err <= 0.01 and loose.iterations <= 50


def test_dcm_errors_and_warnings():
    w = np.ones((3, 3))
    with pytest.raises(ModelError, match="equal sums"):
        doubly_constrained(w, [1.0, 1.0, 1.0], [1.0, 1.0, 2.0])
    # a feasibility failure: origin 0 can only reach destination 0, which wants less
    w = np.array([[1.0, 0, 0], [1, 1, 1], [1, 1, 1]])
    with pytest.warns(ModelWarning, match="not converged"):
        res = doubly_constrained(w, [5.0, 1, 1], [1.0, 3, 3], maxiter=20, tol=1e-6)
    assert not res.converged and np.isfinite(res.flows).all()


def test_truncated_kernel_matches_dense():
    x, y, m, _, _ = _random_problem(n=80)
    d = distance_matrix(x, y)
    k = truncated_kernel(x, y, m, param=0.2, cutoff=15.0).toarray()
    want = np.where((d <= 15.0) & (d > 0), m[None, :] * np.exp(-0.2 * d), 0.0)
    np.fill_diagonal(want, 0)
    np.testing.assert_allclose(k, want)


# --------------------------------------------------------------------------- real data


def _martinique():
    pyogrio = pytest.importorskip("pyogrio")
    shapely = pytest.importorskip("shapely")
    if not MTQ.exists():
        pytest.skip("Martinique extract absent (/work/shared/data/mapsf_martinique)")
    meta, _, geom, fields = pyogrio.raw.read(MTQ / "mtq.gpkg", layer="points")
    pts = pd.DataFrame(dict(zip(meta["fields"], fields, strict=True)))
    g = shapely.from_wkb(geom)
    mob = pd.read_csv(MTQ / "mob.csv", dtype={"i": str, "j": str})
    codes = pts["INSEE_COM"].astype(str).to_numpy()
    pos = pd.Series(np.arange(codes.size), index=codes)
    t = np.zeros((codes.size, codes.size))
    np.add.at(t, (pos[mob["i"]].to_numpy(), pos[mob["j"]].to_numpy()), mob["fij"].to_numpy())
    x, y = shapely.get_x(g) / 1000.0, shapely.get_y(g) / 1000.0  # UTM 20N, km
    return x, y, pts["POP"].to_numpy(dtype=float), t


def test_martinique_gravity_beats_radiation():
    x, y, pop, t = _martinique()
    assert t.sum() == 57_357  # SOURCE.md
    d = distance_matrix(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        grav = calibrate_law("NGravExp", "DCM", t, pop, pop, d)
        rad = calibrate_law("Rad", "DCM", t, pop, pop, d)
    assert 0 < rad.value < grav.value < 1
    assert 0.01 < grav.param < 1.0
    # the calibrated value is the CPC of the model run at that parameter
    w = law_weights("NGravExp", pop, pop, d, param=grav.param)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelWarning)
        assert cpc(t, run_model(w, "DCM", t.sum(1), t.sum(0))) == pytest.approx(grav.value)


def test_sparse_dcm_converges_on_feasible_margins_and_matches_classic_furness():
    rng = np.random.default_rng(12)
    n = 400
    x, y = rng.random(n) * 100, rng.random(n) * 100
    w = truncated_kernel(x, y, np.ones(n), param=0.2, cutoff=12.0, self_distance=np.zeros(n))
    # margins generated by a model on the same support: feasible by construction
    a0, b0 = rng.lognormal(0, 0.7, n), rng.lognormal(0, 0.7, n)
    o, dj = a0 * (w @ b0), b0 * (w.T @ a0)
    res = doubly_constrained(w, o, dj, tol=1e-6, maxiter=5000)
    assert res.converged and res.max_error <= 1e-6
    t = res.flows.toarray()
    np.testing.assert_allclose(t.sum(axis=1), o, rtol=1e-6)
    np.testing.assert_allclose(t.sum(axis=0), dj, rtol=1e-6)
    # the same iterates as the textbook loop (four mat-vecs per step), iteration for iteration
    dense = w.toarray()
    a, b = np.zeros(n), np.ones(n)
    for _ in range(res.iterations):
        a = o / (dense @ b)
        b = dj / (dense.T @ a)
    np.testing.assert_allclose(res.a, a, rtol=1e-9)
    np.testing.assert_allclose(res.b, b, rtol=1e-9)


def test_sparse_dcm_infeasible_margins_warn_with_the_achieved_error():
    rng = np.random.default_rng(13)
    n = 200
    x, y = rng.random(n) * 100, rng.random(n) * 100
    w = truncated_kernel(x, y, np.ones(n), param=0.2, cutoff=8.0, self_distance=np.zeros(n))
    o = rng.random(n) * 100 + 1
    dj = np.roll(o, n // 2)  # margins unrelated to the local support
    with pytest.warns(ModelWarning, match=r"not converged after 30 iterations \(max relative"):
        res = doubly_constrained(w, o, dj, tol=1e-8, maxiter=30)
    assert not res.converged and res.iterations == 30 and res.max_error > 1e-8


def test_sparse_dcm_flows_leave_the_weights_intact_and_drop_zero_rows():
    x, y, _, o, dj = _random_problem(n=50)
    w = truncated_kernel(x, y, np.ones(50), param=0.1, cutoff=30.0, self_distance=np.zeros(50))
    before = w.copy()
    o[3] = 0.0  # an origin without trips: a_3 = 0, its row must vanish from the flows
    dj *= o.sum() / dj.sum()
    res = doubly_constrained(w, o, dj, tol=1e-9, maxiter=5000)
    t = res.flows
    assert (t.indptr[4] - t.indptr[3]) == 0 and (t.data != 0).all()
    np.testing.assert_allclose(t.toarray(), res.a[:, None] * w.toarray() * res.b[None, :])
    for arr in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(w, arr), getattr(before, arr))
    full = doubly_constrained(w, o + (o == 0), dj + (o == 0).sum() / 50, tol=1e-9, maxiter=5000)
    np.testing.assert_array_equal(full.flows.indices, w.indices)  # same structure, no zeros
    np.testing.assert_array_equal(w.data, before.data)
