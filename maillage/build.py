"""Building and feeding the observatory: load the reference, the default model and imports.

``build`` loads the embedded territorial reference and perimeters into the store and, when no
observed commuting flows are held, the embedded default: commuting flows estimated by a
production-constrained gravity model (``maillage.models.default``), labelled ``modelled``.

``import_flows`` reads an INSEE flow file exactly as published (``maillage.sources``), maps old
commune codes and arrondissements to the reference (``maillage.reference.history``), flags flows
abroad and unknown codes (kept and counted, never dropped), and replaces the flows of that kind
and vintage in one transaction: a failed import leaves the store as it was, and importing the
same file twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from maillage._errors import SourceError
from maillage.store import Store

log = logging.getLogger("maillage")

#: Vintage attached to the embedded default model: the populations légales it rests on.
DEFAULT_MODEL_VINTAGE = 2023

Progress = Callable[[str, float], None]


def _noop(_: str, __: float) -> None:
    return None


# -- reference ------------------------------------------------------------------------------


def _territory_frame() -> pd.DataFrame:
    from maillage import reference

    t = reference.territories()
    return t[["level", "code", "name", "population", "type", "lon", "lat"]]


def _membership_frame() -> pd.DataFrame:
    from maillage import reference

    m = reference.memberships()[["commune", "level", "code"]]
    ident = reference.communes()[["code"]].assign(commune=lambda d: d["code"], level="commune")
    return pd.concat(
        [m[m["level"] != "commune"], ident[["commune", "level", "code"]]], ignore_index=True
    ).drop_duplicates()


def _perimeter_frames(extra_paths: list[Path] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Perimeters as territories and memberships (shipped ones plus user files)."""
    from maillage.reference import perimeters as per

    perims = per.load_perimeters(extra_paths=tuple(extra_paths or ()))
    per.validate(perims)
    mem = per.memberships_for_perimeters(perims)
    perims = list(perims.values())
    communes = _territory_frame()
    communes = communes[communes["level"] == "commune"].set_index("code")
    rows = []
    for p in perims:
        members = mem.loc[mem["code"] == p.slug, "commune"]
        sub = communes.reindex(members.tolist())
        pop = float(sub["population"].fillna(0).sum())
        w = sub["population"].fillna(0).to_numpy()
        lon = float(np.average(sub["lon"], weights=w)) if w.sum() > 0 else float(sub["lon"].mean())
        lat = float(np.average(sub["lat"], weights=w)) if w.sum() > 0 else float(sub["lat"].mean())
        rows.append(
            {
                "level": "perimeter",
                "code": p.slug,
                "name": p.name,
                "population": pop,
                "type": getattr(p, "kind", None),
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(
        rows, columns=["level", "code", "name", "population", "type", "lon", "lat"]
    ), mem[["commune", "level", "code"]]


def _replace_territories(
    store: Store, terr: pd.DataFrame, mem: pd.DataFrame, *, perimeters_only: bool
) -> None:
    from maillage.reference.search import search_keys

    where = " WHERE level = 'perimeter'" if perimeters_only else ""
    keys = terr[["level", "code"]].join(search_keys(terr["name"], terr["level"]))
    with store.transaction() as con:
        con.execute("DELETE FROM territory" + where)
        con.execute("DELETE FROM territory_key" + where)
        con.execute("DELETE FROM membership" + where)
        con.register("_terr", terr)
        con.register("_keys", keys)
        con.register("_mem", mem)
        con.execute(
            "INSERT INTO territory SELECT level, code, name, population, type, lon, lat FROM _terr"
        )
        con.execute("INSERT INTO territory_key SELECT level, code, key, alias FROM _keys")
        con.execute("INSERT INTO membership SELECT commune, level, code FROM _mem")
        for name in ("_terr", "_keys", "_mem"):
            con.unregister(name)
        if not perimeters_only:
            store.set_meta("reference_loaded_at", dt.datetime.now().isoformat(timespec="seconds"))


def user_perimeter_files(home: Path) -> list[Path]:
    """The user's perimeter files, kept in ``<home>/perimeters`` by ``maillage perimeter add``."""
    folder = home / "perimeters"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".csv"))


