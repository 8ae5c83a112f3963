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

All pairs (:func:`radiation_dense`, :func:`radiation_sparse`, :func:`radiation_row_blocks`):
one origin at a time, a compiled numba kernel (:mod:`maillage.models._radiation_kernels`)
sorts the row's float64 squared distances exactly with a bucket sort (O(n) expected), then
takes prefix sums of the masses with tie groups: the same s_ij semantics, O(n²) expected time.
The outputs: the dense n × n matrix (float64, or float32 to halve it), the matrix streamed by
blocks of rows, or a sparse matrix of the largest / above-threshold p_ij of each origin
(truncated). Rows are independent; ``workers`` threads share them (the kernels release the
GIL).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from maillage._errors import ModelError
from maillage.models.laws import check_masses, check_points

__all__ = [
    "opportunities_at_pairs",
    "radiation_at_pairs",
    "radiation_dense",
    "radiation_row_blocks",
    "radiation_sparse",
]


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


# --------------------------------------------------------------------------- all pairs

_TASKS_PER_WORKER = 8  # row blocks per worker thread: balances a core taken by other jobs
_SPARSE_BUFFER = 1 << 15  # kept-entry capacity of one block's buffers (384 kB)


def _kernels():
    """The compiled kernels (imported on first use: numba takes ≈1 s to import)."""
    from maillage.models import _radiation_kernels

    return _radiation_kernels


def _prepare(x, y, mass, finite_size: bool, name: str):
    """Checked float64 points and masses, and m_i / (1 - m_i / M) (m_i when not finite-size)."""
    xa, ya = check_points(x, y, name)
    m = check_masses(mass, f"{name}: mass")
    if m.size != xa.size:
        raise ModelError(f"{name}: mass and points differ in length.")
    mi_norm = m.copy()
    if finite_size and m.size:
        total = m.sum()
        live = m < total  # an origin holding all the mass keeps m_i (its row is 0 anyway)
        mi_norm[live] = m[live] / (1.0 - m[live] / total)
    return np.ascontiguousarray(xa), np.ascontiguousarray(ya), m, mi_norm


def _check_workers(workers, name: str) -> int:
    if int(workers) != workers or int(workers) < 1:
        raise ModelError(f"{name}: workers must be an integer ≥ 1, got {workers}.")
    return int(workers)


def _row_spans(n: int, rows: int) -> list[tuple[int, int]]:
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def _run(task, spans: list[tuple[int, int]], workers: int) -> list:
    """``task(a, b)`` for every span, in threads when ``workers > 1`` (the kernels release
    the GIL); results in span order."""
    if workers == 1 or len(spans) == 1:
        return [task(a, b) for a, b in spans]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda s: task(*s), spans))


