"""Batches: sheets and exports for every EPCI of a région (or of France), resumable.

``run_batch`` writes, for each territory, a folder ``<out>/<slug>/`` holding the asked formats
(``pdf``/``html`` sheet, ``xlsx``, ``gpkg``, ``csv``) and a provenance file. A manifest
(``<out>/manifest.json``, rewritten atomically after every item) records what is done and what
failed: running the same batch again skips the items done whose files are all present, so an
interrupted batch resumes where it stopped. One failure never stops the batch; the result lists
the failures with their message.

Parallelism: with ``workers > 1`` items are spread over worker processes (``spawn``), each
holding **one read-only DuckDB connection** for its whole life (DuckDB lets several processes
read one file when none writes to it) and its own caches (stratum tables, polygons), so the
per-item cost is only the territory's own figures, maps and files.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maillage import __version__
from maillage._errors import UnknownTerritory, ValidationError
from maillage.delivery.exports import EXPORT_FORMATS, OutputError, atomic_write

#: Formats a batch can produce: a sheet (pdf or html) and the export formats.
BATCH_FORMATS = ("pdf", "html", *EXPORT_FORMATS)
DEFAULT_FORMATS = ("pdf", "xlsx", "gpkg")
MANIFEST = "manifest.json"

#: ``progress(ref, status, n_finished, n_total)``; status is done, failed or skipped.
BatchProgress = Callable[[str, str, int, int], None]


@dataclass
class BatchResult:
    """What a batch did: items done now, skipped (done before), failed (ref → message)."""

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST


# -- which territories ----------------------------------------------------------------------


def epci_refs(store: Any, region: str | None = None) -> list[str]:
    """Refs of every EPCI of the store, or of those of région ``region`` (INSEE code).

    An EPCI belongs to the région that holds the largest share of its population (the
    ``reg`` of the embedded reference).
    """
    from maillage import reference

    held = set(store.df("SELECT code FROM territory WHERE level = 'epci'")["code"])
    epci = reference.epci()
    if region is not None:
        region = str(region).strip().zfill(2)
        known = set(reference.regions()["code"].astype(str))
        if region not in known:
            raise UnknownTerritory(
                f"no région with code '{region}'. Known codes: {', '.join(sorted(known))}"
            )
        epci = epci[epci["reg"].astype(str) == region]
    return [f"epci:{c}" for c in sorted(epci["code"].astype(str)) if c in held]


# -- manifest ---------------------------------------------------------------------------------


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of a batch folder (empty when absent or unreadable)."""
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {"items": {}}
    data.setdefault("items", {})
    return data


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated_at"] = dt.datetime.now().isoformat(timespec="seconds")
    text = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True)
    atomic_write(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, "utf-8"))


def _is_done(out_dir: Path, entry: dict[str, Any] | None, formats: tuple[str, ...]) -> bool:
    if not entry or entry.get("status") != "done":
        return False
    if not set(formats) <= set(entry.get("formats", [])):
        return False
    return all((out_dir / f).exists() for f in entry.get("files", []))


# -- one item ---------------------------------------------------------------------------------


def make_item(
    store: Any,
    ref: str,
    out_dir: Path,
    formats: tuple[str, ...],
    register: list[Any] | None = None,
) -> list[str]:
    """Sheet and exports of one territory into ``out_dir/<slug>/``; returns relative paths.

    The figures are computed once (``exports.collect``) and shared by the sheet and exports.
    """
    from maillage.delivery.exports import collect, export_bundle

    data = collect(store, ref)
    slug = data.territory.ref.replace(":", "_")
    folder = out_dir / slug
    files: list[Path] = []
    for fmt in ("pdf", "html"):
        if fmt in formats:
            from maillage.delivery.reports.sheets import territory_sheet, write_sheet

            sheet = territory_sheet(store, data.territory, register=register, data=data)
            files.append(write_sheet(sheet, folder / f"{slug}_fiche.{fmt}"))
    exports = tuple(f for f in formats if f in EXPORT_FORMATS)
    if exports:
        files += export_bundle(store, data.territory.ref, folder, exports, data=data)
    return [str(p.relative_to(out_dir)) for p in files]


# worker state: one read-only store and the register, per process
_WORKER: dict[str, Any] = {}


