"""Benchmark: indicators for one EPCI and for all EPCI, against pandas on the raw flow table.

The store is built as ``maillage build`` does (real reference, national modelled commuting:
about 1.5 million commune pairs, the size of INSEE's national base). The reference
implementation computes the same margins with pandas from the raw commune flow table and the
commune → EPCI membership, in the same process. Results are checked equal before timing.

Run: ``.venv/bin/python benchmarks/bench_indicators.py [--epci 50]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from maillage.analysis.indicators import derive, indicator_table, margins
from maillage.build import build
from maillage.store import Store


def pandas_margins_one(flows: pd.DataFrame, members: set[str]) -> dict[str, float]:
    o = flows["origin"].isin(members)
    d = flows["destination"].isin(members)
    return {
        "internal": float(flows.loc[o & d, "value"].sum()),
        "origin_total": float(flows.loc[o, "value"].sum()),
        "destination_total": float(flows.loc[d, "value"].sum()),
    }


def pandas_margins_all(flows: pd.DataFrame, epci_of: pd.Series) -> pd.DataFrame:
    f = flows.assign(eo=flows["origin"].map(epci_of), ed=flows["destination"].map(epci_of))
    origin_total = f.groupby("eo")["value"].sum()
    destination_total = f.groupby("ed")["value"].sum()
    internal = f[f.eo == f.ed].groupby("eo")["value"].sum()
    return pd.DataFrame(
        {"internal": internal, "origin_total": origin_total, "destination_total": destination_total}
    ).fillna(0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epci", type=int, default=50, help="EPCI sampled for the one-EPCI timing")
    ap.add_argument("--db", type=Path, default=None, help="reuse a built store")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="maillage-bench-")
    path = args.db or Path(tmp) / "maillage.duckdb"
    with Store(path) as store:
        if not store.is_built():
            t = time.perf_counter()
            build(store)
            print(f"build: {time.perf_counter() - t:.1f} s")
        flows = store.df("SELECT origin, destination, value FROM flow")
        mem = store.df("SELECT commune, code FROM membership WHERE level = 'epci'")
        epci_of = mem.set_index("commune")["code"]
        members = mem.groupby("code")["commune"].apply(set)
        rng = np.random.default_rng(0)
        sample = rng.choice(members.index.to_numpy(), size=args.epci, replace=False)
        print(f"flow table: {len(flows):,} commune pairs; {len(members):,} EPCI")

        t_ml, t_pd = [], []
        for code in sample:
            t = time.perf_counter()
            got = derive(margins(store, "epci", "commute", code=code)).loc[code]
            t_ml.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref = pandas_margins_one(flows, members[code])
            t_pd.append(time.perf_counter() - t)
            for k, v in ref.items():
                assert abs(got[k] - v) <= 1e-6 * max(1.0, abs(v)), (code, k, got[k], v)
        m_ml, m_pd = statistics.median(t_ml), statistics.median(t_pd)
        print(
            f"one EPCI, all indicators: maillage median {m_ml * 1e3:.1f} ms, "
            f"pandas on raw table {m_pd * 1e3:.1f} ms, ratio {m_pd / m_ml:.1f}×"
        )

        t = time.perf_counter()
        table = indicator_table(store, "epci", "commute")
        t_all_ml = time.perf_counter() - t
        t = time.perf_counter()
        ref_all = pandas_margins_all(flows, epci_of)
        t_all_pd = time.perf_counter() - t
        joined = table[["origin_total"]].join(ref_all[["origin_total"]], rsuffix="_pd", how="inner")
        assert np.allclose(joined["origin_total"], joined["origin_total_pd"])
        print(
            f"all {len(table):,} EPCI in one pass (with strata): maillage {t_all_ml:.2f} s, "
            f"pandas margins only {t_all_pd:.2f} s, ratio {t_all_pd / t_all_ml:.1f}×"
        )


if __name__ == "__main__":
    main()
