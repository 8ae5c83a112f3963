"""Interdependency indicators, defined once, used by the CLI, the API, the web and the reports.

For a territory P (commune, EPCI, EPT, département, région or perimeter) and a flow kind, with
F_AB the flow from A to B (residence → work for commuting):

=========================  ==========================================================
internal                   F_PP (stayers: live and work in P)
outflow                    Σ_{B≠P} F_PB (leave P; includes destinations abroad)
inflow                     Σ_{A≠P} F_AP
origin_total               F_PP + outflow (commute: employed residents, R_P)
destination_total          F_PP + inflow (commute: jobs filled, E_P)
net_balance                inflow − outflow = E_P − R_P
self_containment           F_PP / R_P (supply-side; share of residents working in P)
destination_containment    F_PP / E_P (demand-side; share of P's jobs held by residents)
concentration              100 · E_P / R_P (INSEE's indicateur de concentration d'emploi)
=========================  ==========================================================

Each indicator is compared with its stratum (same level, same type for EPCI, same population
class): count, mean, median, quartiles and P's rank (1 = highest value). Values computed from
modelled flows are labelled ``modelled`` wherever they are shown.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage._errors import StoreError
from maillage._schema import KIND_LABELS_FR
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from maillage.store import Store

PARTITION_LEVELS = ("epci", "ept", "departement", "region")

#: INSEE: counts under 200 are to be used with caution, above 500 they are reliable.
FRAGILE_BELOW = 200.0
RELIABLE_FROM = 500.0


@dataclass(frozen=True)
class Indicator:
    """Description of one indicator: its name, unit and French labels per flow kind."""

    name: str
    unit: str
    formula: str
    labels: dict[str, str]

    def label(self, kind: str) -> str:
        return self.labels.get(kind, self.labels["default"])


INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "origin_total",
        "persons",
        "F_PP + Σ_{B≠P} F_PB",
        {
            "default": "Total au départ",
            "commute": "Actifs occupés résidents",
            "school": "Élèves et étudiants résidents",
            "residential": "Résidents un an auparavant",
        },
    ),
    Indicator(
        "destination_total",
        "persons",
        "F_PP + Σ_{A≠P} F_AP",
        {
            "default": "Total à l'arrivée",
            "commute": "Emplois occupés (lieu de travail)",
            "school": "Élèves et étudiants scolarisés",
            "residential": "Résidents actuels (1 an ou plus)",
        },
    ),
    Indicator(
        "internal",
        "persons",
        "F_PP",
        {
            "default": "Flux interne",
            "commute": "Actifs résidant et travaillant sur place",
            "school": "Élèves scolarisés sur place",
            "residential": "Résidents stables",
        },
    ),
    Indicator(
        "outflow",
        "persons",
        "Σ_{B≠P} F_PB",
        {
            "default": "Flux sortants",
            "commute": "Actifs sortants",
            "school": "Élèves sortants",
            "residential": "Départs",
        },
    ),
    Indicator(
        "inflow",
        "persons",
        "Σ_{A≠P} F_AP",
        {
            "default": "Flux entrants",
            "commute": "Actifs entrants",
            "school": "Élèves entrants",
            "residential": "Arrivées",
        },
    ),
    Indicator(
        "net_balance",
        "persons",
        "inflow − outflow",
        {
            "default": "Solde (entrants − sortants)",
            "residential": "Solde migratoire interne",
        },
    ),
    Indicator(
        "self_containment",
        "share",
        "F_PP / origin_total",
        {
            "default": "Part des résidents restant sur place",
            "commute": "Part des actifs travaillant sur place",
            "school": "Part des élèves scolarisés sur place",
            "residential": "Part des résidents restés sur place",
        },
    ),
    Indicator(
        "destination_containment",
        "share",
        "F_PP / destination_total",
        {
            "default": "Part des arrivées venant du territoire",
            "commute": "Part des emplois occupés par des résidents",
            "school": "Part des élèves scolarisés résidant sur place",
            "residential": "Part des résidents déjà présents un an avant",
        },
    ),
    Indicator(
        "concentration",
        "index",
        "100 · destination_total / origin_total",
        {
            "default": "Indice de concentration",
            "commute": "Indicateur de concentration d'emploi",
            "school": "Indice de concentration scolaire",
            "residential": "Indice d'attractivité résidentielle",
        },
    ),
)
INDICATOR_NAMES = tuple(i.name for i in INDICATORS)
_BY_NAME = {i.name: i for i in INDICATORS}


# -- pure formulas --------------------------------------------------------------------------


def _ratio(num: pd.Series, den: pd.Series, name: str, scale: float = 1.0) -> pd.Series:
    den = den.astype("float64")
    out = pd.Series(
        np.where(den > 0, scale * num.astype("float64") / den.where(den > 0, 1.0), np.nan),
        index=num.index,
        name=name,
    )
    return out


def self_containment(internal: pd.Series, origin_total: pd.Series) -> pd.Series:
    """Supply-side self-containment: F_PP / R_P, in [0, 1]; NaN when R_P = 0."""
    return _ratio(internal, origin_total, "self_containment")


def destination_containment(internal: pd.Series, destination_total: pd.Series) -> pd.Series:
    """Demand-side self-containment: F_PP / E_P, in [0, 1]; NaN when E_P = 0."""
    return _ratio(internal, destination_total, "destination_containment")


def concentration(destination_total: pd.Series, origin_total: pd.Series) -> pd.Series:
    """INSEE's indicateur de concentration d'emploi: 100 · E_P / R_P."""
    return _ratio(destination_total, origin_total, "concentration", scale=100.0)


def net_balance(inflow: pd.Series, outflow: pd.Series) -> pd.Series:
    """Net balance: inflow − outflow (commuting: jobs − employed residents)."""
    return (inflow.astype("float64") - outflow.astype("float64")).rename("net_balance")


def reliability(value: float, status: str) -> str:
    """INSEE's warning on small weighted counts: ``fragile`` (< 200), ``caution`` (< 500),
    ``reliable``; modelled figures are always ``modelled``."""
    if status == "modelled":
        return "modelled"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value < FRAGILE_BELOW:
        return "fragile"
    if value < RELIABLE_FROM:
        return "caution"
    return "reliable"


def derive(margins: pd.DataFrame) -> pd.DataFrame:
    """Add every derived indicator to a frame of margins.

    The frame holds ``internal``, ``origin_total`` and ``destination_total``.
    """
    out = margins.copy()
    out["outflow"] = out["origin_total"] - out["internal"]
    out["inflow"] = out["destination_total"] - out["internal"]
    out["net_balance"] = net_balance(out["inflow"], out["outflow"])
    out["self_containment"] = self_containment(out["internal"], out["origin_total"])
    out["destination_containment"] = destination_containment(
        out["internal"], out["destination_total"]
    )
    out["concentration"] = concentration(out["destination_total"], out["origin_total"])
    return out


# -- strata ---------------------------------------------------------------------------------

_POP_CLASSES: dict[str, list[float]] = {
    "commune": [500, 2_000, 10_000, 50_000, 200_000],
    "epci": [20_000, 50_000, 100_000, 250_000],
    "ept": [],
    "departement": [300_000, 700_000, 1_200_000],
    "region": [],
    "perimeter": [50_000, 150_000, 400_000, 1_000_000],
}


def population_class(level: str, population: float | None) -> str:
    """Population class used for strata, e.g. ``20k–50k``; ``inconnue`` when unknown."""
    bounds = _POP_CLASSES.get(level, [])
    if population is None or (isinstance(population, float) and math.isnan(population)):
        return "inconnue"
    edges = [0.0, *bounds, math.inf]
    for lo, hi in itertools.pairwise(edges):
        if lo <= population < hi:
            return f"{_fmt_k(lo)}–{_fmt_k(hi)}" if hi != math.inf else f"≥ {_fmt_k(lo)}"
    return "inconnue"


def _fmt_k(v: float) -> str:
    if v >= 1_000_000:
        return f"{v / 1_000_000:g} M"
    if v >= 1_000:
        return f"{v / 1_000:g} k"
    return f"{v:g}"


def stratum_of(level: str, type_: str | None, population: float | None) -> str:
    """Stratum key: the level, the EPCI type when relevant, the population class.

    A perimeter is compared with the EPCI of its population class (perimeters are few and
    heterogeneous, EPCI are the governed unit closest to them).
    """
    if level == "epci":
        kind = {"MET69": "MET"}.get(type_ or "", type_ or "?")
        return f"epci/{kind}/{population_class('epci', population)}"
    if level == "perimeter":
        return f"epci/*/{population_class('epci', population)}"
    return f"{level}/{population_class(level, population)}"


def stratum_label(key: str) -> str:
    """A stratum key in French words.

    >>> stratum_label("epci/CC/50 k–100 k")
    'EPCI de type CC, 50 k–100 k habitants'
    >>> stratum_label("epci/MET/*")
    'EPCI de type MET, toutes tailles'
    """
    parts = key.split("/")
    level_fr = {
        "epci": "EPCI",
        "commune": "communes",
        "ept": "EPT",
        "departement": "départements",
        "region": "régions",
    }
    head = level_fr.get(parts[0], parts[0])
    pop = parts[-1]
    if pop == "*":
        pop_text = "toutes tailles"
    elif pop == "inconnue":
        pop_text = "population inconnue"
    else:
        pop_text = f"{pop} habitants"
    if len(parts) == 3:
        kind = "de tout type" if parts[1] == "*" else f"de type {parts[1]}"
        return f"{head} {kind}, {pop_text}"
    return f"{head}, {pop_text}"


def _stratum_members(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows of ``table`` (an :func:`indicator_table`) that belong to stratum ``key``."""
    if "/*/" in key:  # perimeters: EPCI of any type in the same population class
        return table[table["population_class"] == key.rsplit("/", 1)[-1]]
    if key.endswith("/*"):  # EPCI of one type, whatever their population
        kind = key.split("/")[1]
        return table[table["type"].replace({"MET69": "MET"}) == kind]
    return table[table["stratum"] == key]


