"""Naming territories: resolve ``LEVEL:CODE`` references and names, search the reference.

A territory is named by ``com:29019``, ``epci:242900314``, ``ept:200057867``, ``dep:29``,
``reg:53``, ``per:<slug>``, by a bare code (``29019`` is a commune, a 9-digit SIREN an EPCI) or by
its name. Names are compared as :func:`maillage.reference.search.normalise` writes them (accents,
case and punctuation ignored, "St" for "Saint", "Communauté de communes" for "CC"; an EPCI also
answers to its name without its legal form). An exact match wins when it is the only one;
several exact matches ("Paris": commune and département) raise :class:`AmbiguousTerritory` with
the candidates.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from maillage._errors import AmbiguousTerritory, UnknownTerritory
from maillage._schema import LEVEL_PREFIX, PREFIX_OF_LEVEL
from maillage.reference.search import normalise

if TYPE_CHECKING:
    from maillage.store import Store

LEVEL_LABELS_FR = {
    "commune": "Commune",
    "epci": "EPCI",
    "ept": "Établissement public territorial",
    "departement": "Département",
    "region": "Région",
    "perimeter": "Périmètre",
}


@dataclass(frozen=True)
class Territory:
    """One territory of the reference or one perimeter."""

    level: str
    code: str
    name: str
    population: float | None
    type: str | None
    lon: float | None
    lat: float | None

    @property
    def ref(self) -> str:
        """The canonical ``prefix:code`` reference, e.g. ``epci:242900314``."""
        return f"{PREFIX_OF_LEVEL[self.level]}:{self.code}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        d["level_label"] = LEVEL_LABELS_FR.get(self.level, self.level)
        return d


# names are normalised once, when the reference is loaded (table ``territory_key``), with the
# same function that normalises the query: maillage.reference.search.normalise
_KEYED = "territory t LEFT JOIN territory_key k USING (level, code)"


def _row_to_territory(row: pd.Series) -> Territory:
    def num(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    return Territory(
        level=str(row["level"]),
        code=str(row["code"]),
        name=str(row["name"]),
        population=num(row.get("population")),
        type=None if pd.isna(row.get("type")) else str(row.get("type")),
        lon=num(row.get("lon")),
        lat=num(row.get("lat")),
    )


def get(store: Store, level: str, code: str) -> Territory:
    """The territory ``(level, code)``; raises :class:`UnknownTerritory` when absent."""
    df = store.df("SELECT * FROM territory WHERE level = ? AND code = ?", [level, code])
    if df.empty:
        raise UnknownTerritory(
            f"no {LEVEL_LABELS_FR.get(level, level).lower()} with code '{code}' in the "
            f"reference. Search it with `maillage search NAME`."
        )
    return _row_to_territory(df.iloc[0])


def _parse_prefixed(ref: str) -> tuple[str, str] | None:
    m = re.fullmatch(r"\s*([a-zA-Z]+)\s*:\s*(\S.*?)\s*", ref)
    if not m:
        return None
    prefix = m.group(1).lower()
    level = LEVEL_PREFIX.get(prefix) or (prefix if prefix in PREFIX_OF_LEVEL else None)
    if level is None:
        known = ", ".join(f"{p}:" for p in LEVEL_PREFIX)
        raise UnknownTerritory(f"unknown level prefix '{prefix}:' in '{ref}'. Use one of {known}")
    code = m.group(2)
    if level in ("commune", "departement") and code.isdigit() and len(code) < 5:
        code = code.zfill(2 if level == "departement" else 5)
    return level, code.upper() if level != "perimeter" else code


def resolve(store: Store, ref: str) -> Territory:
    """Resolve a ``LEVEL:CODE`` reference, a bare code or a name to one territory."""
    if not ref or not ref.strip():
        raise UnknownTerritory("empty territory reference: give a name or LEVEL:CODE")
    parsed = _parse_prefixed(ref)
    if parsed:
        return get(store, *parsed)
    bare = ref.strip()
    if re.fullmatch(r"\d{9}", bare):
        hits = store.df(
            "SELECT * FROM territory WHERE code = ? AND level IN ('epci','ept')", [bare]
        )
        if not hits.empty:
            return _row_to_territory(hits.iloc[0])
    if re.fullmatch(r"(\d{5}|2[AB]\d{3})", bare, flags=re.I):
        return get(store, "commune", bare.upper())
    return _resolve_name(store, bare)


def _resolve_name(store: Store, name: str) -> Territory:
    key = normalise(name)
    exact = store.df(
        f"SELECT t.* FROM {_KEYED} WHERE k.key = ? OR k.alias = ? "
        "ORDER BY t.population DESC NULLS LAST",
        [key, key],
    )
    if len(exact) == 1:
        return _row_to_territory(exact.iloc[0])
    if len(exact) > 1:
        raise AmbiguousTerritory(
            f"'{name}' names {len(exact)} territories; say which with LEVEL:CODE",
            [f"{PREFIX_OF_LEVEL[r.level]}:{r.code} {r.name}" for r in exact.itertuples()],
        )
    hits = search(store, name, limit=6)
    if hits.empty:
        raise UnknownTerritory(
            f"no territory named '{name}'. Check the spelling or search with `maillage search`."
        )
    if len(hits) == 1:
        return get(store, hits.iloc[0]["level"], hits.iloc[0]["code"])
    raise AmbiguousTerritory(
        f"'{name}' is not an exact name; did you mean one of these? (use LEVEL:CODE)",
        [f"{r.ref} {r.name}" for r in hits.itertuples()],
    )


def search(
    store: Store, query: str, *, levels: list[str] | None = None, limit: int = 10
) -> pd.DataFrame:
    """Territories whose name or code matches ``query`` (accent- and case-insensitive).

    Ranking: exact code, exact name, name prefix, word prefix, substring; then larger
    population first. Returns columns ref, level, code, name, population, type, rank.
    """
    key = normalise(query)
    columns = ["ref", "level", "code", "name", "population", "type", "rank"]
    if not key:
        return pd.DataFrame(columns=columns)
    params: list[Any] = [query.strip().upper()] + [
        key,
        key + "%",
        "% " + key + "%",
        "%" + key + "%",
    ] * 2
    level_filter = ""
    if levels:
        level_filter = "AND level IN (" + ",".join("?" for _ in levels) + ")"
        params += list(levels)
    params.append(int(limit))
    df = store.df(
        f"""
        WITH r AS (
            SELECT level, code, name, population, type,
                   CASE WHEN upper(code) = ? THEN 0 ELSE least(
                       CASE WHEN k.key = ? THEN 1 WHEN k.key LIKE ? THEN 2
                            WHEN k.key LIKE ? THEN 3 WHEN k.key LIKE ? THEN 4 END,
                       CASE WHEN k.alias = '' THEN NULL
                            WHEN k.alias = ? THEN 1 WHEN k.alias LIKE ? THEN 2
                            WHEN k.alias LIKE ? THEN 3 WHEN k.alias LIKE ? THEN 4 END)
                   END AS rank
            FROM {_KEYED})
        SELECT * FROM r WHERE rank IS NOT NULL {level_filter}
        ORDER BY rank, population DESC NULLS LAST, name LIMIT ?
        """,
        params,
    )
    df.insert(0, "ref", [f"{PREFIX_OF_LEVEL[lv]}:{c}" for lv, c in zip(df.level, df.code)])
    return df[columns].reset_index(drop=True)


def communes_of(store: Store, territory: Territory) -> list[str]:
    """Commune codes that make up a territory (through ``membership``)."""
    df = store.df(
        "SELECT commune FROM membership WHERE level = ? AND code = ? ORDER BY commune",
        [territory.level, territory.code],
    )
    return df["commune"].tolist()
