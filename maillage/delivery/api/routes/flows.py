"""Flows: partners of a territory, lines for the flow map, the pair view.

Partners and lines are the answers the map asks for most, many at a time: they are served by
async routes that send a cached answer straight from the event loop (kept serialised and
gzipped), and build a new one in the thread pool from the tables that
:func:`maillage.analysis.flows.level_view` holds in memory.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from maillage.analysis import flows
from maillage.delivery.api.deps import StoreDep, envelope
from maillage.delivery.api.routes._common import (
    DirectionQuery,
    KindQuery,
    KindsQuery,
    Level,
    ThresholdQuery,
    VintageQuery,
    cached_answer,
    cached_json,
    combine_meta,
    current_or_404,
    deep_clean,
    flow_meta,
    records,
)
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope
from maillage.store import Store

router = APIRouter(tags=["flux"], responses=ERROR_RESPONSES)

TopQuery = Annotated[int, Query(ge=1, le=5000, description="nombre de flux gardés")]


@router.get(
    "/territories/{ref}/partners",
    response_model=Envelope,
    summary="Principaux partenaires d'un territoire",
)
async def partners(
    request: Request,
    ref: str,
    kind: KindQuery,
    direction: DirectionQuery = "both",
    level: Annotated[Level | None, Query(description="niveau des partenaires")] = None,
    top: Annotated[int, Query(ge=1, le=1000)] = 10,
    threshold: ThresholdQuery = 0.0,
    vintage: VintageQuery = None,
) -> Response:
    """Partners ranked by outgoing, incoming or total flow, with the dependency shares."""

    def build(store: Store) -> dict:
        meta = flow_meta(store, kind, vintage, request)
        t = flows.territory_of(store, ref)
        rows = flows.partner_rows(
            store, t, kind, direction=direction, level=level, top=top, threshold=threshold,
            vintage=vintage,
        )  # fmt: skip
        data = {
            "territory": deep_clean(t.as_dict()),
            "kind": kind,
            "direction": direction,
            "level": level or flows.default_partner_level(t),
            "partners": rows,
        }
        return envelope(data, meta)

    key = ("partners", ref, kind, direction, level, top, threshold, vintage)
    return await cached_answer(request, key, build)


@router.get("/flows", response_model=Envelope, summary="Flux à dessiner sur la carte")
async def flow_lines(
    request: Request,
    kind: KindQuery,
    level: Annotated[Level, Query(description="niveau d'agrégation des extrémités")] = "epci",
    ref: Annotated[
        str | None, Query(max_length=200, description="seulement les flux de ce territoire")
    ] = None,
    direction: DirectionQuery = "both",
    top: TopQuery = 500,
    threshold: ThresholdQuery = 0.0,
    vintage: VintageQuery = None,
) -> Response:
    """Origin, destination, value and the points of both ends, largest first."""

    def build(store: Store) -> dict:
        meta = flow_meta(store, kind, vintage, request)
        t = flows.territory_of(store, ref) if ref is not None else None
        rows = flows.flow_line_rows(
            store, level, kind, ref=t, direction=direction, top=top, threshold=threshold,
            vintage=vintage,
        )  # fmt: skip
        data = {
            "kind": kind,
            "level": level,
            "direction": direction,
            "territory": deep_clean(t.as_dict()) if t else None,
            "lines": rows,
        }
        return envelope(data, meta)

    key = ("flows", ref, kind, level, direction, top, threshold, vintage)
    return await cached_answer(request, key, build)


@router.get("/pair", response_model=Envelope, summary="Vue d'un couple de territoires")
def pair(
    request: Request,
    store: StoreDep,
    a: Annotated[str, Query(min_length=1, max_length=200, description="premier territoire")],
    b: Annotated[str, Query(min_length=1, max_length=200, description="second territoire")],
    kinds: KindsQuery = None,
    detail: Annotated[int, Query(ge=0, le=1000, description="paires de communes gardées")] = 20,
) -> Response:
    """Flows both ways by kind between two territories, balance, shares, commune detail."""
    if kinds:
        for kind in kinds:
            current_or_404(store, kind, None, request)

    def build() -> dict:
        result = flows.pair(store, a, b, kinds=list(kinds) if kinds else None)
        for item in result["kinds"].values():
            item["detail_total"] = len(item["detail"])
            item["detail"] = item["detail"].head(detail)
        metas = [k["meta"] for k in result["kinds"].values()]
        return envelope(deep_clean(result), combine_meta(metas))

    key = ("pair", a.strip(), b.strip(), tuple(kinds or ()), detail)
    return cached_json(request, key, build)


@router.get(
    "/territories/{ref}/ties",
    response_model=Envelope,
    summary="Liens plus forts (ou plus faibles) que la taille et la distance ne l'expliquent",
)
def ties(
    request: Request,
    store: StoreDep,
    ref: str,
    kind: KindQuery,
    scope: Annotated[str | None, Query(max_length=200, description="territoire englobant")] = None,
    top: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict:
    """Observed / expected and Pearson residuals of the territory's ties against the
    doubly-constrained gravity model calibrated on the territories of its level inside
    ``scope`` (default: the région of an EPCI, the département of a commune). The expected
    flows are modelled."""
    from maillage.analysis import modelling

    current_or_404(store, kind, None, request)
    t = flows.territory_of(store, ref)
    if scope is None and t.level in ("commune", "epci"):
        # the model is calibrated around the territory: its département (communes) or its
        # région (EPCI), which keeps the answer to a few seconds
        up = "departement" if t.level == "commune" else "region"
        code = store.scalar(
            """SELECT u.code FROM membership m JOIN membership u
               ON u.commune = m.commune AND u.level = ?
               WHERE m.level = ? AND m.code = ? GROUP BY u.code ORDER BY count(*) DESC
               LIMIT 1""",
            [up, t.level, t.code],
        )
        scope = f"{'dep' if up == 'departement' else 'reg'}:{code}"
    if t.level == "perimeter":
        from maillage.delivery.api.errors import ApiError

        raise ApiError(
            422,
            "unsupported",
            "Les liens remarquables se calculent entre "
            "territoires d'un même niveau : choisissez un EPCI ou une commune.",
        )
    level = t.level
    df = store.memo(
        ("ties", level, kind, scope),
        lambda: modelling.ties(store, kind=kind, level=level, scope=scope, top=None),
    )
    mine = df[(df["origin"] == t.code) | (df["destination"] == t.code)].head(top)
    meta = flow_meta(store, kind, None) | {
        "expected_status": "modelled",
        "beta": df.attrs.get("beta"),
        "cpc": df.attrs.get("cpc"),
    }
    return envelope({"territory": t.as_dict(), "ties": records(mine)}, meta)
