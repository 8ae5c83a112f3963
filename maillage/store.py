"""The observatory database: one DuckDB file holding the reference, the flows and the import log.

Tables
------
territory(level, code, name, population, type, lon, lat)
    every territory of the reference (communes, EPCI, EPT, départements, régions) and perimeters.
territory_key(level, code, key, alias)
    each name normalised once for search (``maillage.reference.search.search_keys``).
membership(commune, level, code)
    commune → territory for every level (a commune is its own member at level ``commune``;
    it may belong to any number of perimeters).
flow(kind, vintage, status, origin, destination, value, flag, import_id)
    commune-to-commune flows in the reference geography. ``flag`` is NULL for French communes of
    the reference, ``abroad`` or ``unknown`` otherwise (kept, never dropped). ``status`` is
    ``observed`` or ``modelled``.
flow_breakdown(kind, vintage, status, origin, destination, dimension, category, value, import_id)
    breakdowns from INSEE detail files (mode, sex, age group, socio-professional group).
flow_agg(kind, vintage, status, level, origin, destination, value)
    flows aggregated to every supra-communal level, rebuilt after each change of flows or
    perimeters (``refresh_aggregates``).
import_log(...)
    one row per import attempt that changed the store: source, vintage, file, sha256, row counts.

Only this module opens DuckDB files. Writes happen inside a transaction: an import either lands
whole or leaves the store as it was.

Derived results (margins of a level, partner tables held in memory, …) are memoised in the store
with :meth:`Store.memo`: computed once per key and data version, shared by every thread, and
dropped by any write through the store (:attr:`Store.data_version` counts those writes).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from maillage._errors import StoreError
from maillage.settings import Settings

log = logging.getLogger("maillage")

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS territory (
    level VARCHAR NOT NULL, code VARCHAR NOT NULL, name VARCHAR NOT NULL,
    population DOUBLE, type VARCHAR, lon DOUBLE, lat DOUBLE,
    PRIMARY KEY (level, code)
);
CREATE TABLE IF NOT EXISTS territory_key (
    level VARCHAR NOT NULL, code VARCHAR NOT NULL, key VARCHAR NOT NULL, alias VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS membership (
    commune VARCHAR NOT NULL, level VARCHAR NOT NULL, code VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS flow (
    kind VARCHAR NOT NULL, vintage INTEGER NOT NULL, status VARCHAR NOT NULL,
    origin VARCHAR NOT NULL, destination VARCHAR NOT NULL, value DOUBLE NOT NULL,
    flag VARCHAR, import_id INTEGER
);
CREATE TABLE IF NOT EXISTS flow_breakdown (
    kind VARCHAR NOT NULL, vintage INTEGER NOT NULL, status VARCHAR NOT NULL,
    origin VARCHAR NOT NULL, destination VARCHAR NOT NULL,
    dimension VARCHAR NOT NULL, category VARCHAR NOT NULL, value DOUBLE NOT NULL,
    import_id INTEGER
);
CREATE TABLE IF NOT EXISTS flow_agg (
    kind VARCHAR NOT NULL, vintage INTEGER NOT NULL, status VARCHAR NOT NULL,
    level VARCHAR NOT NULL, origin VARCHAR NOT NULL, destination VARCHAR NOT NULL,
    value DOUBLE NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS import_seq START 1;
CREATE TABLE IF NOT EXISTS import_log (
    id INTEGER PRIMARY KEY DEFAULT nextval('import_seq'),
    source VARCHAR, kind VARCHAR, vintage INTEGER, status VARCHAR,
    file_name VARCHAR, member VARCHAR, sha256 VARCHAR,
    rows_read BIGINT, rows_kept BIGINT, rows_mapped BIGINT, rows_abroad BIGINT,
    rows_unknown BIGINT, total_value DOUBLE, threshold DOUBLE, warnings VARCHAR,
    started_at TIMESTAMP, seconds DOUBLE
);
"""

#: Partitioning levels for which flows are pre-aggregated (perimeters may overlap: not here).
AGG_LEVELS = ("epci", "ept", "departement", "region")

