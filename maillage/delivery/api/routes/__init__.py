"""Route modules of the API, one per resource; ``ROUTERS`` lists them in mounting order."""

from __future__ import annotations

from fastapi import APIRouter

from maillage.delivery.api.routes import (
    cooperations,
    exports,
    flows,
    geometry,
    indicators,
    meta,
    perimeters,
    territories,
)

ROUTERS: list[APIRouter] = [
    meta.router,
    territories.router,
    flows.router,
    indicators.router,
    geometry.router,
    perimeters.router,
    exports.router,
    cooperations.router,
]
