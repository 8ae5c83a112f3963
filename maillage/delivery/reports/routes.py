"""HTTP routes for sheets and export files, as a FastAPI router the API includes.

This room never imports the API: :func:`make_router` takes the dependency that yields the
store (``maillage.delivery.api.deps.get_store``) and returns the router, e.g.::

    from maillage.delivery.reports.routes import make_router
    app.include_router(make_router(get_store), prefix="/api/v1")

Routes (all GET):

- ``/reports/sheet.html?ref=…[&with=…]`` and ``/reports/sheet.pdf?ref=…[&with=…]``
- ``/exports/bundle.xlsx?ref=…`` and ``/exports/bundle.gpkg?ref=…``

Errors of maillage propagate to the API's own exception handlers (one error shape).
"""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GPKG_MEDIA = "application/geopackage+sqlite3"


def _safe(ref: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in ref)


def _download(data: bytes, media: str, filename: str) -> Response:
    return Response(
        data,
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def make_router(get_store: Callable[..., Any]) -> APIRouter:
    """A router serving sheets and XLSX/GeoPackage exports, reading the store of ``get_store``."""
    router = APIRouter(tags=["fiches et exports"])
    store_dep = Annotated[Any, Depends(get_store)]
    ref_q = Annotated[str, Query(min_length=1, max_length=200, description="territoire")]
    with_q = Annotated[
        str | None, Query(alias="with", max_length=200, description="second territoire")
    ]

    def _sheet(store: Any, ref: str, other: str | None) -> Any:
        from maillage.delivery.reports.sheets import pair_sheet, territory_sheet

        if other:
            return pair_sheet(store, ref, other)
        return territory_sheet(store, ref)

    @router.get("/reports/sheet.html", response_class=HTMLResponse, summary="Fiche (HTML)")
    def sheet_html(store: store_dep, ref: ref_q, other: with_q = None) -> HTMLResponse:
        from maillage.delivery.reports.sheets import render_html

        return HTMLResponse(render_html(_sheet(store, ref, other)))

    @router.get("/reports/sheet.pdf", summary="Fiche (PDF)")
    def sheet_pdf(store: store_dep, ref: ref_q, other: with_q = None) -> Response:
        from maillage.delivery.reports.pdf import html_to_pdf
        from maillage.delivery.reports.sheets import render_html

        sheet = _sheet(store, ref, other)
        with tempfile.TemporaryDirectory() as tmp:
            path = html_to_pdf(render_html(sheet), Path(tmp) / "fiche.pdf")
            data = path.read_bytes()
        name = f"fiche_{_safe(ref)}" + (f"_{_safe(other)}" if other else "") + ".pdf"
        return _download(data, "application/pdf", name)

    def _bundle(
        store: Any, ref: str, export: Callable[..., Path], suffix: str, media: str
    ) -> Response:
        """Run ``export`` into a temporary file and send it as ``<ref>.<suffix>``."""
        with tempfile.TemporaryDirectory() as tmp:
            data = export(store, ref, Path(tmp) / f"export.{suffix}").read_bytes()
        return _download(data, media, f"{_safe(ref)}.{suffix}")

    @router.get("/exports/bundle.xlsx", summary="Classeur XLSX d'un territoire")
    def bundle_xlsx(store: store_dep, ref: ref_q) -> Response:
        from maillage.delivery.exports import export_xlsx

        return _bundle(store, ref, export_xlsx, "xlsx", XLSX_MEDIA)

    @router.get("/exports/bundle.gpkg", summary="GeoPackage d'un territoire (EPSG:4326)")
    def bundle_gpkg(store: store_dep, ref: ref_q) -> Response:
        from maillage.delivery.exports import export_gpkg

        return _bundle(store, ref, export_gpkg, "gpkg", GPKG_MEDIA)

    return router