_MISSING = object()


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    # never reach the network for extensions: this software must run offline
    with contextlib.suppress(duckdb.Error):
        con.execute("SET autoinstall_known_extensions=false")
        con.execute("SET autoload_known_extensions=false")


class Store:
    """The observatory database (a DuckDB file).

    Parameters
    ----------
    path : the DuckDB file; created with its schema when absent (unless ``read_only``).
    read_only : open without write access (several readers may share the file).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._memo: dict[tuple[Any, ...], Any] = {}  # derived results, dropped on writes
        self._version = 0  # bumped by every write through this store
        self._memo_lock = threading.Lock()  # guards _memo, _version and _key_locks
        self._key_locks: dict[tuple[Any, ...], threading.RLock] = {}
        if read_only and not self.path.exists():
            raise StoreError(
                f"no observatory database at {self.path}. Run `maillage build` first "
                "(or set MAILLAGE_HOME to the folder that holds it)."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise StoreError(
                f"cannot open the observatory database {self.path}: {exc}. "
                "Another maillage process may be writing to it; wait for it to finish."
            ) from exc
        _configure(self.con)
        if not read_only:
            self.con.execute(_DDL)
            self.con.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )

    @classmethod
    def open(cls, settings: Settings | None = None, *, read_only: bool = False) -> Store:
        """Open the store named by the settings (``MAILLAGE_HOME`` / ``MAILLAGE_DATABASE``)."""
        settings = settings or Settings()
        return cls(settings.database_path, read_only=read_only)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generic helpers -------------------------------------------------------------

    def df(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query and return a DataFrame (each call uses its own cursor: thread-safe)."""
        cur = self.con.cursor()
        try:
            return cur.execute(sql, params or []).df()
        finally:
            cur.close()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        cur = self.con.cursor()
        try:
            row = cur.execute(sql, params or []).fetchone()
        finally:
            cur.close()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing block: commit on success, roll back on any exception."""
        self.con.execute("BEGIN TRANSACTION")
        self._forget()
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._forget()

    @property
    def data_version(self) -> int:
        """Number of writes through this store since it was opened (memoised results belong
        to one version)."""
        return self._version

    def _forget(self) -> None:
        with self._memo_lock:
            self._version += 1
            self._memo.clear()
            self._key_locks.clear()

    def peek(self, key: tuple[Any, ...]) -> Any:
        """The memoised value of ``key``, or None when it is not computed (never computes)."""
        return self._memo.get(key)

    def memo(self, key: tuple[Any, ...], compute: Any) -> Any:
        """``compute()`` once per key until the next write through this store.

        Thread-safe: concurrent callers of one key wait for the first one instead of computing
        it again, and a result computed while a write landed is returned but not kept (it may
        describe the data before the write).
        """
        value = self._memo.get(key, _MISSING)
        if value is not _MISSING:
            return value
        with self._memo_lock:
            lock = self._key_locks.setdefault(key, threading.RLock())
        with lock:
            value = self._memo.get(key, _MISSING)
            if value is not _MISSING:
                return value
            version = self._version
            value = compute()
            with self._memo_lock:
                if version == self._version:
                    self._memo[key] = value
            return value

    def get_meta(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM meta WHERE key = ?", [key])

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    # -- what the store holds -----------------------------------------------------------

    def is_built(self) -> bool:
        """True when the reference has been loaded (``maillage build`` has run).

        A positive answer is memoised (checked on every API request); a negative one never is.
        """
        if self.known_built():
            return True
        try:
            built = bool(self.scalar("SELECT count(*) FROM territory"))
        except duckdb.Error:
            return False
        if built:
            self.memo(("is_built",), lambda: True)
        return built

    def known_built(self) -> bool:
        """True when :meth:`is_built` said so since the last write (answers without a query)."""
        return bool(self.peek(("is_built",)))

    def require_built(self) -> None:
        if not self.is_built():
            raise StoreError(
                f"the observatory database {self.path} holds no territorial reference yet. "
                "Run `maillage build` first."
            )

    def available(self) -> pd.DataFrame:
        """Flow kinds held, by vintage and status, with their source and row count."""
        return self.df(
            """
            SELECT f.kind, f.vintage, f.status,
                   coalesce(any_value(l.source), 'maillage default model') AS source,
                   count(*) AS rows, sum(f.value) AS total
            FROM flow f LEFT JOIN import_log l ON l.id = f.import_id
            GROUP BY ALL ORDER BY f.kind, f.vintage DESC, f.status
            """
        )

    def imports(self) -> pd.DataFrame:
        """The import log, newest first."""
        return self.df("SELECT * FROM import_log ORDER BY id DESC")

    def flow_sets(self) -> pd.DataFrame:
        """(kind, vintage, status) sets held, cached until the next write through the store."""
        return self.memo(
            ("flow_sets",),
            lambda: self.df(
                "SELECT kind, vintage, status, count(*) AS rows FROM flow GROUP BY ALL"
            ),
        )

    def current(self, kind: str, vintage: int | None = None) -> tuple[int, str] | None:
        """The (vintage, status) used for ``kind``: observed beats modelled, newest first
        (memoised until the next write through the store)."""
        return self.memo(("current", kind, vintage), lambda: self._current(kind, vintage))

    def _current(self, kind: str, vintage: int | None) -> tuple[int, str] | None:
        sets = self.flow_sets()
        sets = sets[sets["kind"] == kind]
        if vintage is not None:
            sets = sets[sets["vintage"] == vintage]
        if sets.empty:
            return None
        best = (
            sets.assign(obs=sets["status"] == "observed")
            .sort_values(["obs", "vintage"], ascending=False)
            .iloc[0]
        )
        return int(best["vintage"]), str(best["status"])

    def kinds(self) -> list[str]:
        """Flow kinds held."""
        return sorted(set(self.flow_sets()["kind"]))

    # -- derived tables ---------------------------------------------------------------------

    def refresh_aggregates(self, kind: str | None = None) -> None:
        self._forget()
        self._refresh_aggregates(kind)

    def _refresh_aggregates(self, kind: str | None = None) -> None:
        """Rebuild ``flow_agg``: flows summed to every partitioning supra-communal level.

        A destination outside France keeps a pseudo-code (``!abroad``, ``!unknown``) and a
        commune outside every unit of the level (e.g. outside any EPT) gets ``!none``, so that
        totals are conserved at every level. Perimeters may overlap, so they are not
        pre-aggregated: their indicators are computed from ``flow`` through ``membership``.
        """
        where = "WHERE f.kind = ?" if kind else ""
        params: list[Any] = [kind] if kind else []
        if kind:
            self.con.execute("DELETE FROM flow_agg WHERE kind = ?", params)
        else:
            self.con.execute("DELETE FROM flow_agg")
        # one pass joins every flow to all its levels at once (a pivoted membership), then
        # each level is a plain GROUP BY of that table
        pivot = ", ".join(f"max(code) FILTER (WHERE level = '{lv}') AS {lv}" for lv in AGG_LEVELS)
        ends = ", ".join(f"po.{lv} AS o_{lv}, pd.{lv} AS d_{lv}" for lv in AGG_LEVELS)
        self.con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _flow_levels AS
            WITH piv AS (SELECT commune, {pivot} FROM membership
                         WHERE level IN {AGG_LEVELS} GROUP BY commune)
            SELECT f.kind, f.vintage, f.status, f.value,
                   '!' || coalesce(f.flag, 'none') AS pseudo, {ends}
            FROM flow f
            LEFT JOIN piv po ON po.commune = f.origin
            LEFT JOIN piv pd ON pd.commune = f.destination
            {where}
            """,
            params,
        )
        for level in AGG_LEVELS:
            self.con.execute(
                f"""
                INSERT INTO flow_agg
                SELECT kind, vintage, status, '{level}' AS level,
                       coalesce(o_{level}, pseudo) AS origin,
                       coalesce(d_{level}, pseudo) AS destination,
                       sum(value) AS value
                FROM _flow_levels
                GROUP BY ALL
                """
            )
        self.con.execute("DROP TABLE IF EXISTS _flow_levels")
        log.info("aggregated flows to levels %s", ", ".join(AGG_LEVELS))
