"""The register of cooperations: reads for everyone, writes for editors with a bearer token.

Tokens are created with the command line (``maillage cooperations token``); send them as
``Authorization: Bearer <token>``. Every write goes through ``maillage.cooperations.crud``
(validated, versioned, kept in the history).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from maillage.delivery.api.deps import envelope
from maillage.delivery.api.errors import ApiError
from maillage.delivery.api.routes._common import records
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope

router = APIRouter(tags=["coopérations"], responses=ERROR_RESPONSES)

_ENGINE_LOCK = threading.Lock()
SlugPath = Annotated[str, Path(min_length=1, max_length=120)]


def registry_meta(settings: Any) -> dict[str, Any]:
    """Meta of the register's answers (records are entered by people: observed)."""
    return {
        "status": "observed",
        "source": "Registre des coopérations de maillage",
        "vintage": None,
    }


def _engine(request: Request) -> Any:
    from maillage.cooperations.db import open_registry

    state = request.app.state
    if getattr(state, "registry_engine", None) is None:
        with _ENGINE_LOCK:
            if getattr(state, "registry_engine", None) is None:
                state.registry_engine = open_registry(state.settings.registry_url)
    return state.registry_engine


@contextmanager
def session_of(request: Request) -> Iterator[Any]:
    """A session on the register: committed on success, rolled back on any error."""
    from maillage.cooperations.db import session_factory

    session = session_factory(_engine(request))()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _editor(session: Any, authorization: str | None) -> Any:
    from maillage.cooperations.auth import authenticate_token, require_role

    if not authorization or not authorization.lower().startswith("bearer "):
        raise ApiError(
            401,
            "unauthorized",
            "Écriture réservée aux éditeurs : envoyez « Authorization: Bearer "
            "<jeton> » (jeton créé par `maillage cooperations token`).",
        )
    user = authenticate_token(session, authorization.split(" ", 1)[1].strip())
    return require_role(user, "editor")


