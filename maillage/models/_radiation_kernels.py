"""Compiled (numba) per-origin kernels of the all-pairs radiation model.

Imported lazily by :mod:`maillage.models.radiation` (numba takes about a second to import and
its first call compiles, or loads from the on-disk cache, the kernels below).

One origin i at a time, exactly (no approximation), in O(n) time when the points are spread
and O(n log n) at worst:

1. squared float64 distances d²_il = (x_l - x_i)² + (y_l - y_i)², the brute force's own
   expression (numba does not contract it into a fused multiply-add: no ``fastmath``);
2. a bucket sort of the row: bucket b(l) = ⌊d²_il · B / max_l d²_il⌋ (B ≈ 2n buckets).
   Multiplying by a positive constant and truncating are monotone, so the buckets are in
   the order of d² and equal d² share a bucket. A counting pass scatters the (d², l) pairs
   by bucket; buckets of more than ``_SMALL`` points (clusters, or most of the points when
   one far island stretches the range) are sorted with a merge sort, O(k log k); one
   insertion pass then orders the few elements left out of order inside small buckets;
3. prefix sums of the masses in that order; inside a group of exactly equal d², every
   element gets the group's last prefix sum (tie-inclusive s_ij);
4. the Simini formula with the finite-size factor folded into m_i, written to column j.

Every step of the sort is stable, so equal d² stay in column order: the additions of step 3
come in the same order as in the previous numpy implementation (packed keys d² | column),
and the values are bit-identical to it. With integer masses every sum is exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SMALL = 24  # buckets larger than this are merge-sorted rather than insertion-sorted
_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@njit(**_JIT)
def _merge_sort_span(sd, sp, lo, hi) -> None:
    """Sort sd[lo:hi] (and sp along) with a stable merge sort: O(k log k) on any input."""
    order = np.argsort(sd[lo:hi], kind="mergesort")
    vals = sd[lo:hi].copy()
    cols = sp[lo:hi].copy()
    for k in range(hi - lo):
        sd[lo + k] = vals[order[k]]
        sp[lo + k] = cols[order[k]]


@njit(**_JIT)
def _sort_row(x, y, i, d2, sd, sp, cnt) -> None:
    """(sd, sp): the d²_il of origin ``i`` sorted ascending and their columns l."""
    n = x.size
    nbk = cnt.size - 1  # 2n buckets
    xi = x[i]
    yi = y[i]
    dmax = 0.0
    for col in range(n):
        dx = x[col] - xi
        dy = y[col] - yi
        v = dx * dx + dy * dy
        d2[col] = v
        if v > dmax:
            dmax = v
    # an infinite dmax (overflowing coordinates) gives scale 0: one bucket, merge-sorted
    scale = nbk / dmax if 0.0 < dmax < np.inf else 0.0
    cnt[:] = 0
    for col in range(n):
        t = d2[col] * scale
        b = int(t) if t < nbk else nbk - 1  # NaN (inf × 0) goes last, as inf does
        cnt[b + 1] += 1
    for b in range(nbk):
        cnt[b + 1] += cnt[b]
    for col in range(n):  # stable counting-sort scatter; cnt[b] ends at the end of bucket b
        v = d2[col]
        t = v * scale
        b = int(t) if t < nbk else nbk - 1
        pos = cnt[b]
        sd[pos] = v
        sp[pos] = col
        cnt[b] = pos + 1
    lo = 0
    for b in range(nbk):
        hi = cnt[b]
        if hi - lo > _SMALL:
            _merge_sort_span(sd, sp, lo, hi)
        lo = hi
    for t in range(1, n):  # only elements of one small bucket can be out of order
        v = sd[t]
        if sd[t - 1] > v:
            c = sp[t]
            u = t - 1
            while u >= 0 and sd[u] > v:
                sd[u + 1] = sd[u]
                sp[u + 1] = sp[u]
                u -= 1
            sd[u + 1] = v
            sp[u + 1] = c


@njit(**_JIT)
def _radiation_row(x, y, m, i, mi_norm, d2, sd, sp, cs, cnt, row) -> None:
    """Row i of the radiation matrix into ``row`` (length n, any float dtype)."""
    n = x.size
    _sort_row(x, y, i, d2, sd, sp, cnt)
    c = 0.0
    for t in range(n):  # mass of every l with d²_il ≤ sd[t] (the origin itself included)
        c += m[sp[t]]
        cs[t] = c
    for t in range(n - 2, -1, -1):  # a tie group takes the sum at its last element
        if sd[t] == sd[t + 1]:
            cs[t] = cs[t + 1]
    mi = m[i]
    for t in range(n):
        j = sp[t]
        mj = m[j]
        s = (cs[t] - mi) - mj
        if s < 0.0:
            s = 0.0
        p = mj * mi_norm / (((mj + mi) + s) * (s + mi))
        if not np.isfinite(p):  # zero masses: 0/0
            p = 0.0
        row[j] = p
    row[i] = 0.0


@njit(**_JIT)
def _select(a, k):
    """The k-th smallest value of ``a`` (0-based), reordering ``a`` in place (Hoare's
    quickselect, median-of-three pivot; equal values stop both scans, so many ties are fine)."""
    lo = 0
    hi = a.size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        # median of three at a[mid], then Hoare partition around it
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        u = lo
        v = hi
        while u <= v:
            while a[u] < pivot:
                u += 1
            while a[v] > pivot:
                v -= 1
            if u <= v:
                a[u], a[v] = a[v], a[u]
                u += 1
                v -= 1
        if k <= v:
            hi = v
        elif k >= u:
            lo = u
        else:
            return a[k]
    return a[k]


def scratch(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Work arrays of one worker, allocated by numpy (so that memory tracers see them):
    five float64 rows (d², sorted d², prefix sums, one output row, a selection buffer) and
    the sorted columns followed by the 2n + 1 bucket counters."""
    return np.empty((5, n)), np.empty(3 * n + 1, dtype=np.int64)


