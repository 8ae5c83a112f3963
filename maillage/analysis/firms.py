"""Economic control between territories, from Sirene head-office → establishment links.

The ``hq_link`` flows (:mod:`maillage.sources.sirene`) go from the commune of a firm's head
office to the commune of each of its active establishments, weighted by estimated jobs
(headcount-band midpoints) or counted. Links within one commune are kept, so for a territory P
the existing margins (:func:`maillage.analysis.indicators.margins`) read:

==============================  ===========================================================
destination_total               jobs located in P (of firms whose head office is known)
inflow                          jobs in P controlled from a head office outside P
controlled_from_outside         inflow / destination_total (share of P's jobs controlled
                                from outside)
origin_total                    jobs controlled by head offices located in P, anywhere
controls_elsewhere              outflow: jobs outside P controlled from P
control_balance                 outflow − inflow (> 0: P controls more than it is controlled)
==============================  ===========================================================

Each value is compared with its stratum (same level, same EPCI type, same population class)
through :func:`maillage.analysis.indicators.stratum_stats`. Large groups' head offices
concentrate in Paris and La Défense ("siège effect"): read a high dependency as control by a
group, not as commuting of money.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage.analysis.flows import partners
from maillage.analysis.indicators import (
    _stratum_members,
    derive,
    indicator_table,
    margins,
    source_meta,
    stratum_of,
    stratum_stats,
)
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from maillage.store import Store

KIND = "hq_link"

CONTROL_LABELS_FR: dict[str, str] = {
    "destination_total": "Emplois des établissements du territoire",
    "controlled_from_outside": "Part des emplois contrôlés depuis l'extérieur",
    "inflow": "Emplois contrôlés depuis un siège extérieur",
    "origin_total": "Emplois contrôlés par les sièges du territoire",
    "controls_elsewhere": "Emplois contrôlés hors du territoire",
    "control_balance": "Solde (emplois contrôlés ailleurs − emplois contrôlés de l'extérieur)",
}


def control_from_margins(m: pd.DataFrame) -> pd.DataFrame:
    """Control indicators from margins (``internal``, ``origin_total``, ``destination_total``).

    ``controlled_from_outside = (destination_total − internal) / destination_total``,
    ``controls_elsewhere = origin_total − internal``,
    ``control_balance = controls_elsewhere − inflow``.
    """
    d = derive(m)
    out = d[["destination_total", "inflow", "origin_total"]].astype("float64").copy()
    den = out["destination_total"]
    out["controlled_from_outside"] = np.where(
        den > 0, out["inflow"] / den.where(den > 0, 1.0), np.nan
    )
    out["controls_elsewhere"] = d["outflow"].astype("float64")
    out["control_balance"] = out["controls_elsewhere"] - out["inflow"]
    return out


def control_table(store: Store, level: str = "epci", *, vintage: int | None = None) -> pd.DataFrame:
    """Control indicators for every territory of ``level`` (with name, type, stratum)."""
    table = indicator_table(store, level, KIND, vintage=vintage)
    cols = ["name", "population", "type", "population_class", "stratum", "status", "vintage"]
    return table[cols].join(control_from_margins(table))


def control_profile(
    store: Store, ref: str | Territory, *, vintage: int | None = None, top: int = 10
) -> dict[str, Any]:
    """One territory's control indicators vs its stratum, who controls it, what it controls."""
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    level = "epci" if territory.level == "perimeter" else territory.level
    table = control_table(store, level, vintage=vintage)
    own = control_from_margins(
        margins(store, territory.level, KIND, vintage=vintage, code=territory.code)
    )
    row = own.loc[territory.code] if territory.code in own.index else None
    key = stratum_of(territory.level, territory.type, territory.population)
    members = _stratum_members(table, key)
    items = []
    for col, label in CONTROL_LABELS_FR.items():
        value = None if row is None or pd.isna(row[col]) else float(row[col])
        items.append(
            {
                "name": col,
                "label": label,
                "value": value,
                "stratum": stratum_stats(members[col], value),
            }
        )
    controllers = partners(store, territory, KIND, direction="in", top=top, vintage=vintage)
    controlled = partners(store, territory, KIND, direction="out", top=top, vintage=vintage)
    return {
        "territory": territory.as_dict(),
        "stratum": key,
        "meta": source_meta(store, KIND, vintage),
        "indicators": items,
        "controlled_by": controllers.to_dict(orient="records"),
        "controls": controlled.to_dict(orient="records"),
    }
