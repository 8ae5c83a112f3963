"""Polygons as GeoJSON: one layer per level, communes per département, one territory's outline.

Layers are built once per process from ``maillage.reference.geometry`` (lon/lat, simplified),
with coordinates rounded to 4 decimals (≈ 10 m, the grid the reference is snapped to), and
kept gzip-compressed in memory. The national commune layer is never sent whole: communes
come per département (``?dep=29``). Two lighter layers serve the small scales, each polygon
simplified on its own (Douglas-Peucker; simplifying the coverage as a whole keeps borders
common but takes ten times longer, on the first request of a cold server):

- ``?detail=low`` for regional views (zoom below 8): 0.004° ≈ 300 m, under a pixel there, a
  third of the vertices, built in a tenth of a second;
- ``?detail=national`` for the whole country (zoom below 6): 0.02° ≈ 1.5 km, under a pixel
  there, a quarter of ``low``'s vertices: the map of France is drawn in a fraction of the time.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Query, Request, Response

from maillage import reference
from maillage.analysis import territories
from maillage.delivery.api.deps import StoreDep, reference_meta
from maillage.delivery.api.errors import ApiError
from maillage.delivery.api.routes._common import MapLevel, cached
from maillage.delivery.api.schemas import ERROR_RESPONSES

router = APIRouter(tags=["géométrie"], responses=ERROR_RESPONSES)

#: Decimals kept per layer: 4 (≈ 10 m) for communes, 3 (≈ 100 m) for national layers, which
#: keeps the national EPCI layer under 5 MB before compression.
DECIMALS = {"commune": 4, "epci": 3, "ept": 4, "departement": 3, "region": 3, "perimeter": 4}
#: Tolerance (degrees) of the light layers (``detail=low``): under a pixel below zoom 8.
LOW_DETAIL_TOLERANCE = 0.004
#: Tolerance (degrees) of the national layers (``detail=national``): under a pixel below zoom 6.
NATIONAL_DETAIL_TOLERANCE = 0.02
Detail = Literal["national", "low", "full"]
#: Simplification tolerance of each light detail.
TOLERANCE: dict[str, float] = {"low": LOW_DETAIL_TOLERANCE, "national": NATIONAL_DETAIL_TOLERANCE}


def rounded(geoms: Any, decimals: int = 4) -> np.ndarray:
    """Copies of the geometries with every coordinate rounded to ``decimals`` decimals."""
    arr = np.asarray(geoms, dtype=object)
    return shapely.transform(arr, lambda xy: np.round(xy, decimals))


def feature_collection(geoms: pd.Series, props: pd.DataFrame, decimals: int = 4) -> str:
    """A GeoJSON FeatureCollection text from shapely geometries and their properties."""
    # rounding the coordinates before writing is ~10x faster than cutting digits in the text
    texts = shapely.to_geojson(rounded(geoms, decimals))
    parts = []
    prop_rows = props.to_dict("records")
    for geo, prop in zip(texts, prop_rows):
        if geo is None:
            continue
        clean = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in prop.items()}
        parts.append(
            '{"type":"Feature","properties":'
            + json.dumps(clean, ensure_ascii=False)
            + ',"geometry":'
            + geo
            + "}"
        )
    return '{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}"


def _envelope_bytes(fc: str, meta: dict[str, Any]) -> bytes:
    text = '{"ok":true,"data":' + fc + ',"meta":' + json.dumps(meta, ensure_ascii=False) + "}"
    return text.encode()


def _shapes(request: Request, level: str) -> pd.Series:
    """Polygons of a level as shapely geometries (read once per process)."""
    return cached(request, ("shapes", level), lambda: reference.shapes(level))


def _light_shapes(request: Request, level: str, detail: str = "low") -> pd.Series:
    """The polygons of a level simplified for small scales (see the module docstring)."""

    def build() -> pd.Series:
        full = _shapes(request, level)
        arr = np.asarray(full, dtype=object)
        light = shapely.simplify(arr, TOLERANCE[detail], preserve_topology=False)
        return pd.Series(light, index=full.index, name=full.name)

    return cached(request, ("shapes", level, detail), build)


def territory_shape(request: Request, store: Any, t: territories.Territory) -> Any:
    """The polygon of one territory (a perimeter's is the union of its communes), or None."""
    if t.level == "perimeter":
        members = territories.communes_of(store, t)
        shapes = _shapes(request, "commune").reindex(members).dropna()
        if not len(shapes):
            return None
        return shapely.union_all(np.asarray(shapes, dtype=object), grid_size=1e-4)
    if t.level not in reference.GEOMETRY_LEVELS:
        return None
    return _shapes(request, t.level).get(t.code)


def _names(store: Any, level: str) -> pd.DataFrame:
    return store.df("SELECT code, name FROM territory WHERE level = ?", [level]).set_index("code")


def _layer(
    request: Request, store: Any, level: str, dep: str | None, detail: Detail = "full"
) -> bytes:
    shapes = (
        _light_shapes(request, level, detail) if detail in TOLERANCE else _shapes(request, level)
    )
    names = _names(store, level)
    if level == "commune":
        com = reference.communes()[["code", "dep"]].set_index("code")
        deps = com["dep"].reindex(shapes.index)
        if dep is not None:
            keep = (deps == dep).to_numpy()
            if not keep.any():
                raise ApiError(404, "unknown_territory", f"Aucun département de code « {dep} ».")
            shapes, deps = shapes[keep], deps[keep]
        props = pd.DataFrame(
            {
                "code": shapes.index,
                "name": names["name"].reindex(shapes.index).to_numpy(),
                "dep": deps.to_numpy(),
            }
        )
    else:
        props = pd.DataFrame(
            {"code": shapes.index, "name": names["name"].reindex(shapes.index).to_numpy()}
        )
    meta = reference_meta(store) | {"level": level, "features": len(props), "detail": detail}
    return _envelope_bytes(feature_collection(shapes, props, DECIMALS[level]), meta)


def _gzip_response(raw: tuple[bytes, bytes], request: Request) -> Response:
    plain, packed = raw
    headers = {"cache-control": "public, max-age=3600", "vary": "accept-encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(packed, media_type="application/json", headers=headers)
    return Response(plain, media_type="application/json", headers=headers)


def _pack(plain: bytes) -> tuple[bytes, bytes]:
    return plain, gzip.compress(plain, compresslevel=6)


def geojson_response(
    request: Request, key: tuple, build: Callable[[], tuple[str, dict[str, Any]]]
) -> Response:
    """A GeoJSON envelope built once (``build`` gives the FeatureCollection text and the meta),
    kept compressed under ``key`` and sent gzipped when the client accepts it."""

    def pack() -> tuple[bytes, bytes]:
        fc, meta = build()
        return _pack(_envelope_bytes(fc, meta))

    return _gzip_response(cached(request, key, pack), request)


@router.get("/geometry/territory/{ref}", summary="Contour d'un territoire ou d'un périmètre")
def territory_outline(request: Request, store: StoreDep, ref: str) -> Response:
    """The polygon of one territory; a perimeter's is the union of its communes."""
    t = territories.resolve(store, ref)

    def build() -> tuple[bytes, bytes]:
        geom = territory_shape(request, store, t)
        if geom is None:
            raise ApiError(404, "no_geometry", f"Pas de contour pour « {t.name} ».")
        props = pd.DataFrame({"code": [t.code], "name": [t.name], "level": [t.level]})
        fc = feature_collection(pd.Series([geom]), props)
        return _pack(_envelope_bytes(fc, reference_meta(store) | {"level": t.level}))

    return _gzip_response(cached(request, ("outline", t.level, t.code), build), request)


@router.get("/geometry/{level}", summary="Polygones d'un niveau (GeoJSON)")
def layer(
    request: Request,
    store: StoreDep,
    level: MapLevel,
    dep: Annotated[
        str | None,
        Query(pattern=r"^(\d{2,3}|2[AB])$", description="communes de ce département seulement"),
    ] = None,
    detail: Annotated[
        Detail,
        Query(
            description="« low » : contours allégés pour les vues régionales (zoom < 8) ; "
            "« national » : plus allégés encore, pour la France entière (zoom < 6)"
        ),
    ] = "full",
) -> Response:
    """A GeoJSON FeatureCollection of the polygons of ``level`` (properties: code, name).

    Communes are served per département only (``dep`` is required for them), always in full
    detail; ``detail=low`` and ``detail=national`` lighten the other levels.
    """
    if level == "commune" and dep is None:
        raise ApiError(
            400,
            "too_large",
            "La couche nationale des communes est trop lourde : demandez-la par "
            "département avec ?dep=29.",
        )
    if level == "commune":
        detail = "full"
    key = ("geometry", level, dep if level == "commune" else None, detail)
    raw = cached(
        request,
        key,
        lambda: _pack(_layer(request, store, level, dep if level == "commune" else None, detail)),
    )
    return _gzip_response(raw, request)
