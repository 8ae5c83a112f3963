"""Benchmark: a whole import (read, map codes to the reference, store, aggregate) of a
national-size commuting base, against a plain pandas read + groupby, in the same process.

The file is written in INSEE's published layout with the real commune codes of the reference
(Paris, Lyon and Marseille as arrundissements, as INSEE publishes them), about 1 million rows
sorted by CODGEO then DCLT. ``bench_import.py`` times the reader alone.

Run: ``.venv/bin/python benchmarks/bench_import_store.py [--rows 1000000]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from maillage import reference
from maillage.build import import_flows, load_reference
from maillage.store import Store

VALUE = "NBFLUX_C21_ACTOCC15P"


def write_base(path: Path, rows: int, seed: int = 0) -> None:
    """A national-shape base: each origin's destinations drawn near it (gravity-like)."""
    rng = np.random.default_rng(seed)
    com = reference.communes(include_arm=True)
    com = com[~com["code"].isin(["75056", "69123", "13055"])]  # published as arrondissements
    codes, names = com["code"].to_numpy(), com["name"].to_numpy()
    lon, lat = com["lon"].to_numpy(), com["lat"].to_numpy()
    n = len(codes)
    per_origin = np.maximum(1, rng.poisson(rows / n, n))
    order = np.argsort(lon)
    rank = np.empty(n, int)
    rank[order] = np.arange(n)
    lines = [f"CODGEO;LIBGEO;DCLT;L_DCLT;{VALUE}"]
    for i in range(n):
        k = int(min(per_origin[i], n))
        near = order[np.clip(rank[i] + rng.integers(-3000, 3000, k), 0, n - 1)]
        near = np.unique(np.append(near, i))
        near = near[np.argsort(codes[near])]
        dist = np.hypot(lon[near] - lon[i], lat[near] - lat[i])
        vals = rng.lognormal(1.0, 1.2, len(near)) * np.exp(-dist)
        lines += [
            f"{codes[i]};{names[i]};{codes[j]};{names[j]};{v:.6f}" for j, v in zip(near, vals)
        ]
    path.write_text("\n".join(lines) + "\n", "utf-8")


def pandas_reference(path: Path) -> pd.Series:
    df = pd.read_csv(path, sep=";", dtype=str)
    df[VALUE] = df[VALUE].astype(float)
    return df.groupby(["CODGEO", "DCLT"], sort=False)[VALUE].sum()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="maillage-bench-import-"))
    base = tmp / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
    t = time.perf_counter()
    write_base(base, args.rows)
    n_lines = sum(1 for _ in base.open("rb")) - 1
    print(
        f"file: {n_lines:,} rows, {base.stat().st_size / 1e6:.0f} MB "
        f"(written in {time.perf_counter() - t:.1f} s)"
    )
    ref_db = tmp / "reference.duckdb"
    with Store(ref_db) as store:
        load_reference(store)
    times_ml, times_pd = [], []
    for rep in range(2):
        db = tmp / f"run{rep}.duckdb"
        shutil.copy(ref_db, db)
        with Store(db) as store:
            t = time.perf_counter()
            report = import_flows(store, base)
            times_ml.append(time.perf_counter() - t)
            total = store.scalar("SELECT sum(value) FROM flow")
        t = time.perf_counter()
        ref = pandas_reference(base)
        times_pd.append(time.perf_counter() - t)
        assert abs(total - ref.sum()) <= 1e-6 * ref.sum(), (total, ref.sum())
    ml, pdt = min(times_ml), min(times_pd)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rows read {report.rows_read:,}, kept {report.rows_kept:,} commune pairs, "
        f"mapped {report.rows_mapped:,}"
    )
    print(
        f"full import into the store: {ml:.2f} s; pandas read + groupby only: {pdt:.2f} s; "
        f"ratio {pdt / ml:.2f}× (≥ 1 means the whole import beats pandas' read alone)"
    )
    print(f"peak RSS of this process (both, plus the reference): {peak:,.0f} MB")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
