"""Server warm-up: the first view's answers are computed before the first visitor asks.

A server just started has empty caches: the first page would pay for reading the reference
polygons, simplifying them, computing the indicator tables of a level, building the in-memory
flow tables and compressing the 1 MB map library, all while the browser waits. The warm-up
runs at start-up, before uvicorn accepts connections: it sends the requests of the default
first view (the ones ``web/boot.js`` sends for a link without parameters) through the
application itself, so they fill exactly the caches a visitor uses, then the profile and
partners of one territory of the default level (the per-level tables every selection shares),
and compresses the web interface's files once.

It never stops the server: an answer other than 200 (an empty store, a missing level) is
logged and the rest goes on. ``MAILLAGE_WARM_UP=0`` turns it off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
from fastapi import FastAPI

log = logging.getLogger("maillage.warmup")

#: The defaults of a link without parameters (web/boot.js and web/app.js).
DEFAULT_LEVEL = "epci"
DEFAULT_KIND = "commute"
DEFAULT_INDICATOR = "self_containment"
#: Polygons prepared: the national layers of the level menu's choices drawn nationally (the
#: link without parameters), the light EPCI (a link to a territory) and départements (their
#: boxes say which communes to load).
LIGHT_LAYERS = (
    ("epci", "national"),
    ("departement", "national"),
    ("region", "national"),
    ("epci", "low"),
    ("departement", "low"),
)


@dataclass
class WarmUpReport:
    """What the warm-up asked (path → status code) and how long it took."""

    answers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    static_files: int = 0

    @property
    def failed(self) -> list[str]:
        return [path for path, code in self.answers.items() if code != 200]


def choropleth_path(api_prefix: str) -> str:
    """The default map's values, as ``web/boot.js`` asks for them."""
    query = f"level={DEFAULT_LEVEL}&kind={DEFAULT_KIND}&indicator={DEFAULT_INDICATOR}"
    return f"{api_prefix}/choropleth?{query}"


def first_view_paths(api_prefix: str) -> list[str]:
    """The API requests of the default first view, as ``web/boot.js`` writes them."""
    return [
        f"{api_prefix}/indicators",
        f"{api_prefix}/status",
        *(f"{api_prefix}/geometry/{level}?detail={detail}" for level, detail in LIGHT_LAYERS),
        choropleth_path(api_prefix),
    ]


def selection_paths(api_prefix: str, ref: str) -> list[str]:
    """The panel's requests for a selected territory (``boot.js``: profile and partners)."""
    ref_q = quote(ref, safe="")
    partners = f"kind={DEFAULT_KIND}&direction=both&top=15&threshold=0"
    return [
        f"{api_prefix}/territories/{ref_q}/profile",
        f"{api_prefix}/territories/{ref_q}/partners?{partners}",
    ]


def _first_code(answer: httpx.Response) -> str | None:
    """A territory of the choropleth answer that has a value (None when there is none)."""
    if answer.status_code != 200:
        return None
    for row in answer.json().get("data", {}).get("values", []):
        if row.get("value") is not None and row.get("code"):
            return str(row["code"])
    return None


async def warm_up(app: FastAPI, api_prefix: str) -> WarmUpReport:
    """Ask the application for the default first view and one selection; compress the web files."""
    report = WarmUpReport()
    t0 = time.perf_counter()
    report.static_files = app.state.web_files.precompress()
    transport = httpx.ASGITransport(app=app)
    headers = {"accept-encoding": "gzip"}
    async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:

        async def ask(path: str) -> httpx.Response:
            answer = await client.get(path, headers=headers)
            report.answers[path] = answer.status_code
            return answer

        first_view = {path: await ask(path) for path in first_view_paths(api_prefix)}
        code = _first_code(first_view[choropleth_path(api_prefix)])
        if code is not None:
            for path in selection_paths(api_prefix, f"{DEFAULT_LEVEL}:{code}"):
                await ask(path)
    report.seconds = time.perf_counter() - t0
    for path in report.failed:
        log.warning("warm-up: %s answered %s", path, report.answers[path])
    files, seconds = report.static_files, report.seconds
    log.info("warm-up: %d answers, %d web files, %.2f s", len(report.answers), files, seconds)
    return report
