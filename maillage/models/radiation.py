"""Radiation model evaluated at given pairs only (sub-n² for the observed ≈10⁶ links).

Simini, González, Maritan & Barabási 2012 (*Nature* 484:96-100), with the finite-size
normalisation of Masucci et al. 2013 (*Phys. Rev. E* 88:022812)::

    p_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij)) / (1 - m_i / M),   M = Σ_l m_l
    T_ij = O_i p_ij

and TDLM's TIE-INCLUSIVE intervening opportunities
s_ij = Σ_{l ≠ i, l ≠ j, d_il ≤ d_ij} m_l.

Why 1 - m_i/M: when no two destinations are at the same distance from i, the unnormalised
terms telescope, Σ_j m_i m_j / ((m_i+s_ij)(m_i+m_j+s_ij)) = m_i (1/m_i - 1/M) = 1 - m_i/M,
so the row normalisation is known without building the row. With distance ties the
tie-inclusive s_ij makes the row sum slightly smaller than 1 - m_i/M; use the dense
:func:`maillage.models.laws.law_weights` (exact TDLM row normalisation) on small n when that
matters.

Algorithm (METHODS §2.5), per origin i having queried destinations: squared planar distances
to every point, keep only the points no farther than the farthest queried destination
(a boolean mask, exact), sort them, prefix-sum their masses, and
``searchsorted(sorted_d², d²_ij, side="right") - 1`` gives the tie-inclusive cumulated mass;
s_ij = cum - m_i - m_j. Squared distances are compared in float64, so duplicated points and
exactly equal distances are ties, as in the brute force.
"""

from __future__ import annotations

import numpy as np

from maillage._errors import ModelError
from maillage.models.laws import check_masses, check_points

__all__ = ["opportunities_at_pairs", "radiation_at_pairs", "radiation_dense"]


def _check_pairs(i, j, n: int) -> tuple[np.ndarray, np.ndarray]:
    ia = np.asarray(i, dtype=np.int64)
    ja = np.asarray(j, dtype=np.int64)
    if ia.shape != ja.shape or ia.ndim != 1:
        raise ModelError("pairs: i and j must be 1-D integer arrays of the same length.")
    if ia.size and (min(ia.min(), ja.min()) < 0 or max(ia.max(), ja.max()) >= n):
        raise ModelError(f"pairs: indices must lie in [0, {n}); got values outside.")
    return ia, ja


def opportunities_at_pairs(x, y, mass, i, j) -> np.ndarray:
    """Tie-inclusive s_ij at the given pairs, without building the n×n matrix.

    Parameters
    ----------
    x, y : planar coordinates (any unit; only the order of distances matters).
    mass : m_l of every territory (length n).
    i, j : origin and destination indices of the queried pairs (any order, repeats allowed).

    Returns
    -------
    numpy.ndarray
        s_ij for each pair (0 when i == j).
    """
    xa, ya = check_points(x, y, "opportunities_at_pairs")
    m = check_masses(mass, "opportunities_at_pairs: mass")
    if m.size != xa.size:
        raise ModelError("opportunities_at_pairs: mass and points differ in length.")
    ia, ja = _check_pairs(i, j, m.size)
    out = np.zeros(ia.size)
    if ia.size == 0:
        return out
    d2q = (xa[ia] - xa[ja]) ** 2 + (ya[ia] - ya[ja]) ** 2
    order = np.argsort(ia, kind="stable")
    starts = np.flatnonzero(np.r_[True, ia[order][1:] != ia[order][:-1]])
    bounds = np.r_[starts, ia.size]
    for k in range(starts.size):
        sel = order[bounds[k] : bounds[k + 1]]
        o = ia[sel[0]]
        q = d2q[sel]
        d2 = (xa - xa[o]) ** 2 + (ya - ya[o]) ** 2
        near = np.flatnonzero(d2 <= q.max())
        dn = d2[near]
        srt = np.argsort(dn)
        cum = np.cumsum(m[near][srt])
        pos = np.searchsorted(dn[srt], q, side="right") - 1
        out[sel] = cum[pos] - m[o] - m[ja[sel]]
    out[ia == ja] = 0.0
    np.maximum(out, 0.0, out=out)
    return out


def radiation_at_pairs(x, y, mass, i, j, *, finite_size: bool = True) -> np.ndarray:
    """Radiation probabilities p_ij at the given pairs (share of the origin's trips).

    p_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij)), divided by (1 - m_i/M) when
    ``finite_size`` (Masucci et al. 2013). Multiply by O_i to get expected flows of the
    production-constrained radiation model. Self pairs (i == j) get 0.

    Raises
    ------
    ModelError
        When an origin holds all the mass (1 - m_i/M = 0).
    """
    m = check_masses(mass, "radiation_at_pairs: mass")
    ia, ja = _check_pairs(i, j, m.size)
    s = opportunities_at_pairs(x, y, m, ia, ja)
    mi, mj = m[ia], m[ja]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = mi * mj / ((mi + s) * (mi + mj + s))
    p[~np.isfinite(p)] = 0.0  # zero masses: 0/0
    p[ia == ja] = 0.0
    if finite_size:
        total = m.sum()
        norm = 1.0 - mi / total
        if (norm[mi > 0] <= 0).any():
            raise ModelError("radiation: one origin holds all the mass; nowhere to go.")
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(norm > 0, p / norm, 0.0)
    return p


def radiation_dense(x, y, mass, *, finite_size: bool = True) -> np.ndarray:
    """Radiation probabilities for all n² pairs (diagonal 0), per-origin sort + prefix sum.

    The same quantity as :func:`radiation_at_pairs` on every pair, computed row by row
    (O(n² log n) time, O(n²) memory for the output only).
    """
    xa, ya = check_points(x, y, "radiation_dense")
    m = check_masses(mass, "radiation_dense: mass")
    n = m.size
    total = m.sum()
    p = np.zeros((n, n))
    for o in range(n):
        d2 = (xa - xa[o]) ** 2 + (ya - ya[o]) ** 2
        srt = np.argsort(d2)
        sd = d2[srt]
        cum = np.cumsum(m[srt])
        s = cum[np.searchsorted(sd, d2, side="right") - 1] - m[o] - m
        np.maximum(s, 0.0, out=s)
        with np.errstate(divide="ignore", invalid="ignore"):
            row = m[o] * m / ((m[o] + s) * (m[o] + m + s))
        row[~np.isfinite(row)] = 0.0
        row[o] = 0.0
        if finite_size and m[o] < total:
            row /= 1.0 - m[o] / total
        p[o] = row
    return p