def _init_worker(db_path: str, registry_url: str | None) -> None:
    from maillage.delivery.reports.sheets import load_register
    from maillage.store import Store

    store = Store(db_path, read_only=True)
    # one DuckDB thread per worker: the workers share the cores, they must not fight for them
    store.con.execute("SET threads = 1")
    _WORKER["store"] = store
    _WORKER["register"] = load_register(registry_url)


def _work(ref: str, out_dir: str, formats: tuple[str, ...]) -> tuple[str, list[str], float]:
    t0 = time.perf_counter()
    files = make_item(_WORKER["store"], ref, Path(out_dir), formats, _WORKER["register"])
    return ref, files, time.perf_counter() - t0


# -- the batch --------------------------------------------------------------------------------


def _check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = [f for f in formats if f not in BATCH_FORMATS]
    if unknown or not formats:
        raise ValidationError(
            f"unknown batch format(s) {', '.join(unknown) or '(none)'}; "
            f"use a comma-separated list of {', '.join(BATCH_FORMATS)}"
        )
    return formats


def run_batch(
    db_path: str | Path,
    refs: list[str],
    out_dir: str | Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    workers: int = 1,
    registry_url: str | None = None,
    progress: BatchProgress | None = None,
) -> BatchResult:
    """Produce sheets and exports for ``refs`` into ``out_dir``, resumable (see module doc).

    Parameters
    ----------
    db_path : the observatory database, opened read-only by every worker.
    refs : territory references (e.g. from :func:`epci_refs`).
    formats : among ``pdf, html, csv, xlsx, gpkg``.
    workers : processes; 1 runs in this process.
    registry_url : register of cooperations for the sheets (None: the sheets say it is empty).
    progress : called after each item.
    """
    t0 = time.perf_counter()
    fmts = _check_formats(formats)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the batch folder {out}: {exc.strerror or exc}") from exc
    manifest = read_manifest(out)
    manifest.update(
        {"software": f"maillage {__version__}", "database": str(db_path), "formats": list(fmts)}
    )
    result = BatchResult(out)
    todo = []
    for ref in refs:
        if _is_done(out, manifest["items"].get(ref), fmts):
            result.skipped.append(ref)
        else:
            todo.append(ref)
    _write_manifest(out, manifest)  # fails early on a folder that cannot be written
    total = len(refs)
    finished = len(result.skipped)
    if progress:
        for ref in result.skipped:
            progress(ref, "skipped", finished, total)

    def record(ref: str, files: list[str] | None, seconds: float, error: str | None) -> None:
        nonlocal finished
        finished += 1
        if error is None:
            manifest["items"][ref] = {
                "status": "done", "files": files, "formats": list(fmts),
                "seconds": round(seconds, 3),
            }  # fmt: skip
            result.done.append(ref)
        else:
            manifest["items"][ref] = {"status": "failed", "error": error}
            result.failed[ref] = error
        _write_manifest(out, manifest)
        if progress:
            progress(ref, "done" if error is None else "failed", finished, total)

    if workers <= 1 or len(todo) <= 1:
        _run_here(db_path, todo, out, fmts, registry_url, record)
    else:
        _run_pool(db_path, todo, out, fmts, registry_url, record, workers)
    result.seconds = time.perf_counter() - t0
    return result


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _run_here(db_path, todo, out, fmts, registry_url, record) -> None:
    from maillage.delivery.reports.sheets import load_register
    from maillage.store import Store

    register = load_register(registry_url)
    with Store(db_path, read_only=True) as store:
        for ref in todo:
            t0 = time.perf_counter()
            try:
                files = make_item(store, ref, out, fmts, register)
            except Exception as exc:  # one failure must not stop the batch
                record(ref, None, 0.0, _message(exc))
            else:
                record(ref, files, time.perf_counter() - t0, None)


def _run_pool(db_path, todo, out, fmts, registry_url, record, workers) -> None:
    ctx = mp.get_context("spawn")  # no fork of a process holding DuckDB threads
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(str(db_path), registry_url),
    ) as pool:
        pending: dict[Future, str] = {pool.submit(_work, ref, str(out), fmts): ref for ref in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                ref = pending.pop(fut)
                try:
                    _, files, seconds = fut.result()
                except BrokenProcessPool as exc:
                    record(ref, None, 0.0, f"worker process died: {exc}")
                except Exception as exc:
                    record(ref, None, 0.0, _message(exc))
                else:
                    record(ref, files, seconds, None)