def load_reference(store: Store, *, extra_perimeters: list[Path] | None = None) -> None:
    """(Re)load territories and memberships, including perimeters, in one transaction."""
    pt, pm = _perimeter_frames(extra_perimeters)
    terr = pd.concat([_territory_frame(), pt], ignore_index=True)
    mem = pd.concat([_membership_frame(), pm], ignore_index=True)
    _replace_territories(store, terr, mem, perimeters_only=False)
    log.info("loaded %s territories and %s memberships", f"{len(terr):,}", f"{len(mem):,}")


def reload_perimeters(store: Store, extra_paths: list[Path] | None = None) -> int:
    """Replace the perimeters of the store (shipped + user files); nothing else changes."""
    pt, pm = _perimeter_frames(extra_paths)
    _replace_territories(store, pt, pm, perimeters_only=True)
    return len(pt)


# -- embedded default -------------------------------------------------------------------------


def load_default_model(store: Store) -> int:
    """Estimate commuting flows for every commune and store them as ``modelled``.

    Returns the number of commune pairs stored. See ``maillage.models.default``.
    """
    from maillage import reference
    from maillage.models.default import DEFAULT_SELF_WEIGHT, estimate_commute

    com = reference.communes()
    com = com[com["type"] == "COM"].reset_index(drop=True) if "type" in com else com
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        i, j, v = estimate_commute(
            com["lon"].to_numpy(float),
            com["lat"].to_numpy(float),
            com["population"].fillna(0).to_numpy(float),
            com["area_km2"].fillna(1.0).to_numpy(float),
            self_weight=DEFAULT_SELF_WEIGHT,
        )
    for w in caught:  # e.g. the few communes "mortes pour la France" with no inhabitant
        log.info("default model: %s", w.message)
    codes = com["code"].to_numpy()
    table = pa.table(
        {
            "origin": pa.array(codes[i], pa.string()),
            "destination": pa.array(codes[j], pa.string()),
            "value": pa.array(np.asarray(v, dtype="float64")),
        }
    )
    with store.transaction() as con:
        con.execute("DELETE FROM flow WHERE kind = 'commute' AND status = 'modelled'")
        con.register("_model", table)
        con.execute(
            "INSERT INTO flow SELECT 'commute', ?, 'modelled', origin, destination, value, "
            "NULL, NULL FROM _model",
            [DEFAULT_MODEL_VINTAGE],
        )
        con.unregister("_model")
        store.refresh_aggregates("commute")
    log.info("stored %s modelled commuting pairs", f"{len(table):,}")
    return len(table)


def build(
    store: Store,
    *,
    force: bool = False,
    progress: Progress = _noop,
    with_model: bool = True,
    extra_perimeters: list[Path] | None = None,
) -> dict[str, Any]:
    """Build the observatory: the reference, perimeters and (if needed) the default model."""
    t0 = time.perf_counter()
    done: dict[str, Any] = {}
    if force or not store.is_built():
        progress("Chargement du référentiel territorial", 0.05)
        load_reference(store, extra_perimeters=extra_perimeters)
        done["reference"] = True
    has_observed = bool(
        store.scalar("SELECT count(*) FROM flow WHERE kind = 'commute' AND status = 'observed'")
    )
    has_model = bool(
        store.scalar("SELECT count(*) FROM flow WHERE kind = 'commute' AND status = 'modelled'")
    )
    if with_model and not has_observed and (force or not has_model):
        progress("Estimation des navettes par le modèle gravitaire", 0.3)
        done["modelled_pairs"] = load_default_model(store)
    progress("Terminé", 1.0)
    done["seconds"] = time.perf_counter() - t0
    return done


# -- imports ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: counts of rows read, kept, mapped, abroad, unknown."""

    source: str
    kind: str
    vintage: int
    file: str
    sha256: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_mapped: int = 0
    rows_abroad: int = 0
    rows_unknown: int = 0
    total_value: float = 0.0
    threshold: float | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: bool = False
    unknown_codes: list[str] = field(default_factory=list)
    import_id: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _code_mapping(codes: pd.Series) -> pd.DataFrame:
    """old → (code, ratio, status) for every distinct code, via the reference history."""
    from maillage.reference.history import harmonise_codes

    uniq = pd.Series(pd.unique(codes.astype(str)), name="input")
    mapped = harmonise_codes(uniq).rename(columns={"input_code": "input"})
    # places abroad and unknown codes keep their own code (e.g. a Swiss commune) and a flag
    keep_own = mapped["status"].isin(["abroad", "unknown"])
    mapped.loc[keep_own, "code"] = mapped.loc[keep_own, "input"]
    return mapped[["input", "code", "ratio", "status"]]


