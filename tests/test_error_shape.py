"""Every error of the API has the one envelope, whatever its cause:
``{"ok": false, "error": {"status", "code", "message", "details"}}`` and never a 500 for bad
input."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from maillage.delivery.api import create_app
from maillage.settings import Settings
from maillage.store import Store

BREST = "epci:242900314"


@pytest.fixture(scope="module")
def client(reference_db, tmp_path_factory):
    """The app on the real reference (no flows: some answers are 'no data')."""
    home = tmp_path_factory.mktemp("err-home")
    path = home / "maillage.duckdb"
    shutil.copy(reference_db, path)
    store = Store(path)
    app = create_app(Settings(home=home), store=store)

    @app.get("/api/v1/_boom", include_in_schema=False)
    def boom() -> None:  # a real bug in a route must still answer the envelope
        raise RuntimeError("boom")

    yield TestClient(app, raise_server_exceptions=False)
    store.close()


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"ok", "error"}
    assert body["ok"] is False
    err = body["error"]
    assert set(err) == {"status", "code", "message", "details"}
    assert err["status"] == status
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], list)
    if code is not None:
        assert err["code"] == code, err
    return err


CASES = [
    # (method, url, kwargs, status, code)
    ("get", "/api/v1/no-such-thing", {}, 404, "not_found"),
    ("get", "/api/v1/territories/epci:000000000", {}, 404, "unknown_territory"),
    ("get", "/api/v1/territories/xyz:12", {}, 404, "unknown_territory"),
    ("get", "/api/v1/territories/com:99999/profile", {}, 404, "unknown_territory"),
    ("get", "/api/v1/territories/zzzzqqqq-nowhere", {}, 404, "unknown_territory"),
    ("get", "/api/v1/territories/search", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/territories/search?q=", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/territories/search?q=brest&limit=0", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/territories/search?q=brest&levels=planet", {}, 422, "invalid_parameter"),
    ("get", f"/api/v1/territories/{BREST}/partners?kind=teleport", {}, 422, "invalid_parameter"),
    (
        "get",
        f"/api/v1/territories/{BREST}/partners?kind=commute&top=-1",
        {},
        422,
        "invalid_parameter",
    ),
    (
        "get",
        f"/api/v1/territories/{BREST}/partners?kind=commute&direction=up",
        {},
        422,
        "invalid_parameter",
    ),
    (
        "get",
        f"/api/v1/territories/{BREST}/partners?kind=commute&threshold=abc",
        {},
        422,
        "invalid_parameter",
    ),
    ("get", f"/api/v1/territories/{BREST}/partners?kind=residential", {}, 404, "no_data"),
    ("get", "/api/v1/flows?kind=commute&level=canton", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/flows?kind=commute&top=100000", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/flows?kind=commute&vintage=abc", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/choropleth?kind=commute&indicator=happiness", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/choropleth?kind=commute&level=commune&dep=ABC", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/pair?a=epci:242900314", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/geometry/commune", {}, 400, "too_large"),
    ("get", "/api/v1/geometry/commune?dep=00", {}, 404, "unknown_territory"),
    ("get", "/api/v1/geometry/planet", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/perimeters/Not_A_Slug!", {}, 422, "invalid_parameter"),
    ("get", "/api/v1/perimeters/no-such-perimeter", {}, 404, "unknown_perimeter"),
    (
        "post",
        "/api/v1/perimeters",
        {"json": {"name": "Vide", "members": []}},
        422,
        "invalid_parameter",
    ),
    ("post", "/api/v1/perimeters", {"json": {"name": "Sans membres"}}, 422, "invalid_parameter"),
    (
        "post",
        "/api/v1/perimeters",
        {"json": {"name": "X", "members": ["dep:29"]}},
        422,
        "invalid_member",
    ),
    (
        "post",
        "/api/v1/perimeters",
        {"json": {"name": "X", "members": ["epci:000000000"]}},
        422,
        "unknown_member",
    ),
    (
        "post",
        "/api/v1/perimeters",
        {"json": {"name": "X", "members": [BREST], "extra": 1}},
        422,
        "invalid_parameter",
    ),
    (
        "post",
        "/api/v1/perimeters",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        422,
        "invalid_parameter",
    ),
    (
        "post",
        "/api/v1/perimeters",
        {"content": b"x" * 1_500_000, "headers": {"content-type": "application/json"}},
        413,
        "request_too_large",
    ),
    ("delete", "/api/v1/territories/search?q=brest", {}, 405, "method_not_allowed"),
    ("put", "/api/v1/flows?kind=commute", {}, 405, "method_not_allowed"),
    ("post", "/api/v1/cooperations", {"json": {"slug": "x"}}, 401, "unauthorized"),
    ("get", "/api/v1/cooperations/no-such-cooperation", {}, 404, "not_found"),
    ("get", "/api/v1/_boom", {}, 500, "internal_error"),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "code"),
    CASES,
    ids=[f"{c[3]}-{c[0]}-{c[1][:60]}" for c in CASES],
)
def test_error_envelope(client, method, url, kwargs, status, code):
    response = getattr(client, method)(url, **kwargs)
    assert_envelope(response, status, code)


def test_validation_details_name_the_field(client):
    err = assert_envelope(
        client.get(
            f"/api/v1/territories/{BREST}/partners", params={"kind": "commute", "top": "many"}
        ),
        422,
    )
    assert any(d["field"] == "query.top" for d in err["details"])
    assert "top" in err["message"]


def test_ambiguous_name_lists_candidates(client):
    # many communes share this name: the error lists them so that the user can choose
    err = assert_envelope(
        client.get("/api/v1/territories/Saint-Martin"), 409, "ambiguous_territory"
    )
    assert len(err["details"]) >= 2
    assert all(":" in d for d in err["details"])


def test_streamed_oversized_body_is_refused(client):
    def chunks():
        for _ in range(30):
            yield b"y" * 50_000

    response = client.post(
        "/api/v1/perimeters", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(response, 413, "request_too_large")


def test_no_flows_means_no_data_not_a_crash(client):
    # the reference-only store holds no flows at all
    assert_envelope(client.get("/api/v1/flows", params={"kind": "commute"}), 404, "no_data")
    assert_envelope(client.get("/api/v1/choropleth", params={"kind": "commute"}), 404, "no_data")
