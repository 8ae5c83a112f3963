"""Fit measures CPC, CPL, CPC_d, NRMSE on dense and sparse pairs (maillage.models.fit)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maillage._errors import ModelError
from maillage.models import align_pairs, cpc, cpc_distance, cpl, nrmse


def test_cpc_identical_is_one_and_hand_example():
    t = np.array([[0, 10], [5, 0]], dtype=float)
    assert cpc(t, t) == 1.0
    m = np.array([[0, 6], [5, 4]], dtype=float)
    # Σ min = 6 + 5 = 11; N = 15, Ñ = 15 → 22/30
    assert cpc(t, m) == pytest.approx(22 / 30)
    # different totals: symmetric Sørensen, not Σmin/N
    m2 = np.array([[0, 20], [0, 0]], dtype=float)
    assert cpc(t, m2) == pytest.approx(2 * 10 / (15 + 20))
    assert cpc(np.zeros(3), np.ones(3)) == 0.0


def test_nrmse_cpl_cpcd_hand_examples():
    t = np.array([3.0, 0.0, 1.0])
    m = np.array([1.0, 2.0, 1.0])
    # Σ(T - T̃)² = 4 + 4 + 0 = 8; N = 4 → sqrt(2)
    assert nrmse(t, m) == pytest.approx(np.sqrt(2))
    # links: obs {0, 2}, model {0, 1, 2}, common 2 → 4/5
    assert cpl(t, m) == pytest.approx(0.8)
    # distances 1, 3, 2.5 km with 2-km bins: bins 0, 1, 1
    # N_k = (3, 1), Ñ_k = (1, 3) → Σmin = 2, N + Ñ = 8
    assert cpc_distance(t, m, [1.0, 3.0, 2.5]) == pytest.approx(0.5)
    with pytest.raises(ModelError, match="sum to zero"):
        nrmse(np.zeros(2), np.ones(2))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=30),
    st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=30),
)
def test_cpc_symmetric_and_bounded(a, b):
    k = min(len(a), len(b))
    t, m = np.array(a[:k]), np.array(b[:k])
    if t.sum() + m.sum() == 0:
        return
    v = cpc(t, m)
    assert v == pytest.approx(cpc(m, t))
    assert 0.0 <= v <= 1.0 + 1e-12


def _random_sparse(rng, n, k):
    i, j = rng.integers(0, n, k), rng.integers(0, n, k)
    return i, j, rng.integers(1, 100, k).astype(float)


def test_align_pairs_and_sparse_equals_dense():
    rng = np.random.default_rng(0)
    n = 40
    oi, oj, ov = _random_sparse(rng, n, 300)  # duplicates inside a list are summed
    mi, mj, mv = _random_sparse(rng, n, 500)
    dense_t = np.zeros((n, n))
    dense_m = np.zeros((n, n))
    np.add.at(dense_t, (oi, oj), ov)
    np.add.at(dense_m, (mi, mj), mv)
    i, j, t, m = align_pairs(oi, oj, ov, mi, mj, mv)
    np.testing.assert_array_equal(t, dense_t[i, j])
    np.testing.assert_array_equal(m, dense_m[i, j])
    assert t.sum() == dense_t.sum() and m.sum() == dense_m.sum()
    assert cpc(t, m) == pytest.approx(cpc(dense_t, dense_m))
    assert nrmse(t, m) == pytest.approx(nrmse(dense_t, dense_m))
    assert cpl(t, m) == pytest.approx(cpl(dense_t, dense_m))
    # model known only on the observed support + its totals elsewhere
    obs = dense_t > 0
    assert cpc(dense_t[obs], dense_m[obs], modelled_total=dense_m.sum()) == pytest.approx(
        cpc(dense_t, dense_m)
    )
    assert nrmse(
        dense_t[obs], dense_m[obs], modelled_sumsq=float((dense_m**2).sum())
    ) == pytest.approx(nrmse(dense_t, dense_m))


def test_bad_values_raise():
    with pytest.raises(ModelError, match="aligned"):
        cpc(np.ones(3), np.ones(4))
    with pytest.raises(ModelError, match="NaN"):
        cpc(np.array([1.0, np.nan]), np.ones(2))
