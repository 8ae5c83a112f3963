"""Territories: search by name or code, identity, profile (indicators against the stratum)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from maillage.analysis import indicators, territories
from maillage.delivery.api.deps import StoreDep, envelope, reference_meta
from maillage.delivery.api.routes._common import (
    KindsQuery,
    Level,
    VintageQuery,
    cached_json,
    combine_meta,
    current_or_404,
    deep_clean,
    records,
)
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope

router = APIRouter(tags=["territoires"], responses=ERROR_RESPONSES)


@router.get("/territories/search", response_model=Envelope, summary="Chercher un territoire")
def search(
    store: StoreDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="nom ou code")],
    levels: Annotated[list[Level] | None, Query(description="niveaux à chercher")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict:
    """Territories whose name or code matches ``q`` (accents and case ignored), best first."""
    hits = territories.search(store, q, levels=list(levels) if levels else None, limit=limit)
    return envelope(records(hits), reference_meta(store))


@router.get("/territories/{ref}", response_model=Envelope, summary="Identité d'un territoire")
def territory(store: StoreDep, ref: str) -> dict:
    """One territory: level, code, name, population, type, representative point."""
    t = territories.resolve(store, ref)
    n = store.scalar(
        "SELECT count(*) FROM membership WHERE level = ? AND code = ?", [t.level, t.code]
    )
    return envelope(deep_clean(t.as_dict() | {"n_communes": int(n or 0)}), reference_meta(store))


@router.get(
    "/territories/{ref}/profile",
    response_model=Envelope,
    summary="Profil: indicateurs comparés à la strate",
)
def profile(
    request: Request,
    store: StoreDep,
    ref: str,
    kinds: KindsQuery = None,
    vintage: VintageQuery = None,
) -> Response:
    """Indicators of a territory for each flow kind, with its stratum's statistics and rank."""
    if kinds:
        for kind in kinds:
            current_or_404(store, kind, vintage, request)
    t = territories.resolve(store, ref)

    def build() -> dict:
        chosen = list(kinds) if kinds else None
        result = indicators.profile(store, t, kinds=chosen, vintage=vintage)
        metas = [k["meta"] for k in result["kinds"].values()]
        return envelope(deep_clean(result), combine_meta(metas))

    return cached_json(request, ("profile", t.level, t.code, tuple(kinds or ()), vintage), build)
