"""CSV exports of what the interface shows: partners, flow lines, choropleth, profile, pair.

Every file is UTF-8 with a BOM (Excel opens accents right), comma-separated, and carries the
columns ``status`` (observed/modelled), ``source`` and ``vintage`` on every row, so that a
modelled figure stays labelled once it leaves the observatory.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from maillage.analysis import flows, indicators, territories
from maillage.delivery.api.deps import StoreDep
from maillage.delivery.api.routes._common import (
    DirectionQuery,
    Kind,
    KindQuery,
    Level,
    MapLevel,
    ThresholdQuery,
    VintageQuery,
    cached,
    current_or_404,
    flow_meta,
)
from maillage.delivery.api.schemas import ERROR_RESPONSES
from maillage.delivery.exports import indicators_frame

router = APIRouter(prefix="/exports", tags=["exports"], responses=ERROR_RESPONSES)

CSV_MEDIA = "text/csv; charset=utf-8"


def csv_response(df: pd.DataFrame, filename: str) -> Response:
    """A downloadable CSV (UTF-8 with BOM, comma-separated)."""
    text = df.to_csv(index=False)
    return Response(
        ("\ufeff" + text).encode("utf-8"),
        media_type=CSV_MEDIA,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def with_meta(df: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """Add the provenance columns status, source, vintage to every row."""
    out = df.copy()
    out["status"] = meta["status"]
    out["source"] = meta["source"]
    out["vintage"] = meta["vintage"]
    return out


def _safe(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in ref)


@router.get("/partners.csv", summary="Partenaires d'un territoire (CSV)")
def partners_csv(
    request: Request,
    store: StoreDep,
    ref: Annotated[str, Query(min_length=1, max_length=200)],
    kind: KindQuery,
    direction: DirectionQuery = "both",
    level: Annotated[Level | None, Query()] = None,
    top: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    threshold: ThresholdQuery = 0.0,
    vintage: VintageQuery = None,
) -> Response:
    meta = flow_meta(store, kind, vintage, request)
    t = territories.resolve(store, ref)
    df = flows.partners(
        store,
        t,
        kind,
        direction=direction,
        level=level,
        top=top,
        threshold=threshold,
        vintage=vintage,
    )
    df.insert(0, "kind", kind)
    df.insert(0, "territory_name", t.name)
    df.insert(0, "territory_ref", t.ref)
    return csv_response(with_meta(df, meta), f"partenaires_{_safe(t.ref)}_{kind}.csv")


@router.get("/flows.csv", summary="Flux dessinés sur la carte (CSV)")
def flows_csv(
    request: Request,
    store: StoreDep,
    kind: KindQuery,
    level: Annotated[Level, Query()] = "epci",
    ref: Annotated[str | None, Query(max_length=200)] = None,
    direction: DirectionQuery = "both",
    top: Annotated[int, Query(ge=1, le=5000)] = 500,
    threshold: ThresholdQuery = 0.0,
    vintage: VintageQuery = None,
) -> Response:
    meta = flow_meta(store, kind, vintage, request)
    t = territories.resolve(store, ref) if ref else None
    df = flows.flow_lines(
        store,
        level,
        kind,
        ref=t,
        direction=direction,
        top=top,
        threshold=threshold,
        vintage=vintage,
    )
    df.insert(0, "kind", kind)
    name = f"flux_{kind}_{level}" + (f"_{_safe(t.ref)}" if t else "") + ".csv"
    return csv_response(with_meta(df, meta), name)


@router.get("/choropleth.csv", summary="Indicateurs de tous les territoires d'un niveau (CSV)")
def choropleth_csv(
    request: Request,
    store: StoreDep,
    kind: KindQuery,
    level: Annotated[MapLevel, Query()] = "epci",
    vintage: VintageQuery = None,
) -> Response:
    meta = flow_meta(store, kind, vintage, request)
    table = cached(
        request,
        ("indicator_table", level, kind, vintage),
        lambda: indicators.indicator_table(store, level, kind, vintage=vintage),
    )
    df = table.reset_index()
    df.insert(0, "kind", kind)
    df.insert(0, "level", level)
    df = df.drop(columns=["status", "vintage"], errors="ignore")
    return csv_response(with_meta(df, meta), f"indicateurs_{level}_{kind}.csv")


@router.get("/profile.csv", summary="Profil d'un territoire (CSV)")
def profile_csv(
    request: Request,
    store: StoreDep,
    ref: Annotated[str, Query(min_length=1, max_length=200)],
    kinds: Annotated[list[Kind] | None, Query()] = None,
    vintage: VintageQuery = None,
) -> Response:
    if kinds:
        for kind in kinds:
            current_or_404(store, kind, vintage, request)
    t = territories.resolve(store, ref)
    prof = indicators.profile(store, t, kinds=list(kinds) if kinds else None, vintage=vintage)
    return csv_response(indicators_frame(prof), f"profil_{_safe(t.ref)}.csv")


@router.get("/pair.csv", summary="Flux entre deux territoires (CSV)")
def pair_csv(
    request: Request,
    store: StoreDep,
    a: Annotated[str, Query(min_length=1, max_length=200)],
    b: Annotated[str, Query(min_length=1, max_length=200)],
    kinds: Annotated[list[Kind] | None, Query()] = None,
) -> Response:
    if kinds:
        for kind in kinds:
            current_or_404(store, kind, None, request)
    result = flows.pair(store, a, b, kinds=list(kinds) if kinds else None)
    rows = []
    for kind, item in result["kinds"].items():
        rows.append(
            {
                "kind": kind,
                "a_ref": result["a"]["ref"],
                "a_name": result["a"]["name"],
                "b_ref": result["b"]["ref"],
                "b_name": result["b"]["name"],
                "a_to_b": item["a_to_b"],
                "b_to_a": item["b_to_a"],
                "total": item["total"],
                "balance_for_a": item["balance_for_a"],
                "share_of_a_origin_to_b": item["share_of_a_origin_to_b"],
                "share_of_b_origin_to_a": item["share_of_b_origin_to_a"],
                "status": item["meta"]["status"],
                "source": item["meta"]["source"],
                "vintage": item["meta"]["vintage"],
            }
        )
    name = f"couple_{_safe(result['a']['ref'])}_{_safe(result['b']['ref'])}.csv"
    return csv_response(pd.DataFrame(rows), name)