#: A stratum thinner than this is widened (EPCI: same type, all population classes).
MIN_STRATUM = 5


def stratum_stats(values: pd.Series, own: float | None) -> dict[str, Any]:
    """n, mean, median, quartiles of a stratum and the rank of ``own`` (1 = highest)."""
    v = values.dropna().astype("float64")
    if v.empty:
        return {"n": 0, "mean": None, "median": None, "q1": None, "q3": None, "rank": None}
    rank = None
    if own is not None and not (isinstance(own, float) and math.isnan(own)):
        rank = int((v > own + 1e-9 * max(1.0, abs(own))).sum()) + 1
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "median": float(v.median()),
        "q1": float(v.quantile(0.25)),
        "q3": float(v.quantile(0.75)),
        "rank": rank,
    }


# -- margins from the store -----------------------------------------------------------------


def _resolve_current(store: Store, kind: str, vintage: int | None) -> tuple[int, str]:
    cur = store.current(kind, vintage)
    if cur is None:
        held = ", ".join(sorted(store.kinds())) or "none"
        what = f"{kind} {vintage}" if vintage else kind
        raise StoreError(
            f"no {what} flows in the observatory (held: {held}). "
            f"Import them with `maillage import`."
        )
    return cur


def margins(
    store: Store,
    level: str,
    kind: str,
    *,
    vintage: int | None = None,
    code: str | None = None,
) -> pd.DataFrame:
    """Internal flow, origin and destination totals of every territory of ``level``.

    One pass over the flows; restricted to one territory when ``code`` is given. Returns a
    frame indexed by territory code with columns internal, origin_total, destination_total.
    """
    vint, status = _resolve_current(store, kind, vintage)
    params: list[Any] = [kind, vint, status]
    if level in PARTITION_LEVELS or level == "commune":
        table = "flow_agg" if level != "commune" else "flow"
        lvl = "AND level = ?" if level != "commune" else ""
        if level != "commune":
            params.append(level)
        one_o = "AND origin = ?" if code else ""
        one_d = "AND destination = ?" if code else ""
        p_o = params + ([code] if code else [])
        p_d = params + ([code] if code else [])
        sql = f"""
            SELECT code, sum(internal) AS internal, sum(origin_total) AS origin_total,
                   sum(destination_total) AS destination_total FROM (
              SELECT origin AS code, sum(value) FILTER (WHERE origin = destination) AS internal,
                     sum(value) AS origin_total, 0.0 AS destination_total
              FROM {table} WHERE kind = ? AND vintage = ? AND status = ? {lvl} {one_o}
              GROUP BY origin
              UNION ALL
              SELECT destination, 0.0, 0.0, sum(value)
              FROM {table} WHERE kind = ? AND vintage = ? AND status = ? {lvl} {one_d}
              GROUP BY destination)
            WHERE NOT starts_with(code, '!')
            GROUP BY code
        """
        df = store.df(sql, p_o + p_d)
    else:
        one = "AND code = ?" if code else ""
        pm: list[Any] = [level] + ([code] if code else [])
        sql = f"""
            WITH m AS (SELECT commune, code FROM membership WHERE level = ? {one}),
            f AS (SELECT origin, destination, value FROM flow
                  WHERE kind = ? AND vintage = ? AND status = ?),
            o AS (SELECT m.code, sum(f.value) AS v FROM f JOIN m ON m.commune = f.origin
                  GROUP BY 1),
            d AS (SELECT m.code, sum(f.value) AS v FROM f JOIN m ON m.commune = f.destination
                  GROUP BY 1),
            i AS (SELECT mo.code, sum(f.value) AS v FROM f
                  JOIN m mo ON mo.commune = f.origin
                  JOIN m md ON md.commune = f.destination AND md.code = mo.code GROUP BY 1)
            SELECT c.code, coalesce(i.v, 0) AS internal, coalesce(o.v, 0) AS origin_total,
                   coalesce(d.v, 0) AS destination_total
            FROM (SELECT DISTINCT code FROM m) c
            LEFT JOIN o USING (code) LEFT JOIN d USING (code) LEFT JOIN i USING (code)
        """
        df = store.df(sql, pm + params)
    df["internal"] = df["internal"].fillna(0.0)
    return df.set_index("code").sort_index()


