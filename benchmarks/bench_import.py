"""Benchmark: import a national-size base flux with ``read_flux`` vs pandas.

Generates a CSV in the published layout (``CODGEO;LIBGEO;DCLT;L_DCLT;NBFLUX_C21_ACTOCC15P``,
≈35,000 origins incl. Corsica 2A/2B and DROM, ≈1,000,000 rows, 6-decimal values) in a
temporary folder, then times in the same process:

- ``maillage.sources.flux.read_flux(path)`` (DuckDB parse + checks + sum of duplicates);
- the reference: ``pandas.read_csv(path, sep=";", dtype=str)``, ``astype(float)``,
  ``groupby(["CODGEO", "DCLT"]).sum()`` (no checks at all).

Peak memory of each is measured in a fresh subprocess (VmHWM, i.e. peak RSS).

Run: ``.venv/bin/python benchmarks/bench_import.py [--rows 1000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

HEADER = "CODGEO;LIBGEO;DCLT;L_DCLT;NBFLUX_C21_ACTOCC15P"
VALUE = "NBFLUX_C21_ACTOCC15P"


def commune_codes(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct realistic commune codes: départements 01–95 (2A/2B, no 20) and DROM."""
    deps = [f"{d:02d}" for d in range(1, 96) if d != 20] + ["2A", "2B"]
    codes: set[str] = set()
    while len(codes) < n:
        if rng.random() < 0.02:
            codes.add(f"97{rng.choice([1, 2, 3, 4, 6])}{rng.integers(1, 100):02d}")
        else:
            codes.add(f"{rng.choice(deps)}{rng.integers(1, 1000):03d}")
    return sorted(codes)


def write_base(
    path: Path, rows: int, origins: int, *, shuffled: bool = False, seed: int = 1
) -> None:
    """Write a synthetic national base flux with about ``rows`` lines and ``origins`` origins.

    As published: one line per (origin, destination) pair, sorted by CODGEO then DCLT, the
    intra-commune line included. ``shuffled=True`` writes the lines in random order with 3 %
    of them repeated (the slow path: pairs must be summed).
    """
    rng = np.random.default_rng(seed)
    codes = np.array(commune_codes(origins, rng))
    labels = np.array([f"Commune de test {c}" for c in codes])
    # destinations per origin: heavy-tailed (big cities have thousands), total ≈ rows
    weights = rng.pareto(1.2, origins) + 1
    per_origin = np.clip(np.round(weights / weights.sum() * rows), 1, origins).astype(int)
    o_idx, d_idx = [], []
    for origin, k in enumerate(per_origin):
        dests = rng.choice(origins, size=k, replace=False)
        if origin not in dests:
            dests[0] = origin  # the stables
        o_idx.append(np.full(k, origin))
        d_idx.append(np.sort(dests))
    origin_idx = np.concatenate(o_idx)
    dest_idx = np.concatenate(d_idx)
    if shuffled:
        extra = rng.choice(len(origin_idx), size=len(origin_idx) * 3 // 100, replace=False)
        origin_idx = np.concatenate([origin_idx, origin_idx[extra]])
        dest_idx = np.concatenate([dest_idx, dest_idx[extra]])
        order = rng.permutation(len(origin_idx))
        origin_idx, dest_idx = origin_idx[order], dest_idx[order]
    values = rng.lognormal(1.0, 1.5, len(origin_idx))
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(HEADER + "\n")
        step = 200_000
        for start in range(0, len(origin_idx), step):
            o = origin_idx[start : start + step]
            d = dest_idx[start : start + step]
            v = values[start : start + step]
            lines = [
                f"{codes[a]};{labels[a]};{codes[b]};{labels[b]};{x:.6f}"
                for a, b, x in zip(o, d, v, strict=True)
            ]
            fh.write("\n".join(lines) + "\n")


def run_maillage(path: Path) -> int:
    from maillage.sources.flux import read_flux

    return read_flux(path).table.num_rows


def run_pandas(path: Path) -> int:
    import pandas as pd

    df = pd.read_csv(path, sep=";", dtype=str)
    df[VALUE] = df[VALUE].astype(float)
    return len(df.groupby(["CODGEO", "DCLT"], sort=False)[VALUE].sum())


RUNNERS = {"maillage": run_maillage, "pandas": run_pandas}


def child(which: str, path: Path) -> None:
    """Run one import in this (fresh) process and print its peak RSS in MB.

    Reads VmHWM from /proc (per address space); ``ru_maxrss`` would include the parent's RSS,
    which Linux carries over ``exec``. Falls back to ``ru_maxrss`` elsewhere.
    """
    RUNNERS[which](path)
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                print(f"{int(line.split()[1]) / 1024:.0f}")
                return
    print(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def best_time(func, path: Path, repeat: int) -> tuple[float, int]:
    """Best wall time of ``repeat`` runs, and the function's result."""
    times, result = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(path)
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_rss(which: str, path: Path) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--origins", type=int, default=35_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="maillage-bench-") as tmp:
        for label, shuffled in (("as published (sorted)", False), ("shuffled + 3 % repeats", True)):
            path = Path(tmp) / f"base-flux-{'shuffled' if shuffled else 'sorted'}-2021.csv"
            start = time.perf_counter()
            write_base(path, args.rows, args.origins, shuffled=shuffled)
            lines = sum(1 for _ in path.open("rb")) - 1
            print(
                f"{label}: {lines:,} rows, {path.stat().st_size / 1e6:.0f} MB "
                f"(written in {time.perf_counter() - start:.1f}s)"
            )
            run_maillage(path)  # warm-up (imports, page cache)
            t_ml, n_ml = best_time(run_maillage, path, args.repeat)
            t_pd, n_pd = best_time(run_pandas, path, args.repeat)
            assert n_ml == n_pd, f"pair counts differ: maillage {n_ml}, pandas {n_pd}"
            rss_ml = peak_rss("maillage", path)
            rss_pd = peak_rss("pandas", path)
            results.append((label, t_ml, t_pd, rss_ml, rss_pd, n_ml))
    print()
    print(
        f"{'file':<24}{'read_flux (s)':>14}{'pandas (s)':>12}{'speed-up':>10}"
        f"{'RSS maillage':>14}{'RSS pandas':>12}{'pairs':>11}"
    )
    for label, t_ml, t_pd, rss_ml, rss_pd, pairs in results:
        print(
            f"{label:<24}{t_ml:>14.2f}{t_pd:>12.2f}{t_pd / t_ml:>9.1f}×"
            f"{rss_ml:>11.0f} MB{rss_pd:>9.0f} MB{pairs:>11,}"
        )
    print("\ntarget: speed-up ≥ 5× on the published file, peak RSS < 2,048 MB")
    print("pandas = read_csv(sep=';', dtype=str) + astype(float) + groupby sum, no checks")


if __name__ == "__main__":
    main()