def _already_imported(store: Store, sha256: str, kind: str, vintage: int) -> int | None:
    row = store.scalar(
        """SELECT l.id FROM import_log l WHERE l.sha256 = ? AND l.kind = ? AND l.vintage = ?
           AND l.status = 'ok' AND EXISTS (SELECT 1 FROM flow f WHERE f.import_id = l.id)
           ORDER BY l.id DESC LIMIT 1""",
        [sha256, kind, vintage],
    )
    return None if row is None else int(row)


def import_flows(
    store: Store,
    path: str | Path,
    *,
    source: str = "auto",
    kind: str | None = None,
    vintage: int | None = None,
    progress: Progress = _noop,
) -> ImportReport:
    """Import an INSEE flow base or detail file into the store (all-or-nothing, idempotent)."""
    store.require_built()
    progress("Lecture du fichier", 0.05)
    is_detail = source.startswith("detail") or (source == "auto" and _looks_like_detail(Path(path)))
    breakdown = None
    if is_detail:
        from maillage.sources.detail import read_detail

        read: Any = read_detail(path, kind=kind, vintage=vintage)
        breakdown = getattr(read, "breakdown", None)
    else:
        from maillage.sources.flux import read_flux

        read = read_flux(path, kind=kind, vintage=vintage)
    if read.vintage is None:
        raise SourceError(
            "the census year cannot be read from this file's name or header; "
            "give it with --vintage YYYY",
            path=str(path),
        )
    return store_flows(
        store,
        read.table,
        kind=read.kind,
        vintage=int(read.vintage),
        source=read.source,
        file_name=Path(str(path)).name,
        sha256=read.sha256,
        rows_read=int(read.rows_read),
        breakdown=breakdown,
        member=getattr(read, "member", None),
        threshold=getattr(read, "threshold", None),
        warnings=list(read.warnings),
        progress=progress,
    )


def store_flows(
    store: Store,
    table: pa.Table,
    *,
    kind: str,
    vintage: int,
    source: str,
    file_name: str,
    sha256: str,
    rows_read: int,
    status: str = "observed",
    breakdown: pa.Table | None = None,
    member: str | None = None,
    threshold: float | None = None,
    warnings: list[str] | None = None,
    progress: Progress = _noop,
) -> ImportReport:
    """Store commune flows read from any source, in one transaction; the common import path.

    ``table`` has columns origin, destination (commune codes of any vintage, foreign codes)
    and value; ``breakdown`` adds dimension and category. Codes are mapped to the reference,
    abroad and unknown ones flagged; the flows of (kind, vintage) — and, for observed flows,
    the modelled flows of that kind — are replaced. A file already imported (same sha256)
    changes nothing.
    """
    t0 = time.perf_counter()
    report = ImportReport(
        source=source,
        kind=kind,
        vintage=int(vintage),
        file=file_name,
        sha256=sha256,
        rows_read=int(rows_read),
        threshold=threshold,
        warnings=list(warnings or []),
    )
    existing = _already_imported(store, sha256, kind, int(vintage))
    if existing is not None:
        report.skipped = True
        report.import_id = existing
        report.warnings.append("this file was already imported: nothing changed")
        return report
    progress("Rattachement des codes communes au référentiel", 0.4)
    codes = pc.unique(
        pa.concat_arrays(
            [
                table.column("origin").combine_chunks().cast(pa.string()),
                table.column("destination").combine_chunks().cast(pa.string()),
            ]
        )
    )
    mapping = _code_mapping(pd.Series(codes.to_pylist(), dtype="str"))
    progress("Écriture dans l'observatoire", 0.7)
    started = dt.datetime.now()
    with store.transaction() as con:
        import_id = int(
            con.execute(
                """INSERT INTO import_log (source, kind, vintage, status, file_name, member,
                   sha256, rows_read, threshold, started_at)
                   VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?) RETURNING id""",
                [
                    source,
                    kind,
                    int(vintage),
                    file_name,
                    member,
                    sha256,
                    int(rows_read),
                    threshold,
                    started,
                ],
            ).fetchone()[0]
        )
        con.register("_raw", table)
        con.register("_map", mapping)
        _count_mapping(con, report, mapping)
        replaced = "(vintage = ? OR status = 'modelled')" if status == "observed" else "vintage = ?"
        con.execute(f"DELETE FROM flow WHERE kind = ? AND {replaced}", [kind, int(vintage)])
        con.execute(
            "DELETE FROM flow_breakdown WHERE kind = ? AND vintage = ?", [kind, int(vintage)]
        )
        con.execute(_INSERT_FLOWS, [kind, int(vintage), status, import_id])
        if breakdown is not None and len(breakdown):
            con.register("_bd", breakdown)
            con.execute(_INSERT_BREAKDOWN, [kind, int(vintage), status, import_id])
            con.unregister("_bd")
        con.unregister("_raw")
        con.unregister("_map")
        kept = con.execute(
            "SELECT count(*), sum(value) FROM flow WHERE import_id = ?", [import_id]
        ).fetchone()
        report.rows_kept = int(kept[0])
        report.total_value = float(kept[1] or 0.0)
        report.seconds = time.perf_counter() - t0
        con.execute(
            """UPDATE import_log SET rows_kept = ?, rows_mapped = ?, rows_abroad = ?,
               rows_unknown = ?, total_value = ?, seconds = ?, warnings = ? WHERE id = ?""",
            [
                report.rows_kept,
                report.rows_mapped,
                report.rows_abroad,
                report.rows_unknown,
                report.total_value,
                report.seconds,
                "\n".join(report.warnings),
                import_id,
            ],
        )
        progress("Agrégation aux EPCI, départements, régions", 0.85)
        store.refresh_aggregates(kind)
    report.import_id = import_id
    progress("Terminé", 1.0)
    return report