def indicator_table(
    store: Store, level: str, kind: str, *, vintage: int | None = None
) -> pd.DataFrame:
    """Every indicator for every territory of ``level``, with name, population, type, stratum.

    This is the one-pass computation used for choropleths and strata.
    """
    m = derive(margins(store, level, kind, vintage=vintage))
    terr = store.df(
        "SELECT code, name, population, type FROM territory WHERE level = ?", [level]
    ).set_index("code")
    out = terr.join(m, how="left")
    for col in (
        "internal",
        "origin_total",
        "destination_total",
        "outflow",
        "inflow",
        "net_balance",
    ):
        out[col] = out[col].fillna(0.0)
    out["population_class"] = [population_class(level, p) for p in out["population"]]
    out["stratum"] = [stratum_of(level, t, p) for t, p in zip(out["type"], out["population"])]
    vint, status = _resolve_current(store, kind, vintage)
    out["status"] = status
    out["vintage"] = vint
    out.index.name = "code"
    return out


def source_meta(store: Store, kind: str, vintage: int | None = None) -> dict[str, Any]:
    """Where the figures of ``kind`` come from: status, vintage, source, file."""
    vint, status = _resolve_current(store, kind, vintage)
    row = store.df(
        """SELECT l.source, l.file_name, l.threshold FROM flow f
           JOIN import_log l ON l.id = f.import_id
           WHERE f.kind = ? AND f.vintage = ? AND f.status = ? LIMIT 1""",
        [kind, vint, status],
    )
    if status == "modelled" and row.empty:
        source = "Modèle gravitaire contraint à l'origine (maillage), populations légales"
        file_name, threshold = None, None
    elif row.empty:
        source, file_name, threshold = "inconnue", None, None
    else:
        source = str(row.iloc[0]["source"])
        file_name = row.iloc[0]["file_name"]
        threshold = None if pd.isna(row.iloc[0]["threshold"]) else float(row.iloc[0]["threshold"])
    return {
        "kind": kind,
        "kind_label": KIND_LABELS_FR.get(kind, kind),
        "status": status,
        "vintage": vint,
        "source": source,
        "file": file_name,
        "threshold": threshold,
    }


