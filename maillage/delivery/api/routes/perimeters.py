"""Perimeters: list, detail, and creation of user perimeters from a list of EPCI or communes.

A perimeter created here is saved as a YAML file in ``<MAILLAGE_HOME>/perimeters/`` (the same
layout as ``maillage perimeter add``), then loaded into the store; it is shared by its slug:
``per:<slug>`` names it everywhere, and ``/?level=perimeter&sel=per:<slug>`` opens it.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from maillage.delivery.api.deps import SettingsDep, StoreDep, envelope, reference_meta
from maillage.delivery.api.errors import ApiError
from maillage.delivery.api.routes._common import invalidate, records
from maillage.delivery.api.schemas import ERROR_RESPONSES, Envelope, PerimeterCreate

router = APIRouter(tags=["périmètres"], responses=ERROR_RESPONSES)

_WRITE_LOCK = threading.Lock()
SlugPath = Annotated[str, PathParam(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]


def slugify(name: str) -> str:
    """``"Pôle de l'Ouest"`` → ``"pole-de-l-ouest"`` (at most 60 characters)."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:60].strip("-") or "perimetre"


def perimeter_slug(name: str, members: list[str]) -> str:
    """A stable slug: the slugified name and a short hash of the sorted members."""
    digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()[:6]
    return f"{slugify(name)}-{digest}"


def user_dir(settings) -> Path:
    return Path(settings.home) / "perimeters"


def _normalise_members(members: list[str]) -> list[str]:
    from maillage.reference.perimeters import normalise_member

    out, problems = [], []
    for raw in members:
        try:
            out.append(normalise_member(raw))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ApiError(
            422,
            "invalid_member",
            "Membre(s) invalide(s) : seuls des EPCI (epci:SIREN) et des communes "
            "(com:CODE) peuvent composer un périmètre.",
            problems,
        )
    return sorted(dict.fromkeys(out))


def _check_known(members: list[str]) -> None:
    from maillage.reference.perimeters import _reference_sets

    known, _ = _reference_sets()
    unknown = [m for m in members if m not in known]
    if unknown:
        raise ApiError(
            422,
            "unknown_member",
            f"{len(unknown)} membre(s) absent(s) du référentiel territorial.",
            unknown,
        )


def _summary(store, slug: str | None = None):
    where = "AND t.code = ?" if slug else ""
    return store.df(
        f"""SELECT 'per:' || t.code AS ref, t.code AS slug, t.name, t.type AS kind,
                   t.population, count(m.commune) AS n_communes, t.lon, t.lat
            FROM territory t
            LEFT JOIN membership m ON m.level = 'perimeter' AND m.code = t.code
            WHERE t.level = 'perimeter' {where}
            GROUP BY ALL ORDER BY t.name""",
        [slug] if slug else [],
    )


@router.get("/perimeters", response_model=Envelope, summary="Liste des périmètres")
def list_perimeters(store: StoreDep) -> dict:
    """Perimeters held: shipped ones (from the mission document) and users' ones."""
    return envelope(records(_summary(store)), reference_meta(store))


@router.get("/perimeters/{slug}", response_model=Envelope, summary="Détail d'un périmètre")
def get_perimeter(store: StoreDep, settings: SettingsDep, slug: SlugPath) -> dict:
    """A perimeter with its members as written (EPCI, communes) and its link to share."""
    from maillage.reference.perimeters import load_perimeters

    df = _summary(store, slug)
    if df.empty:
        raise ApiError(404, "unknown_perimeter", f"Aucun périmètre « {slug} ».")
    data = records(df)[0]
    files = sorted(user_dir(settings).glob("*.yaml")) if user_dir(settings).is_dir() else []
    try:
        per = load_perimeters(extra_paths=files).get(slug)
    except Exception:  # a broken user file must not hide the store's perimeter
        per = None
    data["members"] = list(per.members) if per else []
    data["unresolved"] = list(per.unresolved) if per else []
    data["share_url"] = f"/?level=perimeter&sel=per:{slug}"
    return envelope(data, reference_meta(store))


@router.post(
    "/perimeters",
    response_model=Envelope,
    status_code=201,
    summary="Créer un périmètre à partir d'EPCI ou de communes",
)
def create_perimeter(
    request: Request, store: StoreDep, settings: SettingsDep, body: PerimeterCreate
) -> JSONResponse:
    """Save a perimeter (idempotent: the same name and members give the same slug)."""
    from maillage.build import reload_perimeters

    members = _normalise_members(body.members)
    _check_known(members)
    slug = perimeter_slug(body.name, members)
    if store.read_only:
        raise ApiError(
            503,
            "read_only",
            "L'observatoire est ouvert en lecture seule : impossible d'enregistrer un périmètre.",
        )
    folder = user_dir(settings)
    with _WRITE_LOCK:
        existing = _summary(store, slug)
        if existing.empty:
            folder.mkdir(parents=True, exist_ok=True)
            doc = {
                "perimeters": [
                    {
                        "slug": slug,
                        "name": body.name,
                        "kind": "custom",
                        "members_from": "user",
                        "members": members,
                        "note": body.description or None,
                    }
                ]
            }
            path = folder / f"{slug}.yaml"
            path.write_text(
                yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
            try:
                reload_perimeters(store, sorted(folder.glob("*.yaml")))
            except Exception:
                path.unlink(missing_ok=True)
                raise
            invalidate(request, "outline")
            invalidate(request, "json")
    data = records(_summary(store, slug))[0]
    data["members"] = members
    data["share_url"] = f"/?level=perimeter&sel=per:{slug}"
    return JSONResponse(envelope(data, reference_meta(store)), status_code=201)
