"""Shared dependencies of the routes: the settings, the store, the envelope builder."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from maillage._errors import StoreError
from maillage.settings import Settings
from maillage.store import Store


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def open_store(settings: Settings) -> Store:
    """Open the store named by the settings for writing (perimeters are saved into it);
    read-only when another process holds it for writing."""
    try:
        return Store.open(settings)
    except StoreError:
        return Store.open(settings, read_only=True)


def get_store(request: Request) -> Store:
    """The store of the application, opened on first use (see :func:`open_store`)."""
    state = request.app.state
    if state.store is None:
        with state.store_lock:
            if state.store is None:
                state.store = open_store(state.settings)
    store: Store = state.store
    store.require_built()
    return store


async def served_store(request: Request) -> Store:
    """:func:`get_store` as a dependency: answered in the event loop once the store is open and
    known to be built (a look-up), so that a request does not wait for a worker thread only to
    be handed the store; the first requests open and check it in the thread pool."""
    store: Store | None = request.app.state.store
    if store is not None and store.known_built():
        return store
    return await run_in_threadpool(get_store, request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(served_store)]


def envelope(data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The success envelope ``{"ok": true, "data": …, "meta": …}``."""
    return {"ok": True, "data": data, "meta": meta}


#: Vintage of the embedded reference (see ``maillage.reference.communes``): COG of
#: 1 January 2026, EPCI 2026, populations légales 2023.
REFERENCE_VINTAGE = 2026
REFERENCE_SOURCE = (
    "INSEE, Code officiel géographique au 1er janvier 2026 ; EPCI 2026 (DGCL) ; "
    "populations légales 2023 ; contours simplifiés"
)


def reference_meta(store: Store) -> dict[str, Any]:
    """Meta of answers drawn from the territorial reference only."""
    source = store.get_meta("reference_source") or REFERENCE_SOURCE
    vintage = store.get_meta("reference_vintage") or REFERENCE_VINTAGE
    return {"status": "observed", "source": source, "vintage": vintage}


def require(condition: bool, message: str, code: str = "bad_request", status: int = 400) -> None:
    """Raise the API error ``status``/``code`` unless ``condition`` holds."""
    from maillage.delivery.api.errors import ApiError

    if not condition:
        raise ApiError(status, code, message)


__all__ = ["SettingsDep", "StoreDep", "StoreError", "envelope", "reference_meta", "require"]
