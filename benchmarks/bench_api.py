"""Benchmark: the web application on the embedded default (real reference + modelled commuting).

Measures, against uvicorn serving ``create_app`` on 127.0.0.1 (loopback only, bounded loops):

1. **Page usable time**: from navigation to "map layer + first panel shown"
   (``body[data-ready]``), and to "flows drawn" (``body[data-flows]``), for
   ``/?sel=epci:242900314`` in Debian's headless Chromium (software WebGL: a laptop with a
   GPU draws faster), cold server caches then warm; compared with the
   time of the same API requests made back to back by a plain HTTP client (ratio = overhead
   of the browser: parsing, drawing, layout).
2. **Flows of a metropole under load**: p50/p95 latency of
   ``/api/v1/flows?ref=epci:242900314&level=epci`` with 20 concurrent clients, each request
   with a distinct threshold (no answer cache), and the same with identical requests (cached);
   the reference is the same query written directly on the raw ``flow`` table (DuckDB SQL,
   same 20 threads, same process count), so the ratio is the cost of the API layer.
3. **National EPCI layer**: payload bytes as sent (gzip) and before compression, against the
   5 MB budget.

Run: ``.venv/bin/python benchmarks/bench_api.py [--home DIR] [--requests 200]``
(``--home`` holding a built ``maillage.duckdb``; by default one is built in a temporary
folder, ≈ 1 min).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

METROPOLE = "epci:242900314"
CLIENTS = 20
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
BUDGET_EPCI_BYTES = 5_000_000

RAW_SQL = """
WITH p AS (SELECT commune FROM membership WHERE level = 'epci' AND code = ?),
q AS (SELECT commune, code FROM membership WHERE level = 'epci'),
f AS (SELECT origin, destination, value FROM flow WHERE kind = 'commute')
SELECT partner, sum(o) AS out_value, sum(i) AS in_value FROM (
  SELECT q.code AS partner, f.value AS o, 0.0 AS i FROM f
  JOIN p ON p.commune = f.origin JOIN q ON q.commune = f.destination
  WHERE f.destination NOT IN (SELECT commune FROM p)
  UNION ALL
  SELECT q.code, 0.0, f.value FROM f
  JOIN p ON p.commune = f.destination JOIN q ON q.commune = f.origin
  WHERE f.origin NOT IN (SELECT commune FROM p))
