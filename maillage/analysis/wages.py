"""Wage-mass transfers between place of work and place of residence (Davezies/Talandier).

No open file gives wages for a pair of communes (DATA_SOURCES.md A.6, METHODS.md §5), so the
transfers are **estimated**, and stored with status ``modelled``. Two methods:

``mean`` (:func:`estimate_wage_flows`)
    :math:`W_{j \\to i} = F_{i \\to j} \\cdot \\bar w`, with :math:`F_{i \\to j}` the
    commuting flow (residents of *i* working in *j*, observed or modelled, the store's current
    ``commute`` set) and :math:`\\bar w` the annual net wage per job of the place of work *j*
    (``wage_at="work"``, default) or of the place of residence *i* (``wage_at="residence"``).
``cs`` (:func:`estimate_wage_flows_by_cs`), when the commuting flows carry a breakdown by
    socio-professional group (``csp``, from the FD_MOBPRO detail file's ``CS1``) and wages per
    CS are known: :math:`W_{j \\to i} = \\sum_{cs} F_{i \\to j}^{cs} \\cdot w_j^{cs}`. The
    groups 3–6 (cadres, professions intermédiaires, employés, ouvriers) get their own wage;
    the others (1 agriculteurs exploitants, 2 artisans/commerçants/chefs d'entreprise, mostly
    non-salaried, and unknown) get the mean wage :math:`\\bar w_j`. The wage flows keep the
    ``csp`` breakdown.

Money flows opposite to commuters: a ``wage`` flow goes from the place of work (origin) to the
place of residence (destination), in € per year.

The estimate can be calibrated to known wage-mass totals by iterative proportional fitting
(:func:`calibrate_ras`, RAS): the OD matrix is scaled, margin after margin, until the wage
mass of every territory with a total matches it — at the place of work (Σ over residences)
and/or at the place of residence (Σ over workplaces) — within :data:`RAS_TOLERANCE`, or
:data:`RAS_MAX_ITERATIONS` sweeps have been made.

For a territory P, with W the wage flows:

=============================  ==============================================================
generated                      Σ_B W_PB: wages paid by the jobs located in P (origin total)
paid_to_non_residents          Σ_{B≠P} W_PB: wage mass earned in P by non-residents (outflow)
residents_wages                Σ_A W_AP: wages earned by P's residents wherever they work
brought_home                   Σ_{A≠P} W_AP: brought home by residents working elsewhere
                               (inflow; Davezies' "salaires captés")
net_balance                    brought_home − paid_to_non_residents
share_paid_out                 paid_to_non_residents / generated
=============================  ==============================================================

The mission's benchmark ("on average French metropoles redistribute x M€ of wage mass to their
hinterland, x % of the wage mass their firms generate") is :func:`metropole_redistribution`:
for every EPCI of type MET or MET69, the hinterland is (a) the whole rest of France — every
French commune outside the metropole —, (b) the rest of the département(s) the metropole lies
in, (c) when a commune → AAV table is given, the rest of the metropole's aire d'attraction des
villes (the AAV of its most populous commune). Places abroad are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pandas as pd

from maillage._errors import StoreError, ValidationError
from maillage.analysis.indicators import (
    _stratum_members,
    indicator_table,
    margins,
    stratum_of,
    stratum_stats,
)
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from maillage.store import Store

WAGE_AT = ("work", "residence")
METROPOLE_TYPES = ("MET", "MET69")
#: Dimension of the CS breakdown, the same name as in the commuting flows of detail files.
CS_DIMENSION = "csp"
#: Socio-professional groups (CS1) valued at their own wage; the others get the mean wage.
CS_WITH_WAGE = ("3", "4", "5", "6")
#: Methods and how users read them (French, shown in reports and the API).
METHOD_LABELS_FR: dict[str, str] = {
    "mean": "navettes × salaire moyen",
    "cs": "navettes par catégorie socioprofessionnelle × salaire de la catégorie",
}
#: RAS stops when every reachable total is met within this relative gap …
RAS_TOLERANCE = 1e-4
#: … or after this many sweeps over the margins.
RAS_MAX_ITERATIONS = 1000

#: Columns of :func:`wage_balance`, with their French labels.
BALANCE_LABELS_FR: dict[str, str] = {
    "generated": "Masse salariale versée par les emplois du territoire (€)",
    "paid_to_non_residents": "Masse salariale gagnée sur place par des non-résidents (€)",
    "residents_wages": "Masse salariale des résidents (€)",
    "brought_home": "Salaires rapportés par les résidents travaillant ailleurs (€)",
    "net_balance": "Solde net des transferts de salaires (€)",
    "share_paid_out": "Part de la masse salariale versée à des non-résidents",
}


# -- estimation (pure) ----------------------------------------------------------------------


def estimate_wage_flows(
    commute: pd.DataFrame, wages: pd.DataFrame, *, wage_at: str = "work"
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Wage flows from commuting flows and a wage per commune.

    Parameters
    ----------
    commute : ``origin`` (residence), ``destination`` (place of work), ``value`` (workers),
        optional ``flag`` (``abroad``/``unknown`` for ends outside the reference).
    wages : ``code``, ``annual_wage`` (€ per job and year) for reference communes.
    wage_at : ``"work"`` (wage of the place of work) or ``"residence"``.

    Returns
    -------
    flows : ``origin`` (place of work), ``destination`` (residence), ``value`` (€/year).
    info : ``workers`` kept, ``workers_left_out`` (no wage for the end used: abroad or
        unknown place), ``wage_mass``.
    """
    key = _wage_key(wage_at)
    w = wages.set_index("code")["annual_wage"]
    level = commute[key].map(w)
    if "flag" in commute:
        level = level.where(commute["flag"].isna())
    ok = level.notna()
    flows = pd.DataFrame(
        {
            "origin": commute.loc[ok, "destination"].astype(str).to_numpy(),
            "destination": commute.loc[ok, "origin"].astype(str).to_numpy(),
            "value": (commute.loc[ok, "value"].astype("float64") * level[ok]).to_numpy(),
        }
    )
    info = {
        "workers": float(commute.loc[ok, "value"].sum()),
        "workers_left_out": float(commute.loc[~ok, "value"].sum()),
        "wage_mass": float(flows["value"].sum()),
    }
    return flows, info


