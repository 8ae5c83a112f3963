"""What the observatory holds: flow kinds, vintages, statuses, sources, import log, settings."""

from __future__ import annotations

from fastapi import APIRouter, Request

from maillage import __version__
from maillage._schema import KIND_LABELS_FR, LEVELS
from maillage.analysis.indicators import source_meta
from maillage.analysis.territories import LEVEL_LABELS_FR
from maillage.delivery.api.deps import StoreDep, envelope, reference_meta
from maillage.delivery.api.routes._common import cached, records
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope

router = APIRouter(tags=["observatoire"], responses=ERROR_RESPONSES)


@router.get("/status", response_model=Envelope, summary="Contenu de l'observatoire")
def status(request: Request, store: StoreDep) -> dict:
    """Flow kinds held with vintage, status, source and rows; web settings."""
    available = cached(request, ("status",), store.available).copy()
    available["label"] = [KIND_LABELS_FR.get(k, k) for k in available["kind"]]
    available["source"] = [
        source_meta(store, k, int(v))["source"] if s == "modelled" else src
        for k, v, s, src in zip(
            available["kind"], available["vintage"], available["status"], available["source"]
        )
    ]
    settings = request.app.state.settings
    data = {
        "version": __version__,
        "available": records(available),
        "levels": [{"level": lv, "label": LEVEL_LABELS_FR.get(lv, lv)} for lv in LEVELS],
        "basemap_url": settings.basemap_url,
    }
    return envelope(data, reference_meta(store))


@router.get("/imports", response_model=Envelope, summary="Journal des imports")
def imports(store: StoreDep) -> dict:
    """Every import that changed the store, newest first."""
    return envelope(records(store.imports()), reference_meta(store))