GROUP BY partner HAVING sum(o) + sum(i) >= ? ORDER BY sum(o) + sum(i) DESC LIMIT 500
"""


def built_home(home: str | None) -> Path:
    """A folder holding a built store (built here when not given)."""
    if home:
        path = Path(home)
        if not (path / "maillage.duckdb").exists():
            sys.exit(f"no maillage.duckdb in {path}")
        return path
    from maillage.build import build
    from maillage.store import Store

    path = Path(tempfile.mkdtemp(prefix="bench-api-"))
    print("building the embedded default store (≈ 1 min)…", flush=True)
    with Store(path / "maillage.duckdb") as store:
        build(store)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving the app on a private copy of the store, on a loopback port."""

    def __init__(self, home: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="bench-api-serve-"))
        shutil.copy(home / "maillage.duckdb", self.home / "maillage.duckdb")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MAILLAGE_HOME": str(self.home)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "maillage.delivery.api:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/api/v1/status", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.home, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def run_concurrent(task, n_requests: int, clients: int = CLIENTS) -> list[float]:
    """Run ``task(i)`` ``n_requests`` times from ``clients`` threads; latencies in seconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(n_requests))

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            task(i)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


# -- 1. page usable time ---------------------------------------------------------------------------


def page_usable(base: str) -> dict[str, tuple[float, float]] | None:
    if not Path(CHROMIUM).exists():
        print("  (no /usr/bin/chromium: page time not measured)")
        return None
    from playwright.sync_api import sync_playwright

    out: dict[str, tuple[float, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label in ("cold", "warm", "warm2"):
            context = browser.new_context(viewport={"width": 1366, "height": 768})
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{base}/?sel={METROPOLE}")
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            page.wait_for_selector("body[data-flows='1']", timeout=120_000)
            drawn = time.perf_counter() - t0
            # the page notes when map and panel are shown (performance.now() from navigation)
            usable = page.evaluate("window.__readyAt") / 1000
            out[label] = (usable, drawn)
            context.close()
        browser.close()
    return out


def api_requests_time(base: str) -> float:
    """The requests of the same page view, back to back, with a plain HTTP client."""
    paths = [
        "/api/v1/indicators",
        "/api/v1/status",
        "/api/v1/geometry/epci",
        "/api/v1/choropleth?level=epci&kind=commute&indicator=self_containment",
        f"/api/v1/territories/{METROPOLE}/profile",
        f"/api/v1/territories/{METROPOLE}/partners?kind=commute&direction=both&top=15",
    ]
    with httpx.Client(base_url=base, timeout=60) as client:
        t0 = time.perf_counter()
        for path in paths:
            client.get(path).raise_for_status()
        return time.perf_counter() - t0


# -- 2. flows under load ---------------------------------------------------------------------------


def flows_under_load(base: str, n_requests: int) -> dict[str, list[float]]:
    url = "/api/v1/flows"
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=base, timeout=120)
        return local.c

    def distinct(i: int) -> None:
        params = {"kind": "commute", "ref": METROPOLE, "level": "epci", "top": 500,
                  "threshold": i * 0.001}  # fmt: skip
        client().get(url, params=params).raise_for_status()

    def same(i: int) -> None:
        params = {"kind": "commute", "ref": METROPOLE, "level": "epci", "top": 500}
        client().get(url, params=params).raise_for_status()

    same(0)  # warm the layer caches once
    return {
        "api_uncached": run_concurrent(distinct, n_requests),
        "api_cached": run_concurrent(same, n_requests),
    }


def raw_under_load(home: Path, n_requests: int) -> list[float]:
    """The same partner aggregation straight on the raw table, 20 threads, one process."""
    import duckdb

    con = duckdb.connect(str(home / "maillage.duckdb"), read_only=True)
    code = METROPOLE.split(":")[1]

    def task(i: int) -> None:
        cur = con.cursor()
        try:
            cur.execute(RAW_SQL, [code, i * 0.001]).fetchall()
        finally:
            cur.close()

    try:
        return run_concurrent(task, n_requests)
    finally:
        con.close()


# -- 3. national EPCI payload -------------------------------------------------------------


def epci_payload(base: str) -> tuple[int, int]:
    gz = httpx.get(base + "/api/v1/geometry/epci", headers={"accept-encoding": "gzip"}, timeout=60)
    sent = int(gz.headers.get("content-length") or len(gz.content))
    plain = httpx.get(
        base + "/api/v1/geometry/epci", headers={"accept-encoding": "identity"}, timeout=60
    )
    return sent, len(plain.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", help="folder holding a built maillage.duckdb")
    parser.add_argument("--requests", type=int, default=200, help="requests per load run")
    args = parser.parse_args()
    home = built_home(args.home)

    server = Server(home)
    try:
        print("1. page usable time (map + first panel), /?sel=" + METROPOLE)
        times = page_usable(server.base)
        api_t = api_requests_time(server.base)
        if times:
            for label, (t, t_flows) in times.items():
                ratio = t / api_t
                print(f"   {label:6s} map+panel {t:5.2f} s, flows drawn {t_flows:5.2f} s; "
                      f"ratio to its API requests ({api_t:.2f} s): {ratio:4.1f}x")  # fmt: skip

        print(f"2. flows of {METROPOLE}, {CLIENTS} concurrent clients, {args.requests} requests")
        load = flows_under_load(server.base, args.requests)
    finally:
        server.stop()
    raw = raw_under_load(home, args.requests)
    raw_p95 = percentile(raw, 0.95)
    print(f"   raw SQL on flow table   p50 {statistics.median(raw) * 1e3:7.1f} ms   "
          f"p95 {raw_p95 * 1e3:7.1f} ms")  # fmt: skip
    for label, lat in load.items():
        p95 = percentile(lat, 0.95)
        print(f"   {label:22s}  p50 {statistics.median(lat) * 1e3:7.1f} ms   "
              f"p95 {p95 * 1e3:7.1f} ms   p95 ratio to raw SQL {p95 / raw_p95:5.2f}x")  # fmt: skip

    server = Server(home)
    try:
        sent, plain = epci_payload(server.base)
    finally:
        server.stop()
    print("3. national EPCI layer")
    share = plain / BUDGET_EPCI_BYTES
    print(f"   sent (gzip) {sent / 1e6:5.2f} MB, uncompressed {plain / 1e6:5.2f} MB, "
          f"budget {BUDGET_EPCI_BYTES / 1e6:.0f} MB: {share:.0%} of it")  # fmt: skip


if __name__ == "__main__":
    main()
