"""One JSON shape for every error the API returns.

Every failure — unknown route, wrong method, malformed parameter, unknown territory, request too
large, broken store, unexpected bug — is answered with::

    {"ok": false,
     "error": {"status": 404, "code": "unknown_territory", "message": "…", "details": [...]}}

``status`` repeats the HTTP status, ``code`` is a stable machine-readable word, ``message`` is
a French sentence that says what went wrong and what to do, ``details`` (possibly empty) lists
the individual problems (validation errors, ambiguous candidates).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from maillage._errors import (
    AmbiguousTerritory,
    MaillageError,
    ModelError,
    RegistryError,
    SourceError,
    StoreError,
    UnknownTerritory,
    ValidationError,
)

log = logging.getLogger("maillage.api")

#: Stable error codes for plain HTTP statuses.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    429: "too_many_requests",
    500: "internal_error",
    503: "store_unavailable",
}

#: French messages for plain HTTP statuses raised by the framework itself.
HTTP_MESSAGES_FR: dict[int, str] = {
    404: "Adresse inconnue de l'API. La liste des adresses est dans /api/v1/docs.",
    405: "Méthode HTTP non permise sur cette adresse.",
    413: "Requête trop volumineuse.",
}


class ApiError(Exception):
    """An error raised on purpose by a route: HTTP status, stable code, French message."""

    def __init__(
        self, status: int, code: str, message: str, details: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details or [])


def error_body(status: int, code: str, message: str, details: list[Any] | None = None) -> dict:
    """The one error envelope."""
    return {
        "ok": False,
        "error": {"status": status, "code": code, "message": message, "details": details or []},
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying :func:`error_body`."""
    return JSONResponse(
        error_body(status, code, message, details), status_code=status, headers=headers
    )


def _registry_status(exc: RegistryError) -> tuple[int, str]:
    from maillage.cooperations import errors as reg

    table: list[tuple[type, int, str]] = [
        (reg.AuthError, 401, "unauthorized"),
        (reg.PermissionDenied, 403, "forbidden"),
        (reg.RecordNotFound, 404, "not_found"),
        (reg.RecordInvalid, 422, "invalid_record"),
        (reg.DuplicateRecord, 409, "duplicate"),
        (reg.ConflictError, 409, "conflict"),
        (reg.ImportFormatError, 422, "invalid_source"),
    ]
    for cls, status, code in table:
        if isinstance(exc, cls):
            return status, code
    return 409, "registry_refused"


def maillage_error_status(exc: MaillageError) -> tuple[int, str]:
    """HTTP status and code for an exception of the maillage tree."""
    if isinstance(exc, RegistryError):
        return _registry_status(exc)
    if isinstance(exc, UnknownTerritory):
        return 404, "unknown_territory"
    if isinstance(exc, AmbiguousTerritory):
        return 409, "ambiguous_territory"
    if isinstance(exc, ValidationError):
        return 422, "invalid_input"
    if isinstance(exc, SourceError):
        return 422, "invalid_source"
    if isinstance(exc, ModelError):
        return 422, "model_error"
    if isinstance(exc, StoreError):
        return 503, "store_unavailable"
    return 400, "bad_request"


def _maillage_details(exc: MaillageError) -> list[Any]:
    if isinstance(exc, AmbiguousTerritory):
        return list(exc.candidates)
    problems = getattr(exc, "problems", None)
    if isinstance(problems, list):
        return [str(p) for p in problems]
    return []


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        out.append(
            {
                "field": ".".join(loc),
                "message": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return out


def _validation_message(details: list[dict[str, Any]]) -> str:
    if not details:
        return "Paramètres invalides."
    first = details[0]
    more = f" (et {len(details) - 1} autre(s))" if len(details) > 1 else ""
    return f"Paramètre invalide « {first['field']} » : {first['message']}{more}."


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception to the one error envelope."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(MaillageError)
    async def _maillage_error(request: Request, exc: MaillageError) -> JSONResponse:
        status, code = maillage_error_status(exc)
        return error_response(status, code, str(exc), _maillage_details(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        return error_response(422, "invalid_parameter", _validation_message(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else None
        generic = detail is None or detail == HTTPStatus(status).phrase
        message = (HTTP_MESSAGES_FR.get(status) if generic else detail) or detail or "Erreur."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(
            status, HTTP_CODES.get(status, "http_error"), message, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "Erreur interne du serveur ; elle a été journalisée."
        )
