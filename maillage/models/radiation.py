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

Algorithm (METHODS §2.5, the "grid of prefix sums" variant): s_ij + m_i + m_j is the mass
inside the closed disk of squared radius d²_ij around i, a weighted circular range sum. The
points are binned on a uniform grid (about one point per cell) with, per grid row, a prefix
sum of the cell masses. For each query, each grid row crossed by the disk contributes

- the cells certainly inside the disk, read from the row prefix sums (two lookups);
- the points of the cells crossed by the circle, checked one by one with the float64 test
  ``(x_l - x_i)² + (y_l - y_i)² <= d²_ij`` (the brute force's own expression).

The cost is O(r_ij / h) lookups plus the points near the circle, independent of n² and of
how far the farthest destination of an origin is (a full per-origin sort was the previous
bottleneck: one far link made the candidate set the whole country).

Precision choice: every decision that can change s_ij is taken in float64 on squared
distances, exactly as the brute force does; no float32 is used (float32 squared distances in
metres merge distances closer than ~0.1 m at 500 km, which turns distinct distances into
false ties). Cells are classified "fully inside" / "fully outside" with a safety margin
(1e-9 of the coordinate scale plus 1e-12 relative), many orders of magnitude above the
float64 rounding of the squared distances, so a point whose computed d² is within rounding of
d²_ij is always checked exactly. Duplicated points and exactly equal distances are therefore
ties, as in the brute force. With integer masses the result is bit-identical to the brute
force; with fractional masses it equals it up to the rounding of the sums. (TDLM compares
float64 distances d = hypot(dx, dy) rather than d²; the two orders can only differ for
distances within one float64 ulp of each other — sub-nanometre at commune scale — and agree
in every test, including exact ties on grids and duplicated points.)

Work can be split over processes (``workers``): queries are independent, the grid is
inherited by forked workers (read-only).
"""

from __future__ import annotations

from itertools import pairwise

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


_CHUNK = 1 << 16  # elements per vectorised block: temporaries stay in the L2 cache
_PARALLEL_MIN_PAIRS = 100_000


def _ragged(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ranges [starts[k], starts[k] + lengths[k]) and the owner k of each element."""
    offsets = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(lengths.size), lengths)
    return np.arange(int(lengths.sum())) - np.repeat(offsets - starts, lengths), owner


