"""Benchmark: coverage of one territory through the API with 5,000 cooperations in the register.

The store is built as ``maillage build`` does; the register (SQLite) holds the seed records plus
5,000 generated cooperations (``bench_coverage.make_register``). The reference is the same
coverage computed from scratch in the same process (links from the store, every record read,
memberships reloaded, ``coverage.coverage``), without the application's caches.

Run: ``.venv/bin/python benchmarks/bench_coverage_api.py [--db built.duckdb] [--n 20]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from bench_coverage import make_register

from maillage import reference
from maillage.build import build
from maillage.cooperations import auth, crud
from maillage.cooperations.db import open_registry, session_factory
from maillage.cooperations.from_store import territory_coverage
from maillage.cooperations.seed import load_seed
from maillage.delivery.api import create_app
from maillage.settings import Settings
from maillage.store import Store

REFS = [
    "epci:242900314",
    "epci:244400404",
    "epci:243100518",
    "epci:200023414",
    "epci:242900074",
    "epci:243300316",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=None, help="a built store to copy")
    ap.add_argument("--n", type=int, default=20, help="requests per territory")
    ap.add_argument("--cooperations", type=int, default=5000)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="maillage-bench-cov-"))
    db = home / "maillage.duckdb"
    if args.db:
        shutil.copy(args.db, db)
    with Store(db) as store:
        if not store.is_built():
            build(store)
    settings = Settings(home=home)
    engine = open_registry(settings.registry_url)
    epci = reference.epci()
    with session_factory(engine)() as s, s.begin():
        load_seed(s)
        admin = auth.add_user(s, "bench", "benchmark-password", "admin")
        for rec in make_register(epci, args.cooperations):
            crud.create(s, rec, user=admin, exists=None)
    store = Store(db, read_only=True)
    client = TestClient(create_app(settings, store=store))
    api_times, ref_times = [], []
    for ref in REFS:
        r = client.get(f"/api/v1/territories/{ref}/coverage", params={"kind": "commute"})
        assert r.status_code == 200, r.text  # first call warms the application
        for _ in range(args.n):
            t = time.perf_counter()
            r = client.get(f"/api/v1/territories/{ref}/coverage", params={"kind": "commute"})
            api_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        with session_factory(engine)() as s:
            _, res = territory_coverage(store, s, ref, kinds=["commute"])
        ref_times.append(time.perf_counter() - t)
        assert r.json()["data"]["summary"]["strong_links"] == len(res.links)
    m_api, m_ref = statistics.median(api_times), statistics.median(ref_times)
    print(f"register: {args.cooperations:,} generated cooperations + seed; {len(REFS)} EPCI")
    print(
        f"coverage of one territory through the API: median {m_api * 1e3:.0f} ms; "
        f"computed from scratch: median {m_ref * 1e3:.0f} ms; ratio {m_ref / m_api:.1f}×"
    )
    store.close()
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
