"""Request bodies and response envelopes of the API: the public contract shown in OpenAPI.

Every successful answer is ``{"ok": true, "data": …, "meta": Meta}``; every error is the
envelope of :mod:`maillage.delivery.api.errors`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["observed", "modelled", "mixed"]


class Meta(BaseModel):
    """Where the figures of a response come from."""

    model_config = ConfigDict(extra="allow")

    status: Status = Field(
        description="observed (official file), modelled (estimated), "
        "or mixed (several kinds of different status)"
    )
    source: str = Field(description="source of the figures, in French")
    vintage: int | str | None = Field(description="vintage (millésime) of the figures")


class Envelope(BaseModel):
    """A successful answer."""

    ok: Literal[True] = True
    data: Any
    meta: Meta


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    details: list[Any] = []


class ErrorEnvelope(BaseModel):
    """Every error, whatever its status."""

    ok: Literal[False] = False
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorEnvelope, "description": text}
    for code, text in {
        400: "Requête incorrecte",
        404: "Territoire ou ressource inconnu",
        409: "Nom ambigu ou conflit",
        413: "Requête trop volumineuse",
        422: "Paramètre invalide",
        503: "Base de l'observatoire indisponible",
    }.items()
}


class PerimeterCreate(BaseModel):
    """A user perimeter built from EPCI or communes (or any territory references)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="nom du périmètre")
    members: list[str] = Field(
        min_length=1,
        max_length=5000,
        description="références des membres: epci:242900314, com:29019, dep:29 …",
    )
    description: str = Field(default="", max_length=2000)


class CooperationWrite(BaseModel):
    """A cooperation record as sent by an editor (fields are checked by the register)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=300)
    instrument: str = Field(min_length=1, max_length=100)
    parties: list[str] = Field(min_length=1, max_length=2000)