def _blocks(cost: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Split [0, len(cost)) into consecutive blocks of about ``size`` cumulated cost."""
    if cost.size == 0:
        return []
    cum = np.cumsum(cost)
    cuts = np.searchsorted(cum, np.arange(size, cum[-1], size), side="right") + 1
    edges = np.unique(np.r_[0, np.minimum(cuts, cost.size), cost.size])
    return [(int(a), int(b)) for a, b in pairwise(edges)]


class _MassGrid:
    """Uniform grid over the points: points sorted by cell, row-wise prefix sums of masses.

    ``disk_mass(xi, yi, q)`` returns Σ m_l over l with (x_l - xi)² + (y_l - yi)² ≤ q.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, m: np.ndarray) -> None:
        n = m.size
        self.x0, self.y0 = float(x.min()), float(y.min())
        wx, wy = float(x.max()) - self.x0, float(y.max()) - self.y0
        extent = max(wx, wy)
        # ≈ one point per cell in the bulk of the points (1st-99th percentile box, so that a
        # few far islands do not make the cells huge), at most ~32 n cells over the whole box,
        # and at least 4√n cells along the longest side (points on a line)
        (x1, x99), (y1, y99) = np.percentile(x, [1, 99]), np.percentile(y, [1, 99])
        h = max(
            np.sqrt((x99 - x1) * (y99 - y1) / n),
            np.sqrt(wx * wy / (32.0 * n)),
            extent / (4.0 * np.sqrt(n)),
        )
        self.h = float(h) if h > 0 else 1.0
        self.nx = int(wx // self.h) + 1
        self.ny = int(wy // self.h) + 1
        cx = np.clip(((x - self.x0) // self.h).astype(np.int64), 0, self.nx - 1)
        cy = np.clip(((y - self.y0) // self.h).astype(np.int64), 0, self.ny - 1)
        cell = cy * self.nx + cx
        order = np.argsort(cell, kind="stable")
        self.xs, self.ys, self.ms = x[order], y[order], m[order]
        ncell = self.nx * self.ny
        self.start = np.r_[0, np.cumsum(np.bincount(cell, minlength=ncell))]
        cell_mass = np.bincount(cell, weights=m, minlength=ncell).reshape(self.ny, self.nx)
        prefix = np.zeros((self.ny, self.nx + 1))
        np.cumsum(cell_mass, axis=1, out=prefix[:, 1:])
        self.prefix = prefix.ravel()
        # classification margin: far above float64 rounding, far below a cell
        self.margin = 1e-9 * max(float(np.abs(x).max()), float(np.abs(y).max()), extent, 1.0)

    def row_span(self, yi: np.ndarray, q: np.ndarray):
        """Radii in cell units (with margins), first grid row and rows crossed by each disk."""
        r = np.sqrt(q)
        r_out = (r * (1 + 1e-12) + 2 * self.margin) / self.h
        r_in = (r * (1 - 1e-12) - 2 * self.margin) / self.h
        fy = (yi - self.y0) / self.h
        lo = np.clip(np.floor(fy - r_out).astype(np.int64), 0, self.ny - 1)
        hi = np.clip(np.floor(fy + r_out).astype(np.int64), 0, self.ny - 1)
        return r_out, r_in, lo, hi - lo + 1

    def disk_mass(self, xi: np.ndarray, yi: np.ndarray, q: np.ndarray) -> np.ndarray:
        r_out, r_in, row0, nrows = self.row_span(yi, q)
        fx = (xi - self.x0) / self.h
        fy = (yi - self.y0) / self.h
        ro2 = r_out * r_out
        ri2 = np.where(r_in > 0, r_in * r_in, -1.0)
        out = np.empty(q.size)
        for a, b in _blocks(nrows, _CHUNK):
            sl = slice(a, b)
            out[sl] = self._rows(
                xi[sl], yi[sl], q[sl], fx[sl], fy[sl], ro2[sl], ri2[sl], row0[sl], nrows[sl]
            )
        return out

    def _rows(self, xi, yi, q, fx, fy, ro2, ri2, row0, nrows) -> np.ndarray:
        """Disk masses of a block of queries; one vector element per (query, grid row)."""
        nx = self.nx
        row, own = _ragged(row0, nrows)
        t = fy[own] - row  # query position relative to the row band [0, 1], cell units
        dy_near = np.maximum(np.maximum(t - 1.0, -t), 0.0)
        dy_far = np.maximum(t, 1.0 - t)
        half_out = np.sqrt(np.maximum(ro2[own] - dy_near * dy_near, 0.0))
        half_in2 = ri2[own] - dy_far * dy_far
        full = half_in2 > 0
        half_in = np.sqrt(np.maximum(half_in2, 0.0))
        cx = fx[own]
        # cells [ca, cb] may meet the disk; cells [fa, fb] lie inside it
        ca = np.clip(np.floor(cx - half_out).astype(np.int64), 0, nx - 1)
        cb = np.clip(np.floor(cx + half_out).astype(np.int64), 0, nx - 1)
        fa = np.maximum(np.ceil(cx - half_in).astype(np.int64), ca)
        fb = np.minimum(np.floor(cx + half_in).astype(np.int64) - 1, cb)
        full &= fb >= fa
        fa[~full] = cb[~full] + 1
        fb[~full] = cb[~full]
        base = row * (nx + 1)
        inside = self.prefix[base + fb + 1] - self.prefix[base + fa]
        res = np.bincount(own, weights=inside, minlength=q.size)
        # cells crossed by the circle: [ca, fa) and (fb, cb], contiguous runs of points
        cell0 = row * nx
        starts = np.concatenate([self.start[cell0 + ca], self.start[cell0 + fb + 1]])
        ends = np.concatenate([self.start[cell0 + fa], self.start[cell0 + cb + 1]])
        lengths = ends - starts
        keep = np.flatnonzero(lengths)
        starts, lengths = starts[keep], lengths[keep]
        owner = np.where(keep < own.size, keep, keep - own.size)
        owner = own[owner]
        for a, b in _blocks(lengths, _CHUNK):
            p, k = _ragged(starts[a:b], lengths[a:b])
            k = owner[a:b][k]
            d2 = (self.xs[p] - xi[k]) ** 2 + (self.ys[p] - yi[k]) ** 2
            hit = np.where(d2 <= q[k], self.ms[p], 0.0)
            res += np.bincount(k, weights=hit, minlength=q.size)
        return res


_SHARED: dict = {}  # the grid and queries, inherited by forked workers


def _worker(span: tuple[int, int]) -> np.ndarray:
    g, xi, yi, q = _SHARED["job"]
    return g.disk_mass(xi[span[0] : span[1]], yi[span[0] : span[1]], q[span[0] : span[1]])


def _disk_mass_parallel(g: _MassGrid, xi, yi, q, workers: int) -> np.ndarray:
    """Split the queries in ``2 × workers`` blocks of equal estimated cost over forked workers."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods():
        return g.disk_mass(xi, yi, q)
    *_, nrows = g.row_span(yi, q)
    spans = _blocks(nrows + 4, int(np.ceil((nrows.sum() + 4 * q.size) / (2 * workers))))
    _SHARED["job"] = (g, xi, yi, q)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
            parts = list(ex.map(_worker, spans))
    finally:
        _SHARED.pop("job", None)
    return np.concatenate(parts)


def opportunities_at_pairs(x, y, mass, i, j, *, workers: int = 1) -> np.ndarray:
    """Tie-inclusive s_ij at the given pairs, without building the n×n matrix.

    s_ij = Σ_{l ≠ i, j; d²_il ≤ d²_ij} m_l with float64 squared planar distances (see the
    module docstring for the algorithm and the precision guarantees).

    Parameters
    ----------
    x, y : planar coordinates (any unit; only the order of distances matters).
    mass : m_l of every territory (length n).
    i, j : origin and destination indices of the queried pairs (any order, repeats allowed).
    workers : processes to use (forked, Linux); 1 (default) computes in this process. Used
        only from 100,000 pairs on; the result does not depend on it.

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
    if int(workers) < 1:
        raise ModelError(f"opportunities_at_pairs: workers must be ≥ 1, got {workers}.")
    if ia.size == 0:
        return np.zeros(0)
    grid = _MassGrid(xa, ya, m)
    xi, yi = xa[ia], ya[ia]
    q = (xa[ja] - xi) ** 2 + (ya[ja] - yi) ** 2  # the same expression as for every l
    if int(workers) > 1 and ia.size >= _PARALLEL_MIN_PAIRS:
        inside = _disk_mass_parallel(grid, xi, yi, q, int(workers))
    else:
        inside = grid.disk_mass(xi, yi, q)
    out = inside - m[ia] - m[ja]  # the disk holds i (d² = 0) and j (d² = q) themselves
    out[ia == ja] = 0.0
    np.maximum(out, 0.0, out=out)
    return out


def radiation_at_pairs(
    x, y, mass, i, j, *, finite_size: bool = True, workers: int = 1
) -> np.ndarray:
    """Radiation probabilities p_ij at the given pairs (share of the origin's trips).

    p_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij)), divided by (1 - m_i/M) when
    ``finite_size`` (Masucci et al. 2013). Multiply by O_i to get expected flows of the
    production-constrained radiation model. Self pairs (i == j) get 0. ``workers`` as in
    :func:`opportunities_at_pairs`.

    Raises
    ------
    ModelError
        When an origin holds all the mass (1 - m_i/M = 0).
    """
    m = check_masses(mass, "radiation_at_pairs: mass")
    ia, ja = _check_pairs(i, j, m.size)
    s = opportunities_at_pairs(x, y, m, ia, ja, workers=workers)
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


_DENSE_BLOCK = 1 << 15  # elements per row block of radiation_dense (256 kB per temporary)


def _sorted_rows(d2: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-row ascending order of ``d2`` (k × n, float64 ≥ 0), exact, and the tie mask.

    The order comes from one ``np.sort`` of uint64 keys, faster than ``argsort``: the
    float64 bits of d² ≥ 0 (monotone as integers) with their lowest ``b`` bits replaced by
    the column index (b = bits of n - 1). The truncation is monotone, so the keys are sorted
    by d² except inside runs of equal truncated keys (d² equal, or distinct within a
    relative 2^(b-52)). Only those neighbours are compared on their exact d²: a row where
    they are out of order is re-sorted with ``argsort``, so the returned order is always a
    true sort of d². ``tie[r, k]`` is True when sorted positions k and k + 1 of row r hold
    exactly equal d² (None when no row of the block has a tie).
    """
    k, n = d2.shape
    b = max(int(n - 1).bit_length(), 1)
    low = np.uint64((1 << b) - 1)
    key = d2.view(np.uint64) & ~low
    key |= np.arange(n, dtype=np.uint64)
    key.sort(axis=1)
    order = (key & low).view(np.int64)
    key &= ~low
    same = key[:, 1:] == key[:, :-1]
    del key
    if not same.any():
        return order, None
    r, c = np.nonzero(same)
    da, db = d2[r, order[r, c]], d2[r, order[r, c + 1]]
    for row in np.unique(r[db < da]):  # rare: distinct d² within 2^(b-52) relative
        order[row] = np.argsort(d2[row])
        c_row = c[r == row]
        da[r == row] = d2[row, order[row, c_row]]
        db[r == row] = d2[row, order[row, c_row + 1]]
    tie = np.zeros((k, n - 1), dtype=bool)
    tie[r, c] = da == db  # exact ties are always inside runs of equal truncated keys
    return order, tie


def _tie_last(tie: np.ndarray) -> np.ndarray:
    """Sorted position of the last element of each group of equal d² (``tie`` as above)."""
    k, n1 = tie.shape
    last = np.broadcast_to(np.arange(n1 + 1), (k, n1 + 1)).copy()
    last[:, :-1][tie] = n1 + 1  # not a group end: take the next group end on the right
    return np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1]


def _radiation_rows(xa, ya, m, rows: slice, norm: np.ndarray, check: bool, out) -> None:
    """Rows ``rows`` of the dense radiation matrix, written into ``out`` (k × n, C-order).

    ``norm`` holds the finite-size factor 1 - m_i/M of the rows (1 when not applied), folded
    into m_i in the numerator: p_ij = m_j (m_i / norm_i) / ((m_i + s_ij)(m_i + m_j + s_ij)),
    within 2 ulps of dividing the row afterwards. ``check``: some masses are zero or extreme,
    so 0/0 (or overflow) may occur and non-finite values are set to 0.
    """
    k, n = out.shape
    mo = m[rows, None]
    d2 = xa - xa[rows, None]  # (x_l - x_i)² + (y_l - y_i)², as in the brute force
    d2 *= d2
    dy = ya - ya[rows, None]
    dy *= dy
    d2 += dy
    del dy
    order, tie = _sorted_rows(d2)
    ms = np.take(m, order)
    s = np.cumsum(ms, axis=1)  # mass of the nearest points, in sorted order
    if tie is not None:  # every l at exactly d_ij is counted (tie-inclusive)
        s = np.take_along_axis(s, _tie_last(tie), axis=1)
    s -= mo
    s -= ms
    np.maximum(s, 0.0, out=s)
    den = ms + mo  # (m_i + m_j + s)(m_i + s)
    den += s
    s += mo
    den *= s
    p = ms  # m_j (m_i / norm_i) / den
    p *= mo / norm[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p /= den
    if check:
        p[~np.isfinite(p)] = 0.0  # zero masses: 0/0
    order += (np.arange(k) * n)[:, None]
    np.put(out, order, p)
    out[np.arange(k), np.arange(rows.start, rows.start + k)] = 0.0


def radiation_dense(x, y, mass, *, finite_size: bool = True) -> np.ndarray:
    """Radiation probabilities for all n² pairs (diagonal 0), sorted row blocks + prefix sums.

    The same quantity as :func:`radiation_at_pairs` on every pair::

        p_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij)) [/ (1 - m_i / M)],
        s_ij = Σ_{l ≠ i, j; d²_il ≤ d²_ij} m_l (tie-inclusive, float64 squared distances).

    Origins are processed in blocks of rows with numpy: squared distances, one sort per row
    (packed uint64 keys, see :func:`_sorted_rows`), prefix sums of the masses in sorted
    order, the end of each group of equal distances for the tie-inclusive s_ij, then the
    formula evaluated in sorted order and scattered back to the row. O(n² log n) time;
    memory: the n × n float64 output plus a few blocks of ``_DENSE_BLOCK`` elements.
    """
    xa, ya = check_points(x, y, "radiation_dense")
    m = check_masses(mass, "radiation_dense: mass")
    if m.size != xa.size:
        raise ModelError("radiation_dense: mass and points differ in length.")
    n = m.size
    total = m.sum()
    norm = np.ones(n)
    if finite_size:
        live = m < total
        norm[live] = 1.0 - m[live] / total
    # zero masses give 0/0; beyond these bounds the products could under- or overflow
    check = bool(n) and not (m.min() > 1e-150 and m.max() < 1e150)
    step = max(1, _DENSE_BLOCK // max(n, 1))
    blocks = [slice(a, min(a + step, n)) for a in range(0, n, step)]
    p = np.empty((n, n))
    for rows in blocks:
        _radiation_rows(xa, ya, m, rows, norm[rows], check, p[rows])
    return p