@njit(**_JIT)
def dense_rows(x, y, m, mi_norm, start, out, work, iwork) -> None:
    """Rows ``start``, ``start + 1``, … of the radiation matrix into ``out`` (k × n)."""
    n = x.size
    d2, sd, cs = work[0], work[1], work[2]
    sp, cnt = iwork[:n], iwork[n:]
    for r in range(out.shape[0]):
        i = start + r
        _radiation_row(x, y, m, i, mi_norm[i], d2, sd, sp, cs, cnt, out[r])


@njit(**_JIT)
def sparse_rows(
    x, y, m, mi_norm, start, stop, min_prob, top_k, counts, cols, vals, work, iwork
) -> int:
    """Kept entries of rows [start, stop): p_ij > 0, p_ij ≥ min_prob[i], and, when
    ``0 < top_k < n``, only the ``top_k`` largest (ties at the k-th value broken by the lower
    column). Written row after row in column order into ``cols``/``vals``; ``counts[r]`` is
    the number kept in row start + r. Returns the total kept."""
    n = x.size
    d2, sd, cs, row, buf = work[0], work[1], work[2], work[3], work[4]
    sp, cnt = iwork[:n], iwork[n:]
    pos = 0
    for i in range(start, stop):
        _radiation_row(x, y, m, i, mi_norm[i], d2, sd, sp, cs, cnt, row)
        lim = min_prob[i]
        limited = False  # the k-th largest value is the threshold
        equal_left = 0  # then, how many entries equal to it may still be kept
        if 0 < top_k < n:
            # the k nearest destinations bound the k-th largest value from below: only the
            # entries above that bound (few: p falls fast with distance) are selected from
            low = np.inf
            seen = 0
            for t in range(n):
                j = sp[t]
                if j != i:
                    low = min(low, row[j])
                    seen += 1
                    if seen == top_k:
                        break
            c = 0
            for j in range(n):
                if row[j] >= low:
                    buf[c] = row[j]
                    c += 1
            kth = _select(buf[:c], c - top_k)
            if kth > 0.0 and kth >= lim:
                above = 0
                for j in range(n):
                    if row[j] > kth:
                        above += 1
                limited = True
                equal_left = top_k - above
                lim = kth
        kept = 0
        for j in range(n):
            p = row[j]
            if p > 0.0 and p >= lim:
                if limited and p == lim:
                    if equal_left == 0:
                        continue
                    equal_left -= 1
                cols[pos] = j
                vals[pos] = p
                pos += 1
                kept += 1
        counts[i - start] = kept
    return pos
