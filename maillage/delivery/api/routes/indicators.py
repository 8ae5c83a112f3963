"""Indicators: their catalogue and the values of every territory of a level (choropleths)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request

from maillage._schema import KIND_LABELS_FR
from maillage.analysis import indicators
from maillage.delivery.api.deps import StoreDep, envelope, reference_meta
from maillage.delivery.api.errors import ApiError
from maillage.delivery.api.routes._common import (
    KindQuery,
    MapLevel,
    VintageQuery,
    cached,
    clean,
    flow_meta,
)
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope

router = APIRouter(tags=["indicateurs"], responses=ERROR_RESPONSES)

#: Number of classes of a choropleth (quantiles).
N_CLASSES = 6


def catalogue(kinds: list[str]) -> list[dict[str, Any]]:
    """Every indicator with its French label per kind, unit and formula."""
    return [
        {
            "name": ind.name,
            "unit": ind.unit,
            "formula": ind.formula,
            "labels": {k: ind.label(k) for k in kinds},
        }
        for ind in indicators.INDICATORS
    ]


@router.get("/indicators", response_model=Envelope, summary="Catalogue des indicateurs")
def list_indicators(store: StoreDep) -> dict:
    """The indicators, their units, formulas and labels for each flow kind held."""
    kinds = sorted(store.kinds())
    data = {
        "indicators": catalogue(kinds),
        "kinds": [{"kind": k, "label": KIND_LABELS_FR.get(k, k)} for k in kinds],
    }
    return envelope(data, reference_meta(store))


def quantile_breaks(values: pd.Series, n: int = N_CLASSES) -> list[float]:
    """Inner class breaks (n − 1 of them, unique, increasing) of the finite values."""
    v = values.replace([np.inf, -np.inf], np.nan).dropna().astype("float64")
    if v.empty:
        return []
    qs = np.quantile(v.to_numpy(), np.linspace(0, 1, n + 1)[1:-1])
    return sorted({float(round(q, 6)) for q in qs})


@router.get(
    "/choropleth",
    response_model=Envelope,
    summary="Valeurs d'un indicateur pour tous les territoires d'un niveau",
)
def choropleth(
    request: Request,
    store: StoreDep,
    kind: KindQuery,
    level: Annotated[MapLevel, Query(description="niveau de la carte")] = "epci",
    indicator: Annotated[
        str, Query(max_length=50, description="nom de l'indicateur")
    ] = "self_containment",
    dep: Annotated[
        str | None,
        Query(pattern=r"^(\d{2,3}|2[AB])$", description="seulement les communes de ce département"),
    ] = None,
    vintage: VintageQuery = None,
) -> dict:
    """One value per territory of ``level`` (code, name, value) and quantile class breaks."""
    if indicator not in indicators.INDICATOR_NAMES:
        raise ApiError(
            422,
            "invalid_parameter",
            f"Indicateur inconnu « {indicator} ». Indicateurs : "
            + ", ".join(indicators.INDICATOR_NAMES)
            + ".",
        )
    meta = flow_meta(store, kind, vintage, request)
    table = cached(
        request,
        ("indicator_table", level, kind, vintage),
        lambda: indicators.indicator_table(store, level, kind, vintage=vintage),
    )
    breaks = quantile_breaks(table[indicator])
    if dep is not None and level == "commune":
        members = set(
            store.df(
                "SELECT commune FROM membership WHERE level = 'departement' AND code = ?", [dep]
            )["commune"]
        )
        if not members:
            raise ApiError(404, "unknown_territory", f"Aucun département de code « {dep} ».")
        table = table[table.index.isin(members)]
    ind = indicators.indicator(indicator)
    values = [
        {"code": str(code), "name": str(name), "value": clean(value)}
        for code, name, value in zip(table.index, table["name"], table[indicator])
    ]
    data = {
        "level": level,
        "kind": kind,
        "indicator": indicator,
        "unit": ind.unit,
        "label": ind.label(kind),
        "formula": ind.formula,
        "breaks": breaks,
        "values": values,
    }
    return envelope(data, meta)