_MAPPED = """
  SELECT coalesce(mo.code, r.origin) AS o, coalesce(md.code, r.destination) AS d{extra},
         r.value * coalesce(mo.ratio, 1.0) * coalesce(md.ratio, 1.0) AS v,
         CASE WHEN mo.status IN ('abroad', 'unknown') THEN mo.status
              WHEN md.status IN ('abroad', 'unknown') THEN md.status END AS flag
  FROM {src} r
  LEFT JOIN _map mo ON mo.input = r.origin
  LEFT JOIN _map md ON md.input = r.destination
"""

# codes mapped to the same reference commune (arrondissements, merged communes) are summed
_INSERT_FLOWS = (
    "INSERT INTO flow (kind, vintage, status, origin, destination, value, flag, import_id) "
    "SELECT ?, ?, ?, o, d, sum(v), max(flag), ? FROM ("
    + _MAPPED.format(extra="", src="_raw")
    + ") GROUP BY o, d"
)
_INSERT_BREAKDOWN = (
    "INSERT INTO flow_breakdown (kind, vintage, status, origin, destination, dimension, "
    "category, value, import_id) "
    "SELECT ?, ?, ?, o, d, dimension, category, sum(v), ? FROM ("
    + _MAPPED.format(extra=", r.dimension, r.category", src="_bd")
    + ") GROUP BY o, d, dimension, category"
)


def _count_mapping(con: Any, report: ImportReport, mapping: pd.DataFrame) -> None:
    """Count rows whose ends were mapped, are abroad or unknown (a row counts once)."""
    row = con.execute(
        """SELECT count(*) FILTER (WHERE mo.status = 'mapped' OR md.status = 'mapped'),
                  count(*) FILTER (WHERE mo.status = 'abroad' OR md.status = 'abroad'),
                  count(*) FILTER (WHERE mo.status = 'unknown' OR md.status = 'unknown')
           FROM _raw r LEFT JOIN _map mo ON mo.input = r.origin
           LEFT JOIN _map md ON md.input = r.destination"""
    ).fetchone()
    report.rows_mapped, report.rows_abroad, report.rows_unknown = (int(x) for x in row)
    unknown = mapping.loc[mapping["status"] == "unknown", "input"].astype(str)
    report.unknown_codes = sorted(set(unknown))[:50]
    if report.rows_unknown:
        report.warnings.append(
            f"{report.rows_unknown} rows carry commune codes unknown to the reference "
            f"(e.g. {', '.join(report.unknown_codes[:5])}); they are kept and flagged 'unknown'"
        )


def _looks_like_detail(path: Path) -> bool:
    try:
        from maillage.sources import sniff

        return str(sniff(path)).startswith("detail")
    except (ImportError, SourceError, OSError):
        return False