def radiation_dense(
    x, y, mass, *, finite_size: bool = True, dtype=np.float64, workers: int = 1
) -> np.ndarray:
    """Radiation probabilities for all n² pairs (diagonal 0), one exact bucket sort per origin.

    The same quantity as :func:`radiation_at_pairs` on every pair::

        p_ij = m_i m_j / ((m_i + s_ij)(m_i + m_j + s_ij)) [/ (1 - m_i / M)],
        s_ij = Σ_{l ≠ i, j; d²_il ≤ d²_ij} m_l (tie-inclusive, float64 squared distances).

    Each origin's row is computed by a compiled kernel (numba; see
    :mod:`maillage.models._radiation_kernels`): float64 squared distances, an exact bucket
    sort of the row (O(n) expected), prefix sums of the masses with tie groups, the formula.
    O(n²) expected time. Memory: the n × n output plus O(n) per worker.

    Parameters
    ----------
    x, y, mass : planar coordinates and masses (length n).
    finite_size : divide each row by 1 - m_i/M (Masucci et al. 2013).
    dtype : ``numpy.float64`` (default) or ``numpy.float32`` for an output of half the size;
        everything is computed in float64 and only the stored values are rounded to float32
        (relative error ≤ 6·10⁻⁸).
    workers : threads computing rows; the result does not depend on it.

    The first call in a process loads the compiled kernels from numba's on-disk cache (≈1 s
    with numba's import), or compiles them (≈15 s on a loaded 2-core machine) when the cache
    is cold.
    """
    xa, ya, m, mi_norm = _prepare(x, y, mass, finite_size, "radiation_dense")
    workers = _check_workers(workers, "radiation_dense")
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ModelError(f"radiation_dense: dtype must be float64 or float32, got {dt}.")
    n = m.size
    p = np.empty((n, n), dtype=dt)
    if n == 0:
        return p
    k = _kernels()
    rows = max(1, -(-n // (_TASKS_PER_WORKER * workers))) if workers > 1 else n

    def task(a: int, b: int) -> None:
        k.dense_rows(xa, ya, m, mi_norm, a, p[a:b], *k.scratch(n))

    _run(task, _row_spans(n, rows), workers)
    return p


def radiation_row_blocks(x, y, mass, *, rows: int = 256, finite_size: bool = True):
    """Yield ``(start, block)``: the dense radiation matrix ``rows`` origins at a time.

    ``block`` (``rows`` × n, float64, the last one shorter) holds rows ``start`` … of
    :func:`radiation_dense`; a new array is yielded each time. Use it to stream all n² values
    to a writer (or any per-row reduction) without holding the n × n matrix: memory is one
    block plus O(n).
    """
    xa, ya, m, mi_norm = _prepare(x, y, mass, finite_size, "radiation_row_blocks")
    if int(rows) != rows or rows < 1:
        raise ModelError(f"radiation_row_blocks: rows must be an integer ≥ 1, got {rows}.")
    k = _kernels()
    work = k.scratch(m.size)
    for a, b in _row_spans(m.size, int(rows)):
        block = np.empty((b - a, m.size))
        k.dense_rows(xa, ya, m, mi_norm, a, block, *work)
        yield a, block


def _sparse_limits(min_prob, top_k, n: int) -> tuple[np.ndarray, int]:
    if np.ndim(min_prob) not in (0, 1) or (np.ndim(min_prob) == 1 and np.size(min_prob) != n):
        raise ModelError(
            f"radiation_sparse: min_prob must be a number or one value per origin ({n})."
        )
    lim = np.broadcast_to(np.asarray(min_prob, dtype=float), (n,))
    if not (np.isfinite(lim) & (lim >= 0)).all():
        raise ModelError("radiation_sparse: min_prob must be finite and ≥ 0.")
    if top_k is None:
        return np.ascontiguousarray(lim), 0
    if int(top_k) != top_k or top_k < 1:
        raise ModelError(f"radiation_sparse: top_k must be an integer ≥ 1, got {top_k}.")
    return np.ascontiguousarray(lim), int(top_k)


def radiation_sparse(
    x,
    y,
    mass,
    *,
    min_prob=0.0,
    top_k: int | None = None,
    finite_size: bool = True,
    workers: int = 1,
):
    """The radiation probabilities worth storing, as a ``scipy.sparse.csr_array`` (n × n).

    Every p_ij of :func:`radiation_dense` is computed (same kernel, same values), but only
    these are kept, row by row, so the n × n matrix is never held:

    - p_ij > 0 and p_ij ≥ ``min_prob`` (a number, or one threshold per origin: e.g.
      ``min_prob = 0.5 / O`` keeps the expected flows O_i p_ij ≥ 0.5);
    - with ``top_k``, at most the ``top_k`` largest of each origin (among those above the
      threshold; ties at the k-th value broken by the lower destination index).

    This is a TRUNCATED matrix: the dropped probabilities are not redistributed, so a row
    sums to less than the dense row (compare ``out.sum(axis=1)`` with 1). Column indices are
    sorted within each row. Memory: the kept entries (12 bytes each: int32 column, float64
    value), written in place with ``top_k`` (arrays of n·top_k entries) and otherwise held
    twice during the final concatenation of the row blocks' pieces (a 384 kB buffer per
    block), plus O(n) per worker. ``workers`` as in :func:`radiation_dense`.
    """
    import scipy.sparse as sp

    xa, ya, m, mi_norm = _prepare(x, y, mass, finite_size, "radiation_sparse")
    workers = _check_workers(workers, "radiation_sparse")
    n = m.size
    lim, k_top = _sparse_limits(min_prob, top_k, n)
    if n == 0:
        return sp.csr_array((0, 0))
    k = _kernels()
    # with top_k the kept entries are at most n·k: they are written in place into arrays of
    # that size; otherwise row blocks are kept in pieces, concatenated at the end
    cap = min(n, k_top) if k_top else n  # kept entries per row, at most
    direct = cap < n
    rows = max(1, _SPARSE_BUFFER // cap)
    if workers > 1:
        rows = max(1, min(rows, -(-n // (_TASKS_PER_WORKER * workers))))
    counts = np.empty(n, dtype=np.int64)
    if direct:
        cols = np.empty(n * cap, dtype=np.int32)
        vals = np.empty(n * cap)

    def task(a: int, b: int):
        if direct:
            c, v = cols[a * cap : b * cap], vals[a * cap : b * cap]
        else:
            c, v = np.empty((b - a) * cap, dtype=np.int32), np.empty((b - a) * cap)
        used = k.sparse_rows(xa, ya, m, mi_norm, a, b, lim, k_top, counts[a:b], c, v, *k.scratch(n))
        return used if direct else (c[:used].copy(), v[:used].copy())

    spans = _row_spans(n, rows)
    parts = _run(task, spans, workers)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if direct:  # close the gaps left by rows with fewer than top_k entries
        for (a, _), used in zip(spans, parts, strict=True):
            src, dst = a * cap, indptr[a]
            if src != dst:
                cols[dst : dst + used] = cols[src : src + used]
                vals[dst : dst + used] = vals[src : src + used]
        cols, vals = cols[: indptr[-1]], vals[: indptr[-1]]
    else:
        cols = np.concatenate([c for c, _ in parts])
        vals = np.concatenate([v for _, v in parts])
    del parts
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return sp.csr_array((vals, cols, indptr), shape=(n, n), copy=False)
