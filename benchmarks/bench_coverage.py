"""Benchmark: coverage of every EPCI's strong links by 5,000 generated cooperations.

Compares :func:`maillage.cooperations.coverage.coverage` (inverted index commune → parties,
innermost-party sets cached per territory) with a naive reference loop (for each link, for
each cooperation, test every party by subset inclusion), in the same process, on the real
reference (EPCI 2026 memberships). The naive loop runs on a sample of the links (it is too slow
for all of them); both results are compared on that sample, and the ratio is per link.

Run: ``.venv/bin/python benchmarks/bench_coverage.py [--cooperations 5000] [--sample 150]``
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import pandas as pd

from maillage.cooperations._reference import communes_by_ref
from maillage.cooperations.coverage import Thresholds, coverage, strong_links
from maillage.cooperations.records import Cooperation, Party


def make_links(epci: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Each EPCI linked to its k nearest EPCI (commute), with shares making them strong."""
    xy = np.radians(epci[["lat", "lon"]].to_numpy(dtype=float))
    codes = epci["code"].astype(str).to_numpy()
    rows = []
    rng = np.random.default_rng(1)
    for i in range(len(codes)):
        d = np.hypot(xy[:, 0] - xy[i, 0], (xy[:, 1] - xy[i, 1]) * np.cos(xy[i, 0]))
        for j in np.argsort(d)[1 : k + 1]:
            value, share = int(rng.integers(60, 5000)), float(rng.uniform(0.05, 0.3))
            rows.append((f"epci:{codes[i]}", f"epci:{codes[j]}", "commute", value, share, 0.01))
    return pd.DataFrame(rows, columns=["a", "b", "kind", "value", "share_a", "share_b"])


def make_register(epci: pd.DataFrame, n: int, seed: int = 7) -> list[Cooperation]:
    """n cooperations of 2–6 EPCI chosen among geographic neighbours, plus a few regions."""
    rng = random.Random(seed)
    codes = epci.sort_values(["lat", "lon"])["code"].astype(str).tolist()
    regs = sorted(epci["reg"].dropna().astype(str).unique()) if "reg" in epci else []
    out = []
    for i in range(n):
        start = rng.randrange(len(codes) - 40)
        picked = rng.sample(codes[start : start + 40], rng.randint(2, 6))
        parties = [Party(ref=f"epci:{c}") for c in picked]
        if regs and rng.random() < 0.1:
            parties.append(Party(ref=f"reg:{rng.choice(regs)}", role="associate"))
        out.append(Cooperation(slug=f"c{i}", name=f"C{i}", instrument="convention",
                               themes=["mobilite"], parties=parties))  # fmt: skip
    return out


def naive_covering(a, b, register, communes) -> list[str]:
    """Reference implementation of the covering rule, straight from its definition."""
    out = []
    ca, cb = communes.get(a, frozenset()), communes.get(b, frozenset())
    for coop in register:
        refs = [p.ref for p in coop.parties if p.ref and not p.left]
        in_a = [p for p in refs if ca and ca <= communes.get(p, frozenset())]
        in_b = [p for p in refs if cb and cb <= communes.get(p, frozenset())]
        inner_a = {p for p in in_a if not any(communes[q] < communes[p] for q in in_a)}
        inner_b = {p for p in in_b if not any(communes[q] < communes[p] for q in in_b)}
        if inner_a and inner_b and inner_a.isdisjoint(inner_b):
            out.append(coop.slug)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cooperations", type=int, default=5000)
    parser.add_argument("--sample", type=int, default=150)
    args = parser.parse_args()

    from maillage import reference

    epci = reference.epci()
    com = reference.communes()[["code", "reg"]]
    epci = epci.merge(
        reference.memberships().query("level == 'epci'")
        .merge(com, left_on="commune", right_on="code", suffixes=("", "_c"))
        .groupby("code")["reg"].first().rename("reg"),
        left_on="code", right_index=True, how="left",
    )  # fmt: skip
    memberships = reference.memberships()
    links = make_links(epci)
    register = make_register(epci, args.cooperations)
    print(f"{len(epci)} EPCI, {len(links)} links, {len(register)} cooperations")

    t0 = time.perf_counter()
    result = coverage(links, None, register, memberships, Thresholds())
    fast = time.perf_counter() - t0
    print(f"coverage(): all {len(result.links)} strong links in {fast:.2f} s "
          f"({fast / len(result.links) * 1e3:.3f} ms/link, communes map included)")  # fmt: skip

    communes = communes_by_ref(memberships)
    strong = strong_links(links, Thresholds())
    sample = strong.sample(min(args.sample, len(strong)), random_state=3)
    t0 = time.perf_counter()
    naive = [naive_covering(a, b, register, communes) for a, b in zip(sample["a"], sample["b"])]
    slow = time.perf_counter() - t0
    per_link_naive = slow / len(sample)
    print(f"naive loop: {len(sample)} links in {slow:.2f} s ({per_link_naive * 1e3:.1f} ms/link)")
    fast_by_pair = dict(
        zip(zip(result.links["a"], result.links["b"]), result.links["cooperations"])
    )
    same = all(fast_by_pair[(a, b)] == n for a, b, n in zip(sample["a"], sample["b"], naive))
    print(f"same result on the sample: {same}")
    print(f"ratio (naive / coverage, per link): {per_link_naive / (fast / len(result.links)):.0f}x")
    if not same:
        raise SystemExit("results differ")


if __name__ == "__main__":
    main()