def _stratum_table(store: Store, level: str, kind: str, vintage: int | None) -> pd.DataFrame:
    # perimeters are compared with EPCI
    lvl = "epci" if level == "perimeter" else level
    return store.memo(
        ("indicator_table", lvl, kind, vintage),
        lambda: indicator_table(store, lvl, kind, vintage=vintage),
    )


def indicators_for(
    store: Store, territory: Territory, kind: str, *, vintage: int | None = None
) -> dict[str, Any]:
    """All indicators of one territory for one kind, each with its stratum statistics."""
    own = derive(margins(store, territory.level, kind, vintage=vintage, code=territory.code))
    row = own.loc[territory.code] if territory.code in own.index else None
    table = _stratum_table(store, territory.level, kind, vintage)
    key = stratum_of(territory.level, territory.type, territory.population)
    members = _stratum_members(table, key)
    if len(members) < MIN_STRATUM and territory.level == "epci":
        key = key.rsplit("/", 1)[0] + "/*"
        members = _stratum_members(table, key)
    meta = source_meta(store, kind, vintage)
    items = []
    for ind in INDICATORS:
        value = None if row is None else row[ind.name]
        value = None if value is None or pd.isna(value) else float(value)
        items.append(
            {
                "name": ind.name,
                "label": ind.label(kind),
                "unit": ind.unit,
                "formula": ind.formula,
                "value": value,
                "status": meta["status"],
                "reliability": reliability(value, meta["status"])
                if ind.unit == "persons"
                else None,
                "stratum": stratum_stats(members[ind.name], value),
            }
        )
    return {
        "kind": kind,
        "stratum": key,
        "stratum_label": stratum_label(key),
        "stratum_size": len(members),
        "meta": meta,
        "indicators": items,
    }


def profile(
    store: Store,
    ref: str | Territory,
    *,
    kinds: list[str] | None = None,
    vintage: int | None = None,
) -> dict[str, Any]:
    """The profile of a territory: identity, and its indicators per flow kind vs its stratum."""
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    held = kinds or sorted(store.kinds())
    n_communes = store.scalar(
        "SELECT count(*) FROM membership WHERE level = ? AND code = ?",
        [territory.level, territory.code],
    )
    return {
        "territory": territory.as_dict()
        | {
            "n_communes": int(n_communes or 0),
            "population_class": population_class(territory.level, territory.population),
        },
        "kinds": {k: indicators_for(store, territory, k, vintage=vintage) for k in held},
    }


def indicator(name: str) -> Indicator:
    """The description of indicator ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown indicator '{name}'. Known: {', '.join(INDICATOR_NAMES)}") from None
