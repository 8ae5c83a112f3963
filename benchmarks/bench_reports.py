"""Benchmark: one territory sheet as PDF, and a batch of N EPCI extrapolated to 1,250.

The batch is measured three ways in the same run, on the same EPCI and formats:

- **naive** (the reference): for each EPCI, open the store again (so stratum tables and every
  cache are recomputed), drop the polygon cache, then build the sheet and the exports each from
  their own calls to the analysis functions;
- **batch, 1 process**: ``run_batch(workers=1)``: one read-only connection, stratum tables and
  polygons computed once, the figures of each EPCI computed once and shared by sheet and
  exports;
- **batch, 2 processes**: the same spread over two worker processes (one read-only DuckDB
  connection each).

Run: ``.venv/bin/python benchmarks/bench_reports.py [--db PATH] [--n 6] [--region 53]``
(without ``--db``, the store named by ``MAILLAGE_HOME``/``MAILLAGE_DATABASE``, built first
with ``maillage build``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from maillage.settings import Settings
from maillage.store import Store

FRANCE_EPCI = 1250
FORMATS = ("pdf", "xlsx", "gpkg")


def time_one_sheet(db: Path, ref: str, out: Path) -> tuple[float, float]:
    """Seconds for the first sheet of a process (caches cold) and for a second one (warm)."""
    from maillage.delivery.reports.maps import _layer
    from maillage.delivery.reports.sheets import territory_sheet, write_sheet

    _layer.cache_clear()
    times = []
    with Store(db, read_only=True) as store:
        for i in range(2):
            t0 = time.perf_counter()
            write_sheet(territory_sheet(store, ref), out / f"sheet{i}.pdf")
            times.append(time.perf_counter() - t0)
    return times[0], times[1]


def naive_batch(db: Path, refs: list[str], out: Path) -> float:
    """The reference: a fresh store and cold caches for every EPCI, nothing shared."""
    from maillage.delivery.exports import export_bundle
    from maillage.delivery.reports.maps import _layer
    from maillage.delivery.reports.sheets import territory_sheet, write_sheet

    t0 = time.perf_counter()
    for ref in refs:
        _layer.cache_clear()
        with Store(db, read_only=True) as store:
            folder = out / ref.replace(":", "_")
            write_sheet(territory_sheet(store, ref), folder / "fiche.pdf")
            export_bundle(store, ref, folder, ("xlsx", "gpkg"))
    return time.perf_counter() - t0


def our_batch(db: Path, refs: list[str], out: Path, workers: int) -> float:
    from maillage.delivery.batch import run_batch
    from maillage.delivery.reports.maps import _layer

    _layer.cache_clear()
    t0 = time.perf_counter()
    res = run_batch(db, refs, out, FORMATS, workers=workers)
    if res.failed:
        raise SystemExit(f"batch failures: {res.failed}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--n", type=int, default=6, help="EPCI in the timed batch")
    parser.add_argument("--region", default="53")
    args = parser.parse_args()
    db = args.db or Settings().database_path
    if not db.exists():
        raise SystemExit(f"no observatory at {db}: run `maillage build` or pass --db")
    from maillage.delivery.batch import epci_refs

    with Store(db, read_only=True) as store:
        refs = epci_refs(store, args.region)[: args.n]
    work = Path(tempfile.mkdtemp(prefix="bench_reports_"))
    try:
        cold, warm = time_one_sheet(db, "epci:242900314", work)
        print(f"territory sheet PDF (Brest Métropole): first {cold:.2f} s, next {warm:.2f} s")
        n = len(refs)
        naive = naive_batch(db, refs, work / "naive")
        one = our_batch(db, refs, work / "one", 1)
        two = our_batch(db, refs, work / "two", 2)
        print(f"\nbatch of {n} EPCI of région {args.region}, formats {', '.join(FORMATS)}:")
        for name, secs in (("naive (reopen + recompute)", naive), ("batch, 1 process", one),
                           ("batch, 2 processes", two)):  # fmt: skip
            per = secs / n
            print(f"  {name:<28} {secs:7.1f} s  {per:5.2f} s/EPCI  "
                  f"→ {FRANCE_EPCI} EPCI ≈ {per * FRANCE_EPCI / 60:6.1f} min")  # fmt: skip
        print(f"\nratios: naive / 1 process = {naive / one:.2f}; naive / 2 processes = "
              f"{naive / two:.2f}; 1 process / 2 processes = {one / two:.2f}")  # fmt: skip
        print("(the 2-process figure includes the start of the workers, paid once per batch)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
