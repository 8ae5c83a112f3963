"""Benchmark: head-office links from a national-shape Sirene establishment stock.

Generates a ``StockEtablissement_utf8.csv`` with the real 3.11 header (53 columns) and
``--rows`` establishments (default 2 000 000; the national stock has about 44 M, too big for
CI — raise ``--rows`` to scale), then derives the ``hq_link`` flows twice, each in its own
fresh process so that peak memory (``ru_maxrss``) is measured separately:

- maillage: :func:`maillage.sources.sirene.read_sirene` (DuckDB streaming into an on-disk
  temporary database, memory limit 2 GB);
- reference: pandas ``read_csv(chunksize=…, usecols=…)`` chunked baseline, keeping only the
  used columns in memory, resolving head offices and summing band midpoints.

Both must give the same total; the script prints time and peak memory of each and the ratios.

    .venv/bin/python benchmarks/bench_sirene.py --rows 2000000
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import tempfile
import time
from pathlib import Path

SIEGE_SHARE = 0.6  # share of sirens whose establishments are head offices


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write a CSV with the published header and plausible values (communes, bands, NAF)."""
    from maillage import reference
    from maillage.sources.sirene import ETABLISSEMENT_COLUMNS, HEADCOUNT_MIDPOINTS

    rng = random.Random(seed)
    communes = reference.communes()["code"].tolist()
    bands = [*list(HEADCOUNT_MIDPOINTS), ""]
    band_w = [40, 10, 20, 10, 6, 5, 3, 2, 1, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 15]
    idx = {c: i for i, c in enumerate(ETABLISSEMENT_COLUMNS)}
    empty = [""] * len(ETABLISSEMENT_COLUMNS)
    siren = 100000000
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(ETABLISSEMENT_COLUMNS) + "\n")
        while written < rows:
            siren += 1
            n = 1 if rng.random() < SIEGE_SHARE else rng.randint(2, 6)
            home = rng.choice(communes)
            for k in range(min(n, rows - written)):
                r = list(empty)
                nic = f"{k + 1:04d}{k % 10}"
                r[idx["siren"]] = str(siren)
                r[idx["nic"]] = nic
                r[idx["siret"]] = f"{siren}{nic}"
                r[idx["statutDiffusionEtablissement"]] = "O"
                r[idx["trancheEffectifsEtablissement"]] = rng.choices(bands, band_w)[0]
                r[idx["dateDernierTraitementEtablissement"]] = "2024-12-31T10:00:00"
                r[idx["etablissementSiege"]] = "true" if k == 0 else "false"
                r[idx["libelleVoieEtablissement"]] = '"RUE DE LA GARE, BAT A"'
                r[idx["codeCommuneEtablissement"]] = home if k == 0 else rng.choice(communes)
                r[idx["etatAdministratifEtablissement"]] = "A" if rng.random() < 0.7 else "F"
                r[idx["activitePrincipaleEtablissement"]] = f"{rng.randint(1, 99):02d}.11Z"
                r[idx["nomenclatureActivitePrincipaleEtablissement"]] = "NAFRev2"
                out.write(",".join(r) + "\n")
                written += 1


def run_maillage(path: str, queue: mp.Queue) -> None:
    from maillage.sources.sirene import read_sirene

    t0 = time.perf_counter()
    flows = read_sirene([path], memory_limit="2GB")
    seconds = time.perf_counter() - t0
    total = float(sum(flows.hq.column("value").to_pylist()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(("maillage (DuckDB)", seconds, peak, total, flows.hq.num_rows))


def run_pandas(path: str, queue: mp.Queue) -> None:
    """Chunked pandas: keep used columns; head offices and links summed chunk by chunk."""
    import pandas as pd

    from maillage.sources.sirene import HEADCOUNT_MIDPOINTS

    t0 = time.perf_counter()
    cols = [
        "siren",
        "siret",
        "trancheEffectifsEtablissement",
        "etablissementSiege",
        "codeCommuneEtablissement",
        "etatAdministratifEtablissement",
    ]
    hq: dict[str, str] = {}
    parts = []
    for chunk in pd.read_csv(path, usecols=cols, dtype=str, chunksize=500_000):
        s = chunk[chunk["etablissementSiege"] == "true"]
        hq.update(zip(s["siren"], s["codeCommuneEtablissement"]))
        active = chunk[chunk["etatAdministratifEtablissement"] == "A"]
        parts.append(
            pd.DataFrame(
                {
                    "siren": active["siren"],
                    "destination": active["codeCommuneEtablissement"],
                    "w": active["trancheEffectifsEtablissement"].map(HEADCOUNT_MIDPOINTS).fillna(0),
                }
            )
        )
    links = pd.concat(parts, ignore_index=True)
    links["origin"] = links["siren"].map(hq)
    out = links.dropna(subset=["origin"]).groupby(["origin", "destination"])["w"].sum()
    out = out[out > 0]
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(("pandas chunked (reference)", seconds, peak, float(out.sum()), len(out)))


def measure(target, path: Path) -> tuple[str, float, float, float, int]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(path), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="Write the CSV here and keep it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "StockEtablissement_utf8.csv"
        t0 = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size:,.0f} MB) in {time.perf_counter() - t0:.1f} s")
        ours = measure(run_maillage, path)
        ref = measure(run_pandas, path)
    for name, sec, peak, total, pairs in (ours, ref):
        print(f"{name:28} {sec:8.1f} s  peak {peak:8.0f} MB  total {total:14,.1f}  {pairs:,} pairs")
    assert abs(ours[3] - ref[3]) <= 1e-6 * max(1.0, ref[3]), "the two methods disagree"
    print(f"time ratio reference / maillage: {ref[1] / ours[1]:.2f}")
    print(f"peak memory ratio reference / maillage: {ref[2] / ours[2]:.2f}")


if __name__ == "__main__":
    main()