def _cs_category_sql(column: str) -> str:
    """CS1 codes as written ('3'); a two-digit CS ('37') gives its group; missing → unknown."""
    text = f"trim(CAST({column} AS VARCHAR))"
    return (
        f"CASE WHEN {column} IS NULL OR {text} = '' THEN 'unknown' "
        f"WHEN regexp_full_match({text}, '[0-9][0-9]') THEN substr({text}, 1, 1) ELSE {text} END"
    )


def estimate_wage_flows_by_cs(
    commute: pd.DataFrame,
    breakdown: pd.DataFrame,
    wages: pd.DataFrame,
    wages_by_cs: pd.DataFrame,
    *,
    wage_at: str = "work",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Wage flows Σ_cs F(i → j, cs) × w(place, cs), with their CS breakdown.

    Parameters
    ----------
    commute : ``origin`` (residence), ``destination`` (place of work), ``value`` (workers),
        optional ``flag``.
    breakdown : the commuting flows by CS: ``origin``, ``destination``, ``category`` (CS1
        code), ``value``. Workers of a pair its breakdown does not cover (its total minus the
        sum of its categories) are counted as CS ``unknown``.
    wages : ``code``, ``annual_wage`` — the mean wage, for CS other than 3–6.
    wages_by_cs : ``code``, ``cs``, ``annual_wage`` for CS 3–6.
    wage_at : ``"work"`` or ``"residence"``: whose wages are applied.

    Returns
    -------
    flows : ``origin`` (place of work), ``destination`` (residence), ``value`` (€/year).
    breakdown : ``origin``, ``destination``, ``dimension`` (``csp``), ``category``, ``value``
        (€/year); the categories of a pair sum to its flow.
    info : ``workers``, ``workers_left_out``, ``wage_mass``, ``workers_by_cs`` (category →
        workers), ``workers_at_mean_wage`` (CS other than 3–6), ``pairs_without_breakdown``.

    The national breakdown (millions of rows) is joined by DuckDB, in memory.
    """
    key = _wage_key(wage_at)
    flag = "flag" if "flag" in commute else "NULL"
    own_cs = ", ".join(f"'{cs}'" for cs in CS_WITH_WAGE)
    con = duckdb.connect()
    try:
        con.register("_commute", commute)
        con.register("_bd", breakdown[["origin", "destination", "category", "value"]])
        con.register("_mean", wages[["code", "annual_wage"]])
        con.register("_cs", wages_by_cs[["code", "cs", "annual_wage"]])
        script = f"""
            CREATE TABLE c AS
            SELECT CAST(origin AS VARCHAR) AS origin, CAST(destination AS VARCHAR) AS destination,
                   sum(value)::DOUBLE AS value, bool_or({flag} IS NOT NULL) AS flagged
            FROM _commute GROUP BY ALL;
            CREATE TABLE kept AS
            SELECT c.origin, c.destination, c.value FROM c
            JOIN _mean m ON CAST(m.code AS VARCHAR) = c.{key} WHERE NOT c.flagged;
            CREATE TABLE b AS
            SELECT CAST(origin AS VARCHAR) AS origin, CAST(destination AS VARCHAR) AS destination,
                   {_cs_category_sql("category")} AS category, value::DOUBLE AS value
            FROM _bd SEMI JOIN kept USING (origin, destination);
            CREATE TABLE rest AS
            SELECT k.origin, k.destination, k.value,
                   greatest(k.value - coalesce(cov.covered, 0), 0) AS residual,
                   cov.covered IS NULL AS no_breakdown
            FROM kept k LEFT JOIN (SELECT origin, destination, sum(value) AS covered FROM b
                                   GROUP BY ALL) cov USING (origin, destination);
            CREATE TABLE rated AS
            WITH r AS (
                SELECT origin, destination, category, sum(value) AS value FROM (
                    SELECT origin, destination, category, value FROM b
                    UNION ALL
                    -- rounding leftovers of a full breakdown are not a category of their own
                    SELECT origin, destination, 'unknown', residual FROM rest
                    WHERE residual > 1e-9 * greatest(abs(value), 1)
                ) GROUP BY ALL
            )
            SELECT r.origin, r.destination, r.category, r.value,
                   (r.category IN ({own_cs}) AND w.annual_wage IS NOT NULL) AS own,
                   r.value * CASE WHEN r.category IN ({own_cs}) AND w.annual_wage IS NOT NULL
                                  THEN w.annual_wage ELSE m.annual_wage END AS wage
            FROM r JOIN _mean m ON CAST(m.code AS VARCHAR) = r.{key}
            LEFT JOIN _cs w ON CAST(w.code AS VARCHAR) = r.{key} AND w.cs = r.category
            """
        for statement in script.split(";"):
            con.execute(statement).fetchall()
        flows = _frame(
            con.sql(
                "SELECT destination AS origin, origin AS destination, sum(wage) AS value "
                "FROM rated GROUP BY ALL ORDER BY ALL"
            )
        )
        out_bd = _frame(
            con.sql(
                f"SELECT destination AS origin, origin AS destination, '{CS_DIMENSION}' AS "
                "dimension, category, wage AS value FROM rated ORDER BY ALL"
            )
        )
        workers, left_out, no_bd, at_mean = con.sql(
            "SELECT (SELECT coalesce(sum(value), 0) FROM kept), "
            "(SELECT coalesce(sum(value), 0) FROM c ANTI JOIN kept USING (origin, destination)), "
            "(SELECT count(*) FILTER (WHERE no_breakdown) FROM rest), "
            "(SELECT coalesce(sum(value), 0) FROM rated WHERE NOT own)"
        ).fetchall()[0]
        by_cs = con.sql("SELECT category, sum(value) FROM rated GROUP BY ALL").fetchall()
    finally:
        con.close()
    info: dict[str, Any] = {
        "workers": float(workers),
        "workers_left_out": float(left_out),
        "wage_mass": float(flows["value"].sum()),
        "workers_by_cs": {str(k): float(v) for k, v in sorted(by_cs)},
        "workers_at_mean_wage": float(at_mean),
        "pairs_without_breakdown": int(no_bd),
    }
    return flows, out_bd, info


def _frame(relation: duckdb.DuckDBPyRelation) -> pd.DataFrame:
    """A DuckDB result as pandas without copying its strings (Arrow-backed columns)."""
    return relation.to_arrow_table().to_pandas(types_mapper=pd.ArrowDtype)


def _wage_key(wage_at: str) -> str:
    if wage_at not in WAGE_AT:
        raise ValidationError(f"wage_at must be one of {', '.join(WAGE_AT)}, not '{wage_at}'")
    return "destination" if wage_at == "work" else "origin"


# -- calibration (RAS) ----------------------------------------------------------------------


@dataclass
class Margin:
    """Wage-mass totals on one side of the OD matrix.

    Attributes
    ----------
    side : ``"work"`` (totals of origins: wages paid by the jobs of a territory) or
        ``"residence"`` (totals of destinations: wages earned by its residents).
    targets : group code → net wage mass (€/year).
    level : ``commune``, ``epci``, ``departement`` or ``region``.
    group_of : commune code → group code; None when ``level`` is ``commune``.
    """

    side: str
    targets: pd.Series
    level: str = "commune"
    group_of: pd.Series | None = None


@dataclass
class MarginResult:
    """How one margin was met: counts, the worst gap, the territories left unmet."""

    side: str
    level: str
    targeted: int
    met: int
    max_gap: float
    target_total: float
    reached_total: float
    no_flow: list[str] = field(default_factory=list)
    unmet: list[dict[str, float | str]] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)


@dataclass
class Calibration:
    """What :func:`calibrate_ras` did."""

    converged: bool
    iterations: int
    tolerance: float
    max_iterations: int
    margins: list[MarginResult]
    factors: dict[str, float]
    mass_before: float
    mass_after: float
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "iterations": self.iterations,
            "tolerance": self.tolerance,
            "max_iterations": self.max_iterations,
            "mass_before": self.mass_before,
            "mass_after": self.mass_after,
            "factors": self.factors,
            "margins": [m.__dict__ for m in self.margins],
            "warnings": self.warnings,
        }


def _summary(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    if values.size == 0:
        return {}
    q = np.quantile(values, [0.0, 0.25, 0.5, 0.75, 1.0])
    out = dict(zip(["min", "q1", "median", "q3", "max"], (float(x) for x in q), strict=True))
    if weights is not None and weights.sum() > 0:
        out["weighted_mean"] = float(np.average(values, weights=weights))
    return out


@dataclass
class _Prepared:
    margin: Margin
    gid: np.ndarray  # group index of each flow row, -1 when its group has no total
    codes: pd.Index
    targets: np.ndarray
    start: np.ndarray  # group sums before calibration
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    groups: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        self.rows = np.flatnonzero(self.gid >= 0)  # flows whose territory has a total
        self.groups = self.gid[self.rows]


def _prepare(flows: pd.DataFrame, margin: Margin, values: np.ndarray) -> _Prepared:
    if margin.side not in WAGE_AT:
        raise ValidationError(f"margin side must be one of {', '.join(WAGE_AT)}")
    ends = flows["origin" if margin.side == "work" else "destination"].astype(str)
    groups = ends if margin.group_of is None else ends.map(margin.group_of)
    targets = margin.targets.dropna()
    targets = targets.groupby(targets.index.astype(str)).sum()
    codes = pd.Index(targets.index)
    gid = codes.get_indexer(groups.astype(object).where(groups.notna(), None))
    sel = gid >= 0
    start = np.bincount(gid[sel], weights=values[sel], minlength=len(codes))
    return _Prepared(margin, gid, codes, targets.to_numpy("float64"), start)


def _group_sums(p: _Prepared, values: np.ndarray) -> np.ndarray:
    return np.bincount(p.groups, weights=values[p.rows], minlength=len(p.codes))


def _gaps(p: _Prepared, sums: np.ndarray) -> np.ndarray:
    """Relative gap of each group (absolute for a zero target)."""
    t = p.targets
    return np.where(t > 0, np.abs(sums - t) / np.where(t > 0, t, 1.0), np.abs(sums))


def calibrate_ras(
    flows: pd.DataFrame,
    margins: list[Margin],
    *,
    tolerance: float = RAS_TOLERANCE,
    max_iterations: int = RAS_MAX_ITERATIONS,
) -> tuple[pd.DataFrame, Calibration]:
    """Scale the wage flows so that their margins match the totals (iterative proportional fitting).

    Each sweep scales, margin after margin, every flow of a territory with a total by
    ``total / current sum``. Flows of territories without a total are scaled only by the other
    margin (or not at all). It stops when every reachable total is met within ``tolerance``
    (relative gap), or after ``max_iterations`` sweeps. A total is unreachable when no flow
    (or only zero flows) leaves or reaches its territory — commune absent from the commuting
    flows, or a code of no commune —; two margins whose totals disagree (different sums over
    the same flows) cannot both be met, and the territories still off are listed.

    Returns
    -------
    The flows with calibrated ``value`` (same rows, same order), and a :class:`Calibration`.
    """
    if not margins:
        raise ValidationError("calibrate_ras needs at least one margin of totals")
    if tolerance <= 0 or max_iterations < 1:
        raise ValidationError("tolerance must be > 0 and max_iterations ≥ 1")
    before = flows["value"].to_numpy("float64")
    values = before.copy()
    prepared = [_prepare(flows, m, values) for m in margins]
    converged, iterations = False, 0
    while not converged and iterations < max_iterations:
        iterations += 1
        for p in prepared:
            sums = _group_sums(p, values)
            factor = np.divide(p.targets, sums, out=np.ones_like(sums), where=sums > 0)
            values[p.rows] *= factor[p.groups]
        # the margin scaled last is met exactly: check the others
        converged = all(_met(p, values, tolerance).all() for p in prepared[:-1])
    results = [_margin_result(p, values, tolerance) for p in prepared]
    warnings = _conflicts(prepared, tolerance)
    ratio_ok = before > 0
    calibration = Calibration(
        converged=converged,
        iterations=iterations,
        tolerance=tolerance,
        max_iterations=max_iterations,
        margins=results,
        factors=_summary(values[ratio_ok] / before[ratio_ok], before[ratio_ok]),
        mass_before=float(before.sum()),
        mass_after=float(values.sum()),
        warnings=warnings,
    )
    return flows.assign(value=values), calibration


def _reachable(p: _Prepared) -> np.ndarray:
    return (p.start > 0) | (p.targets == 0)


def _met(p: _Prepared, values: np.ndarray, tolerance: float) -> np.ndarray:
    gaps = _gaps(p, _group_sums(p, values))
    return (gaps <= tolerance) | ~_reachable(p)


def _margin_result(p: _Prepared, values: np.ndarray, tolerance: float) -> MarginResult:
    sums = _group_sums(p, values)
    gaps = _gaps(p, sums)
    reachable = _reachable(p)
    met = reachable & (gaps <= tolerance)
    off = np.flatnonzero(reachable & ~met)
    off = off[np.argsort(-gaps[off])]
    group_factor = np.divide(p.targets, p.start, out=np.ones_like(p.start), where=p.start > 0)
    return MarginResult(
        side=p.margin.side,
        level=p.margin.level,
        targeted=len(p.codes),
        met=int(met.sum()),
        max_gap=float(gaps[reachable].max()) if reachable.any() else 0.0,
        target_total=float(p.targets.sum()),
        reached_total=float(sums.sum()),
        no_flow=[str(c) for c in p.codes[~reachable]],
        unmet=[
            {"code": str(p.codes[i]), "target": float(p.targets[i]), "reached": float(sums[i])}
            for i in off
        ],
        factors=_summary(group_factor[p.start > 0]),
    )


def _conflicts(prepared: list[_Prepared], tolerance: float) -> list[str]:
    """Two margins each covering every flow must add up to the same wage mass."""
    full = [p for p in prepared if (p.gid >= 0).all()]
    if len(full) < 2:
        return []
    sums = [float(p.targets[_reachable(p)].sum()) for p in full]
    if abs(sums[0] - sums[1]) <= tolerance * max(sums):
        return []
    return [
        f"the totals at place of {full[0].margin.side} add up to {sums[0]:,.0f} € and those at "
        f"place of {full[1].margin.side} to {sums[1]:,.0f} €: both cannot be met"
    ]


def scale_breakdown(
    breakdown: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame
) -> pd.DataFrame:
    """Scale each pair's breakdown by the pair's calibration factor (after / before)."""
    pair = ["origin", "destination"]
    factor = before[pair].assign(
        f=np.divide(
            after["value"].to_numpy("float64"),
            before["value"].to_numpy("float64"),
            out=np.ones(len(before)),
            where=before["value"].to_numpy("float64") > 0,
        )
    )
    out = breakdown.merge(factor, on=pair, how="left")
    out["value"] = out["value"] * out["f"].fillna(1.0)
    return out.drop(columns="f")


# -- indicators -----------------------------------------------------------------------------


def balance_from_margins(m: pd.DataFrame) -> pd.DataFrame:
    """Wage indicators from margins (``internal``, ``origin_total``, ``destination_total``).

    ``generated = origin_total``, ``paid_to_non_residents = origin_total − internal``,
    ``residents_wages = destination_total``, ``brought_home = destination_total − internal``,
    ``net_balance = brought_home − paid_to_non_residents``,
    ``share_paid_out = paid_to_non_residents / generated`` (NaN when nothing is generated).
    """
    out = pd.DataFrame(index=m.index)
    out["generated"] = m["origin_total"].astype("float64")
    out["paid_to_non_residents"] = out["generated"] - m["internal"].astype("float64")
    out["residents_wages"] = m["destination_total"].astype("float64")
    out["brought_home"] = out["residents_wages"] - m["internal"].astype("float64")
    out["net_balance"] = out["brought_home"] - out["paid_to_non_residents"]
    gen = out["generated"]
    out["share_paid_out"] = np.where(
        gen > 0, out["paid_to_non_residents"] / gen.where(gen > 0, 1.0), np.nan
    )
    return out


def wage_balance(store: Store, level: str = "epci", *, vintage: int | None = None) -> pd.DataFrame:
    """Wage-transfer indicators of every territory of ``level`` (see the module docstring)."""
    table = indicator_table(store, level, "wage", vintage=vintage)
    out = table[["name", "population", "type", "stratum", "status", "vintage"]].join(
        balance_from_margins(table)
    )
    return out


def wage_profile(
    store: Store, ref: str | Territory, *, vintage: int | None = None
) -> dict[str, Any]:
    """Wage indicators of one territory, each with its stratum's statistics and P's rank."""
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    level = "epci" if territory.level == "perimeter" else territory.level
    table = wage_balance(store, level, vintage=vintage)
    own_m = margins(store, territory.level, "wage", vintage=vintage, code=territory.code)
    own = balance_from_margins(own_m)
    row = own.loc[territory.code] if territory.code in own.index else None
    key = stratum_of(territory.level, territory.type, territory.population)
    members = _stratum_members(table.assign(population_class=_pop_class(table, level)), key)
    items = []
    for col, label in BALANCE_LABELS_FR.items():
        value = None if row is None or pd.isna(row[col]) else float(row[col])
        items.append(
            {
                "name": col,
                "label": label,
                "value": value,
                "status": "modelled",
                "stratum": stratum_stats(members[col], value),
            }
        )
    return {
        "territory": territory.as_dict(),
        "stratum": key,
        "status": "modelled",
        "method": wage_method(store, vintage),
        "indicators": items,
    }


def wage_source(layout: str, method: str, calibrated: list[str] | None = None) -> str:
    """The ``source`` written in the import log: ``wage_estimate:<layout>:<method>[:ras-…]``."""
    text = f"wage_estimate:{layout}:{method}"
    return text + (f":ras-{'+'.join(calibrated)}" if calibrated else "")


def parse_wage_source(source: str | None) -> dict[str, Any]:
    """What :func:`wage_source` wrote: ``layout``, ``method``, ``calibrated`` (sides)."""
    parts = (source or "").split(":")
    layout = parts[1] if len(parts) > 1 else None
    method = parts[2] if len(parts) > 2 and parts[2] in METHOD_LABELS_FR else "mean"
    sides = parts[3].removeprefix("ras-").split("+") if len(parts) > 3 else []
    label = METHOD_LABELS_FR[method]
    if sides:
        where = " et ".join(
            {"work": "au lieu de travail", "residence": "au lieu de résidence"}[x]
            for x in sides
            if x in WAGE_AT
        )
        label += f", calé sur des masses salariales connues {where} (RAS)"
    return {
        "layout": layout,
        "method": method,
        "calibrated": [x for x in sides if x in WAGE_AT],
        "label": label,
        "status": "modelled",
    }


def wage_method(store: Store, vintage: int | None = None) -> dict[str, Any]:
    """How the current wage flows were estimated (method, calibration), from the import log."""
    vint, status = _current_wage_set(store, vintage)
    row = store.df(
        """SELECT l.source, l.file_name FROM flow f JOIN import_log l ON l.id = f.import_id
           WHERE f.kind = 'wage' AND f.vintage = ? AND f.status = ? LIMIT 1""",
        [vint, status],
    )
    source = None if row.empty else str(row.iloc[0]["source"])
    out = parse_wage_source(source)
    out["source"] = source
    out["file"] = None if row.empty else row.iloc[0]["file_name"]
    out["vintage"] = vint
    return out


def _pop_class(table: pd.DataFrame, level: str) -> list[str]:
    from maillage.analysis.indicators import population_class

    return [population_class(level, p) for p in table["population"]]


def _current_wage_set(store: Store, vintage: int | None) -> tuple[int, str]:
    cur = store.current("wage", vintage)
    if cur is None:
        raise StoreError(
            "no wage flows in the observatory. Estimate them with `maillage import wages` "
            "(with or without a wage file)."
        )
    return cur


def metropole_redistribution(
    store: Store,
    *,
    vintage: int | None = None,
    aav: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Wage mass each metropole redistributes to its hinterland, and the metropoles' average.

    Parameters
    ----------
    aav : optional commune → AAV table (columns ``commune``, ``aav``) of the reference
        geography; adds ``to_aav`` and ``share_aav``.

    Returns
    -------
    One row per EPCI of type MET/MET69 (index: EPCI code) and a last row ``moyenne`` (mean of
    the metropoles; its ``share_*`` are pooled ratios Σ to_x / Σ generated). Columns:
    ``name, type, population, generated, to_rest_of_france, share_rest_of_france,
    to_departement, share_departement, [to_aav, share_aav,] to_abroad, captured,
    net_balance, status, vintage, method`` (€/year; shares in [0, 1]; ``method`` says how the
    wage flows were estimated, in French).
    """
    vint, status = _current_wage_set(store, vintage)
    con = store.con.cursor()
    try:
        aav_sql = "NULL::DOUBLE AS to_aav"
        if aav is not None:
            con.register("_aav", aav[["commune", "aav"]].astype(str))
            aav_sql = (
                "coalesce(sum(f.value) FILTER (WHERE md.commune IS NULL AND f.flag IS NULL "
                "AND ma.aav IS NOT NULL), 0) AS to_aav"
            )
        sql = f"""
            WITH met AS (SELECT code, name, type, population FROM territory
                         WHERE level = 'epci' AND type IN ('MET', 'MET69')),
            mem AS (SELECT commune, code FROM membership
                    WHERE level = 'epci' AND code IN (SELECT code FROM met)),
            dep AS (SELECT commune, code AS dep FROM membership WHERE level = 'departement'),
            met_dep AS (SELECT DISTINCT mem.code, dep.dep FROM mem JOIN dep USING (commune)),
            {_aav_cte(aav is not None)}
            f AS (SELECT origin, destination, value, flag FROM flow
                  WHERE kind = 'wage' AND vintage = ? AND status = ?)
            SELECT met.code, any_value(met.name) AS name, any_value(met.type) AS type,
                   any_value(met.population) AS population,
                   coalesce(sum(f.value), 0) AS generated,
                   coalesce(sum(f.value) FILTER (WHERE md.commune IS NULL AND f.flag IS NULL), 0)
                       AS to_rest_of_france,
                   coalesce(sum(f.value) FILTER (WHERE md.commune IS NULL AND f.flag IS NULL
                                                  AND mdp.dep IS NOT NULL), 0) AS to_departement,
                   {aav_sql},
                   coalesce(sum(f.value) FILTER (WHERE f.flag IS NOT NULL), 0) AS to_abroad
            FROM met JOIN mem mo ON mo.code = met.code
            LEFT JOIN f ON f.origin = mo.commune
            LEFT JOIN mem md ON md.commune = f.destination AND md.code = met.code
            LEFT JOIN dep dd ON dd.commune = f.destination
            LEFT JOIN met_dep mdp ON mdp.code = met.code AND mdp.dep = dd.dep
            {_aav_join(aav is not None)}
            GROUP BY met.code ORDER BY met.code
        """
        out = con.execute(sql, [vint, status]).df().set_index("code")
        captured = con.execute(
            """
            WITH mem AS (SELECT commune, code FROM membership WHERE level = 'epci'
                         AND code IN (SELECT code FROM territory WHERE level = 'epci'
                                      AND type IN ('MET', 'MET69')))
            SELECT md.code, sum(f.value) AS captured FROM flow f
            JOIN mem md ON md.commune = f.destination
            LEFT JOIN mem mo ON mo.commune = f.origin AND mo.code = md.code
            WHERE f.kind = 'wage' AND f.vintage = ? AND f.status = ? AND mo.commune IS NULL
            GROUP BY md.code
            """,
            [vint, status],
        ).df()
    finally:
        con.close()
    if out.empty:
        raise StoreError("no metropole (EPCI of type MET or MET69) in the reference.")
    out["captured"] = captured.set_index("code")["captured"].reindex(out.index).fillna(0.0)
    out["net_balance"] = out["captured"] - out["to_rest_of_france"]
    areas = ["rest_of_france", "departement"] + (["aav"] if aav is not None else [])
    for a in areas:
        gen = out["generated"]
        out[f"share_{a}"] = np.where(gen > 0, out[f"to_{a}"] / gen.where(gen > 0, 1.0), np.nan)
    if aav is None:
        out = out.drop(columns=["to_aav"])
    mean = out.drop(columns=["name", "type"]).mean(numeric_only=True)
    total_gen = float(out["generated"].sum())
    for a in areas:
        mean[f"share_{a}"] = float(out[f"to_{a}"].sum()) / total_gen if total_gen else np.nan
    mean_row = pd.DataFrame([mean], index=["moyenne"])
    mean_row["name"] = "Moyenne des métropoles"
    mean_row["type"] = "MET"
    out = pd.concat([out, mean_row])
    out["status"] = "modelled"
    out["vintage"] = vint
    out["method"] = wage_method(store, vint)["label"]
    cols = ["name", "type", "population", "generated", "to_rest_of_france", "share_rest_of_france"]
    cols += ["to_departement", "share_departement"]
    if aav is not None:
        cols += ["to_aav", "share_aav"]
    cols += ["to_abroad", "captured", "net_balance", "status", "vintage", "method"]
    out.index.name = "code"
    return out[cols]


def _aav_cte(with_aav: bool) -> str:
    if not with_aav:
        return ""
    return """
        pop AS (SELECT t.code AS commune, t.population FROM territory t WHERE level = 'commune'),
        main AS (SELECT mem.code, arg_max(mem.commune, coalesce(pop.population, 0)) AS commune
                 FROM mem LEFT JOIN pop USING (commune) GROUP BY mem.code),
        met_aav AS (SELECT main.code, a.aav FROM main JOIN _aav a ON a.commune = main.commune
                    WHERE a.aav NOT IN ('000', '')),
    """


def _aav_join(with_aav: bool) -> str:
    if not with_aav:
        return ""
    return """
        LEFT JOIN _aav da ON da.commune = f.destination
        LEFT JOIN met_aav ma ON ma.code = met.code AND ma.aav = da.aav
    """


def benchmark_sentence(table: pd.DataFrame) -> str:
    """The mission's sentence, in French, from :func:`metropole_redistribution`."""
    mean = table.loc["moyenne"]
    n = len(table) - 1
    m_eur = float(mean["to_rest_of_france"]) / 1e6
    share = float(mean["share_rest_of_france"]) * 100
    text = (
        f"En moyenne, les {n} métropoles françaises redistribuent "
        f"{_fr_number(m_eur)} M€ de masse salariale par an au reste du territoire national, "
        f"soit {_fr_number(share)} % de la masse salariale versée par leurs emplois"
    )
    if "share_departement" in table:
        dep = float(mean["to_departement"]) / 1e6
        text += (
            f" (dont {_fr_number(dep)} M€ dans leur propre département, "
            f"{_fr_number(float(mean['share_departement']) * 100)} %)"
        )
    method = str(mean["method"]) if "method" in table else METHOD_LABELS_FR["mean"]
    return text + f". Estimation ({method}), à lire comme un ordre de grandeur."


def _fr_number(x: float) -> str:
    return f"{x:,.1f}".replace(",", "\u202f").replace(".", ",")
