"""Wage-mass transfers between place of work and place of residence (Davezies/Talandier).

No open file gives wages for a pair of communes (DATA_SOURCES.md A.6, METHODS.md §5), so the
transfers are **estimated**, and stored with status ``modelled``:

.. math::

    W_{j \\to i} = F_{i \\to j} \\cdot \\bar w

where :math:`F_{i \\to j}` is the commuting flow (residents of *i* working in *j*, observed
or modelled, the store's current ``commute`` set) and :math:`\\bar w` the annual net wage per
job of the place of work *j* (``wage_at="work"``, default) or of the place of residence *i*
(``wage_at="residence"``). Money flows opposite to commuters: a ``wage`` flow goes from the
place of work (origin) to the place of residence (destination), in € per year.

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

from typing import TYPE_CHECKING, Any

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
    if wage_at not in WAGE_AT:
        raise ValidationError(f"wage_at must be one of {', '.join(WAGE_AT)}, not '{wage_at}'")
    key = "destination" if wage_at == "work" else "origin"
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
        "indicators": items,
    }


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
    net_balance, status, vintage`` (€/year; shares in [0, 1]).
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
    cols = ["name", "type", "population", "generated", "to_rest_of_france", "share_rest_of_france"]
    cols += ["to_departement", "share_departement"]
    if aav is not None:
        cols += ["to_aav", "share_aav"]
    cols += ["to_abroad", "captured", "net_balance", "status", "vintage"]
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
    return text + ". Estimation (navettes × salaire moyen), à lire comme un ordre de grandeur."


def _fr_number(x: float) -> str:
    return f"{x:,.1f}".replace(",", "\u202f").replace(".", ",")