@router.get("/cooperations", response_model=Envelope, summary="Coopérations du registre")
def list_cooperations(
    request: Request,
    territory: Annotated[
        str | None, Query(max_length=200, description="partie (epci:…, com:…, per:…)")
    ] = None,
    theme: Annotated[str | None, Query(max_length=80)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
    instrument: Annotated[str | None, Query(max_length=80)] = None,
) -> dict:
    """Cooperations, optionally filtered by party, theme, status or instrument."""
    from maillage.cooperations import crud

    with session_of(request) as session:
        recs = crud.list_cooperations(
            session, party=territory, theme=theme, status=status, instrument=instrument
        )
        data = [r.to_dict(include_version=True) for r in recs]
    return envelope(
        {"cooperations": data, "count": len(data)}, registry_meta(request.app.state.settings)
    )


@router.get("/cooperations/{slug}", response_model=Envelope, summary="Une coopération")
def get_cooperation(request: Request, slug: SlugPath) -> dict:
    from maillage.cooperations import crud

    with session_of(request) as session:
        rec = crud.get(session, slug)
        return envelope(
            rec.to_dict(include_version=True), registry_meta(request.app.state.settings)
        )


@router.post(
    "/cooperations",
    response_model=Envelope,
    status_code=201,
    summary="Ajouter une coopération (éditeurs)",
)
def create_cooperation(
    request: Request,
    record: dict[str, Any],
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Add a record (fields of ``Cooperation.to_dict``); needs an editor's token."""
    from maillage.cooperations import crud

    with session_of(request) as session:
        user = _editor(session, authorization)
        rec = crud.create(session, record, user=user)
        data = rec.to_dict(include_version=True)
    return JSONResponse(envelope(data, registry_meta(request.app.state.settings)), status_code=201)


@router.put(
    "/cooperations/{slug}", response_model=Envelope, summary="Modifier une coopération (éditeurs)"
)
def update_cooperation(
    request: Request,
    slug: SlugPath,
    changes: dict[str, Any],
    authorization: Annotated[str | None, Header()] = None,
) -> dict:
    """Change fields of a record; send its ``version`` to refuse a stale edit (409)."""
    from maillage.cooperations import crud

    expected = changes.pop("version", None)
    with session_of(request) as session:
        user = _editor(session, authorization)
        rec = crud.update(session, slug, changes, user=user, expected_version=expected)
        data = rec.to_dict(include_version=True)
    return envelope(data, registry_meta(request.app.state.settings))


@router.delete(
    "/cooperations/{slug}", response_model=Envelope, summary="Supprimer une coopération (éditeurs)"
)
def delete_cooperation(
    request: Request,
    slug: SlugPath,
    authorization: Annotated[str | None, Header()] = None,
) -> dict:
    from maillage.cooperations import crud

    with session_of(request) as session:
        user = _editor(session, authorization)
        crud.delete(session, slug, user=user)
    return envelope({"slug": slug, "deleted": True}, registry_meta(request.app.state.settings))


def cached_register(request: Request, session: Any) -> list[Any]:
    """Every record of the register, read again only when the register has changed."""
    from maillage.cooperations import crud
    from maillage.cooperations.from_store import register_fingerprint

    state = request.app.state
    stamp = register_fingerprint(session)
    cached = getattr(state, "register_cache", None)
    if cached is None or cached[0] != stamp:
        cached = (stamp, crud.list_cooperations(session))
        state.register_cache = cached
    return cached[1]


def with_positions(store: Any, links: Any) -> Any:
    """The links with the lon/lat of both ends (``lon_a, lat_a, lon_b, lat_b``), so that a map
    can draw them; ends without a position get None."""
    from maillage.cooperations._reference import make_ref

    out = links.copy()
    refs = sorted(set(out["a"]) | set(out["b"])) if len(out) else []
    codes = [ref.split(":", 1)[-1] for ref in refs]
    found = store.df(
        "SELECT level, code, lon, lat FROM territory WHERE code IN (SELECT unnest(?))", [codes]
    )
    pos = {
        make_ref(level, code): (lon, lat)
        for level, code, lon, lat in found.itertuples(index=False, name=None)
    }
    for end in ("a", "b"):
        out[f"lon_{end}"] = [pos.get(ref, (None, None))[0] for ref in out[end]]
        out[f"lat_{end}"] = [pos.get(ref, (None, None))[1] for ref in out[end]]
    return out


@router.get(
    "/territories/{ref}/coverage",
    response_model=Envelope,
    summary="Liens forts d'un territoire et coopérations qui les couvrent",
)
def territory_coverage(
    request: Request,
    ref: Annotated[str, Path(min_length=1, max_length=200)],
    kinds: Annotated[list[str] | None, Query(alias="kind")] = None,
    level: Annotated[str | None, Query(max_length=20)] = None,
    min_share: Annotated[float, Query(ge=0, le=1)] = 0.05,
    min_value: Annotated[float, Query(ge=0)] = 50.0,
) -> dict:
    """Strong links of a territory (by flow kind), the cooperations covering each, the strong
    links with no cooperation, and the territory's cooperations resting on no measured link."""
    from maillage.cooperations.coverage import Thresholds
    from maillage.cooperations.from_store import coverage_summary
    from maillage.cooperations.from_store import territory_coverage as compute
    from maillage.delivery.api.deps import get_store

    store = get_store(request)
    th = Thresholds(min_share=min_share, min_value=min_value)
    with session_of(request) as session:
        territory, res = compute(
            store,
            session,
            ref,
            kinds=kinds,
            level=level,
            thresholds=th,
            register=cached_register(request, session),
        )
    data = {
        "territory": territory.as_dict(),
        "summary": coverage_summary(res),
        "links": records(with_positions(store, res.links)),
        "uncovered": records(with_positions(store, res.uncovered)),
        "cooperations_without_link": records(res.unsupported),
        "thresholds": {"min_share": min_share, "min_value": min_value},
    }
    statuses = {k: store.current(k) for k in (kinds or store.kinds())}
    modelled = any(s and s[1] == "modelled" for s in statuses.values())
    meta = registry_meta(request.app.state.settings) | {
        "status": "modelled" if modelled else "observed",
        "flows": {k: {"vintage": v[0], "status": v[1]} for k, v in statuses.items() if v},
    }
    return envelope(data, meta)


@router.get(
    "/territories/{ref}/bodies",
    response_model=Envelope,
    summary="Toutes les instances auxquelles un territoire participe",
)
def territory_bodies(
    request: Request, ref: Annotated[str, Path(min_length=1, max_length=200)]
) -> dict:
    """Every cooperation a territory takes part in, directly or through its EPCI or perimeters
    (and those of territories inside it)."""
    from maillage.analysis.territories import resolve
    from maillage.cooperations.from_store import territory_index
    from maillage.cooperations.network import bodies_of
    from maillage.delivery.api.deps import get_store

    store = get_store(request)
    territory = resolve(store, ref)
    # the index of communes per territory and the register are both kept between requests
    # (the map's cooperation layer asks for them on every selection)
    index = territory_index(store)
    with session_of(request) as session:
        register = cached_register(request, session)
        df = bodies_of(territory.ref, register, index, include_inside=True)
    return envelope(
        {"territory": territory.as_dict(), "bodies": records(df)},
        registry_meta(request.app.state.settings),
    )


#: Roles whose territories make up the perimeter of a cooperation (associates only sign).
PERIMETER_ROLES = ("lead", "member")


@router.get(
    "/cooperations/{slug}/geometry",
    summary="Périmètre d'une coopération (GeoJSON)",
    response_description="FeatureCollection : un contour par partie, puis le contour d'ensemble",
)
def cooperation_geometry(request: Request, slug: SlugPath) -> Response:
    """The territories of a cooperation's parties on a map: one feature per resolved party
    (``part: "party"``, with its ``ref``, ``name``, ``level`` and ``role``), then the outline
    of the cooperation (``part: "outline"``), the union of its members and lead (of every
    party when none is a member). Parties with a ``left`` date or no territory are left out.
    """
    from maillage.cooperations import crud
    from maillage.delivery.api.deps import get_store
    from maillage.delivery.api.routes.geometry import geojson_response

    store = get_store(request)
    with session_of(request) as session:
        rec = crud.get(session, slug)
    settings = request.app.state.settings
    return geojson_response(
        request,
        ("coop_geometry", rec.slug, rec.version),
        lambda: _cooperation_features(request, store, rec, registry_meta(settings)),
    )


def _cooperation_features(
    request: Request, store: Any, rec: Any, meta: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The FeatureCollection text of :func:`cooperation_geometry` and its meta."""
    import pandas as pd
    import shapely

    from maillage._errors import MaillageError
    from maillage.analysis.territories import resolve
    from maillage.cooperations.vocab import INSTRUMENTS, ROLES, STATUSES, label
    from maillage.delivery.api.deps import reference_meta
    from maillage.delivery.api.routes.geometry import feature_collection, territory_shape

    geoms, props, seen = [], [], set()
    for party in rec.parties:
        if not party.ref or party.left or party.ref in seen:
            continue
        seen.add(party.ref)
        try:
            t = resolve(store, party.ref)
        except MaillageError:
            continue  # a party the reference no longer knows: listed by the register only
        geom = territory_shape(request, store, t)
        if geom is None:
            continue
        geoms.append(geom)
        props.append(
            {"part": "party", "slug": rec.slug, "ref": t.ref, "name": t.name, "level": t.level,
             "role": party.role, "role_label": label(party.role, ROLES)}
        )  # fmt: skip
    members = [g for g, p in zip(geoms, props, strict=True) if p["role"] in PERIMETER_ROLES]
    members = members or geoms
    if members:
        geoms.append(shapely.union_all(members, grid_size=1e-4))
        props.append(
            {"part": "outline", "slug": rec.slug, "ref": None, "name": rec.name, "level": None,
             "role": None, "role_label": None}
        )  # fmt: skip
    fc = feature_collection(pd.Series(geoms, dtype=object), pd.DataFrame(props), decimals=3)
    about = {
        "slug": rec.slug,
        "name": rec.name,
        "instrument": rec.instrument,
        "instrument_label": label(rec.instrument, INSTRUMENTS),
        "status": rec.status,
        "status_label": label(rec.status, STATUSES),
        "parties_in_outline": len(members),
        "parties_without_territory": sum(1 for p in rec.parties if not p.ref),
    }
    return fc, meta | {"cooperation": about, "geometry_source": reference_meta(store)["source"]}
