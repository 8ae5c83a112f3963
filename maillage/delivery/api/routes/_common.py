"""Helpers shared by the route modules: parameter types, frame → JSON, caching, meta."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from maillage._jsonsafe import clean, deep_clean, records  # noqa: F401 (used by the routes)
from maillage._schema import FLOW_KINDS, KIND_LABELS_FR
from maillage.analysis.indicators import source_meta
from maillage.delivery.api.deps import get_store
from maillage.delivery.api.errors import ApiError
from maillage.store import Store

T = TypeVar("T")

Level = Literal["commune", "epci", "ept", "departement", "region", "perimeter"]
MapLevel = Literal["commune", "epci", "ept", "departement", "region"]
Kind = Literal["commute", "residential", "school", "establishment_transfer", "hq_link", "wage"]
Direction = Literal["in", "out", "both"]

KindQuery = Annotated[Kind, Query(description="type de flux: " + ", ".join(FLOW_KINDS))]
VintageQuery = Annotated[
    int | None, Query(ge=1900, le=2100, description="millésime (le plus récent par défaut)")
]
DirectionQuery = Annotated[
    Direction, Query(description="out: sortants, in: entrants, both: les deux")
]
ThresholdQuery = Annotated[float, Query(ge=0, le=1e12, description="valeur minimale d'un flux")]
RefPath = Annotated[str, "territory reference such as epci:242900314"]
KindsQuery = Annotated[list[Kind] | None, Query(description="types de flux (tous par défaut)")]


def current_or_404(
    store: Store, kind: str, vintage: int | None, request: Request | None = None
) -> tuple[int, str]:
    """The (vintage, status) served for ``kind``; 404 when the store holds none.

    With ``request``, the answer is memoised in the application (it scans the flows).
    """
    if request is not None:
        cur = cached(request, ("current", kind, vintage), lambda: store.current(kind, vintage))
    else:
        cur = store.current(kind, vintage)
    if cur is None:
        held = ", ".join(sorted(store.kinds())) or "aucun"
        what = f"« {KIND_LABELS_FR.get(kind, kind)} »" + (f" {vintage}" if vintage else "")
        raise ApiError(
            404, "no_data", f"Aucun flux {what} dans l'observatoire (types présents : {held})."
        )
    return cur


def flow_meta(
    store: Store, kind: str, vintage: int | None, request: Request | None = None
) -> dict[str, Any]:
    """Meta of an answer built on the flows of one kind (memoised with ``request``)."""
    current_or_404(store, kind, vintage, request)
    if request is None:
        return source_meta(store, kind, vintage)
    return dict(cached(request, ("meta", kind, vintage), lambda: source_meta(store, kind, vintage)))


def combine_meta(metas: list[dict[str, Any]]) -> dict[str, Any]:
    """One meta for several kinds: status ``mixed`` when they differ; per-kind detail kept."""
    if not metas:
        return {
            "status": "observed",
            "source": "aucune donnée de flux",
            "vintage": None,
            "kinds": [],
        }
    statuses = {m["status"] for m in metas}
    vintages = sorted({m["vintage"] for m in metas})
    return {
        "status": statuses.pop() if len(statuses) == 1 else "mixed",
        "source": " ; ".join(dict.fromkeys(m["source"] for m in metas)),
        "vintage": vintages[0] if len(vintages) == 1 else "/".join(str(v) for v in vintages),
        "kinds": metas,
    }


#: Most cached values kept; beyond it the oldest answers are dropped (layers are kept).
CACHE_SIZE = 256
_PINNED = ("geometry", "shapes", "indicator_table", "status", "current", "meta")


def cached(request: Request, key: tuple, build: Callable[[], T]) -> T:
    """Memoise ``build()`` in the application (the store only changes through this app)."""
    cache: dict = request.app.state.cache
    if key in cache:
        return cache[key]
    lock: threading.Lock = request.app.state.cache_lock
    value = build()
    with lock:
        if len(cache) >= CACHE_SIZE:
            for old in [k for k in cache if k[0] not in _PINNED][: CACHE_SIZE // 4]:
                del cache[old]
        cache.setdefault(key, value)
        return cache[key]


def json_response(payload: dict[str, Any], status_code: int = 200) -> Response:
    """A JSON response from an already JSON-safe payload (no re-validation)."""
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode(), status_code=status_code, media_type="application/json")


def cached_json(request: Request, key: tuple, build: Callable[[], dict[str, Any]]) -> Response:
    """Memoise the serialised answer ``build()`` (an envelope) under ``key``."""
    body: bytes = cached(request, ("json", *key), lambda: json_response(build()).body)
    return Response(body, media_type="application/json")


# -- answers kept serialised and compressed, sent from the event loop ------------------------------

#: Bodies smaller than this are sent uncompressed, here and by the application's GZip middleware.
GZIP_MIN_SIZE = 2000


@dataclass
class _Body:
    """One JSON answer as sent: its bytes, and their gzip form made on first demand."""

    plain: bytes
    packed: bytes | None = None

    def gzipped(self) -> bytes:
        if self.packed is None:
            self.packed = gzip.compress(self.plain, compresslevel=6)
        return self.packed


def _dumps(payload: dict) -> bytes:
    """Compact UTF-8 JSON, the bytes ``json_response`` writes, ten times faster (orjson); a NaN
    would be written null (the rows hold None already)."""
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


async def cached_answer(request: Request, key: tuple, build: Callable[[Store], dict]) -> Response:
    """The envelope ``build(store)`` under ``key``, serialised once and kept in the answer cache
    with its gzip form.

    A cached answer is sent from the event loop (a look-up: no worker thread, no new
    compression); a new one is built and compressed in the thread pool, since it may query the
    store.
    """
    cache_key = ("json", *key)
    gzipped = "gzip" in request.headers.get("accept-encoding", "")

    def prepare() -> _Body:
        body = cached(request, cache_key, lambda: _Body(_dumps(build(get_store(request)))))
        if gzipped and len(body.plain) >= GZIP_MIN_SIZE:
            body.gzipped()
        return body

    body = request.app.state.cache.get(cache_key)
    if body is None or (gzipped and body.packed is None and len(body.plain) >= GZIP_MIN_SIZE):
        body = await run_in_threadpool(prepare)
    if len(body.plain) < GZIP_MIN_SIZE:
        return Response(body.plain, media_type="application/json")
    headers = {"vary": "Accept-Encoding"}
    if gzipped:
        headers["content-encoding"] = "gzip"
        return Response(body.gzipped(), media_type="application/json", headers=headers)
    return Response(body.plain, media_type="application/json", headers=headers)


def invalidate(request: Request, prefix: str) -> None:
    """Drop every cached value whose key starts with ``prefix`` (or ``("json", prefix)``)."""
    with request.app.state.cache_lock:
        for key in [k for k in request.app.state.cache if k and prefix in k[:2]]:
            del request.app.state.cache[key]
